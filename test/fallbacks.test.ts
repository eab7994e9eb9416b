/**
 * Fallbacks across models (SRP-CON-058..063) end to end: a hub on a SQLite ledger, two
 * nodes serving two models at different prices (model simulators behind them), consumers
 * on chat completions and Messages naming `models`. The model that served is the one the
 * answer names and the one whose price is billed; admission reserves the dearest listed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity, resolveModelAlias } from "@srp/core";
import { createHub, SqliteStore, type Hub } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";

const CHEAP = "sim-cheap-1";
const DEAR = "sim-dear-1";
const BUSY = "sim-busy-1";
const CHEAP_PRICE = { input: "100000", output: "200000" };
const DEAR_PRICE = { input: "5000000", output: "9000000" };
const ask = [{ role: "user", content: "hi" }];

let store: SqliteStore;
let hub: Hub;
let url: string;
const sims: Simulator[] = [];
const providers: Provider[] = [];
let cheapSim: Simulator;
let aliasNodes: Provider[] = [];

async function node(
  model: string,
  price: { input: string; output: string },
  upstream = model,
  slow?: { latencyMs: number; maxConcurrency: number },
): Promise<{ sim: Simulator; provider: Provider }> {
  const sim = await startSimulator({ models: [{ id: upstream }], ...(slow ? { latencyMs: slow.latencyMs } : {}) });
  sims.push(sim);
  const account = await store.createAccount({ name: `provider-${model}` });
  const { key } = await store.createApiKey(account.id);
  const provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: key,
    reconnect: false,
    instances: [
      {
        backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }),
        model,
        upstreamModel: upstream,
        price,
        ...(slow ? { maxConcurrency: slow.maxConcurrency } : {}),
      },
    ],
  });
  providers.push(provider);
  await provider.ready();
  return { sim, provider };
}

async function consumer(credits = 100_000_000n): Promise<{ id: string; key: string }> {
  const account = await store.createAccount({ name: "consumer" });
  const { key } = await store.createApiKey(account.id);
  await store.deposit(account.id, credits, `test-${account.id}`);
  return { id: account.id, key };
}

const post = (path: string, key: string, body: Record<string, unknown>) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** The receipt's cost, from the hub's receipt book. */
async function receiptCost(id: string): Promise<bigint> {
  const stored = await store.get(id);
  return BigInt(stored!.receipt.cost);
}

beforeAll(async () => {
  store = new SqliteStore(":memory:", { signupCredits: 0n });
  hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, drainTimeoutMs: 1000, reconnectAfterMs: 100 });
  ({ url } = await hub.listen({ port: 0 }));
  cheapSim = (await node(CHEAP, CHEAP_PRICE)).sim;
  await node(DEAR, DEAR_PRICE);
  // One model offered under two of its aliases by two nodes.
  aliasNodes = [(await node("llama3.1:8b", CHEAP_PRICE)).provider, (await node("meta-llama/Llama-3.1-8B-Instruct", CHEAP_PRICE)).provider];
  // One slot, held for 1.5 s by each request.
  await node(BUSY, CHEAP_PRICE, BUSY, { latencyMs: 1500, maxConcurrency: 1 });
});

afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await hub.close();
  await Promise.all(sims.map((s) => s.close()));
  expect(await store.verify()).toEqual([]);
  await store.close();
});

