/**
 * The simulator's Responses API (`POST /v1/responses`), in OpenAI's wire format and **not
 * a model**: a `response` object whose `output` holds one `message` item (an `output_text`
 * part) or, when the request has function tools, `tool_choice` is not `none` and the last
 * input item is not a `function_call_output`, one `function_call` item for the first (or
 * the forced) tool with example arguments. With reasoning (a `reasoning.effort` other than
 * `none`, the simulator's `reasoning` option, or a thinking model; `reasoning.ts`) a
 * `reasoning` item holding the thinking as one `reasoning_text` part comes first, as vLLM,
 * Ollama and LM Studio send the reasoning of open-weight models. Usage: `input_tokens` (with
 * `input_tokens_details.cached_tokens`, from the simulator's prefix cache when enabled),
 * `output_tokens` (the thinking included, and in `output_tokens_details.reasoning_tokens`),
 * `total_tokens`.
 *
 * Streamed, as SSE events (`event: <type>` and `data: <json>`, numbered by
 * `sequence_number`, no `[DONE]`): `response.created`, `response.in_progress`,
 * for reasoning `response.output_item.added`, `response.content_part.added`,
 * `response.reasoning_text.delta`..., `response.reasoning_text.done`,
 * `response.content_part.done`, `response.output_item.done`; then
 * `response.output_item.added`, then for text `response.content_part.added`,
 * `response.output_text.delta`..., `response.output_text.done`, `response.content_part.done`,
 * or for a call `response.function_call_arguments.delta`...,
 * `response.function_call_arguments.done`; then `response.output_item.done` and
 * `response.completed` (`response.incomplete` when `max_output_tokens` cut the text).
 *
 * It stores nothing: a `previous_response_id` gets OpenAI's "not found" error.
 */
import type { ServerResponse } from "node:http";
import { randomBytes, sha256Hex, toHex } from "@srp/core";
import { errorBody, sendJson, sendUnknownModel } from "./http.js";
import { flavorRefusal } from "./flavors.js";
import { countTokens, generateTokens } from "./text.js";
import { fitTokens, pacer, sleep, type SimulatorContext, type SimulatorFault, type SimulatorModel } from "./context.js";
import { simulatedReasoning } from "./reasoning.js";
import { responsesPromptSequence } from "./prefix-cache.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Tokens of a Responses request's input the simulator counts: instructions, text parts, 4 per message item, 85 per image or file, calls and their outputs, the tools. */
export function responsesInputTokens(body: Json): number {
  let total = typeof body.instructions === "string" ? countTokens(body.instructions) : 0;
  const content = (c: unknown): void => {
    if (typeof c === "string") total += countTokens(c);
    else if (Array.isArray(c))
      for (const part of c) {
        if (!isObject(part)) continue;
        if (typeof part.text === "string") total += countTokens(part.text);
        else total += 85;
      }
  };
  if (typeof body.input === "string") total += countTokens(body.input);
  else if (Array.isArray(body.input))
    for (const item of body.input) {
      if (!isObject(item)) continue;
      if (item.type === "function_call") total += countTokens(String(item.name ?? "")) + countTokens(String(item.arguments ?? ""));
      else if (item.type === "function_call_output")
        total += countTokens(typeof item.output === "string" ? item.output : JSON.stringify(item.output ?? ""));
      else {
        total += 4;
        content(item.content);
      }
    }
  if (Array.isArray(body.tools) && body.tools.length > 0) total += countTokens(JSON.stringify(body.tools));
  return total;
}

/** The function tool the simulated model calls, if any. */
function pickFunction(body: Json): { name: string; parameters: unknown } | undefined {
  const tools = Array.isArray(body.tools)
    ? body.tools.filter((t): t is Json => isObject(t) && t.type === "function" && typeof t.name === "string")
    : [];
  if (tools.length === 0 || body.tool_choice === "none") return undefined;
  const last = Array.isArray(body.input) ? body.input.at(-1) : undefined;
  if (isObject(last) && last.type === "function_call_output") return undefined; // the tool answered: respond in text
  const forced =
    isObject(body.tool_choice) && body.tool_choice.type === "function" && typeof body.tool_choice.name === "string"
      ? body.tool_choice.name
      : undefined;
  const tool = forced ? tools.find((t) => t.name === forced) : tools[0];
  return tool ? { name: tool.name as string, parameters: tool.parameters } : undefined;
}

