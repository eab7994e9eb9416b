/**
 * A hostile node cannot set the bill, and what a consumer is shown is what was billed
 * (SRP-ATT-015..SRP-ATT-020): a real hub on a real ledger (a SQLite file; PostgreSQL for
 * the main case), a node played over a raw WebSocket (the conformance suite's harness
 * node), consumers over HTTP with the official SDKs or fetch.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { generateIdentity, measureOutput, responseHash, StreamHasher, type Job, type Receipt, type Usage } from "@srp/core";
import { createHub, openStore, SqliteStore, type Hub, type SqlStore } from "@srp/hub";
import { HarnessNode, instance, newModel } from "../conformance/src/checks/hub-jobs.js";
import { Tracker } from "../conformance/src/runner.js";
import { SchemaValidator } from "../conformance/src/schema.js";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

const SIGNUP = 5_000_000n;
const ASK = [{ role: "user" as const, content: "Say hi." }];

interface World {
  hub: Hub;
  url: string;
  store: SqlStore;
  node: HarnessNode;
  model: string;
  instanceId: string;
  consumer: { id: string; key: string };
  close(): Promise<void>;
}

let pg: TestPostgres | undefined;
const worlds: World[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close();
});
afterAll(async () => {
  await pg?.stop();
});

async function world(engine: "sqlite" | "postgres" = "sqlite", capabilities: string[] = ["chat", "stream"]): Promise<World> {
  const options = { signupCredits: SIGNUP };
  let store: SqlStore;
  if (engine === "sqlite") store = new SqliteStore(join(mkdtempSync(join(tmpdir(), "srp-hostile-")), "hub.db"), options);
  else {
    pg ??= await startPostgres();
    store = await openStore(await createDatabase(pg.url, `hostile_${Date.now().toString(36)}`), options);
  }
  const providerAccount = await store.createAccount({ name: "hostile provider" });
  const providerKey = (await store.createApiKey(providerAccount.id)).key;
  const consumerAccount = await store.createAccount({ name: "consumer" });
  const consumer = { id: consumerAccount.id, key: (await store.createApiKey(consumerAccount.id)).key };
  const hub = createHub({ identity: generateIdentity(), accounts: store, receipts: store });
  const { url } = await hub.listen({ port: 0 });
  const tracker = new Tracker();
  const model = newModel();
  const inst = instance(model, { capabilities: capabilities as never });
  const node = await HarnessNode.open({ baseUrl: url, accountKey: providerKey, validator: new SchemaValidator(), tracker }, [inst]);
  const w: World = {
    hub,
    url,
    store,
    node,
    model,
    instanceId: inst.instanceId,
    consumer,
    async close() {
      await tracker.dispose();
      await hub.close();
      await store.close();
    },
  };
  worlds.push(w);
  return w;
}

/** The next job the hub sends the node. */
const nextJob = (w: World) => w.node.peer.take((m) => m.type === "job", 5000, 0, "a job") as unknown as Promise<Job>;

/** The hub's answer to the node's done: its receipt or its error. */
const answerTo = (w: World, jobId: string) => w.node.answerTo(jobId);

/** Failures the instance has on record in the hub's breaker and health window. */
function failures(w: World): number {
  const live = w.hub.router.all().find((l) => l.instance.instanceId === w.instanceId);
  const health = w.hub.router.store.get(live!.key);
  return (health?.window ?? []).reduce((n, b) => n + b.failure, 0);
}

