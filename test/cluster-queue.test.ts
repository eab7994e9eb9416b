/**
 * Two hub-wide guarantees of a hub run as several processes (docs/deployment.md), with two
 * hubs sharing an identity and a real Redis server: requests waiting for a slot are served
 * first in, first out whatever process they reached, under the queue's bounds counted
 * hub-wide (SRP-CON-064..068); and the failed-handshake limit holds exactly across the
 * processes, however quickly the failures come (SRP-SEC-018).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createAuth, decode, encode, generateIdentity } from "@srp/core";
import type { Hello } from "@srp/core/schema";
import { KEY, MODEL, startNet, until, type Net } from "./helpers.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";

const FAST = { heartbeatMs: 100, deadAfterMs: 600, resyncMs: 1000, loadFlushMs: 10 };
const WAIT = { "x-srp-queue-timeout-ms": "20000" };

/** A raw provider connection that has its hello. */
interface RawPeer {
  ws: WebSocket;
  hello: Hello;
  messages: Record<string, unknown>[];
  closed: Promise<number>;
}

/** Opens a raw provider WebSocket and waits for the hub's hello. */
function connectRaw(url: string): Promise<RawPeer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/srp/v1/provider`);
    const messages: Record<string, unknown>[] = [];
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.on("message", (data: Buffer) => {
      const d = decode(data, {});
      if (!d.ok) return;
      messages.push(d.message as unknown as Record<string, unknown>);
      if (d.message.type === "hello") resolve({ ws, hello: d.message as Hello, messages, closed });
    });
    ws.on("error", reject);
  });
}

/** Sends an auth with `key` and resolves with the hub's answer (welcome or error). */
async function authRaw(peer: RawPeer, key: string): Promise<Record<string, unknown>> {
  peer.ws.send(encode(createAuth({ hello: peer.hello, identity: generateIdentity(), account: { kind: "api_key", key } })));
  await until(() => peer.messages.some((m) => m.type === "welcome" || m.type === "error"), 5000, "the answer to an auth");
  return peer.messages.find((m) => m.type === "welcome" || m.type === "error")!;
}

describe.skipIf(skipWithoutRedis())("hub-wide guarantees of processes sharing Redis", () => {
  let redis: TestRedis;
  const nets: Net[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    for (const n of nets.splice(0).reverse()) await n.close();
  });

  /** Two hubs with one identity in one cluster. */
  async function pair(extra: Parameters<typeof startNet>[0] = {}): Promise<[Net, Net]> {
    const identity = generateIdentity();
    const a = await startNet({ identity, cluster: { redisUrl: redis.url, timings: FAST }, ...extra });
    const b = await startNet({ identity, cluster: { redisUrl: redis.url, timings: FAST }, ...extra });
    nets.push(a, b);
    await Promise.all([a.hub.ready(), b.hub.ready()]);
    return [a, b];
  }

  const chat = (url: string, marker: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...WAIT },
      body: JSON.stringify({ model: MODEL, max_tokens: 3, messages: [{ role: "user", content: marker }] }),
    });
  const markerOf = (body: Record<string, unknown>) => (body.messages as { content: string }[])[0]!.content;

  it("serves the requests waiting on two processes first in, first out, even when the later one waits where the slot frees", async () => {
    const [a, b] = await pair();
    const sim = await a.sim({ latencyMs: 600 });
    await a.addProvider(sim, { maxConcurrency: 1 });
    await until(() => b.hub.router.count(MODEL) === 1, 5000, "the node to appear on B");
    const first = chat(a.url, "first");
    await until(() => sim.requests.length === 1, 5000, "the first request to reach the node");
    // The second waits on B; the third on A, the process holding the node, which hears first when its slot frees.
    const second = chat(b.url, "second");
    await until(() => b.hub.waiting.size(MODEL) === 1, 5000, "the second request to wait on B");
    const third = chat(a.url, "third");
    await until(() => a.hub.waiting.size(MODEL) === 1, 5000, "the third request to wait on A");
    const answers = await Promise.all([first, second, third]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(sim.requests.map(markerOf)).toEqual(["first", "second", "third"]);
    expect(a.hub.waiting.size(MODEL) + b.hub.waiting.size(MODEL)).toBe(0);
  });

  it("counts an account's waiters across the processes against its share of the queue", async () => {
    const [a, b] = await pair({ queue: { maxWaitersPerAccount: 1 } });
    const sim = await a.sim({ latencyMs: 800 });
    await a.addProvider(sim, { maxConcurrency: 1 });
    await until(() => b.hub.router.count(MODEL) === 1, 5000, "the node to appear on B");
    const first = chat(a.url, "first");
    await until(() => sim.requests.length === 1, 5000, "the first request to reach the node");
    const second = chat(a.url, "second");
    await until(() => a.hub.waiting.size(MODEL) === 1, 5000, "the second request to wait on A");
    // B has no waiter of this account, but the hub has one: refused at once.
    const third = await chat(b.url, "third");
    expect(third.status).toBe(503);
    expect(((await third.json()) as { error: { message: string } }).error.message).toMatch(/1 requests of this account already wait/);
    expect(b.hub.waiting.size(MODEL)).toBe(0);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  });

  it("refuses an auth unchecked on one process once the address's failed handshakes on all of them reach the limit", async () => {
    const [a, b] = await pair({ limits: { handshakeFailures: { burst: 4, perSecond: 0.01 } } });
    // Opened before the failures, on B.
    const early = await connectRaw(b.url);
    // Four failures in a quick burst, spread over both processes (faster than they share their other limits).
    const peers = await Promise.all([a.url, b.url, a.url, b.url].map((url) => connectRaw(url)));
    const answers = await Promise.all(peers.map((p) => authRaw(p, "srp_wrong_key_0000000000")));
    expect(answers.map((m) => m.code)).toEqual(Array(4).fill("auth.unknown_account"));
    const answer = await authRaw(early, KEY);
    expect(answer.code).toBe("session.rate_limited");
    expect(await early.closed).toBe(4429);
  });

  it("gives the token back when a handshake succeeds, so honest sign-ins on several processes never add up to the limit", async () => {
    const [a, b] = await pair({ limits: { handshakeFailures: { burst: 2, perSecond: 0.01 } } });
    for (const url of [a.url, b.url, a.url, b.url, a.url]) {
      const peer = await connectRaw(url);
      expect((await authRaw(peer, KEY)).type).toBe("welcome");
      peer.ws.close();
      await peer.closed;
    }
  });
});
