/**
 * The embeddable hub. `createHub` returns a Web-standard `fetch` handler for the HTTP
 * surface, an `upgrade` handler for the provider WebSocket endpoint, and helpers to
 * attach both to a `node:http` server or to listen on a port.
 */
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { DISCOVERY_PATH, FRAME_LIMITS, HANDSHAKE_TIMING, SrpError, SUPPORTED_VERSIONS, type Discovery, type Identity } from "@srp/core";
import { verifyMessage } from "viem";
import { WebSocketServer } from "ws";
import type { AccountStore } from "./accounts.js";
import { toNodeHandler } from "./node-adapter.js";
import { NonceMemory } from "./nonces.js";
import { ProviderSession } from "./session.js";

/** Path of the provider WebSocket endpoint. */
export const PROVIDER_PATH = "/srp/v1/provider";

/** Options of {@link createHub}. */
export interface HubOptions {
  /** The hub's Ed25519 identity (its id is the hub id). */
  identity: Identity;
  /** Where accounts are looked up when nodes bind to them. */
  accounts: AccountStore;
  /** Public base URL (e.g. `https://hub.example`); default: derived from each request's Host header. */
  publicUrl?: string;
  /** Frame limit announced in hello; default 4 MiB. */
  maxFrameBytes?: number;
  /** Heartbeat interval announced in welcome; default 15 s. */
  heartbeatIntervalMs?: number;
  /** Handshake deadline; default 10 s. */
  handshakeTimeoutMs?: number;
  /** Instances per session; default 64. */
  maxInstances?: number;
  /** Concurrent jobs per session; default 256. */
  maxConcurrentJobs?: number;
  /** Supply tiers refused in offers; default `["subscription"]`. */
  refusedTiers?: readonly string[];
  /** Protocol versions offered; default all the library speaks. */
  versions?: readonly number[];
}

/** A provider session as the hub reports it. */
export interface SessionInfo {
  sessionId: string;
  nodeId: string;
  accountId: string;
  version: number;
  instances: number;
  lastSeen: number;
}

/** Events a hub emits. */
export interface HubEvents {
  "session.open": [info: SessionInfo & { replaced: boolean }];
  "session.close": [info: SessionInfo & { code: number; reason: string }];
  "handshake.rejected": [detail: { sessionId: string; code: string; message: string }];
}

/** An embeddable SRP hub. */
export interface Hub extends EventEmitter<HubEvents> {
  /** The hub id (base64url Ed25519 public key). */
  readonly id: string;
  /** Web-standard handler for the hub's HTTP surface. */
  fetch(request: Request): Promise<Response>;
  /** Handles a `node:http` upgrade request; returns false if the path is not the provider endpoint. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Attaches the HTTP handler and the WebSocket endpoint to a `node:http` server. */
  attach(server: Server): void;
  /** Creates a `node:http` server for this hub and listens; resolves with its base URL. */
  listen(options?: { port?: number; host?: string }): Promise<{ url: string; server: Server }>;
  /** Open, authenticated provider sessions. */
  sessions(): SessionInfo[];
  /** The discovery document for a given base URL. */
  discovery(baseUrl: string): Discovery;
  /** Says goodbye to every node, closes the endpoint and any server created by `listen`. */
  close(): Promise<void>;
}

function info(s: ProviderSession): SessionInfo {
  return { sessionId: s.sessionId, nodeId: s.nodeId ?? "", accountId: s.account?.id ?? "", version: s.version ?? 0, instances: s.instances.size, lastSeen: s.lastSeen };
}

async function verifyWallet(address: string, message: string, signature: string): Promise<boolean> {
  try {
    return await verifyMessage({ address: address as `0x${string}`, message, signature: signature as `0x${string}` });
  } catch {
    return false;
  }
}

/**
 * Creates an embeddable hub.
 *
 * @example
 * import { createServer } from "node:http";
 * import { generateIdentity } from "@srp/core";
 * import { createHub, MemoryAccountStore } from "@srp/hub";
 *
 * const accounts = new MemoryAccountStore();
 * accounts.add({ id: "acct_1", apiKeys: ["srp_example_key_123"] });
 * const hub = createHub({ identity: generateIdentity(), accounts });
 * const server = createServer();
 * hub.attach(server);
 * server.listen(8787);
 */
