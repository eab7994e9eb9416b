/**
 * `GET` / `DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items` with the
 * official `openai` package against a real hub, on its default in-memory store and on a
 * SQLite file: the stored Response object comes back as saved, input items page in both
 * orders with `after`, another account's response is a 404, deletion answers OpenAI's
 * shape and is final, and other methods get a 405 with `allow`. Then real turns made with
 * `responses.create` through a simulator node: kept as answered, continued, refused once a
 * turn of their conversation is deleted; and the hub's `responses.retentionMs` applied to a
 * SQLite store.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity } from "@srp/core";
import { createHub, MemoryAccountStore, openStore, type Hub, type SqlStore, type StoredResponse } from "@srp/hub";
import { KEY, MODEL, startNet, type Net } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "srp-stored-responses-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Setup {
  hub: Hub;
  url: string;
  /** API keys of two accounts. */
  keys: [string, string];
  accounts: [string, string];
  close(): Promise<void>;
}

async function memoryHub(): Promise<Setup> {
  const accounts = new MemoryAccountStore();
  accounts.add({ id: "acct_one", apiKeys: ["srp_stored_responses_key_one"] });
  accounts.add({ id: "acct_two", apiKeys: ["srp_stored_responses_key_two"] });
  const hub = createHub({ identity: generateIdentity(), accounts, drainTimeoutMs: 100 });
  const { url } = await hub.listen({ port: 0 });
  return {
    hub,
    url,
    keys: ["srp_stored_responses_key_one", "srp_stored_responses_key_two"],
    accounts: ["acct_one", "acct_two"],
    close: () => hub.close(),
  };
}

async function sqliteHub(): Promise<Setup> {
  const store: SqlStore = await openStore(`sqlite:${join(dir, "hub.db")}`, { signupCredits: 0n });
  const one = await store.createAccount({ id: "acct_one" });
  const two = await store.createAccount({ id: "acct_two" });
  const keys: [string, string] = [(await store.createApiKey(one.id)).key, (await store.createApiKey(two.id)).key];
  const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, drainTimeoutMs: 100 });
  const { url } = await hub.listen({ port: 0 });
  return {
    hub,
    url,
    keys,
    accounts: [one.id, two.id],
    async close() {
      await hub.close();
      await store.close();
    },
  };
}

/** A stored turn with `count` input items `item_0`..`item_{count-1}`. */
function stored(id: string, accountId: string, count: number): StoredResponse {
  return {
    id,
    accountId,
    createdAt: Date.now(),
    response: {
      id,
      object: "response",
      created_at: Math.floor(Date.now() / 1000),
      status: "completed",
      model: "sim-model",
      output: [
        {
          id: `msg_${id}`,
          type: "message",
          role: "assistant",
          status: "completed",
          content: [{ type: "output_text", text: "Stored answer.", annotations: [] }],
        },
      ],
      usage: {
        input_tokens: 12,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 3,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 15,
      },
    },
    input: Array.from({ length: count }, (_, i) => ({
      id: `item_${i}`,
      type: "message",
      role: "user",
      content: [{ type: "input_text", text: `question ${i}` }],
    })),
  };
}

