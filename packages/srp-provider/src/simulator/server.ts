/**
 * The SRP model simulator: a stand-in for a local model server, **not a model**. It
 * speaks OpenAI's chat completions wire format byte for byte (plus Ollama's `/api/tags`,
 * and OpenAI's embeddings, image generation, speech and transcription endpoints),
 * answers with deterministic text, reports honest usage for that text, and can inject the
 * faults the relay must survive. Tests, benchmarks and `npm start` use it when no real
 * Ollama, vLLM, LM Studio or llama.cpp server is running.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import { MODALITIES, transcribe } from "./modalities.js";
import { errorBody, sendJson } from "./http.js";
import { flavorRefusal, flavorServes, flavorTakesBody, serveFlavorMetadata, type FlavorModelMetadata, type SimulatorFlavor } from "./flavors.js";
import { serveCompletions } from "./completions.js";
import { serveResponses } from "./responses.js";
import type { SimulatorContext } from "./context.js";
import type { AddressInfo, Socket } from "node:net";
import { randomBytes, sha256Hex, toBase64Url } from "@srp/core";
import { countPromptTokens, countTokens, generateTokens } from "./text.js";
import { reasoningDelta, reasoningUsage, simulatedReasoning, type ReasoningMember } from "./reasoning.js";
import { chatPromptSequence, PrefixCache } from "./prefix-cache.js";

/** A fault the simulator injects into the requests it serves. */
export type SimulatorFault =
  /** HTTP 200 and a stream that carries an `error` event before any token. */
  | { kind: "error_before_first_token" }
  /** The connection is destroyed after `afterTokens` tokens (default 3). */
  | { kind: "drop_mid_stream"; afterTokens?: number }
  /** An HTTP error status with an OpenAI error body (default 500). */
  | { kind: "status"; status?: number }
  /** The request is accepted and never answered. */
  | { kind: "hang" };

/**
 * One model the simulator serves. The metadata members (family, quantization, tools,
 * vision, embedding...) are what a flavoured simulator reports through its server's
 * metadata endpoints; with a `flavor`, a chat request the real server would refuse
 * (tools for a model with `tools: false`, images for `vision: false`, any chat for an
 * embedding model) gets that server's 400.
 */
export interface SimulatorModel extends FlavorModelMetadata {
  /** Model id, e.g. `sim-llama-3-8b`. */
  id: string;
  /** Context length reported to setup; default 8192. */
  contextLength?: number;
}

/** Options of {@link startSimulator}. */
export interface SimulatorOptions {
  /** Port; default 0 (any free port). */
  port?: number;
  /** Host; default 127.0.0.1. */
  host?: string;
  /** Models served; default one model, `sim-llama-3-8b`. */
  models?: readonly SimulatorModel[];
  /** Generation speed in tokens per second; 0 means as fast as possible. Default 0. */
  tokensPerSecond?: number;
  /** Delay before the first byte of every answer, in ms; default 0. */
  latencyMs?: number;
  /** Completion length when the request sets no `max_tokens`; default 24. */
  defaultMaxTokens?: number;
  /**
   * Stand in for this server's metadata endpoints (`ollama`, `lmstudio`, `vllm`,
   * `llamacpp`); default none (then it answers `/v1/models` and Ollama's `/api/tags`).
   * As real Ollama does, the `ollama` flavour's chat endpoint ignores `max_completion_tokens`
   * (only `max_tokens` limits its answer).
   */
  flavor?: SimulatorFlavor;
  /** Slots a `llamacpp` flavour reports (`total_slots`); default 1. */
  slots?: number;
  /**
   * Simulator feature: model a prefix cache (`prefix-cache.ts`), reporting as
   * `usage.prompt_tokens_details.cached_tokens` the tokens a prompt shares from its start with
   * one of the last prompts served (`true`: the last 64; a number: that many), as vLLM with
   * prefix caching and llama.cpp do. Default off (cached tokens are always 0).
   */
  prefixCache?: boolean | number;
  /**
   * Arguments the simulated model passes when it calls a tool, by tool name (e.g.
   * `{ exec_command: { cmd: "cat answer.txt" } }` to have an agent run one command); a tool
   * not named here gets placeholder arguments built from its schema.
   */
  toolArguments?: Readonly<Record<string, Record<string, unknown>>>;
  /**
   * Reasoning mode (`reasoning.ts`): every chat request thinks first (as at this effort, when
   * one is named: `low` 8 tokens, `medium` 16, `high` 32) unless it sets a `reasoning_effort`
   * itself (`none`: no thinking) or `think: false`. Without it, a request reasons when it sets
   * a `reasoning_effort` (or `think: true`), or its model has `thinking: true`.
   */
  reasoning?: boolean | "low" | "medium" | "high";
  /** The member reasoning is streamed in; default `reasoning` for the `ollama` flavour, else `reasoning_content` (vLLM, DeepSeek). */
  reasoningMember?: ReasoningMember;
}

