/**
 * The SRP Anthropic Messages simulator: a stand-in for the Anthropic API, **not
 * Anthropic and not a model**. It speaks the Messages wire format (`POST /v1/messages`,
 * JSON and SSE with the real event sequence, `GET /v1/models`, Anthropic's error shape),
 * answers with the same deterministic text as the model simulator, calls the first tool
 * when tools are given and the last turn is not a tool result, thinks first (a `thinking`
 * block, `reasoning.ts`) when `thinking` is enabled or adaptive, refuses unsigned thinking
 * blocks sent back, and reports honest usage.
 * Tests and demos use it as the upstream of a forwarded Anthropic key.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { randomBytes, sha256Hex, toBase64Url } from "@srp/core";
import { countTokens, generateTokens } from "./text.js";
import { anthropicSignatureRefusal, anthropicThinkingRefusal, anthropicThinkingTokens, simulatedSignature } from "./reasoning.js";
import { messagesPromptSequence, PrefixCache } from "./prefix-cache.js";

/** Options of {@link startAnthropicSimulator}. */
export interface AnthropicSimulatorOptions {
  /** The API key it accepts in `x-api-key` or as `authorization: Bearer`; default `sk-ant-sim`. */
  apiKey?: string;
  /** Models it serves; default `["claude-sim-1"]`. */
  models?: readonly string[];
  /** Port; default any free one. */
  port?: number;
  /**
   * Simulator feature: model Anthropic's prompt cache (`prefix-cache.ts`) for requests that
   * carry a `cache_control` mark: the tokens a prompt shares from its start with one of the
   * last prompts served (`true`: the last 64; a number: that many) are reported as
   * `cache_read_input_tokens` and left out of `input_tokens`. Default off.
   */
  prefixCache?: boolean | number;
}

/** A running Anthropic simulator. */
export interface AnthropicSimulator {
  /** Origin to use as the Anthropic base URL (without `/v1`). */
  readonly url: string;
  /** Bodies of the Messages requests received, oldest first (the last 100). */
  readonly requests: Record<string, unknown>[];
  /** Headers of the same requests. */
  readonly headers: Record<string, string | string[] | undefined>[];
  /** Makes the next `count` Messages requests fail with this HTTP status (Anthropic error body). */
  failNext(status: number, count?: number): void;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "request-id": `req_sim${toBase64Url(randomBytes(9))}`,
    "x-srp-simulator": "anthropic",
  });
  res.end(text);
}

function error(res: ServerResponse, status: number, message: string): void {
  send(res, status, { type: "error", error: { type: ERROR_TYPES[status] ?? "api_error", message } });
}

/** Tokens of a Messages request the simulator counts as input: its text, 4 per turn, 85 per image. */
function inputTokens(body: Json): number {
  let total = 0;
  const text = (v: unknown): void => {
    if (typeof v === "string") total += countTokens(v);
    else if (Array.isArray(v))
      for (const b of v) {
        if (!isObject(b)) continue;
        if (b.type === "text") text(b.text);
        else if (b.type === "tool_result") text(b.content);
        else if (b.type === "tool_use") total += countTokens(JSON.stringify(b.input ?? {}));
        else total += 85;
      }
  };
  text(body.system);
  for (const m of Array.isArray(body.messages) ? body.messages : []) {
    total += 4;
    if (isObject(m)) text(m.content);
  }
  if (Array.isArray(body.tools)) total += countTokens(JSON.stringify(body.tools));
  return total;
}

function exampleInput(schema: unknown): Json {
  const s = isObject(schema) ? schema : {};
  const props = isObject(s.properties) ? s.properties : {};
  const out: Json = {};
  for (const name of Array.isArray(s.required) ? (s.required as string[]) : Object.keys(props)) {
    const p = isObject(props[name]) ? (props[name] as Json) : {};
    out[name] = Array.isArray(p.enum)
      ? p.enum[0]
      : p.type === "number" || p.type === "integer"
        ? 1
        : p.type === "boolean"
          ? true
          : `example ${name}`;
  }
  return out;
}

