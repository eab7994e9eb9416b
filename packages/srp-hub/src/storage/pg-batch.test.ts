import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countersignReceipt, createReceipt, generateIdentity, INITIAL_POSITION, type ReceiptPosition } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { startPostgres, type TestPostgres } from "../../../../test/support/postgres.js";
import { combinedWrite } from "./pg-batch.js";
import { openPostgres } from "./postgres-driver.js";
import { SqlStore } from "./sql-store.js";
import type { SqlDriver, SqlExecutor } from "./sql.js";

/** A driver that remembers the statements of each transaction, and those run outside one. */
function counting(driver: SqlDriver) {
  const transactions: string[][] = [];
  const loose: string[] = [];
  const watched = (on: SqlExecutor, into: string[]): SqlExecutor => ({
    all: (sql, params) => (into.push(sql), on.all(sql, params)),
    run: (sql, params) => (into.push(sql), on.run(sql, params)),
  });
  const outside = watched(driver, loose);
  const db: SqlDriver = {
    dialect: driver.dialect,
    all: outside.all,
    run: outside.run,
    transaction: (fn, options) =>
      driver.transaction((tx) => {
        const statements: string[] = [];
        transactions.push(statements);
        return fn(watched(tx, statements));
      }, options),
    exec: (sql) => driver.exec(sql),
    close: () => driver.close(),
  };
  const reset = () => {
    transactions.length = 0;
    loose.length = 0;
  };
  return { db, transactions, loose, reset };
}

const HUB = generateIdentity();
let ids = 0;
const acct = (tag: string) => `acct_${tag}_${++ids}`;

