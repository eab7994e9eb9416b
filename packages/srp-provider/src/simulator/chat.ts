/**
 * The simulator's chat completions (`POST /v1/chat/completions`), in OpenAI's wire format
 * byte for byte and **not a model**: deterministic filler text (or one call of a tool the
 * request offers), honest usage for it, optional reasoning (`reasoning.ts`) and cached
 * prompt tokens (`prefix-cache.ts`); streamed as `chat.completion.chunk` events ending in
 * `data: [DONE]`, with a usage chunk when `stream_options.include_usage` is set (in every
 * chunk with vLLM's `continuous_usage_stats`). The armed fault (`faults.ts`) shapes the
 * answer: a status, a hang, an error before the first token, a drop mid-stream.
 */
import type { ServerResponse } from "node:http";
import { randomBytes, sha256Hex, toBase64Url } from "@srp/core";
import { errorBody, sendJson, sendUnknownModel } from "./http.js";
import { flavorRefusal } from "./flavors.js";
import { countPromptTokens, countTokens, generateTokens } from "./text.js";
import { reasoningDelta, reasoningUsage, simulatedReasoning, type SimulatedReasoning } from "./reasoning.js";
import { chatPromptSequence } from "./prefix-cache.js";
import { pacer, sleep, type SimulatorContext, type SimulatorFault, type SimulatorModel } from "./context.js";

const FINGERPRINT = "fp_srpsim01";

/** The members of a chat request the simulator reads. */
export interface ChatRequest {
  model?: unknown;
  messages?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown; continuous_usage_stats?: unknown } | null;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
  tools?: unknown;
  tool_choice?: unknown;
  n?: unknown;
}

/** What the simulated model answers: text, or one call of a tool. */
type Answer = { kind: "text"; tokens: string[] } | { kind: "tool"; id: string; name: string; args: string; tokens: number };

/** Everything one answer is made of, decided before its first byte. */
interface ChatPlan {
  body: ChatRequest;
  fault: SimulatorFault | undefined;
  maxTokens: number;
  thought: SimulatedReasoning | undefined;
  thinking: string[];
  thinkingTokens: number;
  answer: Answer;
  prompt: number;
  cached: number;
  completion: number;
  /** The `id`, `object`, `created`... members every chunk carries. */
  base: { id: string; object: string; created: number; model: unknown; service_tier: string; system_fingerprint: string };
}

function pickTool(req: ChatRequest): { name: string; parameters: unknown } | undefined {
  if (!Array.isArray(req.tools) || req.tools.length === 0 || req.tool_choice === "none") return undefined;
  const messages = Array.isArray(req.messages) ? req.messages : [];
  const last = messages[messages.length - 1] as { role?: unknown } | undefined;
  if (last?.role === "tool") return undefined; // the tool answered: respond in text
  const tools = req.tools as { type?: string; function?: { name?: string; parameters?: unknown } }[];
  const forced =
    typeof req.tool_choice === "object" && req.tool_choice !== null
      ? (req.tool_choice as { function?: { name?: string } }).function?.name
      : undefined;
  const tool = (forced ? tools.find((t) => t.function?.name === forced) : tools[0])?.function;
  return tool?.name ? { name: tool.name, parameters: tool.parameters } : undefined;
}

function exampleArgs(parameters: unknown): string {
  const out: Record<string, unknown> = {};
  const schema = parameters as { properties?: Record<string, { type?: string; enum?: unknown[] }>; required?: string[] } | undefined;
  for (const name of schema?.required ?? Object.keys(schema?.properties ?? {})) {
    const p = schema?.properties?.[name];
    out[name] = p?.enum?.[0] ?? (p?.type === "number" || p?.type === "integer" ? 1 : p?.type === "boolean" ? true : `example ${name}`);
  }
  return JSON.stringify(out);
}

function answerFor(req: ChatRequest, maxTokens: number, toolArguments: SimulatorContext["toolArguments"]): Answer {
  const seed = JSON.stringify(req.messages ?? null);
  const tool = pickTool(req);
  if (tool) {
    const scripted = toolArguments?.[tool.name];
    const args = scripted ? JSON.stringify(scripted) : exampleArgs(tool.parameters);
    return {
      kind: "tool",
      id: `call_${sha256Hex(seed).slice(0, 24)}`,
      name: tool.name,
      args,
      tokens: countTokens(args) + countTokens(tool.name),
    };
  }
  const messages = Array.isArray(req.messages) ? req.messages : [];
  const last = messages[messages.length - 1] as { role?: unknown; content?: unknown } | undefined;
  if (last?.role === "tool" && typeof last.content === "string") {
    const tokens = (`The tool returned: ${last.content}`.match(/\S+\s*/g) ?? []).slice(0, maxTokens);
    return { kind: "text", tokens };
  }
  return { kind: "text", tokens: generateTokens(seed, maxTokens) };
}

