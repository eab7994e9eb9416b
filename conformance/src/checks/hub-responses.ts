/**
 * Hub-mode checks of the OpenAI Responses surface and legacy completions
 * (spec/v1/consumer.md, "OpenAI Responses", "Legacy completions"): the harness is the
 * provider node (a model nobody else serves: a plain chat instance, so the hub translates,
 * or one with the `responses` or `completions` capability, so it does not) and the
 * consumer, so it sees the job each request becomes and the answer the hub makes of the
 * node's output. Each check runs when the discovery document lists its surface.
 */
import type { Job, Usage } from "@srp/core/schema";
import type { SseEvent } from "@srp/core";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import {
  bodyText,
  type ConsumerCall,
  errorProblem,
  eventJson,
  get,
  json,
  post as consumerPost,
  reportProblems,
  SseReader,
  surfaces,
  within,
} from "../harness/consumer.js";
import type { HubContext } from "../harness/hub-session.js";
import { instance, newModel } from "../harness/instances.js";
import { answerStream, HarnessNode } from "../harness/node.js";
import { ensure, fail } from "../harness/verdict.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const RESPONSES = "openai.responses";
const COMPLETIONS = "openai.completions";

/** Posts to the consumer API with OpenAI's bearer key. */
const post = (ctx: HubContext, base: string, path: string, body: Json): ConsumerCall => consumerPost(ctx, base, path, body, {}, "bearer");

/** Problems with a Responses `usage` (SRP-CON-039) of `prompt` and `completion` billed tokens, with SRP's members (SRP-CON-002). */
function usageProblems(usage: unknown, where: string, prompt: number, completion: number): string[] {
  if (!isObject(usage)) return [`${where} has no usage object`];
  const out: string[] = [];
  if (usage.input_tokens !== prompt || usage.output_tokens !== completion || usage.total_tokens !== prompt + completion) {
    out.push(
      `${where}.usage ${JSON.stringify(usage).slice(0, 200)} does not say input_tokens ${prompt}, output_tokens ${completion}, total_tokens ${prompt + completion}`,
    );
  }
  if (!isObject(usage.input_tokens_details) || typeof usage.input_tokens_details.cached_tokens !== "number")
    out.push(`${where}.usage.input_tokens_details.cached_tokens is missing`);
  if (!isObject(usage.output_tokens_details) || typeof usage.output_tokens_details.reasoning_tokens !== "number")
    out.push(`${where}.usage.output_tokens_details.reasoning_tokens is missing`);
  if (
    typeof usage.cost !== "string" ||
    typeof usage.cost_units !== "string" ||
    typeof usage.measured !== "boolean" ||
    (typeof usage.receipt_id !== "string" && usage.receipt_id !== null)
  ) {
    out.push(`${where}.usage lacks SRP's cost, cost_units, receipt_id or measured`);
  }
  return out;
}

/** A chat.completion answering `job`. */
function chatCompletion(job: Job, message: Json, finish: string, usage: Usage): Json {
  return {
    id: "chatcmpl-conf-resp",
    object: "chat.completion",
    created: 1767225600,
    model: job.model,
    choices: [{ index: 0, message: { role: "assistant", ...message }, logprobs: null, finish_reason: finish }],
    usage: {
      prompt_tokens: usage.promptTokens,
      completion_tokens: usage.completionTokens,
      total_tokens: usage.promptTokens + usage.completionTokens,
    },
  };
}

/** A chat.completion.chunk of `job`. */
const chunkOf = (job: Job, delta: Json, finish: string | null): Json => ({
  id: "chatcmpl-conf-resp",
  object: "chat.completion.chunk",
  created: 1767225600,
  model: job.model,
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
});

/** Reads a streamed answer to its end (status 200 required). */
async function streamOf(call: ConsumerCall, what: string): Promise<SseEvent[]> {
  const res = await within(call.response, 10_000, what);
  if (res.status !== 200) fail(`${what} answered ${res.status}: ${(await bodyText(res).catch(() => "")).slice(0, 200)}`);
  return new SseReader(res).rest(10_000);
}

