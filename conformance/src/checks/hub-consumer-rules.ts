/**
 * Hub-mode checks of the consumer API's finer rules (spec/v1/consumer.md, billing.md): the
 * deadline header, receipts, the model list, streamed usage and cost formatting, in-band
 * stream errors, failed attempts and busy instances, Messages block validation, and the
 * 402 of a balance that cannot cover a request. As in hub-consumer-surfaces.ts, the harness is both
 * the provider node (serving a model nobody else serves) and the consumer; answers are
 * validated against the schemas `openapi.json` is made from (`@srp/core`).
 */
import { formatUsdc, omitFields, verifyDetached, type SseEvent } from "@srp/core";
import {
  AnthropicError,
  AnthropicUsage,
  checkConsumerBody,
  ModelList,
  OpenAIError,
  OpenAIUsageSchema,
  ReceiptObject,
  type Job,
  type Usage,
} from "@srp/core/schema";
import type { TSchema } from "@sinclair/typebox";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import {
  bodyText,
  type ConsumerCall,
  eventJson,
  get,
  json,
  post as consumerPost,
  SseReader,
  surfaces,
  within,
} from "../harness/consumer.js";
import { discovery, type HubContext } from "../harness/hub-session.js";
import { instance, isJob, newModel } from "../harness/instances.js";
import { answerStream, HarnessNode } from "../harness/node.js";
import { ensure, fail } from "../harness/verdict.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Posts `body` to `path` of the consumer API as the harness's account (`authorization: Bearer`), tracked. */
const post = (ctx: HubContext, base: string, path: string, body: Json, headers: Record<string, string> = {}): ConsumerCall =>
  consumerPost(ctx, base, path, body, headers, "bearer");

/** `where: problem` when `value` does not match `schema` (the schema `openapi.json` has under that name). */
function schemaProblem(schema: TSchema, value: unknown, where: string): string | undefined {
  const problem = checkConsumerBody(schema, value);
  return problem === undefined ? undefined : `${where} does not match ${String(schema.title)} of openapi.json: ${problem}`;
}

/** SRP-CON-031: `cost` is exactly `cost_units` in USD, 2 to 6 fraction digits. */
function costProblem(usage: Json, where: string): string | undefined {
  const units = usage.cost_units;
  if (typeof units !== "string" || !/^(0|[1-9][0-9]*)$/.test(units))
    return `${where}.cost_units ${JSON.stringify(units)} is not a decimal string of units`;
  const expected = formatUsdc(BigInt(units));
  return usage.cost === expected
    ? undefined
    : `${where}.cost is ${JSON.stringify(usage.cost)}; for cost_units ${units} it is ${JSON.stringify(expected)} (SRP-CON-031)`;
}

