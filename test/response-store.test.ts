/**
 * The stored responses of the Responses surface on every store: in memory, a SQLite file
 * and a real PostgreSQL server. A turn is seen by its account only, a conversation comes
 * back oldest first (input then output items of each turn), expired turns are neither
 * read nor kept by the sweep, a continued conversation lives as long as its newest turn,
 * deletion is per account, and a conversation too long or too large cannot be continued.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SrpError } from "@srp/core";
import {
  MemoryResponseStore,
  openStore,
  type ResponseStore,
  type ResponseStoreOptions,
  type SqlStore,
  type StoredResponse,
} from "@srp/hub";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

let pg: TestPostgres | undefined;
const dir = mkdtempSync(join(tmpdir(), "srp-responses-"));
let n = 0;
const open: SqlStore[] = [];
beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sql = async (spec: string, options: ResponseStoreOptions): Promise<ResponseStore> => {
  const store = await openStore(spec, { signupCredits: 0n });
  open.push(store);
  return store.responses.withOptions(options);
};

const engines: Array<[string, (options?: ResponseStoreOptions) => Promise<ResponseStore>]> = [
  ["memory", async (options = {}) => new MemoryResponseStore(options)],
  ["SQLite", (options = {}) => sql(`sqlite:${join(dir, `responses-${++n}.db`)}`, options)],
  ["PostgreSQL", async (options = {}) => sql(await createDatabase(pg!.url, `responses_${++n}`), options)],
];

const DAY = 24 * 3_600_000;
const T0 = Date.now();

/** A turn of `accountId` saying `said` and answering `answer`, continuing `previous`. */
function turn(id: string, accountId: string, said: string, answer: string, previous?: string, createdAt = T0): StoredResponse {
  return {
    id,
    accountId,
    createdAt,
    response: {
      id,
      object: "response",
      created_at: Math.floor(createdAt / 1000),
      status: "completed",
      model: "m",
      output: [
        {
          id: `msg_${id}`,
          type: "message",
          role: "assistant",
          status: "completed",
          content: [{ type: "output_text", text: answer, annotations: [] }],
        },
      ],
    },
    input: [{ id: `in_${id}`, type: "message", role: "user", content: [{ type: "input_text", text: said }] }],
    ...(previous ? { previousResponseId: previous } : {}),
  };
}

/** The texts of conversation items, in order. */
const texts = (items: Record<string, unknown>[] | undefined) => items?.map((i) => (i.content as { text: string }[])[0]!.text);

