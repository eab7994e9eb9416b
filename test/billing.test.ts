/**
 * Billing end to end over real sockets: a hub on a SQLite ledger, one provider node
 * serving the model simulator at a known price, the official `openai` SDK (and plain
 * fetch) as the consumer. Every request is reserved at admission, settled from the
 * countersigned receipt or released, and the books must balance after every test.
 */
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import OpenAI from "openai";
import { generateIdentity } from "@srp/core";
import {
  createHub,
  MemoryAccountStore,
  openStore,
  SqliteStore,
  type Hub,
  type HubOptions,
  type SqlStore,
  type SqlStoreOptions,
} from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator, type SimulatorOptions } from "@srp/provider/simulator";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

const MODEL = "sim-llama-3-8b";
/** $1 per 1M input tokens, $3 per 1M output tokens: large enough that a 10 % discount shows. */
const PRICE = { input: "1000000", output: "3000000" };
const ADMIN_TOKEN = "admin-token-for-billing-tests-01";
const SIGNUP = 1_000_000n;
const ask = [{ role: "user" as const, content: "Tell me about spare capacity." }];

// -- helpers -------------------------------------------------------------------

const ceilDiv = (n: bigint, d: bigint) => (n + d - 1n) / d;
/** The receipt cost of a usage at PRICE, computed independently of the hub. */
const costOf = (prompt: number, completion: number) =>
  ceilDiv(BigInt(prompt) * BigInt(PRICE.input) + BigInt(completion) * BigInt(PRICE.output), 1_000_000n);
const providerShare = (cost: bigint) => (cost * 9000n) / 10_000n;
const discountedCharge = (cost: bigint, bps: bigint) => ceilDiv(cost * (10_000n - bps), 10_000n);

interface SrpUsage {
  prompt_tokens: number;
  completion_tokens: number;
  cost: string;
  cost_units: string;
  receipt_id: string | null;
  measured: boolean;
}
interface Money {
  units: string;
  usd: string;
}
interface AccountView {
  id: string;
  balance: Money;
  held: Money;
  prepaid: Money;
  discount_bps: number;
  spent: Money;
  earned: Money;
  deposited: Money;
  refunded: Money;
  requests: number;
}
interface HistoryPage {
  data: {
    id: string;
    kind: string;
    ref: string | null;
    amount: Money;
    held: Money;
    created_at: number;
    memo: Record<string, unknown> | null;
  }[];
  next: string | null;
}
interface Estimate {
  maximum: Money;
  expected: Money;
  discount_bps: number;
  basis: { maximum: { prompt_tokens: number; completion_tokens: number; price_per_million: { input: string; output: string } } };
}
interface Consumer {
  id: string;
  key: string;
  sdk: OpenAI;
}

interface BillingNet {
  store: SqlStore;
  hub: Hub;
  url: string;
  sim: Simulator;
  provider: Provider;
  providerAccount: string;
  /** Job ids the provider started, in order. */
  jobs: string[];
  consumer(name?: string): Promise<Consumer>;
  /** Plain-fetch chat completion. */
  chat(key: string, body: Record<string, unknown>, init?: RequestInit): Promise<Response>;
  get(path: string, key?: string): Promise<Response>;
  admin(path: string, body?: unknown): Promise<Response>;
  receiptCost(jobId: string): Promise<bigint>;
  close(): Promise<void>;
}

const nets: BillingNet[] = [];
afterEach(async () => {
  for (const net of nets.splice(0)) {
    try {
      // The books balance at the end of every test, whatever it did.
      expect(await net.store.verify()).toEqual([]);
    } finally {
      await net.close();
    }
  }
});