export function createHub(options: HubOptions): Hub {
  const maxFrameBytes = options.maxFrameBytes ?? FRAME_LIMITS.default;
  if (maxFrameBytes < FRAME_LIMITS.min || maxFrameBytes > FRAME_LIMITS.max) {
    throw new RangeError(`maxFrameBytes must be within ${FRAME_LIMITS.min}..${FRAME_LIMITS.max}`);
  }
  const emitter = new EventEmitter<HubEvents>();
  const byNode = new Map<string, ProviderSession>();
  const all = new Set<ProviderSession>();
  const servers: Server[] = [];
  const versions = options.versions ?? SUPPORTED_VERSIONS;
  // Frames a little over the limit still get a coded `frame.too_large` error from us;
  // ws closes far larger ones itself with 1009 before buffering them.
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxFrameBytes + FRAME_LIMITS.min });
  const nonces = new NonceMemory(2 * HANDSHAKE_TIMING.freshnessWindowMs);

  const ctx = {
    identity: options.identity,
    accounts: options.accounts,
    nonces,
    versions,
    maxFrameBytes,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 15_000,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? HANDSHAKE_TIMING.handshakeTimeoutMs,
    maxInstances: options.maxInstances ?? 64,
    maxConcurrentJobs: options.maxConcurrentJobs ?? 256,
    refusedTiers: new Set(options.refusedTiers ?? ["subscription"]),
    verifyWalletSignature: verifyWallet,
    onAuthenticated(session: ProviderSession) {
      const nodeId = session.nodeId!;
      const previous = byNode.get(nodeId);
      byNode.set(nodeId, session);
      emitter.emit("session.open", { ...info(session), replaced: previous !== undefined });
      return previous;
    },
    onClosed(session: ProviderSession, code: number, reason: string) {
      all.delete(session);
      if (session.nodeId !== undefined && byNode.get(session.nodeId) === session) byNode.delete(session.nodeId);
      emitter.emit("session.close", { ...info(session), code, reason });
    },
    onRejected(session: ProviderSession, error: SrpError) {
      all.delete(session);
      emitter.emit("handshake.rejected", { sessionId: session.sessionId, code: error.code, message: error.message });
    },
  };

  const baseUrlOf = (request: Request): string => options.publicUrl?.replace(/\/$/, "") ?? new URL(request.url).origin;

  const discovery = (baseUrl: string): Discovery => ({
    protocol: "srp",
    versions: [...versions],
    hubId: options.identity.id,
    provider: { url: `${baseUrl.replace(/^http/, "ws")}${PROVIDER_PATH}`, maxFrameBytes },
    payments: [],
    software: "@srp/hub",
  });

  const hub = Object.assign(emitter, {
    id: options.identity.id,
    async fetch(request: Request): Promise<Response> {
      const url = new URL(request.url);
      if (url.pathname === DISCOVERY_PATH && (request.method === "GET" || request.method === "HEAD")) {
        return Response.json(discovery(baseUrlOf(request)), { headers: { "cache-control": "public, max-age=60", "access-control-allow-origin": "*" } });
      }
      if (url.pathname === PROVIDER_PATH) {
        return Response.json({ error: { code: "protocol.unexpected_message", message: "this endpoint speaks WebSocket only" } }, { status: 426, headers: { upgrade: "websocket" } });
      }
      return Response.json({ error: { code: "not_found", message: `no route for ${request.method} ${url.pathname}` } }, { status: 404 });
    },
    handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
      const path = (request.url ?? "/").split("?")[0];
      if (path !== PROVIDER_PATH) return false;
      wss.handleUpgrade(request, socket, head, (ws) => {
        all.add(new ProviderSession(ws, ctx));
      });
      return true;
    },
    attach(server: Server): void {
      server.on("request", toNodeHandler(hub.fetch));
      server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (!hub.handleUpgrade(req, socket, head)) socket.destroy();
      });
    },
    async listen({ port = 8787, host = "127.0.0.1" } = {}): Promise<{ url: string; server: Server }> {
      const server = createServer();
      hub.attach(server);
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => resolve());
      });
      const address = server.address();
      const actualPort = typeof address === "object" && address ? address.port : port;
      const h = host.includes(":") ? `[${host}]` : host;
      return { url: `http://${h}:${actualPort}`, server };
    },
    sessions(): SessionInfo[] {
      return [...byNode.values()].map(info);
    },
    discovery,
    async close(): Promise<void> {
      for (const s of all) s.goodbye("hub is shutting down", 5000);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  });
  return hub as Hub;
}
