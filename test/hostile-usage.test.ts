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
import { generateIdentity, responseHash, StreamHasher } from "@srp/core";
import type { Instance, Job, Receipt, Usage } from "@srp/core/schema";
import { measureOutput } from "@srp/core/metering";
import { createHub, openStore, SqliteStore, type Hub, type HubOptions, type SqlStore } from "@srp/hub";
import { createProvider, openAICompatibleBackend } from "@srp/provider";
import { startSimulator } from "@srp/provider/simulator";
import { instance, newModel } from "../conformance/src/harness/instances.js";
import { HarnessNode } from "../conformance/src/harness/node.js";
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

async function world(
  engine: "sqlite" | "postgres" = "sqlite",
  capabilities: string[] = ["chat", "stream"],
  hubOptions: Partial<HubOptions> = {},
  overrides: Partial<Instance> = {},
): Promise<World> {
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
  const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, ...hubOptions });
  const { url } = await hub.listen({ port: 0 });
  const tracker = new Tracker();
  const model = newModel();
  const inst = instance(model, { capabilities: capabilities as never, ...overrides });
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

const chunkOf = (job: Job, delta: Record<string, unknown>, finish: string | null = null) => ({
  id: "chatcmpl-hostile",
  object: "chat.completion.chunk",
  created: 1,
  model: job.model,
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
});
const usageChunk = (job: Job, prompt: number, completion: number) => ({
  id: "chatcmpl-hostile",
  object: "chat.completion.chunk",
  created: 1,
  model: job.model,
  choices: [],
  usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
});

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
/** 5000 completion tokens for a 2-byte visible answer padded with 5000 bytes the consumer never receives. */
const UNSEEN: Usage = { promptTokens: 11, completionTokens: 5000, measured: true };
const PAD = "x".repeat(5000);

async function expectUntouched(w: World): Promise<void> {
  // The reservation is released (maybe just after the answer): nothing held, nothing spent.
  await expect.poll(async () => (await w.store.summary(w.consumer.id)).held, { timeout: 5000 }).toBe(0n);
  expect(await w.store.summary(w.consumer.id)).toMatchObject({ balance: SIGNUP, spent: 0n });
  expect(await w.store.verify()).toEqual([]);
}

function post(w: World, path: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${w.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${w.consumer.key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

describe("a node claiming 1,000,000 completion tokens for a 3-token answer with max_tokens 10", () => {
  it.each(["sqlite", "postgres"] as const)(
    "non-streamed (%s): not countersigned, the node told receipt.implausible_usage, the instance failed, the consumer not billed",
    { timeout: 60_000 },
    async (engine) => {
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
    },
  );

  it("streamed: the consumer keeps the answer, is shown usage 0 at cost 0 with the reason, and is not billed", async () => {
    const w = await world();
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 10, stream: true });
    const job = await nextJob(w);
    streamWith(
      w,
      job,
      [
        chunkOf(job, { role: "assistant", content: "" }),
        chunkOf(job, { content: "Hi" }),
        chunkOf(job, { content: "!" }),
        chunkOf(job, {}, "stop"),
        usageChunk(job, 11, 1_000_000),
      ],
      INFLATED,
    );
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    const text = await (await pending).text();
    const events = text
      .split("\n\n")
      .filter((e) => e.startsWith("data: ") && !e.includes("[DONE]"))
      .map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);
    const last = events.at(-1)!.usage as Record<string, unknown>;
    expect(last).toMatchObject({
      prompt_tokens: 0,
      completion_tokens: 0,
      total_tokens: 0,
      cost: "0.00",
      cost_units: "0",
      receipt_id: null,
      measured: false,
      receipt_error: "receipt.implausible_usage",
    });
    expect(text).toContain('"content":"Hi"');
    expect(failures(w)).toBe(1);
    await expectUntouched(w);
  });

  it("a late inflated done after the hub's cancel is checked against the chunks that arrived (counted though discarded)", async () => {
    const w = await world();
    const controller = new AbortController();
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 10, stream: true }, controller.signal);
    const job = await nextJob(w);
    const datas = [
      chunkOf(job, { role: "assistant", content: "" }),
      chunkOf(job, { content: "Hi" }),
      chunkOf(job, { content: " there" }),
      chunkOf(job, {}, "stop"),
    ];
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
    const sent1 = respondWith(w, job1, chatResponse(job1, "日本語です", { prompt_tokens: 11, completion_tokens: 5 }), {
      promptTokens: 11,
      completionTokens: 5,
      measured: true,
    });
    await w.node.countersigned(sent1);
    expect((await call1).status).toBe(200);
    // A tool call whose text is 3 bytes (name "f", arguments "{}"): its markers cost tokens the consumer does not see.
    const call2 = post(w, "/v1/chat/completions", {
      model: w.model,
      messages: ASK,
      max_tokens: 64,
      stream: true,
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: {} } } }],
    });
    const job2 = await nextJob(w);
    const datas = [
      chunkOf(job2, {
        role: "assistant",
        tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }],
      }),
      chunkOf(job2, { tool_calls: [{ index: 0, function: { arguments: "{}" } }] }),
      chunkOf(job2, {}, "tool_calls"),
    ];
    expect(measureOutput({ api: "chat.completions", stream: true }, ...datas)).toEqual({ bytes: 3, toolCalls: 1 });
    const sent2 = streamWith(w, job2, datas, { promptTokens: 40, completionTokens: 3 + 16 + 32, measured: true });
    await w.node.countersigned(sent2);
    await (await call2).text();
    await expect.poll(async () => (await w.store.summary(w.consumer.id)).held, { timeout: 5000 }).toBe(0n);
    expect(BigInt((await w.store.summary(w.consumer.id)).spent)).toBe(BigInt(sent1.cost) + BigInt(sent2.cost));
    expect(failures(w)).toBe(0);
    expect(await w.store.verify()).toEqual([]);
  });
});

