import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, startPostgres, type TestPostgres } from "../../../../test/support/postgres.js";
import { PAYOUT_DEFAULTS } from "../ledger/payout-terms.js";
import { PayoutTracker } from "../ledger/payout-tracker.js";
import { Router } from "../routing/router.js";
import { openStore } from "./open.js";
import type { SqlStore } from "./sql-store.js";
import { int } from "./sql.js";
import { openPostgres } from "./postgres-driver.js";
import { openSqlite } from "./sqlite-driver.js";
import type { SqlDriver } from "./sql.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const KEY = "node_a.inst_1";
const MODEL = "sim-llama-3-8b";

interface Engine {
  name: string;
  /** A fresh, empty database: its `--db` spec and a raw connection to look at its rows. */
  create(): Promise<{ spec: string; raw: () => SqlDriver }>;
}

let pg: TestPostgres | undefined;
let dbCount = 0;
const dirs: string[] = [];
const open: { close(): Promise<void> }[] = [];

const ENGINES: Engine[] = [
  {
    name: "SQLite",
    async create() {
      const dir = mkdtempSync(join(tmpdir(), "srp-routing-"));
      dirs.push(dir);
      const path = join(dir, "hub.sqlite");
      return { spec: `sqlite:${path}`, raw: () => openSqlite(path) };
    },
  },
  {
    name: "PostgreSQL",
    async create() {
      pg ??= await startPostgres();
      const url = await createDatabase(pg.url, `routing_${++dbCount}`);
      return { spec: url, raw: () => openPostgres(url) };
    },
  },
];

/** Opens a store that is closed after the test (closing twice is harmless). */
async function store(spec: string): Promise<SqlStore> {
  const s = await openStore(spec);
  open.push(s);
  return s;
}

afterEach(async () => {
  for (const s of open.splice(0).reverse()) await s.close().catch(() => {});
});