async function startNet(
  o: {
    signupCredits?: bigint;
    sim?: SimulatorOptions;
    maxConcurrency?: number;
    hub?: Partial<HubOptions>;
    open?: (options: SqlStoreOptions) => Promise<SqlStore>;
    /** The backend reports usage in every chunk (as vLLM does). */
    continuousUsage?: boolean;
  } = {},
): Promise<BillingNet> {
  const storeOptions: SqlStoreOptions = o.signupCredits === undefined ? {} : { signupCredits: o.signupCredits };
  const store = o.open ? await o.open(storeOptions) : new SqliteStore(":memory:", storeOptions);
  const hub = createHub({
    identity: generateIdentity(),
    accounts: store,
    storage: store,
    adminToken: ADMIN_TOKEN,
    drainTimeoutMs: 2000,
    reconnectAfterMs: 100,
    ...o.hub,
  });
  const { url } = await hub.listen({ port: 0 });
  const sim = await startSimulator(o.sim);
  const providerAccount = await store.createAccount({ name: "provider" });
  const { key: providerKey } = await store.createApiKey(providerAccount.id);
  const provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: providerKey,
    reconnect: false,
    instances: [
      {
        backend: openAICompatibleBackend({ baseUrl: sim.baseUrl, ...(o.continuousUsage ? { continuousUsage: true } : {}) }),
        model: MODEL,
        price: PRICE,
        maxConcurrency: o.maxConcurrency ?? 8,
      },
    ],
  });
  const jobs: string[] = [];
  provider.on("job.start", (j) => jobs.push(j.jobId));
  const net: BillingNet = {
    store,
    hub,
    url,
    sim,
    provider,
    providerAccount: providerAccount.id,
    jobs,
    async consumer(name = "consumer") {
      const account = await store.createAccount({ name });
      const { key } = await store.createApiKey(account.id);
      return { id: account.id, key, sdk: new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 }) };
    },
    chat: (key, body, init = {}) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        ...init,
      }),
    get: (path, key) => fetch(`${url}${path}`, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } }),
    admin: (path, body) =>
      fetch(`${url}/admin/v1/${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    async receiptCost(jobId) {
      const stored = await store.get(jobId);
      if (!stored) throw new Error(`no receipt ${jobId}`);
      return BigInt(stored.receipt.cost);
    },
    async close() {
      await provider.close();
      await hub.close();
      await sim.close();
      await store.close();
    },
  };
  nets.push(net);
  await provider.ready();
  return net;
}

async function estimate(net: BillingNet, body: Record<string, unknown>, key?: string): Promise<Estimate> {
  const res = await fetch(`${net.url}/v1/estimate`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Estimate;
}

async function caught(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

const usageOf = (u: unknown) => u as SrpUsage;

// -- tests ---------------------------------------------------------------------

describe("charging", () => {
  it("charges a non-stream and a streamed completion exactly the receipt cost, splits it 90/10, and the platform pays the signup credits", async () => {
    const net = await startNet();
    const c = await net.consumer();
    // Two accounts so far (provider and consumer), each granted the signup credits by the platform.
    expect(await net.store.ledgerBalance("platform")).toBe(-2n * SIGNUP);

    // Non-stream.
    const r1 = await c.sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 12 });
    const u1 = usageOf(r1.usage);
    expect(u1).toMatchObject({ completion_tokens: 12, measured: true, receipt_id: expect.any(String) });
    const cost1 = await net.receiptCost(u1.receipt_id!);
    expect(cost1).toBe(costOf(u1.prompt_tokens, u1.completion_tokens));
    expect(cost1).toBeGreaterThan(0n);
    expect(BigInt(u1.cost_units)).toBe(cost1); // no discount: charged exactly the receipt's cost
    let s = await net.store.summary(c.id);
    expect(s).toMatchObject({ spent: cost1, balance: SIGNUP - cost1, held: 0n, requests: 1, discountBps: 0 });
    let p = await net.store.summary(net.providerAccount);
    expect(p.earned).toBe(providerShare(cost1));
    expect(p.balance).toBe(SIGNUP + providerShare(cost1));
    // The protocol's take, of which 20 % (the default) funds the bounty pool.
    const fee1 = cost1 - providerShare(cost1);
    expect(await net.store.ledgerBalance("platform")).toBe(-2n * SIGNUP + fee1 - (fee1 * 2000n) / 10000n);
    expect(await net.store.ledgerBalance("bounty_pool")).toBe((fee1 * 2000n) / 10000n);

    // Streamed.
    const stream = await c.sdk.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Stream something." }],
      max_tokens: 9,
      stream: true,
    });
    let last: unknown;
    let text = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      last = chunk;
    }
    expect(text.length).toBeGreaterThan(0);
    const u2 = usageOf((last as { usage: unknown }).usage);
    expect(u2).toMatchObject({ completion_tokens: 9, measured: true });
    const cost2 = await net.receiptCost(u2.receipt_id!);
    expect(cost2).toBe(costOf(u2.prompt_tokens, u2.completion_tokens));
    expect(BigInt(u2.cost_units)).toBe(cost2);

    s = await net.store.summary(c.id);
    expect(s).toMatchObject({ spent: cost1 + cost2, balance: SIGNUP - cost1 - cost2, held: 0n, requests: 2 });
    p = await net.store.summary(net.providerAccount);
    expect(p.earned).toBe(providerShare(cost1) + providerShare(cost2));
    const fee2 = cost2 - providerShare(cost2);
    const pool = (fee1 * 2000n) / 10000n + (fee2 * 2000n) / 10000n;
    expect((await net.store.ledgerBalance("platform")) + (await net.store.ledgerBalance("bounty_pool"))).toBe(-2n * SIGNUP + fee1 + fee2);
    expect(await net.store.ledgerBalance("bounty_pool")).toBe(pool);
    // The same through the account API.
    const view = (await (await net.get("/v1/account", c.key)).json()) as AccountView;
    expect(view).toMatchObject({
      id: c.id,
      balance: { units: String(SIGNUP - cost1 - cost2) },
      spent: { units: String(cost1 + cost2) },
      held: { units: "0" },
      requests: 2,
    });
    expect(await net.store.verify()).toEqual([]);
  });
});

describe("admission", () => {
  it("402 billing.insufficient_credits when the balance cannot cover the maximum; nothing is held and no job reaches the provider", async () => {
    const net = await startNet({ signupCredits: 0n });
    const c = await net.consumer();
    expect((await net.store.summary(c.id)).balance).toBe(0n);

    const e1 = await caught(c.sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 12 }));
    expect(e1.status).toBe(402);
    expect(e1.code).toBe("billing.insufficient_credits");
    const e2 = await caught(
      (async () => {
        const stream = await c.sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 12, stream: true });
        for await (const _ of stream) void _;
      })(),
    );
    expect(e2.status).toBe(402);
    expect(e2.code).toBe("billing.insufficient_credits");

    // A balance short of the maximum by one unit is refused too, and left untouched.
    const body = { model: MODEL, messages: ask, max_tokens: 12 };
    const max = BigInt((await estimate(net, body)).maximum.units);
    expect(await net.store.deposit(c.id, max - 1n, "short-by-one")).toBe(true);
    const e3 = await caught(c.sdk.chat.completions.create(body));
    expect(e3.status).toBe(402);
    expect(e3.code).toBe("billing.insufficient_credits");
    expect(e3.message).toContain(`${max} units`);

    expect(await net.store.summary(c.id)).toMatchObject({ balance: max - 1n, held: 0n, spent: 0n, requests: 0 });
    // The 402 body carries the numbers too.
    const raw = (await (await net.chat(c.key, body)).json()) as { error: { code: string; required: string; available: string } };
    expect(raw.error).toMatchObject({ code: "billing.insufficient_credits", required: max.toString(), available: (max - 1n).toString() });

    // A malformed output limit is the consumer's error (400), before any money moves.
    for (const bad of [2.5, -1, 1e300, "16"]) {
      const r = await net.chat(c.key, { model: MODEL, messages: ask, max_tokens: bad });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("api.invalid_body");
      const est = await fetch(`${net.url}/v1/estimate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages: ask, max_completion_tokens: bad }),
      });
      expect(est.status).toBe(400);
    }
    expect(net.jobs).toEqual([]);
    expect(net.sim.requests).toEqual([]);
    expect(await net.store.verify()).toEqual([]);
  });
});