describe("a node's tool-call arguments nested 10,000 deep (within its frame limit)", () => {
  it("Anthropic Messages translated to chat: answered 200 with the tool's input as {}, billed, never a 500 after billing", async () => {
    const w = await world("sqlite", ["chat", "stream", "tools"]);
    const depth = 10_000; // JSON.stringify of the parsed object would overflow the stack
    const args = '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
    const pending = post(w, "/v1/messages", {
      model: w.model,
      max_tokens: 64,
      messages: ASK,
      tools: [{ name: "f", input_schema: { type: "object" } }],
    });
    const job = await nextJob(w);
    const response = {
      id: "chatcmpl-hostile",
      object: "chat.completion",
      created: 1,
      model: job.model,
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: args } }],
          },
          logprobs: null,
          finish_reason: "tool_calls",
        },
      ],
      usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 },
    };
    const sent = respondWith(w, job, response, HONEST);
    await w.node.countersigned(sent);
    const answer = await pending;
    expect(answer.status).toBe(200);
    const msg = (await answer.json()) as { content: Array<Record<string, unknown>>; stop_reason: string };
    expect(msg.stop_reason).toBe("tool_use");
    expect(msg.content).toEqual([{ type: "tool_use", id: "call_1", name: "f", input: {} }]);
    await expect.poll(async () => (await w.store.summary(w.consumer.id)).held, { timeout: 5000 }).toBe(0n);
    expect((await w.store.summary(w.consumer.id)).spent).toBe(BigInt(sent.cost));
    // The hub keeps serving.
    const next = post(w, "/v1/messages", { model: w.model, max_tokens: 10, messages: ASK });
    const job2 = await nextJob(w);
    await w.node.countersigned(respondWith(w, job2, chatResponse(job2, "Hi there!", { prompt_tokens: 11, completion_tokens: 3 }), HONEST));
    expect((await next).status).toBe(200);
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
    await w.node.countersigned(
      respondWith(w, job, chatResponse(job, "Hi there!", { prompt_tokens: 999_999, completion_tokens: 1_000_000 }), HONEST),
    );
    const completion = await pending;
    expect(completion.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
    const ext = completion.usage as unknown as { cost_units: string; receipt_id: string };
    const r1 = await receiptOf(w, ext.receipt_id);
    expect(r1.usage).toEqual(HONEST);
    expect(ext.cost_units).toBe(r1.cost);

    const streaming = sdk.chat.completions.create({ model: w.model, messages: ASK, max_tokens: 10, stream: true });
    const job2 = await nextJob(w);
    await w.node.countersigned(
      streamWith(
        w,
        job2,
        [
          chunkOf(job2, { content: "Hi" }),
          chunkOf(job2, { content: " there!" }),
          chunkOf(job2, {}, "stop"),
          usageChunk(job2, 999_999, 1_000_000),
        ],
        HONEST,
      ),
    );
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
    const message = {
      id: "msg_hostile",
      type: "message",
      role: "assistant",
      model: job.model,
      content: [{ type: "text", text: "Hi there!" }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: lying,
    };
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
    await w.node.countersigned(
      respondWith(w, job, chatResponse(job, "Hi there!", { prompt_tokens: 999_999, completion_tokens: 1_000_000 }), HONEST),
    );
    const msg = (await (await pending).json()) as { usage: Record<string, unknown> };
    expect(msg.usage).toMatchObject({ input_tokens: 11, output_tokens: 3 });
  });
});