describe.each([
  ["in memory (a hub without storage)", memoryHub],
  ["on SQLite", sqliteHub],
])("stored responses %s", (_name, start) => {
  let s: Setup;
  let one: OpenAI;
  let two: OpenAI;
  beforeAll(async () => {
    s = await start();
    one = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.keys[0], maxRetries: 0 });
    two = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.keys[1], maxRetries: 0 });
  });
  afterAll(() => s.close());

  it("retrieves the Response object as stored, for its account only", async () => {
    const r = stored("resp_get_1", s.accounts[0], 2);
    await s.hub.responses.save(r);
    const got = await one.responses.retrieve("resp_get_1");
    // The SDK adds the convenience `output_text`; everything else is the stored object.
    const { output_text, ...rest } = got;
    expect(rest).toEqual(r.response);
    expect(output_text).toBe("Stored answer.");
    const other = await two.responses.retrieve("resp_get_1").catch((e: unknown) => e);
    expect(other).toBeInstanceOf(OpenAI.NotFoundError);
    expect((other as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("api.not_found");
    await expect(one.responses.retrieve("resp_never")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const anonymous = await fetch(`${s.url}/v1/responses/resp_get_1`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("api.unauthorized");
  });

  it("lists input items newest first by default, pages with after, and in ascending order", async () => {
    await s.hub.responses.save(stored("resp_items_1", s.accounts[0], 25));
    const first = await one.responses.inputItems.list("resp_items_1", { limit: 10 });
    expect(first.data.map((i) => i.id)).toEqual(Array.from({ length: 10 }, (_, i) => `item_${24 - i}`));
    expect(first.has_more).toBe(true);
    const all: string[] = [];
    for await (const item of one.responses.inputItems.list("resp_items_1", { limit: 10 })) all.push(item.id!);
    expect(all).toEqual(Array.from({ length: 25 }, (_, i) => `item_${24 - i}`));
    const asc: string[] = [];
    for await (const item of one.responses.inputItems.list("resp_items_1", {
      order: "asc",
      limit: 7,
      include: ["message.input_image.image_url"],
    }))
      asc.push(item.id!);
    expect(asc).toEqual(Array.from({ length: 25 }, (_, i) => `item_${i}`));
    // The raw page: OpenAI's list object.
    const res = await fetch(`${s.url}/v1/responses/resp_items_1/input_items?order=asc&after=item_22`, {
      headers: { authorization: `Bearer ${s.keys[0]}` },
    });
    expect(await res.json()).toMatchObject({
      object: "list",
      first_id: "item_23",
      last_id: "item_24",
      has_more: false,
      data: [{ id: "item_23" }, { id: "item_24" }],
    });
    await expect(two.responses.inputItems.list("resp_items_1")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(one.responses.inputItems.list("resp_items_1", { limit: 101 })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it("deletes for its account only, answering OpenAI's shape; then the response is gone", async () => {
    await s.hub.responses.save(stored("resp_del_1", s.accounts[0], 1));
    await expect(two.responses.delete("resp_del_1")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(one.responses.delete("resp_del_1")).resolves.toEqual({ id: "resp_del_1", object: "response", deleted: true });
    await expect(one.responses.retrieve("resp_del_1")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(one.responses.inputItems.list("resp_del_1")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(one.responses.delete("resp_del_1")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await s.hub.responses.save(stored("resp_del_2", s.accounts[0], 1));
    const res = await fetch(`${s.url}/v1/responses/resp_del_2`, { method: "DELETE", headers: { authorization: `Bearer ${s.keys[0]}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: "resp_del_2", object: "response", deleted: true });
  });

  it("answers other methods with 405 and allow, and unknown sub-paths with 404", async () => {
    const auth = { authorization: `Bearer ${s.keys[0]}` };
    const put = await fetch(`${s.url}/v1/responses/resp_x`, { method: "PUT", headers: auth });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, DELETE");
    const post = await fetch(`${s.url}/v1/responses/resp_x/input_items`, { method: "POST", headers: auth });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET");
    const other = await fetch(`${s.url}/v1/responses/resp_x/output_items`, { headers: auth });
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe("api.not_found");
  });
});

describe("stored responses of real turns (POST /v1/responses through a simulator node)", () => {
  let net: Net;
  let client: OpenAI;
  beforeAll(async () => {
    net = await startNet();
    await net.addProvider(await net.sim(), { capabilities: ["chat", "stream", "tools"] });
    client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });
  afterAll(() => net.close());

  it("keeps each answered turn as answered, lists its input, continues it, and forgets it once deleted", async () => {
    const first = await client.responses.create({ model: MODEL, input: "Say hello." });
    const { output_text: _a, ...firstStored } = await client.responses.retrieve(first.id);
    const { output_text: _b, ...firstAnswered } = first;
    expect(firstStored).toEqual(firstAnswered);
    const items = await client.responses.inputItems.list(first.id);
    expect(items.data).toHaveLength(1);
    expect(items.data[0]).toMatchObject({ type: "message", role: "user", id: expect.any(String) });
    const second = await client.responses.create({ model: MODEL, input: "Again.", previous_response_id: first.id });
    expect((await client.responses.retrieve(second.id)).id).toBe(second.id);
    const unkept = await client.responses.create({ model: MODEL, input: "Forget this.", store: false });
    await expect(client.responses.retrieve(unkept.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect(await client.responses.delete(first.id)).toEqual({ id: first.id, object: "response", deleted: true });
    // Neither the deleted turn nor one continuing it can be continued.
    for (const previous of [first.id, second.id]) {
      const refused = await client.responses
        .create({ model: MODEL, input: "More.", previous_response_id: previous })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.NotFoundError);
    }
  });

  it("are described in the hub's openapi.json", async () => {
    const doc = (await (await fetch(`${net.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(Object.keys(doc.paths["/v1/responses/{id}"]!).sort()).toEqual(["delete", "get"]);
    expect(Object.keys(doc.paths["/v1/responses/{id}/input_items"]!)).toEqual(["get"]);
    for (const op of [
      doc.paths["/v1/responses/{id}"]!.get!,
      doc.paths["/v1/responses/{id}"]!.delete!,
      doc.paths["/v1/responses/{id}/input_items"]!.get!,
    ]) {
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["200", "401", "404"]));
    }
  });

  it("resolves item_reference input items from the account's stored turns for a chat-only instance; an unknown id is a 404", async () => {
    const first = await client.responses.create({ model: MODEL, input: "Say hello." });
    const message = first.output.find((i) => i.type === "message")!;
    const said = first.output_text;
    expect(said).not.toBe("");
    const userItem = (await client.responses.inputItems.list(first.id)).data[0]!;
    // As the Vercel AI SDK sends earlier output when store is on: by reference.
    const second = await client.responses.create({
      model: MODEL,
      input: [
        { type: "item_reference", id: userItem.id! },
        { type: "item_reference", id: message.id },
        { role: "user", content: "and?" },
      ],
    });
    expect(second.output_text).not.toBe("");
    const seen = net.sims[0]!.requests.at(-1)! as { messages: { role: string; content: unknown }[] };
    expect(seen.messages).toEqual([
      { role: "user", content: "Say hello." },
      { role: "assistant", content: said },
      { role: "user", content: "and?" },
    ]);
    // The turn keeps the items it was given, resolved.
    const kept = (await client.responses.inputItems.list(second.id, { order: "asc" })).data;
    expect(kept.map((i) => i.id)).toEqual([userItem.id, message.id, expect.any(String)]);
    expect(kept[1]).toMatchObject({ type: "message", role: "assistant" });
    const unknown = await client.responses
      .create({
        model: MODEL,
        input: [
          { type: "item_reference", id: "msg_nothing_here" },
          { role: "user", content: "and?" },
        ],
      })
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect((unknown as InstanceType<typeof OpenAI.NotFoundError>).message).toMatch(/input\[0\].*msg_nothing_here/);
    // A deleted turn's items are gone with it (the second turn holds the referenced items too).
    await client.responses.delete(first.id);
    expect((await client.responses.create({ model: MODEL, input: [{ type: "item_reference", id: message.id }], store: false })).id).toMatch(
      /^resp_/,
    );
    await client.responses.delete(second.id);
    const gone = await client.responses
      .create({ model: MODEL, input: [{ type: "item_reference", id: message.id }] })
      .catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("keeps turns for the hub's retention (responses.retentionMs) on its storage", async () => {
    const store: SqlStore = await openStore(`sqlite:${join(dir, "retention.db")}`, { signupCredits: 0n });
    const account = await store.createAccount({ id: "acct_retention" });
    const key = (await store.createApiKey(account.id)).key;
    const hub = createHub({
      identity: generateIdentity(),
      accounts: store,
      storage: store,
      drainTimeoutMs: 100,
      responses: { retentionMs: 60_000 },
    });
    try {
      const { url } = await hub.listen({ port: 0 });
      const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
      await hub.responses.save({ ...stored("resp_old", account.id, 1), createdAt: Date.now() - 120_000 });
      await hub.responses.save(stored("resp_new", account.id, 1));
      await expect(c.responses.retrieve("resp_old")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      expect((await c.responses.retrieve("resp_new")).id).toBe("resp_new");
      expect(await hub.responses.sweep!()).toBe(1);
    } finally {
      await hub.close();
      await store.close();
    }
  });
});
