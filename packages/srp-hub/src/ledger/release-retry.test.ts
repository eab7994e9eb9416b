import { describe, expect, it } from "vitest";
import { releaseRetryDelay, releaseUntilDone } from "./release-retry.js";

describe("releaseRetryDelay", () => {
  it("doubles from the first pause and stops at the longest", () => {
    const t = { firstMs: 500, maxMs: 30_000, attempts: 45 };
    expect([1, 2, 3, 6, 7, 100].map((n) => releaseRetryDelay(n, t))).toEqual([500, 1000, 2000, 16_000, 30_000, 30_000]);
  });
});

describe("releaseUntilDone", () => {
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise((r) => setTimeout(r, 1));
  };

  it("tries again after a failure until the release goes through, reporting each failure", async () => {
    const calls: string[] = [];
    const errors: unknown[] = [];
    const ledger = {
      async release(id: string, reason: string) {
        calls.push(`${id}:${reason}`);
        if (calls.length < 3) throw new Error("the database cannot be reached");
        return true;
      },
    };
    expect(await releaseUntilDone(ledger, "res_1", "not served", (e) => errors.push(e), { firstMs: 1, maxMs: 2, attempts: 10 })).toBe(
      false,
    );
    await until(() => calls.length === 3);
    expect(calls).toEqual(["res_1:not served", "res_1:not served", "res_1:not served"]);
    expect(errors).toHaveLength(2);
  });

  it("gives up after the last attempt", async () => {
    let calls = 0;
    const errors: unknown[] = [];
    const ledger = {
      async release(): Promise<boolean> {
        calls++;
        throw new Error("down");
      },
    };
    await releaseUntilDone(ledger, "res_1", "x", (e) => errors.push(e), { firstMs: 1, maxMs: 1, attempts: 3 });
    await until(() => errors.length === 3);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(3);
  });

  it("answers at once when the first attempt goes through", async () => {
    expect(await releaseUntilDone({ release: async () => true }, "res_1", "x", () => {})).toBe(true);
  });
});
