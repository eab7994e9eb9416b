// The SQLite driver stops taking anything once a sync of its WAL failed (the disk refused,
// EIO): what was committed since may not be on disk, so no later transaction, write or read
// is reported done, even when the disk works again. A restart recovers.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const disk = vi.hoisted(() => ({ failNext: false }));
vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  return {
    ...fs,
    fdatasync: (fd: number, cb: (error: NodeJS.ErrnoException | null) => void) => {
      if (!disk.failNext) return fs.fdatasync(fd, cb);
      disk.failNext = false;
      const error = Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
      setImmediate(() => cb(error));
    },
  };
});

const { openSqlite } = await import("./sqlite-driver.js");

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "srp-sqlite-failstop-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("a failed WAL sync", () => {
  it("refuses every later transaction, write and read, and commits nothing more", async () => {
    const path = join(dir, "hub.sqlite");
    const db = openSqlite(path);
    await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY)");
    expect(await db.transaction((tx) => tx.run("INSERT INTO t (id) VALUES (1)"))).toBe(1);
    disk.failNext = true;
    await expect(db.transaction((tx) => tx.run("INSERT INTO t (id) VALUES (2)"))).rejects.toThrow(/could not be synced/);
    // The disk works again: nothing more is taken all the same.
    await expect(db.transaction((tx) => tx.run("INSERT INTO t (id) VALUES (3)"))).rejects.toThrow(/could not be synced/);
    await expect(db.transaction((tx) => tx.run("INSERT INTO t (id) VALUES (4)"), { durable: false })).rejects.toThrow(
      /could not be synced/,
    );
    await expect(db.run("INSERT INTO t (id) VALUES (5)")).rejects.toThrow(/could not be synced/);
    await expect(db.all("SELECT id FROM t")).rejects.toThrow(/could not be synced/);
    await db.close().catch(() => undefined);
    // What a restart finds: the row whose sync failed may or may not be there; nothing after it is.
    const again = openSqlite(path);
    const ids = (await again.all("SELECT id FROM t ORDER BY id")).map((r) => Number(r.id));
    expect(ids.filter((id) => id > 2)).toEqual([]);
    expect(ids[0]).toBe(1);
    await again.close();
  });
});
