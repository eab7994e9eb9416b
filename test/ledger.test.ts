/**
 * The hub's ledger and storage (`SqlStore`) on every engine it runs on: one suite body,
 * run against SQLite in a file, SQLite in memory and a real, throwaway PostgreSQL server,
 * so the engines are held to the same behaviour. Every test uses fresh account ids; the
 * tests of one engine share one database, except those that damage it on purpose.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countersignReceipt, createReceipt, generateIdentity, INITIAL_POSITION, type ReceiptPosition } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { openStore, SqlStore, type OpenStoreOptions } from "@srp/hub";
import { BOUNTY_POOL, discountFor, EXTERNAL, holdAccount, PLATFORM, splitCharge, userAccount } from "@srp/hub/ledger";
import { int, MIGRATIONS, openPostgres, openSqlite, type SqlDriver } from "@srp/hub/storage";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

// ---------------------------------------------------------------------------
// Engines

/** One database of an engine. */
interface Db {
  /** What `openStore` takes. */
  spec: string;
  /** Opens another raw connection to the same database; absent for `:memory:`, which no second connection reaches. */
  raw?: () => SqlDriver;
}

interface Engine {
  name: string;
  dialect: "sqlite" | "postgres";
  /** Whether a second store or connection reaches the same database. */
  shared: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A new, empty database. */
  fresh(label: string): Promise<Db>;
}

let dbCount = 0;

function sqliteFileEngine(): Engine {
  let dir = "";
  return {
    name: "SQLite (file)",
    dialect: "sqlite",
    shared: true,
    async start() {
      dir = await mkdtemp(join(tmpdir(), "srp-ledger-"));
    },
    async stop() {
      if (dir) await rm(dir, { recursive: true, force: true });
    },
    async fresh(label) {
      const path = join(dir, `${label}_${++dbCount}.sqlite`);
      return { spec: `sqlite:${path}`, raw: () => openSqlite(path) };
    },
  };
}

function sqliteMemoryEngine(): Engine {
  return {
    name: "SQLite (:memory:)",
    dialect: "sqlite",
    shared: false,
    async start() {},
    async stop() {},
    async fresh() {
      return { spec: ":memory:" };
    },
  };
}

function postgresEngine(): Engine {
  let server: TestPostgres | undefined;
  return {
    name: "PostgreSQL",
    dialect: "postgres",
    shared: true,
    async start() {
      server = await startPostgres();
    },
    async stop() {
      await server?.stop();
    },
    async fresh(label) {
      if (!server) throw new Error("the PostgreSQL server is not running");
      const url = await createDatabase(server.url, `ledger_${label}_${++dbCount}`);
      return { spec: url, raw: () => openPostgres(url, { max: 2 }) };
    },
  };
}

// ---------------------------------------------------------------------------
// Helpers

let idCount = 0;
/** A fresh account id. */
const acct = (tag: string) => `acct_${tag}_${++idCount}_${Math.random().toString(36).slice(2, 8)}`;

/** The hub that countersigns every receipt of these tests. */
const HUB = generateIdentity();

/** A node that numbers its receipts to the hub (one position, kept across records). */
class Node {
  readonly identity = generateIdentity();
  position: ReceiptPosition = INITIAL_POSITION;
  get id(): string {
    return this.identity.id;
  }
  /** The next countersigned receipt, for a job that cost exactly `units` (one unit per prompt token). */
  receipt(units: bigint, jobId = `job_${++idCount}_${Math.random().toString(36).slice(2, 10)}`): Receipt {
    const now = Date.now();
    const r = createReceipt(
      {
        jobId,
        hubId: HUB.id,
        instanceId: "ledger-test.0",
        model: "ledger-test",
        requestHash: "0".repeat(64),
        responseHash: "1".repeat(64),
        usage: { promptTokens: Number(units), completionTokens: 0, measured: true },
        price: { input: "1000000", output: "0" },
        startedAt: now - 5,
        finishedAt: now,
      },
      this.position,
      this.identity,
    );
    if (r.cost !== units.toString()) throw new Error(`receipt costs ${r.cost}, wanted ${units}`);
    this.position = { lastSeq: r.seq, totals: r.totals };
    return countersignReceipt(r, HUB);
  }
}

/** Something that must be closed when the suite ends, even if a test fails half way. */
interface Closable {
  close(): Promise<void>;
}

async function reserveOk(store: SqlStore, accountId: string, amount: bigint): Promise<{ reservationId: string; discountBps: number }> {
  const r = await store.reserve(accountId, amount);
  if (!r.ok) throw new Error(`reserving ${amount} for ${accountId} failed: ${r.available} available`);
  return r;
}

/** The sum of every ledger account's balance (zero on sound books: money is neither created nor destroyed). */
async function totalOfAllBalances(raw: SqlDriver): Promise<bigint> {
  const [row] = await raw.all("SELECT COALESCE(SUM(balance), 0) AS s FROM ledger_accounts");
  return BigInt(String(row!.s));
}

// ---------------------------------------------------------------------------
// Racing processes: the same reserve race from separate OS processes.

let childScript: Promise<{ dir: string; path: string }> | undefined;

/** A child script (bundled from the sources by esbuild) that opens a store, waits for "go" on stdin, fires `count` reserves at once and prints which succeeded. */
function childReserver(): Promise<{ dir: string; path: string }> {
  childScript ??= (async () => {
    const { build } = await import("esbuild");
    const require = createRequire(import.meta.url);
    const source = `
      import { createInterface } from "node:readline";
      import { openStore } from "./packages/srp-hub/src/storage/open.ts";
      const [spec, accountId, amount, count] = process.argv.slice(2);
      const store = await openStore(spec);
      const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
      process.stdout.write("ready\\n");
      await lines.next();
      const results = await Promise.all(Array.from({ length: Number(count) }, () => store.reserve(accountId, BigInt(amount))));
      process.stdout.write(JSON.stringify(results.map((r) => r.ok)) + "\\n");
      await store.close();
      process.exit(0);
    `;
    const out = await build({
      stdin: { contents: source, resolveDir: ROOT, loader: "ts", sourcefile: "reserver.ts" },
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
      logLevel: "silent",
      // Bundled CommonJS (tweetnacl) calls require("crypto"): give the ES module a real require.
      banner: {
        js: 'import { createRequire as __srpCreateRequire } from "node:module"; const require = __srpCreateRequire(import.meta.url);',
      },
      plugins: [
        {
          name: "srp-sources",
          setup(b) {
            // The workspace's own sources, not whatever dist/ holds; native and driver packages stay outside the bundle.
            b.onResolve({ filter: /^@srp\/core$/ }, () => ({ path: join(ROOT, "packages/srp-core/src/index.ts") }));
            b.onResolve({ filter: /^(better-sqlite3|pg|pg-native)$/ }, (a) => {
              try {
                return { path: require.resolve(a.path, { paths: [ROOT] }), external: true };
              } catch {
                return { path: a.path, external: true };
              }
            });
          },
        },
      ],
    });
    const dir = await mkdtemp(join(tmpdir(), "srp-ledger-child-"));
    const path = join(dir, "reserver.mjs");
    await writeFile(path, out.outputFiles[0]!.text);
    return { dir, path };
  })();
  return childScript;
}