/** An OpenAI chat.completion.chunk of `job`. */
function chunkOf(job: Job, delta: Json, finish: string | null): Json {
  return {
    id: "chatcmpl-conf2",
    object: "chat.completion.chunk",
    created: 1767225600,
    model: job.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
}

/** Sends `datas` as chunks of `job` and ends it with `done` and a receipt of `usage`; resolves once the hub countersigned it (the node's next receipt follows it). */
async function finishStream(node: HarnessNode, job: Job, datas: Json[], usage: Usage): Promise<void> {
  await node.countersigned(answerStream(node, job, datas, usage));
}

/** Answers a non-streamed chat job and waits for the countersignature. */
async function answerWhole(node: HarnessNode, job: Job, text: string): Promise<void> {
  await node.countersigned(node.responseAnswer(job, text).receipt);
}

/** The JSON of every event of a stream. */
const jsons = (events: SseEvent[]) => events.map(eventJson);

/** Reads a streamed answer to its end (status 200 required). */
async function streamOf(call: ConsumerCall, what: string): Promise<SseEvent[]> {
  const res = await within(call.response, 5000, what);
  if (res.status !== 200) fail(`${what} answered ${res.status}: ${(await bodyText(res).catch(() => "")).slice(0, 300)}`);
  return new SseReader(res).rest(5000);
}

/** Streams content of a chat job, then fails it with a job_error; returns the consumer's events. */
async function failMidStream(node: HarnessNode, call: ConsumerCall, job: Job, what: string, datas: Json[]): Promise<SseEvent[]> {
  node.chunks(job, datas);
  // Content committed the answer at the hub (a proxy in between may still hold it back): now the backend fails.
  await sleep(300);
  node.peer.send({
    type: "job_error",
    jobId: job.jobId,
    code: "job.upstream_error",
    message: "conformance: backend connection reset",
    retryable: true,
    chunks: datas.length,
  });
  const res = await within(call.response, 5000, what);
  ensure(res.status === 200, `${what} answered ${res.status} although content was streamed`);
  const reader = new SseReader(res);
  await reader.rest(5000).catch((e: Error) => fail(`${what}: the stream did not end after the job failed: ${e.message}`));
  if (!reader.events.some((e) => /"(Partial)"/.test(e.data)))
    fail(`${what}: the content streamed before the failure did not reach the consumer`);
  return [...reader.events];
}

/** Problems with an error answer: its status, the surface's shape (schema) and the SRP code. */
async function errorProblems(res: Response, what: string, status: number, code: string, anthropic: boolean): Promise<string[]> {
  const body = await json(res, what);
  const out: string[] = [];
  if (res.status !== status) out.push(`${what}: status ${res.status}, expected ${status}`);
  const shape = schemaProblem(anthropic ? AnthropicError : OpenAIError, body, `${what}: the body`);
  if (shape) out.push(shape);
  const got = (body.error as Json | undefined)?.code;
  if (got !== code) out.push(`${what}: code ${String(got)}, expected ${code}`);
  return out;
}

const MESSAGE = [{ role: "user", content: "Conformance: hello." }];

/** Hub-mode checks of the consumer API's finer rules, in run order. */
export const HUB_CONSUMER_RULE_CHECKS: Check<HubContext>[] = [
  check(
    "hub.consumer.timeout_header",
    "Sets job.deadline from x-srp-timeout-ms: budgets of 20 s and 60 s make deadlines 40 s apart, and 99999999 counts as 3600000",
    ["SRP-CON-025", "SRP-JOB-006"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      /** The job's deadline and when the harness received it, for one budget header. */
      const deadlineFor = async (header: string) => {
        const call = post(ctx, base, "/chat/completions", { model, messages: MESSAGE, max_tokens: 4 }, { "x-srp-timeout-ms": header });
        const job = await node.nextJob(call);
        const at = node.peer.arrival(job as unknown as Json)?.at ?? Date.now();
        await answerWhole(node, job, "ok");
        await within(call.response, 5000, "the consumer's answer").then((r) => bodyText(r));
        return { deadline: job.deadline, at };
      };
      const problems: string[] = [];
      // Differences of deadlines less differences of arrival times: independent of the clocks' offset.
      const compare = async (a: string, b: string, expected: number) => {
        const x = await deadlineFor(a);
        const y = await deadlineFor(b);
        const diff = y.deadline - x.deadline - (y.at - x.at);
        if (Math.abs(diff - expected) > 2000)
          problems.push(
            `x-srp-timeout-ms ${a} then ${b}: the deadlines differ by ${y.deadline - x.deadline} ms over ${y.at - x.at} ms between the jobs; expected ${expected} ms more than that (SRP-CON-025)`,
          );
      };
      await compare("20000", "60000", 40_000);
      await compare("99999999", "3600000", 0);
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.receipts",
    "Names the job's receipt in usage.receipt_id and serves it at GET /v1/receipts/{id} countersigned, to the paying account only: 401 without a key, 404 api.not_found for an unknown id",
    ["SRP-CON-026", "SRP-ATT-012"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions", "srp.receipts");
      const doc = await discovery(ctx);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = post(ctx, base, "/chat/completions", { model, messages: MESSAGE, max_tokens: 4 });
      const job = await node.nextJob(call);
      const { receipt } = node.responseAnswer(job, "receipt please");
      const res = await within(call.response, 5000, "the consumer's answer");
      const body = await json(res, "POST /v1/chat/completions");
      ensure(res.status === 200, `POST /v1/chat/completions answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
      await node.countersigned(receipt);
      const problems: string[] = [];
      const id = (body.usage as Json | undefined)?.receipt_id;
      if (id !== job.jobId) problems.push(`usage.receipt_id is ${JSON.stringify(id)}, not the job's id ${job.jobId}`);
      const url = `${base}/receipts/${encodeURIComponent(job.jobId)}`;
      const got = await get(url, ctx.accountKey);
      const view = await json(got, `GET /v1/receipts/${job.jobId}`);
      if (got.status !== 200) fail(`GET /v1/receipts/${job.jobId} answered ${got.status}: ${JSON.stringify(view).slice(0, 300)}`);
      const shape = schemaProblem(ReceiptObject, view, "the receipt answer");
      if (shape) problems.push(shape);
      const r = view.receipt as Json | undefined;
      if (view.hub_id !== doc.hubId) problems.push(`hub_id ${String(view.hub_id)} is not the hub's id`);
      if (!isObject(r) || r.jobId !== job.jobId) problems.push("receipt.jobId is not the id asked for");
      else if (typeof r.hubSig !== "string" || !verifyDetached("receiptHub", omitFields(r, "hubSig"), r.hubSig, doc.hubId))
        problems.push("receipt.hubSig is missing or does not verify with the hub's id");
      else if (JSON.stringify(omitFields(r, "hubSig")) !== JSON.stringify(omitFields(receipt as unknown as Json, "hubSig")))
        problems.push("the receipt served is not the one the node signed");
      problems.push(
        ...(await errorProblems(await get(url, undefined), "GET /v1/receipts/{id} without a key", 401, "api.unauthorized", false)),
      );
      problems.push(
        ...(await errorProblems(
          await get(`${base}/receipts/job_conformanceUnknownReceipt0`, ctx.accountKey),
          "GET /v1/receipts/{unknown id}",
          404,
          "api.not_found",
          false,
        )),
      );
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.models_list",
    "GET /v1/models lists an online model with the fields of ModelList (openapi.json): its exact price per 1M, endpoints, normalized quantizations, first_id/last_id, sorted by id",
    ["SRP-CON-027", "SRP-CON-018"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.models");
      const model = newModel();
      await HarnessNode.open(ctx, [instance(model, { quantization: "Q4_K_M", price: { input: "1500000", output: "2500000" } })]);
      const res = await get(`${base}/models`, undefined);
      const list = await json(res, "GET /v1/models");
      ensure(res.status === 200, `GET /v1/models (no key) answered ${res.status}`);
      const problems: string[] = [];
      const shape = schemaProblem(ModelList, list, "the model list");
      if (shape) problems.push(shape);
      const data = Array.isArray(list.data) ? (list.data as Json[]) : [];
      const ids = data.map((m) => String(m.id));
      if (ids.join("\n") !== [...ids].sort((a, b) => a.localeCompare(b)).join("\n")) problems.push("the entries are not sorted by id");
      if (list.first_id !== (ids[0] ?? null) || list.last_id !== (ids.at(-1) ?? null))
        problems.push(`first_id/last_id ${String(list.first_id)}/${String(list.last_id)} are not the first and last ids`);
      const entry = data.find((m) => m.id === model);
      if (!entry) problems.push(`the online model ${model} is not listed`);
      else {
        const units = entry.pricing_units_per_million as Json | undefined;
        if (units?.input !== "1500000" || units?.output !== "2500000")
          problems.push(`pricing_units_per_million ${JSON.stringify(units)} is not the offered 1500000/2500000`);
        const pricing = entry.pricing as Json | undefined;
        if (pricing?.prompt !== "0.0000015" || pricing?.completion !== "0.0000025")
          problems.push(`pricing ${JSON.stringify(pricing)} is not 0.0000015/0.0000025 USD per token`);
        if (!Array.isArray(entry.endpoints) || !entry.endpoints.includes("chat.completions"))
          problems.push("endpoints of a chat model lack chat.completions");
        if (JSON.stringify(entry.quantizations) !== '["Q4_K_M"]')
          problems.push(`quantizations ${JSON.stringify(entry.quantizations)} are not ["Q4_K_M"]`);
        if (entry.instances_online !== 1) problems.push(`instances_online is ${String(entry.instances_online)}, not 1`);
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.stream_usage",
    "Ends a chat stream whose consumer did not ask for usage with exactly one usage chunk (choices [], the receipt's counts, cost formatted from cost_units) then [DONE]; a translated Messages stream's message_delta carries the billed usage",
    ["SRP-CON-028", "SRP-CON-031", "SRP-CON-002"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions");
      const doc = await discovery(ctx);
      const model = newModel();
      // 16 tokens at 6250 units a token: 100000 units, "0.10" (a trailing zero to keep).
      const node = await HarnessNode.open(ctx, [instance(model, { price: { input: "6250000000", output: "6250000000" } })]);
      const usage: Usage = { promptTokens: 13, completionTokens: 3, measured: true };
      const backendUsage = { prompt_tokens: 99, completion_tokens: 99, total_tokens: 198 };
      const answer = (job: Job) => [
        chunkOf(job, { role: "assistant", content: "" }, null),
        chunkOf(job, { content: "Three" }, null),
        chunkOf(job, { content: " tokens" }, null),
        chunkOf(job, {}, "stop"),
        { ...chunkOf(job, {}, null), choices: [], usage: backendUsage },
      ];
      const problems: string[] = [];

      const call = post(ctx, base, "/chat/completions", { model, messages: MESSAGE, max_tokens: 16, stream: true });
      const job = await node.nextJob(call);
      await finishStream(node, job, answer(job), usage);
      const events = await streamOf(call, "a streamed chat request");
      const data = jsons(events);
      const withUsage = data.map((d, i) => [d, i] as const).filter(([d]) => isObject(d?.usage));
      const lastJson = data
        .map((d, i) => [d, i] as const)
        .filter(([d]) => d !== undefined)
        .at(-1);
      if (events.at(-1)?.data.trim() !== "[DONE]") problems.push("the stream does not end with data: [DONE]");
      if (withUsage.length !== 1)
        problems.push(`${withUsage.length} chunks carry a usage object; exactly one, the last, must (SRP-CON-028)`);
      const [final, at] = withUsage.at(-1) ?? [undefined, -1];
      if (final && at !== lastJson?.[1]) problems.push("the usage chunk is not the last chunk before [DONE]");
      if (final) {
        if (!Array.isArray(final.choices) || final.choices.length !== 0) problems.push("the usage chunk's choices is not []");
        if (final.object !== "chat.completion.chunk") problems.push("the usage chunk is not a chat.completion.chunk");
        const u = final.usage as Json;
        const shape = schemaProblem(OpenAIUsageSchema, u, "the usage chunk's usage");
        if (shape) problems.push(shape);
        if (u.prompt_tokens !== 13 || u.completion_tokens !== 3)
          problems.push(`usage ${JSON.stringify(u)} does not show the receipt's 13 + 3 tokens but the backend's`);
        const cost = costProblem(u, "usage");
        if (cost) problems.push(cost);
        else if (u.cost_units !== "0" && u.cost !== "0.10")
          problems.push(`usage.cost is ${String(u.cost)}; 16 tokens at 6250 units cost 100000 units, "0.10"`);
        if (u.receipt_id !== job.jobId) problems.push(`usage.receipt_id is ${JSON.stringify(u.receipt_id)}, not the job id`);
      }

      if (doc.consumer?.surfaces.includes("anthropic.messages")) {
        const m = post(ctx, base, "/messages", { model, max_tokens: 16, stream: true, messages: MESSAGE });
        const mjob = await node.nextJob(m);
        await finishStream(node, mjob, answer(mjob), usage);
        const mevents = jsons(await streamOf(m, "a streamed Messages request"));
        const deltas = mevents.filter((d) => d?.type === "message_delta");
        if (deltas.length !== 1) problems.push(`the Messages stream has ${deltas.length} message_delta events, not 1`);
        const u = deltas[0]?.usage;
        const shape = schemaProblem(AnthropicUsage, u, "message_delta.usage");
        if (shape) problems.push(shape);
        if (isObject(u)) {
          if (u.output_tokens !== 3 || u.input_tokens !== 13)
            problems.push(`message_delta.usage ${JSON.stringify(u)} does not show the receipt's 13 + 3 tokens`);
          const cost = costProblem(u, "message_delta.usage");
          if (cost) problems.push(cost);
        }
        if (mevents.at(-1)?.type !== "message_stop") problems.push("the Messages stream does not end with message_stop");
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.stream_error",
    "A stream that fails after content ends with the in-band error job.stream_interrupted in the surface's shape: OpenAI {error: {type: api_error, param: null, code}} without [DONE]; Anthropic event error without message_stop",
    ["SRP-CON-029", "SRP-CON-007"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions");
      const doc = await discovery(ctx);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const problems: string[] = [];
      const call = post(ctx, base, "/chat/completions", { model, messages: MESSAGE, max_tokens: 16, stream: true });
      const job = await node.nextJob(call);
      const events = await failMidStream(node, call, job, "a streamed chat request", [
        chunkOf(job, { role: "assistant", content: "" }, null),
        chunkOf(job, { content: "Partial" }, null),
      ]);
      if (events.some((e) => e.data.trim() === "[DONE]")) problems.push("the failed chat stream carries data: [DONE]");
      const last = eventJson(events.at(-1) ?? { data: "" });
      const shape = schemaProblem(OpenAIError, last, "the chat stream's last event");
      if (shape) problems.push(shape);
      const err = last?.error as Json | undefined;
      if (err?.code !== "job.stream_interrupted" || err?.type !== "api_error" || err?.param !== null)
        problems.push(
          `the chat stream's last event ${String(JSON.stringify(last)).slice(0, 200)} is not {error: {type: api_error, param: null, code: job.stream_interrupted}}`,
        );

      if (doc.consumer?.surfaces.includes("anthropic.messages")) {
        const m = post(ctx, base, "/messages", { model, max_tokens: 16, stream: true, messages: MESSAGE });
        const mjob = await node.nextJob(m);
        const mevents = await failMidStream(node, m, mjob, "a streamed Messages request", [
          chunkOf(mjob, { role: "assistant", content: "" }, null),
          chunkOf(mjob, { content: "Partial" }, null),
        ]);
        if (mevents.some((e) => e.event === "message_stop")) problems.push("the failed Messages stream carries message_stop");
        const lastEvent = mevents.at(-1);
        const data = lastEvent ? eventJson(lastEvent) : undefined;
        if (lastEvent?.event !== "error")
          problems.push(`the failed Messages stream ends with event ${String(lastEvent?.event)}, not error`);
        const mshape = schemaProblem(AnthropicError, data, "the Messages error event");
        if (mshape) problems.push(mshape);
        const merr = data?.error as Json | undefined;
        if (merr?.code !== "job.stream_interrupted" || merr?.type !== "api_error")
          problems.push(
            `the Messages error event ${String(JSON.stringify(data)).slice(0, 200)} is not {type: error, error: {type: api_error, code: job.stream_interrupted}}`,
          );
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.attempts_exhausted",
    "A lost session before any output, with no other instance, is answered 502 job.upstream_error in the surface's shape; a busy instance's request is answered 503 job.no_capacity with Retry-After, or waits for the slot",
    ["SRP-CON-030", "SRP-CON-003"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions");
      const doc = await discovery(ctx);
      const problems: string[] = [];
      const lost = async (path: string, body: (model: string) => Json, anthropic: boolean) => {
        const model = newModel();
        const node = await HarnessNode.open(ctx, [instance(model)]);
        const call = post(ctx, base, path, body(model));
        await node.nextJob(call);
        node.peer.terminate();
        const res = await within(call.response, 5000, `the answer to ${path} after the node's session was lost`);
        problems.push(...(await errorProblems(res, `POST ${path} after the session was lost`, 502, "job.upstream_error", anthropic)));
      };
      await lost("/chat/completions", (model) => ({ model, messages: MESSAGE, max_tokens: 4, stream: true }), false);
      if (doc.consumer?.surfaces.includes("anthropic.messages"))
        await lost("/messages", (model) => ({ model, messages: MESSAGE, max_tokens: 4 }), true);

      // Busy: one slot, taken.
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { maxConcurrency: 1 })]);
      const first = post(ctx, base, "/chat/completions", { model, messages: MESSAGE, max_tokens: 4 });
      const job = await node.nextJob(first);
      const second = post(ctx, base, "/chat/completions", { model, messages: MESSAGE, max_tokens: 4 });
      const answered = await Promise.race([second.response.then((res) => res), sleep(1500).then(() => undefined)]);
      if (answered) {
        problems.push(...(await errorProblems(answered.clone(), "the request for a busy instance", 503, "job.no_capacity", false)));
        const retry = answered.headers.get("retry-after");
        if (retry === null || !/^[1-9][0-9]*$/.test(retry))
          problems.push(`the 503 for a busy instance has Retry-After ${JSON.stringify(retry)}, not whole seconds of at least 1`);
        await answerWhole(node, job, "one");
        await within(first.response, 5000, "the first answer").then((r) => bodyText(r));
      } else {
        // The hub holds the request (allowed): it must reach the node once the slot frees, or be answered 503.
        if (node.peer.matching((m) => isJob(m) && m.jobId !== job.jobId).length)
          problems.push("a second job reached an instance of maxConcurrency 1 while the first ran");
        await answerWhole(node, job, "one");
        await within(first.response, 5000, "the first answer").then((r) => bodyText(r));
        const later = node.peer.take((m) => isJob(m) && m.jobId !== job.jobId, 5000);
        later.catch(() => undefined);
        const next = await Promise.race([
          later.then((j) => ({ job: j as unknown as Job })),
          within(second.response, 5000, "the held request's answer").then((res) => ({ res })),
        ]);
        if ("job" in next) await answerWhole(node, next.job, "two");
        else if (next.res.status !== 503) problems.push(`the held request was answered ${next.res.status} instead of running or 503`);
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.messages_blocks",
    "Refuses Messages content that is not typed blocks of the Messages API (unknown type, text without text, tool_use input not an object, a system image) with 400 api.invalid_body in Anthropic's shape; no job reaches a node",
    ["SRP-CON-023", "SRP-CON-024"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "anthropic.messages");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const body = (messages: unknown, extra: Json = {}): Json => ({ model, max_tokens: 4, messages, ...extra });
      const cases: [string, Json][] = [
        ["a block of an unknown type", body([{ role: "user", content: [{ type: "conformance_bogus", text: "x" }] }])],
        ["a text block without text", body([{ role: "user", content: [{ type: "text" }] }])],
        [
          "a tool_use whose input is a string",
          body([
            { role: "user", content: "x" },
            { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "f", input: "not an object" }] },
          ]),
        ],
        ["content that is a number", body([{ role: "user", content: 42 }])],
        [
          "an image block in system",
          body([{ role: "user", content: "x" }], {
            system: [{ type: "image", source: { type: "url", url: "https://example.com/a.png" } }],
          }),
        ],
      ];
      const problems: string[] = [];
      for (const [what, b] of cases) {
        const res = await within(post(ctx, base, "/messages", b, { "x-api-key": ctx.accountKey ?? "" }).response, 5000, what);
        const found = await errorProblems(res, what, 400, "api.invalid_body", true);
        problems.push(...found);
      }
      await sleep(100);
      if (node.peer.matching(isJob).length > 0) problems.push("a job reached the node");
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.insufficient_credits",
    "Refuses a request whose maximum cost exceeds the balance with 402 billing.insufficient_credits carrying required > available (units), on both surfaces, before any job reaches a node (a hub that lists srp.account)",
    ["SRP-BIL-003", "SRP-BIL-016"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions", "srp.account");
      const doc = await discovery(ctx);
      const model = newModel();
      // 10^9 units (USD 1000) a token: no funded test account covers 1000 output tokens.
      const node = await HarnessNode.open(ctx, [instance(model, { price: { input: "1000000000000000", output: "1000000000000000" } })]);
      const problems: string[] = [];
      const refused = async (path: string, body: Json, anthropic: boolean) => {
        const res = await within(post(ctx, base, path, body).response, 5000, `POST ${path} beyond the balance`);
        const copy = res.clone();
        problems.push(...(await errorProblems(res, `POST ${path} beyond the balance`, 402, "billing.insufficient_credits", anthropic)));
        const err = ((await copy.json().catch(() => ({}))) as Json).error as Json | undefined;
        const units = (v: unknown) => (typeof v === "string" && /^(0|[1-9][0-9]*)$/.test(v) ? BigInt(v) : undefined);
        const required = units(err?.required);
        const available = units(err?.available);
        if (required === undefined || available === undefined)
          problems.push(`POST ${path}: the 402 lacks required/available as decimal strings of units (SRP-BIL-016)`);
        else if (required <= available) problems.push(`POST ${path}: required ${required} is not more than available ${available}`);
      };
      await refused("/chat/completions", { model, messages: MESSAGE, max_tokens: 1000 }, false);
      if (doc.consumer?.surfaces.includes("anthropic.messages"))
        await refused("/messages", { model, messages: MESSAGE, max_tokens: 1000 }, true);
      await sleep(100);
      if (node.peer.matching(isJob).length > 0) problems.push("a job reached the node although the balance could not cover the request");
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
