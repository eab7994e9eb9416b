/**
 * Faults of the engines a hub shares (docs/deployment.md, "When a part fails"), with real
 * servers: PostgreSQL stopped and started again under a billing hub (admission answers 503
 * `billing.unavailable` with `Retry-After`, no money moves, nodes stay connected, service
 * resumes by itself: SRP-BIL-017), and Redis restarted empty under two hub processes that
 * share a PostgreSQL ledger (each keeps serving its own nodes and forwarding to the nodes it
 * knows, both re-announce when Redis is back, nothing is billed twice). The ledger is
 * verified after every scenario.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity, type Identity } from "@srp/core";
import { createHub, openStore, type Hub, type HubOptions, type SqlStore } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator, type SimulatorOptions } from "@srp/provider/simulator";
import { until } from "./helpers.js";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";

const MODEL = "sim-llama-3-8b";
const PRICE = { input: "1000000", output: "3000000" };
const FAST = { heartbeatMs: 100, deadAfterMs: 600, resyncMs: 1000, loadFlushMs: 10 };

interface Usage {
  completion_tokens: number;
  cost_units: string;
  receipt_id: string | null;
}
interface AccountView {
  held: { units: string };
  spent: { units: string };
  balance: { units: string };
  requests: number;
}

/** Waits until `check` resolves true, polling (for conditions that need I/O). */
async function untilAsync(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Everything started by a test, stopped in reverse order afterwards. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A billing hub on its own connection to the database `db`. */
async function billingHub(
  db: string,
  options: Partial<HubOptions> & { identity: Identity },
): Promise<{ hub: Hub; store: SqlStore; url: string }> {
  const store = await openStore(db);
  const hub = createHub({ accounts: store, storage: store, reconnectAfterMs: 100, drainTimeoutMs: 2000, ...options });
  const { url } = await hub.listen({ port: 0 });
  cleanups.push(
    () => store.close(),
    () => hub.close(),
  );
  return { hub, store, url };
}

/** A node serving the simulator, bound to the account of `key`, reconnecting quickly. */
async function node(hubUrl: string, key: string, sim: Simulator): Promise<Provider> {
  const p = createProvider({
    hub: hubUrl,
    identity: generateIdentity(),
    account: key,
    reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 8 }],
  });
  cleanups.push(() => p.close());
  await p.ready();
  return p;
}

async function simulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const sim = await startSimulator(options);
  cleanups.push(() => sim.close());
  return sim;
}

/** A plain-fetch chat completion. */
function chat(url: string, key: string, body: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 5, ...body }),
  });
}

async function account(url: string, key: string): Promise<AccountView> {
  const r = await fetch(`${url}/v1/account`, { headers: { authorization: `Bearer ${key}` } });
  expect(r.status).toBe(200);
  return (await r.json()) as AccountView;
}