describe("failed requests are never billed", () => {
  it("provider fails before the first token (stream and non-stream) or mid-stream: balance unchanged, nothing held or spent", async () => {
    // A generous breaker so the three failures do not park the only instance.
    const net = await startNet({ hub: { routingConfig: { breakerFailures: 100 } } });
    const c = await net.consumer();
    const untouched = async () => {
      expect(await net.store.summary(c.id)).toMatchObject({ balance: SIGNUP, held: 0n, spent: 0n, requests: 0 });
      expect((await net.store.summary(net.providerAccount)).earned).toBe(0n);
    };

    net.sim.setFault({ kind: "error_before_first_token" });
    const e1 = await caught(
      (async () => {
        const stream = await c.sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 12, stream: true });
        for await (const _ of stream) void _;
      })(),
    );
    expect(e1.status).toBeGreaterThanOrEqual(500);
    await untouched();

    const e2 = await caught(c.sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 12 }));
    expect(e2.status).toBeGreaterThanOrEqual(500);
    await untouched();

    net.sim.setFault({ kind: "drop_mid_stream", afterTokens: 3 });
    let text = "";
    const e3 = await caught(
      (async () => {
        const stream = await c.sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 20, stream: true });
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
      })(),
    );
    expect(text.length).toBeGreaterThan(0); // content did arrive before the failure
    expect(e3.message).toMatch(/mid-stream/);
    await untouched();
    expect(net.jobs.length).toBeGreaterThanOrEqual(3);

    // The same instance, healthy again, bills normally.
    net.sim.setFault(undefined);
    const ok = await c.sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 5 });
    const cost = await net.receiptCost(usageOf(ok.usage).receipt_id!);
    expect(await net.store.summary(c.id)).toMatchObject({ balance: SIGNUP - cost, held: 0n, spent: cost, requests: 1 });
    expect(await net.store.verify()).toEqual([]);
  });

  it("a consumer abort mid-stream never leaves money held", async () => {
    const net = await startNet({ sim: { tokensPerSecond: 20 } });
    const c = await net.consumer();
    const ended: { code?: string }[] = [];
    net.provider.on("job.end", (o) => ended.push(o));
    const controller = new AbortController();
    const stream = await c.sdk.chat.completions.create(
      { model: MODEL, messages: ask, max_tokens: 200, stream: true },
      { signal: controller.signal },
    );
    let chunks = 0;
    let finished = false;
    await (async () => {
      for await (const chunk of stream) {
        if (chunk.usage) finished = true;
        if (++chunks === 1) {
          // While the stream runs, its worst case is held.
          expect((await net.store.summary(c.id)).held).toBeGreaterThan(0n);
          controller.abort();
        }
      }
    })().catch((e: unknown) => expect(e).toBeInstanceOf(OpenAI.APIUserAbortError));
    // The SDK may hand over a chunk it had already buffered, but the stream never finished.
    expect(chunks).toBeGreaterThanOrEqual(1);
    expect(finished).toBe(false);
    await vi.waitFor(async () => expect((await net.store.summary(c.id)).held).toBe(0n), { timeout: 5000, interval: 20 });
    await vi.waitFor(() => expect(ended).toHaveLength(1), { timeout: 5000 });
    expect(ended[0]!.code).toBe("job.cancelled");
    // Released (nothing spent) or settled (spent what the receipt said); never both, never held.
    const s = await net.store.summary(c.id);
    expect(s.balance + s.spent).toBe(SIGNUP);
    expect(await net.store.verify()).toEqual([]);
  });
});

