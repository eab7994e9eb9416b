/**
 * The OpenAI Responses surface: `POST /v1/responses` in OpenAI's wire format, so the
 * `openai` package's `responses` API, the OpenAI Agents SDK and Codex CLI work against a
 * hub. A request goes natively to an instance that takes `responses` jobs (a forwarded
 * OpenAI key, vLLM); every other instance gets it translated to chat completions
 * (`responses-translate.ts`), and its answer (streamed or not, tool calls and reasoning
 * included) is translated back. Answered turns are stored (`store`, default true) for
 * `previous_response_id` and `GET /v1/responses/{id}` (`response-store.ts`).
 */
import { describedMeter } from "./meters.js";
import { formatSse, SrpError } from "@srp/core";
import { checkConsumerBody, ResponsesRequest, type Capability, type Done, type Instance, type Job, type Usage } from "@srp/core/schema";
import { OutputMeter, type OutputMeasurer } from "@srp/core/metering";
import { estimatePromptTokens } from "../routing/policy.js";
import { responsesAffinityKey } from "../routing/affinity.js";
import type { JobEvent } from "../relay.js";
import { errorResponse, readJsonObject } from "./http.js";
import { resolveItemReferences } from "./response-store.js";
import type { PaidResource } from "../payments/x402-policy.js";
import { contentful, promptTokenBound } from "./openai.js";
import {
  ChatToResponsesEvents,
  chatToOutput,
  chatToResponse,
  inputItems,
  responsesToChat,
  responseShell,
  responsesUsage,
  toolNamespaces,
} from "./responses-translate.js";
import {
  defaultUsageBounds,
  preferences,
  serve,
  upstreamUsageExtras,
  type Plan,
  type ConsumerApiContext,
  type SrpUsageExtension,
  type StreamEncoder,
  type Surface,
} from "./serve.js";
import { withEffortThinking } from "./reasoning.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The id of the Response a job answers: `resp_` and the job id's random part (one id per job, known to the stream and the store alike). */
export const responseId = (job: Job): string => `resp_${job.jobId.slice(4)}`;

/** What a plan needs to store an answered turn. */
interface Turn {
  ctx: Pick<ConsumerApiContext, "responses" | "storageError">;
  /** The request as the consumer sent it (its members are echoed in the Response). */
  request: Json;
  /** This turn's input items, normalized. */
  input: Json[];
}

/**
 * Stores an answered turn (SRP-CON-037) when the request did not say `store: false`, the hub
 * keeps responses and the payer has an account. A storage failure is reported, not thrown:
 * the answer is still delivered (the turn just cannot be continued by id).
 */
async function saveTurn(turn: Turn, accountId: string, response: Json): Promise<void> {
  const store = turn.ctx.responses;
  if (!store || turn.request.store === false || accountId === "") return;
  const prev = turn.request.previous_response_id;
  try {
    await store.save({
      id: response.id as string,
      accountId,
      createdAt: Date.now(),
      response,
      input: turn.input,
      ...(typeof prev === "string" ? { previousResponseId: prev } : {}),
    });
  } catch (e) {
    turn.ctx.storageError(`store response ${String(response.id)}`, e);
  }
}

const sse = (data: Json) => formatSse(data, data.type as string);