describe("a hostile node cannot bill output the consumer never saw (SRP-ATT-015, SRP-ATT-016, SRP-ATT-018)", () => {
  it("hidden reasoning tokens on an instance without the reasoning capability are visible tokens: 8181 for 'Hi' is refused", async () => {
    const w = await world();
    // No max_tokens (the OpenAI SDK's default): the limit is the context (8192) less the prompt.
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, stream: true });
    const job = await nextJob(w);
    streamWith(w, job, [chunkOf(job, { content: "Hi" }), chunkOf(job, {}, "stop")], {
      promptTokens: 11,
      completionTokens: 8181,
      reasoningTokens: 8179,
      measured: true,
    });
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    await (await pending).text();
    await expectUntouched(w);
  });

  it("an instance offering reasoning may bill hidden reasoning tokens within the output limit", async () => {
    const w = await world("sqlite", ["chat", "stream", "reasoning"]);
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 600, stream: true });
    const job = await nextJob(w);
    const sent = streamWith(w, job, [chunkOf(job, { content: "Hi" }), chunkOf(job, {}, "stop")], {
      promptTokens: 11,
      completionTokens: 500,
      reasoningTokens: 495,
      measured: true,
    });
    await w.node.countersigned(sent);
    await (await pending).text();
    await expect.poll(async () => (await w.store.summary(w.consumer.id)).spent, { timeout: 5000 }).toBe(BigInt(sent.cost));
  });

  it("unknown members (x_pad) are not output: padding a 2-byte answer with 6000 bytes no SDK shows is refused", async () => {
    const w = await world();
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, stream: true });
    const job = await nextJob(w);
    const padded = {
      ...chunkOf(job, { content: "Hi", x_pad: "a".repeat(2000) }),
      x_pad: "a".repeat(2000),
      x_meta: { content: "a".repeat(2000) },
    };
    expect(measureOutput({ api: "chat.completions", stream: true }, padded)).toEqual({ bytes: 2, toolCalls: 0 });
    streamWith(w, job, [padded, chunkOf(job, {}, "stop")], { promptTokens: 11, completionTokens: 5000, measured: true });
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    await (await pending).text();
    await expectUntouched(w);
  });

  it("native Messages stream: text inside a message_stop event (the hub drops message_stop) is not output", async () => {
    const w = await world("sqlite", ["chat", "stream", "messages"]);
    const sdk = new Anthropic({ baseURL: w.url, apiKey: w.consumer.key, maxRetries: 0 });
    const stream = sdk.messages.stream({ model: w.model, max_tokens: 6000, messages: ASK });
    const job = await nextJob(w);
    streamWith(
      w,
      job,
      [
        {
          type: "message_start",
          message: {
            id: "msg_1",
            type: "message",
            role: "assistant",
            model: job.model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 11, output_tokens: 1 },
          },
        },
        { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
        { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hi" } },
        { type: "content_block_stop", index: 0 },
        { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 5000 } },
        { type: "message_stop", message: { content: PAD } },
      ],
      UNSEEN,
    );
    const final = await stream.finalMessage();
    expect(JSON.stringify(final.content)).not.toContain("xxxx");
    expect(final.usage.output_tokens).toBe(0);
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    await expectUntouched(w);
  });

  it("Messages translated to chat, streamed: reasoning_content is output only as the thinking the consumer is shown (SRP-CON-078)", async () => {
    const w = await world();
    const sdk = new Anthropic({ baseURL: w.url, apiKey: w.consumer.key, maxRetries: 0 });
    const stream = sdk.messages.stream({ model: w.model, max_tokens: 6000, messages: ASK });
    const job = await nextJob(w);
    expect(job.api).toBe("chat.completions");
    const thought = PAD.slice(0, 1000);
    streamWith(
      w,
      job,
      [chunkOf(job, { role: "assistant", reasoning_content: thought }), chunkOf(job, { content: "Hi" }), chunkOf(job, {}, "stop")],
      UNSEEN,
    );
    const final = await stream.finalMessage();
    // The reasoning is shown as thinking, so its 1000 bytes count; 5000 tokens are more than they cover.
    expect(final.content[0]).toMatchObject({ type: "thinking", thinking: thought });
    expect(final.usage.output_tokens).toBe(0);
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    await expectUntouched(w);
  });

  it("Messages translated to chat, non-streamed: a second choice (the translation keeps the first) is not output", async () => {
    const w = await world();
    const pending = post(w, "/v1/messages", { model: w.model, max_tokens: 6000, messages: ASK });
    const job = await nextJob(w);
    const two = chatResponse(job, "Hi", { prompt_tokens: 11, completion_tokens: 5000 });
    two.choices.push({ index: 1, message: { role: "assistant", content: PAD }, logprobs: null, finish_reason: "stop" });
    respondWith(w, job, two, UNSEEN);
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    // Nothing reached the consumer yet: like any refused non-streamed receipt, a 502 and nothing billed.
    const res = await pending;
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("job.upstream_error");
    await expectUntouched(w);
  });

  it("chat stream: a chunk-level message.content beside choices (no SDK reads it) is not output", async () => {
    const w = await world();
    const pending = post(w, "/v1/chat/completions", { model: w.model, max_tokens: 6000, messages: ASK, stream: true });
    const job = await nextJob(w);
    streamWith(w, job, [{ ...chunkOf(job, { content: "Hi" }), message: { content: PAD } }, chunkOf(job, {}, "stop")], UNSEEN);
    await (await pending).text();
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    await expectUntouched(w);
  });

  it("Claude's extended thinking, billed in full and relayed as a summary, is plausible up to the thinking budget on a reasoning instance", async () => {
    const w = await world("sqlite", ["chat", "stream", "messages", "reasoning"]);
    const summary = {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: w.model,
      content: [
        { type: "thinking", thinking: "The user greets; reply briefly.", signature: "c2ln" },
        { type: "text", text: "Hi" },
      ],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 11, output_tokens: 3000 },
    };
    const billed: Usage = { promptTokens: 11, completionTokens: 3000, measured: true };
    const pending = post(w, "/v1/messages", {
      model: w.model,
      max_tokens: 6000,
      thinking: { type: "enabled", budget_tokens: 4000 },
      messages: ASK,
    });
    const job = await nextJob(w);
    const sent = respondWith(w, job, { ...summary, model: job.model }, billed);
    await w.node.countersigned(sent);
    expect(((await (await pending).json()) as { usage: { output_tokens: number } }).usage.output_tokens).toBe(3000);
    // Without thinking asked for, the same 3000 tokens for the same relayed text are refused.
    const plain = post(w, "/v1/messages", { model: w.model, max_tokens: 6000, messages: ASK });
    const job2 = await nextJob(w);
    respondWith(w, job2, { ...summary, model: job2.model }, billed);
    expect(await answerTo(w, job2.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    await (await plain).text();
  });

  it("after a cancel, a late done is checked against the hub's own hash of the late chunks, and a late chunk out of order fails the session", async () => {
    const w = await world();
    const controller = new AbortController();
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 4000, stream: true }, controller.signal);
    const job = await nextJob(w);
    w.node.chunks(job, [chunkOf(job, { content: "Hi" })]);
    await (await pending).body!.getReader().read();
    controller.abort();
    await w.node.peer.take((m) => m.type === "cancel" && m.jobId === job.jobId, 5000, 0, "cancel");
    // The late chunk is short; the receipt's hash (and usage) is of a long answer the hub never saw.
    w.node.chunks(job, [chunkOf(job, {}, "stop")], 1);
    const claimed = [chunkOf(job, { content: "Hi" }), chunkOf(job, { content: "x".repeat(3000) }), chunkOf(job, {}, "stop")];
    const hasher = new StreamHasher();
    for (const d of claimed) hasher.add(d);
    const usage: Usage = { promptTokens: 11, completionTokens: 3000, measured: true };
    w.node.peer.send({ type: "done", jobId: job.jobId, chunks: 2, usage, receipt: w.node.receipt(job, usage, hasher.digest()) });
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.field_mismatch" });
    expect(await w.hub.receipts.get(job.jobId)).toBeUndefined();
    await expectUntouched(w);

    // A second cancelled job: a late chunk skipping a seq is a protocol error, as for a running job.
    const controller2 = new AbortController();
    const pending2 = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 64, stream: true }, controller2.signal);
    const job2 = await nextJob(w);
    w.node.chunks(job2, [chunkOf(job2, { content: "Hi" })]);
    await (await pending2).body!.getReader().read();
    controller2.abort();
    await w.node.peer.take((m) => m.type === "cancel" && m.jobId === job2.jobId, 5000, 0, "cancel");
    w.node.chunks(job2, [chunkOf(job2, { content: "x".repeat(3000) })], 5);
    expect(await w.node.peer.take((m) => m.type === "error", 5000, 0, "the session's error")).toMatchObject({
      code: "protocol.unexpected_message",
    });
  });

  it("a job cancelled at the hub's deadline and then answered with an implausible done counts one failure, not two", async () => {
    const w = await world("sqlite", ["chat", "stream"], { requestTimeoutMs: 300 });
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 10, stream: true });
    const job = await nextJob(w);
    await w.node.peer.take((m) => m.type === "cancel" && m.jobId === job.jobId, 5000, 0, "cancel at the deadline");
    await (await pending).text();
    expect(failures(w)).toBe(1);
    streamWith(w, job, [chunkOf(job, { content: "Hi" })], INFLATED);
    expect(await answerTo(w, job.jobId)).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
    expect(failures(w)).toBe(1);
    await expectUntouched(w);
  });
});