describe("fallbacks across models", () => {
  it("a first model nobody serves falls back to the next; the answer and x-srp-model name the server, billed at its price", async () => {
    const c = await consumer();
    const res = await post("/v1/chat/completions", c.key, { model: "no-such-model", models: [CHEAP, DEAR], max_tokens: 5, messages: ask });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-srp-model")).toBe(CHEAP);
    const body = (await res.json()) as {
      model: string;
      usage: { prompt_tokens: number; completion_tokens: number; cost_units: string; receipt_id: string };
    };
    expect(body.model).toBe(CHEAP);
    const cost = await receiptCost(body.usage.receipt_id);
    const atCheap = (BigInt(body.usage.prompt_tokens) * 100_000n + BigInt(body.usage.completion_tokens) * 200_000n + 999_999n) / 1_000_000n;
    expect(cost).toBe(atCheap);
    expect(BigInt(body.usage.cost_units)).toBe(cost);
    expect(await store.summary(c.id)).toMatchObject({ spent: cost, held: 0n, requests: 1 });
    // The node never sees `models`.
    expect(cheapSim.requests.at(-1)).not.toHaveProperty("models");
  });

  it("models without model: the first listed is the model; model, when given, is tried first", async () => {
    const c = await consumer();
    const first = (await (await post("/v1/chat/completions", c.key, { models: [DEAR, CHEAP], max_tokens: 3, messages: ask })).json()) as {
      model: string;
    };
    expect(first.model).toBe(DEAR);
    const given = (await (
      await post("/v1/chat/completions", c.key, { model: CHEAP, models: [DEAR], max_tokens: 3, messages: ask })
    ).json()) as { model: string };
    expect(given.model).toBe(CHEAP);
  });

  it("a first model whose instances all fail before output falls back to the next", async () => {
    const c = await consumer();
    cheapSim.setFault({ kind: "status", status: 500 }, 3);
    const res = await post("/v1/chat/completions", c.key, { models: [CHEAP, DEAR], max_tokens: 3, messages: ask });
    cheapSim.setFault(undefined);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string }).model).toBe(DEAR);
  });

  it("a busy first model falls through to the next at once; only the last model waits for a slot (SRP-CON-066)", async () => {
    const c = await consumer();
    const holding = post("/v1/chat/completions", c.key, { model: BUSY, messages: ask, max_tokens: 4 });
    await new Promise((r) => setTimeout(r, 300)); // the first request holds the one slot
    const res = await post("/v1/chat/completions", c.key, { models: [BUSY, CHEAP], messages: ask, max_tokens: 4 });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string }).model).toBe(CHEAP);
    expect(hub.waiting.size(BUSY)).toBe(0);
    expect((await holding).status).toBe(200);
    // Named last, the busy model is waited for: the request queues until the holding one ends.
    const again = post("/v1/chat/completions", c.key, { model: BUSY, messages: ask, max_tokens: 4 });
    await new Promise((r) => setTimeout(r, 300));
    const last = post("/v1/chat/completions", c.key, { models: ["sim-nobody-serves-1", BUSY], messages: ask, max_tokens: 4 });
    await new Promise((r) => setTimeout(r, 300));
    expect(hub.waiting.size(BUSY)).toBe(1);
    const answer = await last;
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { model: string }).model).toBe(BUSY);
    expect((await again).status).toBe(200);
  });

  it("a list ending in a model nobody serves waits on the last model it can reach (SRP-CON-066)", async () => {
    const c = await consumer();
    const holding = post("/v1/chat/completions", c.key, { model: BUSY, messages: ask, max_tokens: 4 });
    await new Promise((r) => setTimeout(r, 300)); // the first request holds the one slot
    const res = post("/v1/chat/completions", c.key, { models: [BUSY, "sim-nobody-serves-2"], messages: ask, max_tokens: 4 });
    await new Promise((r) => setTimeout(r, 300));
    expect(hub.waiting.size(BUSY)).toBe(1);
    const answer = await res;
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { model: string }).model).toBe(BUSY);
    expect((await holding).status).toBe(200);
  });

  it("provider.allow_fallbacks false tries the first model only", async () => {
    const c = await consumer();
    const res = await post("/v1/chat/completions", c.key, {
      model: "no-such-model",
      models: [CHEAP],
      provider: { allow_fallbacks: false },
      max_tokens: 3,
      messages: ask,
    });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("job.unknown_model");
  });

  it("works on the Messages surface", async () => {
    const c = await consumer();
    const res = await post("/v1/messages", c.key, { model: "no-such-model", models: [CHEAP], max_tokens: 3, messages: ask });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string }).model).toBe(CHEAP);
  });

  it("refuses a bad models list with 400 api.invalid_body", async () => {
    const c = await consumer();
    for (const models of [[], "x", [1], Array.from({ length: 9 }, (_, i) => `m${i}`)]) {
      const res = await post("/v1/chat/completions", c.key, { model: CHEAP, models, max_tokens: 3, messages: ask });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("api.invalid_body");
    }
  });

  it("admission reserves the dearest listed model: an account that affords the cheap one only is refused up front", async () => {
    const estimate = async (model: string) =>
      BigInt(
        (
          (await (
            await fetch(`${url}/v1/estimate`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ model, max_tokens: 50, messages: ask }),
            })
          ).json()) as { maximum: { units: string } }
        ).maximum.units,
      );
    const cheapMax = await estimate(CHEAP);
    const dearMax = await estimate(DEAR);
    expect(dearMax).toBeGreaterThan(cheapMax);
    const c = await consumer(cheapMax + 1n);
    const refused = await post("/v1/chat/completions", c.key, { models: [CHEAP, DEAR], max_tokens: 50, messages: ask });
    expect(refused.status).toBe(402);
    const error = ((await refused.json()) as { error: { code: string; required: string } }).error;
    expect(error.code).toBe("billing.insufficient_credits");
    expect(BigInt(error.required)).toBe(dearMax);
    const alone = await post("/v1/chat/completions", c.key, { models: [CHEAP], max_tokens: 50, messages: ask });
    expect(alone.status).toBe(200);
  });

  it("any alias of a model reaches every instance of it, whatever name each node offered", async () => {
    const c = await consumer();
    const alias = "llama-3.1-8b-instruct";
    expect(resolveModelAlias(alias)).toBe(resolveModelAlias("llama3.1:8b"));
    for (const p of aliasNodes) {
      const res = await post("/v1/chat/completions", c.key, { model: alias, provider: { only: [p.nodeId] }, max_tokens: 3, messages: ask });
      expect(res.status).toBe(200);
      const receipt = (await store.get(((await res.json()) as { usage: { receipt_id: string } }).usage.receipt_id))!.receipt;
      expect(receipt.nodeId).toBe(p.nodeId);
    }
  });
});
