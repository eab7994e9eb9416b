/**
 * Batches kept in PostgreSQL, shared by the processes of one hub (docs/deployment.md): a
 * batch admitted and run by hub A is read on hub B, the caps count every process's batches,
 * and the batch of a process that stopped is ended by another's reconcile: its unfinished
 * items fail unbilled, nothing runs twice, and the ledger verifies. Real PostgreSQL, real
 * hubs, providers and simulators.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { formatUsdc, generateIdentity } from "@srp/core";
import { BatchObject, checkConsumerBody } from "@srp/core/schema";
import { createHub, openStore, type BatchRecord, type Hub, type SqlStore } from "@srp/hub";
import { openPostgres } from "@srp/hub/storage";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

const FAST = "sim-fast";
const HANG = "sim-hang";
const PRICE = { input: "100000", output: "300000" };

interface View {
  id: string;
  status: string;
  charged_units: string;
  counts: Record<string, number>;
  items: { index: number; status: string; status_code: number | null; cost_units: string; receipt_id: string | null }[];
}

let pg: TestPostgres;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  pg = await startPostgres();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
afterAll(async () => {
  await pg?.stop();
});

/** A hub process on `store`, listening. */
async function hubOn(
  store: SqlStore,
  batches: { concurrency?: number; maxKeptPerAccount?: number } = {},
): Promise<{ hub: Hub; url: string }> {
  const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, drainTimeoutMs: 500, batches });
  const { url } = await hub.listen({ port: 0 });
  cleanups.push(() => hub.close());
  return { hub, url };
}

async function simulator(models: string[]): Promise<Simulator> {
  const sim = await startSimulator({ models: models.map((id) => ({ id })) });
  cleanups.push(() => sim.close());
  return sim;
}

/** A provider on `url` serving each model on its simulator. */
async function provider(url: string, store: SqlStore, served: [string, Simulator][]): Promise<Provider> {
  const owner = await store.createAccount({ name: "provider" });
  const p = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: (await store.createApiKey(owner.id)).key,
    reconnect: false,
    instances: served.map(([model, sim]) => ({ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model, price: PRICE })),
  });
  cleanups.push(() => p.close());
  await p.ready();
  return p;
}

const chat = (model: string, i: number) => ({
  custom_id: `item-${i}`,
  url: "/v1/chat/completions",
  body: { model, max_tokens: 8, messages: [{ role: "user", content: `question ${i}` }] },
});

const submit = (url: string, key: string, requests: unknown[]) =>
  fetch(`${url}/v1/batch`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ requests }),
  });