/** Whether a Messages body asks for caching: a `cache_control` mark on a tool, a system block or a message block. */
function marksCache(body: Json): boolean {
  const marked = (v: unknown) => Array.isArray(v) && v.some((b) => isObject(b) && b.cache_control !== undefined);
  return (
    marked(body.tools) ||
    marked(body.system) ||
    (Array.isArray(body.messages) && body.messages.some((m) => isObject(m) && marked(m.content)))
  );
}

/** The message the simulated model answers; `cached`: prompt tokens read from the simulated cache (the usage then reports cache reads). */
function answer(body: Json, model: string, cached?: number): Json {
  const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
  const last = messages.at(-1);
  const lastBlocks = Array.isArray(last?.content) ? (last.content as Json[]) : [];
  const answeredTool = lastBlocks.some((b) => isObject(b) && b.type === "tool_result");
  const tools = Array.isArray(body.tools) ? (body.tools as Json[]) : [];
  const choice = isObject(body.tool_choice) ? body.tool_choice : {};
  const maxTokens = typeof body.max_tokens === "number" ? body.max_tokens : 16;
  const id = `msg_sim${sha256Hex(JSON.stringify(messages)).slice(0, 20)}`;
  const base = { id, type: "message", role: "assistant", model, stop_sequence: null };
  const total = inputTokens(body);
  const input = total - (cached ?? 0);
  const cacheCounts = cached === undefined ? {} : { cache_creation_input_tokens: 0, cache_read_input_tokens: cached };
  // Extended or adaptive thinking (`thinking: {type: "enabled"}`, `{type: "adaptive"}`): a thinking block first, counted as output.
  const thinkingCount = anthropicThinkingTokens(body);
  const thinkingText = thinkingCount === undefined ? "" : generateTokens(`thinking:${JSON.stringify(messages)}`, thinkingCount).join("");
  const thought =
    thinkingCount === undefined ? [] : [{ type: "thinking", thinking: thinkingText, signature: simulatedSignature(thinkingText) }];
  const thoughtTokens = countTokens(thinkingText);
  if (tools.length > 0 && !answeredTool && choice.type !== "none") {
    const tool = (choice.type === "tool" ? tools.find((t) => t.name === choice.name) : tools[0]) ?? tools[0]!;
    const toolInput = exampleInput(tool.input_schema);
    const toolId = `toolu_sim${sha256Hex(id).slice(0, 20)}`;
    const output = countTokens(JSON.stringify(toolInput)) + countTokens(String(tool.name));
    return {
      ...base,
      content: [...thought, { type: "tool_use", id: toolId, name: tool.name, input: toolInput }],
      stop_reason: "tool_use",
      usage: { input_tokens: input, ...cacheCounts, output_tokens: thoughtTokens + output },
    };
  }
  const result = lastBlocks.find((b) => isObject(b) && b.type === "tool_result");
  const words = result
    ? (
        `The tool returned: ${typeof result.content === "string" ? result.content : JSON.stringify(result.content)}`.match(/\S+\s*/g) ?? []
      ).slice(0, maxTokens)
    : generateTokens(JSON.stringify(messages), maxTokens - (thinkingCount ?? 0));
  const text = words.join("");
  const output = thoughtTokens + countTokens(text);
  return {
    ...base,
    content: [...thought, { type: "text", text }],
    stop_reason: output >= maxTokens ? "max_tokens" : "end_turn",
    usage: { input_tokens: input, ...cacheCounts, output_tokens: output },
  };
}

function event(res: ServerResponse, data: Json): void {
  res.write(`event: ${String(data.type)}\ndata: ${JSON.stringify(data)}\n\n`);
}