/** Numbers events (`sequence_number`, from 0) and writes them as named SSE events. */
class Sequencer {
  #next = 0;
  /** The next number to give. */
  get next(): number {
    return this.#next;
  }
  /** The events as SSE text, numbered. */
  text(events: Json[]): string {
    return events.map((e) => sse({ ...e, sequence_number: this.#next++ })).join("");
  }
}

/** Chat chunks re-encoded as the Responses event stream ({@link ChatToResponsesEvents}); the closing event waits for the receipt, and the turn is stored before it is sent. */
function translatedEncoder(job: Job, turn: Turn, accountId: string): StreamEncoder {
  const events = new ChatToResponsesEvents(responseShell(turn.request, responseId(job), job.model), toolNamespaces(turn.request.tools));
  const seq = new Sequencer();
  let answered: Json | undefined;
  return {
    chunk: (data) => seq.text(events.chunk(data)),
    end(done, ext) {
      const { events: last, response } = events.end(done.usage, ext);
      answered = response;
      return seq.text(last);
    },
    fail: (code, message) => seq.text(events.fail(code, message)),
    finish: () => (answered ? saveTurn(turn, accountId, answered) : Promise.resolve()),
  };
}

/**
 * The meter of a chat job translated for a Responses consumer (SRP-ATT-016): it measures what
 * the translation relays, the Responses events ({@link ChatToResponsesEvents}) or output items
 * a chat chunk or completion becomes, by the `responses` rule. The first choice's text,
 * reasoning and tool calls are relayed; what the translation drops (other choices,
 * `refusal`, arguments of a call already closed in a stream) is not counted.
 */
export function translatedMeter(job: Job): OutputMeasurer {
  const meter = new OutputMeter({ api: "responses", stream: job.stream });
  const events = job.stream ? new ChatToResponsesEvents({}) : undefined;
  return describedMeter(
    {
      add(value) {
        if (!isObject(value)) return;
        if (!events) return meter.add({ output: chatToOutput(value) });
        for (const e of events.chunk(value)) meter.add(e);
      },
      get measure() {
        return meter.measure;
      },
    },
    { kind: "responses" },
  );
}

/**
 * The Response members a hub sets on a natively served answer (SRP-CON-042): its own `id`
 * (the upstream's is not the hub's, and `previous_response_id` names the hub's), and the
 * consumer's `store` and `previous_response_id` (the upstream was asked not to store).
 */
function hubMembers(job: Job, request: Json): Json {
  return { id: responseId(job), store: request.store !== false, previous_response_id: request.previous_response_id ?? null };
}

/** A native answer's usage: the upstream's other members kept, its counts replaced by the billed usage's (SRP-ATT-019), then SRP's cost and receipt. */
function nativeUsage(upstream: unknown, usage: Usage, ext: SrpUsageExtension): Json {
  return { ...upstreamUsageExtras(upstream), ...responsesUsage(usage, ext) };
}

const TERMINAL: ReadonlySet<unknown> = new Set(["response.completed", "response.incomplete", "response.failed"]);

/**
 * Native Responses events passed through with the hub's members in their `response`; the
 * terminal event (`response.completed`, `.incomplete`, `.failed`) waits for the receipt and
 * then carries the billed usage and cost. The turn is stored before it is sent.
 */
function nativeEncoder(job: Job, turn: Turn, accountId: string): StreamEncoder {
  const namespaces = toolNamespaces(turn.request.tools);
  let terminal: Json | undefined;
  let snapshot: Json = responseShell(turn.request, responseId(job), job.model);
  let next = 0;
  let answered: Json | undefined;
  const hub = hubMembers(job, turn.request);
  const numbered = (e: Json) => {
    if (typeof e.sequence_number === "number") next = Math.max(next, e.sequence_number + 1);
    return e;
  };
  return {
    chunk(raw) {
      if (typeof raw.type !== "string") return "";
      const data = namespaced(raw, namespaces);
      numbered(data);
      if (TERMINAL.has(data.type)) {
        terminal = data;
        return "";
      }
      if (isObject(data.response)) {
        // Only the billed usage is shown (SRP-ATT-019): a snapshot before the terminal event carries none.
        snapshot = { ...data.response, ...hub, usage: null };
        return sse({ ...data, response: snapshot });
      }
      return sse(data);
    },
    end(done, ext) {
      const base = terminal ?? { type: "response.completed", sequence_number: next, response: { ...snapshot, status: "completed" } };
      const upstream = isObject(base.response) ? base.response : snapshot;
      answered = { ...upstream, ...hub, usage: nativeUsage(upstream.usage, done.usage, ext) };
      return sse({ ...base, response: answered });
    },
    fail: (code, message) =>
      sse({ type: "response.failed", sequence_number: next, response: { ...snapshot, status: "failed", error: { code, message } } }),
    finish: () => (answered && answered.status !== "failed" ? saveTurn(turn, accountId, answered) : Promise.resolve()),
  };
}

/** Whether a native Responses event commits output (text, a call, reasoning, the end). */
function nativeCommits(e: JobEvent): boolean {
  if (e.type !== "chunk") return true;
  const t = e.chunk.data.type;
  if (typeof t !== "string") return false;
  if (t.endsWith(".delta") || TERMINAL.has(t)) return true;
  const item = e.chunk.data.item;
  return t === "response.output_item.added" && isObject(item) && item.type !== "message" && item.type !== "reasoning";
}

/** Capabilities a Responses request uses (on a chat instance). */
function responsesNeeds(body: Json, items: readonly Json[], chat: Json | undefined): Capability[] {
  const needs: Capability[] = ["chat"];
  if (body.stream === true) needs.push("stream");
  if (chat ? Array.isArray(chat.tools) : Array.isArray(body.tools) && body.tools.length > 0) needs.push("tools");
  const format = isObject(body.text) && isObject(body.text.format) ? body.text.format.type : undefined;
  if (format === "json_object" || format === "json_schema") needs.push("json_mode");
  const image = items.some(
    (it) => Array.isArray(it.content) && (it.content as unknown[]).some((p) => isObject(p) && p.type === "input_image"),
  );
  if (image) needs.push("vision");
  return needs;
}

/** Members of a Responses request that only OpenAI's own service reads, left out of a native job for any other backend (SRP-CON-042). */
const OPENAI_SERVICE_ONLY = ["include", "client_metadata", "prompt_cache_key", "prompt_cache_retention", "safety_identifier"] as const;

/** The include value that asks OpenAI for the encrypted reasoning of a `store: false` response. */
const ENCRYPTED_REASONING = "reasoning.encrypted_content";

/** Whether an item is a `reasoning` item without the encrypted content a stateless OpenAI request needs to replay it. */
const unreplayableReasoning = (item: unknown): boolean =>
  isObject(item) && item.type === "reasoning" && (typeof item.encrypted_content !== "string" || item.encrypted_content === "");

/**
 * `tools` for a Responses server that is not OpenAI's (SRP-CON-042): the function tools of a
 * `namespace` tool (as Codex sends them) as plain function tools, hosted `web_search` tools
 * left out (local servers have no search), every other tool as it is.
 */
function localServerTools(tools: readonly unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const t of tools) {
    if (isObject(t) && t.type === "namespace" && Array.isArray(t.tools)) out.push(...(t.tools as unknown[]));
    else if (!(isObject(t) && typeof t.type === "string" && t.type.startsWith("web_search"))) out.push(t);
  }
  return out;
}

/**
 * The `request` of a native `responses` job for one instance (SRP-CON-042), from the body
 * the hub made for every native instance. For a forwarded OpenAI key (backend kind
 * `openai`): reasoning items without `encrypted_content` are left out of `input` (OpenAI
 * would look them up by id in a store the hub asked it not to use, and answer 404), and a
 * reasoning model is asked for `reasoning.encrypted_content` so that its reasoning can be
 * sent back next turn. For any other backend (vLLM, Ollama, LM Studio): the tools as
 * {@link localServerTools} makes them, and the members only OpenAI's service reads left out.
 * Pure.
 */
function nativeJobRequest(body: Json, instance: Pick<Instance, "backend" | "capabilities">): Json {
  const out: Json = { ...body };
  if (instance.backend.kind === "openai") {
    if (Array.isArray(out.input)) out.input = (out.input as unknown[]).filter((item) => !unreplayableReasoning(item));
    if (instance.capabilities.includes("reasoning")) {
      const asked = Array.isArray(out.include) ? (out.include as unknown[]) : [];
      out.include = [...new Set([...asked, ENCRYPTED_REASONING])];
    }
    return out;
  }
  if (Array.isArray(out.tools)) out.tools = localServerTools(out.tools as unknown[]);
  // A call to a flattened function is a plain call there: no `namespace`.
  if (Array.isArray(out.input))
    out.input = (out.input as unknown[]).map((item) =>
      isObject(item) && item.type === "function_call" && "namespace" in item ? withoutKey(item, "namespace") : item,
    );
  for (const member of OPENAI_SERVICE_ONLY) delete out[member];
  return out;
}

function withoutKey(o: Json, key: string): Json {
  const { [key]: _dropped, ...rest } = o;
  return rest;
}

/** A `function_call` item with the `namespace` of its function when it was declared in a `namespace` tool and the item names none (a server that took the tools flattened). */
function namespacedItem(item: unknown, namespaces: ReadonlyMap<string, string>): unknown {
  if (!isObject(item) || item.type !== "function_call" || typeof item.name !== "string" || item.namespace !== undefined) return item;
  const ns = namespaces.get(item.name);
  return ns === undefined ? item : { ...item, namespace: ns };
}

/** A native event or Response with {@link namespacedItem} applied to its `item`, `output` and `response.output`. */
function namespaced(data: Json, namespaces: ReadonlyMap<string, string>): Json {
  if (namespaces.size === 0) return data;
  const out: Json = { ...data };
  if (isObject(out.item)) out.item = namespacedItem(out.item, namespaces);
  if (Array.isArray(out.output)) out.output = (out.output as unknown[]).map((i) => namespacedItem(i, namespaces));
  if (isObject(out.response)) out.response = namespaced(out.response, namespaces);
  return out;
}

/** The byte size of a body as a job carries it (UTF-8 JSON). */
const jsonBytes = (body: unknown): number => Buffer.byteLength(JSON.stringify(body));

/**
 * The conversation a `previous_response_id` continues (SRP-CON-036): its items, oldest
 * first, or the error to answer: `api.not_found` when it is unknown to this account (or
 * this hub stores nothing, or an x402 payer, who has no account yet, names one).
 */
async function storedConversation(
  ctx: Pick<ConsumerApiContext, "responses" | "storageError">,
  accountId: string,
  id: unknown,
): Promise<Json[] | SrpError> {
  if (typeof id !== "string") return [];
  const notFound = new SrpError("api.not_found", `no stored response ${id} for this account (unknown, expired, deleted, or not stored)`);
  if (!ctx.responses || accountId === "") return notFound;
  try {
    return (await ctx.responses.history(accountId, id)) ?? notFound;
  } catch (e) {
    if (e instanceof SrpError) return e;
    ctx.storageError("read a stored conversation", e);
    return new SrpError("internal", "the hub cannot read stored responses now; retry shortly");
  }
}

/**
 * Checks a Responses body and plans it: native for instances that take `responses` jobs,
 * translated to chat completions for the rest. A request with what only the Responses API
 * has (hosted tools other than web search, background mode…) goes to native instances only,
 * and is refused when the model has none.
 */
export async function planResponses(
  body: Json,
  ctx: Pick<ConsumerApiContext, "router" | "responses" | "storageError" | "maxBodyBytes">,
  accountId: string,
): Promise<Plan | SrpError> {
  const problem = checkConsumerBody(ResponsesRequest, body);
  if (problem) return new SrpError("api.invalid_body", problem);
  const prefs = preferences(body);
  if (prefs instanceof SrpError) return prefs;
  if ((body.input === undefined || body.input === null) && typeof body.previous_response_id !== "string")
    return new SrpError("api.invalid_body", "`input` is required");
  const history = await storedConversation(ctx, accountId, body.previous_response_id);
  if (history instanceof SrpError) return history;
  const referenced = await resolveItemReferences(ctx, accountId, body.input);
  if (referenced instanceof SrpError) return referenced;
  let input: Json[];
  try {
    input = inputItems(referenced.input);
  } catch (error) {
    if (error instanceof SrpError) return error;
    throw error;
  }
  const items = [...history, ...input];
  const request: Json = { ...body };
  delete request.srp;
  delete request.provider;
  // An x402 payer has no account to continue a turn from: nothing is stored for it (SRP-CON-050).
  if (accountId === "") request.store = false;
  // Native: the upstream does not know the hub's ids, so a continued conversation is sent whole, and nothing is stored upstream.
  const native: Json = { ...request, store: false };
  if (history.length > 0 || referenced.resolved > 0) native.input = history.length > 0 ? items : referenced.input;
  delete native.previous_response_id;
  let translated: Json | undefined;
  try {
    translated = responsesToChat(request, items, history.length);
  } catch (error) {
    if (!(error instanceof SrpError)) throw error;
    const nativeOnline = ctx.router.offers(body.model as string).some((v) => v.capabilities.includes("responses"));
    if (!nativeOnline)
      return new SrpError(
        error.code,
        `${error.message} (only an instance that runs the Responses API itself could serve it, and none of ${String(body.model)} is online)`,
      );
  }
  // A continued conversation can make the job far larger than the body: refused as a body over the limit would be (it could not be sent to a node, SRP-CON-036).
  const largest = Math.max(jsonBytes(native), translated ? jsonBytes(translated) : 0);
  if (largest > ctx.maxBodyBytes) {
    return new SrpError(
      "api.body_too_large",
      `the request with its continued conversation is ${largest} bytes, over the limit of ${ctx.maxBodyBytes}; start a new conversation (or send less input)`,
    );
  }
  const capabilities = responsesNeeds(body, items, translated);
  if (!translated) capabilities.push("responses");
  const maxOut = typeof body.max_output_tokens === "number" ? body.max_output_tokens : 0;
  const turn: Turn = { ctx, request, input };
  const isNative = (job: Job) => job.api === "responses";
  const affinityKey = responsesAffinityKey(native);
  const bound = { promptTokens: promptTokenBound(native), completionTokens: maxOut };
  return {
    model: body.model as string,
    stream: body.stream === true,
    prefs,
    capabilities,
    contextTokens: (translated ? estimatePromptTokens(translated) : Math.ceil(JSON.stringify(items).length / 4)) + maxOut,
    bound,
    ...(affinityKey !== undefined ? { affinityKey } : {}),
    bounds(instance: Instance) {
      const bounds = defaultUsageBounds({ bound, capabilities }, instance);
      return translated && !instance.capabilities.includes("responses") ? withEffortThinking(bounds, instance, translated) : bounds;
    },
    job: (instance: Instance) =>
      instance.capabilities.includes("responses") || !translated
        ? { api: "responses", body: nativeJobRequest(native, instance) }
        : { api: "chat.completions", body: translated },
    commits: (e, job) => (isNative(job) ? nativeCommits(e) : contentful(e)),
    async respond(job: Job, done: Done, ext, headers, payer) {
      const upstream = done.response ?? {};
      const response = isNative(job)
        ? {
            ...namespaced(upstream, toolNamespaces(request.tools)),
            ...hubMembers(job, request),
            usage: nativeUsage(upstream.usage, done.usage, ext),
          }
        : chatToResponse(upstream, responseShell(request, responseId(job), job.model), done.usage, ext, toolNamespaces(request.tools));
      // A failed response is no turn to continue (as in a stream, whose failure is never stored).
      if (response.status !== "failed") await saveTurn(turn, payer, response);
      return Response.json(response, { headers });
    },
    encoder: (job, payer) => (isNative(job) ? nativeEncoder(job, turn, payer) : translatedEncoder(job, turn, payer)),
    meter: (job) => (isNative(job) ? undefined : translatedMeter(job)),
  };
}

/** The Responses surface as an x402 resource. */
export function responsesResource(url: string): PaidResource {
  return {
    url,
    description:
      "OpenAI Responses request relayed to an SRP provider (OpenAI wire format). The amount is this request's maximum cost; what it does not use stays with the paying wallet as prepaid balance.",
    mimeType: "application/json",
    method: "POST",
    example: { model: "llama3.1:8b", input: "Hello", max_output_tokens: 64 },
  };
}

/** The Responses surface: what `POST /v1/responses` serves and `POST /v1/estimate` plans. */
export const responsesSurface: Surface = {
  resource: responsesResource,
  error: errorResponse,
  read: readJsonObject,
  plan: (body, ctx, _request, accountId) => planResponses(body, ctx, accountId),
};

/** `POST /v1/responses`. */
export function postResponses(request: Request, ctx: ConsumerApiContext): Promise<Response> {
  return serve(request, ctx, responsesSurface);
}