/** Runs `processes` child processes that each fire `each` reserves of `amount` at once; returns every outcome. */
async function raceFromProcesses(spec: string, accountId: string, amount: bigint, processes: number, each: number): Promise<boolean[]> {
  const { path } = await childReserver();
  const children = Array.from({ length: processes }, () => {
    const child = spawn(process.execPath, [path, spec, accountId, amount.toString(), String(each)], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const exited = new Promise<void>((resolve, reject) =>
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`reserver exited with ${code}: ${stderr}`)))),
    );
    exited.catch(() => {});
    const next = async () => {
      const line = await Promise.race([lines.next(), exited.then(() => ({ done: true, value: undefined }))]);
      if (line.done || line.value === undefined) throw new Error(`reserver ended early: ${stderr}`);
      return String(line.value);
    };
    return { child, next, exited };
  });
  try {
    for (const c of children) expect(await c.next()).toBe("ready");
    for (const c of children) c.child.stdin.write("go\n");
    const results = await Promise.all(children.map(async (c) => JSON.parse(await c.next()) as boolean[]));
    await Promise.all(children.map((c) => c.exited));
    return results.flat();
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGKILL");
  }
}

afterAll(async () => {
  if (childScript) await rm((await childScript).dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// The suite, once per engine

describe.each([sqliteFileEngine(), sqliteMemoryEngine(), postgresEngine()])("ledger on $name", (engine) => {
  let db: Db;
  let store: SqlStore;
  /** A raw connection to the main database (engines with `shared`). */
  let raw: SqlDriver | undefined;
  const toClose: Closable[] = [];

  /** Opens a store (closed when the suite ends if the test does not close it). */
  async function open(spec: string, options: OpenStoreOptions = {}): Promise<SqlStore> {
    const s = await openStore(spec, options);
    toClose.push(s);
    return s;
  }
  function rawOf(d: Db): SqlDriver {
    if (!d.raw) throw new Error(`${engine.name} has no second connection`);
    const r = d.raw();
    toClose.push(r);
    return r;
  }
  async function closeOnce(c: Closable): Promise<void> {
    const i = toClose.indexOf(c);
    if (i >= 0) toClose.splice(i, 1);
    await c.close();
  }

  beforeAll(async () => {
    await engine.start();
    db = await engine.fresh("main");
    store = await open(db.spec);
    if (engine.shared) raw = rawOf(db);
  }, 60_000);

  afterAll(async () => {
    for (const c of toClose.reverse()) await c.close().catch(() => {});
    await engine.stop();
  }, 60_000);

  // -- migrations -------------------------------------------------------------

  describe("migrations", () => {
    it("migrates a new database to the latest version", async () => {
      expect(store.dialect).toBe(engine.dialect);
      expect(await store.schemaVersion()).toBe(MIGRATIONS.length);
    });

    it.runIf(engine.shared)("reopening a migrated database is a no-op that keeps its data", async () => {
      const id = acct("reopen");
      await store.createAccount({ id });
      const again = await open(db.spec);
      expect(await again.schemaVersion()).toBe(MIGRATIONS.length);
      const versions = (await raw!.all("SELECT version FROM schema_migrations ORDER BY version")).map((r) => int(r.version));
      expect(versions).toEqual(MIGRATIONS.map((_, i) => i + 1));
      expect(await again.getAccount(id)).toMatchObject({ id });
      expect(await again.available(id)).toBe(1_000_000n); // signup credits not granted again
      await closeOnce(again);
    });

    it.runIf(engine.shared)("refuses a database newer than this hub", async () => {
      const fresh = await engine.fresh("newer");
      await closeOnce(await open(fresh.spec));
      const r = rawOf(fresh);
      await r.run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [MIGRATIONS.length + 1, Date.now()]);
      await expect(openStore(fresh.spec)).rejects.toThrow(
        `database schema version ${MIGRATIONS.length + 1} is newer than this hub (${MIGRATIONS.length})`,
      );
      await closeOnce(r);
    });

    // KNOWN BUG, skipped: SqlStore.#migrate runs `CREATE TABLE IF NOT EXISTS schema_migrations`
    // before it takes the advisory lock, and PostgreSQL's IF NOT EXISTS is not safe against a
    // concurrent CREATE: the losers fail with 'type "schema_migrations" already exists'.
    it.runIf(engine.dialect === "postgres")("hubs starting at once on a new database migrate it exactly once", async () => {
      const fresh = await engine.fresh("together");
      const stores = await Promise.all(Array.from({ length: 5 }, () => open(fresh.spec)));
      for (const s of stores) expect(await s.schemaVersion()).toBe(MIGRATIONS.length);
      const r = rawOf(fresh);
      expect((await r.all("SELECT version FROM schema_migrations")).length).toBe(MIGRATIONS.length);
      for (const s of stores) await closeOnce(s);
      await closeOnce(r);
    });
  });

  // -- accounts and signup credits ---------------------------------------------

  describe("signup credits", () => {
    it("grants $1 by default, from the platform", async () => {
      const id = acct("default");
      const platform = await store.ledgerBalance(PLATFORM);
      await store.createAccount({ id });
      expect(await store.available(id)).toBe(1_000_000n);
      expect(await store.ledgerBalance(PLATFORM)).toBe(platform - 1_000_000n);
    });

    it("grants the configured amount exactly once, visible in summary and history", async () => {
      const s = await open(db.spec, { signupCredits: 2_500_000n });
      const id = acct("signup");
      await s.createAccount({ id, name: "Signup" });
      expect(await s.available(id)).toBe(2_500_000n);
      expect(await s.summary(id)).toMatchObject({
        accountId: id,
        balance: 2_500_000n,
        held: 0n,
        prepaid: 0n, // signup credits are not a deposit: no discount, nothing to refund
        discountBps: 0,
        spent: 0n,
        earned: 0n,
        deposited: 0n,
        refunded: 0n,
        requests: 0,
      });
      const history = await s.history(id);
      expect(history).toHaveLength(1);
      expect(history[0]).toMatchObject({ kind: "signup_credit", amount: 2_500_000n, held: 0n });

      // Creating it again fails and grants nothing; importing a key for it grants nothing either.
      await expect(s.createAccount({ id })).rejects.toThrow(/exists/);
      await s.importApiKey(id, `srp_${id}_key_0000000000000001`);
      expect(await s.available(id)).toBe(2_500_000n);
      expect(await s.history(id)).toHaveLength(1);
      expect(await s.refund(id, `refund-${id}`)).toBe(0n); // never refundable
      await closeOnce(s);
    });

    it("two callers creating the same account at once credit it once", async () => {
      const id = acct("import");
      const platform = await store.ledgerBalance(PLATFORM);
      await Promise.all([
        store.importApiKey(id, `srp_${id}_key_0000000000000001`),
        store.importApiKey(id, `srp_${id}_key_0000000000000002`),
      ]);
      expect(await store.available(id)).toBe(1_000_000n);
      expect(await store.ledgerBalance(PLATFORM)).toBe(platform - 1_000_000n);
      expect(await store.listApiKeys(id)).toHaveLength(2);
    });

    it("signupCredits 0 grants nothing", async () => {
      const s = await open(db.spec, { signupCredits: 0n });
      const id = acct("none");
      await s.createAccount({ id });
      expect(await s.available(id)).toBe(0n);
      expect(await s.history(id)).toEqual([]);
      expect(await s.summary(id)).toMatchObject({ balance: 0n, held: 0n });
      expect(await s.reserve(id, 1n)).toEqual({ ok: false, available: 0n });
      await closeOnce(s);
    });

    it("negative signup credits are refused", async () => {
      await expect(openStore(db.spec, { signupCredits: -1n })).rejects.toThrow(RangeError);
    });
  });

  // -- reserve and settle -------------------------------------------------------

  describe("reserve and settle", () => {
    it("settles a reservation from a countersigned receipt: consumer, provider and platform", async () => {
      const consumer = acct("consumer");
      const provider = acct("provider");
      await store.createAccount({ id: consumer });
      await store.createAccount({ id: provider });
      const platform = await store.ledgerBalance(PLATFORM);

      const r = await reserveOk(store, consumer, 100_000n);
      expect(r.discountBps).toBe(0);
      expect(await store.available(consumer)).toBe(900_000n);
      expect(await store.ledgerBalance(holdAccount(consumer))).toBe(100_000n);
      expect((await store.summary(consumer)).held).toBe(100_000n);

      const node = new Node();
      const receipt = node.receipt(40_001n);
      const settled = await store.record({
        receipt,
        consumerAccountId: consumer,
        providerAccountId: provider,
        reservationId: r.reservationId,
      });
      // 90 % of 40001 is 36000.9: the provider gets 36000, the platform the other 4001.
      expect(settled).toMatchObject({
        charge: 40_001n,
        refund: 59_999n,
        provider: 36_000n,
        protocol: 4_001n,
        overrun: 0n,
        reservationId: r.reservationId,
        discountBps: 0,
      });
      expect(await store.available(consumer)).toBe(1_000_000n - 40_001n);
      expect(await store.ledgerBalance(holdAccount(consumer))).toBe(0n);
      expect(await store.available(provider)).toBe(1_000_000n + 36_000n);
      expect(await store.ledgerBalance(PLATFORM)).toBe(platform + 4_001n);
      expect(await store.summary(consumer)).toMatchObject({ balance: 959_999n, held: 0n, spent: 40_001n, earned: 0n, requests: 1 });
      expect(await store.summary(provider)).toMatchObject({ balance: 1_036_000n, spent: 0n, earned: 36_000n, requests: 0 });

      expect(await store.get(receipt.jobId)).toMatchObject({
        receipt,
        consumerAccountId: consumer,
        providerAccountId: provider,
        reservationId: r.reservationId,
      });
      expect(await store.position(node.id)).toEqual(node.position);

      const consumerHistory = await store.history(consumer);
      expect(consumerHistory.map((h) => h.kind).sort()).toEqual(["reserve", "settle", "signup_credit"]);
      expect(consumerHistory.find((h) => h.kind === "reserve")).toMatchObject({ amount: -100_000n, held: 100_000n, ref: r.reservationId });
      expect(consumerHistory.find((h) => h.kind === "settle")).toMatchObject({
        amount: 59_999n,
        held: -100_000n,
        ref: r.reservationId,
        memo: { jobId: receipt.jobId, cost: "40001", charge: "40001", discountBps: 0, provider },
      });
      expect((await store.history(provider)).find((h) => h.kind === "settle")).toMatchObject({ amount: 36_000n, held: 0n });

      // A second receipt (another job) naming the same reservation is stored but charges nothing.
      const second = node.receipt(70_000n);
      expect(
        await store.record({ receipt: second, consumerAccountId: consumer, providerAccountId: provider, reservationId: r.reservationId }),
      ).toBeUndefined();
      expect(await store.available(consumer)).toBe(959_999n);
      expect(await store.available(provider)).toBe(1_036_000n);
      expect(await store.ledgerBalance(PLATFORM)).toBe(platform + 4_001n);
      expect(await store.summary(consumer)).toMatchObject({ spent: 40_001n, requests: 1 });
      expect((await store.summary(provider)).earned).toBe(36_000n);
      const stored = await store.get(second.jobId);
      expect(stored?.reservationId).toBeUndefined();
      expect(await store.position(node.id)).toEqual(node.position);
      expect(await store.verify()).toEqual([]);
    });

    it("receipts recorded at once: a reservation settles once, for the first receipt naming it, and a receipt that cannot be stored fails alone", async () => {
      const consumer = acct("at-once");
      const provider = acct("at-once-provider");
      await store.createAccount({ id: consumer });
      const node = new Node();
      const first = node.receipt(10n);
      await store.record({ receipt: first, providerAccountId: provider });
      const r = await reserveOk(store, consumer, 1_000n);
      const a = node.receipt(100n);
      const b = node.receipt(200n);
      // In one turn of the event loop (one batch on PostgreSQL): a stored receipt again, and two naming one reservation.
      const [dup, ra, rb] = await Promise.allSettled([
        store.record({ receipt: first, providerAccountId: provider }),
        store.record({ receipt: a, consumerAccountId: consumer, providerAccountId: provider, reservationId: r.reservationId }),
        store.record({ receipt: b, consumerAccountId: consumer, providerAccountId: provider, reservationId: r.reservationId }),
      ]);
      expect(dup.status).toBe("rejected");
      expect(ra).toMatchObject({ status: "fulfilled", value: { charge: 100n, reservationId: r.reservationId } });
      expect(rb).toEqual({ status: "fulfilled", value: undefined });
      expect(await store.summary(consumer)).toMatchObject({ spent: 100n, held: 0n, requests: 1 });
      expect((await store.get(b.jobId))?.reservationId).toBeUndefined();
      expect(await store.position(node.id)).toEqual(node.position);
      expect(await store.verify()).toEqual([]);
    });

    it("applies the prepaid discount to the consumer's charge, not to the provider's share", async () => {
      const consumer = acct("prepaid");
      const provider = acct("provider");
      await store.createAccount({ id: consumer });
      expect(await store.deposit(consumer, 50_000_000n, `dep-${consumer}`)).toBe(true);
      const platform = await store.ledgerBalance(PLATFORM);
      const r = await reserveOk(store, consumer, 20_000n);
      expect(r.discountBps).toBe(1000);
      const receipt = new Node().receipt(12_345n);
      const settled = await store.record({
        receipt,
        consumerAccountId: consumer,
        providerAccountId: provider,
        reservationId: r.reservationId,
      });
      // 12345 at 10 % off: the consumer pays ceil(11110.5) = 11111, the provider gets floor(11110.5) = 11110.
      expect(settled).toMatchObject({
        charge: 11_111n,
        refund: 8_889n,
        provider: 11_110n,
        protocol: 1n,
        overrun: 0n,
        reservationId: r.reservationId,
        discountBps: 1000,
      });
      expect(await store.available(consumer)).toBe(51_000_000n - 11_111n);
      expect(await store.available(provider)).toBe(11_110n); // never an account here: no signup credits
      expect(await store.ledgerBalance(PLATFORM)).toBe(platform + 1n);
      expect((await store.summary(consumer)).spent).toBe(11_111n);
    });

    it("caps the charge at the reservation, and the provider's share at the share of the reservation", async () => {
      const consumer = acct("overrun");
      const provider = acct("provider");
      await store.createAccount({ id: consumer });
      const platform = await store.ledgerBalance(PLATFORM);
      const r = await reserveOk(store, consumer, 1_000n);
      const settled = await store.record({
        receipt: new Node().receipt(5_000n),
        consumerAccountId: consumer,
        providerAccountId: provider,
        reservationId: r.reservationId,
      });
      // A receipt for more than the request allowed earns no more than the maximum admitted (SRP-BIL-005).
      expect(settled).toMatchObject({ charge: 1_000n, refund: 0n, provider: 900n, protocol: 100n, overrun: 4_000n });
      expect(await store.available(consumer)).toBe(999_000n);
      expect(await store.available(provider)).toBe(900n);
      expect((await store.ledgerBalance(PLATFORM)) + (await store.ledgerBalance("bounty_pool"))).toBe(platform + 100n);
      expect(await store.verify()).toEqual([]);
    });

    it("a consumer that served its own request pays only the protocol's share", async () => {
      const self = acct("self");
      await store.createAccount({ id: self });
      const r = await reserveOk(store, self, 10_000n);
      const settled = await store.record({
        receipt: new Node().receipt(10_000n),
        consumerAccountId: self,
        providerAccountId: self,
        reservationId: r.reservationId,
      });
      expect(settled).toMatchObject({ charge: 10_000n, provider: 9_000n, protocol: 1_000n });
      expect(await store.available(self)).toBe(999_000n);
      expect(await store.summary(self)).toMatchObject({ spent: 10_000n, earned: 9_000n, held: 0n });
      expect(await store.verify()).toEqual([]);
    });

    it("a receipt naming no known reservation is stored and charges nothing", async () => {
      const provider = acct("provider");
      const receipt = new Node().receipt(500n);
      expect(await store.record({ receipt, providerAccountId: provider, reservationId: "res_nothing_like_it" })).toBeUndefined();
      const stored = await store.get(receipt.jobId);
      expect(stored).toMatchObject({ receipt, providerAccountId: provider });
      expect(stored?.reservationId).toBeUndefined();
      expect(await store.available(provider)).toBe(0n);
    });

    it("a zero reservation (a free model) reserves, settles and releases with sound books", async () => {
      const consumer = acct("free");
      const provider = acct("provider");
      await store.createAccount({ id: consumer });
      const a = await reserveOk(store, consumer, 0n);
      expect(await store.verify()).toEqual([]);
      const node = new Node();
      expect(
        await store.record({
          receipt: node.receipt(0n),
          consumerAccountId: consumer,
          providerAccountId: provider,
          reservationId: a.reservationId,
        }),
      ).toMatchObject({
        charge: 0n,
        provider: 0n,
      });
      const b = await reserveOk(store, consumer, 0n);
      expect(await store.release(b.reservationId, "test")).toBe(true);
      // A zero reservation that turns out to cost something: nobody pays, nobody earns beyond what was admitted.
      const c = await reserveOk(store, consumer, 0n);
      expect(
        await store.record({
          receipt: node.receipt(100n),
          consumerAccountId: consumer,
          providerAccountId: provider,
          reservationId: c.reservationId,
        }),
      ).toMatchObject({
        charge: 0n,
        provider: 0n,
        protocol: 0n,
        overrun: 100n,
      });
      expect(await store.available(consumer)).toBe(1_000_000n);
      expect(await store.available(provider)).toBe(0n);
      expect(await store.verify()).toEqual([]);
    });

    // KNOWN BUG, skipped on PostgreSQL: SqlStore.record and #release read the reservation's
    // state without locking its row, so under READ COMMITTED both see it open and both move
    // its money (the consumer gets it back twice, or record throws InsufficientFunds on the
    // hold and the receipt is lost). On SQLite transactions run one at a time.
    it("settling, releasing and settling again the same reservation at once moves its money once", async () => {
      // Its own database: when the bug bites, the damage stays out of the other tests' books.
      const store = await open((await engine.fresh("dup")).spec);
      const consumer = acct("dup");
      const provider = acct("provider");
      await store.createAccount({ id: consumer });
      const node = new Node();
      const reservations = await Promise.all(Array.from({ length: 10 }, () => reserveOk(store, consumer, 10_000n)));
      const receipts = reservations.flatMap(() => [node.receipt(4_000n), node.receipt(6_000n)]);
      const settled = await Promise.allSettled(
        reservations.flatMap((r, i) => [
          store.record({
            receipt: receipts[2 * i]!,
            consumerAccountId: consumer,
            providerAccountId: provider,
            reservationId: r.reservationId,
          }),
          store.release(r.reservationId, "race"),
          store.record({
            receipt: receipts[2 * i + 1]!,
            consumerAccountId: consumer,
            providerAccountId: provider,
            reservationId: r.reservationId,
          }),
        ]),
      );
      expect(settled.filter((o) => o.status === "rejected").map((o) => String(o.reason))).toEqual([]);
      const outcomes = settled.map((o) => (o.status === "fulfilled" ? o.value : undefined));
      let expected = 1_000_000n;
      let earned = 0n;
      for (let i = 0; i < reservations.length; i++) {
        const [first, released, second] = outcomes.slice(3 * i, 3 * i + 3) as [
          { charge: bigint; provider: bigint } | undefined,
          boolean,
          { charge: bigint; provider: bigint } | undefined,
        ];
        const closers = [first !== undefined, released === true, second !== undefined].filter(Boolean).length;
        expect(closers).toBe(1);
        const s = first ?? second;
        if (s) {
          expected -= s.charge;
          earned += s.provider;
        }
      }
      expect(await store.available(consumer)).toBe(expected);
      expect(await store.ledgerBalance(holdAccount(consumer))).toBe(0n);
      expect(await store.summary(provider)).toMatchObject({ balance: earned, earned });
      expect(await store.verify()).toEqual([]);
      await closeOnce(store);
    });
  });

  // -- release ---------------------------------------------------------------------

  describe("release", () => {
    it("returns the reservation once; a later receipt charges nothing", async () => {
      const consumer = acct("release");
      const provider = acct("provider");
      await store.createAccount({ id: consumer });
      const r = await reserveOk(store, consumer, 300_000n);
      expect(await store.available(consumer)).toBe(700_000n);
      expect(await store.release(r.reservationId, "upstream failed")).toBe(true);
      expect(await store.available(consumer)).toBe(1_000_000n);
      expect(await store.ledgerBalance(holdAccount(consumer))).toBe(0n);
      expect(await store.release(r.reservationId, "again")).toBe(false);
      expect(await store.available(consumer)).toBe(1_000_000n);

      const receipt = new Node().receipt(100_000n);
      expect(
        await store.record({ receipt, consumerAccountId: consumer, providerAccountId: provider, reservationId: r.reservationId }),
      ).toBeUndefined();
      expect(await store.available(consumer)).toBe(1_000_000n);
      expect(await store.available(provider)).toBe(0n);
      expect(await store.summary(consumer)).toMatchObject({ spent: 0n, requests: 0, held: 0n });

      const history = await store.history(consumer);
      expect(history.find((h) => h.kind === "release")).toMatchObject({
        amount: 300_000n,
        held: -300_000n,
        ref: r.reservationId,
        memo: { reason: "upstream failed" },
      });
      expect(history.filter((h) => h.kind === "release")).toHaveLength(1);
      expect(await store.release("res_unknown", "never reserved")).toBe(false);
      expect(await store.verify()).toEqual([]);
    });
  });

  // -- insufficient funds --------------------------------------------------------------

  describe("insufficient funds", () => {
    it("refuses a reservation beyond what a ledger column holds (2^63 units and more) as a shortfall, not a storage error", async () => {
      const id = acct("huge");
      await store.createAccount({ id });
      expect(await store.reserve(id, 2n ** 63n)).toEqual({ ok: false, available: 1_000_000n });
      expect(await store.reserve(id, 10n ** 30n)).toEqual({ ok: false, available: 1_000_000n });
      expect(await store.reserveMany(id, [2n ** 62n, 2n ** 62n], 0)).toEqual({ ok: false, available: 1_000_000n });
      expect(await store.available(id)).toBe(1_000_000n);
      expect(await store.verify()).toEqual([]);
    });

    it("refuses a reservation above the balance and moves nothing", async () => {
      const id = acct("poor");
      await store.createAccount({ id });
      const before = await store.history(id);
      expect(await store.reserve(id, 1_000_001n)).toEqual({ ok: false, available: 1_000_000n });
      expect(await store.available(id)).toBe(1_000_000n);
      expect(await store.ledgerBalance(holdAccount(id))).toBe(0n);
      expect(await store.history(id)).toEqual(before);

      // Exactly the balance is fine; after that nothing is left, not even one unit.
      const all = await reserveOk(store, id, 1_000_000n);
      expect(await store.reserve(id, 1n)).toEqual({ ok: false, available: 0n });
      expect(await store.summary(id)).toMatchObject({ balance: 0n, held: 1_000_000n });
      expect(await store.release(all.reservationId, "done")).toBe(true);
      expect(await store.verify()).toEqual([]);
    });

    it("a batch reserves all of its amounts or none, each with the batch discount or the larger prepaid one", async () => {
      const id = acct("batch");
      await store.createAccount({ id });
      const before = await store.history(id);
      // 600k + 500k > the $1 of signup credits: nothing is held.
      expect(await store.reserveMany(id, [600_000n, 500_000n], 1000)).toEqual({ ok: false, available: 1_000_000n });
      expect(await store.summary(id)).toMatchObject({ balance: 1_000_000n, held: 0n });
      expect(await store.history(id)).toEqual(before);
      const r = await store.reserveMany(id, [600_000n, 300_000n, 0n], 1000);
      if (!r.ok) throw new Error("the batch should fit");
      expect(r.reservationIds).toHaveLength(3);
      expect(new Set(r.reservationIds).size).toBe(3);
      expect(r.discountBps).toBe(1000);
      expect(await store.summary(id)).toMatchObject({ balance: 100_000n, held: 900_000n });
      // Each reservation settles or is released on its own, at the batch's discount.
      const settled = await store.record({
        receipt: new Node().receipt(10_000n),
        consumerAccountId: id,
        providerAccountId: acct("batch-provider"),
        reservationId: r.reservationIds[0]!,
      });
      expect(settled).toMatchObject({ charge: 9_000n, refund: 591_000n, provider: 9_000n, discountBps: 1000 });
      expect(await store.release(r.reservationIds[1]!, "the item failed")).toBe(true);
      expect(await store.release(r.reservationIds[2]!, "the item failed")).toBe(true);
      expect(await store.summary(id)).toMatchObject({ balance: 991_000n, held: 0n });
      // Discounts do not stack: a 5 % tier keeps the batch's 10 %, a 15 % tier wins over it.
      expect(await store.deposit(id, 10_000_000n, `dep-${id}`)).toBe(true);
      const five = await store.reserveMany(id, [1_000n], 1000);
      expect(five).toMatchObject({ ok: true, discountBps: 1000 });
      if (five.ok) await store.release(five.reservationIds[0]!, "done");
      expect(await store.deposit(id, 190_000_000n, `dep2-${id}`)).toBe(true);
      const fifteen = await store.reserveMany(id, [1_000n], 1000);
      expect(fifteen).toMatchObject({ ok: true, discountBps: 1500 });
      if (fifteen.ok) await store.release(fifteen.reservationIds[0]!, "done");
      await expect(store.reserveMany(id, [-1n], 0)).rejects.toThrow(RangeError);
      expect(await store.verify()).toEqual([]);
    });

    it("an unknown account has nothing; a negative reservation is an error", async () => {
      expect(await store.reserve(acct("ghost"), 1n)).toEqual({ ok: false, available: 0n });
      await expect(store.reserve(acct("ghost"), -1n)).rejects.toThrow(RangeError);
    });
  });

  // -- deposits and refunds ---------------------------------------------------------------

  describe("deposits and refunds", () => {
    it("a deposit is idempotent by reference and earns the tier discount on later reservations", async () => {
      const a = acct("dep");
      const b = acct("dep");
      await store.createAccount({ id: a });
      await store.createAccount({ id: b });
      const external = await store.ledgerBalance(EXTERNAL);
      const ref = `dep-${a}`;
      expect((await reserveOk(store, a, 1n)).discountBps).toBe(0);
      expect(await store.deposit(a, 50_000_000n, ref, { via: "test" })).toBe(true);
      expect(await store.deposit(a, 50_000_000n, ref)).toBe(false);
      expect(await store.deposit(b, 50_000_000n, ref)).toBe(false); // the reference is spent, whoever names it
      expect(await store.available(a)).toBe(51_000_000n - 1n);
      expect(await store.available(b)).toBe(1_000_000n);
      expect(await store.ledgerBalance(EXTERNAL)).toBe(external - 50_000_000n);
      expect(await store.summary(a)).toMatchObject({ deposited: 50_000_000n, refunded: 0n, prepaid: 50_000_000n, discountBps: 1000 });
      expect((await reserveOk(store, a, 1n)).discountBps).toBe(1000);
      expect((await store.history(a)).filter((h) => h.kind === "deposit")).toEqual([
        expect.objectContaining({ amount: 50_000_000n, ref, memo: { via: "test" } }),
      ]);
    });

    it("tiers start at exactly $10, $50 and $200 deposited", async () => {
      const id = acct("tiers");
      await store.createAccount({ id });
      const steps: Array<[bigint, number]> = [
        [9_999_999n, 0],
        [1n, 500], // 10_000_000
        [39_999_999n, 500], // 49_999_999
        [1n, 1000], // 50_000_000
        [149_999_999n, 1000], // 199_999_999
        [1n, 1500], // 200_000_000
      ];
      for (const [i, [amount, bps]] of steps.entries()) {
        expect(await store.deposit(id, amount, `tier-${id}-${i}`)).toBe(true);
        expect((await store.summary(id)).discountBps).toBe(bps);
        const r = await reserveOk(store, id, 0n);
        expect(r.discountBps).toBe(bps);
        await store.release(r.reservationId, "probe");
      }
    });

    it("refuses deposits that are not positive or name no account", async () => {
      const id = acct("bad");
      await store.createAccount({ id });
      await expect(store.deposit(id, 0n, `z-${id}`)).rejects.toThrow(RangeError);
      await expect(store.deposit(id, -5n, `n-${id}`)).rejects.toThrow(RangeError);
      await expect(store.deposit(acct("ghost"), 5n, `g-${id}`)).rejects.toThrow(/no account/);
      expect(await store.available(id)).toBe(1_000_000n);
    });

    it("simultaneous refunds with different references never return more than was deposited", async () => {
      const id = acct("refund-race");
      await store.createAccount({ id });
      await store.deposit(id, 10_000_000n, `${id}-dep`);
      const refunds = await Promise.all([0, 1, 2, 3].map((i) => store.refund(id, `${id}-r${i}`)));
      expect(refunds.reduce((a, b) => a + b, 0n)).toBe(10_000_000n);
      expect((await store.summary(id)).refunded).toBe(10_000_000n);
      expect(await store.verify()).toEqual([]);
    });

    it("a refund returns at most what was deposited and not refunded, never more than the balance, once per reference", async () => {
      const id = acct("refund");
      await store.createAccount({ id });
      const external = await store.ledgerBalance(EXTERNAL);
      expect(await store.refund(id, `r0-${id}`)).toBe(0n); // nothing deposited

      await store.deposit(id, 5_000_000n, `d-${id}`);
      const r = await reserveOk(store, id, 2_000_000n); // 6M in all, 2M of it held
      // Only the spendable balance can go back: 4M of the 5M deposited.
      expect(await store.refund(id, `r1-${id}`)).toBe(4_000_000n);
      expect(await store.available(id)).toBe(0n);
      // A retry with the same reference moves nothing and answers with what the refund moved.
      expect(await store.refund(id, `r1-${id}`)).toBe(4_000_000n);
      expect(await store.available(id)).toBe(0n);

      // The reservation comes back: of the 2M, only the 1M deposit not yet refunded can go (the rest is signup credit).
      await store.release(r.reservationId, "done");
      expect(await store.refund(id, `r1-${id}`)).toBe(4_000_000n); // same reference: still moves nothing
      expect(await store.available(id)).toBe(2_000_000n);
      expect(await store.refund(id, `r2-${id}`)).toBe(1_000_000n);
      expect(await store.refund(id, `r3-${id}`)).toBe(0n);
      expect(await store.available(id)).toBe(1_000_000n);
      expect(await store.summary(id)).toMatchObject({ deposited: 5_000_000n, refunded: 5_000_000n, prepaid: 0n, discountBps: 0 });
      expect(await store.ledgerBalance(EXTERNAL)).toBe(external);
      expect((await store.history(id)).filter((h) => h.kind === "refund").map((h) => h.amount)).toEqual(
        expect.arrayContaining([-4_000_000n, -1_000_000n]),
      );
      expect(await store.verify()).toEqual([]);
    });
  });

  // -- reconcile ----------------------------------------------------------------------------

  describe("reconcile", () => {
    it.runIf(engine.shared)("releases the open reservations of a dead hub process, never this process's own", async () => {
      const id = acct("reconcile");
      await store.createAccount({ id });
      const dead = await open(db.spec); // another hub process on the same database
      const theirs = await reserveOk(dead, id, 100_000n);
      const ours = await reserveOk(store, id, 200_000n);
      await closeOnce(dead); // it dies with its reservation open
      expect(await store.available(id)).toBe(700_000n);
      const released = await store.reconcile({ all: true });
      expect(released).toContain(theirs.reservationId);
      expect(released).not.toContain(ours.reservationId);
      expect(await store.available(id)).toBe(800_000n);
      expect(await store.ledgerBalance(holdAccount(id))).toBe(200_000n);
      expect(await store.reconcile({ all: true })).not.toContain(theirs.reservationId);
      expect((await store.history(id)).find((h) => h.kind === "release")).toMatchObject({
        ref: theirs.reservationId,
        memo: { reason: "the hub process holding it stopped" },
      });
      await store.release(ours.reservationId, "done");
      expect(await store.verify()).toEqual([]);
    });

    it.runIf(engine.shared)("with stale-only semantics, keeps reservations of processes seen within a minute", async () => {
      const id = acct("stale");
      await store.createAccount({ id });
      const other = await open(db.spec);
      const t = Date.now();
      await other.heartbeat(t);
      const held = await reserveOk(other, id, 50_000n);
      expect(await store.reconcile({ all: false, now: t + 30_000 })).not.toContain(held.reservationId);
      expect(await store.reconcile({ all: false, now: t + 60_000 })).not.toContain(held.reservationId);
      expect(await store.available(id)).toBe(950_000n);
      expect(await store.reconcile({ all: false, now: t + 61_000 })).toContain(held.reservationId);
      expect(await store.available(id)).toBe(1_000_000n);
      // A holder silent for over a minute counts as dead (a store announces itself before it first reserves).
      const silent = await open(db.spec);
      await silent.heartbeat(Date.now() - 120_000);
      const orphan = await reserveOk(silent, id, 1n);
      expect(await store.reconcile({ all: false })).toContain(orphan.reservationId);
      await closeOnce(other);
      await closeOnce(silent);
      expect(await store.verify()).toEqual([]);
    });

    it.runIf(engine.shared)(
      `by default ${engine.dialect === "postgres" ? "keeps a live process's reservations (PostgreSQL)" : "releases every other process's reservations (SQLite)"}`,
      async () => {
        const id = acct("default");
        await store.createAccount({ id });
        const other = await open(db.spec);
        await other.heartbeat();
        const held = await reserveOk(other, id, 10n);
        const released = await store.reconcile();
        if (engine.dialect === "postgres") expect(released).not.toContain(held.reservationId);
        else expect(released).toContain(held.reservationId);
        await other.release(held.reservationId, "done");
        await closeOnce(other);
        expect(await store.verify()).toEqual([]);
      },
    );
  });

  // -- concurrency -------------------------------------------------------------------------------

  describe("concurrency", () => {
    const AMOUNT = 10_000n; // the $1 signup credit covers exactly 100

    async function expectExactly100(id: string, outcomes: Array<{ ok: boolean }>, s: SqlStore = store) {
      expect(outcomes).toHaveLength(200);
      expect(outcomes.filter((o) => o.ok)).toHaveLength(100);
      expect(await s.available(id)).toBe(0n);
      expect(await s.ledgerBalance(holdAccount(id))).toBe(100n * AMOUNT);
      expect(await s.summary(id)).toMatchObject({ balance: 0n, held: 100n * AMOUNT });
      expect(await s.verify()).toEqual([]);
    }

    it("200 simultaneous reservations against a balance for 100: exactly 100 succeed", async () => {
      const id = acct("race");
      await store.createAccount({ id });
      expect(await store.available(id)).toBe(100n * AMOUNT);
      const outcomes = await Promise.all(Array.from({ length: 200 }, () => store.reserve(id, AMOUNT)));
      for (const o of outcomes) if (!o.ok) expect(o.available).toBe(0n);
      await expectExactly100(id, outcomes);
      if (engine.dialect === "postgres") {
        // The store's pool really ran them side by side on several connections.
        const [row] = await raw!.all("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database()");
        expect(int(row!.n)).toBeGreaterThan(2);
      }
    });

    it.runIf(engine.dialect === "postgres")("the same race from two stores (two pools) on one database", async () => {
      const id = acct("race2");
      await store.createAccount({ id });
      const second = await open(db.spec);
      const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? store : second).reserve(id, AMOUNT)));
      await expectExactly100(id, outcomes);
      await expectExactly100(id, outcomes, second);
      await closeOnce(second);
    });

    // KNOWN BUG, expected to fail: two SqlStores on one SQLite file in ONE process cannot run
    // transactions side by side. The second connection's BEGIN IMMEDIATE waits for the lock
    // synchronously (busy_timeout), blocking the very event loop the first transaction needs to
    // finish, then fails with SQLITE_BUSY ("database is locked"). The busy timeout is shortened
    // here so the failure is quick. Make it a plain `it` once sqlite-driver waits asynchronously.
    const sameProcess = engine.dialect === "sqlite" && engine.shared;
    it.runIf(sameProcess)("the same race from two SQLite connections in one process", async () => {
      const id = acct("race2");
      await store.createAccount({ id });
      const path = db.spec.slice("sqlite:".length);
      const drivers = [openSqlite(path), openSqlite(path)];
      for (const d of drivers) await d.exec("PRAGMA busy_timeout = 10");
      const [a, b] = drivers.map((d) => new SqlStore(d));
      try {
        await Promise.all([a!.ready(), b!.ready()]);
        const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a! : b!).reserve(id, AMOUNT)));
        await expectExactly100(id, outcomes);
      } finally {
        await a!.close();
        await b!.close();
      }
    });

    it.runIf(engine.shared)(
      "the same race from two separate OS processes on one database",
      async () => {
        const id = acct("race_proc");
        await store.createAccount({ id });
        const outcomes = await raceFromProcesses(db.spec, id, AMOUNT, 2, 100);
        await expectExactly100(
          id,
          outcomes.map((ok) => ({ ok })),
        );
      },
      30_000,
    );
  });

  // -- the property --------------------------------------------------------------------------

  describe("property", () => {
    type Op =
      | { t: "reserve"; who: number; amount: bigint }
      | { t: "settle"; pick: number; cost: bigint; provider: number }
      | { t: "release"; pick: number }
      | { t: "deposit"; who: number; amount: bigint; ref: number }
      | { t: "refund"; who: number; ref: number };

    const who = fc.integer({ min: 0, max: 2 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          t: fc.constant("reserve" as const),
          who,
          amount: fc.oneof(fc.constant(0n), fc.bigInt(1n, 400_000n), fc.bigInt(400_000n, 3_000_000n)),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          t: fc.constant("settle" as const),
          pick: fc.nat(),
          cost: fc.oneof(fc.constant(0n), fc.bigInt(1n, 300_000n), fc.bigInt(300_000n, 3_000_000n)),
          provider: fc.integer({ min: 0, max: 3 }),
        }),
      },
      { weight: 2, arbitrary: fc.record({ t: fc.constant("release" as const), pick: fc.nat() }) },
      {
        weight: 2,
        arbitrary: fc.record({
          t: fc.constant("deposit" as const),
          who,
          amount: fc.oneof(fc.bigInt(1n, 3_000_000n), fc.constantFrom(10_000_000n, 50_000_000n, 200_000_000n)),
          ref: fc.integer({ min: 0, max: 3 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ t: fc.constant("refund" as const), who, ref: fc.integer({ min: 0, max: 3 }) }) },
    );

    const node = new Node();
    let run = 0;

    it("random operations on 3 accounts keep the books sound and conserve money", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
          const tag = `p${++run}_${Math.random().toString(36).slice(2, 8)}`;
          const before = {
            platform: await store.ledgerBalance(PLATFORM),
            bounty: await store.ledgerBalance(BOUNTY_POOL),
            external: await store.ledgerBalance(EXTERNAL),
          };
          // Three consumers (who also serve) and a provider that only serves.
          const ids = [0, 1, 2, 3].map((i) => `acct_${tag}_${i}`);
          for (const id of ids) await store.createAccount({ id });
          // The model: what each account must hold.
          const bal = ids.map(() => 1_000_000n);
          const held = ids.map(() => 0n);
          const net = ids.map(() => 0n); // deposited - refunded
          const spent = ids.map(() => 0n);
          const earned = ids.map(() => 0n);
          const usedDeposits = new Set<string>();
          const refunded = new Map<string, { who: number; amount: bigint }>(); // refund reference -> the account and amount it moved
          const reservations: Array<{ id: string; who: number; amount: bigint; bps: number; open: boolean }> = [];
          const min = (a: bigint, b: bigint) => (a < b ? a : b);
          // Deposits not refunded, at most what the account has: spendable (what a refund can return)...
          const prepaid = (i: number) => (net[i]! <= 0n ? 0n : min(bal[i]!, net[i]!));
          // ...or spendable plus held (what the discount tier counts, so it does not drop while requests run).
          const tierBase = (i: number) => (net[i]! <= 0n ? 0n : min(bal[i]! + held[i]!, net[i]!));

          for (const o of ops) {
            switch (o.t) {
              case "reserve": {
                const bps = discountFor(tierBase(o.who));
                const r = await store.reserve(ids[o.who]!, o.amount);
                if (bal[o.who]! >= o.amount) {
                  expect(r).toEqual({ ok: true, reservationId: expect.any(String), discountBps: bps });
                  if (!r.ok) throw new Error("unreachable");
                  bal[o.who]! -= o.amount;
                  held[o.who]! += o.amount;
                  reservations.push({ id: r.reservationId, who: o.who, amount: o.amount, bps, open: true });
                } else {
                  expect(r).toEqual({ ok: false, available: bal[o.who] });
                }
                break;
              }
              case "settle": {
                if (reservations.length === 0) break;
                const open = reservations.filter((r) => r.open);
                // Mostly an open reservation; now and then any, so a closed one is settled again too.
                const res = open.length > 0 && o.pick % 4 !== 0 ? open[o.pick % open.length]! : reservations[o.pick % reservations.length]!;
                const receipt = node.receipt(o.cost);
                const out = await store.record({
                  receipt,
                  consumerAccountId: ids[res.who]!,
                  providerAccountId: ids[o.provider]!,
                  reservationId: res.id,
                });
                if (res.open) {
                  const s = splitCharge(o.cost, res.amount, res.bps);
                  expect(out).toMatchObject({ ...s, reservationId: res.id, discountBps: res.bps });
                  res.open = false;
                  held[res.who]! -= res.amount;
                  bal[res.who]! += s.refund;
                  bal[o.provider]! += s.provider;
                  spent[res.who]! += s.charge;
                  earned[o.provider]! += s.provider;
                } else {
                  expect(out).toBeUndefined();
                }
                break;
              }
              case "release": {
                if (reservations.length === 0) break;
                const res = reservations[o.pick % reservations.length]!;
                expect(await store.release(res.id, "property")).toBe(res.open);
                if (res.open) {
                  res.open = false;
                  held[res.who]! -= res.amount;
                  bal[res.who]! += res.amount;
                }
                break;
              }
              case "deposit": {
                const ref = `${tag}-d${o.ref}`;
                const fresh = !usedDeposits.has(ref);
                expect(await store.deposit(ids[o.who]!, o.amount, ref)).toBe(fresh);
                if (fresh) {
                  usedDeposits.add(ref);
                  bal[o.who]! += o.amount;
                  net[o.who]! += o.amount;
                }
                break;
              }
              case "refund": {
                const ref = `${tag}-r${o.ref}`;
                const done = refunded.get(ref);
                if (done !== undefined) {
                  // A retry of a reference moves nothing; it answers with what it moved to the same
                  // account, and with nothing to another account that names it.
                  expect(await store.refund(ids[o.who]!, ref)).toBe(done.who === o.who ? done.amount : 0n);
                  break;
                }
                // Nothing to refund: no movement, and the reference stays unused.
                const amount = prepaid(o.who);
                expect(await store.refund(ids[o.who]!, ref)).toBe(amount);
                if (amount > 0n) {
                  refunded.set(ref, { who: o.who, amount });
                  bal[o.who]! -= amount;
                  net[o.who]! -= amount;
                }
                break;
              }
            }
          }

          expect(await store.verify()).toEqual([]);
          let sum = 0n;
          for (const [i, id] of ids.entries()) {
            const user = await store.ledgerBalance(userAccount(id));
            const hold = await store.ledgerBalance(holdAccount(id));
            expect(user).toBe(bal[i]);
            expect(hold).toBe(held[i]);
            expect(user >= 0n && hold >= 0n).toBe(true);
            expect(await store.summary(id)).toMatchObject({
              balance: bal[i],
              held: held[i],
              prepaid: prepaid(i),
              discountBps: discountFor(tierBase(i)),
              spent: spent[i],
              earned: earned[i],
            });
            sum += user + hold;
          }
          const after = {
            platform: await store.ledgerBalance(PLATFORM),
            bounty: await store.ledgerBalance(BOUNTY_POOL),
            external: await store.ledgerBalance(EXTERNAL),
          };
          // Neither created nor destroyed: what these accounts hold came from the platform and the outside world.
          expect(sum + (after.platform - before.platform) + (after.bounty - before.bounty) + (after.external - before.external)).toBe(0n);
          if (raw) expect(await totalOfAllBalances(raw)).toBe(0n);
        }),
        { numRuns: 25, interruptAfterTimeLimit: 25_000, markInterruptAsFailure: true },
      );
    }, 30_000);
  });

  // -- verify ----------------------------------------------------------------------------------

  describe("verify", () => {
    it.runIf(engine.shared)(
      "detects a tampered balance, an unbalanced transaction, a reservation closed without moving its money",
      async () => {
        const fresh = await engine.fresh("corrupt");
        const s = await open(fresh.spec);
        const r = rawOf(fresh);
        const id = acct("victim");
        await s.createAccount({ id });
        await s.deposit(id, 5_000_000n, `d-${id}`);
        const res = await reserveOk(s, id, 100_000n);
        expect(await s.verify()).toEqual([]);

        // Someone edits a balance behind the ledger's back.
        await r.run("UPDATE ledger_accounts SET balance = balance + 1 WHERE id = ?", [userAccount(id)]);
        // Someone writes a transaction whose entries do not balance (keeping the balance column in step with it).
        await r.run(
          "INSERT INTO ledger_transactions (id, idempotency_key, kind, account_id, ref, memo, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
          ["tx_forged", "forged:1", "deposit", null, null, null, Date.now()],
        );
        await r.run("INSERT INTO ledger_entries (tx_id, account_id, amount) VALUES (?, ?, ?)", ["tx_forged", PLATFORM, 7n]);
        await r.run("UPDATE ledger_accounts SET balance = balance + 7 WHERE id = ?", [PLATFORM]);
        // Someone marks a reservation released without moving its money back.
        await r.run("UPDATE reservations SET state = 'released' WHERE id = ?", [res.reservationId]);

        const problems = await s.verify();
        expect(problems).toEqual(
          expect.arrayContaining([
            { check: "balance differs from the sum of its entries", ids: [userAccount(id)] },
            { check: "transaction does not balance", ids: ["tx_forged"] },
            { check: "held money differs from open reservations", ids: [holdAccount(id)] },
            { check: "closed reservation with money still held or settled twice", ids: [res.reservationId] },
          ]),
        );
        expect(problems).toHaveLength(4);
        await closeOnce(s);
        await closeOnce(r);
      },
    );

    it.runIf(engine.shared)("detects a transaction that lost its entries and a negative guarded balance", async () => {
      const fresh = await engine.fresh("corrupt");
      const s = await open(fresh.spec);
      const r = rawOf(fresh);
      const id = acct("victim");
      await s.createAccount({ id });
      const [signup] = await s.history(id);
      await r.run("DELETE FROM ledger_entries WHERE tx_id = ?", [signup!.txId]);
      await r.run("UPDATE ledger_accounts SET balance = -1 WHERE id = ?", [userAccount(id)]);
      const problems = await s.verify();
      expect(problems).toEqual(
        expect.arrayContaining([
          { check: "transaction without entries", ids: [signup!.txId] },
          { check: "negative balance on an account that may not go negative", ids: [userAccount(id)] },
        ]),
      );
      await closeOnce(s);
      await closeOnce(r);
    });

    it("the books are sound after everything above", async () => {
      expect(await store.verify()).toEqual([]);
      if (raw) expect(await totalOfAllBalances(raw)).toBe(0n);
    });
  });
});
