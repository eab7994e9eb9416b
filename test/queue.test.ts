/**
 * Waiting for a slot (SRP-CON-064..069) end to end: a hub on a SQLite ledger, one node
 * whose only instance takes one job at a time, the model simulator behind it. Requests
 * that find the instance busy wait in a first-in, first-out queue instead of a 503; a
 * full queue, a wait that runs out, and a consumer who leaves while waiting are refused or
 * released without any money staying held.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateIdentity } from "@srp/core";
import { createHub, SqliteStore, type Hub, type HubOptions } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator, type SimulatorOptions } from "@srp/provider/simulator";

const MODEL = "sim-llama-3-8b";
const PRICE = { input: "1000000", output: "3000000" };
const CREDITS = 100_000_000n;

interface QueueNet {
  store: SqliteStore;
  hub: Hub;
  url: string;
  sim: Simulator;
  provider: Provider;
  consumer(): Promise<{ id: string; key: string }>;
  chat(key: string, marker: string, init?: { headers?: Record<string, string>; signal?: AbortSignal }): Promise<Response>;
  close(): Promise<void>;
}

const nets: QueueNet[] = [];
afterEach(async () => {
  for (const net of nets.splice(0)) {
    try {
      expect(await net.store.verify()).toEqual([]);
    } finally {
      await net.close();
    }
  }
});

async function startNet(o: { sim?: SimulatorOptions; hub?: Partial<HubOptions> } = {}): Promise<QueueNet> {
  const store = new SqliteStore(":memory:", { signupCredits: CREDITS });
  const hub = createHub({
    identity: generateIdentity(),
    accounts: store,
    storage: store,
    drainTimeoutMs: 1000,
    reconnectAfterMs: 100,
    cancelGraceMs: 300,
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
    instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 1 }],
  });
  const net: QueueNet = {
    store,
    hub,
    url,
    sim,
    provider,
    async consumer() {
      const account = await store.createAccount({ name: "consumer" });
      const { key } = await store.createApiKey(account.id);
      return { id: account.id, key };
    },
    chat: (key, marker, init = {}) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...init.headers },
        body: JSON.stringify({ model: MODEL, max_tokens: 6, messages: [{ role: "user", content: marker }] }),
        ...(init.signal ? { signal: init.signal } : {}),
      }),
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

/** The marker (user message) of each request the node's backend received, in order. */
const markers = (sim: Simulator) => sim.requests.map((r) => (r.messages as { content: string }[])[0]!.content);

/** Occupies the instance's only slot with a request the simulator never answers; returns its abort. */
async function blockSlot(net: QueueNet, key: string): Promise<{ abort(): void; done: Promise<unknown> }> {
  net.sim.setFault({ kind: "hang" }, 1);
  const ac = new AbortController();
  const done = net.chat(key, "blocker", { signal: ac.signal }).catch((e: unknown) => e);
  await vi.waitFor(() => expect(markers(net.sim)).toContain("blocker"), { timeout: 5000, interval: 10 });
  return { abort: () => ac.abort(), done };
}