describe.each(engines)("stored responses in %s", (_name, make) => {
  it("keeps a turn for its account only, as saved", async () => {
    const store = await make();
    const r = turn("resp_a1", "acct_a", "hello", "hi");
    await store.save(r);
    expect(await store.get("acct_a", "resp_a1")).toEqual(r);
    expect(await store.get("acct_b", "resp_a1")).toBeUndefined();
    expect(await store.history("acct_b", "resp_a1")).toBeUndefined();
    expect(await store.delete("acct_b", "resp_a1")).toBe(false);
    expect(await store.get("acct_a", "resp_a1")).toEqual(r);
    // Another account cannot take the id over.
    await expect(store.save(turn("resp_a1", "acct_b", "mine", "no"))).rejects.toThrow(/another account/);
    expect(await store.get("acct_a", "resp_a1")).toEqual(r);
    expect(await store.get("acct_a", "resp_unknown")).toBeUndefined();
  });

  it("answers a conversation oldest first, each turn's input then output, forks kept apart", async () => {
    const store = await make();
    await store.save(turn("resp_c1", "acct_a", "one", "uno"));
    await store.save(turn("resp_c2", "acct_a", "two", "dos", "resp_c1"));
    await store.save(turn("resp_c3", "acct_a", "three", "tres", "resp_c2"));
    await store.save(turn("resp_c2b", "acct_a", "deux", "zwei", "resp_c1"));
    expect(texts(await store.history("acct_a", "resp_c3"))).toEqual(["one", "uno", "two", "dos", "three", "tres"]);
    expect(texts(await store.history("acct_a", "resp_c2b"))).toEqual(["one", "uno", "deux", "zwei"]);
    expect(texts(await store.history("acct_a", "resp_c1"))).toEqual(["one", "uno"]);
    expect((await store.history("acct_a", "resp_c3"))!.map((i) => i.id)).toEqual([
      "in_resp_c1",
      "msg_resp_c1",
      "in_resp_c2",
      "msg_resp_c2",
      "in_resp_c3",
      "msg_resp_c3",
    ]);
    // A turn of another account's conversation is not part of this one's.
    await store.save(turn("resp_x", "acct_b", "theirs", "no", "resp_c3"));
    expect(await store.history("acct_b", "resp_x")).toBeUndefined();
  });

  it("deletes per account; a conversation missing a turn cannot be continued", async () => {
    const store = await make();
    await store.save(turn("resp_d1", "acct_a", "one", "uno"));
    await store.save(turn("resp_d2", "acct_a", "two", "dos", "resp_d1"));
    expect(await store.delete("acct_a", "resp_d1")).toBe(true);
    expect(await store.delete("acct_a", "resp_d1")).toBe(false);
    expect(await store.get("acct_a", "resp_d1")).toBeUndefined();
    expect(await store.get("acct_a", "resp_d2")).toBeDefined();
    expect(await store.history("acct_a", "resp_d2")).toBeUndefined();
  });

  it("reads nothing expired, keeps a continued conversation as long as its newest turn, and sweeps the rest", async () => {
    const store = await make({ retentionMs: 10 * DAY });
    await store.save(turn("resp_e1", "acct_a", "old", "alt", undefined, T0 - 11 * DAY));
    await store.save(turn("resp_f1", "acct_a", "one", "uno", undefined, T0 - 9 * DAY));
    await store.save(turn("resp_f2", "acct_a", "two", "dos", "resp_f1", T0 - 2 * DAY));
    expect(await store.get("acct_a", "resp_e1")).toBeUndefined();
    expect(await store.history("acct_a", "resp_e1")).toBeUndefined();
    // resp_f1 would expire a day from now; continuing it keeps it until resp_f2 expires.
    const later = T0 + 3 * DAY;
    expect(await store.get("acct_a", "resp_f1", later)).toBeDefined();
    expect(texts(await store.history("acct_a", "resp_f2", later))).toEqual(["one", "uno", "two", "dos"]);
    expect(await store.sweep!(T0)).toBe(1);
    expect(await store.sweep!(T0)).toBe(0);
    expect(await store.sweep!(T0 + 9 * DAY)).toBe(2);
    expect(await store.get("acct_a", "resp_f2")).toBeUndefined();
  });

  it("refuses to continue a conversation at the most turns, or bytes, a conversation may have", async () => {
    const store = await make({ maxTurns: 3 });
    await store.save(turn("resp_g1", "acct_a", "one", "uno"));
    await store.save(turn("resp_g2", "acct_a", "two", "dos", "resp_g1"));
    expect(texts(await store.history("acct_a", "resp_g2"))).toHaveLength(4);
    await store.save(turn("resp_g3", "acct_a", "three", "tres", "resp_g2"));
    const refused = await store.history("acct_a", "resp_g3").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SrpError);
    expect((refused as SrpError).code).toBe("api.invalid_body");
    expect((refused as SrpError).message).toMatch(/3 turns, the most this hub keeps is 3/);

    const small = await make({ maxChainBytes: 1500 });
    await small.save(turn("resp_h1", "acct_a", "x".repeat(600), "y"));
    expect(await small.history("acct_a", "resp_h1")).toHaveLength(2);
    await small.save(turn("resp_h2", "acct_a", "x".repeat(600), "y", "resp_h1"));
    await expect(small.history("acct_a", "resp_h2")).rejects.toThrow(/bytes, the most this hub keeps is 1500/);
  });
});

