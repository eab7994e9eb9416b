/**
 * Mounting a hub on `node:http`: attaches its fetch handler and provider endpoint to a
 * server, creates and listens on servers of its own, and closes those on `close()`.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { toNodeHandler, type FetchHandler } from "../node-adapter.js";

/** What a hub mounts on a server. */
export interface Mountable {
  readonly fetch: FetchHandler;
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Largest request body buffered. */
  readonly maxBodyBytes: number;
}

/** The hub's `node:http` servers. */
export interface NodeServers {
  /** Attaches the HTTP handler and the WebSocket endpoint to a server. */
  attach(server: Server): void;
  /** Creates a server, attaches and listens; resolves with its base URL. */
  listen(options?: { port?: number; host?: string }): Promise<{ url: string; server: Server }>;
  /** Closes the servers made by `listen`, dropping their connections. */
  close(): Promise<void>;
}

/** The base URL of a listening server (pure). */
function urlOf(server: Server, host: string, port: number): string {
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  return `http://${host.includes(":") ? `[${host}]` : host}:${actualPort}`;
}

/** Mounts a hub on `node:http` servers. */
export function nodeServers(hub: Mountable): NodeServers {
  const servers: Server[] = [];
  const attach = (server: Server) => {
    server.on("request", toNodeHandler(hub.fetch, { maxBodyBytes: hub.maxBodyBytes }));
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!hub.handleUpgrade(req, socket, head)) socket.destroy();
    });
  };
  return {
    attach,
    async listen({ port = 8787, host = "127.0.0.1" } = {}) {
      const server = createServer();
      attach(server);
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => resolve());
      });
      return { url: urlOf(server, host, port), server };
    },
    async close() {
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
  };
}
