/**
 * Handshake nonces shared by the processes of one hub through a real redis-server
 * (SRP-AUTH-003): an `auth` replaying a nonce that another hub process issued is refused as
 * `auth.replayed_nonce`; with Redis down the hub still refuses it (as `auth.nonce_mismatch`)
 * and keeps welcoming honest nodes.
 */
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createAuth, generateIdentity, type Identity } from "@srp/core";
import type { Hello } from "@srp/core/schema";
import { PROVIDER_PATH, RedisNonceStore, type NonceStore } from "@srp/hub";
import { connectRedis, type RedisConnection } from "../packages/srp-hub/src/cluster/redis.js";
import { nonceKey } from "../packages/srp-hub/src/cluster/shared-nonces.js";
import { KEY, startNet } from "./helpers.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function redisServer(): Promise<TestRedis> {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  return redis;
}

async function connection(url: string, prefix: string): Promise<RedisConnection> {
  const c = connectRedis(url, { keyPrefix: prefix });
  cleanups.push(() => c.close());
  await c.ready();
  return c;
}

/** A store that records what it reports. */
function store(c: RedisConnection, options: { ttlMs?: number } = {}): RedisNonceStore & { failures: string[] } {
  const failures: string[] = [];
  const s = new RedisNonceStore(c.commands, { ...options, onError: (operation) => failures.push(operation) });
  return Object.assign(s, { failures });
}

/** A raw provider connection: the hello it got, then each frame the hub sends. */
class RawNode {
  readonly frames: Record<string, unknown>[] = [];
  readonly ws: WebSocket;
  #wake: (() => void) | undefined;

  constructor(url: string) {
    this.ws = new WebSocket(url.replace(/^http/, "ws") + PROVIDER_PATH);
    this.ws.on("message", (data) => {
      this.frames.push(JSON.parse(String(data)) as Record<string, unknown>);
      this.#wake?.();
    });
    this.ws.on("error", () => undefined);
    cleanups.push(async () => this.ws.terminate());
  }

  static async open(url: string): Promise<{ node: RawNode; hello: Hello }> {
    const node = new RawNode(url);
    const hello = (await node.next()) as unknown as Hello;
    expect(hello.type).toBe("hello");
    return { node, hello };
  }

  async next(): Promise<Record<string, unknown>> {
    while (this.frames.length === 0) await new Promise<void>((r) => (this.#wake = r));
    return this.frames.shift()!;
  }
}

/** Two hub processes of one hub (one identity), each with its own nonce store. */
async function twoHubs(identity: Identity, nonces: [NonceStore | undefined, NonceStore | undefined]): Promise<[string, string]> {
  const urls: string[] = [];
  for (const store of nonces) {
    const net = await startNet({ identity, ...(store ? { nonces: store } : {}) });
    cleanups.push(() => net.close());
    urls.push(net.url);
  }
  return [urls[0]!, urls[1]!];
}

/** Opens a session on `second`, answering it with an auth signed for the hello `first` sent: what the hub answers. */
async function replayAcross(first: string, second: string): Promise<Record<string, unknown>> {
  const { hello: issued } = await RawNode.open(first);
  const { node } = await RawNode.open(second);
  node.ws.send(JSON.stringify(createAuth({ identity: generateIdentity(), hello: issued, account: { kind: "api_key", key: KEY } })));
  return node.next();
}

/** Whether an honest node is welcomed by `url`. */
async function welcomed(url: string): Promise<boolean> {
  const { node, hello } = await RawNode.open(url);
  node.ws.send(JSON.stringify(createAuth({ identity: generateIdentity(), hello, account: { kind: "api_key", key: KEY } })));
  return (await node.next()).type === "welcome";
}

describe.skipIf(skipWithoutRedis())("handshake nonces shared through Redis", () => {
  it("a nonce one store remembers is known to another store of the same hub, for its retention period only, and not to another hub", async () => {
    const redis = await redisServer();
    const [a, b, other] = await Promise.all([
      connection(redis.url, "srp:hub1:"),
      connection(redis.url, "srp:hub1:"),
      connection(redis.url, "srp:hub2:"),
    ]);
    const first = store(a, { ttlMs: 120_000 });
    const second = store(b);
    first.remember("n-1");
    await a.commands.ping(); // the write is ahead of the PING on the same connection
    expect(await second.has("n-1")).toBe(true);
    expect(await second.has("n-2")).toBe(false);
    expect(await store(other).has("n-1")).toBe(false);
    const ttl = await a.commands.pttl(nonceKey("n-1"));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(120_000);
    expect([...first.failures, ...second.failures]).toEqual([]);
  });

  it("with Redis down, a store answers from its own memory and reports the failures; after a restart it shares again", async () => {
    const redis = await redisServer();
    const [a, b] = await Promise.all([connection(redis.url, "srp:hub1:"), connection(redis.url, "srp:hub1:")]);
    const first = store(a);
    const second = store(b);
    first.remember("before");
    await a.commands.ping();
    await redis.down();
    first.remember("during");
    expect(await first.has("during")).toBe(true); // its own nonce, from memory
    expect(await first.has("before")).toBe(true);
    expect(await second.has("during")).toBe(false); // another process's: unknown, not an error
    expect(first.failures).toContain("remember");
    expect(second.failures).toContain("has");
    await redis.up();
    await Promise.all([a.ready(), b.ready()]);
    first.remember("after");
    await a.commands.ping();
    expect(await second.has("after")).toBe(true);
  });

  it("an auth replaying a nonce another hub process issued is refused as auth.replayed_nonce (SRP-AUTH-003)", async () => {
    const redis = await redisServer();
    const identity = generateIdentity();
    const [a, b] = await Promise.all([connection(redis.url, `srp:${identity.id}:`), connection(redis.url, `srp:${identity.id}:`)]);
    const [first, second] = await twoHubs(identity, [store(a), store(b)]);
    expect(await replayAcross(first, second)).toMatchObject({ type: "error", code: "auth.replayed_nonce" });
    expect(await replayAcross(second, first)).toMatchObject({ type: "error", code: "auth.replayed_nonce" });
    expect(await welcomed(first)).toBe(true);
    expect(await welcomed(second)).toBe(true);
  });

  it("each process remembering only its own nonces, the same replay is only a nonce mismatch", async () => {
    const [first, second] = await twoHubs(generateIdentity(), [undefined, undefined]);
    expect(await replayAcross(first, second)).toMatchObject({ type: "error", code: "auth.nonce_mismatch" });
  });

  it("with Redis down the replay is still refused (auth.nonce_mismatch) and honest nodes are still welcomed", async () => {
    const redis = await redisServer();
    const identity = generateIdentity();
    const [a, b] = await Promise.all([connection(redis.url, `srp:${identity.id}:`), connection(redis.url, `srp:${identity.id}:`)]);
    const [first, second] = await twoHubs(identity, [store(a), store(b)]);
    await redis.down();
    expect(await replayAcross(first, second)).toMatchObject({ type: "error", code: "auth.nonce_mismatch" });
    expect(await welcomed(second)).toBe(true);
    await redis.up();
    await Promise.all([a.ready(), b.ready()]);
    expect(await replayAcross(first, second)).toMatchObject({ type: "error", code: "auth.replayed_nonce" });
  });
});