describe("honest usage the hub's bounds must admit", () => {
  it("an image by URL may cost 16,384 prompt tokens (Qwen2.5-VL on vLLM at its default pixel limit)", async () => {
    const w = await world("sqlite", ["chat", "stream", "vision"], {}, { contextLength: 131072 });
    const messages = [
      {
        role: "user",
        content: [
          { type: "text", text: "Describe." },
          { type: "image_url", image_url: { url: "https://example.com/photo-4032x3024.jpg" } },
        ],
      },
    ];
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages, max_tokens: 64, stream: true });
    const job = await nextJob(w);
    const sent = streamWith(
      w,
      job,
      [chunkOf(job, { role: "assistant", content: "" }), chunkOf(job, { content: "A harbour at dusk." }), chunkOf(job, {}, "stop")],
      { promptTokens: 16384 + 20, completionTokens: 6, measured: true },
    );
    await w.node.countersigned(sent);
    await (await pending).text();
    expect(failures(w)).toBe(0);
  });

  it("an Anthropic request with MCP servers is bounded by the instance's context: within it billed, beyond it refused", async () => {
    const w = await world("sqlite", ["chat", "stream", "tools", "messages"]);
    for (const [prompt, billed] of [
      [8000, true],
      [9000, false],
    ] as const) {
      const pending = post(w, "/v1/messages", {
        model: w.model,
        max_tokens: 64,
        messages: ASK,
        mcp_servers: [{ type: "url", url: "https://mcp.example.com/sse", name: "example" }],
      });
      const job = await nextJob(w);
      const response = {
        id: "msg_1",
        type: "message",
        role: "assistant",
        model: job.model,
        content: [{ type: "text", text: "Done." }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage: { input_tokens: prompt, output_tokens: 3 },
      };
      const sent = respondWith(w, job, response, { promptTokens: prompt, completionTokens: 3, measured: true });
      const reply = await answerTo(w, job.jobId);
      if (billed) {
        expect(reply.type).toBe("receipt");
        w.node.position = { lastSeq: sent.seq, totals: sent.totals };
        expect((await pending).status).toBe(200);
      } else {
        expect(reply).toMatchObject({ type: "error", code: "receipt.implausible_usage" });
        await (await pending).text();
      }
    }
  });

  it("max_completion_tokens reaches an Ollama backend as max_tokens (it ignores max_completion_tokens): the honest receipt is billed", async () => {
    const store = new SqliteStore(":memory:", { signupCredits: SIGNUP });
    const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store });
    const { url } = await hub.listen({ port: 0 });
    const sim = await startSimulator({ flavor: "ollama", models: [{ id: "llama3.1:8b" }], defaultMaxTokens: 40 });
    const owner = await store.createAccount({ name: "provider" });
    const consumer = await store.createAccount({ name: "consumer" });
    const key = (await store.createApiKey(consumer.id)).key;
    const run = async (mirrorMaxTokens: boolean) => {
      const provider = createProvider({
        hub: url,
        identity: generateIdentity(),
        account: (await store.createApiKey(owner.id)).key,
        reconnect: false,
        instances: [
          {
            backend: openAICompatibleBackend({ baseUrl: sim.baseUrl, kind: "ollama", mirrorMaxTokens }),
            model: "llama3.1:8b",
            price: { input: "100000", output: "300000" },
          },
        ],
      });
      await provider.ready();
      try {
        const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
        const answer = await openai.chat.completions.create({ model: "llama3.1:8b", messages: ASK, max_completion_tokens: 4 });
        return answer.usage as unknown as Record<string, unknown>;
      } finally {
        await provider.close();
      }
    };
    try {
      // The simulator's Ollama ignores max_completion_tokens, as Ollama does: without the copy the answer runs long, its receipt is refused, the consumer gets a 502.
      await expect(run(false)).rejects.toMatchObject({ status: 502 });
      const billed = await run(true);
      expect(billed.receipt_error).toBeUndefined();
      expect(billed.completion_tokens).toBeGreaterThan(0);
      expect(billed.completion_tokens).toBeLessThanOrEqual(4);
      expect(typeof billed.receipt_id).toBe("string");
    } finally {
      await hub.close();
      await sim.close();
      store.close();
    }
  }, 30_000);
});

