/**
 * The pure rules of kept batches: how a batch ends, what becomes of a stopped process's
 * unfinished items (unbilled, or kept at their charge when their reservation was settled
 * before the stop), and the in-memory store's retention and counts.
 */
import { describe, expect, it } from "vitest";
import { formatUsdc } from "@srp/core";
import type { BatchObject } from "@srp/core/schema";
import { abandonBatch, endBatch, MemoryBatchStore, STOPPED_ITEM_ERROR } from "./batch-store.js";

function view(statuses: BatchObject["items"][number]["status"][]): BatchObject {
  const counts = { total: statuses.length, queued: 0, running: 0, completed: 0, failed: 0 };
  for (const s of statuses) counts[s as "queued" | "running" | "completed" | "failed"]++;
  return {
    id: "batch_x",
    object: "srp.batch",
    status: "running",
    created_at: 1,
    completed_at: null,
    expires_at: null,
    discount_bps: 1000,
    reserved_units: "9000",
    charged_units: "100",
    charged: formatUsdc(100n),
    counts,
    items: statuses.map((status, index) => ({
      index,
      custom_id: null,
      url: "/v1/embeddings",
      status,
      status_code: status === "completed" ? 200 : null,
      response: status === "completed" ? { ok: true } : null,
      cost: formatUsdc(status === "completed" ? 100n : 0n),
      cost_units: status === "completed" ? "100" : "0",
      receipt_id: status === "completed" ? "job_0" : null,
    })),
  };
}

describe("abandonBatch", () => {
  it("fails the unfinished items unbilled, keeps a settled one at its charge, and ends the batch", () => {
    const before = view(["completed", "running", "running", "queued"]);
    const out = abandonBatch(
      before,
      new Map([
        [1, { billed: true, charged: 250n, receiptId: "job_1" }],
        [2, { billed: false }],
      ]),
      10_000,
      5_000,
    );
    expect(out.items.map((i) => [i.status, i.status_code, i.cost_units, i.receipt_id])).toEqual([
      ["completed", 200, "100", "job_0"],
      ["completed", 200, "250", "job_1"],
      ["failed", 503, "0", null],
      ["failed", 503, "0", null],
    ]);
    expect(out.items[3]!.response).toEqual(STOPPED_ITEM_ERROR);
    expect(out.counts).toEqual({ total: 4, queued: 0, running: 0, completed: 2, failed: 2 });
    expect(out.charged_units).toBe("350");
    expect(out.charged).toBe(formatUsdc(350n));
    expect(out).toMatchObject({ status: "completed", completed_at: 10, expires_at: 15 });
    // The stored state it came from is not changed.
    expect(before.status).toBe("running");
    expect(before.items[1]!.status).toBe("running");
  });

  it("ends a batch none of whose items succeeded as failed", () => {
    const out = abandonBatch(view(["queued", "queued"]), new Map(), 0, 1000);
    expect(out.status).toBe("failed");
    expect(out.charged_units).toBe("100");
  });
});

describe("MemoryBatchStore", () => {
  it("shows the running view live, counts per account and in all, and forgets an ended batch after its retention", async () => {
    const store = new MemoryBatchStore();
    const running = view(["queued"]);
    await store.add({ view: running, accountId: "a", keyed: true, reservationIds: ["res_1"] });
    await store.add({ view: { ...view(["queued"]), id: "batch_y" }, accountId: "b", keyed: false, reservationIds: ["res_2"] });
    running.items[0]!.status = "running";
    expect(await store.update(running)).toBe(true);
    expect((await store.get("batch_x"))!.view.items[0]!.status).toBe("running");
    expect(await store.kept("a")).toEqual({ account: 1, total: 2 });
    endBatch(running, 1_000_000, 60_000);
    expect(await store.get("batch_x", 1_059_999)).toBeDefined();
    expect(await store.get("batch_x", 1_060_000)).toBeUndefined();
    expect(await store.kept("a", 1_060_000)).toEqual({ account: 0, total: 1 });
    expect(await store.update(running)).toBe(false);
  });
});