function exampleArguments(parameters: unknown): string {
  const schema = isObject(parameters) ? parameters : {};
  const props = isObject(schema.properties) ? schema.properties : {};
  const out: Json = {};
  for (const name of Array.isArray(schema.required) ? (schema.required as string[]) : Object.keys(props)) {
    const p = isObject(props[name]) ? (props[name] as Json) : {};
    out[name] = Array.isArray(p.enum)
      ? p.enum[0]
      : p.type === "number" || p.type === "integer"
        ? 1
        : p.type === "boolean"
          ? true
          : `example ${name}`;
  }
  return JSON.stringify(out);
}

/** The text pieces of the simulated answer. */
function answerText(body: Json, maxTokens: number): string[] {
  const last = Array.isArray(body.input) ? body.input.at(-1) : undefined;
  if (isObject(last) && last.type === "function_call_output") {
    const output = typeof last.output === "string" ? last.output : JSON.stringify(last.output ?? "");
    return fitTokens(`The tool returned: ${output}`, maxTokens, countTokens);
  }
  const seed = JSON.stringify([body.instructions ?? null, body.input ?? null]);
  return generateTokens(seed, maxTokens);
}

const hexId = (prefix: string) => `${prefix}_${toHex(randomBytes(24))}`;

/** The `response` object around `output`, echoing the request's settings as OpenAI does. */
function responseObject(
  id: string,
  createdAt: number,
  body: Json,
  status: string,
  output: unknown[],
  usage: unknown,
  incomplete: boolean,
): Json {
  const reasoning = isObject(body.reasoning) ? body.reasoning : {};
  return {
    id,
    object: "response",
    created_at: createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: incomplete ? { reason: "max_output_tokens" } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: null,
    model: body.model,
    output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: null,
    prompt_cache_key: null,
    reasoning: { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null },
    safety_identifier: null,
    service_tier: "default",
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: isObject(body.text)
      ? { format: { type: "text" }, verbosity: "medium", ...body.text }
      : { format: { type: "text" }, verbosity: "medium" },
    tool_choice: body.tool_choice ?? "auto",
    tools: body.tools ?? [],
    top_logprobs: 0,
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? "disabled",
    usage,
    user: null,
    metadata: body.metadata ?? {},
  };
}

/** Everything one response is made of, decided before its first byte. */
interface ResponsePlan {
  body: Json;
  fault: SimulatorFault | undefined;
  id: string;
  createdAt: number;
  itemId: string;
  fn: { name: string; parameters: unknown } | undefined;
  args: string;
  text: string[];
  thinking: string[];
  thinkingText: string;
  reasoningItem: Json | undefined;
  finalItem: Json;
  output: Json[];
  status: string;
  usage: Json;
  incomplete: boolean;
  outputTokens: number;
}

/** The served model, or undefined once the request got the 404 or 400 OpenAI gives. */
function admitResponse(ctx: SimulatorContext, res: ServerResponse, body: Json): SimulatorModel | undefined {
  const served = typeof body.model === "string" ? ctx.models.find((m) => m.id === body.model) : undefined;
  if (!served) return void sendUnknownModel(res, body.model);
  const refused = flavorRefusal(ctx.flavor, served, { tools: body.tools, reasoning: body.reasoning });
  if (refused) return void sendJson(res, refused.status, refused.body);
  if (typeof body.input !== "string" && !(Array.isArray(body.input) && body.input.length > 0)) {
    return void sendJson(
      res,
      400,
      errorBody(
        "Invalid value for 'input': expected a string or a non-empty array of input items.",
        "invalid_request_error",
        "invalid_value",
        "input",
      ),
    );
  }
  if (typeof body.previous_response_id === "string") {
    return void sendJson(
      res,
      400,
      errorBody(
        `Previous response with id '${body.previous_response_id}' not found.`,
        "invalid_request_error",
        "previous_response_not_found",
        "previous_response_id",
      ),
    );
  }
  return served;
}

