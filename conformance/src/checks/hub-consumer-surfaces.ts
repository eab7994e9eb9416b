/**
 * Hub-mode checks of the consumer surfaces (spec/v1/consumer.md): the harness is both the
 * provider node (offering a model nobody else serves) and the consumer, so it sees the job
 * each request becomes and the answer the hub makes of the node's output. Each check runs
 * when the discovery document lists its surface, and is skipped otherwise.
 */
import type { Instance, Job, Usage } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { bodyText, eventJson, get, json, post, SseReader, surfaces, within } from "../harness/consumer.js";
import { discovery, type HubContext } from "../harness/hub-session.js";
import { instance, isJob, newModel } from "../harness/instances.js";
import { answerStream, HarnessNode } from "../harness/node.js";
import { ensure, fail } from "../harness/verdict.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

const USAGE = (pieces: string[]): Usage => ({ promptTokens: 13, completionTokens: pieces.length, measured: true });

function chatResponse(job: Job, text: string, usage: Usage): Json {
  return {
    id: "chatcmpl-conformance",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: job.model,
    choices: [{ index: 0, message: { role: "assistant", content: text }, logprobs: null, finish_reason: "stop" }],
    usage: {
      prompt_tokens: usage.promptTokens,
      completion_tokens: usage.completionTokens,
      total_tokens: usage.promptTokens + usage.completionTokens,
    },
  };
}

/** Problems with the SRP members of a usage object (SRP-CON-002). */
function usageProblems(usage: unknown, where: string): string[] {
  if (!isObject(usage)) return [`${where} has no usage object`];
  const out: string[] = [];
  if (typeof usage.cost !== "string") out.push(`${where}.usage.cost is not a string`);
  if (typeof usage.cost_units !== "string" || !/^(0|[1-9][0-9]*)$/.test(usage.cost_units))
    out.push(`${where}.usage.cost_units is not a decimal string of units`);
  if (typeof usage.receipt_id !== "string" && usage.receipt_id !== null) out.push(`${where}.usage.receipt_id is neither a string nor null`);
  if (typeof usage.measured !== "boolean") out.push(`${where}.usage.measured is not a boolean`);
  return out;
}

const MESSAGES_BODY = (model: string, stream: boolean): Json => ({
  model,
  max_tokens: 16,
  system: "Conformance system prompt.",
  stream,
  messages: [{ role: "user", content: [{ type: "text", text: "Conformance: hello." }] }],
  provider: { sort: "price" },
});

/** The expected Anthropic stream sequence of one text block, as event names. */
function sequenceProblem(names: string[]): string | undefined {
  const expected = ["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"];
  const compact = names.filter((n, i) => n !== "ping" && !(n === "content_block_delta" && names[i - 1] === "content_block_delta"));
  if (names[0] !== "message_start") return `the first event is ${names[0]}, not message_start`;
  if (compact.join(",") !== expected.join(","))
    return `events ${names.join(", ")} are not message_start, content_block_start, content_block_delta..., content_block_stop, message_delta, message_stop`;
  return undefined;
}