describe("a consumer who leaves pays for what was delivered", () => {
  it("with a backend that measures usage in every chunk, the cancelled job ends with done and the delivered tokens are billed", async () => {
    const net = await startNet({ sim: { tokensPerSecond: 40 }, continuousUsage: true });
    const c = await net.consumer();
    const ended: { ok: boolean; usage?: { completionTokens: number; measured: boolean }; cost?: string }[] = [];
    net.provider.on("job.end", (o) => ended.push(o));
    const controller = new AbortController();
    const stream = await c.sdk.chat.completions.create(
      { model: MODEL, messages: ask, max_tokens: 200, stream: true },
      { signal: controller.signal },
    );
    let chunks = 0;
    await (async () => {
      for await (const _chunk of stream) {
        if (++chunks === 4) controller.abort();
      }
    })().catch((e: unknown) => expect(e).toBeInstanceOf(OpenAI.APIUserAbortError));
    await vi.waitFor(() => expect(ended).toHaveLength(1), { timeout: 5000 });
    // The node ended the job with done for the tokens it had sent, measured by the backend.
    expect(ended[0]).toMatchObject({ ok: true, usage: { measured: true } });
    const delivered = ended[0]!.usage!.completionTokens;
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThan(200);
    // The hub settled it: the consumer paid the receipt's cost, and nothing stays held.
    await vi.waitFor(async () => expect((await net.store.summary(c.id)).spent).toBe(BigInt(ended[0]!.cost!)), {
      timeout: 5000,
      interval: 20,
    });
    const s = await net.store.summary(c.id);
    expect(s).toMatchObject({ held: 0n, requests: 1, balance: SIGNUP - BigInt(ended[0]!.cost!) });
    expect(BigInt(ended[0]!.cost!)).toBeGreaterThan(0n);
    expect(await net.store.verify()).toEqual([]);
  });
});

