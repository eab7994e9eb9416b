/**
 * API keys' spending controls end to end (SRP-CON-083..087), over real sockets with the
 * official `openai` SDK: budgets held with the money (never passed by 200 concurrent
 * requests, on SQLite and on PostgreSQL, and across three hub processes sharing PostgreSQL
 * and Redis), allowed models, expiry, and rate limits with OpenAI's headers and a
 * `Retry-After` the SDK honours. The books are verified after every test.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { generateIdentity, type Identity } from "@srp/core";
import { createHub, openStore, SqliteStore, type Hub, type HubOptions, type SqlStore } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator, type SimulatorOptions } from "@srp/provider/simulator";
import { NO_POLICY, type KeyPolicy } from "../packages/srp-hub/src/keys/policy.js";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const MODEL = "sim-llama-3-8b";
const OTHER_MODEL = "sim-other-model";
/** $1 per 1M input tokens, $3 per 1M output tokens. */
const PRICE = { input: "1000000", output: "3000000" };
const ask = [{ role: "user" as const, content: "Tell me about spare capacity." }];
const FAST = { heartbeatMs: 100, deadAfterMs: 600, resyncMs: 1000, loadFlushMs: 10 };
/** A model that takes a moment to answer: concurrent requests overlap. */
const SLOW: SimulatorOptions = { latencyMs: 400 };

interface KeyNet {
  store: SqlStore;
  hubs: Hub[];
  urls: string[];
  account: string;
  /** A new key of the consumer account with `policy`. */
  key(policy: Partial<KeyPolicy>): Promise<{ id: string; secret: string }>;
  chat(url: string, secret: string, body: Record<string, unknown>): Promise<Response>;
  /** What a key holds and has spent, all time (the store's own account of it). */
  spend(keyId: string): Promise<{ reserved: bigint; spent: bigint; requests: number }>;
  close(): Promise<void>;
}

const nets: KeyNet[] = [];
afterEach(async () => {
  for (const net of nets.splice(0)) {
    try {
      expect(await net.store.verify()).toEqual([]);
    } finally {
      await net.close();
    }
  }
});

let pg: TestPostgres | undefined;
let redis: TestRedis | undefined;
afterAll(async () => {
  await redis?.stop();
  await pg?.stop();
});

async function startKeyNet(
  o: { store?: () => Promise<SqlStore>; hubs?: number; cluster?: boolean; sim?: SimulatorOptions; maxConcurrency?: number } = {},
): Promise<KeyNet> {
  const dir = mkdtempSync(join(tmpdir(), "srp-keys-"));
  const store = o.store ? await o.store() : new SqliteStore(join(dir, "hub.sqlite"));
  const identity: Identity = generateIdentity();
  const hubs: Hub[] = [];
  const urls: string[] = [];
  const stores: SqlStore[] = [];
  for (let i = 0; i < (o.hubs ?? 1); i++) {
    // Each process has its own connection to the shared database.
    const own = i === 0 ? store : await o.store!();
    if (i > 0) stores.push(own);
    const options: HubOptions = {
      identity,
      accounts: own,
      storage: own,
      drainTimeoutMs: 2000,
      ...(o.cluster ? { cluster: { redisUrl: redis!.url, timings: FAST } } : {}),
    };
    const hub = createHub(options);
    hubs.push(hub);
    urls.push((await hub.listen({ port: 0 })).url);
  }
  await Promise.all(hubs.map((h) => h.ready()));
  const sim: Simulator = await startSimulator(o.sim);
  const providerAccount = await store.createAccount({ name: "provider" });
  const { key: providerKey } = await store.createApiKey(providerAccount.id);
  const providers: Provider[] = [];
  for (const model of [MODEL, OTHER_MODEL]) {
    const provider = createProvider({
      hub: urls[0]!,
      identity: generateIdentity(),
      account: providerKey,
      reconnect: false,
      instances: [
        {
          backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }),
          model,
          price: PRICE,
          maxConcurrency: o.maxConcurrency ?? 256,
        },
      ],
    });
    providers.push(provider);
    await provider.ready();
  }
  // Every process knows both models before the test starts.
  for (const hub of hubs)
    for (const model of [MODEL, OTHER_MODEL])
      for (let t = 0; hub.router.count(model) === 0; t++) {
        if (t > 200) throw new Error(`${model} never reached a hub process`);
        await new Promise((r) => setTimeout(r, 25));
      }
  const account = (await store.createAccount({ name: "consumer" })).id;
  await store.deposit(account, 1_000_000_000n, "key-controls-test");
  const net: KeyNet = {
    store,
    hubs,
    urls,
    account,
    async key(policy) {
      const { key, record } = await store.createApiKey(account, "test key", { ...NO_POLICY, ...policy });
      return { id: record.keyId, secret: key };
    },
    chat: (url, secret, body) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      }),
    async spend(keyId) {
      const s = (await store.keySpend([keyId], Date.now())).get(keyId)!;
      return { reserved: s.held.total, spent: s.spent.total, requests: s.requests };
    },
    async close() {
      for (const p of providers) await p.close();
      for (const h of hubs) await h.close();
      await sim.close();
      for (const s of stores) await s.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  nets.push(net);
  return net;
}