/** A running simulator. */
export interface Simulator {
  /** Base URL of its OpenAI-compatible API, e.g. `http://127.0.0.1:11500/v1`. */
  readonly baseUrl: string;
  /** Root URL (where `/api/tags` lives). */
  readonly url: string;
  /** Bodies of the chat requests received, oldest first (the last 100). */
  readonly requests: Record<string, unknown>[];
  /** Requests currently open (streams in progress, hung requests). */
  readonly openRequests: number;
  /** Injects a fault into the next `count` chat requests (default: every request until cleared). */
  setFault(fault: SimulatorFault | undefined, count?: number): void;
  /** Changes the generation speed. */
  setTokensPerSecond(tps: number): void;
  /** Stops the server and drops every open connection. */
  close(): Promise<void>;
}

const FINGERPRINT = "fp_srpsim01";

interface ChatRequest {
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

function pickTool(req: ChatRequest): { name: string; parameters: unknown } | undefined {
  if (!Array.isArray(req.tools) || req.tools.length === 0 || req.tool_choice === "none") return undefined;
  const messages = Array.isArray(req.messages) ? req.messages : [];
  const last = messages[messages.length - 1] as { role?: unknown } | undefined;
  if (last?.role === "tool") return undefined; // the tool answered: respond in text
  const tools = req.tools as { type?: string; function?: { name?: string; parameters?: unknown } }[];
  const forced = typeof req.tool_choice === "object" && req.tool_choice !== null ? (req.tool_choice as { function?: { name?: string } }).function?.name : undefined;
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

function answerFor(req: ChatRequest, maxTokens: number, toolArguments?: SimulatorOptions["toolArguments"]): Answer {
  const seed = JSON.stringify(req.messages ?? null);
  const tool = pickTool(req);
  if (tool) {
    const scripted = toolArguments?.[tool.name];
    const args = scripted ? JSON.stringify(scripted) : exampleArgs(tool.parameters);
    return { kind: "tool", id: `call_${sha256Hex(seed).slice(0, 24)}`, name: tool.name, args, tokens: countTokens(args) + countTokens(tool.name) };
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

/**
 * Starts the simulator on loopback.
 *
 * @example
 * const sim = await startSimulator({ tokensPerSecond: 50 });
 * const res = await fetch(`${sim.baseUrl}/chat/completions`, {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ model: "sim-llama-3-8b", messages: [{ role: "user", content: "hi" }] }),
 * });
 * await sim.close();
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const models = options.models ?? [{ id: "sim-llama-3-8b" }];
  let tps = options.tokensPerSecond ?? 0;
  const latencyMs = options.latencyMs ?? 0;
  const defaultMax = options.defaultMaxTokens ?? 24;
  const prefixCache = options.prefixCache ? new PrefixCache(typeof options.prefixCache === "number" ? options.prefixCache : undefined) : undefined;
  const requests: Record<string, unknown>[] = [];
  let fault: SimulatorFault | undefined;
  let faultCount = Infinity;
  let open = 0;
  const sockets = new Set<Socket>();
  const created = Math.floor(Date.now() / 1000);

  const takeFault = (): SimulatorFault | undefined => {
    if (!fault) return undefined;
    const f = fault;
    if (--faultCount <= 0) fault = undefined;
    return f;
  };

  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  async function chat(res: ServerResponse, body: ChatRequest): Promise<void> {
    requests.push(body as Record<string, unknown>);
    if (requests.length > 100) requests.shift();
    const served = typeof body.model === "string" ? models.find((m) => m.id === body.model) : undefined;
    if (!served) {
      return sendJson(res, 404, errorBody(`The model \`${String(body.model)}\` does not exist.`, "invalid_request_error", "model_not_found", "model"));
    }
    const refused = flavorRefusal(options.flavor, served, body);
    if (refused) return sendJson(res, refused.status, refused.body);
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return sendJson(res, 400, errorBody("'messages' must be a non-empty array.", "invalid_request_error", null, "messages"));
    }
    const f = takeFault();
    if (f?.kind === "hang") return; // never answered; the client's abort closes it
    if (latencyMs > 0) await sleep(latencyMs);
    if (f?.kind === "status") {
      const status = f.status ?? 500;
      return sendJson(res, status, errorBody("The simulator was told to fail this request.", status === 429 ? "rate_limit_error" : "server_error", null));
    }
    // Ollama's OpenAI endpoint reads only `max_tokens` (it ignores `max_completion_tokens`).
    const requested = options.flavor === "ollama" ? body.max_tokens : (body.max_completion_tokens ?? body.max_tokens);
    const maxTokens = typeof requested === "number" && Number.isSafeInteger(requested) && requested > 0 ? requested : defaultMax;
    const thought = simulatedReasoning(body as Record<string, unknown>, maxTokens, { flavor: options.flavor, always: options.reasoning, thinkingModel: served.thinking, member: options.reasoningMember });
    if (thought && "error" in thought) return sendJson(res, 400, thought.error);
    const thinking = thought ? generateTokens(`reasoning:${JSON.stringify(body.messages ?? null)}`, thought.tokens) : [];
    const thinkingTokens = countTokens(thinking.join(""));
    const answer = answerFor(body, maxTokens - thinking.length, options.toolArguments);
    const prompt = countPromptTokens(body.messages);
    const cached = prefixCache ? prefixCache.serve(chatPromptSequence(String(body.model), body.messages)) : 0;
    const completion = tokenCount(answer) + thinkingTokens;
    // The usage with the thinking reported the flavour's way (it is in completion_tokens already).
    const usageOf = (p: number, c: number, k: number) => (thought ? reasoningUsage(usageObject(p, c, k), Math.min(c, thinkingTokens), options.flavor) : usageObject(p, c, k));
    const id = `chatcmpl-${toBase64Url(randomBytes(18))}`;
    const model = body.model;
    const base = { id, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model, service_tier: "default", system_fingerprint: FINGERPRINT };

    if (body.stream !== true) {
      const message =
        answer.kind === "text"
          ? { role: "assistant", content: answer.tokens.join(""), refusal: null, annotations: [] }
          : { role: "assistant", content: null, tool_calls: [{ id: answer.id, type: "function", function: { name: answer.name, arguments: answer.args } }], refusal: null, annotations: [] };
      if (thought) Object.assign(message, { [thought.member]: thinking.join("") });
      if (tps > 0) await sleep((completion * 1000) / tps);
      if (f?.kind === "error_before_first_token" || f?.kind === "drop_mid_stream") {
        res.socket?.destroy();
        return;
      }
      return sendJson(res, 200, {
        id,
        object: "chat.completion",
        created: base.created,
        model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: answer.kind === "text" ? (completion >= maxTokens ? "length" : "stop") : "tool_calls" }],
        usage: usageOf(prompt, completion, cached),
        service_tier: "default",
        system_fingerprint: FINGERPRINT,
      });
    }

    const includeUsage = body.stream_options?.include_usage === true;
    // vLLM's `continuous_usage_stats`: every chunk carries the usage so far.
    const continuous = includeUsage && body.stream_options?.continuous_usage_stats === true;
    let produced = 0;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-srp-simulator": "1" });
    const write = (obj: unknown) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
    const chunk = (delta: unknown, finish: string | null) =>
      write({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...(includeUsage ? { usage: continuous ? usageOf(prompt, produced, cached) : null } : {}) });
    if (f?.kind === "error_before_first_token") {
      write(errorBody("The simulator was told to fail before the first token.", "server_error", null));
      res.end();
      return;
    }
    const dropAfter = f?.kind === "drop_mid_stream" ? (f.afterTokens ?? 3) : Infinity;
    const delay = tps > 0 ? 1000 / tps : 0;
    let closed = false;
    res.on("close", () => (closed = true));
    let sent = 0;
    const pace = async () => {
      sent++;
      if (sent >= dropAfter) {
        res.socket?.destroy();
        closed = true;
        return;
      }
      if (delay >= 1) await sleep(delay);
      else if (sent % 64 === 0) await new Promise<void>((r) => setImmediate(r));
    };
    if (answer.kind === "text") chunk({ role: "assistant", content: "", refusal: null }, null);
    for (const token of thought ? thinking : []) {
      if (closed || !thought) return;
      produced++;
      chunk(reasoningDelta(thought, token, options.flavor), null);
      await pace();
    }
    if (answer.kind === "text") {
      for (const token of answer.tokens) {
        if (closed) return;
        produced++;
        chunk({ content: token }, null);
        await pace();
      }
    } else {
      chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, id: answer.id, type: "function", function: { name: answer.name, arguments: "" } }], refusal: null }, null);
      for (const piece of answer.args.match(/.{1,8}/gs) ?? []) {
        if (closed) return;
        produced++;
        chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] }, null);
        await pace();
      }
    }
    if (closed) return;
    chunk({}, answer.kind === "tool" ? "tool_calls" : completion >= maxTokens ? "length" : "stop");
    if (includeUsage) write({ ...base, choices: [], usage: usageOf(prompt, completion, cached) });
    res.write("data: [DONE]\n\n");
    res.end();
  }

  // Legacy completions and the Responses API (completions.ts, responses.ts).
  const context: SimulatorContext = {
    flavor: options.flavor,
    models,
    defaultMaxTokens: defaultMax,
    latencyMs,
    tokensPerSecond: () => tps,
    takeFault,
    record: (body) => {
      requests.push(body);
      if (requests.length > 100) requests.shift();
    },
    reasoning: options.reasoning,
    prefixCache,
  };
  const textApis = { "/v1/completions": serveCompletions, "/v1/responses": serveResponses } as const;

  const knownModel = (model: unknown) => typeof model === "string" && models.some((m) => m.id === model);
  const unknownModel = (res: ServerResponse, model: unknown) =>
    sendJson(res, 404, errorBody(`The model \`${String(model)}\` does not exist.`, "invalid_request_error", "model_not_found", "model"));

  async function transcription(res: ServerResponse, raw: Buffer, contentType: string): Promise<void> {
    let form: FormData;
    try {
      form = await new Request("http://simulator/", { method: "POST", headers: { "content-type": contentType }, body: raw }).formData();
    } catch {
      return sendJson(res, 400, errorBody("The request is not a multipart form.", "invalid_request_error", null));
    }
    const fields: Record<string, unknown> = {};
    form.forEach((v, k) => (fields[k] = typeof v === "string" ? v : `<file ${v.size} bytes>`));
    requests.push(fields);
    if (requests.length > 100) requests.shift();
    const file = form.get("file");
    if (!knownModel(fields.model)) return unknownModel(res, fields.model);
    if (file === null || typeof file === "string") return sendJson(res, 400, errorBody("`file` is required.", "invalid_request_error", null, "file"));
    const f = takeFault();
    if (f?.kind === "status") return sendJson(res, f.status ?? 500, errorBody("The simulator was told to fail this request.", "server_error", null));
    if (f?.kind === "hang") return;
    transcribe(res, Buffer.from(await file.arrayBuffer()), fields);
  }

  const server: Server = createServer((req, res) => {
    open++;
    res.on("close", () => open--);
    const url = (req.url ?? "/").split("?")[0]!;
    const flavor = options.flavor;
    if (flavor && flavorTakesBody(flavor, req.method, url)) {
      const parts: Buffer[] = [];
      req.on("data", (c: Buffer) => parts.push(c));
      req.on("end", () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(parts).toString("utf8"));
        } catch {
          return sendJson(res, 400, { error: "invalid JSON" });
        }
        serveFlavorMetadata(flavor, models, options.slots ?? 1, created, req, res, url, body);
      });
      return;
    }
    if (flavor && serveFlavorMetadata(flavor, models, options.slots ?? 1, created, req, res, url)) return;
    if (flavor && req.method === "GET" && (url === "/v1/models" || url === "/api/tags")) {
      return sendJson(res, 404, errorBody(`Unknown request URL: ${req.method} ${url}.`, "invalid_request_error", "unknown_url"));
    }
    if (req.method === "GET" && url === "/v1/models") {
      return sendJson(res, 200, { object: "list", data: models.map((m) => ({ id: m.id, object: "model", created, owned_by: "srp-simulator" })) });
    }
    if (req.method === "GET" && url === "/api/tags") {
      return sendJson(res, 200, {
        models: models.map((m) => ({
          name: m.id,
          model: m.id,
          modified_at: new Date(created * 1000).toISOString(),
          size: 4_661_224_676,
          digest: sha256Hex(`srp-simulator/${m.id}`),
          details: { parent_model: "", format: "gguf", family: "simulator", families: ["simulator"], parameter_size: "8B", quantization_level: "Q4_0" },
        })),
      });
    }
    const modality = req.method === "POST" ? MODALITIES[url as keyof typeof MODALITIES] : undefined;
    const textApi = req.method === "POST" && flavorServes(flavor, url) ? textApis[url as keyof typeof textApis] : undefined;
    if ((req.method === "POST" && (url === "/v1/chat/completions" || url === "/v1/audio/transcriptions")) || modality || textApi) {
      const parts: Buffer[] = [];
      req.on("data", (c: Buffer) => parts.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(parts);
        if (url === "/v1/audio/transcriptions") {
          transcription(res, raw, String(req.headers["content-type"] ?? "")).catch(() => res.destroy());
          return;
        }
        let body: ChatRequest;
        try {
          body = JSON.parse(raw.toString("utf8")) as ChatRequest;
          if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an object");
        } catch {
          return sendJson(res, 400, errorBody("We could not parse the JSON body of your request.", "invalid_request_error", null));
        }
        if (textApi) return void textApi(context, res, body as Record<string, unknown>).catch(() => res.destroy());
        if (modality) {
          requests.push(body as Record<string, unknown>);
          if (requests.length > 100) requests.shift();
          if (!knownModel(body.model)) return unknownModel(res, body.model);
          const f = takeFault();
          if (f?.kind === "status") return sendJson(res, f.status ?? 500, errorBody("The simulator was told to fail this request.", "server_error", null));
          if (f?.kind === "hang") return;
          return modality(res, body as Record<string, unknown>);
        }
        chat(res, body).catch(() => res.destroy());
      });
      return;
    }
    sendJson(res, 404, errorBody(`Unknown request URL: ${req.method} ${url}.`, "invalid_request_error", "unknown_url"));
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  const url = `http://${host}:${port}`;
  return {
    url,
    baseUrl: `${url}/v1`,
    requests,
    get openRequests() {
      return open;
    },
    setFault(next, count) {
      fault = next;
      faultCount = count ?? Infinity;
    },
    setTokensPerSecond(next) {
      tps = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