describe("prepaid deposits", () => {
  it("a $50 deposit earns 10 % off while the provider still earns 90 % of the full cost; refund is idempotent and bounded by the prepaid balance", async () => {
    const net = await startNet();
    const c = await net.consumer();
    const platform0 = (await net.store.ledgerBalance("platform")) + (await net.store.ledgerBalance("bounty_pool"));

    const dep = await net.admin(`accounts/${c.id}/deposits`, { amount: "50000000", reference: "wire-0001" });
    expect(dep.status).toBe(201);
    expect(await dep.json()).toMatchObject({ posted: true, deposited: { units: "50000000", usd: "50.00" } });
    // The same reference again moves nothing.
    const again = await net.admin(`accounts/${c.id}/deposits`, { amount: "50000000", reference: "wire-0001" });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ posted: false });
    expect((await net.admin("accounts/acct_nobody/deposits", { amount: "1", reference: "x" })).status).toBe(404);

    let view = (await (await net.get("/v1/account", c.key)).json()) as AccountView;
    expect(view).toMatchObject({
      discount_bps: 1000,
      prepaid: { units: "50000000" },
      deposited: { units: "50000000" },
      balance: { units: String(SIGNUP + 50_000_000n) },
    });
    expect((await estimate(net, { model: MODEL, messages: ask, max_tokens: 12 }, c.key)).discount_bps).toBe(1000);

    const r = await c.sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 12 });
    const u = usageOf(r.usage);
    const cost = await net.receiptCost(u.receipt_id!);
    const charge = discountedCharge(cost, 1000n);
    expect(charge).toBeLessThan(cost); // the discount is visible at this price
    expect(BigInt(u.cost_units)).toBe(charge);
    const s = await net.store.summary(c.id);
    expect(s).toMatchObject({ spent: charge, held: 0n, balance: SIGNUP + 50_000_000n - charge });
    expect((await net.store.summary(net.providerAccount)).earned).toBe(providerShare(cost));
    // The discount comes out of the protocol's take (platform and its bounty pool together), never the provider's share.
    expect((await net.store.ledgerBalance("platform")) + (await net.store.ledgerBalance("bounty_pool"))).toBe(
      platform0 + charge - providerShare(cost),
    );

    // Refund: at most the prepaid part (the spend came out of the balance above the deposit).
    const refund = (key: string) =>
      fetch(`${net.url}/v1/account/refund`, { method: "POST", headers: { authorization: `Bearer ${c.key}`, "idempotency-key": key } });
    const first = (await (await refund("refund-0001")).json()) as { refunded: Money; balance: Money };
    expect(BigInt(first.refunded.units)).toBe(s.prepaid);
    expect(BigInt(first.refunded.units)).toBeLessThanOrEqual(50_000_000n);
    expect(BigInt(first.balance.units)).toBe(SIGNUP + 50_000_000n - charge - s.prepaid);
    const retry = (await (await refund("refund-0001")).json()) as { refunded: Money; balance: Money };
    // A retry with the same key answers with the refund it made, and moves nothing more.
    expect(retry.refunded.units).toBe(first.refunded.units);
    expect(retry.balance.units).toBe(first.balance.units);
    // A new key finds nothing left to refund either.
    expect(((await (await refund("refund-0002")).json()) as { refunded: Money }).refunded.units).toBe("0");

    view = (await (await net.get("/v1/account", c.key)).json()) as AccountView;
    expect(view).toMatchObject({
      discount_bps: 0,
      prepaid: { units: "0" },
      refunded: { units: first.refunded.units },
      deposited: { units: "50000000" },
    });
    // What came in from outside went back out: external = -(deposits - refunds).
    expect(await net.store.ledgerBalance("external")).toBe(-(50_000_000n - BigInt(first.refunded.units)));
    expect(await net.store.verify()).toEqual([]);
  });
});

