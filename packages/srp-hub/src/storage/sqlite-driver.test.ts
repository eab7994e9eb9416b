// The SQLite driver's commits on a real file in a temporary directory: what a transaction
// reports committed (durable or not) is there for another connection and after reopening,
// a write outside a transaction too; a failing transaction of a group commit fails alone;
// the WAL's group sync shares one sync among concurrent callers and fails stop when the
// disk refuses.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSqlite, WalSync } from "./sqlite-driver.js";
import { sqliteSpec } from "./open.js";
import { int } from "./sql.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "srp-sqlite-driver-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("openSqlite", () => {
  for (const synchronous of ["FULL", "NORMAL"] as const) {
    it(`synchronous ${synchronous}: durable and non-durable transactions and plain writes are committed when reported`, async () => {
      const path = join(dir, "hub.sqlite");
      const db = openSqlite(path, { synchronous });
      await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
      const other = openSqlite(path, { synchronous });
      const writes = Array.from({ length: 20 }, (_, i) =>
        db.transaction(async (tx) => tx.run("INSERT INTO t (id, v) VALUES (?, ?)", [i, `v${i}`]), { durable: i % 2 === 0 }),
      );
      expect(await Promise.all(writes)).toEqual(new Array(20).fill(1));
      expect(await db.run("INSERT INTO t (id, v) VALUES (?, ?)", [100, "plain"])).toBe(1);
      expect(int((await other.all("SELECT count(*) AS n FROM t"))[0]!.n)).toBe(21);
      await other.close();
      await db.close();
      const again = openSqlite(path, { synchronous });
      expect(int((await again.all("SELECT count(*) AS n FROM t"))[0]!.n)).toBe(21);
      await again.close();
    });
  }

  it("a failing transaction of a group commit fails alone, durable or not", async () => {
    const db = openSqlite(join(dir, "hub.sqlite"));
    await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY)");
    const outcomes = await Promise.allSettled([
      db.transaction((tx) => tx.run("INSERT INTO t (id) VALUES (1)")),
      db.transaction((tx) => tx.run("INSERT INTO t (id) VALUES (1)")), // duplicate key
      db.transaction((tx) => tx.run("INSERT INTO t (id) VALUES (2)"), { durable: false }),
      db.transaction((tx) => tx.run("INSERT INTO t (id) VALUES (2)"), { durable: false }), // duplicate key
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled", "rejected"]);
    expect((await db.all("SELECT id FROM t ORDER BY id")).map((r) => int(r.id))).toEqual([1, 2]);
    await db.close();
  });

  it("a transaction alone in its batch that fails leaves nothing behind and reports its own error", async () => {
    const db = openSqlite(join(dir, "hub.sqlite"));
    await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY)");
    await expect(
      db.transaction(async (tx) => {
        await tx.run("INSERT INTO t (id) VALUES (7)");
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(await db.all("SELECT id FROM t")).toEqual([]);
    expect(await db.transaction((tx) => tx.run("INSERT INTO t (id) VALUES (7)"))).toBe(1);
    await db.close();
  });

  it("takes synchronous=normal|full from a sqlite: spec", () => {
    expect(sqliteSpec("/x/hub.sqlite")).toEqual({ path: "/x/hub.sqlite" });
    expect(sqliteSpec("/x/hub.sqlite?synchronous=normal")).toEqual({ path: "/x/hub.sqlite", synchronous: "NORMAL" });
    expect(sqliteSpec("/x/hub.sqlite?synchronous=FULL")).toEqual({ path: "/x/hub.sqlite", synchronous: "FULL" });
    expect(() => sqliteSpec("/x/hub.sqlite?synchronous=off")).toThrow(/normal or full/);
  });
});

describe("WalSync", () => {
  it("resolves concurrent syncs of a real file, and a sync when the file does not exist yet", async () => {
    const path = join(dir, "hub.sqlite-wal");
    const none = new WalSync(path);
    await none.sync();
    const db = openSqlite(join(dir, "hub.sqlite"));
    await db.exec("CREATE TABLE t (id INTEGER)");
    const wal = new WalSync(path);
    await Promise.all(Array.from({ length: 10 }, () => wal.sync()));
    await wal.close();
    await none.close();
    await db.close();
  });

  it("fails stop: once a sync fails, every later one is refused", async () => {
    const path = join(dir, "not-a-file");
    mkdirSync(path); // opening a directory for writing fails
    const wal = new WalSync(path);
    await expect(wal.sync()).rejects.toThrow(/could not be synced/);
    await expect(wal.sync()).rejects.toThrow(/could not be synced/);
    await wal.close();
  });
});
