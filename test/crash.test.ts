/**
 * Crash safety of the billing ledger, on SQLite and on PostgreSQL: `srp-hub serve` runs
 * as a real child process under load (about 40 consumer requests in flight through a
 * provider node in this process), is killed with SIGKILL, and is started again on the
 * same data directory and database. Nothing may be lost or leak: every transaction the
 * dead process committed balances, the reservations it left open are released (by the
 * restarted hub itself on SQLite; after the one-minute liveness window on PostgreSQL),
 * `srp-hub ledger verify` passes, money is conserved, every charge a consumer was told
 * about is in the books, and the provider comes back by itself and is billed again.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { openStore, type SqlStore } from "@srp/hub";
import { holdAccount } from "@srp/hub/ledger";
import { big, int, openPostgres, openSqlite, type SqlDriver, type SqlValue } from "@srp/hub/storage";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator } from "@srp/provider/simulator";
import { createDatabase, freePort, startPostgres } from "./support/postgres.js";

const CLI = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
const MODEL = "sim-llama-3-8b";
const CONSUMER = "acct_load";
const PROVIDER = "acct_prov";
const SIGNUP = 1_000_000n;
/** Per 1M tokens, atomic units: every job costs a few units, so charges are never zero. */
const PRICE = { input: "100000", output: "300000" };
/** Consumer requests kept in flight. */
const CONCURRENCY = 40;
/** At 50 tokens/s, a 40-token answer takes 0.8 s: dozens of jobs are always running. */
const TOKENS_PER_SECOND = 50;
const MAX_TOKENS = 40;
/** Load runs at least this long before the kill. */
const LOAD_MS = 1500;
/** The message the ledger puts on a reservation released because its hub process died. */
const DEAD_HOLDER_REASON = "the hub process holding it stopped";

// ---------------------------------------------------------------------------
// Clean-up: everything started is stopped after each test, even when it fails, and the
// hub children are killed if this worker exits without running the hooks.

const cleanups: (() => Promise<void> | void)[] = [];
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await within(Promise.resolve(c()), 10_000, "a clean-up step");
    } catch (error) {
      console.error("crash test clean-up:", error);
    }
  }
});

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(what: string, ms: number, ok: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await pause(50);
  }
}

/** The environment of the CLI children, without settings that would override our flags. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.SRP_HUB_DB;
  delete env.SRP_HUB_ACCOUNTS;
  delete env.SRP_ADMIN_TOKEN;
  return env;
}

// ---------------------------------------------------------------------------
// The hub as a child process

interface HubChild {
  child: ChildProcess;
  url: string;
  /** Its stderr log lines (JSON events). */
  log: string[];
}

/** Starts `srp-hub serve` and resolves when it prints its listening line. */
async function serve(args: string[]): Promise<HubChild> {
  const child = spawn(process.execPath, [CLI, "serve", ...args], { stdio: ["ignore", "pipe", "pipe"], env: childEnv() });
  children.add(child);
  child.once("exit", () => children.delete(child));
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  });
  const log: string[] = [];
  let partial = "";
  child.stderr!.on("data", (d: Buffer) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop() ?? "";
    log.push(...lines.filter(Boolean));
  });
  const url = await within(
    new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once("exit", (code, signal) =>
        reject(new Error(`srp-hub serve exited (${code ?? signal}) before listening:\n${log.join("\n")}`)),
      );
    }),
    15_000,
    "srp-hub serve listening",
  );
  return { child, url, log };
}