describe.each(engines)("per-account bounds and items in %s", (_name, make) => {
  const held = async (store: ResponseStore, accountId: string, ids: string[]) =>
    (await Promise.all(ids.map((id) => store.get(accountId, id)))).map((t) => t !== undefined);

  it("an account past its turns sheds its own turns that would expire soonest, never another account's", async () => {
    const store = await make({ maxAccountTurns: 3 });
    await store.save(turn("resp_b1", "acct_b", "theirs", "ok", undefined, T0 - 5 * DAY));
    await store.save(turn("resp_p1", "acct_a", "one", "uno", undefined, T0 - 3 * DAY));
    await store.save(turn("resp_q1", "acct_a", "other", "otro", undefined, T0 - 2 * DAY));
    // Continuing resp_p1 keeps it as long as resp_p2: resp_q1 now expires first.
    await store.save(turn("resp_p2", "acct_a", "two", "dos", "resp_p1", T0 - DAY));
    await store.save(turn("resp_r1", "acct_a", "new", "nuevo", undefined, T0));
    expect(await held(store, "acct_a", ["resp_p1", "resp_q1", "resp_p2", "resp_r1"])).toEqual([true, false, true, true]);
    expect(texts(await store.history("acct_a", "resp_p2"))).toEqual(["one", "uno", "two", "dos"]);
    expect(await store.get("acct_b", "resp_b1")).toBeDefined();
    // Another account's turns neither count nor go.
    await store.save(turn("resp_b2", "acct_b", "more", "mas", undefined, T0));
    expect(await held(store, "acct_b", ["resp_b1", "resp_b2"])).toEqual([true, true]);
    expect(await held(store, "acct_a", ["resp_p1", "resp_p2", "resp_r1"])).toEqual([true, true, true]);
  });

  it("an account past its bytes sheds its oldest turns, and keeps a turn larger than the bound", async () => {
    const store = await make({ maxAccountBytes: 3 * 1241 + 100 }); // three turns of 1 241 bytes
    await store.save(turn("resp_o1", "acct_b", "x".repeat(900), "y"));
    for (let i = 0; i < 4; i++) await store.save(turn(`resp_s${i}`, "acct_a", "x".repeat(900), "y", undefined, T0 + i));
    expect(await held(store, "acct_a", ["resp_s0", "resp_s1", "resp_s2", "resp_s3"])).toEqual([false, true, true, true]);
    await store.save(turn("resp_big", "acct_a", "x".repeat(4000), "y", undefined, T0 + 10));
    expect(await held(store, "acct_a", ["resp_s1", "resp_s2", "resp_s3", "resp_big"])).toEqual([false, false, false, true]);
    expect(await store.get("acct_b", "resp_o1")).toBeDefined();
  });

  it("finds an account's stored items by id, input or output, the newest turn's when several hold one", async () => {
    const store = await make({ retentionMs: 10 * DAY });
    await store.save(turn("resp_i1", "acct_a", "one", "uno", undefined, T0 - DAY));
    await store.save(turn("resp_i2", "acct_a", "two", "dos", "resp_i1"));
    await store.save(turn("resp_old", "acct_a", "old", "alt", undefined, T0 - 11 * DAY));
    const found = await store.items("acct_a", ["msg_resp_i1", "in_resp_i2", "msg_resp_old", "nope"]);
    expect([...found.keys()].sort()).toEqual(["in_resp_i2", "msg_resp_i1"]);
    expect(found.get("msg_resp_i1")).toEqual((turn("resp_i1", "acct_a", "one", "uno").response.output as unknown[])[0]);
    expect(found.get("in_resp_i2")).toEqual(turn("resp_i2", "acct_a", "two", "dos").input[0]);
    expect((await store.items("acct_b", ["msg_resp_i1"])).size).toBe(0);
    // The same item id in a newer turn: that turn's item.
    const again = turn("resp_i3", "acct_a", "three", "tres", undefined, T0 + 1);
    again.input = [{ ...again.input[0]!, id: "in_resp_i2" }];
    await store.save(again);
    expect(texts([(await store.items("acct_a", ["in_resp_i2"])).get("in_resp_i2")!])).toEqual(["three"]);
    await store.delete("acct_a", "resp_i3");
    expect(texts([(await store.items("acct_a", ["in_resp_i2"])).get("in_resp_i2")!])).toEqual(["two"]);
    await store.delete("acct_a", "resp_i1");
    expect((await store.items("acct_a", ["msg_resp_i1"])).size).toBe(0);
    // Replaced turn: its old items are gone.
    await store.save({ ...turn("resp_i2", "acct_a", "two", "dos"), input: [] });
    expect((await store.items("acct_a", ["in_resp_i2"])).size).toBe(0);
    // Past retention: not found (swept or not).
    expect((await store.items("acct_a", ["msg_resp_i2"], T0 + 11 * DAY)).size).toBe(0);
    expect(await store.sweep!(T0 + 11 * DAY)).toBeGreaterThan(0);
    expect((await store.items("acct_a", ["msg_resp_i2"])).size).toBe(0);
  });
});

describe("stored responses in memory", () => {
  it("drops the oldest turns past its total size", async () => {
    const store = new MemoryResponseStore({ maxTotalBytes: 2000 });
    for (let i = 0; i < 5; i++) await store.save(turn(`resp_m${i}`, "acct_a", "x".repeat(500), "y"));
    const kept = await Promise.all([0, 1, 2, 3, 4].map((i) => store.get("acct_a", `resp_m${i}`)));
    expect(kept.map((k) => k !== undefined)).toEqual([false, false, false, true, true]);
  });

  it("past its total size, drops turns of the account holding the most, not a small account's", async () => {
    const store = new MemoryResponseStore({ maxTotalBytes: 4000 });
    await store.save(turn("resp_small", "acct_b", "hi", "y", undefined, T0 - DAY));
    for (let i = 0; i < 5; i++) await store.save(turn(`resp_n${i}`, "acct_a", "x".repeat(900), "y", undefined, T0 + i));
    expect(await store.get("acct_b", "resp_small")).toBeDefined();
    expect(await store.get("acct_a", "resp_n0")).toBeUndefined();
    expect(await store.get("acct_a", "resp_n4")).toBeDefined();
  });
});
