// Bench helper: the hub's ledger alone, on a durable database. For every job the hub
// reserves the worst case at admission (`SqlStore.reserve`) and, when the countersigned
// receipt comes back, stores it and settles the reservation in one transaction
// (`SqlStore.record`). This helper does exactly that, `concurrency` jobs in flight, with
// real countersigned receipts built before the clock starts, and counts the jobs settled.
//
// SQLite: a fresh file in a temporary directory, opened with the hub's defaults (WAL,
// synchronous=FULL: a settlement is reported once its commit is synced to disk). PostgreSQL: a throwaway server started by
// bench/postgres.mjs with fsync, synchronous_commit and full_page_writes on, opened with
// the hub's defaults (a pool of 10 connections). See bench/README.md.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { countersignReceipt, createReceipt, generateIdentity, INITIAL_POSITION, randomBytes, toBase64Url, toHex } from "@srp/core";
import { openStore } from "@srp/hub";
import { worstCase } from "@srp/hub/ledger";
import { serve } from "./ipc.mjs";
import { DURABLE_SETTINGS, guardDir, startPostgres } from "./postgres.mjs";

const now = () => performance.now();
const CONSUMER = "acct_bench";
const PROVIDER = "acct_bench_provider";
const MODEL = "sim-llama-3-8b";
const PRICE = { input: "100000", output: "300000" };
/** What the hub reserves for the relay bench's request (`max_tokens` 8, a short prompt). */
const WORST_CASE = worstCase(64, 8, PRICE);
/** The receipts' usage: what the simulator reports for that request. */
const USAGE = { promptTokens: 12, completionTokens: 8, measured: true };

function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** CPU time of a process in ms from /proc (Linux; 10 ms ticks), or NaN. */
function procCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/** CPU time of a PostgreSQL server: the postmaster and all its children (backends, WAL writer, checkpointer...). */
function serverCpuMs(postmaster) {
  if (!postmaster) return NaN;
  let total = procCpuMs(postmaster);
  let pids = [];
  try {
    pids = readdirSync("/proc").filter((d) => /^[0-9]+$/.test(d));
  } catch {
    return NaN;
  }
  for (const d of pids) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[1]) === postmaster) total += (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      // Gone meanwhile.
    }
  }
  return total;
}