/** Decides the output items and usage, or the 400 for a reasoning effort the flavour refuses. */
function planResponse(
  ctx: SimulatorContext,
  body: Json,
  served: SimulatorModel,
  fault: SimulatorFault | undefined,
): ResponsePlan | { error: Json } {
  const limit = body.max_output_tokens;
  // The simulated model's answer runs defaultMaxTokens tokens unless the consumer's limit is lower.
  const limited = typeof limit === "number" && Number.isSafeInteger(limit) && limit > 0 && limit < ctx.defaultMaxTokens;
  const maxTokens = limited ? limit : ctx.defaultMaxTokens;
  // Reasoning: `reasoning.effort` as chat's `reasoning_effort` (Ollama's flavour reads `reasoning` itself).
  const effort = isObject(body.reasoning) ? body.reasoning.effort : undefined;
  const thought = simulatedReasoning({ reasoning: body.reasoning, reasoning_effort: effort }, maxTokens, {
    flavor: ctx.flavor,
    always: ctx.reasoning,
    thinkingModel: served.thinking,
  });
  if (thought && "error" in thought) return { error: thought.error };
  const thinking = thought
    ? generateTokens(`reasoning:${JSON.stringify([body.instructions ?? null, body.input ?? null])}`, thought.tokens)
    : [];
  const thinkingText = thinking.join("");
  const reasoningTokens = countTokens(thinkingText);
  const fn = pickFunction(body);
  const text = fn ? [] : answerText(body, maxTokens - thinking.length);
  const args = fn ? exampleArguments(fn.parameters) : "";
  const outputTokens = reasoningTokens + (fn ? countTokens(fn.name) + countTokens(args) : countTokens(text.join("")));
  const incomplete = !fn && limited && outputTokens >= maxTokens;
  const inputTokens = responsesInputTokens(body);
  const cached = ctx.prefixCache ? ctx.prefixCache.serve(responsesPromptSequence(String(body.model), body)) : 0;
  const usage = {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: reasoningTokens },
    total_tokens: inputTokens + outputTokens,
  };
  const id = hexId("resp");
  const createdAt = Math.floor(Date.now() / 1000);
  const itemId = hexId(fn ? "fc" : "msg");
  const callId = `call_${sha256Hex(JSON.stringify(body.input)).slice(0, 24)}`;
  const finalItem = fn
    ? { id: itemId, type: "function_call", status: "completed", arguments: args, call_id: callId, name: fn.name }
    : {
        id: itemId,
        type: "message",
        status: incomplete ? "incomplete" : "completed",
        content: [{ type: "output_text", annotations: [], logprobs: [], text: text.join("") }],
        role: "assistant",
      };
  const reasoningItem = thought
    ? {
        id: hexId("rs"),
        type: "reasoning",
        summary: [],
        content: [{ type: "reasoning_text", text: thinkingText }],
        encrypted_content: null,
        status: "completed",
      }
    : undefined;
  const output = reasoningItem ? [reasoningItem, finalItem] : [finalItem];
  const status = incomplete ? "incomplete" : "completed";
  return {
    body,
    fault,
    id,
    createdAt,
    itemId,
    fn,
    args,
    text,
    thinking,
    thinkingText,
    reasoningItem,
    finalItem,
    output,
    status,
    usage,
    incomplete,
    outputTokens,
  };
}

/** The finished `response` object. */
const finalResponse = (plan: ResponsePlan) =>
  responseObject(plan.id, plan.createdAt, plan.body, plan.status, plan.output, plan.usage, plan.incomplete);

/** Writes one SSE event (`event: <type>`, `data: <json>` numbered by `sequence_number`). */
type Emit = (type: string, fields: Json) => void;

/** The pieces of one output part as delta events, paced; false once the connection is gone. */
async function streamPieces(
  pace: ReturnType<typeof pacer>,
  pieces: readonly string[],
  emitPiece: (piece: string) => void,
): Promise<boolean> {
  for (const piece of pieces) {
    if (pace.closed()) return false;
    emitPiece(piece);
    if (!(await pace.next())) return false;
  }
  return true;
}

/** The reasoning item's events; false once the connection is gone. */
async function streamReasoning(emit: Emit, pace: ReturnType<typeof pacer>, plan: ResponsePlan, reasoningItem: Json): Promise<boolean> {
  const r = { item_id: reasoningItem.id, output_index: 0 };
  const part = { type: "reasoning_text", text: "" };
  emit("response.output_item.added", { output_index: 0, item: { ...reasoningItem, content: [], status: "in_progress" } });
  emit("response.content_part.added", { ...r, content_index: 0, part });
  if (
    !(await streamPieces(pace, plan.thinking, (piece) => emit("response.reasoning_text.delta", { ...r, content_index: 0, delta: piece })))
  )
    return false;
  emit("response.reasoning_text.done", { ...r, content_index: 0, text: plan.thinkingText });
  emit("response.content_part.done", { ...r, content_index: 0, part: { ...part, text: plan.thinkingText } });
  emit("response.output_item.done", { output_index: 0, item: reasoningItem });
  return true;
}