function tokenCount(answer: Answer): number {
  return answer.kind === "text" ? countTokens(answer.tokens.join("")) : answer.tokens;
}

function usageObject(prompt: number, completion: number, cached = 0) {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

/** The usage after `completion` tokens, with the thinking reported the flavour's way (it is in `completion_tokens` already). */
function usageOf(plan: ChatPlan, flavor: string | undefined, completion: number) {
  const usage = usageObject(plan.prompt, completion, plan.cached);
  return plan.thought ? reasoningUsage(usage, Math.min(completion, plan.thinkingTokens), flavor) : usage;
}

function finishReason(plan: ChatPlan): string {
  return plan.answer.kind === "tool" ? "tool_calls" : plan.completion >= plan.maxTokens ? "length" : "stop";
}

/** The served model, or undefined once the request got the 404 or 400 the real server gives. */
function admitChat(ctx: SimulatorContext, res: ServerResponse, body: ChatRequest): SimulatorModel | undefined {
  const served = typeof body.model === "string" ? ctx.models.find((m) => m.id === body.model) : undefined;
  if (!served) return void sendUnknownModel(res, body.model);
  const refused = flavorRefusal(ctx.flavor, served, body);
  if (refused) return void sendJson(res, refused.status, refused.body);
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return void sendJson(res, 400, errorBody("'messages' must be a non-empty array.", "invalid_request_error", null, "messages"));
  }
  return served;
}

/** Decides the answer (its reasoning, text or tool call, and usage), or the 400 for a reasoning effort the flavour refuses. */
function planChat(
  ctx: SimulatorContext,
  body: ChatRequest,
  served: SimulatorModel,
  fault: SimulatorFault | undefined,
): ChatPlan | { error: unknown } {
  // Ollama's OpenAI endpoint reads only `max_tokens` (it ignores `max_completion_tokens`).
  const requested = ctx.flavor === "ollama" ? body.max_tokens : (body.max_completion_tokens ?? body.max_tokens);
  const maxTokens = typeof requested === "number" && Number.isSafeInteger(requested) && requested > 0 ? requested : ctx.defaultMaxTokens;
  const thought = simulatedReasoning(body as Record<string, unknown>, maxTokens, {
    flavor: ctx.flavor,
    always: ctx.reasoning,
    thinkingModel: served.thinking,
    member: ctx.reasoningMember,
  });
  if (thought && "error" in thought) return { error: thought.error };
  const thinking = thought ? generateTokens(`reasoning:${JSON.stringify(body.messages ?? null)}`, thought.tokens) : [];
  const thinkingTokens = countTokens(thinking.join(""));
  const answer = answerFor(body, maxTokens - thinking.length, ctx.toolArguments);
  const prompt = countPromptTokens(body.messages);
  const cached = ctx.prefixCache ? ctx.prefixCache.serve(chatPromptSequence(String(body.model), body.messages)) : 0;
  const completion = tokenCount(answer) + thinkingTokens;
  const id = `chatcmpl-${toBase64Url(randomBytes(18))}`;
  const base = {
    id,
    object: "chat.completion.chunk",
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    service_tier: "default",
    system_fingerprint: FINGERPRINT,
  };
  return { body, fault, maxTokens, thought, thinking, thinkingTokens, answer, prompt, cached, completion, base };
}