/** Kills a hub with SIGKILL: no handler runs, nothing is flushed or released. */
async function kill9(hub: HubChild): Promise<void> {
  const exited = once(hub.child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  expect(hub.child.kill("SIGKILL")).toBe(true);
  const [code, signal] = await within(exited, 5_000, "the hub's exit after SIGKILL");
  expect({ code, signal }).toEqual({ code: null, signal: "SIGKILL" });
}

/** Runs one `srp-hub` admin command; never throws on a non-zero exit. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], { env: childEnv(), timeout: 15_000, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") reject(new Error(`srp-hub ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------
// Consumers

interface Usage {
  receipt_id: string | null;
  cost_units: string;
}

/** One chat request; resolves with the billing part of its usage, or rejects. */
async function chat(url: string, key: string, content: string, stream: boolean): Promise<Usage> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content }], max_tokens: MAX_TOKENS, stream }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 300)}`);
  let usage: Usage | undefined;
  if (stream) {
    for (const line of text.split("\n")) {
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const chunk = JSON.parse(line.slice(6)) as { usage?: Usage | null; error?: unknown };
      if (chunk.error) throw new Error(`stream error: ${JSON.stringify(chunk.error)}`);
      if (chunk.usage) usage = chunk.usage;
    }
    if (!text.includes("data: [DONE]")) throw new Error("the stream ended without [DONE]");
  } else {
    usage = (JSON.parse(text) as { usage?: Usage }).usage;
  }
  if (!usage) throw new Error(`no usage in the answer: ${text.slice(0, 300)}`);
  return usage;
}

/** `CONCURRENCY` consumers in a loop, streams and plain answers alternating. */
class Load {
  completed = 0;
  failed = 0;
  inFlight = 0;
  /** What the consumers were told they were charged, by receipt. */
  readonly charged = new Map<string, bigint>();
  readonly errors: string[] = [];
  #stopped = false;
  readonly #workers: Promise<void>[] = [];

  constructor(url: string, key: string) {
    for (let w = 0; w < CONCURRENCY; w++) {
      this.#workers.push(
        (async () => {
          for (let n = 0; !this.#stopped; n++) {
            this.inFlight++;
            try {
              const usage = await chat(url, key, `crash load ${w}.${n}`, (w + n) % 2 === 0);
              this.completed++;
              if (usage.receipt_id !== null) this.charged.set(usage.receipt_id, BigInt(usage.cost_units));
            } catch (error) {
              this.failed++;
              if (this.errors.length < 5)
                this.errors.push(
                  error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? "")}` : String(error),
                );
            } finally {
              this.inFlight--;
            }
          }
        })(),
      );
    }
  }

  /** No new requests start; those in flight carry on (and fail when the hub dies). */
  stop(): void {
    this.#stopped = true;
  }

  /** Resolves when every consumer has ended. */
  async finished(): Promise<void> {
    await Promise.all(this.#workers);
  }
}

// ---------------------------------------------------------------------------
// Engines

interface Database {
  /** `--db` of the CLI. */
  spec: string;
  /** A raw connection for the checks. */
  raw(): SqlDriver;
}

interface Engine {
  name: string;
  dialect: "sqlite" | "postgres";
  /** A fresh, empty database; its server (if any) stops in clean-up. */
  create(dataDir: string): Promise<Database>;
}

const ENGINES: Engine[] = [
  {
    name: "SQLite",
    dialect: "sqlite",
    async create(dataDir) {
      const path = join(dataDir, "hub.sqlite");
      return { spec: `sqlite:${path}`, raw: () => openSqlite(path) };
    },
  },
  {
    name: "PostgreSQL",
    dialect: "postgres",
    async create() {
      const server = await startPostgres();
      cleanups.push(() => server.stop());
      const url = await createDatabase(server.url, "srp_crash");
      return { spec: url, raw: () => openPostgres(url, { max: 2 }) };
    },
  },
];

// ---------------------------------------------------------------------------
// Checks on the books

async function count(db: SqlDriver, sql: string, params: SqlValue[] = []): Promise<number> {
  return int((await db.all(sql, params))[0]!.n);
}

async function openReservations(db: SqlDriver): Promise<{ id: string; holder: string }[]> {
  return (await db.all("SELECT id, holder FROM reservations WHERE state = 'open' ORDER BY id")).map((r) => ({
    id: String(r.id),
    holder: String(r.holder),
  }));
}

const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(", ");

/**
 * Every invariant through the CLI, then through the store: nothing held, money conserved
 * (the sum of all ledger accounts is zero), the consumer's signup credits are exactly
 * what it holds plus what it was charged, the provider's balance is its signup credits
 * plus its shares, and every charge a consumer was told about is a settled reservation
 * in the books with that very amount.
 */
async function checkBooks(db: Database, dataDir: string, raw: SqlDriver, store: SqlStore, told: Map<string, bigint>): Promise<void> {
  const verify = await cli(["ledger", "verify", "--data-dir", dataDir, "--db", db.spec]);
  expect(verify, verify.stderr).toMatchObject({ code: 0 });
  expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });
  expect(await store.verify()).toEqual([]);

  expect(await count(raw, "SELECT COUNT(*) AS n FROM reservations WHERE state = 'open'")).toBe(0);
  expect(await store.ledgerBalance(holdAccount(CONSUMER))).toBe(0n);
  expect(big((await raw.all("SELECT COALESCE(SUM(balance), 0) AS s FROM ledger_accounts"))[0]!.s)).toBe(0n);

  const consumer = await store.summary(CONSUMER);
  expect(consumer).toMatchObject({ held: 0n, deposited: 0n, refunded: 0n });
  expect(consumer.spent).toBeGreaterThan(0n);
  expect(consumer.balance + consumer.spent).toBe(SIGNUP);
  const provider = await store.summary(PROVIDER);
  expect(provider.earned).toBeGreaterThan(0n);
  expect(provider.balance).toBe(SIGNUP + provider.earned);

  const ids = [...told.keys()];
  const rows = await raw.all(
    `SELECT c.job_id, r.state, r.charged FROM receipts c JOIN reservations r ON r.id = c.reservation_id WHERE c.job_id IN (${placeholders(ids.length)})`,
    ids,
  );
  const booked = new Map(rows.map((r) => [String(r.job_id), { state: String(r.state), charged: big(r.charged) }]));
  for (const [id, amount] of told) expect(booked.get(id), `receipt ${id}`).toEqual({ state: "settled", charged: amount });
}

