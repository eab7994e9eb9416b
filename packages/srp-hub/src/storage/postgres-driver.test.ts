import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type TestPostgres } from "../../../../test/support/postgres.js";
import { openPostgres } from "./postgres-driver.js";
import type { SqlDriver } from "./sql.js";

describe("openPostgres", () => {
  let server: TestPostgres;
  let db: SqlDriver;

  beforeAll(async () => {
    server = await startPostgres();
    db = openPostgres(server.url);
  }, 60_000);

  afterAll(async () => {
    await db?.close();
    await server?.stop();
  }, 60_000);

  it("is the postgres dialect", () => {
    expect(db.dialect).toBe("postgres");
  });

  it("translates ? placeholders, several per statement", async () => {
    await db.exec("CREATE TABLE places (a TEXT NOT NULL, b INTEGER NOT NULL, c TEXT)");
    await db.run("INSERT INTO places (a, b, c) VALUES (?, ?, ?), (?, ?, ?)", ["x", 1, null, "y", 2, "z"]);
    const rows = await db.all("SELECT a, b, c FROM places WHERE b >= ? AND b <= ? AND a <> ? ORDER BY b", [1, 2, "nope"]);
    expect(rows).toEqual([
      { a: "x", b: 1, c: null },
      { a: "y", b: 2, c: "z" },
    ]);
  });

  it("round-trips BIGINT as exact bigint", async () => {
    await db.exec("CREATE TABLE money (id INTEGER PRIMARY KEY, v BIGINT NOT NULL)");
    await db.run("INSERT INTO money (id, v) VALUES (?, ?), (?, ?)", [1, 9007199254740993n, 2, -5n]);
    const rows = await db.all("SELECT v FROM money WHERE v = ? OR v = ? ORDER BY id", [9007199254740993n, -5n]);
    expect(rows.map((r) => r.v)).toEqual([9007199254740993n, -5n]);
    expect(typeof rows[0]?.v).toBe("bigint");
    const [sum] = await db.all("SELECT COUNT(*) AS n FROM money");
    expect(sum?.n).toBe(2n); // COUNT(*) is int8 too
  });

  it("returns the number of changed rows from run", async () => {
    await db.exec("CREATE TABLE counted (k TEXT PRIMARY KEY)");
    expect(await db.run("INSERT INTO counted (k) VALUES (?), (?), (?)", ["a", "b", "c"])).toBe(3);
    expect(await db.run("DELETE FROM counted WHERE k <> ?", ["a"])).toBe(2);
    expect(await db.run("DELETE FROM counted WHERE k = ?", ["missing"])).toBe(0);
    expect(await db.run("CREATE INDEX counted_k ON counted (k)")).toBe(0);
  });

  it("commits a transaction and rolls back one that throws", async () => {
    await db.exec("CREATE TABLE tx (k TEXT PRIMARY KEY)");
    const out = await db.transaction(async (tx) => {
      await tx.run("INSERT INTO tx (k) VALUES (?)", ["kept"]);
      return (await tx.all("SELECT k FROM tx")).length;
    });
    expect(out).toBe(1);
    await expect(
      db.transaction(async (tx) => {
        await tx.run("INSERT INTO tx (k) VALUES (?)", ["lost1"]);
        await tx.run("INSERT INTO tx (k) VALUES (?)", ["lost2"]);
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await db.all("SELECT k FROM tx ORDER BY k")).toEqual([{ k: "kept" }]);
  });

  it("isolates concurrent transactions: 20 increments give 20", async () => {
    await db.exec("CREATE TABLE counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO counter VALUES (1, 0);");
    await Promise.all(
      Array.from({ length: 20 }, () =>
        db.transaction(async (tx) => {
          await tx.run("UPDATE counter SET n = n + 1 WHERE id = ?", [1]);
        }),
      ),
    );
    expect(await db.all("SELECT n FROM counter WHERE id = ?", [1])).toEqual([{ n: 20n }]);
  });

  it("retries a transaction that hits a serialization failure", async () => {
    let attempts = 0;
    const out = await db.transaction(async (tx) => {
      attempts++;
      if (attempts < 3) await tx.run("DO $$ BEGIN RAISE EXCEPTION 'retry me' USING ERRCODE = '40001'; END $$");
      return "done";
    });
    expect(out).toBe("done");
    expect(attempts).toBe(3);
  });

  it("execs a multi-statement script", async () => {
    await db.exec(`
      CREATE TABLE script_a (id INTEGER PRIMARY KEY);
      CREATE TABLE script_b (id INTEGER PRIMARY KEY, a INTEGER REFERENCES script_a (id));
      INSERT INTO script_a (id) VALUES (1), (2);
      INSERT INTO script_b (id, a) VALUES (10, 1);
    `);
    expect(await db.all("SELECT COUNT(*) AS n FROM script_a")).toEqual([{ n: 2n }]);
    expect(await db.all("SELECT a FROM script_b")).toEqual([{ a: 1 }]);
  });
});