interface Usage {
  cost_units: string;
}

/** Sends `n` requests at once (spread over `urls`); answers each status, error code and charge. */
async function flood(net: KeyNet, secret: string, n: number, body: Record<string, unknown>) {
  const answers = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const r = await net.chat(net.urls[i % net.urls.length]!, secret, body);
      const j = (await r.json()) as { usage?: Usage; error?: { code: string } };
      return { status: r.status, code: j.error?.code, charged: j.usage ? BigInt(j.usage.cost_units) : 0n };
    }),
  );
  return answers;
}

/** The worst case the hub reserves for `body` (from its estimate endpoint). */
async function worstCase(net: KeyNet, secret: string, body: Record<string, unknown>): Promise<bigint> {
  const r = await fetch(`${net.urls[0]}/v1/estimate`, {
    method: "POST",
    headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(r.status).toBe(200);
  return BigInt(((await r.json()) as { maximum: { units: string } }).maximum.units);
}

/**
 * 200 concurrent requests against a budget that covers about 40 worst cases: never passed,
 * every refusal a 402 with the key's code. The net's model answers slowly (`SLOW`), so the
 * requests are all in flight together and their worst cases meet the cap.
 */
async function budgetFlood(net: KeyNet): Promise<void> {
  const body = { model: MODEL, messages: ask, max_tokens: 8 };
  const probe = await net.key({});
  const max = await worstCase(net, probe.secret, body);
  const cap = max * 40n + max / 2n;
  const key = await net.key({ budget: { total: cap, day: null, month: null } });
  const answers = await flood(net, key.secret, 200, body);
  const ok = answers.filter((a) => a.status === 200);
  const refused = answers.filter((a) => a.status !== 200);
  expect(refused.length).toBeGreaterThan(0);
  expect(refused.every((a) => a.status === 402 && a.code === "api.key_budget_exceeded")).toBe(true);
  // At least the worst cases the cap covers were admitted; the charges never pass it.
  expect(ok.length).toBeGreaterThanOrEqual(40);
  const charged = ok.reduce((a, b) => a + b.charged, 0n);
  expect(charged).toBeLessThanOrEqual(cap);
  // The key's account of it: nothing held any more, spent what the consumers were shown.
  expect(await net.spend(key.id)).toEqual({ reserved: 0n, spent: charged, requests: ok.length });
}

describe("API key budgets", () => {
  it("200 concurrent requests never pass a key's budget (SQLite)", async () => {
    await budgetFlood(await startKeyNet({ sim: SLOW }));
  });

  it("200 concurrent requests never pass a key's budget (PostgreSQL, batched reservations)", async () => {
    pg ??= await startPostgres();
    const url = await createDatabase(pg.url, `keys_${Date.now().toString(36)}`);
    await budgetFlood(await startKeyNet({ store: () => openStore(url), sim: SLOW }));
  });

  it("a daily budget of one worst case admits one request, then refuses with the period named", async () => {
    const net = await startKeyNet();
    const body = { model: MODEL, messages: ask, max_tokens: 8 };
    const probe = await net.key({});
    const max = await worstCase(net, probe.secret, body);
    const key = await net.key({ budget: { total: null, day: max, month: null } });
    // A request for a model nobody serves is refused before anything is held.
    const unknown = await net.chat(net.urls[0]!, key.secret, { ...body, model: "no-such-model" });
    expect(unknown.status).toBe(404);
    const first = await net.chat(net.urls[0]!, key.secret, body);
    expect(first.status).toBe(200);
    const charged = BigInt(((await first.json()) as { usage: Usage }).usage.cost_units);
    expect(charged).toBeGreaterThan(0n);
    // What was spent plus a worst case no longer fits the day's cap.
    const second = await net.chat(net.urls[0]!, key.secret, body);
    expect(second.status).toBe(402);
    const e = (await second.json()) as { error: { code: string; message: string } };
    expect(e.error.code).toBe("api.key_budget_exceeded");
    expect(e.error.message).toMatch(/daily budget/);
    expect(await net.spend(key.id)).toEqual({ reserved: 0n, spent: charged, requests: 1 });
  });
});

describe("API key models and expiry", () => {
  it("a key may use only its models, and an expired key is refused", async () => {
    const net = await startKeyNet();
    const key = await net.key({ models: [MODEL] });
    const sdk = new OpenAI({ baseURL: `${net.urls[0]}/v1`, apiKey: key.secret, maxRetries: 0 });
    const ok = await sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 4 });
    expect(ok.choices[0]!.message.content).toMatch(/\w/);
    const other = await net.chat(net.urls[0]!, key.secret, { model: OTHER_MODEL, messages: ask, max_tokens: 4 });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe("api.model_not_allowed");
    // Fallbacks count too: a list naming a model the key may not use is refused.
    const listed = await net.chat(net.urls[0]!, key.secret, { models: [MODEL, OTHER_MODEL], messages: ask, max_tokens: 4 });
    expect(listed.status).toBe(403);

    const expired = await net.key({ expiresAt: Date.now() - 1000 });
    const r = await net.chat(net.urls[0]!, expired.secret, { model: MODEL, messages: ask, max_tokens: 4 });
    expect(r.status).toBe(401);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("api.key_expired");
    const account = await fetch(`${net.urls[0]}/v1/account`, { headers: { authorization: `Bearer ${expired.secret}` } });
    expect(account.status).toBe(401);
  });
});

