import { once } from "node:events";
import { createServer, connect, type Socket } from "node:net";
import { describe, expect, it, vi } from "vitest";
import { coalesceWrites } from "./node.js";

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

describe("coalesceWrites", () => {
  it("corks once per turn of the event loop and uncorks when the turn ends", async () => {
    const calls: string[] = [];
    const hold = coalesceWrites({ cork: () => calls.push("cork"), uncork: () => calls.push("uncork") });
    hold();
    hold();
    hold();
    expect(calls).toEqual(["cork"]);
    await nextTurn();
    expect(calls).toEqual(["cork", "uncork"]);
    hold();
    expect(calls).toEqual(["cork", "uncork", "cork"]);
    await nextTurn();
    expect(calls).toEqual(["cork", "uncork", "cork", "uncork"]);
  });

  it("holds a real socket's writes until the turn ends, then delivers them in order", async () => {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    const accepted = once(server, "connection") as Promise<[Socket]>;
    const client = connect(port, "127.0.0.1");
    await once(client, "connect");
    const [peer] = await accepted;
    let received = "";
    peer.on("data", (d: Buffer) => (received += d.toString()));

    const hold = coalesceWrites(client);
    for (const part of ["a", "b", "c"]) {
      hold();
      client.write(part);
    }
    expect(client.writableCorked).toBe(1);
    expect(client.writableLength).toBe(3); // nothing has left yet
    await nextTurn();
    expect(client.writableCorked).toBe(0);
    await vi.waitFor(() => expect(received).toBe("abc"));
    client.destroy();
    peer.destroy();
    server.close();
  });
});