/** Problems with the framing of a Responses stream (SRP-CON-040): named events, `type` = name, `sequence_number` 0, 1, 2, ... */
function framingProblems(events: SseEvent[]): string[] {
  const out: string[] = [];
  events.forEach((e, i) => {
    const data = eventJson(e);
    if (!data || data.type !== e.event) out.push(`event ${i} is named ${String(e.event)} but its data's type is ${String(data?.type)}`);
    else if (data.sequence_number !== i) out.push(`event ${i} (${String(data.type)}) has sequence_number ${String(data.sequence_number)}`);
  });
  return out.slice(0, 3);
}

const TOOL = {
  type: "function",
  name: "conf_lookup",
  description: "Looks a word up",
  strict: true,
  parameters: { type: "object", properties: { word: { type: "string" } }, required: ["word"], additionalProperties: false },
};

/** An input as clients send it back after a tool call (SRP-CON-033): items with ids, a reasoning item with null content, a call and its output. */
const CONTINUED_INPUT = [
  { type: "message", id: "msg_conf1", role: "developer", content: [{ type: "input_text", text: "Conformance instructions." }] },
  { type: "message", id: "msg_conf2", role: "user", content: [{ type: "input_text", text: "Look up spare." }] },
  { type: "reasoning", id: "rs_conf", summary: [], content: null, encrypted_content: "opaque" },
  { type: "function_call", id: "fc_conf", status: "completed", call_id: "call_conf", name: "conf_lookup", arguments: '{"word":"spare"}' },
  { type: "function_call_output", id: "fco_conf", call_id: "call_conf", output: "extra, unused" },
];

/** The chat messages CONTINUED_INPUT becomes (SRP-CON-034), after the instructions' system message. */
const CONTINUED_MESSAGES = [
  { role: "system", content: "Conformance system prompt." },
  { role: "system", content: "Conformance instructions." },
  { role: "user", content: "Look up spare." },
  {
    role: "assistant",
    content: null,
    tool_calls: [{ id: "call_conf", type: "function", function: { name: "conf_lookup", arguments: '{"word":"spare"}' } }],
  },
  { role: "tool", tool_call_id: "call_conf", content: "extra, unused" },
];

/** Responses events a native node streams for `text` (as the Responses API does), its upstream id `resp_upstream`. */
function nativeEvents(job: Job, text: string, usage: Usage): Json[] {
  const response = {
    id: "resp_upstream",
    object: "response",
    created_at: 1767225600,
    status: "in_progress",
    model: job.model,
    output: [],
    usage: null,
    store: false,
  };
  const item = { id: "msg_up", type: "message", role: "assistant", status: "in_progress", content: [] };
  const part = { type: "output_text", text: "", annotations: [] };
  const done = { ...item, status: "completed", content: [{ ...part, text }] };
  const events: Json[] = [
    { type: "response.created", response },
    { type: "response.in_progress", response },
    { type: "response.output_item.added", output_index: 0, item },
    { type: "response.content_part.added", item_id: "msg_up", output_index: 0, content_index: 0, part },
    { type: "response.output_text.delta", item_id: "msg_up", output_index: 0, content_index: 0, delta: text, logprobs: [] },
    { type: "response.output_text.done", item_id: "msg_up", output_index: 0, content_index: 0, text, logprobs: [] },
    { type: "response.content_part.done", item_id: "msg_up", output_index: 0, content_index: 0, part: { ...part, text } },
    { type: "response.output_item.done", output_index: 0, item: done },
    {
      type: "response.completed",
      response: {
        ...response,
        status: "completed",
        output: [done],
        usage: {
          input_tokens: usage.promptTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: usage.completionTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: usage.promptTokens + usage.completionTokens,
        },
      },
    },
  ];
  return events.map((e, i) => ({ ...e, sequence_number: i }));
}