describe("who may manage keys", () => {
  it("a key held to spending controls may not create, change or revoke keys, and no key may change itself", async () => {
    const net = await startKeyNet();
    const owner = await net.key({});
    const limited = await net.key({ budget: { total: 1_000_000n, day: null, month: null } });
    const call = (secret: string, method: string, path: string, body?: unknown) =>
      fetch(`${net.urls[0]}/v1/account/keys${path}`, {
        method,
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    // The limited key may read, not write: lifting its own budget is refused.
    expect((await call(limited.secret, "GET", "")).status).toBe(200);
    for (const [method, path, body] of [
      ["POST", "", { label: "escape" }],
      ["PATCH", `/${limited.id}`, { budget: null }],
      ["DELETE", `/${owner.id}`, undefined],
    ] as const) {
      const r = await call(limited.secret, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("api.forbidden");
    }
    // An unrestricted key may not change itself (an expiry now would lock the account out)...
    const self = await call(owner.secret, "PATCH", `/${owner.id}`, { expires_at: Date.now() });
    expect(self.status).toBe(403);
    // ...but changes the limited key.
    const lifted = await call(owner.secret, "PATCH", `/${limited.id}`, { budget: null });
    expect(lifted.status).toBe(200);
    expect(((await lifted.json()) as { budget: { total: unknown } }).budget.total).toBeNull();
  });
});

describe("API key rate limits", () => {
  it("a request whose worst case alone passes the tokens per minute is refused with no Retry-After", async () => {
    const net = await startKeyNet();
    const key = await net.key({ limits: { rpm: null, tpm: 1000, concurrency: null } });
    const r = await net.chat(net.urls[0]!, key.secret, { model: MODEL, messages: ask, max_tokens: 2000 });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBeNull();
    expect(r.headers.get("x-should-retry")).toBe("false");
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("api.rate_limited");
    // A small one fits.
    const small = await net.chat(net.urls[0]!, key.secret, { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
    expect(small.status).toBe(200);
    expect(small.headers.get("x-ratelimit-limit-tokens")).toBe("1000");
    await small.json();
  });

  it("requests per minute: the next request gets 429 with Retry-After and OpenAI's headers", async () => {
    const net = await startKeyNet();
    const key = await net.key({ limits: { rpm: 3, tpm: 1_000_000, concurrency: null } });
    const body = { model: MODEL, messages: ask, max_tokens: 4 };
    for (let i = 0; i < 3; i++) {
      const r = await net.chat(net.urls[0]!, key.secret, body);
      expect(r.status).toBe(200);
      expect(r.headers.get("x-ratelimit-limit-requests")).toBe("3");
      expect(r.headers.get("x-ratelimit-remaining-requests")).toBe(String(2 - i));
      expect(r.headers.get("x-ratelimit-limit-tokens")).toBe("1000000");
      expect(r.headers.get("x-ratelimit-reset-requests")).toMatch(/^[0-9.]+(ms|s)|^[0-9]+m[0-9.]+s$/);
      await r.json();
    }
    const over = await net.chat(net.urls[0]!, key.secret, body);
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(over.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    const e = (await over.json()) as { error: { code: string } };
    expect(e.error.code).toBe("api.rate_limited");
    // Refused before any money moved.
    expect((await net.spend(key.id)).reserved).toBe(0n);
  });

  it("concurrency: the openai SDK waits the Retry-After and its retry is served", async () => {
    // Slow answers: 600 ms before the first token, then 10 tokens a second.
    const net = await startKeyNet({ sim: { latencyMs: 600, tokensPerSecond: 10 } });
    const key = await net.key({ limits: { rpm: null, tpm: null, concurrency: 1 } });
    let attempts = 0;
    const counting: typeof fetch = (input, init) => {
      attempts++;
      return fetch(input, init);
    };
    const sdk = new OpenAI({ baseURL: `${net.urls[0]}/v1`, apiKey: key.secret, maxRetries: 3, fetch: counting });
    const [a, b] = await Promise.all([
      sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 4 }),
      new Promise((r) => setTimeout(r, 100)).then(() => sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 4 })),
    ]);
    expect(a.choices[0]!.message.content).toMatch(/\w/);
    expect(b.choices[0]!.message.content).toMatch(/\w/);
    // The second was refused while the first ran, and served on a retry.
    expect(attempts).toBeGreaterThanOrEqual(3);
    // A streamed request holds its slot until the stream ends, then frees it.
    const stream = await sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8, stream: true });
    const busy = await net.chat(net.urls[0]!, key.secret, { model: MODEL, messages: ask, max_tokens: 4 });
    expect(busy.status).toBe(429);
    await busy.json();
    for await (const _ of stream) {
      // drain
    }
    const free = await net.chat(net.urls[0]!, key.secret, { model: MODEL, messages: ask, max_tokens: 4 });
    expect(free.status).toBe(200);
    await free.json();
  });
});

describe.skipIf(skipWithoutRedis())("API key controls across three hub processes (PostgreSQL + Redis)", () => {
  it("a budget and a rate limit hold for the hub as a whole", async () => {
    pg ??= await startPostgres();
    redis ??= await startRedis();
    const url = await createDatabase(pg.url, `keys_cluster_${Date.now().toString(36)}`);
    const net = await startKeyNet({ store: () => openStore(url), hubs: 3, cluster: true, sim: SLOW });
    await budgetFlood(net);
    // 5 requests per minute for the hub: the sixth, wherever it lands, is refused.
    const key = await net.key({ limits: { rpm: 5, tpm: null, concurrency: null } });
    const answers = await flood(net, key.secret, 9, { model: MODEL, messages: ask, max_tokens: 4 });
    expect(answers.filter((a) => a.status === 200)).toHaveLength(5);
    expect(answers.filter((a) => a.status === 429 && a.code === "api.rate_limited")).toHaveLength(4);
  });
});