// ---------------------------------------------------------------------------

describe.each(ENGINES)("crash: srp-hub killed with SIGKILL under load, on $name", (engine) => {
  it("restarts with balanced books, reconciles the dead process's reservations, and bills again", async () => {
    const t0 = Date.now();
    const dataDir = mkdtempSync(join(tmpdir(), "srp-crash-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const db = await engine.create(dataDir);
    const tDb = Date.now();

    const consumerKey = `srp_crash_consumer_${Math.random().toString(36).slice(2, 12)}`;
    const providerKey = `srp_crash_provider_${Math.random().toString(36).slice(2, 12)}`;
    const port = await freePort();
    const args = [
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--data-dir",
      dataDir,
      "--db",
      db.spec,
      "--signup-credits",
      String(SIGNUP),
      "--account",
      `${CONSUMER}:${consumerKey}`,
      "--account",
      `${PROVIDER}:${providerKey}`,
    ];

    const first = await serve(args);
    expect(first.url).toBe(`http://127.0.0.1:${port}`);

    const sim = await startSimulator({ tokensPerSecond: TOKENS_PER_SECOND });
    cleanups.push(() => sim.close());
    const provider: Provider = createProvider({
      hub: first.url,
      identity: generateIdentity(),
      account: providerKey,
      // Reconnects by itself, soon: the restarted hub is back within a second or two.
      reconnect: { initialDelayMs: 500, maxDelayMs: 1000 },
      instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 64 }],
    });
    cleanups.push(() => provider.close());
    const warnings: string[] = [];
    provider.on("warning", (w) => warnings.push(w.code));
    await within(provider.ready(), 10_000, "the provider's first session");

    // -- load, then SIGKILL in the middle of it ------------------------------------------
    const load = new Load(first.url, consumerKey);
    const tLoad = Date.now();
    await until(
      "load with answers done and dozens in flight",
      10_000,
      () => Date.now() - tLoad >= LOAD_MS && load.completed >= 20 && load.inFlight >= CONCURRENCY / 2,
    );
    const completedBeforeKill = load.completed;
    const inFlightAtKill = load.inFlight;
    expect(load.failed, load.errors.join("\n")).toBe(0);
    const disconnected = once(provider, "disconnected");
    load.stop();
    await kill9(first);
    const tKill = Date.now();
    await within(disconnected, 5_000, "the provider noticing the dead hub");
    await within(load.finished(), 20_000, "the consumers' requests ending");
    // The requests in flight died with the hub; none of them can have been answered.
    expect(load.failed).toBeGreaterThan(0);

    // -- the dead hub's books, as it left them ---------------------------------------------
    const raw = db.raw();
    cleanups.push(() => raw.close());
    const store = await openStore(db.spec); // never reconciled from here except where said
    cleanups.push(() => store.close());
    const leftOpen = await openReservations(raw);
    // Reservations of requests that were running: if this ever reads 0, the load is too light.
    expect(leftOpen.length).toBeGreaterThan(0);
    const holders = [...new Set(leftOpen.map((r) => r.holder))];
    expect(holders).toHaveLength(1); // the dead process's
    const dead = holders[0]!;
    const deadSeen = await raw.all("SELECT seen_at FROM hub_processes WHERE id = ?", [dead]);
    expect(deadSeen).toHaveLength(1);
    // The crash broke no invariant: each committed transaction balances, and the money
    // held is exactly what the open reservations hold.
    expect(await store.verify()).toEqual([]);
    const crashed = await store.summary(CONSUMER);
    expect(crashed.held).toBe(big((await raw.all("SELECT SUM(amount) AS s FROM reservations WHERE state = 'open'"))[0]!.s));
    expect(crashed.balance + crashed.held + crashed.spent).toBe(SIGNUP);
    const leftIds = leftOpen.map((r) => r.id);

    // -- restart on the same data dir and database ------------------------------------------
    const reconnected = within(provider.ready(), 15_000, "the provider's reconnection");
    reconnected.catch(() => {}); // awaited below
    const second = await serve(args);
    const tRestart = Date.now();
    expect(second.url).toBe(first.url);

    if (engine.dialect === "sqlite") {
      // One hub per SQLite file: whatever another process holds is a dead process's, and
      // the restarted hub releases it by itself as it starts.
      await until(
        "the restarted hub releasing the dead process's reservations",
        5_000,
        async () => (await count(raw, "SELECT COUNT(*) AS n FROM reservations WHERE state = 'open'")) === 0,
      );
    } else {
      // Several hubs may share a PostgreSQL database, so a hub releases only the
      // reservations of processes not seen for 60 s. The dead one beat its heartbeat
      // moments ago: it still looks alive, and the restarted hub must leave them alone.
      expect(Date.now() - int(deadSeen[0]!.seen_at)).toBeLessThan(60_000);
      await reconnected;
      const served = await chat(second.url, consumerKey, "served while the dead hub's reservations still look live", false);
      expect(served.receipt_id).not.toBeNull();
      load.charged.set(served.receipt_id!, BigInt(served.cost_units));
      expect((await openReservations(raw)).map((r) => r.id)).toEqual(leftIds);
      // No reconcile without time passing either: the 60 s window holds.
      expect(await store.reconcile()).toEqual([]);
      // The test must not wait a minute: it ages the dead process's heartbeat by 61 s (what
      // a minute of silence looks like), then a hub starting on the database (here the
      // restarted one, started again) must release exactly those reservations by itself.
      await raw.run("UPDATE hub_processes SET seen_at = seen_at - 61000 WHERE id = ?", [dead]);
      const providerBack = once(provider, "disconnected");
      await kill9(second); // it holds no reservation now: no request is running
      await within(providerBack, 5_000, "the provider noticing the restart");
      const third = await serve(args);
      expect(third.url).toBe(first.url);
      await until(
        "the hub starting after a minute of silence releasing the dead process's reservations",
        5_000,
        async () => (await openReservations(raw)).length === 0,
      );
      expect(
        await count(
          raw,
          `SELECT COUNT(*) AS n FROM reservations WHERE id IN (${placeholders(leftIds.length)}) AND state = 'released'`,
          leftIds,
        ),
      ).toBe(leftIds.length);
      await within(provider.ready(), 15_000, "the provider's reconnection to the third start");
    }
    const tReconciled = Date.now();
    expect(
      await count(
        raw,
        `SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind = 'release' AND ref IN (${placeholders(leftIds.length)}) AND memo LIKE ?`,
        [...leftIds, `%${DEAD_HOLDER_REASON}%`],
      ),
    ).toBe(leftIds.length);
    expect(
      await count(
        raw,
        `SELECT COUNT(*) AS n FROM reservations WHERE id IN (${placeholders(leftIds.length)}) AND state = 'released'`,
        leftIds,
      ),
    ).toBe(leftIds.length);
    await checkBooks(db, dataDir, raw, store, load.charged);

    // -- the provider is back by itself; a new request is served and billed -------------
    await reconnected;
    const before = await store.summary(CONSUMER);
    const after1 = await chat(second.url, consumerKey, "after the crash", true);
    expect(after1.receipt_id).not.toBeNull();
    const charge = BigInt(after1.cost_units);
    expect(charge).toBeGreaterThan(0n);
    load.charged.set(after1.receipt_id!, charge);
    const afterSummary = await store.summary(CONSUMER);
    expect(afterSummary.spent - before.spent).toBe(charge);
    expect(afterSummary.requests).toBe(before.requests + 1);
    await checkBooks(db, dataDir, raw, store, load.charged);
    const show = await cli(["ledger", "show", CONSUMER, "--data-dir", dataDir, "--db", db.spec]);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({
      account: CONSUMER,
      held: { units: "0" },
      spent: { units: afterSummary.spent.toString() },
    });

    // The restarted hub met no storage error.
    expect(second.log.filter((l) => l.includes('"storage.error"'))).toEqual([]);

    const settled = await count(raw, "SELECT COUNT(*) AS n FROM reservations WHERE state = 'settled'");
    const tEnd = Date.now();
    console.info(
      `[crash ${engine.name}] db ${tDb - t0} ms; load ${tKill - tLoad} ms: ${completedBeforeKill} answered, ${inFlightAtKill} in flight at the kill, ` +
        `${leftIds.length} reservations left open; restart ${tRestart - tKill} ms; reconciled ${tReconciled - tRestart} ms after; ` +
        `${settled} settled (${load.charged.size} answered to consumers); provider warnings [${[...new Set(warnings)].join(", ")}]; total ${tEnd - t0} ms`,
    );
  }, 45_000);
});