/** The whole answer as one `chat.completion` object, after the time generating it takes. */
async function sendCompletion(ctx: SimulatorContext, res: ServerResponse, plan: ChatPlan): Promise<void> {
  const { answer, thought, fault } = plan;
  const message =
    answer.kind === "text"
      ? { role: "assistant", content: answer.tokens.join(""), refusal: null, annotations: [] }
      : {
          role: "assistant",
          content: null,
          tool_calls: [{ id: answer.id, type: "function", function: { name: answer.name, arguments: answer.args } }],
          refusal: null,
          annotations: [],
        };
  if (thought) Object.assign(message, { [thought.member]: plan.thinking.join("") });
  const tps = ctx.tokensPerSecond();
  if (tps > 0) await sleep((plan.completion * 1000) / tps);
  if (fault?.kind === "error_before_first_token" || fault?.kind === "drop_mid_stream") {
    res.socket?.destroy();
    return;
  }
  return sendJson(res, 200, {
    id: plan.base.id,
    object: "chat.completion",
    created: plan.base.created,
    model: plan.body.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(plan) }],
    usage: usageOf(plan, ctx.flavor, plan.completion),
    service_tier: "default",
    system_fingerprint: FINGERPRINT,
  });
}

/** The deltas of a stream in order; `paced` ones are tokens (counted, paced, and not sent once the connection is gone). */
function streamDeltas(plan: ChatPlan, flavor: string | undefined): { delta: unknown; paced: boolean }[] {
  const { answer, thought } = plan;
  const thinking = thought ? plan.thinking.map((token) => ({ delta: reasoningDelta(thought, token, flavor), paced: true })) : [];
  if (answer.kind === "text") {
    return [
      { delta: { role: "assistant", content: "", refusal: null }, paced: false },
      ...thinking,
      ...answer.tokens.map((token) => ({ delta: { content: token }, paced: true })),
    ];
  }
  const head = {
    role: "assistant",
    content: null,
    tool_calls: [{ index: 0, id: answer.id, type: "function", function: { name: answer.name, arguments: "" } }],
    refusal: null,
  };
  const pieces = (answer.args.match(/.{1,8}/gs) ?? []).map((piece) => ({
    delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] },
    paced: true,
  }));
  return [...thinking, { delta: head, paced: false }, ...pieces];
}

/** The answer as server-sent `chat.completion.chunk` events, paced at the simulator's speed. */
async function streamCompletion(ctx: SimulatorContext, res: ServerResponse, plan: ChatPlan): Promise<void> {
  const { body, fault, base } = plan;
  const includeUsage = body.stream_options?.include_usage === true;
  // vLLM's `continuous_usage_stats`: every chunk carries the usage so far.
  const continuous = includeUsage && body.stream_options?.continuous_usage_stats === true;
  let produced = 0;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-srp-simulator": "1",
  });
  const write = (obj: unknown) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  const chunk = (delta: unknown, finish: string | null) =>
    write({
      ...base,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: continuous ? usageOf(plan, ctx.flavor, produced) : null } : {}),
    });
  if (fault?.kind === "error_before_first_token") {
    write(errorBody("The simulator was told to fail before the first token.", "server_error", null));
    res.end();
    return;
  }
  const pace = pacer(res, ctx.tokensPerSecond(), fault?.kind === "drop_mid_stream" ? (fault.afterTokens ?? 3) : Infinity);
  for (const { delta, paced } of streamDeltas(plan, ctx.flavor)) {
    if (!paced) {
      chunk(delta, null);
      continue;
    }
    if (pace.closed()) return;
    produced++;
    chunk(delta, null);
    await pace.next();
  }
  if (pace.closed()) return;
  chunk({}, finishReason(plan));
  if (includeUsage) write({ ...base, choices: [], usage: usageOf(plan, ctx.flavor, plan.completion) });
  res.write("data: [DONE]\n\n");
  res.end();
}

/** Serves one `POST /v1/chat/completions`. */
export async function serveChat(ctx: SimulatorContext, res: ServerResponse, body: ChatRequest): Promise<void> {
  ctx.record(body as Record<string, unknown>);
  const served = admitChat(ctx, res, body);
  if (!served) return;
  const fault = ctx.takeFault();
  if (fault?.kind === "hang") return; // never answered; the client's abort closes it
  if (ctx.latencyMs > 0) await sleep(ctx.latencyMs);
  if (fault?.kind === "status") {
    const status = fault.status ?? 500;
    return sendJson(
      res,
      status,
      errorBody("The simulator was told to fail this request.", status === 429 ? "rate_limit_error" : "server_error", null),
    );
  }
  const plan = planChat(ctx, body, served, fault);
  if ("error" in plan) return sendJson(res, 400, plan.error);
  return body.stream !== true ? sendCompletion(ctx, res, plan) : streamCompletion(ctx, res, plan);
}