/** Hub-mode checks of the Responses and legacy completions surfaces, in run order. */
export const HUB_RESPONSES_CHECKS: Check<HubContext>[] = [
  check(
    "hub.responses.translated",
    "Sends a Responses request (items as clients send them back, tools, text.format) to a chat-only instance as a translated chat.completions job, and answers a Response object with output items and billed usage",
    ["SRP-CON-032", "SRP-CON-033", "SRP-CON-034", "SRP-CON-038", "SRP-CON-039", "SRP-JOB-030"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, RESPONSES);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { capabilities: ["chat", "stream", "tools", "json_mode"] })]);
      const schema = { type: "object", properties: { meaning: { type: "string" } }, required: ["meaning"], additionalProperties: false };
      const body = {
        model,
        instructions: "Conformance system prompt.",
        input: CONTINUED_INPUT,
        tools: [TOOL],
        text: { format: { type: "json_schema", name: "meaning", schema, strict: true } },
        max_output_tokens: 40,
        store: false,
        metadata: { conformance: "yes" },
        provider: { sort: "price" },
      };
      const call = post(ctx, base, "/responses", body);
      const job = await node.nextJob(call);
      const r = job.request;
      const problems: (string | undefined)[] = [];
      if (job.api !== "chat.completions")
        problems.push(`the job's api is ${job.api}, expected chat.completions for an instance without the responses capability`);
      if (JSON.stringify(r.messages) !== JSON.stringify(CONTINUED_MESSAGES))
        problems.push(`the job's messages ${JSON.stringify(r.messages).slice(0, 400)} are not ${JSON.stringify(CONTINUED_MESSAGES)}`);
      const tools = r.tools as Json[] | undefined;
      if (
        !Array.isArray(tools) ||
        tools.length !== 1 ||
        JSON.stringify(tools[0]) !==
          JSON.stringify({
            type: "function",
            function: { name: TOOL.name, description: TOOL.description, parameters: TOOL.parameters, strict: true },
          })
      ) {
        problems.push(`the job's tools ${JSON.stringify(tools).slice(0, 300)} are not the function tool`);
      }
      if (
        JSON.stringify(r.response_format) !==
        JSON.stringify({ type: "json_schema", json_schema: { name: "meaning", schema, strict: true } })
      )
        problems.push(`response_format ${JSON.stringify(r.response_format)} is not the text.format's json_schema`);
      if (r.max_completion_tokens !== 40)
        problems.push(`max_completion_tokens is ${String(r.max_completion_tokens)}, expected 40 (max_output_tokens)`);
      if (r.provider !== undefined || r.input !== undefined || r.instructions !== undefined)
        problems.push("Responses or routing members (provider, input, instructions) reached the chat job");
      const usage: Usage = { promptTokens: 21, completionTokens: 9, measured: true };
      const text = '{"meaning":"extra"}';
      const receipt = node.responseDone(
        job,
        chatCompletion(
          job,
          {
            content: text,
            tool_calls: [{ id: "call_next", type: "function", function: { name: "conf_lookup", arguments: '{"word":"x"}' } }],
          },
          "tool_calls",
          usage,
        ),
        usage,
      );
      await node.countersigned(receipt);
      const res = await within(call.response, 10_000, "POST /v1/responses");
      const got = await json(res, "POST /v1/responses");
      if (res.status !== 200) fail(`POST /v1/responses answered ${res.status}: ${JSON.stringify(got).slice(0, 300)}`);
      if (got.object !== "response" || typeof got.id !== "string" || !got.id.startsWith("resp_"))
        problems.push(`the answer is not a Response object with a resp_ id (object ${String(got.object)}, id ${String(got.id)})`);
      if (got.status !== "completed" || got.error !== null)
        problems.push(`status ${String(got.status)}, error ${JSON.stringify(got.error)}: expected completed and null`);
      if (got.model !== model) problems.push(`model ${String(got.model)}, expected ${model}`);
      if (
        got.instructions !== "Conformance system prompt." ||
        got.max_output_tokens !== 40 ||
        got.store !== false ||
        (got.metadata as Json | undefined)?.conformance !== "yes"
      )
        problems.push("the request's instructions, max_output_tokens, store or metadata are not echoed");
      const output = Array.isArray(got.output) ? (got.output as Json[]) : [];
      const msg = output[0];
      const callItem = output[1];
      if (
        output.length !== 2 ||
        msg?.type !== "message" ||
        msg.role !== "assistant" ||
        !Array.isArray(msg.content) ||
        (msg.content as Json[])[0]?.type !== "output_text" ||
        (msg.content as Json[])[0]?.text !== text
      ) {
        problems.push(
          `output ${JSON.stringify(output).slice(0, 300)} does not start with an assistant message of one output_text part ${text}`,
        );
      }
      if (
        callItem?.type !== "function_call" ||
        callItem.call_id !== "call_next" ||
        callItem.name !== "conf_lookup" ||
        callItem.arguments !== '{"word":"x"}'
      )
        problems.push(`output[1] ${JSON.stringify(callItem)} is not the function_call (call_id call_next)`);
      problems.push(...usageProblems(got.usage, "the Response", 21, 9));
      reportProblems(problems);
    },
  ),
  check(
    "hub.responses.stream",
    "Streams a translated Responses answer as named events numbered from 0: created, in_progress, the message item's events with the text intact, and response.completed with the billed usage",
    ["SRP-CON-040", "SRP-CON-039"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, RESPONSES);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = post(ctx, base, "/responses", {
        model,
        input: "Conformance: stream.",
        max_output_tokens: 16,
        stream: true,
        store: false,
      });
      const job = await node.nextJob(call);
      ensure(job.stream, "the job for a streamed Responses request has stream false");
      const pieces = ["Streamed", " responses", " answer."];
      const usage: Usage = { promptTokens: 11, completionTokens: 3, measured: true };
      const datas = [
        chunkOf(job, { role: "assistant", content: "" }, null),
        ...pieces.map((p) => chunkOf(job, { content: p }, null)),
        chunkOf(job, {}, "stop"),
        { ...chunkOf(job, {}, null), choices: [], usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 } },
      ];
      answerStream(node, job, datas, usage);
      const events = await streamOf(call, "a streamed Responses request");
      const problems: (string | undefined)[] = framingProblems(events);
      const types = events.map((e) => e.event ?? "");
      const compact = types.filter((t, i) => !(t === "response.output_text.delta" && types[i - 1] === "response.output_text.delta"));
      const expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
      ];
      if (compact.join(",") !== expected.join(","))
        problems.push(`events ${types.join(", ")} are not ${expected.join(", ")} (deltas repeated)`);
      const datasOut = events.map((e) => eventJson(e));
      const text = datasOut
        .filter((d) => d?.type === "response.output_text.delta")
        .map((d) => d!.delta)
        .join("");
      if (text !== pieces.join(""))
        problems.push(`the text deltas say ${JSON.stringify(text)}, the node streamed ${JSON.stringify(pieces.join(""))}`);
      const created = datasOut[0]?.response as Json | undefined;
      const completed = datasOut.at(-1)?.response as Json | undefined;
      if (created?.status !== "in_progress") problems.push("response.created's response is not in_progress");
      if (completed?.status !== "completed" || completed?.id !== created?.id)
        problems.push(
          `response.completed's response (status ${String(completed?.status)}, id ${String(completed?.id)}) is not the created response, completed`,
        );
      const out = (completed?.output as Json[] | undefined)?.[0];
      if (((out?.content as Json[] | undefined)?.[0] as Json | undefined)?.text !== pieces.join(""))
        problems.push("response.completed's output does not hold the streamed text");
      problems.push(...usageProblems(completed?.usage, "response.completed's response", 11, 3));
      reportProblems(problems);
    },
  ),
  check(
    "hub.responses.stream_failed",
    "A Responses stream that fails after content ends with response.failed (status failed, error.code job.stream_interrupted) and never response.completed",
    ["SRP-CON-041"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, RESPONSES);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = post(ctx, base, "/responses", { model, input: "Conformance: fail.", max_output_tokens: 16, stream: true, store: false });
      const job = await node.nextJob(call);
      const datas = [chunkOf(job, { role: "assistant", content: "" }, null), chunkOf(job, { content: "Partial" }, null)];
      node.chunks(job, datas);
      await sleep(300);
      node.peer.send({
        type: "job_error",
        jobId: job.jobId,
        code: "job.upstream_error",
        message: "conformance: backend connection reset",
        retryable: true,
        chunks: datas.length,
      });
      const events = await streamOf(call, "a failing Responses stream");
      const datasOut = events.map((e) => eventJson(e));
      const problems: (string | undefined)[] = [];
      if (!datasOut.some((d) => d?.type === "response.output_text.delta" && d.delta === "Partial"))
        problems.push("the content streamed before the failure did not reach the consumer");
      if (datasOut.some((d) => d?.type === "response.completed")) problems.push("the failed stream carries response.completed");
      const last = datasOut.at(-1);
      const response = last?.response as Json | undefined;
      const error = response?.error as Json | undefined;
      if (last?.type !== "response.failed" || events.at(-1)?.event !== "response.failed")
        problems.push(`the failed stream ends with ${String(events.at(-1)?.event)}, not response.failed`);
      else if (response?.status !== "failed" || error?.code !== "job.stream_interrupted" || typeof error?.message !== "string")
        problems.push(
          `response.failed's response ${JSON.stringify(response).slice(0, 200)} is not {status: failed, error: {code: job.stream_interrupted, message}}`,
        );
      reportProblems(problems);
    },
  ),
  check(
    "hub.responses.refused",
    "Refuses before admission, in OpenAI's error shape: a body that is not a ResponsesRequest, and a hosted tool no chat instance can serve when the model has no instance running the Responses API (400 api.invalid_body, naming the tool)",
    ["SRP-CON-032", "SRP-CON-035"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, RESPONSES);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { capabilities: ["chat", "stream", "tools"] })]);
      const problems: (string | undefined)[] = [];
      const bad = await within(
        post(ctx, base, "/responses", { model, input: 42 }).response,
        5000,
        "a Responses body whose input is a number",
      );
      problems.push(await errorProblem(bad, "a body whose input is a number", 400, "api.invalid_body"));
      const hosted = await within(
        post(ctx, base, "/responses", { model, input: "x", tools: [{ type: "file_search", vector_store_ids: ["vs_conf"] }] }).response,
        5000,
        "a Responses request with a file_search tool",
      );
      const text = await bodyText(hosted.clone()).catch(() => "");
      problems.push(await errorProblem(hosted, "a file_search tool for a chat-only model", 400, "api.invalid_body"));
      if (hosted.status === 400 && !text.includes("file_search"))
        problems.push(`the refusal of a file_search tool does not name it: ${text.slice(0, 200)}`);
      if (node.peer.matching((m) => m.type === "job").length > 0) problems.push("a refused request reached the node as a job");
      reportProblems(problems);
    },
  ),
  check(
    "hub.responses.continued",
    "A stored turn is continued at once by previous_response_id: the next job's messages are the first turn's input and output, then the new input; an unknown previous_response_id is 404 api.not_found",
    ["SRP-CON-036", "SRP-CON-037"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, RESPONSES);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const first = post(ctx, base, "/responses", { model, input: "Conformance: remember spare.", max_output_tokens: 16 });
      const job1 = await node.nextJob(first);
      await node.countersigned(node.responseAnswer(job1, "Remembered.").receipt);
      const res1 = await within(first.response, 5000, "the first turn");
      const turn = await json(res1, "the first turn");
      ensure(
        res1.status === 200 && typeof turn.id === "string",
        `the first turn answered ${res1.status}: ${JSON.stringify(turn).slice(0, 200)}`,
      );
      // At once: the turn was stored before its answer ended (SRP-CON-037).
      const second = post(ctx, base, "/responses", {
        model,
        input: "And now?",
        previous_response_id: turn.id,
        max_output_tokens: 16,
        store: false,
      });
      const raced = await node.nextJob(second);
      const problems: (string | undefined)[] = [];
      {
        const expected = [
          { role: "user", content: "Conformance: remember spare." },
          { role: "assistant", content: "Remembered." },
          { role: "user", content: "And now?" },
        ];
        if (JSON.stringify(raced.request.messages) !== JSON.stringify(expected))
          fail(`the continuation's messages ${JSON.stringify(raced.request.messages).slice(0, 300)} are not ${JSON.stringify(expected)}`);
        await node.countersigned(node.responseAnswer(raced, "Fine.").receipt);
        const res2 = await within(second.response, 5000, "the continuation");
        const got = await json(res2, "the continuation");
        if (got.previous_response_id !== turn.id)
          problems.push(`the continuation's previous_response_id is ${String(got.previous_response_id)}, expected ${String(turn.id)}`);
      }
      const unknown = await within(
        post(ctx, base, "/responses", { model, input: "x", previous_response_id: "resp_conformance_unknown" }).response,
        5000,
        "an unknown previous_response_id",
      );
      problems.push(await errorProblem(unknown, "an unknown previous_response_id", 404, "api.not_found"));
      reportProblems(problems);
    },
  ),
  check(
    "hub.responses.native",
    "Sends a Responses request to an instance with the responses capability as a responses job (store false, no routing members, other members passed through), and relays its events with the hub's id and the billed usage in response.completed",
    ["SRP-CON-042", "SRP-JOB-030"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, RESPONSES);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { capabilities: ["chat", "stream", "responses"] })]);
      const call = post(ctx, base, "/responses", {
        model,
        input: "Conformance: native.",
        max_output_tokens: 16,
        stream: true,
        truncation: "auto",
        provider: { sort: "price" },
      });
      const job = await node.nextJob(call);
      const problems: (string | undefined)[] = [];
      if (job.api !== "responses") problems.push(`the job's api is ${job.api}, expected responses`);
      if (job.request.store !== false) problems.push(`the job's store is ${String(job.request.store)}, expected false`);
      if (job.request.truncation !== "auto" || job.request.input !== "Conformance: native.")
        problems.push("the Responses body (input, truncation) did not reach the node untouched");
      if (job.request.provider !== undefined) problems.push("the routing member `provider` reached the node");
      const usage: Usage = { promptTokens: 12, completionTokens: 2, measured: true };
      answerStream(node, job, nativeEvents(job, "Native answer.", usage), usage);
      const events = await streamOf(call, "a streamed native Responses request");
      const datas = events.map((e) => eventJson(e));
      const types = datas.map((d) => d?.type);
      if (
        types.join(",") !==
        nativeEvents(job, "", usage)
          .map((e) => e.type)
          .join(",")
      )
        problems.push(`the events ${types.join(", ")} are not the node's`);
      if (events.some((e, i) => e.event !== types[i])) problems.push("an event is not named by its type");
      const created = datas[0]?.response as Json | undefined;
      const completed = datas.at(-1)?.response as Json | undefined;
      if (typeof created?.id !== "string" || created.id === "resp_upstream" || completed?.id !== created.id)
        problems.push(
          `the responses carry ids ${String(created?.id)} and ${String(completed?.id)}: expected the hub's own id, the same in both`,
        );
      if (completed?.store !== true)
        problems.push(`response.completed says store ${String(completed?.store)}; the consumer asked to store (the default)`);
      if (datas.find((d) => d?.type === "response.output_text.delta")?.delta !== "Native answer.")
        problems.push("the node's text delta did not reach the consumer");
      problems.push(...usageProblems(completed?.usage, "response.completed's response", 12, 2));
      reportProblems(problems);
    },
  ),
  check(
    "hub.completions.native",
    "Sends a legacy completions request only to an instance with the completions capability (max_tokens 16 when absent, suffix unchanged, no routing members), streams its text_completion chunks then one usage chunk with SRP's members and [DONE]; refuses an invalid body (400) and a model without such an instance (404 job.unknown_model); /v1/models lists responses and completions",
    ["SRP-CON-043", "SRP-CON-044", "SRP-CON-045", "SRP-CON-046", "SRP-CON-047", "SRP-JOB-031"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, COMPLETIONS);
      const model = newModel();
      const chatOnly = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { capabilities: ["chat", "stream", "completions"] }), instance(chatOnly)]);
      const problems: (string | undefined)[] = [];
      const call = post(ctx, base, "/completions", {
        model,
        prompt: "def spare(",
        suffix: "\n    return x",
        stream: true,
        provider: { sort: "price" },
      });
      const job = await node.nextJob(call);
      if (job.api !== "completions") problems.push(`the job's api is ${job.api}, expected completions`);
      if (job.request.max_tokens !== 16)
        problems.push(`max_tokens is ${String(job.request.max_tokens)}, expected 16 for a request without one`);
      if (job.request.suffix !== "\n    return x" || job.request.prompt !== "def spare(")
        problems.push("prompt or suffix did not reach the node unchanged");
      if (job.request.provider !== undefined) problems.push("the routing member `provider` reached the node");
      const piece = (text: string, finish: string | null) => ({
        id: "cmpl-conf",
        object: "text_completion",
        created: 1767225600,
        model: job.model,
        choices: [{ index: 0, text, logprobs: null, finish_reason: finish }],
      });
      const usage: Usage = { promptTokens: 5, completionTokens: 2, measured: true };
      answerStream(
        node,
        job,
        [
          piece("x):", null),
          piece("\n", "stop"),
          { ...piece("", null), choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } },
        ],
        usage,
      );
      const events = await streamOf(call, "a streamed completions request");
      const datas = events.map((e) => e.data.trim());
      if (datas.at(-1) !== "[DONE]") problems.push("the stream does not end with data: [DONE]");
      const jsons = events.map((e) => eventJson(e)).filter((d): d is Json => d !== undefined);
      const text = jsons
        .flatMap((d) => (Array.isArray(d.choices) ? (d.choices as Json[]).map((c) => (typeof c.text === "string" ? c.text : "")) : []))
        .join("");
      if (text !== "x):\n") problems.push(`the streamed text is ${JSON.stringify(text)}, the node streamed "x):\\n"`);
      const withUsage = jsons.filter((d) => isObject(d.usage));
      const u = withUsage.at(-1)?.usage as Json | undefined;
      if (withUsage.length !== 1 || (withUsage[0]!.choices as unknown[] | undefined)?.length !== 0)
        problems.push(`${withUsage.length} chunks carry a usage object; expected exactly one, with choices []`);
      if (
        u?.prompt_tokens !== 5 ||
        u?.completion_tokens !== 2 ||
        typeof u?.cost_units !== "string" ||
        typeof u?.cost !== "string" ||
        typeof u?.measured !== "boolean"
      )
        problems.push(`the usage ${JSON.stringify(u)} is not the billed usage with SRP's members`);
      const bad = await within(
        post(ctx, base, "/completions", { model, prompt: "x", echo: true }).response,
        5000,
        "a completions body with echo true",
      );
      problems.push(await errorProblem(bad, "a completions body with echo true", 400, "api.invalid_body"));
      const none = await within(
        post(ctx, base, "/completions", { model: chatOnly, prompt: "x" }).response,
        5000,
        "completions for a chat-only model",
      );
      const noneText = await bodyText(none.clone()).catch(() => "");
      problems.push(await errorProblem(none, "completions for a model without a completions instance", 404, "job.unknown_model"));
      if (none.status === 404 && !/legacy completions/.test(noneText))
        problems.push(`the refusal does not say that no instance serves legacy completions: ${noneText.slice(0, 200)}`);
      const list = await json(await get(`${base}/models`, undefined), "GET /v1/models");
      const entries = Array.isArray(list.data) ? (list.data as Json[]) : [];
      const endpoints = (id: string) => (entries.find((m) => m.id === id)?.endpoints as string[] | undefined) ?? [];
      if (!endpoints(model).includes("completions") || !endpoints(model).includes("responses"))
        problems.push(`${model}'s endpoints ${JSON.stringify(endpoints(model))} lack completions or responses`);
      if (endpoints(chatOnly).includes("completions") || !endpoints(chatOnly).includes("responses"))
        problems.push(`${chatOnly}'s endpoints ${JSON.stringify(endpoints(chatOnly))}: expected responses and no completions`);
      reportProblems(problems);
    },
  ),
];