describe("shown usage carries nothing of the node's own counts", () => {
  it("a chunk with both choices and usage reaches the consumer without the node's usage; forged receipt_error and prompt_cache_hit_tokens are dropped", async () => {
    const w = await world();
    const pending = post(w, "/v1/chat/completions", { model: w.model, messages: ASK, max_tokens: 16, stream: true });
    const job = await nextJob(w);
    const finish = { ...chunkOf(job, { content: "Hi" }, "stop"), usage: { prompt_tokens: 11, completion_tokens: 900, total_tokens: 911 } };
    const forged = {
      ...usageChunk(job, 11, 900),
      usage: {
        prompt_tokens: 11,
        completion_tokens: 900,
        total_tokens: 911,
        prompt_cache_hit_tokens: 11,
        receipt_error: "receipt.forged",
        timings: { predicted_ms: 5 },
      },
    };
    const sent = streamWith(w, job, [finish, forged], HONEST);
    await w.node.countersigned(sent);
    const events = (await (await pending).text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: ") && !e.includes("[DONE]"))
      .map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);
    const withText = events.find((e) => JSON.stringify(e.choices).includes('"Hi"'))!;
    expect(withText.usage ?? null).toBeNull();
    const last = events.at(-1)!.usage as Record<string, unknown>;
    expect(last).toMatchObject({ prompt_tokens: 11, completion_tokens: 3, total_tokens: 14, timings: { predicted_ms: 5 } });
    expect(last).not.toHaveProperty("receipt_error");
    expect(last).not.toHaveProperty("prompt_cache_hit_tokens");
  });
});