/** Hub-mode consumer surface checks, in run order. */
export const HUB_CONSUMER_SURFACE_CHECKS: Check<HubContext>[] = [
  check(
    "hub.consumer.messages.translated",
    "Sends a Messages request to a chat-only instance as a translated chat.completions job (system message, no routing members) and answers an Anthropic Message with SRP usage",
    ["SRP-CON-001", "SRP-CON-002", "SRP-CON-005", "SRP-CON-014"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "anthropic.messages");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = post(ctx, base, "/messages", MESSAGES_BODY(model, false));
      const job = await node.nextJob(call);
      const problems: string[] = [];
      if (job.api !== "chat.completions")
        problems.push(`the job's api is ${job.api}, expected chat.completions for an instance without the messages capability`);
      const messages = job.request.messages as Json[] | undefined;
      if (
        !Array.isArray(messages) ||
        !isObject(messages[0]) ||
        messages[0].role !== "system" ||
        messages[0].content !== "Conformance system prompt."
      )
        problems.push("the system prompt is not the job's first (system) message");
      if (job.request.provider !== undefined || job.request.srp !== undefined)
        problems.push("the routing member `provider` reached the node");
      const usage = USAGE(["Hello", " there"]);
      node.responseDone(job, chatResponse(job, "Hello there", usage), usage);
      const res = await within(call.response, 10_000, "the consumer's answer");
      const msg = await json(res, "POST /v1/messages");
      if (res.status !== 200) fail(`POST /v1/messages answered ${res.status}: ${JSON.stringify(msg).slice(0, 300)}`);
      if (msg.type !== "message" || msg.role !== "assistant") problems.push("the answer is not {type: message, role: assistant}");
      const content = msg.content as Json[] | undefined;
      if (!Array.isArray(content) || content[0]?.type !== "text" || content[0]?.text !== "Hello there")
        problems.push(`content ${JSON.stringify(content)} is not one text block "Hello there"`);
      if (msg.stop_reason !== "end_turn") problems.push(`stop_reason ${String(msg.stop_reason)} for finish_reason stop, expected end_turn`);
      const u = msg.usage as Json | undefined;
      if (u?.output_tokens !== 2 || typeof u?.input_tokens !== "number")
        problems.push(`usage ${JSON.stringify(u)} lacks input_tokens, or output_tokens is not 2`);
      problems.push(...usageProblems(u, "the message"));
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.messages.stream",
    "Streams a translated Messages answer as Anthropic's event sequence, each event named by its type, the text intact and SRP usage in message_delta",
    ["SRP-CON-006", "SRP-CON-002"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "anthropic.messages");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = post(ctx, base, "/messages", MESSAGES_BODY(model, true));
      const job = await node.nextJob(call);
      ensure(job.stream, "the job for a streamed Messages request has stream false");
      const pieces = ["Streamed", " conformance", " answer."];
      const usage = USAGE(pieces);
      const chunk = (delta: Json, finish: string | null) => ({
        id: "chatcmpl-c",
        object: "chat.completion.chunk",
        created: 1,
        model: job.model,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      });
      const datas = [
        chunk({ role: "assistant", content: "" }, null),
        ...pieces.map((p) => chunk({ content: p }, null)),
        chunk({}, "stop"),
        {
          id: "chatcmpl-c",
          object: "chat.completion.chunk",
          created: 1,
          model: job.model,
          choices: [],
          usage: { prompt_tokens: 13, completion_tokens: 3, total_tokens: 16 },
        },
      ];
      answerStream(node, job, datas, usage);
      const res = await within(call.response, 10_000, "the consumer's answer");
      ensure(res.status === 200, `a streamed Messages request answered ${res.status}`);
      const events = await new SseReader(res).rest(10_000);
      const problems: string[] = [];
      const names = events.map((e) => e.event ?? "(unnamed)");
      const seq = sequenceProblem(names);
      if (seq) problems.push(seq);
      events.forEach((e) => {
        const data = eventJson(e);
        if (data?.type !== e.event) problems.push(`an event named ${String(e.event)} carries type ${String(data?.type)}`);
      });
      const text = events
        .map((e) => eventJson(e))
        .filter((d) => isObject(d?.delta) && (d.delta as Json).type === "text_delta")
        .map((d) => (d!.delta as Json).text)
        .join("");
      if (text !== pieces.join(""))
        problems.push(`the text deltas say ${JSON.stringify(text)}, the node streamed ${JSON.stringify(pieces.join(""))}`);
      const delta = events.map((e) => eventJson(e)).find((d) => d?.type === "message_delta");
      if ((delta?.delta as Json | undefined)?.stop_reason !== "end_turn") problems.push("message_delta has no stop_reason end_turn");
      if ((delta?.usage as Json | undefined)?.output_tokens !== 3) problems.push("message_delta's usage.output_tokens is not 3");
      problems.push(...usageProblems(delta?.usage, "message_delta"));
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.messages.native",
    "Sends a Messages request to an instance with the messages capability as a messages job with the body passed through, and relays its Anthropic events",
    ["SRP-CON-004", "SRP-CON-006"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "anthropic.messages");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { capabilities: ["chat", "stream", "messages"] })]);
      const body = { ...MESSAGES_BODY(model, true), top_k: 7 };
      const call = post(ctx, base, "/messages", body);
      const job = await node.nextJob(call);
      const problems: string[] = [];
      if (job.api !== "messages") problems.push(`the job's api is ${job.api}, expected messages`);
      if (job.request.system !== "Conformance system prompt." || job.request.top_k !== 7)
        problems.push("the Messages body (system, top_k) did not reach the node untouched");
      if (job.request.provider !== undefined) problems.push("the routing member `provider` reached the node");
      const events: Json[] = [
        {
          type: "message_start",
          message: {
            id: "msg_conf",
            type: "message",
            role: "assistant",
            model: job.model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 13, output_tokens: 1 },
          },
        },
        { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
        { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Native." } },
        { type: "content_block_stop", index: 0 },
        { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 2 } },
        { type: "message_stop" },
      ];
      answerStream(node, job, events, { promptTokens: 13, completionTokens: 2, measured: true });
      const res = await within(call.response, 10_000, "the consumer's answer");
      ensure(res.status === 200, `a streamed native Messages request answered ${res.status}`);
      const got = await new SseReader(res).rest(10_000);
      const seq = sequenceProblem(got.map((e) => e.event ?? ""));
      if (seq) problems.push(seq);
      const delta = got.map((e) => eventJson(e)).find((d) => d?.type === "content_block_delta");
      if ((delta?.delta as Json | undefined)?.text !== "Native.") problems.push("the node's text delta did not reach the consumer");
      problems.push(...usageProblems(got.map((e) => eventJson(e)).find((d) => d?.type === "message_delta")?.usage, "message_delta"));
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.messages.errors",
    "Answers Messages errors in Anthropic's shape with the SRP code: an unknown key (401), a body without max_tokens (400), an unknown model (404)",
    ["SRP-CON-003", "SRP-CON-001"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "anthropic.messages");
      const problems: string[] = [];
      const cases: [string, Json, Record<string, string>, number, string][] = [
        [
          "an unknown key",
          { model: newModel(), max_tokens: 4, messages: [{ role: "user", content: "x" }] },
          { "x-api-key": "srp_conformance_unknown_key_0000" },
          401,
          "authentication_error",
        ],
        ["a body without max_tokens", { model: newModel(), messages: [{ role: "user", content: "x" }] }, {}, 400, "invalid_request_error"],
        ["an unknown model", { model: newModel(), max_tokens: 4, messages: [{ role: "user", content: "x" }] }, {}, 404, "not_found_error"],
      ];
      for (const [what, body, headers, status, type] of cases) {
        const res = await within(post(ctx, base, "/messages", body, headers).response, 10_000, what);
        const err = await json(res, what);
        const inner = err.error as Json | undefined;
        if (res.status !== status) problems.push(`${what}: status ${res.status}, expected ${status}`);
        if (err.type !== "error" || inner?.type !== type || typeof inner?.message !== "string" || typeof inner?.code !== "string")
          problems.push(`${what}: body ${JSON.stringify(err).slice(0, 200)} is not {type: error, error: {type: ${type}, message, code}}`);
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.openai.errors",
    "Answers OpenAI-surface errors in OpenAI's shape with the SRP code: an unknown key (401), an invalid body (400), an unknown model (404)",
    ["SRP-CON-003"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions");
      const problems: string[] = [];
      const cases: [string, Json, Record<string, string>, number][] = [
        [
          "an unknown key",
          { model: newModel(), messages: [{ role: "user", content: "x" }] },
          { authorization: "Bearer srp_conformance_unknown_key_0000", "x-api-key": "" },
          401,
        ],
        ["an empty messages array", { model: newModel(), messages: [] }, { authorization: `Bearer ${ctx.accountKey ?? ""}` }, 400],
        [
          "an unknown model",
          { model: newModel(), messages: [{ role: "user", content: "x" }] },
          { authorization: `Bearer ${ctx.accountKey ?? ""}` },
          404,
        ],
      ];
      for (const [what, body, headers, status] of cases) {
        const res = await within(post(ctx, base, "/chat/completions", body, headers).response, 10_000, what);
        const err = await json(res, what);
        const inner = err.error as Json | undefined;
        if (res.status !== status) problems.push(`${what}: status ${res.status}, expected ${status}`);
        if (
          !isObject(inner) ||
          typeof inner.message !== "string" ||
          typeof inner.type !== "string" ||
          typeof inner.code !== "string" ||
          !("param" in inner)
        )
          problems.push(`${what}: body ${JSON.stringify(err).slice(0, 200)} is not {error: {message, type, param, code}}`);
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.embeddings",
    "Routes an embeddings request only to an instance with the embeddings capability, as an embeddings job with the body passed through, and answers with SRP usage",
    ["SRP-CON-009", "SRP-CON-002", "SRP-CON-010"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.embeddings");
      const model = newModel();
      const chatOnly = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { capabilities: ["embeddings"] }), instance(chatOnly) as Instance]);
      const problems: string[] = [];
      const refused = await within(
        post(ctx, base, "/embeddings", { model: chatOnly, input: "x" }, { authorization: `Bearer ${ctx.accountKey ?? ""}` }).response,
        10_000,
        "an embeddings request for a chat-only model",
      );
      if (refused.status !== 404)
        problems.push(`an embeddings request for a model without the capability answered ${refused.status}, expected 404`);
      await bodyText(refused).catch(() => "");
      const call = post(
        ctx,
        base,
        "/embeddings",
        { model, input: ["conformance"], encoding_format: "float" },
        { authorization: `Bearer ${ctx.accountKey ?? ""}` },
      );
      const job = await node.nextJob(call);
      if (job.api !== "embeddings") problems.push(`the job's api is ${job.api}, expected embeddings`);
      if (JSON.stringify(job.request.input) !== '["conformance"]' || job.request.encoding_format !== "float")
        problems.push("the embeddings body did not reach the node untouched");
      const usage: Usage = { promptTokens: 1, completionTokens: 0, measured: true };
      node.responseDone(
        job,
        {
          object: "list",
          data: [{ object: "embedding", index: 0, embedding: [0.6, 0.8] }],
          model: job.model,
          usage: { prompt_tokens: 1, total_tokens: 1 },
        },
        usage,
      );
      const res = await within(call.response, 10_000, "the embeddings answer");
      const body = await json(res, "POST /v1/embeddings");
      if (res.status !== 200) fail(`POST /v1/embeddings answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
      if (body.object !== "list" || !Array.isArray(body.data)) problems.push("the answer is not the node's embeddings list");
      problems.push(...usageProblems(body.usage, "the embeddings answer"));
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.images",
    "Sends an image generation to an instance with the images capability as an images.generations job, and answers the node's images with SRP usage",
    ["SRP-CON-009", "SRP-CON-010", "SRP-CON-002"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.images");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [
        instance(model, { capabilities: ["images"], price: { input: "0", output: "0", image: "40000000000" } }),
      ]);
      const call = post(
        ctx,
        base,
        "/images/generations",
        { model, prompt: "a conformance lighthouse", n: 1 },
        { authorization: `Bearer ${ctx.accountKey ?? ""}` },
      );
      const job = await node.nextJob(call);
      const problems: string[] = [];
      if (job.api !== "images.generations") problems.push(`the job's api is ${job.api}, expected images.generations`);
      if (job.request.prompt !== "a conformance lighthouse") problems.push("the prompt did not reach the node untouched");
      node.responseDone(
        job,
        { created: 1, data: [{ b64_json: "iVBORw0KGgo=" }] },
        { promptTokens: 0, completionTokens: 0, images: 1, measured: true },
      );
      const res = await within(call.response, 10_000, "the images answer");
      const body = await json(res, "POST /v1/images/generations");
      if (res.status !== 200) fail(`POST /v1/images/generations answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
      if (!Array.isArray(body.data) || (body.data[0] as Json | undefined)?.b64_json !== "iVBORw0KGgo=")
        problems.push("the node's image did not reach the consumer");
      problems.push(...usageProblems(body.usage, "the images answer"));
      if ((body.usage as Json | undefined)?.cost_units !== "40000")
        problems.push(
          `one image at 40000000000 per 1M images should cost 40000 units, the answer says ${String((body.usage as Json | undefined)?.cost_units)}`,
        );
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.speech",
    "Sends speech to an instance with the speech capability as an audio.speech job, and answers the node's srp.audio as the audio bytes, with the cost in headers",
    ["SRP-CON-009", "SRP-CON-011", "SRP-CON-002"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.audio");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [
        instance(model, { capabilities: ["speech"], price: { input: "0", output: "0", character: "15000000" } }),
      ]);
      const call = post(
        ctx,
        base,
        "/audio/speech",
        { model, input: "Conformance.", voice: "alloy", response_format: "wav" },
        { authorization: `Bearer ${ctx.accountKey ?? ""}` },
      );
      const job = await node.nextJob(call);
      const problems: string[] = [];
      if (job.api !== "audio.speech") problems.push(`the job's api is ${job.api}, expected audio.speech`);
      const audio = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";
      node.responseDone(
        job,
        { object: "srp.audio", content_type: "audio/wav", data: audio },
        { promptTokens: 0, completionTokens: 0, characters: 12, measured: true },
      );
      const res = await within(call.response, 10_000, "the speech answer");
      if (res.status !== 200) fail(`POST /v1/audio/speech answered ${res.status}: ${(await bodyText(res)).slice(0, 300)}`);
      const bytes = Buffer.from(await within(res.arrayBuffer(), 5000, "the audio"));
      if (bytes.toString("base64") !== audio) problems.push("the consumer did not get the node's audio bytes");
      if (res.headers.get("content-type") !== "audio/wav")
        problems.push(`content-type ${String(res.headers.get("content-type"))}, the node said audio/wav`);
      if (res.headers.get("x-srp-cost-units") !== "180")
        problems.push(
          `x-srp-cost-units is ${String(res.headers.get("x-srp-cost-units"))}; 12 characters at 15000000 per 1M cost 180 units`,
        );
      if (res.headers.get("x-srp-receipt") === null) problems.push("no x-srp-receipt header");
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.transcription",
    "Reads a transcription's multipart upload into an audio.transcriptions job (the file as {filename, content_type, data} in base64), and answers with SRP usage",
    ["SRP-CON-009", "SRP-CON-011", "SRP-CON-010"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.audio");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [
        instance(model, { capabilities: ["transcription"], price: { input: "0", output: "0", second: "100000000" } }),
      ]);
      const audio = Buffer.from("conformance audio bytes");
      const form = new FormData();
      form.append("model", model);
      form.append("language", "en");
      form.append("file", new Blob([audio], { type: "audio/ogg" }), "clip.ogg");
      const controller = new AbortController();
      ctx.tracker.cleanups.push(() => controller.abort());
      const response = fetch(`${base}/audio/transcriptions`, {
        method: "POST",
        headers: { authorization: `Bearer ${ctx.accountKey ?? ""}` },
        body: form,
        signal: controller.signal,
      });
      response.catch(() => undefined);
      const call = { response, abort: () => controller.abort() };
      const job = await node.nextJob(call);
      const problems: string[] = [];
      if (job.api !== "audio.transcriptions") problems.push(`the job's api is ${job.api}, expected audio.transcriptions`);
      const file = job.request.file as Json | undefined;
      if (file?.filename !== "clip.ogg" || file?.content_type !== "audio/ogg" || file?.data !== audio.toString("base64"))
        problems.push(
          `request.file ${JSON.stringify(file).slice(0, 200)} is not {filename: clip.ogg, content_type: audio/ogg, data: <the bytes in base64>}`,
        );
      if (job.request.language !== "en") problems.push("the form's language field did not reach the node");
      node.responseDone(
        job,
        { text: "conformance", usage: { type: "duration", seconds: 1 } },
        { promptTokens: 0, completionTokens: 0, seconds: 1, measured: true },
      );
      const res = await within(call.response, 10_000, "the transcription answer");
      const body = await json(res, "POST /v1/audio/transcriptions");
      if (res.status !== 200) fail(`POST /v1/audio/transcriptions answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
      if (body.text !== "conformance") problems.push("the node's text did not reach the consumer");
      problems.push(...usageProblems(body.usage, "the transcription answer"));
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.batch",
    "Admits a batch with 202 and a Location, runs its items as jobs, and reports each item's answer and cost at GET /v1/jobs/{id}",
    ["SRP-CON-012", "SRP-CON-013"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "srp.batch");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const item = (i: number) => ({
        custom_id: `c${i}`,
        url: "/v1/chat/completions",
        body: { model, max_tokens: 4, messages: [{ role: "user", content: `conformance batch ${i}` }] },
      });
      const res = await within(
        post(ctx, base, "/batch", { requests: [item(0), item(1)] }, { authorization: `Bearer ${ctx.accountKey ?? ""}` }).response,
        10_000,
        "the batch's admission",
      );
      const created = await json(res, "POST /v1/batch");
      if (res.status !== 202) fail(`POST /v1/batch answered ${res.status}: ${JSON.stringify(created).slice(0, 300)}`);
      const problems: string[] = [];
      const location = res.headers.get("location");
      if (location !== `/v1/jobs/${String(created.id)}`)
        problems.push(`Location ${String(location)} is not /v1/jobs/${String(created.id)}`);
      // Answer both items' jobs as they come.
      for (let i = 0; i < 2; i++) {
        const job = (await node.peer.take((m) => m.type === "job", 10_000, 0, `the job of batch item ${i}`)) as unknown as Job;
        if (job.stream) problems.push("a batch item's job has stream true");
        const usage = USAGE(["fine"]);
        node.responseDone(job, chatResponse(job, "fine", usage), usage);
      }
      let view: Json | undefined;
      for (let i = 0; i < 100; i++) {
        const r = await get(`${base}/jobs/${String(created.id)}`, ctx.accountKey ?? "");
        view = await json(r, "GET /v1/jobs/{id}");
        if (view.status === "completed" || view.status === "failed") break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (view?.status !== "completed") fail(`the batch is ${String(view?.status)}, not completed, after 5 s`);
      const items = Array.isArray(view.items) ? (view.items as Json[]) : [];
      if (items.length !== 2) problems.push(`the batch lists ${items.length} items, not 2`);
      for (const it of items) {
        if (it.status !== "completed" || it.status_code !== 200)
          problems.push(`item ${String(it.custom_id)} is ${String(it.status)} (${String(it.status_code)})`);
        if (!isObject(it.response) || it.response.object !== "chat.completion")
          problems.push(`item ${String(it.custom_id)} has no chat.completion answer`);
        if (typeof it.cost_units !== "string" || !/^(0|[1-9][0-9]*)$/.test(it.cost_units))
          problems.push(`item ${String(it.custom_id)} has no cost_units`);
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.openapi",
    "Serves an OpenAPI 3.1 document of the consumer API, linked from the discovery document, describing the surfaces it lists",
    ["SRP-CON-016"],
    "SHOULD",
    async (ctx) => {
      const doc = (await discovery(ctx)) as Awaited<ReturnType<typeof discovery>> & {
        consumer?: { openapi?: unknown; surfaces: string[] };
      };
      const link = doc.consumer?.openapi;
      if (typeof link !== "string")
        return { status: "warning", details: "the discovery document has no consumer.openapi link (SRP-CON-016)" };
      const res = await fetch(link, { signal: AbortSignal.timeout(5000) });
      const api = await json(res, `GET ${link}`);
      const problems: string[] = [];
      if (typeof api.openapi !== "string" || !api.openapi.startsWith("3.1")) problems.push(`openapi is ${String(api.openapi)}, not 3.1.x`);
      const paths = isObject(api.paths) ? Object.keys(api.paths) : [];
      const need: Record<string, string> = {
        "openai.chat.completions": "/v1/chat/completions",
        "anthropic.messages": "/v1/messages",
        "openai.embeddings": "/v1/embeddings",
        "srp.batch": "/v1/batch",
        "openai.videos": "/v1/videos",
        "srp.runs": "/v1/runs",
      };
      for (const [s, p] of Object.entries(need))
        if (doc.consumer?.surfaces.includes(s) && !paths.includes(p)) problems.push(`the document lacks ${p} for the listed surface ${s}`);
      if (problems.length) return { status: "warning", details: problems.join("; ") };
    },
  ),
  check(
    "hub.consumer.hostile_bodies",
    "Refuses a chat body nested 100 000 levels deep and content that is not typed parts with 400 api.invalid_body; no job reaches a node",
    ["SRP-CON-021", "SRP-CON-022", "SRP-CON-024"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const deep = "[".repeat(100_000) + "]".repeat(100_000);
      const bodies = {
        "content nested 100 000 levels deep": `{"model":"${model}","messages":[{"role":"user","content":${deep}}]}`,
        'content [[["hi"]]]': JSON.stringify({ model, messages: [{ role: "user", content: [[["hi"]]] }] }),
      };
      const problems: string[] = [];
      for (const [what, body] of Object.entries(bodies)) {
        const res = await fetch(`${base}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${ctx.accountKey ?? ""}` },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        const answer = await json(res, `POST /v1/chat/completions with ${what}`);
        const code = isObject(answer.error) ? answer.error.code : undefined;
        if (res.status !== 400 || code !== "api.invalid_body")
          problems.push(`${what}: ${res.status} ${String(code)}, expected 400 api.invalid_body`);
      }
      if (node.peer.matching(isJob).length > 0) problems.push("a job reached the node");
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
