/**
 * The async job stores (consumer.md "Async jobs"): kept jobs and their artifacts in a SQL
 * store (SQLite and a real PostgreSQL server) and in memory, read by id and by account,
 * forgotten after their retention, deleted with their artifacts; and the jobs of a hub
 * process that stopped ended by another process's reconcile, their reservations released.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatUsdc } from "@srp/core";
import type { AsyncJobObject } from "@srp/core/schema";
import { MemoryAsyncJobStore, openStore, type AsyncJobRecord, type AsyncJobStore, type SqlStore } from "@srp/hub";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

function view(id: string, object: AsyncJobObject["object"] = "srp.run"): AsyncJobObject {
  return {
    id,
    object,
    model: "m",
    status: "queued",
    progress: 0,
    created_at: Math.floor(Date.now() / 1000),
    completed_at: null,
    expires_at: null,
    error: null,
    artifacts: [],
    reserved_units: "1000",
    cost: formatUsdc(0n),
    cost_units: "0",
    receipt_id: null,
    usage: null,
  };
}

const record = (
  id: string,
  accountId: string,
  reservationId: string | null = null,
  object: AsyncJobObject["object"] = "srp.run",
): AsyncJobRecord => ({
  view: view(id, object),
  accountId,
  keyed: true,
  reservationId,
  webhook: null,
});

/** The behaviour every store shares. */
function storeContract(name: string, open: () => Promise<AsyncJobStore>) {
  describe(`async job store: ${name}`, () => {
    let store: AsyncJobStore;
    beforeAll(async () => {
      store = await open();
    });

    it("keeps a job, writes its end with its artifacts, serves the artifacts byte for byte, and forgets it after its retention", async () => {
      const r = record("run_a", "acct_1");
      await store.add(r);
      expect((await store.get("run_a"))?.view.status).toBe("queued");
      const ended: AsyncJobObject = {
        ...r.view,
        status: "completed",
        progress: 100,
        completed_at: 1,
        expires_at: Math.floor(Date.now() / 1000) + 60,
      };
      const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256);
      expect(await store.update(ended, [{ name: "out.bin", contentType: "application/octet-stream", bytes }])).toBe(true);
      const got = await store.get("run_a");
      expect(got?.view.status).toBe("completed");
      const a = await store.artifact("run_a", "out.bin");
      expect(a?.contentType).toBe("application/octet-stream");
      expect(Buffer.from(a!.bytes).equals(Buffer.from(bytes))).toBe(true);
      expect(await store.artifact("run_a", "nope")).toBeUndefined();
      // A job that ended is not written again.
      expect(await store.update({ ...ended, status: "failed" })).toBe(false);
      expect((await store.get("run_a"))?.view.status).toBe("completed");
      // Past its expiry it is gone, with its artifacts.
      const later = Date.now() + 120_000;
      expect(await store.get("run_a", later)).toBeUndefined();
      expect(await store.artifact("run_a", "out.bin", later)).toBeUndefined();
      expect(await store.sweep(later)).toBeGreaterThanOrEqual(1);
      expect(await store.get("run_a")).toBeUndefined();
    });

    it("lists an account's jobs of one kind newest first, counts what is kept, and deletes a job", async () => {
      for (const id of ["video_1", "video_2", "video_3"]) {
        await store.add(record(id, "acct_2", null, "video"));
        await new Promise((r) => setTimeout(r, 5));
      }
      await store.add(record("run_2", "acct_2"));
      await store.add(record("video_x", "acct_3", null, "video"));
      const page = await store.list("acct_2", "video", 10);
      expect(page.map((v) => v.id).sort()).toEqual(["video_1", "video_2", "video_3"]);
      expect((await store.list("acct_2", "video", 1)).length).toBe(1);
      expect(await store.kept("acct_2")).toMatchObject({ account: 4 });
      expect(await store.remove("video_2")).toBe(true);
      expect(await store.remove("video_2")).toBe(false);
      expect(await store.get("video_2")).toBeUndefined();
      expect((await store.kept("acct_2")).account).toBe(3);
    });
  });
}

storeContract("memory", async () => new MemoryAsyncJobStore());
storeContract("SQLite", async () => (await openStore(":memory:")).asyncJobs);

describe("async jobs on PostgreSQL, shared by two hub processes", () => {
  let pg: TestPostgres;
  const stores: SqlStore[] = [];
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await pg?.stop();
  });

  storeContract("PostgreSQL", async () => {
    const s = await openStore(await createDatabase(pg.url, "async_contract"));
    stores.push(s);
    return s.asyncJobs;
  });

  it("ends a stopped process's running job on reconcile: failed, unbilled, its reservation released; once", async () => {
    const url = await createDatabase(pg.url, "async_reconcile");
    const a = await openStore(url, { signupCredits: 1_000_000n });
    const b = await openStore(url, { signupCredits: 1_000_000n });
    stores.push(a, b);
    const account = await a.createAccount({ name: "c" });
    const held = await a.ledger.reserve(account.id, 40_000n);
    if (!held.ok) throw new Error("reservation refused");
    expect((await a.summary(account.id)).held).toBe(40_000n);
    await a.asyncJobs.add(record("run_stopped", account.id, held.reservationId));
    // Process b finds a's job (every other process's, as at a start on SQLite) and ends it.
    expect(await b.asyncJobs.reconcile!({ retentionMs: 60_000, all: true })).toEqual(["run_stopped"]);
    const ended = (await b.asyncJobs.get("run_stopped"))!.view;
    expect(ended).toMatchObject({ status: "failed", cost_units: "0", error: { code: "session.shutdown" } });
    expect(ended.expires_at).not.toBeNull();
    const after = await a.summary(account.id);
    expect(after.held).toBe(0n);
    expect(after.balance).toBe(1_000_000n);
    // The stopped holder can no longer write it; a second reconcile finds nothing.
    expect(await a.asyncJobs.update({ ...ended, status: "completed" })).toBe(false);
    expect(await b.asyncJobs.reconcile!({ retentionMs: 60_000, all: true })).toEqual([]);
    expect(await a.verify()).toEqual([]);
  });
});