/** A provider node issuing consecutive countersigned receipts, each costing exactly `units`. */
class Node {
  readonly identity = generateIdentity();
  position: ReceiptPosition = INITIAL_POSITION;
  receipt(units: bigint): Receipt {
    const now = Date.now();
    const r = createReceipt(
      {
        jobId: `job_${++ids}`,
        hubId: HUB.id,
        instanceId: "pg-batch-test.0",
        model: "pg-batch-test",
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
    this.position = { lastSeq: r.seq, totals: r.totals };
    return countersignReceipt(r, HUB);
  }
}

describe("combinedWrite", () => {
  it("puts the parts in one WITH list, their parameters in order, and counts the balances moved", () => {
    const w = combinedWrite([
      ["a", "INSERT INTO t (x) SELECT ?", [1]],
      ["balances", "UPDATE u SET y = ? RETURNING id", ["2"]],
    ]);
    expect(w.sql).toBe(
      "WITH a AS (INSERT INTO t (x) SELECT ?),\nbalances AS (UPDATE u SET y = ? RETURNING id)\nSELECT (SELECT count(*) FROM balances) AS moved",
    );
    expect(w.params).toEqual([1, "2"]);
    expect(combinedWrite([["a", "INSERT INTO t (x) SELECT ?", [1]]]).sql).toMatch(/SELECT 0 AS moved$/);
    expect(() =>
      combinedWrite([
        ["a", "x", []],
        ["a", "y", []],
      ]),
    ).toThrow(/two parts with one name/);
  });
});

describe("batches on PostgreSQL: a fixed number of round trips, whatever the batch's size", () => {
  let server: TestPostgres;
  let counted: ReturnType<typeof counting>;
  let store: SqlStore;

  beforeAll(async () => {
    server = await startPostgres();
    counted = counting(openPostgres(server.url));
    store = new SqlStore(counted.db, { signupCredits: 0n });
    await store.ready();
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    await server?.stop();
  }, 60_000);

  it("reservations made together are one transaction of two statements (lock, write), and never overspend", async () => {
    const consumer = acct("reserve");
    await store.createAccount({ id: consumer });
    expect(await store.deposit(consumer, 1_000n, `dep-${consumer}`)).toBe(true);
    expect((await store.reserve(consumer, 100n)).ok).toBe(true); // the first also creates the hold account
    counted.reset();
    const results = await Promise.all(Array.from({ length: 12 }, () => store.reserve(consumer, 100n)));
    expect(results.filter((r) => r.ok)).toHaveLength(9);
    expect(counted.transactions).toHaveLength(1);
    expect(counted.transactions[0]).toHaveLength(2);
    expect(await store.summary(consumer)).toMatchObject({ held: 1_000n });
    expect(await store.verify()).toEqual([]);
  });

  it("receipts recorded together are one transaction of two statements (claim and lock, write), and move the money once", async () => {
    const consumer = acct("settle");
    const provider = acct("settle-provider");
    await store.createAccount({ id: consumer });
    await store.createAccount({ id: provider });
    expect(await store.deposit(consumer, 100_000n, `dep-${consumer}`)).toBe(true);
    const node = new Node();
    // The first settlement creates the accounts it credits; the batch after it finds them.
    const first = await store.reserve(consumer, 1_000n);
    if (!first.ok) throw new Error("no reservation");
    await store.record({
      receipt: node.receipt(10n),
      consumerAccountId: consumer,
      providerAccountId: provider,
      reservationId: first.reservationId,
    });
    const held = await Promise.all(Array.from({ length: 10 }, () => store.reserve(consumer, 1_000n)));
    const receipts = held.map(() => node.receipt(100n));
    counted.reset();
    const settled = await Promise.all(
      held.map((r, i) => {
        if (!r.ok) throw new Error("no reservation");
        return store.record({
          receipt: receipts[i]!,
          consumerAccountId: consumer,
          providerAccountId: provider,
          reservationId: r.reservationId,
        });
      }),
    );
    expect(settled.map((s) => s?.charge)).toEqual(Array.from({ length: 10 }, () => 100n));
    expect(counted.transactions).toHaveLength(1);
    expect(counted.transactions[0]).toHaveLength(2);
    expect(await store.summary(consumer)).toMatchObject({ spent: 1_010n, held: 0n, requests: 11 });
    expect(await store.position(node.identity.id)).toEqual(node.position);
    expect(await store.verify()).toEqual([]);
  });

  it("a reservation whose receipt does not name its consumer still settles against the reservation's account (one more lock)", async () => {
    const consumer = acct("unnamed");
    const provider = acct("unnamed-provider");
    await store.createAccount({ id: consumer });
    await store.createAccount({ id: provider });
    expect(await store.deposit(consumer, 10_000n, `dep-${consumer}`)).toBe(true);
    const node = new Node();
    const warm = await store.reserve(consumer, 1_000n);
    if (!warm.ok) throw new Error("no reservation");
    await store.record({
      receipt: node.receipt(10n),
      consumerAccountId: consumer,
      providerAccountId: provider,
      reservationId: warm.reservationId,
    });
    const r = await store.reserve(consumer, 1_000n);
    if (!r.ok) throw new Error("no reservation");
    counted.reset();
    const settled = await store.record({ receipt: node.receipt(250n), providerAccountId: provider, reservationId: r.reservationId });
    expect(settled).toMatchObject({ charge: 250n, reservationId: r.reservationId });
    expect(counted.transactions[0]).toHaveLength(3);
    expect(await store.summary(consumer)).toMatchObject({ spent: 260n, held: 0n });
    expect(await store.verify()).toEqual([]);
  });

  it("API-key lookups made together are one query, and a revoked key is refused", async () => {
    const owner = acct("keys");
    await store.createAccount({ id: owner });
    const keys = await Promise.all(Array.from({ length: 4 }, () => store.createApiKey(owner)));
    expect(await store.revokeApiKey(keys[1]!.record.keyId)).toBe(true);
    counted.reset();
    const found = await Promise.all([...keys.map((k) => store.findByApiKey(k.key)), store.findByApiKey("srp_no_such_key")]);
    expect(found.map((a) => a?.id)).toEqual([owner, undefined, owner, owner, undefined]);
    expect(counted.loose).toHaveLength(1);
    expect(counted.transactions).toHaveLength(0);
  });
});