const chunkOf = (job: Job, delta: Record<string, unknown>, finish: string | null = null) => ({ id: "chatcmpl-hostile", object: "chat.completion.chunk", created: 1, model: job.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
const usageChunk = (job: Job, prompt: number, completion: number) => ({ id: "chatcmpl-hostile", object: "chat.completion.chunk", created: 1, model: job.model, choices: [], usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } });

/** Streams `datas` and ends the job with a done whose receipt claims `usage`. */
function streamWith(w: World, job: Job, datas: Record<string, unknown>[], usage: Usage): Receipt {
  w.node.chunks(job, datas);
  const hasher = new StreamHasher();
  for (const d of datas) hasher.add(d);
  const receipt = w.node.receipt(job, usage, hasher.digest());
  w.node.peer.send({ type: "done", jobId: job.jobId, chunks: datas.length, usage, receipt });
  return receipt;
}

/** Answers a non-streamed job with `response` and a receipt claiming `usage`. */
function respondWith(w: World, job: Job, response: Record<string, unknown>, usage: Usage): Receipt {
  const receipt = w.node.receipt(job, usage, responseHash(response));
  w.node.peer.send({ type: "done", jobId: job.jobId, chunks: 0, usage, response, receipt });
  return receipt;
}

const chatResponse = (job: Job, content: string, usage: { prompt_tokens: number; completion_tokens: number }) => ({
  id: "chatcmpl-hostile",
  object: "chat.completion",
  created: 1,
  model: job.model,
  choices: [{ index: 0, message: { role: "assistant", content }, logprobs: null, finish_reason: "stop" }],
  usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
});

const INFLATED: Usage = { promptTokens: 11, completionTokens: 1_000_000, measured: true };
const HONEST: Usage = { promptTokens: 11, completionTokens: 3, measured: true };

async function expectUntouched(w: World): Promise<void> {
  // The reservation is released (maybe just after the answer): nothing held, nothing spent.
  await expect.poll(async () => (await w.store.summary(w.consumer.id)).held, { timeout: 5000 }).toBe(0n);
  expect(await w.store.summary(w.consumer.id)).toMatchObject({ balance: SIGNUP, spent: 0n });
  expect(await w.store.verify()).toEqual([]);
}

function post(w: World, path: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${w.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${w.consumer.key}`, "content-type": "application/json" }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
}

describe("a node claiming 1,000,000 completion tokens for a 3-token answer with max_tokens 10", () => {
  it.each(["sqlite", "postgres"] as const)("non-streamed (%s): not countersigned, the node told receipt.implausible_usage, the instance failed, the consumer not billed", { timeout: 60_000 }, async (engine) => {
    const w = await world(engine);
    const answer = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 10 });
    const job = await nextJob(w);
    respondWith(w, job, chatResponse(job, "Hi there!", { prompt_tokens: 11, completion_tokens: 1_000_000 }), INFLATED);
    const reply = await answerTo(w, job.jobId);
    expect(reply).toMatchObject({ type: "error", code: "receipt.implausible_usage", jobId: job.jobId, retryable: false });
    expect(String(reply.message)).toMatch(/completionTokens 1000000 exceed the output limit 10/);
    // Nothing reached the consumer yet: the request fails over (here: no other instance) and is not billed.
    const res = await answer;
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("job.upstream_error");
    expect(await w.hub.receipts.get(job.jobId)).toBeUndefined();
    expect(failures(w)).toBe(1);
    await expectUntouched(w);
  });

  it("streamed: the consumer keeps the answer, is shown usage 0 at cost 0 with the reason, and is not billed", async () => {
    const w = await world();
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 10, stream: true });
    const job = await nextJob(w);
    streamWith(w, job, [chunkOf(job, { role: "assistant", content: "" }), chunkOf(job, { content: "Hi" }), chunkOf(job, { content: "!" }), chunkOf(job, {}, "stop"), usageChunk(job, 11, 1_000_000)], INFLATED);
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    const text = await (await pending).text();
    const events = text.split("\n\n").filter((e) => e.startsWith("data: ") && !e.includes("[DONE]")).map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);
    const last = events.at(-1)!.usage as Record<string, unknown>;
    expect(last).toMatchObject({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: "0.00", cost_units: "0", receipt_id: null, measured: false, receipt_error: "receipt.implausible_usage" });
    expect(text).toContain('"content":"Hi"');
    expect(failures(w)).toBe(1);
    await expectUntouched(w);
  });

  it("a late inflated done after the hub's cancel is checked against the chunks that arrived (counted though discarded)", async () => {
    const w = await world();
    const controller = new AbortController();
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 10, stream: true }, controller.signal);
    const job = await nextJob(w);
    const datas = [chunkOf(job, { role: "assistant", content: "" }), chunkOf(job, { content: "Hi" }), chunkOf(job, { content: " there" }), chunkOf(job, {}, "stop")];
    w.node.chunks(job, datas.slice(0, 2));
    const reader = (await pending).body!.getReader();
    await reader.read();
    controller.abort();
    await w.node.peer.take((m) => m.type === "cancel" && m.jobId === job.jobId, 5000, 0, "cancel");
    // Late: the rest of the answer, then a done claiming far more than max_tokens.
    w.node.chunks(job, datas.slice(2), 2);
    const hasher = new StreamHasher();
    for (const d of datas) hasher.add(d);
    const receipt = w.node.receipt(job, INFLATED, hasher.digest());
    w.node.peer.send({ type: "done", jobId: job.jobId, chunks: datas.length, usage: INFLATED, receipt });
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage", jobId: job.jobId });
    expect(await w.hub.receipts.get(job.jobId)).toBeUndefined();
    expect(failures(w)).toBe(1);
    await expectUntouched(w);
  });

  it("a late done within max_tokens but beyond what arrived is refused too; an honest late done is billed", async () => {
    const w = await world();
    for (const [usage, countersigned] of [
      [{ promptTokens: 11, completionTokens: 60, measured: true }, false],
      [{ promptTokens: 11, completionTokens: 2, measured: true }, true],
    ] as const) {
      const controller = new AbortController();
      const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 64, stream: true }, controller.signal);
      const job = await nextJob(w);
      const datas = [chunkOf(job, { content: "Hi" }), chunkOf(job, { content: " there" })];
      w.node.chunks(job, datas.slice(0, 1));
      await (await pending).body!.getReader().read();
      controller.abort();
      await w.node.peer.take((m) => m.type === "cancel" && m.jobId === job.jobId, 5000, 0, "cancel");
      w.node.chunks(job, datas.slice(1), 1);
      const hasher = new StreamHasher();
      for (const d of datas) hasher.add(d);
      const receipt = w.node.receipt(job, usage, hasher.digest());
      w.node.peer.send({ type: "done", jobId: job.jobId, chunks: datas.length, usage, receipt });
      const reply = await answerTo(w, job.jobId);
      if (countersigned) {
        expect(reply.type).toBe("receipt");
        w.node.position = { lastSeq: receipt.seq, totals: receipt.totals };
      } else {
        // 60 visible tokens for 8 bytes relayed (allowance 8 + 16 = 24).
        expect(reply).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
        // The refused receipt's seq is skipped: the next one is a reported gap (SRP-ATT-010).
        w.node.position = { ...w.node.position, lastSeq: w.node.position.lastSeq };
      }
    }
    await expect.poll(async () => (await w.store.summary(w.consumer.id)).held, { timeout: 5000 }).toBe(0n);
    const s = await w.store.summary(w.consumer.id);
    expect(s.spent).toBeGreaterThan(0n);
    expect(s.balance).toBe(SIGNUP - s.spent);
    expect(await w.store.verify()).toEqual([]);
  });
});

describe("honest nodes with real tokenizer behaviour are countersigned and billed", () => {
  it("multi-byte UTF-8 text (fewer tokens than bytes) and a tool call (more tokens than bytes) pass", async () => {
    const w = await world("sqlite", ["chat", "stream", "tools"]);
    // "日本語です" is 15 bytes: a tokenizer gives it about 4 tokens, plus end of sequence.
    const call1 = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 32 });
    const job1 = await nextJob(w);
    const sent1 = respondWith(w, job1, chatResponse(job1, "日本語です", { prompt_tokens: 11, completion_tokens: 5 }), { promptTokens: 11, completionTokens: 5, measured: true });
    await w.node.countersigned(sent1);
    expect((await call1).status).toBe(200);
    // A tool call whose text is 3 bytes (name "f", arguments "{}"): its markers cost tokens the consumer does not see.
    const call2 = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 64, stream: true, tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }] });
    const job2 = await nextJob(w);
    const datas = [chunkOf(job2, { role: "assistant", tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }] }), chunkOf(job2, { tool_calls: [{ index: 0, function: { arguments: "{}" } }] }), chunkOf(job2, {}, "tool_calls")];
    expect(measureOutput(...datas)).toEqual({ bytes: 3, toolCalls: 1 });
    const sent2 = streamWith(w, job2, datas, { promptTokens: 40, completionTokens: 3 + 16 + 32, measured: true });
    await w.node.countersigned(sent2);
    await (await call2).text();
    await expect.poll(async () => (await w.store.summary(w.consumer.id)).held, { timeout: 5000 }).toBe(0n);
    expect(BigInt((await w.store.summary(w.consumer.id)).spent)).toBe(BigInt(sent1.cost) + BigInt(sent2.cost));
    expect(failures(w)).toBe(0);
    expect(await w.store.verify()).toEqual([]);
  });
});

describe("shown usage is the countersigned receipt's, whatever the node's chunks or body say", () => {
  const receiptOf = async (w: World, id: string) => {
    const r = await fetch(`${w.url}/v1/receipts/${id}`, { headers: { authorization: `Bearer ${w.consumer.key}` } });
    return ((await r.json()) as { receipt: Receipt }).receipt;
  };

  it("chat completions, non-streamed and streamed (official openai SDK)", async () => {
    const w = await world();
    const sdk = new OpenAI({ baseURL: `${w.url}/v1`, apiKey: w.consumer.key, maxRetries: 0 });
    const pending = sdk.chat.completions.create({ model: w.model, messages: ASK, max_tokens: 10 });
    const job = await nextJob(w);
    await w.node.countersigned(respondWith(w, job, chatResponse(job, "Hi there!", { prompt_tokens: 999_999, completion_tokens: 1_000_000 }), HONEST));
    const completion = await pending;
    expect(completion.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
    const ext = completion.usage as unknown as { cost_units: string; receipt_id: string };
    const r1 = await receiptOf(w, ext.receipt_id);
    expect(r1.usage).toEqual(HONEST);
    expect(ext.cost_units).toBe(r1.cost);

    const streaming = sdk.chat.completions.create({ model: w.model, messages: ASK, max_tokens: 10, stream: true });
    const job2 = await nextJob(w);
    await w.node.countersigned(streamWith(w, job2, [chunkOf(job2, { content: "Hi" }), chunkOf(job2, { content: " there!" }), chunkOf(job2, {}, "stop"), usageChunk(job2, 999_999, 1_000_000)], HONEST));
    const stream = await streaming;
    let usage: Record<string, unknown> | undefined;
    for await (const c of stream) if (c.usage) usage = c.usage as unknown as Record<string, unknown>;
    expect(usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
    const r2 = await receiptOf(w, usage!.receipt_id as string);
    expect(usage!.cost_units).toBe(r2.cost);
  });

  it("Anthropic Messages (native), non-streamed and streamed (official Anthropic SDK)", async () => {
    const w = await world("sqlite", ["chat", "stream", "messages"]);
    const sdk = new Anthropic({ baseURL: w.url, apiKey: w.consumer.key, maxRetries: 0 });
    const lying = { input_tokens: 999_999, output_tokens: 1_000_000, cache_read_input_tokens: 5, cache_creation_input_tokens: 0 };
    const pending = sdk.messages.create({ model: w.model, max_tokens: 10, messages: ASK });
    const job = await nextJob(w);
    expect(job.api).toBe("messages");
    const message = { id: "msg_hostile", type: "message", role: "assistant", model: job.model, content: [{ type: "text", text: "Hi there!" }], stop_reason: "end_turn", stop_sequence: null, usage: lying };
    await w.node.countersigned(respondWith(w, job, message, HONEST));
    const msg = await pending;
    expect(msg.usage).toMatchObject({ input_tokens: 11, output_tokens: 3, cache_read_input_tokens: 0, cache_creation_input_tokens: 0 });
    const ext = msg.usage as unknown as { cost_units: string; receipt_id: string };
    expect(ext.cost_units).toBe((await receiptOf(w, ext.receipt_id)).cost);

    const stream = sdk.messages.stream({ model: w.model, max_tokens: 10, messages: ASK });
    let delta: Record<string, unknown> | undefined;
    stream.on("streamEvent", (e) => {
      if (e.type === "message_delta") delta = e.usage as unknown as Record<string, unknown>;
    });
    const job2 = await nextJob(w);
    const events = [
      { type: "message_start", message: { ...message, content: [], stop_reason: null, usage: { input_tokens: 11, output_tokens: 1 } } },
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hi there!" } },
      { type: "content_block_stop", index: 0 },
      { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: lying },
      { type: "message_stop" },
    ];
    await w.node.countersigned(streamWith(w, job2, events, HONEST));
    const final = await stream.finalMessage();
    expect(final.usage).toMatchObject({ input_tokens: 11, output_tokens: 3, cache_read_input_tokens: 0 });
    expect(delta).toMatchObject({ input_tokens: 11, output_tokens: 3 });
    expect(delta!.cost_units).toBe((await receiptOf(w, delta!.receipt_id as string)).cost);
  });

  it("Anthropic Messages translated to chat: the body's usage is the receipt's", async () => {
    const w = await world();
    const pending = post(w, "/v1/messages", { model: w.model, max_tokens: 10, messages: ASK });
    const job = await nextJob(w);
    expect(job.api).toBe("chat.completions");
    await w.node.countersigned(respondWith(w, job, chatResponse(job, "Hi there!", { prompt_tokens: 999_999, completion_tokens: 1_000_000 }), HONEST));
    const msg = (await (await pending).json()) as { usage: Record<string, unknown> };
    expect(msg.usage).toMatchObject({ input_tokens: 11, output_tokens: 3 });
  });
});
