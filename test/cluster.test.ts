/**
 * Several hub processes as one hub (docs/deployment.md), in one test process: hubs that
 * share an identity and a real Redis server route requests to nodes connected to any of
 * them, over their direct links; a node that reconnects to another process replaces its
 * session there. The child-process, HAProxy and PostgreSQL scenarios are in
 * `cluster-processes.test.ts`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { generateIdentity } from "@srp/core";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { KEY, MODEL, startNet, until, type Net } from "./helpers.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";

const FAST = { heartbeatMs: 100, deadAfterMs: 600, resyncMs: 1000, loadFlushMs: 10 };

describe.skipIf(skipWithoutRedis())("hub processes sharing Redis", () => {
  let redis: TestRedis;
  const nets: Net[] = [];
  const extra: Provider[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    await Promise.all(extra.splice(0).map((p) => p.close()));
    for (const n of nets.splice(0).reverse()) await n.close();
  });

  /** Two hubs with one identity in one cluster. */
  async function pair(): Promise<[Net, Net]> {
    const identity = generateIdentity();
    const a = await startNet({ identity, cluster: { redisUrl: redis.url, timings: FAST } });
    const b = await startNet({ identity, cluster: { redisUrl: redis.url, timings: FAST } });
    nets.push(a, b);
    await Promise.all([a.hub.ready(), b.hub.ready()]);
    return [a, b];
  }

  const sdk = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
  const catalog = async (url: string) =>
    ((await (await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { data: { id: string }[] }).data;

  it("serves a request reaching one process with a node connected to another, streamed and not", async () => {
    const [a, b] = await pair();
    const sim = await a.sim();
    await a.addProvider(sim);
    // B learns of A's node from the directory.
    await until(() => b.hub.router.count(MODEL) === 1, 5000, "the node to appear on B");
    expect((await catalog(b.url)).map((m) => m.id)).toContain(MODEL);
    expect(b.hub.sessions()).toEqual([]);

    const whole = await sdk(b.url).chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 5 });
    expect(whole.choices[0]!.message.content).toMatch(/\w/);
    expect(whole.usage).toMatchObject({ completion_tokens: 5, measured: true });

    const stream = await sdk(b.url).chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
      stream: true,
    });
    let text = "";
    let usage: Record<string, unknown> | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? "";
      if (c.usage) usage = c.usage as unknown as Record<string, unknown>;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(usage).toMatchObject({ completion_tokens: 8, measured: true });
    // The process holding the node countersigned and recorded both receipts.
    expect(await a.hub.receipts.get(usage!.receipt_id as string)).toBeDefined();
    expect(sim.requests.length).toBe(2);

    // B's observations went to A, which wrote the instance's routing state and published it back to B.
    const [key] = a.hub.router.all().map((l) => l.key);
    const successes = (h: { window: { success?: number }[] } | undefined) => (h?.window ?? []).reduce((n, b) => n + (b.success ?? 0), 0);
    await until(() => successes(a.hub.router.store.get(key!)) === 2, 5000, "A to record B's two outcomes");
    await until(() => successes(b.hub.router.store.get(key!)) === 2, 5000, "B to receive A's state");
    expect(b.hub.router.store.get(key!)!.throughput.samples).toBe(a.hub.router.store.get(key!)!.throughput.samples);
  });

  it("ends the old session of a node that reconnects to another process (no ghost)", async () => {
    const [a, b] = await pair();
    const sim = await a.sim();
    const identity = generateIdentity();
    const node = (url: string) =>
      createProvider({
        hub: url,
        identity,
        account: KEY,
        reconnect: { initialDelayMs: 5000, maxDelayMs: 5000 },
        instances: [
          { backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: { input: "100000", output: "300000" } },
        ],
      });
    const first = node(a.url);
    extra.push(first);
    await first.ready();
    await until(() => b.hub.router.count(MODEL) === 1, 5000, "the node on B's router");
    const closed: unknown[] = [];
    a.hub.on("session.close", (s) => closed.push(s));
    const second = node(b.url);
    extra.push(second);
    await second.ready();
    // Welcomed only once the old session on A was out of A's routing (SRP-HS-017): no process routes to it after the welcome.
    expect(a.hub.router.all().filter((l) => l.session.local)).toEqual([]);
    await until(() => closed.length > 0, 5000, "A to end the ghost session");
    expect(closed).toEqual([expect.objectContaining({ nodeId: identity.id, reason: "session.replaced" })]);
    expect(a.hub.sessions()).toEqual([]);
    expect(b.hub.sessions().map((s) => s.nodeId)).toEqual([identity.id]);
    // Both processes route to the one session, on B.
    await until(() => a.hub.router.count(MODEL) === 1 && b.hub.router.count(MODEL) === 1, 5000, "one instance on both routers");
    const answer = await sdk(a.url).chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
    expect(answer.usage).toMatchObject({ completion_tokens: 3 });
  });

  it("a revocation closes the revoked node's session on every process before it is answered", async () => {
    const identity = generateIdentity();
    const a = await startNet({ identity, cluster: { redisUrl: redis.url, timings: FAST } });
    // One account store for both, as processes sharing one database have.
    const b = await startNet({ identity, accounts: a.accounts, cluster: { redisUrl: redis.url, timings: FAST } });
    nets.push(a, b);
    await Promise.all([a.hub.ready(), b.hub.ready()]);
    await until(() => a.hub.router.cluster !== undefined && b.hub.router.cluster !== undefined, 5000, "both joined");
    const nodeKey = "srp_node_key_to_revoke_00001";
    const account = a.accounts.add({ id: "acct_node", apiKeys: [nodeKey] });
    const sim = await a.sim();
    const node = createProvider({
      hub: a.url,
      identity: generateIdentity(),
      account: nodeKey,
      reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
      instances: [
        { backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: { input: "100000", output: "300000" } },
      ],
    });
    extra.push(node);
    await node.ready();
    await until(() => b.hub.router.count(MODEL) === 1, 5000, "the node on B");
    const [key] = await a.accounts.listApiKeys(account.id);
    await a.accounts.revokeApiKey(key!.keyId);
    // B handles the revocation (as the admin API's DELETE would): A's session is closed when it returns.
    await b.hub.revalidateSessions();
    expect(a.hub.sessions()).toEqual([]);
    await until(() => b.hub.router.count(MODEL) === 0, 5000, "B to forget the node");
  });

  it("forgets the nodes of a process that stops, and fails over to a node it still has", async () => {
    const [a, b] = await pair();
    const sim = await b.sim();
    await a.addProvider(sim);
    await b.addProvider(sim);
    await until(() => a.hub.router.count(MODEL) === 2 && b.hub.router.count(MODEL) === 2, 5000, "two instances on both");
    await a.close();
    nets.splice(nets.indexOf(a), 1);
    await until(() => b.hub.router.count(MODEL) === 1, 5000, "B to forget A's node");
    const answer = await sdk(b.url).chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
    expect(answer.usage).toMatchObject({ completion_tokens: 3 });
  });
});