describe("PostgreSQL unreachable", () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    // Durable: the server is stopped as a crash would stop it, and what it committed must survive.
    pg = await startPostgres({ durable: true });
  });
  afterEach(async () => {
    await pg.up(); // a test that failed while the server was down leaves it up for the next
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it("refuses at admission with 503 billing.unavailable and Retry-After, moves no money, keeps its nodes, and resumes by itself", async () => {
    const db = await createDatabase(pg.url, "faults_admission");
    const { hub, store, url } = await billingHub(db, { identity: generateIdentity() });
    const errors: string[] = [];
    hub.on("storage.error", (e) => errors.push(e.what + ": " + e.message));
    const sim = await simulator();
    const providerAccount = await store.createAccount({ name: "provider" });
    const provider = await node(url, (await store.createApiKey(providerAccount.id)).key, sim);
    let disconnects = 0;
    provider.on("disconnected", () => disconnects++);
    const consumer = await store.createAccount({ name: "consumer" });
    const { key } = await store.createApiKey(consumer.id);

    const before = await chat(url, key);
    expect(before.status).toBe(200);
    const spent = BigInt(((await before.json()) as { usage: Usage }).usage.cost_units);
    expect(spent).toBeGreaterThan(0n);
    const served = sim.requests.length;

    await pg.down();
    for (const body of [{}, { stream: true }]) {
      const refused = await chat(url, key, body);
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("billing.unavailable");
    }
    // The Anthropic surface refuses the same way, in its own shape.
    const messages = await fetch(`${url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: MODEL, max_tokens: 5, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(messages.status).toBe(503);
    expect(messages.headers.get("retry-after")).not.toBeNull();
    expect(((await messages.json()) as { error: { code: string } }).error.code).toBe("billing.unavailable");
    expect(errors.some((e) => e.startsWith("authenticate"))).toBe(true);
    // Nothing reached the node, which is still connected.
    expect(sim.requests.length).toBe(served);
    expect(hub.sessions().map((s) => s.nodeId)).toEqual([provider.nodeId]);

    await pg.up();
    // No restart: the pool opens new connections once the server answers again.
    let status = 0;
    await untilAsync(
      async () => {
        const r = await chat(url, key);
        status = r.status;
        if (r.status === 200) return true;
        expect(r.status).toBe(503);
        return false;
      },
      20_000,
      "a request to be served again",
    );
    expect(status).toBe(200);
    expect(disconnects).toBe(0);
    expect(hub.sessions().length).toBe(1);

    // Two requests served, each billed once; the refused ones moved nothing.
    await untilAsync(async () => (await account(url, key)).requests === 2, 10_000, "both settlements");
    const view = await account(url, key);
    expect(view.held.units).toBe("0");
    expect(BigInt(view.spent.units)).toBe(spent * 2n);
    expect(await store.verify()).toEqual([]);
  }, 90_000);

  it("answers a job whose receipt cannot be recorded as unbilled, and bills it nowhere once the database is back", async () => {
    const db = await createDatabase(pg.url, "faults_settlement");
    const { hub, store, url } = await billingHub(db, { identity: generateIdentity() });
    const sim = await simulator({ tokensPerSecond: 40 });
    const providerAccount = await store.createAccount({ name: "provider" });
    await node(url, (await store.createApiKey(providerAccount.id)).key, sim);
    const consumer = await store.createAccount({ name: "consumer" });
    const { key } = await store.createApiKey(consumer.id);
    const start = await account(url, key);

    // The database goes away while the job streams: admitted and reserved before, settled after.
    const response = await chat(url, key, { stream: true, max_tokens: 30, stream_options: { include_usage: true } });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value, { stream: true });
    await pg.down();
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value, { stream: true });
    const usage = text
      .split("\n")
      .filter((l) => l.startsWith("data: {"))
      .map((l) => JSON.parse(l.slice(6)) as { usage?: Usage })
      .find((c) => c.usage)?.usage;
    // The answer says what was billed: nothing, and there is no stored receipt to point at.
    expect(usage).toMatchObject({ completion_tokens: 0, cost_units: "0", receipt_id: null });

    await pg.up();
    // The reservation that could not be released while the database was down is released once it is back.
    await untilAsync(
      async () => (await account(url, key).catch(() => undefined))?.held.units === "0",
      30_000,
      "the reservation to be released",
    );
    const end = await account(url, key);
    expect(end.balance.units).toBe(start.balance.units);
    expect(end.spent.units).toBe("0");
    expect(await store.verify()).toEqual([]);
    expect(hub.sessions().length).toBe(1);
  }, 90_000);
});

describe.skipIf(skipWithoutRedis())("Redis restarted", () => {
  let pg: TestPostgres;
  let redis: TestRedis;
  beforeAll(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  });
  afterAll(async () => {
    await Promise.all([pg?.stop(), redis?.stop()]);
  });

  it("keeps serving local and known remote nodes while Redis is down, resynchronizes when it is back, and bills each request once", async () => {
    const db = await createDatabase(pg.url, "faults_redis");
    const identity = generateIdentity();
    const cluster = { redisUrl: redis.url, timings: FAST };
    const a = await billingHub(db, { identity, cluster });
    const b = await billingHub(db, { identity, cluster });
    await Promise.all([a.hub.ready(), b.hub.ready()]);
    // Slow enough that a long answer is still streaming when Redis comes back.
    const sim = await simulator({ tokensPerSecond: 40 });
    const providerAccount = await a.store.createAccount({ name: "provider" });
    const providerKey = (await a.store.createApiKey(providerAccount.id)).key;
    const consumer = await a.store.createAccount({ name: "consumer" });
    const { key } = await a.store.createApiKey(consumer.id);

    await node(a.url, providerKey, sim);
    await until(() => b.hub.router.count(MODEL) === 1, 5000, "A's node on B");
    const charged: bigint[] = [];
    const receipts = new Set<string>();
    const serve = async (url: string) => {
      const r = await chat(url, key);
      expect(r.status).toBe(200);
      const usage = ((await r.json()) as { usage: Usage }).usage;
      expect(usage.receipt_id).not.toBeNull();
      receipts.add(usage.receipt_id!);
      charged.push(BigInt(usage.cost_units));
    };
    await serve(b.url);

    await redis.down();
    // Each process serves its own node, and B still forwards to A's node over their direct link.
    await serve(a.url);
    await serve(b.url);
    // A long answer from A's node through B, still running when Redis comes back.
    const long = chat(b.url, key, { max_tokens: 120 }).then(async (r) => {
      expect(r.status).toBe(200);
      return ((await r.json()) as { usage: Usage }).usage;
    });
    await until(() => sim.requests.length === 4, 5000, "the long request to start");
    // A node joins B during the outage: it serves from B at once.
    await node(b.url, providerKey, sim);
    await until(() => b.hub.router.count(MODEL) === 2, 5000, "the new node on B");
    await serve(b.url);
    await serve(a.url);
    expect(a.hub.router.count(MODEL)).toBe(1);

    // Neither process forgets a node it knew while the other registers again in the emptied Redis.
    const forgot: string[] = [];
    const watch = setInterval(() => {
      const counts = [a.hub.router.count(MODEL), b.hub.router.count(MODEL)];
      if (counts[0]! < 1 || counts[1]! < 2) forgot.push(counts.join("/"));
    }, 5);
    await redis.up();
    // Back (and empty): both processes register again, and A learns of the node that joined B meanwhile.
    await until(() => a.hub.router.count(MODEL) === 2 && b.hub.router.count(MODEL) === 2, 10_000, "both nodes on both processes");
    // The job B forwarded to A before Redis came back was not lost in the resynchronization.
    const longUsage = await long;
    expect(longUsage).toMatchObject({ completion_tokens: 120 });
    receipts.add(longUsage.receipt_id!);
    charged.push(BigInt(longUsage.cost_units));
    // Held for longer than a process is taken for dead: neither process forgets the other's nodes.
    await new Promise((r) => setTimeout(r, FAST.deadAfterMs + FAST.resyncMs));
    clearInterval(watch);
    expect([a.hub.router.count(MODEL), b.hub.router.count(MODEL)]).toEqual([2, 2]);
    expect(forgot).toEqual([]);
    for (let i = 0; i < 4; i++) await serve(i % 2 ? a.url : b.url);

    // Each request billed once, under one receipt.
    expect(receipts.size).toBe(charged.length);
    await untilAsync(async () => (await account(a.url, key)).requests >= charged.length, 10_000, "every settlement");
    const view = await account(a.url, key);
    expect(view.requests).toBe(charged.length);
    expect(view.held.units).toBe("0");
    expect(BigInt(view.spent.units)).toBe(charged.reduce((x, y) => x + y, 0n));
    expect(await a.store.verify()).toEqual([]);
  }, 90_000);
});