/** The answer item's events up to its `done` (a function call's arguments, or a message's text); false once the connection is gone. */
async function streamAnswer(emit: Emit, pace: ReturnType<typeof pacer>, plan: ResponsePlan, index: number): Promise<boolean> {
  const { fn, itemId, args, text } = plan;
  const at = { item_id: itemId, output_index: index };
  if (fn) {
    emit("response.output_item.added", { output_index: index, item: { ...plan.finalItem, status: "in_progress", arguments: "" } });
    if (
      !(await streamPieces(pace, args.match(/.{1,8}/gs) ?? [], (piece) =>
        emit("response.function_call_arguments.delta", { ...at, delta: piece }),
      ))
    )
      return false;
    emit("response.function_call_arguments.done", { ...at, name: fn.name, arguments: args });
    return true;
  }
  const part = { type: "output_text", annotations: [], logprobs: [], text: "" };
  emit("response.output_item.added", {
    output_index: index,
    item: { id: itemId, type: "message", status: "in_progress", content: [], role: "assistant" },
  });
  emit("response.content_part.added", { ...at, content_index: 0, part });
  if (
    !(await streamPieces(pace, text, (piece) =>
      emit("response.output_text.delta", { ...at, content_index: 0, delta: piece, logprobs: [] }),
    ))
  )
    return false;
  const whole = text.join("");
  emit("response.output_text.done", { ...at, content_index: 0, text: whole, logprobs: [] });
  emit("response.content_part.done", { ...at, content_index: 0, part: { ...part, text: whole } });
  return true;
}

/** The response as SSE events, paced at the simulator's speed. */
async function streamResponse(res: ServerResponse, plan: ResponsePlan, tps: number): Promise<void> {
  const { body, fault, id, createdAt } = plan;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-srp-simulator": "1",
  });
  let seq = 0;
  const emit: Emit = (type, fields) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`);
  if (fault?.kind === "error_before_first_token") {
    emit("error", { code: "server_error", message: "The simulator was told to fail before the first token.", param: null });
    return void res.end();
  }
  emit("response.created", { response: responseObject(id, createdAt, body, "in_progress", [], null, false) });
  emit("response.in_progress", { response: responseObject(id, createdAt, body, "in_progress", [], null, false) });
  const pace = pacer(res, tps, fault?.kind === "drop_mid_stream" ? (fault.afterTokens ?? 3) : Infinity);
  if (plan.reasoningItem && !(await streamReasoning(emit, pace, plan, plan.reasoningItem))) return;
  const index = plan.reasoningItem ? 1 : 0;
  if (!(await streamAnswer(emit, pace, plan, index))) return;
  if (pace.closed()) return;
  emit("response.output_item.done", { output_index: index, item: plan.finalItem });
  emit(plan.incomplete ? "response.incomplete" : "response.completed", { response: finalResponse(plan) });
  res.end();
}

/** Serves one `POST /v1/responses`. */
export async function serveResponses(ctx: SimulatorContext, res: ServerResponse, body: Json): Promise<void> {
  ctx.record(body);
  const served = admitResponse(ctx, res, body);
  if (!served) return;
  const f = ctx.takeFault();
  if (f?.kind === "hang") return;
  if (ctx.latencyMs > 0) await sleep(ctx.latencyMs);
  if (f?.kind === "status") {
    const status = f.status ?? 500;
    return sendJson(
      res,
      status,
      errorBody("The simulator was told to fail this request.", status === 429 ? "rate_limit_error" : "server_error", null),
    );
  }
  const plan = planResponse(ctx, body, served, f);
  if ("error" in plan) return sendJson(res, 400, plan.error);
  const tps = ctx.tokensPerSecond();
  if (body.stream === true) return streamResponse(res, plan, tps);
  if (tps > 0) await sleep((plan.outputTokens * 1000) / tps);
  if (f?.kind === "error_before_first_token" || f?.kind === "drop_mid_stream") return void res.socket?.destroy();
  return sendJson(res, 200, finalResponse(plan));
}
