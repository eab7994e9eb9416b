/**
 * Starting and stopping the simulator's HTTP server: listening on a port, the URL it is
 * reached at, and the open sockets that `Simulator.close()` drops.
 */
import type { Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** Listens on `host:port` and resolves with the server's root URL (`http://host:port`). */
export async function listen(server: Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound, address } = server.address() as AddressInfo;
  return `http://${address.includes(":") ? `[${address}]` : address}:${bound}`;
}

/** Tracks the server's open sockets; the function returned destroys them all and closes the server. */
export function closer(server: Server): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}