describe("history, pricing and estimates", () => {
  it("GET /v1/account/history pages newest first through signup credit, reserve and settle", async () => {
    // A paced simulator keeps the reserve and the settle in different milliseconds.
    const net = await startNet({ sim: { tokensPerSecond: 200 } });
    const c = await net.consumer();
    await new Promise((r) => setTimeout(r, 5));
    const r = await c.sdk.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 5 });
    const u = usageOf(r.usage);
    const charge = BigInt(u.cost_units);

    const entries: HistoryPage["data"] = [];
    let path: string | null = "/v1/account/history?limit=2";
    let pages = 0;
    while (path !== null) {
      const res = await net.get(path, c.key);
      expect(res.status).toBe(200);
      const page = (await res.json()) as HistoryPage;
      expect(page.data.length).toBeLessThanOrEqual(2);
      entries.push(...page.data);
      pages++;
      path = page.next === null ? null : `/v1/account/history?limit=2&before=${encodeURIComponent(page.next)}`;
    }
    expect(pages).toBe(2);
    expect(entries.map((e) => e.kind)).toEqual(["settle", "reserve", "signup_credit"]);
    for (let i = 1; i < entries.length; i++) expect(entries[i - 1]!.created_at).toBeGreaterThanOrEqual(entries[i]!.created_at);
    expect(new Set(entries.map((e) => e.id)).size).toBe(3);
    const [settle, reserve, signup] = entries as [HistoryPage["data"][0], HistoryPage["data"][0], HistoryPage["data"][0]];
    expect(signup).toMatchObject({ amount: { units: String(SIGNUP) }, held: { units: "0" } });
    const reserved = -BigInt(reserve.amount.units);
    expect(reserved).toBeGreaterThan(charge);
    expect(BigInt(reserve.held.units)).toBe(reserved);
    expect(settle.ref).toBe(reserve.ref);
    expect(settle).toMatchObject({
      amount: { units: String(reserved - charge) },
      held: { units: String(-reserved) },
      memo: { jobId: u.receipt_id, charge: String(charge) },
    });
    // The entries sum to the balance.
    expect(entries.reduce((sum, e) => sum + BigInt(e.amount.units), 0n)).toBe((await net.store.summary(c.id)).balance);

    expect((await net.get("/v1/account/history?limit=0", c.key)).status).toBe(400);
    expect((await net.get("/v1/account/history?before=nonsense", c.key)).status).toBe(400);
  });

  it("GET /v1/pricing lists the model, the split and the tiers; POST /v1/estimate's maximum is exactly what admission reserves", async () => {
    const net = await startNet({ signupCredits: 0n, sim: { tokensPerSecond: 20 } });
    const pricing = (await (await net.get("/v1/pricing")).json()) as {
      split: { provider_bps: number; protocol_bps: number };
      signup_credits: Money | null;
      prepaid_tiers: { min_deposit: Money; discount_bps: number }[];
      models: {
        model: string;
        instances_online: number;
        per_million_tokens: { input: { min: Money; max: Money }; output: { min: Money; max: Money } };
      }[];
    };
    expect(pricing.split).toMatchObject({ provider_bps: 9000, protocol_bps: 1000 });
    expect(pricing.signup_credits).toEqual({ units: "0", usd: "0.00" });
    expect(pricing.prepaid_tiers.map((t) => [t.min_deposit.units, t.discount_bps])).toEqual([
      ["10000000", 500],
      ["50000000", 1000],
      ["200000000", 1500],
    ]);
    expect(pricing.models).toEqual([
      {
        model: MODEL,
        instances_online: 1,
        per_million_tokens: {
          input: { min: { units: PRICE.input, usd: "1.00" }, max: { units: PRICE.input, usd: "1.00" } },
          output: { min: { units: PRICE.output, usd: "3.00" }, max: { units: PRICE.output, usd: "3.00" } },
        },
      },
    ]);

    const body = { model: MODEL, messages: ask, max_tokens: 10 };
    const est = await estimate(net, body);
    const max = BigInt(est.maximum.units);
    expect(BigInt(est.expected.units)).toBeGreaterThan(0n);
    expect(max).toBeGreaterThanOrEqual(BigInt(est.expected.units));
    expect(est.discount_bps).toBe(0);
    expect(est.basis.maximum).toMatchObject({ completion_tokens: 10, price_per_million: PRICE });
    expect(
      (
        await fetch(`${net.url}/v1/estimate`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "nope", messages: [{ role: "user", content: "hi" }] }),
        })
      ).status,
    ).toBe(404);

    // Exactly the maximum is enough; one unit less is not.
    const exact = await net.consumer("exact");
    const short = await net.consumer("short");
    await net.store.deposit(exact.id, max, "exact");
    await net.store.deposit(short.id, max - 1n, "short");
    const refused = await net.chat(short.key, body);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("billing.insufficient_credits");

    // While the (slow) request is in flight, what is held is the estimate's maximum.
    const pending = exact.sdk.chat.completions.create(body);
    await vi.waitFor(async () => expect((await net.store.summary(exact.id)).held).toBeGreaterThan(0n), { timeout: 5000, interval: 10 });
    expect((await net.store.summary(exact.id)).held).toBe(max);
    expect((await net.store.summary(exact.id)).balance).toBe(0n);
    const done = await pending;
    const charge = BigInt(usageOf(done.usage).cost_units);
    expect(charge).toBeLessThanOrEqual(max);
    expect(await net.store.summary(exact.id)).toMatchObject({ held: 0n, balance: max - charge, spent: charge });
    expect(await net.store.summary(short.id)).toMatchObject({ held: 0n, balance: max - 1n, spent: 0n });
    expect(net.jobs).toHaveLength(1);
    expect(await net.store.verify()).toEqual([]);
  });
});