afterAll(async () => {
  await pg?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe.each(ENGINES)("routing state on $name", (engine) => {
  beforeAll(async () => {
    if (engine.name === "PostgreSQL") pg ??= await startPostgres();
  }, 60_000);

  it("survives closing and reopening: breaker, window, first seen, throughput and latency", async () => {
    const db = await engine.create();
    const t0 = Date.UTC(2025, 0, 1);
    const first = await store(db.spec);
    const router = new Router(await first.openRouting({ flushIntervalMs: 0 }));
    // Ten days of history, then three failures in a row: the breaker parks the instance.
    for (let day = 0; day < 10; day++) router.outcome(KEY, MODEL, "success", t0 + day * DAY);
    router.latency(KEY, 120, t0 + 10 * DAY);
    router.throughput(KEY, 400, 2000, t0 + 10 * DAY);
    const now = t0 + 10 * DAY + 1000;
    for (let i = 0; i < 3; i++) router.outcome(KEY, MODEL, "failure", now + i);
    const before = structuredClone(router.store.get(KEY));
    expect(router.status(KEY, now + 10)).toBe("parked");
    expect(before?.window.length).toBe(11);
    expect(before?.firstSeen).toBe(t0);
    await first.close();

    const again = await store(db.spec);
    const restored = new Router(await again.openRouting());
    expect(restored.store.get(KEY)).toEqual(before);
    expect(restored.status(KEY, now + 10)).toBe("parked");
    // Ramp-up and trust count from the first sighting, not from the restart.
    expect(restored.standing(KEY, now).tenureMs).toBe(now - t0);
  });

  it("writes behind: nothing before a flush, everything after; a pending change is written when the store closes", async () => {
    const db = await engine.create();
    const raw = db.raw();
    open.push(raw);
    const s = await store(db.spec);
    const routing = await s.openRouting({ flushIntervalMs: 0 });
    for (let i = 0; i < 450; i++) routing.update(`n.${i}`, 1000 + i, (h) => h);
    expect(routing.pending).toBe(450);
    const count = async () => int((await raw.all("SELECT COUNT(*) AS n FROM routing_state"))[0]!.n);
    expect(await count()).toBe(0);
    await routing.flush();
    expect(routing.pending).toBe(0);
    expect(await count()).toBe(450);
    routing.update("n.0", 5000, (h) => ({ ...h, throughput: { tokensPerSecond: 42, samples: 1 } }));
    await s.close();
    const [row] = await raw.all("SELECT first_seen, state FROM routing_state WHERE instance_key = ?", ["n.0"]);
    expect(int(row!.first_seen)).toBe(1000);
    expect(JSON.parse(String(row!.state)).throughput).toEqual({ tokensPerSecond: 42, samples: 1 });
  });

  it("loads at most maxEntries, the most recently written first, and forgets rows past retention", async () => {
    const db = await engine.create();
    const raw = db.raw();
    open.push(raw);
    const s = await store(db.spec);
    await s.ready();
    const state = JSON.stringify({
      breaker: { failures: [], parkedUntil: 0, probing: false, needsProbe: false },
      window: [],
      throughput: { tokensPerSecond: 0, samples: 0 },
    });
    const now = Date.now();
    for (let i = 0; i < 5; i++)
      await raw.run("INSERT INTO routing_state (instance_key, first_seen, state, updated_at) VALUES (?, ?, ?, ?)", [
        `k${i}`,
        i,
        state,
        now - i * 1000,
      ]);
    await raw.run("INSERT INTO routing_state (instance_key, first_seen, state, updated_at) VALUES (?, ?, ?, ?)", [
      "stale",
      0,
      state,
      now - 40 * DAY,
    ]);
    const routing = await s.openRouting({ maxEntries: 3 });
    expect(routing.size).toBe(3);
    expect(["k0", "k1", "k2"].map((k) => routing.get(k)?.firstSeen)).toEqual([0, 1, 2]);
    expect(routing.get("k4")).toBeUndefined();
    expect(await raw.all("SELECT instance_key FROM routing_state WHERE instance_key = ?", ["stale"])).toEqual([]);
  });

  it("shares rows between processes: the owner writes, the others refresh; first seen never moves later", async () => {
    const db = await engine.create();
    const a = await store(db.spec);
    const b = await store(db.spec);
    const owner = await a.openRouting({ flushIntervalMs: 0 });
    const reader = await b.openRouting({ flushIntervalMs: 0, owns: () => false });
    const routerA = new Router(owner);
    routerA.outcome(KEY, MODEL, "success", 1000);
    routerA.throughput(KEY, 100, 1000, 1000);
    await owner.flush();
    // The reader met the instance later (say, a job of it went through this process).
    reader.update(KEY, 9000, (h) => ({ ...h, latency: { ms: 5, samples: 1 } }));
    await reader.flush(); // owns nothing: writes nothing
    expect(await reader.refresh([KEY])).toBe(1);
    expect(reader.get(KEY)).toEqual(owner.get(KEY));
    // A refresh without keys reads what was written since the previous one.
    routerA.outcome(KEY, MODEL, "success", 2000);
    await owner.flush();
    await reader.refresh();
    expect(reader.get(KEY)?.window[0]?.success).toBe(2);

    // A second owner that met the instance late never moves its first-seen time later.
    const c = await store(db.spec);
    const late = await c.openRouting({ flushIntervalMs: 0 });
    late.update("other.key", 50_000, (h) => h);
    await late.flush();
    owner.update("other.key", 10_000, (h) => h);
    await owner.flush();
    late.update("other.key", 60_000, (h) => h);
    await late.flush();
    await late.refresh(["other.key"]);
    expect(late.get("other.key")?.firstSeen).toBe(10_000);
  });
});

describe.each(ENGINES)("payout state on $name", (engine) => {
  beforeAll(async () => {
    if (engine.name === "PostgreSQL") pg ??= await startPostgres();
  }, 60_000);

  const keyOf = (id: string) => `node_a.${id}`;
  const standing = { tenureMs: 30 * DAY, health: 1 };

  it("remembers a model switch and the last minutes of demand across a restart", async () => {
    const db = await engine.create();
    const now = Date.now();
    const first = await store(db.spec);
    const tracker = new PayoutTracker({ ...PAYOUT_DEFAULTS, derive: true }, await first.openPayoutState({ flushIntervalMs: 0 }));
    tracker.noteOffers("node_a", [{ instanceId: "i1", model: "a" }], keyOf, now - 2 * HOUR);
    tracker.noteOffers("node_a", [{ instanceId: "i1", model: "b" }], keyOf, now - HOUR);
    for (let i = 0; i < 300; i++) tracker.noteDemand("b", now);
    const terms = tracker.terms(keyOf("i1"), "b", standing, 1, now);
    expect(terms.reductionBps).toBeGreaterThan(0);
    expect(terms.multiplierBps).toBeGreaterThan(10000);
    await first.close();

    const again = await store(db.spec);
    const restored = new PayoutTracker({ ...PAYOUT_DEFAULTS, derive: true }, await again.openPayoutState());
    expect(restored.terms(keyOf("i1"), "b", standing, 1, now)).toEqual(terms);
    expect(restored.demandPerMinute("b", now)).toBe(20);
    // The node's last offer is remembered too: serving "b" again is no switch, "c" instead of "b" is.
    restored.noteOffers("node_a", [{ instanceId: "i1", model: "b" }], keyOf, now);
    expect(restored.terms(keyOf("i1"), "b", standing, 1, now).reductionBps).toBe(terms.reductionBps);
    restored.noteOffers("node_a", [{ instanceId: "i1", model: "c" }], keyOf, now);
    expect(restored.terms(keyOf("i1"), "c", standing, 1, now).reductionBps).toBe(PAYOUT_DEFAULTS.flapReductionBps);
  });

  it("adds the demand of several processes", async () => {
    const db = await engine.create();
    const now = Date.now();
    const states = await Promise.all([store(db.spec), store(db.spec)].map(async (s) => (await s).openPayoutState({ flushIntervalMs: 0 })));
    const trackers = states.map((s) => new PayoutTracker(PAYOUT_DEFAULTS, s));
    for (const t of trackers) for (let i = 0; i < 15; i++) t.noteDemand("m", now);
    await states[0]!.flush();
    // The second process's own requests not yet written still count for it.
    await states[1]!.refresh(now);
    expect(trackers[1]!.demandPerMinute("m", now)).toBe(2);
    await states[1]!.flush();
    await states[0]!.refresh(now);
    expect(trackers[0]!.demandPerMinute("m", now)).toBe(2);
  });
});