describe("waiting for a slot", () => {
  it("serves 20 concurrent requests through one slot, in arrival order, each billed once", async () => {
    const net = await startNet({ sim: { latencyMs: 20 } });
    const c = await net.consumer();
    const responses: Promise<Response>[] = [];
    for (let i = 0; i < 20; i++) {
      responses.push(net.chat(c.key, `req-${i}`));
      // The hub has taken request i in (waiting, or received by the node) before i + 1 is sent: arrival order is known.
      await vi.waitFor(() => expect(net.hub.waiting.size(MODEL) + net.sim.requests.length).toBeGreaterThanOrEqual(i + 1), {
        timeout: 5000,
        interval: 2,
      });
    }
    // At least some of them waited: the instance takes one job at a time.
    const answers = await Promise.all(responses);
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as {
      model: string;
      usage: { cost_units: string; receipt_id: string | null };
    }[];
    expect(markers(net.sim)).toEqual(Array.from({ length: 20 }, (_, i) => `req-${i}`));
    const shown = bodies.reduce((sum, b) => sum + BigInt(b.usage.cost_units), 0n);
    expect(bodies.every((b) => b.usage.receipt_id !== null && BigInt(b.usage.cost_units) > 0n)).toBe(true);
    expect(new Set(bodies.map((b) => b.usage.receipt_id)).size).toBe(20);
    const s = await net.store.summary(c.id);
    expect(s).toMatchObject({ requests: 20, spent: shown, balance: CREDITS - shown, held: 0n });
    const history = await net.store.history(c.id, 200);
    expect(history.filter((h) => h.kind === "settle")).toHaveLength(20);
    expect(net.hub.waiting.size(MODEL)).toBe(0);
  });

  it("a full queue refuses at once with 503 job.no_capacity and Retry-After; nothing stays held", async () => {
    const net = await startNet({ hub: { queue: { maxWaiters: 2 } } });
    const c = await net.consumer();
    const blocker = await blockSlot(net, c.key);
    const ac = new AbortController();
    const waiting = [
      net.chat(c.key, "w1", { signal: ac.signal }).catch((e: unknown) => e),
      net.chat(c.key, "w2", { signal: ac.signal }).catch((e: unknown) => e),
    ];
    await vi.waitFor(() => expect(net.hub.waiting.size(MODEL)).toBe(2), { timeout: 5000, interval: 5 });
    const full = await net.chat(c.key, "w3");
    expect(full.status).toBe(503);
    expect(Number(full.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await full.json()) as { error: { code: string } }).error.code).toBe("job.no_capacity");
    ac.abort();
    blocker.abort();
    await Promise.all([...waiting, blocker.done]);
    await vi.waitFor(async () => expect((await net.store.summary(c.id)).held).toBe(0n), { timeout: 5000, interval: 20 });
    expect(net.hub.waiting.size(MODEL)).toBe(0);
    expect(markers(net.sim)).toEqual(["blocker"]);
  });

  it("one account cannot fill a model's queue: past its share it is refused at once, while another account still waits", async () => {
    const net = await startNet({ hub: { queue: { maxWaitersPerAccount: 2 } } });
    const a = await net.consumer();
    const b = await net.consumer();
    const blocker = await blockSlot(net, a.key);
    const ac = new AbortController();
    const waiting = [
      net.chat(a.key, "a1", { signal: ac.signal }).catch((e: unknown) => e),
      net.chat(a.key, "a2", { signal: ac.signal }).catch((e: unknown) => e),
    ];
    await vi.waitFor(() => expect(net.hub.waiting.size(MODEL)).toBe(2), { timeout: 5000, interval: 5 });
    const third = await net.chat(a.key, "a3");
    expect(third.status).toBe(503);
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe("job.no_capacity");
    // Another account's request still waits for the slot (and gets it once it frees).
    const other = net.chat(b.key, "b1");
    await vi.waitFor(() => expect(net.hub.waiting.size(MODEL)).toBe(3), { timeout: 5000, interval: 5 });
    ac.abort();
    await Promise.all(waiting);
    blocker.abort();
    await blocker.done;
    expect((await other).status).toBe(200);
    expect(markers(net.sim)).toEqual(["blocker", "b1"]);
    await vi.waitFor(async () => expect((await net.store.summary(a.id)).held).toBe(0n), { timeout: 5000, interval: 20 });
    expect((await net.store.summary(a.id)).requests).toBe(0);
  });

  it("a waiting request is never routed to a dearer instance that came online after its reservation (SRP-BIL-003)", async () => {
    const net = await startNet();
    const c = await net.consumer();
    const blocker = await blockSlot(net, c.key);
    const waiter = net.chat(c.key, "waiter");
    await vi.waitFor(() => expect(net.hub.waiting.size(MODEL)).toBe(1), { timeout: 5000, interval: 5 });
    // A second instance of the model comes online, free but dearer than what the waiting request reserved.
    const dearSim = await startSimulator();
    const account = await net.store.createAccount({ name: "dear provider" });
    const dear = createProvider({
      hub: net.url,
      identity: generateIdentity(),
      account: (await net.store.createApiKey(account.id)).key,
      reconnect: false,
      instances: [
        {
          backend: openAICompatibleBackend({ baseUrl: dearSim.baseUrl }),
          model: MODEL,
          price: { input: "2000000", output: "6000000" },
          maxConcurrency: 1,
        },
      ],
    });
    try {
      await dear.ready();
      await vi.waitFor(() => expect(net.hub.router.views(MODEL)).toHaveLength(2), { timeout: 5000, interval: 5 });
      // The waiter was woken (an instance came online) and retries each second: give it more than one retry.
      await new Promise((r) => setTimeout(r, 1300));
      expect(dearSim.requests).toHaveLength(0);
      expect(net.hub.waiting.size(MODEL)).toBe(1);
      blocker.abort(); // the reserved-price instance frees: the waiter gets it
      await blocker.done;
      const res = await waiter;
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        usage: { prompt_tokens: number; completion_tokens: number; cost_units: string; receipt_id: string };
      };
      expect((await net.store.get(body.usage.receipt_id))!.receipt.nodeId).toBe(net.provider.nodeId);
      const atReservedPrice =
        (BigInt(body.usage.prompt_tokens) * 1_000_000n + BigInt(body.usage.completion_tokens) * 3_000_000n + 999_999n) / 1_000_000n;
      expect(BigInt(body.usage.cost_units)).toBe(atReservedPrice);
      expect(dearSim.requests).toHaveLength(0);
      expect(markers(net.sim)).toEqual(["blocker", "waiter"]);
    } finally {
      await dear.close();
      await dearSim.close();
    }
  });

  it("a wait that runs out (x-srp-queue-timeout-ms) gets 503 job.no_capacity with Retry-After; 0 means no waiting", async () => {
    const net = await startNet();
    const c = await net.consumer();
    const blocker = await blockSlot(net, c.key);
    const timedOut = await net.chat(c.key, "short", { headers: { "x-srp-queue-timeout-ms": "300" } });
    expect(timedOut.status).toBe(503);
    expect(timedOut.headers.get("retry-after")).not.toBeNull();
    expect(((await timedOut.json()) as { error: { code: string } }).error.code).toBe("job.no_capacity");
    const noWait = await net.chat(c.key, "none", { headers: { "x-srp-queue-timeout-ms": "0" } });
    expect(noWait.status).toBe(503);
    expect(net.hub.waiting.size(MODEL)).toBe(0);
    // Only the blocker's worst case is held; the refused requests' reservations were released.
    const held = (await net.store.summary(c.id)).held;
    blocker.abort();
    await blocker.done;
    expect(held).toBeGreaterThan(0n);
    await vi.waitFor(async () => expect((await net.store.summary(c.id)).held).toBe(0n), { timeout: 5000, interval: 20 });
    expect(markers(net.sim)).toEqual(["blocker"]);
    expect((await net.store.summary(c.id)).requests).toBe(0);
  });

  it("a consumer who leaves while waiting leaves the queue and its reservation is released; the next in line is served", async () => {
    const net = await startNet();
    const c = await net.consumer();
    const blocker = await blockSlot(net, c.key);
    const heldByBlocker = (await net.store.summary(c.id)).held;
    const ac = new AbortController();
    const leaving = net.chat(c.key, "leaver", { signal: ac.signal }).catch((e: unknown) => e);
    await vi.waitFor(() => expect(net.hub.waiting.size(MODEL)).toBe(1), { timeout: 5000, interval: 5 });
    const staying = net.chat(c.key, "stayer");
    await vi.waitFor(() => expect(net.hub.waiting.size(MODEL)).toBe(2), { timeout: 5000, interval: 5 });
    expect((await net.store.summary(c.id)).held).toBeGreaterThan(heldByBlocker);
    ac.abort();
    expect(await leaving).toBeInstanceOf(Error);
    await vi.waitFor(() => expect(net.hub.waiting.size(MODEL)).toBe(1), { timeout: 5000, interval: 5 });
    blocker.abort(); // frees the slot: the one still waiting gets it
    const served = await staying;
    expect(served.status).toBe(200);
    const cost = BigInt(((await served.json()) as { usage: { cost_units: string } }).usage.cost_units);
    expect(markers(net.sim)).toEqual(["blocker", "stayer"]);
    await vi.waitFor(
      async () => expect(await net.store.summary(c.id)).toMatchObject({ held: 0n, requests: 1, spent: cost, balance: CREDITS - cost }),
      { timeout: 5000, interval: 20 },
    );
  });
});
