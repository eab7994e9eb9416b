/**
 * Direct links between the processes of one hub: one WebSocket per pair and direction,
 * opened on first use to the address a process announced, authenticated with a
 * credential only processes holding the hub's key can make (`link-protocol.ts`). A job
 * forwarded on a link has its events sent back on the same link, so when a link closes
 * every job on it ends at once.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { isIPv4, isIPv6 } from "node:net";
import type { Duplex } from "node:stream";
import { randomBytes, toBase64Url } from "@srp/core";
import { WebSocket, WebSocketServer } from "ws";
import { checkLinkToken, decodeLink, encodeLink, LINK_TOKEN_TTL_MS, linkToken, type LinkMessage } from "./link-protocol.js";

/** The path of the link endpoint. */
export const LINK_PATH = "/srp/v1/cluster-link";
/** The header carrying the link credential. */
const TOKEN_HEADER = "x-srp-cluster-link";
/** Largest message on a link: a job frame of the largest allowed size, with room for its envelope. */
const MAX_LINK_MESSAGE = 64 * 1024 * 1024;

/**
 * Whether `host` is an unspecified address (`0.0.0.0`, `::` and their spellings): listening
 * there takes every interface, but it names no address a peer could reach, so a process
 * listening there must be told what to announce (pure).
 */
export function isUnspecifiedHost(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIPv4(h)) return h.split(".").every((part) => Number(part) === 0);
  return isIPv6(h) && /^[0:]+$/.test(h);
}

/** One link to a peer process. */
export interface Link {
  /** The peer's process id. */
  readonly peer: string;
  /** Whether messages sent now leave (false while connecting or after close). */
  readonly open: boolean;
  /** Sends a message; false when the link is closed (the message is dropped). */
  send(message: LinkMessage): boolean;
}

/** What the links tell their owner. */
export interface LinkHandlers {
  /** A message arrived on a link. */
  onMessage(message: LinkMessage, link: Link): void;
  /** A link closed; it will not deliver or send anything more. */
  onClose(link: Link): void;
}

/** One WebSocket as a {@link Link}; messages sent while it connects wait (bounded by the socket's buffer). */
class SocketLink implements Link {
  readonly peer: string;
  readonly #ws: WebSocket;
  readonly #pending: string[] = [];
  #closed = false;

  constructor(peer: string, ws: WebSocket, handlers: LinkHandlers) {
    this.peer = peer;
    this.#ws = ws;
    ws.on("open", () => {
      for (const text of this.#pending.splice(0)) ws.send(text);
    });
    ws.on("message", (data) => {
      const message = decodeLink(String(data));
      if (message) handlers.onMessage(message, this);
    });
    ws.on("error", () => ws.terminate());
    ws.on("close", () => {
      if (this.#closed) return;
      this.#closed = true;
      this.#pending.length = 0;
      handlers.onClose(this);
    });
  }

  get open(): boolean {
    return !this.#closed && this.#ws.readyState === WebSocket.OPEN;
  }

  send(message: LinkMessage): boolean {
    if (this.#closed) return false;
    const text = encodeLink(message);
    if (this.#ws.readyState === WebSocket.CONNECTING) this.#pending.push(text);
    else if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(text);
    else return false;
    return true;
  }

  close(): void {
    this.#ws.terminate();
  }
}

/** Options of {@link PeerLinks}. */
export interface PeerLinksOptions extends LinkHandlers {
  /** This process's id. */
  readonly processId: string;
  /** The hub's link key ({@link linkKey}). */
  readonly key: Buffer;
}

/** The links of one process: accepted from peers and opened to them. */
export class PeerLinks {
  readonly #o: PeerLinksOptions;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_LINK_MESSAGE });
  readonly #outbound = new Map<string, SocketLink>();
  readonly #inbound = new Set<SocketLink>();
  /** Nonces of credentials accepted within their lifetime (a replayed credential opens nothing). */
  readonly #seen = new Map<string, number>();
  #server: Server | undefined;

  constructor(o: PeerLinksOptions) {
    this.#o = o;
  }

  /** Listens for peers' links on `host:port` (port 0: any); resolves with the `ws://` URL to announce. */
  async listen(host: string, port: number, advertiseHost?: string): Promise<string> {
    const server = createServer((_req, res) => res.writeHead(404).end());
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.handleUpgrade(req, socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // `exclusive`: a worker of `srp-hub serve --workers` gets a port of its own, not the one its siblings share.
      server.listen({ port, host, exclusive: true }, () => resolve());
    });
    this.#server = server;
    const address = server.address();
    const actual = typeof address === "object" && address ? address.port : port;
    const shown = advertiseHost ?? (isUnspecifiedHost(host) ? "127.0.0.1" : host);
    return `ws://${shown.includes(":") ? `[${shown}]` : shown}:${actual}${LINK_PATH}`;
  }

  /** Accepts a peer's link on the link endpoint; false when the request is not for it. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if ((request.url ?? "").split("?")[0] !== LINK_PATH) return false;
    const now = Date.now();
    const token = request.headers[TOKEN_HEADER];
    const checked = typeof token === "string" ? checkLinkToken(this.#o.key, token, now, this.#o.processId) : undefined;
    if (!checked || this.#seen.has(checked.nonce)) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return true;
    }
    this.#remember(checked.nonce, now);
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      const link = new SocketLink(checked.processId, ws, {
        onMessage: this.#o.onMessage,
        onClose: (l) => {
          this.#inbound.delete(link);
          this.#o.onClose(l);
        },
      });
      this.#inbound.add(link);
    });
    return true;
  }

  /** The link to a peer at `url`, opened when there is none. */
  to(peer: string, url: string): Link {
    const existing = this.#outbound.get(peer);
    if (existing) return existing;
    const token = linkToken(this.#o.key, this.#o.processId, peer, toBase64Url(randomBytes(12)), Date.now());
    const ws = new WebSocket(url, { headers: { [TOKEN_HEADER]: token }, maxPayload: MAX_LINK_MESSAGE, handshakeTimeout: 5000 });
    const link = new SocketLink(peer, ws, {
      onMessage: this.#o.onMessage,
      onClose: (l) => {
        if (this.#outbound.get(peer) === link) this.#outbound.delete(peer);
        this.#o.onClose(l);
      },
    });
    this.#outbound.set(peer, link);
    return link;
  }

  /** Closes the link to a peer (it went away). */
  drop(peer: string): void {
    this.#outbound.get(peer)?.close();
  }

  /** Closes every link and the link server. */
  async close(): Promise<void> {
    for (const link of [...this.#outbound.values(), ...this.#inbound]) link.close();
    this.#wss.close();
    const server = this.#server;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  #remember(nonce: string, now: number): void {
    for (const [n, at] of this.#seen) {
      if (now - at <= LINK_TOKEN_TTL_MS) break;
      this.#seen.delete(n);
    }
    this.#seen.set(nonce, now);
  }
}