function stream(res: ServerResponse, message: Json): void {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "request-id": `req_sim${toBase64Url(randomBytes(9))}`,
    "x-srp-simulator": "anthropic",
  });
  const usage = message.usage as Json;
  event(res, { type: "message_start", message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } } });
  event(res, { type: "ping" });
  (message.content as Json[]).forEach((block, index) => {
    if (block.type === "text") {
      event(res, { type: "content_block_start", index, content_block: { type: "text", text: "" } });
      for (const piece of String(block.text).match(/\S+\s*/g) ?? [])
        event(res, { type: "content_block_delta", index, delta: { type: "text_delta", text: piece } });
    } else if (block.type === "thinking") {
      event(res, { type: "content_block_start", index, content_block: { type: "thinking", thinking: "", signature: "" } });
      for (const piece of String(block.thinking).match(/\S+\s*/g) ?? [])
        event(res, { type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: piece } });
      event(res, { type: "content_block_delta", index, delta: { type: "signature_delta", signature: block.signature } });
    } else {
      event(res, { type: "content_block_start", index, content_block: { ...block, input: {} } });
      const json = JSON.stringify(block.input);
      for (let i = 0; i < json.length; i += 8)
        event(res, { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: json.slice(i, i + 8) } });
    }
    event(res, { type: "content_block_stop", index });
  });
  event(res, {
    type: "message_delta",
    delta: { stop_reason: message.stop_reason, stop_sequence: null },
    usage: { output_tokens: usage.output_tokens },
  });
  event(res, { type: "message_stop" });
  res.end();
}

/**
 * Starts the Anthropic simulator on loopback.
 *
 * @example
 * const sim = await startAnthropicSimulator();
 * const res = await fetch(`${sim.url}/v1/messages`, {
 *   method: "POST",
 *   headers: { "content-type": "application/json", "x-api-key": "sk-ant-sim", "anthropic-version": "2023-06-01" },
 *   body: JSON.stringify({ model: "claude-sim-1", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
 * });
 * await sim.close();
 */
export async function startAnthropicSimulator(options: AnthropicSimulatorOptions = {}): Promise<AnthropicSimulator> {
  const apiKey = options.apiKey ?? "sk-ant-sim";
  const models = options.models ?? ["claude-sim-1"];
  const prefixCache = options.prefixCache
    ? new PrefixCache(typeof options.prefixCache === "number" ? options.prefixCache : undefined)
    : undefined;
  const requests: Json[] = [];
  const headers: Record<string, string | string[] | undefined>[] = [];
  const sockets = new Set<Socket>();
  let failing: { status: number; count: number } | undefined;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let raw = "";
    for await (const piece of req) raw += String(piece);
    const path = (req.url ?? "/").split("?")[0];
    // The key in `x-api-key`, or as a bearer token (newer Anthropic SDKs send `authorization: Bearer`).
    if (req.headers["x-api-key"] !== apiKey && req.headers.authorization !== `Bearer ${apiKey}`)
      return error(res, 401, "invalid x-api-key");
    if (req.method === "GET" && path === "/v1/models") {
      return send(res, 200, {
        data: models.map((id) => ({ type: "model", id, display_name: id, created_at: "2025-01-01T00:00:00Z" })),
        has_more: false,
        first_id: models[0] ?? null,
        last_id: models.at(-1) ?? null,
      });
    }
    if (req.method !== "POST" || path !== "/v1/messages") return error(res, 404, `no route ${req.method} ${path}`);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return error(res, 400, "the body is not JSON");
    }
    if (!isObject(body)) return error(res, 400, "the body is not an object");
    requests.push(body);
    headers.push({ ...req.headers });
    if (requests.length > 100) {
      requests.shift();
      headers.shift();
    }
    if (failing) {
      const { status } = failing;
      if (--failing.count <= 0) failing = undefined;
      return error(res, status, "the simulator was told to fail this request");
    }
    if (typeof body.model !== "string" || !models.includes(body.model)) return error(res, 404, `model: ${String(body.model)}`);
    if (typeof body.max_tokens !== "number" || !Array.isArray(body.messages) || body.messages.length === 0)
      return error(res, 400, "max_tokens and messages are required");
    const refusal = anthropicThinkingRefusal(body) ?? anthropicSignatureRefusal(body);
    if (refusal) return error(res, 400, refusal);
    const message = answer(
      body,
      body.model,
      prefixCache && marksCache(body) ? prefixCache.serve(messagesPromptSequence(body.model, body)) : undefined,
    );
    if (body.stream === true) return stream(res, message);
    send(res, 200, message);
  };
  const server: Server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    headers,
    failNext(status, count = 1) {
      failing = { status, count };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