describe("concurrency", () => {
  let pg: TestPostgres | undefined;
  afterAll(async () => {
    await pg?.stop();
  });
  const engines: Array<[string, ((options: SqlStoreOptions) => Promise<SqlStore>) | undefined]> = [
    ["SQLite", undefined],
    [
      "PostgreSQL",
      async (options) => {
        pg ??= await startPostgres();
        return openStore(await createDatabase(pg.url, `billing_${Date.now().toString(36)}`), options);
      },
    ],
  ];
  it.each(engines)(
    "200 simultaneous requests against a balance for 100 worst cases never overspend (%s)",
    { timeout: 60_000 },
    async (_engine, open) => {
      // Latency keeps every request in flight while the others are admitted.
      const net = await startNet({
        signupCredits: 0n,
        sim: { latencyMs: 1000 },
        maxConcurrency: 256,
        hub: { maxConcurrentJobs: 256 },
        ...(open ? { open } : {}),
      });
      const c = await net.consumer();
      const body = { model: MODEL, messages: [{ role: "user", content: "Count to three." }], max_tokens: 4 };
      const max = BigInt((await estimate(net, body)).maximum.units);
      const funds = 100n * max;
      expect(funds).toBeLessThan(10_000_000n); // below the first prepaid tier: no discount
      await net.store.deposit(c.id, funds, "concurrency");

      let lowest = funds;
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const b = await net.store.available(c.id);
          if (b < lowest) lowest = b;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();

      const results = await Promise.all(
        Array.from({ length: 200 }, async () => {
          const res = await net.chat(c.key, body);
          return { status: res.status, body: (await res.json()) as { usage?: SrpUsage; error?: { code: string } } };
        }),
      );
      watching = false;
      await watcher;

      const ok = results.filter((r) => r.status === 200);
      const failed = results.filter((r) => r.status !== 200);
      for (const f of failed) {
        expect(f.status).toBe(402);
        expect(f.body.error?.code).toBe("billing.insufficient_credits");
      }
      // Any 402 means at least 100 reservations were open or settled at that moment.
      expect(ok.length).toBeGreaterThanOrEqual(100);
      expect(failed.length).toBeGreaterThan(0);

      const charges = ok.map((r) => BigInt(r.body.usage!.cost_units));
      const total = charges.reduce((a, b) => a + b, 0n);
      for (const ch of charges) expect(ch).toBeLessThanOrEqual(max);
      const s = await net.store.summary(c.id);
      expect(s).toMatchObject({ spent: total, held: 0n, balance: funds - total, requests: ok.length });
      expect(s.balance).toBeGreaterThanOrEqual(0n);
      expect(lowest).toBeGreaterThanOrEqual(0n);
      // No discount: each charge is its receipt's cost; the provider earned 90 % of each.
      const costs = await Promise.all(ok.map((r) => net.receiptCost(r.body.usage!.receipt_id!)));
      expect(costs).toEqual(charges);
      expect((await net.store.summary(net.providerAccount)).earned).toBe(costs.reduce((a, b) => a + providerShare(b), 0n));
      expect(net.jobs).toHaveLength(ok.length);
      expect(await net.store.verify()).toEqual([]);
    },
  );
});

