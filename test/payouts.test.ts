/**
 * Provider payouts over real sockets: a bounty on an under-supplied model is paid from
 * the bounty pool (never by the consumer) up to what the instance's trust allows, and a
 * node that switches model earns less for a while (anti-flapping).
 */
import { afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { generateIdentity, parseAmount, type Identity } from "@srp/core";
import { createHub, SqliteStore, type Hub, type HubOptions } from "@srp/hub";
import { createProvider, MemoryReceiptStore, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const base = (cost: bigint) => (cost * 9000n) / 10000n;

async function network(payouts: HubOptions["payouts"]) {
  const store = new SqliteStore(":memory:");
  cleanups.push(() => store.close());
  const consumer = await store.createAccount({ id: "acct_consumer" });
  const { key } = await store.createApiKey(consumer.id);
  await store.deposit(consumer.id, 5_000_000n, "funds");
  const owner = await store.createAccount({ id: "acct_owner" });
  const { key: ownerKey } = await store.createApiKey(owner.id);
  const hub: Hub = createHub({
    identity: generateIdentity(),
    accounts: store,
    storage: store,
    statementIntervalMs: 0,
    ...(payouts ? { payouts } : {}),
  });
  const { url } = await hub.listen({ port: 0 });
  const sim: Simulator = await startSimulator({ models: [{ id: "model-a" }, { id: "model-b" }] });
  cleanups.push(async () => {
    await hub.close();
    await sim.close();
  });
  // A node keeps its receipt numbering across restarts (SRP-ATT-006): one store per identity.
  const stores = new Map<string, MemoryReceiptStore>();
  const node = async (identity: Identity, ...models: string[]): Promise<Provider> => {
    let receipts = stores.get(identity.id);
    if (!receipts) stores.set(identity.id, (receipts = new MemoryReceiptStore()));
    const p = createProvider({
      hub: url,
      identity,
      receipts,
      account: ownerKey,
      reconnect: false,
      instances: models.map((model) => ({
        backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }),
        model,
        price: { input: "1000000", output: "3000000" },
      })),
    });
    cleanups.push(() => p.close());
    await p.ready();
    return p;
  };
  const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
  const ask = async (model: string) => {
    const r = await openai.chat.completions.create({ model, messages: [{ role: "user", content: "tell me something" }], max_tokens: 16 });
    const u = r.usage as unknown as { receipt_id: string; cost_units: string };
    const res = await fetch(`${url}/v1/receipts/${u.receipt_id}`, { headers: { authorization: `Bearer ${ownerKey}` } });
    const view = (await res.json()) as {
      receipt: { cost: string };
      payout: { credited: string; bounty: string; reduction: string };
    };
    if (!view.receipt) throw new Error(`receipt ${u.receipt_id}: ${res.status} ${JSON.stringify(view)}`);
    return { cost: parseAmount(view.receipt.cost), charged: BigInt(u.cost_units), payout: view.payout };
  };
  return { store, hub, node, ask, owner: owner.id, consumer: consumer.id };
}

describe("bounties", () => {
  it("pay the operator's multiplier from the pool, capped by trust, never charged to the consumer", async () => {
    const net = await network({
      multipliers: { "model-a": 15000 },
      trust: [{ minTenureMs: 0, minHealth: 0, maxMultiplierBps: 13000 }],
      poolFundingBps: 0,
    });
    await net.store.fundBountyPool(1_000_000n, "operator-funding-1");
    await net.node(generateIdentity(), "model-a");
    const earned0 = (await net.store.summary(net.owner)).earned;
    const r = await net.ask("model-a");
    // The consumer pays the receipt's cost, nothing more.
    expect(r.charged).toBe(r.cost);
    // The multiplier asked for 1.5×; trust caps it at 1.3×.
    const bounty = (base(r.cost) * 3000n) / 10000n;
    expect(r.payout).toEqual({ credited: (base(r.cost) + bounty).toString(), bounty: bounty.toString(), reduction: "0" });
    expect((await net.store.summary(net.owner)).earned - earned0).toBe(base(r.cost) + bounty);
    expect(await net.store.ledgerBalance("bounty_pool")).toBe(1_000_000n - bounty);
    expect(await net.store.verify()).toEqual([]);
  });

  it("stop when the pool is empty", async () => {
    const net = await network({
      multipliers: { "model-a": 20000 },
      trust: [{ minTenureMs: 0, minHealth: 0, maxMultiplierBps: 20000 }],
      poolFundingBps: 0,
    });
    await net.node(generateIdentity(), "model-a");
    const r = await net.ask("model-a");
    expect(r.payout).toEqual({ credited: base(r.cost).toString(), bounty: "0", reduction: "0" });
    expect(await net.store.ledgerBalance("bounty_pool")).toBe(0n);
    expect(await net.store.verify()).toEqual([]);
  });
});

describe("anti-flapping", () => {
  it("a node that switches model earns about half for that model at first", async () => {
    const net = await network(undefined);
    const identity = generateIdentity();
    const first = await net.node(identity, "model-a");
    const a = await net.ask("model-a");
    expect(a.payout.reduction).toBe("0");
    await first.close();
    // The same node comes back serving another model instead: a switch.
    await net.node(identity, "model-b");
    const b = await net.ask("model-b");
    const reduction = BigInt(b.payout.reduction);
    // 50 % right after the switch (rounded against the node).
    expect(reduction).toBe((base(b.cost) * 5000n + 9999n) / 10000n);
    expect(BigInt(b.payout.credited)).toBe(base(b.cost) - reduction);
    // The consumer pays the full cost either way; the withheld part stays with the platform.
    expect(b.charged).toBe(b.cost);
    expect(await net.store.verify()).toEqual([]);
  });

  it("a node that adds a model, keeping the ones it served, is not penalised", async () => {
    const net = await network(undefined);
    const identity = generateIdentity();
    const first = await net.node(identity, "model-a");
    await net.ask("model-a");
    await first.close();
    await net.node(identity, "model-a", "model-b");
    const b = await net.ask("model-b");
    expect(b.payout).toEqual({ credited: base(b.cost).toString(), bounty: "0", reduction: "0" });
  });
});
