import { createServer } from "node:http";
import { generateIdentity } from "@srp/core";
import { connectToHub } from "@srp/provider";
import { afterEach, describe, expect, it } from "vitest";
import { createHub, MemoryAccountStore, type Hub } from "../src/index.js";

const KEY = "srp_hub_test_key_1";
let hubs: Hub[] = [];
afterEach(async () => {
  await Promise.all(hubs.map((h) => h.close()));
  hubs = [];
});

async function start(options: Partial<Parameters<typeof createHub>[0]> = {}) {
  const accounts = new MemoryAccountStore();
  accounts.add({ id: "acct_1", apiKeys: [KEY] });
  const hub = createHub({ identity: generateIdentity(), accounts, ...options });
  hubs.push(hub);
  const { url } = await hub.listen({ port: 0 });
  return { hub, url };
}

describe("hub and provider over a real WebSocket", () => {
  it("a node connects through discovery, is listed by the hub, and offers instances", async () => {
    const { hub, url } = await start();
    const identity = generateIdentity();
    const conn = connectToHub({ hub: url, identity, account: { kind: "api_key", key: KEY }, expectedHubId: hub.id });
    const welcome = await conn.ready();
    expect(welcome).toMatchObject({ nodeId: identity.id, accountId: "acct_1", replaced: false, version: 1 });
    expect(hub.sessions()).toEqual([expect.objectContaining({ nodeId: identity.id, accountId: "acct_1" })]);
    const ack = new Promise((resolve) => conn.once("message", resolve));
    const instance = {
      instanceId: "i1",
      model: "llama3.1:8b",
      backend: { kind: "ollama" as const },
      price: { input: "50000", output: "150000" },
      maxConcurrency: 2,
      tokensPerSecond: 40,
      contextLength: 8192,
      capabilities: ["chat" as const, "stream" as const],
    };
    conn.send({
      type: "offer",
      instances: [
        { ...instance, tier: "gpu" },
        { ...instance, instanceId: "i2", tier: "subscription" },
        { ...instance, tier: "gpu" },
      ],
    });
    expect(await ack).toEqual({
      type: "offer_ack",
      results: [
        { instanceId: "i1", accepted: true },
        { instanceId: "i2", accepted: false, reason: { code: "offer.tier_refused", message: expect.any(String) } },
        { instanceId: "i1", accepted: false, reason: { code: "offer.duplicate_instance", message: expect.any(String) } },
      ],
    });
    await conn.close();
  });

  it("the node refuses a hub whose id differs from the pinned one", async () => {
    const { url } = await start();
    const conn = connectToHub({
      hub: url,
      identity: generateIdentity(),
      account: { kind: "api_key", key: KEY },
      expectedHubId: generateIdentity().id,
    });
    await expect(conn.ready()).rejects.toMatchObject({ code: "auth.wrong_hub" });
  });

  it("a node with an unknown account stops instead of retrying", async () => {
    const { hub, url } = await start();
    const rejected = new Promise((resolve) => hub.once("handshake.rejected", resolve));
    const conn = connectToHub({ hub: url, identity: generateIdentity(), account: { kind: "api_key", key: "srp_nobody_knows" } });
    await expect(conn.ready()).rejects.toMatchObject({ code: "auth.unknown_account" });
    expect(await rejected).toMatchObject({ code: "auth.unknown_account" });
    expect(conn.state).toBe("stopped");
  });

  it("a restarted hub gets its nodes back: the node reconnects with backoff after goodbye", async () => {
    const accounts = new MemoryAccountStore();
    accounts.add({ id: "acct_1", apiKeys: [KEY] });
    const identity = generateIdentity();
    const server = createServer();
    const first = createHub({ identity, accounts });
    first.attach(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const node = generateIdentity();
    const conn = connectToHub({ hub: url, identity: node, account: { kind: "api_key", key: KEY }, reconnect: { initialDelayMs: 500 } });
    const w1 = await conn.ready();
    const disconnected = new Promise<{ retryInMs?: number }>((resolve) => conn.once("disconnected", resolve));
    await first.close(); // says goodbye (reconnect after 5 s) and closes sessions; the server stays up
    const d = await disconnected;
    expect(d.retryInMs).toBe(5000);
    // A new hub on the same server takes over; the node comes back on its own.
    server.removeAllListeners("request");
    server.removeAllListeners("upgrade");
    const second = createHub({ identity, accounts });
    hubs.push(second);
    second.attach(server);
    const w2 = await conn.ready();
    expect(w2.sessionId).not.toBe(w1.sessionId);
    expect(second.sessions().map((s) => s.nodeId)).toEqual([node.id]);
    await conn.close();
    server.closeAllConnections();
    server.close();
  }, 20_000);

  it("a silent node is closed after three heartbeat intervals", async () => {
    const { hub, url } = await start({ heartbeatIntervalMs: 1000 });
    const closed = new Promise<{ reason: string; code: number }>((resolve) => hub.once("session.close", resolve));
    const { default: WebSocket } = await import("ws");
    const { createAuth, decode } = await import("@srp/core");
    const ws = new WebSocket(hub.discovery(url).provider.url);
    ws.on("message", (data) => {
      const r = decode(data.toString());
      if (r.ok && r.message.type === "hello")
        ws.send(JSON.stringify(createAuth({ identity: generateIdentity(), hello: r.message, account: { kind: "api_key", key: KEY } })));
    });
    expect(await closed).toMatchObject({ code: 4408, reason: "protocol.heartbeat_timeout" });
  }, 10_000);

  it("serves the discovery document through fetch and refuses other paths", async () => {
    const { hub } = await start();
    const res = await hub.fetch(new Request("http://hub.test/.well-known/srp.json"));
    expect(await res.json()).toMatchObject({
      protocol: "srp",
      versions: [1],
      hubId: hub.id,
      provider: { url: "ws://hub.test/srp/v1/provider" },
    });
    expect((await hub.fetch(new Request("http://hub.test/nope"))).status).toBe(404);
    expect((await hub.fetch(new Request("http://hub.test/srp/v1/provider"))).status).toBe(426);
  });
});