describe("account API access", () => {
  it("401 without a key; 404 on a hub that keeps no ledger", async () => {
    const net = await startNet();
    expect((await net.get("/v1/account")).status).toBe(401);
    expect((await net.get("/v1/account/history")).status).toBe(401);
    expect((await fetch(`${net.url}/v1/account/refund`, { method: "POST" })).status).toBe(401);
    expect((await net.get("/v1/account", "srp_not_a_real_key_000000")).status).toBe(401);

    const accounts = new MemoryAccountStore();
    accounts.add({ id: "acct_plain", apiKeys: ["srp_plain_consumer_key_0001"] });
    const plain = createHub({ identity: generateIdentity(), accounts, drainTimeoutMs: 500 });
    const { url } = await plain.listen({ port: 0 });
    try {
      expect(plain.ledger).toBeUndefined();
      const res = await fetch(`${url}/v1/account`, { headers: { authorization: "Bearer srp_plain_consumer_key_0001" } });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("api.not_found");
      expect((await fetch(`${url}/v1/account/history`, { headers: { authorization: "Bearer srp_plain_consumer_key_0001" } })).status).toBe(
        404,
      );
      expect((await fetch(`${url}/v1/account`)).status).toBe(401);
      const pricing = (await (await fetch(`${url}/v1/pricing`)).json()) as { signup_credits: unknown; prepaid_tiers: unknown[] };
      expect(pricing).toMatchObject({ signup_credits: null, prepaid_tiers: [] });
    } finally {
      await plain.close();
    }
  });
});