/** How long this disk takes to make a small append durable: p50/p99 of write(4 KB) + fdatasync, in ms. */
function fsyncProbe(dir, n = 200) {
  const file = join(dir, "fsync-probe");
  const fd = openSync(file, "a");
  const buf = Buffer.alloc(4096, 7);
  const t = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = now();
      writeSync(fd, buf);
      fdatasyncSync(fd);
      t.push(now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return { p50: percentile(t, 50), p99: percentile(t, 99), n };
}

// ---------------------------------------------------------------------------
// Receipts: one provider node per in-flight worker, each with its own receipt sequence
// (seq 1, 2, 3, ... and running totals, as a real node signs them), countersigned by the
// hub. Built outside the timed window; the same receipts serve every engine (each runs
// on a fresh database), and the pool grows when a run needs more.

const hubIdentity = generateIdentity();
const lanes = [];

function lane(i) {
  while (lanes.length <= i) lanes.push({ node: generateIdentity(), position: INITIAL_POSITION, receipts: [] });
  return lanes[i];
}

/**
 * Makes sure each of the first `count` lanes holds at least `perLane` receipts, a round of
 * one receipt per lane at a time, stopping early once `deadline` (a `now()` time) passes;
 * returns the ms spent and the receipts each lane then holds at least.
 */
function buildReceipts(count, perLane, deadline = Infinity) {
  const t0 = now();
  const least = () => Math.min(...Array.from({ length: count }, (_, i) => lane(i).receipts.length));
  for (let have = least(); have < perLane && now() < deadline; have++) {
    for (let i = 0; i < count; i++) {
      const l = lane(i);
      if (l.receipts.length > have) continue;
      const t = Date.now();
      const draft = {
        jobId: `job_${toBase64Url(randomBytes(16))}`,
        hubId: hubIdentity.id,
        instanceId: `${MODEL}.0`,
        model: MODEL,
        requestHash: toHex(randomBytes(32)),
        responseHash: "1".repeat(64),
        usage: USAGE,
        price: PRICE,
        startedAt: t - 3,
        finishedAt: t,
      };
      const receipt = countersignReceipt(createReceipt(draft, l.position, l.node), hubIdentity);
      l.position = { lastSeq: receipt.seq, totals: receipt.totals };
      l.receipts.push(receipt);
    }
  }
  return { ms: now() - t0, perLane: least() };
}

// ---------------------------------------------------------------------------

/** SQLite directories to remove when this process ends (and by a guard process if it is killed). */
const sqliteDirs = new Set();
process.on("exit", () => {
  for (const dir of sqliteDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => process.exit(130));

/** The database of one run: the store, what to report about it, how to take it down. */
async function openEngine(engine) {
  if (engine === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "srp-bench-ledger-"));
    sqliteDirs.add(dir);
    guardDir(dir);
    const probe = fsyncProbe(dir);
    try {
      const store = await openStore(`sqlite:${join(dir, "hub.sqlite")}`);
      return {
        store,
        settings: {
          journal_mode: "wal",
          synchronous: "FULL",
          note: "the hub's defaults: the WAL synced once per group commit, off the event loop",
        },
        fsync: probe,
        serverPid: undefined,
        close: async () => {
          await store.close().catch(() => {});
          rmSync(dir, { recursive: true, force: true });
          sqliteDirs.delete(dir);
        },
      };
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      sqliteDirs.delete(dir);
      throw error;
    }
  }
  if (engine === "postgres") {
    let pg;
    try {
      pg = await startPostgres();
    } catch (error) {
      // A machine whose PostgreSQL cannot start (no postgres user, no runuser...) still gets the rest of the bench.
      return { skipped: `the server did not start: ${String(error?.message ?? error).split("\n")[0]}` };
    }
    if (pg.skipped) return { skipped: pg.skipped };
    try {
      const probe = fsyncProbe(pg.dir);
      const store = await openStore(pg.url);
      const { default: pgLib } = await import("pg");
      const client = new pgLib.Client({ connectionString: pg.url });
      await client.connect();
      const settings = {};
      try {
        for (const name of [
          "server_version",
          ...Object.keys(DURABLE_SETTINGS),
          "wal_sync_method",
          "wal_level",
          "commit_delay",
          "shared_buffers",
          "max_connections",
        ]) {
          settings[name] = (await client.query(`SHOW ${name}`)).rows[0][name];
        }
      } finally {
        await client.end();
      }
      settings.pool = "10 connections (openStore default)";
      return {
        store,
        settings,
        fsync: probe,
        serverPid: pg.pid,
        close: async () => {
          await store.close().catch(() => {});
          await pg.stop();
        },
      };
    } catch (error) {
      await pg.stop();
      throw error;
    }
  }
  throw new Error(`unknown engine ${engine}`);
}

/**
 * `concurrency` workers, each settling jobs back to back with its own node's receipts
 * from `cursors[i]` on: reserve the worst case, then record the countersigned receipt
 * with the reservation. Every worker stops once `state.until` has passed, or as soon as
 * one of them runs out of receipts (`state.ranOutAt`) or fails, so the number in flight
 * never drops while jobs are being counted. `onJob(start, reserved, settled)` gets each
 * job's timestamps.
 */
async function drive(store, concurrency, cursors, state, onJob) {
  const worker = async (i) => {
    const l = lanes[i];
    while (!state.stop) {
      if (now() >= state.until) {
        state.stop = true;
        break;
      }
      if (cursors[i] >= l.receipts.length) {
        state.ranOutAt ??= now();
        state.stop = true;
        break;
      }
      const receipt = l.receipts[cursors[i]++];
      const t0 = now();
      const r = await store.reserve(CONSUMER, WORST_CASE);
      if (!r.ok) throw new Error(`reservation refused: ${r.available} available`);
      const t1 = now();
      const settled = await store.record({
        receipt,
        providerAccountId: PROVIDER,
        consumerAccountId: CONSUMER,
        reservationId: r.reservationId,
      });
      const t2 = now();
      if (!settled || settled.reservationId !== r.reservationId) throw new Error(`job ${receipt.jobId} was recorded but not settled`);
      onJob(t0, t1, t2);
    }
  };
  const workers = Array.from({ length: concurrency }, (_, i) =>
    worker(i).catch((error) => {
      state.stop = true;
      throw error;
    }),
  );
  const outcomes = await Promise.allSettled(workers);
  const failed = outcomes.find((o) => o.status === "rejected");
  if (failed) throw failed.reason;
}

/**
 * One engine's figure. `budgetMs` bounds the whole call on a busy machine: what is left of
 * it after the database started and the warm-up ran sizes the receipts built for the
 * window (building them is the slow part when the CPU is shared), keeping a share for the
 * final verification and shutdown; a window with fewer receipts ends early and says so.
 */
async function run({ engine, concurrency, durationMs, warmupMs, maxJobs, budgetMs = Infinity }) {
  const started = now();
  const deadline = started + budgetMs;
  // Kept for verifying the books and closing the database at the end.
  const tailMs = Math.min(20_000, budgetMs * 0.2);
  const db = await openEngine(engine);
  if (db.skipped) return { engine, skipped: db.skipped };
  try {
    const { store } = db;
    await store.createAccount({ id: CONSUMER });
    await store.createAccount({ id: PROVIDER });
    await store.deposit(CONSUMER, 1_000_000_000_000n, "bench-funding");
    const cursors = new Array(concurrency).fill(0);

    // Warm-up: a first pool of receipts, and the rate that sizes the pool of the window.
    const warmPerLane = Math.max(8, Math.ceil(Math.min(maxJobs / 4, 2048) / concurrency));
    // The warm-up pool may take a quarter of what is left (at least 8 receipts a lane).
    const warmBuild = buildReceipts(concurrency, warmPerLane, now() + Math.max(0, (deadline - now() - tailMs) / 4));
    if (warmBuild.perLane < 8) buildReceipts(concurrency, 8);
    let buildMs = warmBuild.ms;
    const msPerReceipt = warmBuild.ms / Math.max(1, warmBuild.perLane * concurrency);
    const w0 = now();
    let warmJobs = 0;
    await drive(store, concurrency, cursors, { stop: false, until: w0 + warmupMs }, () => warmJobs++);
    const warmRate = (warmJobs * 1000) / (now() - w0);

    // The window's receipts: 2.5 x what the warm-up rate needs (the warm-up runs cold), within maxJobs in all.
    const need = Math.ceil((warmRate * (durationMs / 1000) * 2.5) / concurrency) + 8;
    const wanted = Math.max(Math.max(...cursors) + 1, Math.min(Math.ceil(maxJobs / concurrency), Math.max(...cursors) + need));
    // Building must leave time for the window and the tail: at the warm-up's pace, and stopped at that deadline anyway.
    const buildLeftMs = deadline - now() - durationMs - tailMs;
    const affordable = Math.max(...cursors) + 8 + Math.floor(Math.max(0, buildLeftMs) / Math.max(1e-3, msPerReceipt) / concurrency);
    const perLane = Math.min(wanted, affordable);
    const built = buildReceipts(concurrency, perLane, now() + Math.max(0, buildLeftMs));
    buildMs += built.ms;

    const lat = [];
    const reserveMs = [];
    const recordMs = [];
    const perSecond = new Array(Math.ceil(durationMs / 1000)).fill(0);
    const cpu0 = process.cpuUsage();
    const server0 = serverCpuMs(db.serverPid);
    const t0 = now();
    const state = { stop: false, until: t0 + durationMs, ranOutAt: undefined };
    const jobs = [];
    await drive(store, concurrency, cursors, state, (a, b, c) => jobs.push(a, b, c));
    // The window ends after durationMs, or where the receipts ran out.
    const tEnd = Math.min(state.until, state.ranOutAt ?? Infinity);
    const elapsedMs = tEnd - t0;
    const cpu = process.cpuUsage(cpu0);
    const serverMs = serverCpuMs(db.serverPid) - server0;
    const ranMs = now() - t0;
    for (let i = 0; i < jobs.length; i += 3) {
      const [a, b, c] = [jobs[i], jobs[i + 1], jobs[i + 2]];
      if (c > tEnd) continue;
      lat.push(c - a);
      reserveMs.push(b - a);
      recordMs.push(c - b);
      perSecond[Math.min(perSecond.length - 1, Math.floor((c - t0) / 1000))]++;
    }
    const settled = lat.length;

    const problems = await store.verify();
    const summary = await store.summary(CONSUMER);
    const totalJobs = cursors.reduce((s, c) => s + c, 0);
    const helperCpuMs = (cpu.user + cpu.system) / 1000;
    return {
      engine,
      dialect: store.dialect,
      settings: db.settings,
      fsync: db.fsync,
      concurrency,
      jobsPerSecond: (settled * 1000) / elapsedMs,
      settled,
      elapsedMs,
      receiptsRanOut: state.ranOutAt !== undefined && state.ranOutAt < state.until,
      perSecond: state.ranOutAt !== undefined ? perSecond.slice(0, Math.ceil(elapsedMs / 1000)) : perSecond,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      reserve: { p50: percentile(reserveMs, 50), p99: percentile(reserveMs, 99) },
      record: { p50: percentile(recordMs, 50), p99: percentile(recordMs, 99) },
      warmup: { jobs: warmJobs, jobsPerSecond: warmRate },
      receiptsBuilt: lanes.slice(0, concurrency).reduce((s, l) => s + l.receipts.length, 0),
      buildMs,
      // Fewer receipts than the warm-up rate asked for: the budget (a busy machine) bounded them.
      budgetBound: perLane < wanted || built.perLane < perLane,
      budgetMs,
      // CPU over the whole timed run (the window and the drain of the jobs in flight).
      cpu: {
        helperMsPerJob: helperCpuMs / (jobs.length / 3),
        helperCores: helperCpuMs / ranMs,
        serverMsPerJob: serverMs / (jobs.length / 3),
        serverCores: serverMs / ranMs,
      },
      verify: problems,
      // Every job of the run (warm-up included) settled exactly once, nothing left held.
      consistent: summary.requests === totalJobs && summary.held === 0n,
      requestsSettled: summary.requests,
      jobsRun: totalJobs,
    };
  } finally {
    await db.close();
  }
}

serve({
  run,
  close() {},
});