async function read(url: string, id: string, key: string): Promise<View> {
  const res = await fetch(`${url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  const view = (await res.json()) as View;
  expect(checkConsumerBody(BatchObject, view)).toBeUndefined();
  return view;
}

/** Reads the batch on `url` until `done` holds of it. */
async function until(url: string, id: string, key: string, done: (v: View) => boolean): Promise<View> {
  for (let i = 0; i < 1000; i++) {
    const view = await read(url, id, key);
    if (done(view)) return view;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`batch ${id} never reached the state waited for`);
}

const ended = (v: View) => v.status === "completed" || v.status === "failed";

describe("batches kept in PostgreSQL", () => {
  it("are read on any hub process, and the caps count every process's batches", async () => {
    const db = await createDatabase(pg.url, "batch_read_anywhere");
    const [storeA, storeB] = [await openStore(db), await openStore(db)];
    cleanups.push(
      () => storeA.close(),
      () => storeB.close(),
    );
    const a = await hubOn(storeA, { maxKeptPerAccount: 2 });
    const b = await hubOn(storeB, { maxKeptPerAccount: 2 });
    const sim = await simulator([FAST]);
    await provider(a.url, storeA, [[FAST, sim]]);
    const consumer = await storeA.createAccount({ name: "consumer" });
    const { key } = await storeA.createApiKey(consumer.id);
    const before = await storeA.summary(consumer.id);

    const res = await submit(a.url, key, [chat(FAST, 0), chat(FAST, 1), chat(FAST, 2)]);
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as View;
    // B runs nothing of it and has no provider, yet answers for it from the database.
    const onB = await until(b.url, id, key, ended);
    expect(onB.status).toBe("completed");
    expect(onB.counts).toEqual({ total: 3, queued: 0, running: 0, completed: 3, failed: 0 });
    expect(onB).toEqual(await read(a.url, id, key));
    const charged = onB.items.reduce((s, i) => s + BigInt(i.cost_units), 0n);
    expect(charged).toBeGreaterThan(0n);
    expect(onB.charged_units).toBe(charged.toString());
    for (const item of onB.items) expect(await storeB.get(item.receipt_id!)).toBeDefined();
    expect(sim.requests.length).toBe(3);

    // Another account does not see it on either process; no key: 401.
    const other = await storeB.createAccount({ name: "other" });
    const otherKey = (await storeB.createApiKey(other.id)).key;
    for (const url of [a.url, b.url])
      expect((await fetch(`${url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${otherKey}` } })).status).toBe(404);
    expect((await fetch(`${b.url}/v1/jobs/${id}`)).status).toBe(401);

    // The account's second batch goes to A; a third, sent to B, is over the cap of 2 kept.
    const second = await submit(a.url, key, [chat(FAST, 3)]);
    expect(second.status).toBe(202);
    await until(b.url, ((await second.json()) as View).id, key, ended);
    const third = await submit(b.url, key, [chat(FAST, 4)]);
    expect(third.status).toBe(429);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe("api.rate_limited");

    const after = await storeB.summary(consumer.id);
    expect(after.held).toBe(0n);
    expect(before.balance - after.balance).toBe(after.spent);
    expect(await storeB.verify()).toEqual([]);
  });

  it("ends the batch of a process that stopped: unfinished items fail unbilled, nothing runs twice", async () => {
    const db = await createDatabase(pg.url, "batch_process_stopped");
    const storeA = await openStore(db);
    cleanups.push(() => storeA.close());
    // One item at a time: the first answers, the second hangs, the third waits its turn.
    const a = await hubOn(storeA, { concurrency: 1 });
    const fast = await simulator([FAST]);
    const hang = await simulator([HANG]);
    hang.setFault({ kind: "hang" });
    await provider(a.url, storeA, [
      [FAST, fast],
      [HANG, hang],
    ]);
    const consumer = await storeA.createAccount({ name: "consumer" });
    const { key } = await storeA.createApiKey(consumer.id);
    const before = await storeA.summary(consumer.id);
    const res = await submit(a.url, key, [chat(FAST, 0), chat(HANG, 1), chat(FAST, 2)]);
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as View;
    const running = await until(a.url, id, key, (v) => v.items[1]!.status === "running");
    expect(running.items.map((i) => i.status)).toEqual(["completed", "running", "queued"]);
    const billed = BigInt(running.items[0]!.cost_units);
    expect(billed).toBeGreaterThan(0n);
    const processA = storeA.processId;

    // A stops as a crashed process would: its database connections are gone, and it was last
    // seen long ago (its heartbeat row is stale).
    await storeA.close();
    const admin = openPostgres(db);
    cleanups.push(() => admin.close());
    expect(await admin.run("UPDATE hub_processes SET seen_at = 0 WHERE id = ?", [processA])).toBe(1);

    // A new process B reconciles at start: it releases A's reservations and ends A's batch.
    const storeB = await openStore(db);
    cleanups.push(() => storeB.close());
    const b = await hubOn(storeB);
    const view = await until(b.url, id, key, ended);
    expect(view.status).toBe("completed");
    expect(view.counts).toEqual({ total: 3, queued: 0, running: 0, completed: 1, failed: 2 });
    expect(view.items.map((i) => [i.status, i.status_code, i.cost_units])).toEqual([
      ["completed", 200, billed.toString()],
      ["failed", 503, "0"],
      ["failed", 503, "0"],
    ]);
    expect(view.charged_units).toBe(billed.toString());
    // Each item that ran, ran once; the third never ran.
    expect(fast.requests.length).toBe(1);
    expect(hang.requests.length).toBe(1);
    const after = await storeB.summary(consumer.id);
    expect(after.held).toBe(0n);
    expect(before.balance - after.balance).toBe(billed);
    expect(after.spent).toBe(billed);
    expect(await storeB.verify()).toEqual([]);

    // A reconcile again ends nothing more; the batch is kept until its retention passes.
    expect(await storeB.batches.reconcile({ retentionMs: 60_000, now: Date.now() + 120_000 })).toEqual([]);
    expect(await read(b.url, id, key)).toEqual(view);
  });

  it("refuses the stopped holder's late writes once another process has taken its batch over", async () => {
    const db = await createDatabase(pg.url, "batch_late_writes");
    const [storeA, storeB] = [await openStore(db), await openStore(db)];
    cleanups.push(
      () => storeA.close(),
      () => storeB.close(),
    );
    const account = await storeA.createAccount({ name: "consumer" });
    const before = await storeA.summary(account.id);
    const reserved = await storeA.reserveMany(account.id, [1000n, 2000n], 1000);
    if (!reserved.ok) throw new Error("not reserved");
    const record: BatchRecord = {
      view: queued("batch_late", 2, 3000n),
      accountId: account.id,
      keyed: true,
      reservationIds: reserved.reservationIds,
    };
    await storeA.batches.add(record);
    expect((await storeB.batches.kept(account.id)).account).toBe(1);

    // Two processes find A stopped at once (their clocks a minute and more ahead): one takes the batch over.
    const later = Date.now() + 120_000;
    const [one, two] = await Promise.all([
      storeB.batches.reconcile({ retentionMs: 60_000, now: later }),
      storeB.batches.reconcile({ retentionMs: 60_000, now: later }),
    ]);
    expect([...one, ...two]).toEqual(["batch_late"]);
    const taken = (await storeB.batches.get("batch_late", later))!.view;
    expect(taken.status).toBe("failed");
    expect(taken.counts).toEqual({ total: 2, queued: 0, running: 0, completed: 0, failed: 2 });
    expect(taken.expires_at).toBe(Math.floor((later + 60_000) / 1000));

    // A, not dead after all, tries to write its item as running: refused, the ended state stands.
    record.view.status = "running";
    record.view.items[0]!.status = "running";
    expect(await storeA.batches.update(record.view)).toBe(false);
    expect((await storeB.batches.get("batch_late", later))!.view).toEqual(taken);
    const after = await storeA.summary(account.id);
    expect(after.held).toBe(0n);
    expect(after.balance).toBe(before.balance);
    expect(await storeA.verify()).toEqual([]);

    // Forgotten once its retention has passed, and no longer counted.
    expect(await storeB.batches.get("batch_late", later + 61_000)).toBeUndefined();
    expect(await storeB.batches.sweep(later + 61_000)).toBe(1);
    expect((await storeB.batches.kept(account.id)).account).toBe(0);
  });
});

/** A batch of `n` queued items as admitted. */
function queued(id: string, n: number, reserved: bigint): BatchRecord["view"] {
  return {
    id,
    object: "srp.batch",
    status: "queued",
    created_at: Math.floor(Date.now() / 1000),
    completed_at: null,
    expires_at: null,
    discount_bps: 1000,
    reserved_units: reserved.toString(),
    charged_units: "0",
    charged: formatUsdc(0n),
    counts: { total: n, queued: n, running: 0, completed: 0, failed: 0 },
    items: Array.from({ length: n }, (_, index) => ({
      index,
      custom_id: null,
      url: "/v1/chat/completions",
      status: "queued" as const,
      status_code: null,
      response: null,
      cost: formatUsdc(0n),
      cost_units: "0",
      receipt_id: null,
    })),
  };
}
