/**
 * Any OpenAI-compatible chat server: Ollama, LM Studio, vLLM, llama.cpp server, the
 * SRP simulator, or OpenAI itself with a forwarded key (the key stays on the node).
 */
import { parseSse } from "@srp/core";
import type { BackendKind } from "@srp/core/schema";
import { Agent, request as undiciRequest } from "undici";
import {
  BackendError,
  classifyUpstreamStatus,
  type Backend,
  type BackendApi,
  type BackendModel,
  type ChatCallOptions,
  type ChatResult,
} from "./types.js";
import { honoursSuffix, nativeTextApis, wantsSuffix, type NativeTextApi } from "./native-apis.js";
import { reasoningSwitch, responsesReasoningSwitch } from "./reasoning-switch.js";

/** Options of {@link openAICompatibleBackend}. */
export interface OpenAICompatibleOptions {
  /** Base URL including `/v1`, e.g. `http://127.0.0.1:11434/v1`. */
  baseUrl: string;
  /** Bearer key, for servers that need one (forwarded OpenAI keys). Never leaves the node. */
  apiKey?: string;
  /** Kind reported in offers; default `openai-compatible`. */
  kind?: BackendKind;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** `fetch` implementation; by default requests go through undici's pooled keep-alive client (faster than `fetch`). */
  fetch?: typeof fetch;
  /**
   * Ask for usage in every stream chunk (`stream_options.continuous_usage_stats`), which
   * vLLM supports: then a consumer who leaves mid-stream pays for what was delivered.
   * Default: true for `kind: "vllm"`, false otherwise (other servers may reject the member).
   */
  continuousUsage?: boolean;
  /**
   * Send a request's `max_completion_tokens` as `max_tokens` too when it has no `max_tokens`
   * (SRP-JOB-022): Ollama's OpenAI endpoint (and older local servers) read only `max_tokens`,
   * and would otherwise run past the consumer's limit. Default: true for local server kinds,
   * or any kind at a loopback or private address; false for hosted
   * APIs (OpenAI's o-series refuse `max_tokens`).
   */
  mirrorMaxTokens?: boolean;
  /**
   * The text APIs the server serves itself besides chat completions (`responses`,
   * `completions`); default: those the kind serves natively (none for an unrecognised
   * `openai-compatible` server). Setup records what it detected (the server's version).
   */
  apis?: readonly NativeTextApi[];
}

/** Backend kinds that are servers the node runs itself (they read `max_tokens`). */
const LOCAL_KINDS: ReadonlySet<BackendKind> = new Set(["ollama", "vllm", "lmstudio", "llamacpp"]);

/** Whether a host name is this machine or a private network's: localhost, loopback, RFC 1918, link-local, IPv6 ULA. */
function isLocalHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h === "::1" || h === "0.0.0.0") return true;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/.exec(h.startsWith("::ffff:") ? h.slice(7) : h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254);
  }
  return /^f[cd][0-9a-f]{0,2}:/.test(h) || /^fe[89ab][0-9a-f]?:/.test(h);
}

/**
 * Whether a backend's requests copy `max_completion_tokens` into `max_tokens` by default
 * (SRP-JOB-022): for the local server kinds (`ollama`, `lmstudio`, `vllm`, `llamacpp`), and
 * for a server of any other kind at a loopback or private address (a local server not
 * recognised); never for a hosted endpoint (a `--backend-url` at a public host is detected
 * as `openai-compatible`, and hosted reasoning models refuse `max_tokens`).
 *
 * @example
 * mirrorsMaxTokens("openai-compatible", "https://api.example.com/v1"); // false
 * mirrorsMaxTokens("openai-compatible", "http://192.168.1.20:8000/v1"); // true
 */
export function mirrorsMaxTokens(kind: BackendKind, baseUrl: string): boolean {
  if (LOCAL_KINDS.has(kind)) return true;
  try {
    return isLocalHost(new URL(baseUrl).hostname);
  } catch {
    return false;
  }
}

/**
 * The chat request a local backend is sent (SRP-JOB-022): with `max_tokens` set to the
 * request's `max_completion_tokens` when only the latter is given, so that a server that
 * reads only `max_tokens` honours the consumer's output limit. The job's request (and its
 * hash) is unchanged; only the backend request carries the copy.
 */
function withMaxTokens(request: Record<string, unknown>): Record<string, unknown> {
  const limit = request.max_completion_tokens;
  if (typeof limit !== "number" || (request.max_tokens !== undefined && request.max_tokens !== null)) return request;
  return { ...request, max_tokens: limit };
}

/** One HTTP answer, whichever client made it. */
interface Reply {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
  json(): Promise<unknown>;
  bytes(): Promise<Uint8Array>;
  body: AsyncIterable<Uint8Array> | null;
}

/** One HTTP request. */
interface Send {
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
}

/** The shared connection pool of undici requests (keep-alive, per origin). */
const POOL = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 256 });

async function viaUndici(url: string, init: Send): Promise<Reply> {
  const r = await undiciRequest(url, {
    method: init.method as "GET" | "POST",
    headers: init.headers,
    body: init.body ?? null,
    dispatcher: POOL,
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const header = (name: string) => {
    const v = r.headers[name.toLowerCase()];
    return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
  };
  return {
    status: r.statusCode,
    headers: { get: header },
    text: () => r.body.text(),
    json: () => r.body.json(),
    bytes: async () => new Uint8Array(await r.body.arrayBuffer()),
    body: r.body,
  };
}

function viaFetch(doFetch: typeof fetch) {
  return async (url: string, init: Send): Promise<Reply> => {
    const r = await doFetch(url, {
      method: init.method,
      headers: init.headers,
      ...(init.body === undefined ? {} : { body: init.body }),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    return {
      status: r.status,
      headers: r.headers,
      text: () => r.text(),
      json: () => r.json(),
      bytes: async () => new Uint8Array(await r.arrayBuffer()),
      body: r.body as AsyncIterable<Uint8Array> | null,
    };
  };
}

/** Path of each API below the base URL. */
const API_PATHS: Record<Exclude<BackendApi, "messages">, string> = {
  embeddings: "/embeddings",
  "images.generations": "/images/generations",
  "audio.speech": "/audio/speech",
  "audio.transcriptions": "/audio/transcriptions",
  responses: "/responses",
  completions: "/completions",
};

/** The APIs whose requests stream when `request.stream` is true (the others answer whole). */
const STREAMING_APIS: ReadonlySet<BackendApi> = new Set(["responses", "completions"]);

/**
 * A transcription job's body (`file` as `{filename, content_type, data}` with the audio
 * in base64, the other members as form fields) as the multipart form OpenAI takes.
 */
async function transcriptionForm(request: Record<string, unknown>): Promise<{ body: Uint8Array; contentType: string }> {
  const file = request.file as { filename?: unknown; content_type?: unknown; data?: unknown } | undefined;
  if (typeof file !== "object" || file === null || typeof file.data !== "string")
    throw new BackendError("job.invalid_request", "a transcription needs `file` with base64 `data`");
  const form = new FormData();
  const type = typeof file.content_type === "string" ? file.content_type : "application/octet-stream";
  form.append("file", new Blob([Buffer.from(file.data, "base64")], { type }), typeof file.filename === "string" ? file.filename : "audio");
  for (const [k, v] of Object.entries(request)) {
    if (k === "file" || v === undefined || v === null) continue;
    if (Array.isArray(v)) for (const item of v) form.append(`${k}[]`, String(item));
    else form.append(k, typeof v === "object" ? JSON.stringify(v) : String(v));
  }
  const encoded = new Response(form);
  return { body: new Uint8Array(await encoded.arrayBuffer()), contentType: encoded.headers.get("content-type")! };
}

async function errorText(res: Reply): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string };
    const m = typeof body.error === "string" ? body.error : body.error?.message;
    if (typeof m === "string") return m.slice(0, 1000);
  } catch {
    /* not JSON */
  }
  return text.slice(0, 1000) || `HTTP ${res.status}`;
}

/** Turns a thrown fetch/network error into a BackendError (aborts pass through). */
export function networkError(error: unknown, signal: AbortSignal): never {
  if (signal.aborted) throw signal.reason ?? error;
  if (error instanceof BackendError) throw error;
  throw new BackendError("job.upstream_error", `backend unreachable: ${(error as Error).message}`, undefined, { cause: error });
}

/**
 * Creates a backend for an OpenAI-compatible server.
 *
 * @example
 * const ollama = openAICompatibleBackend({ baseUrl: "http://127.0.0.1:11434/v1", kind: "ollama" });
 * const models = await ollama.listModels();
 */
export function openAICompatibleBackend(options: OpenAICompatibleOptions): Backend {
  const base = options.baseUrl.replace(/\/+$/, "");
  const send = options.fetch ? viaFetch(options.fetch) : viaUndici;
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const kind = options.kind ?? "openai-compatible";
  const continuousUsage = options.continuousUsage ?? kind === "vllm";
  const mirrorMaxTokens = options.mirrorMaxTokens ?? mirrorsMaxTokens(kind, base);
  const textApis: readonly NativeTextApi[] = options.apis ?? nativeTextApis(kind);

  const fail = async (res: Reply): Promise<never> => {
    const text = await errorText(res);
    throw new BackendError(classifyUpstreamStatus(res.status, text), text, res.status);
  };
  const readObject = async (res: Reply, signal: AbortSignal): Promise<Record<string, unknown>> => {
    let body: unknown;
    try {
      body = await res.json();
    } catch (error) {
      if (signal.aborted) throw signal.reason ?? error;
      throw new BackendError("job.upstream_error", "backend sent an unreadable response");
    }
    if (typeof body !== "object" || body === null || Array.isArray(body))
      throw new BackendError("job.upstream_error", "backend response is not a JSON object");
    return body as Record<string, unknown>;
  };

  return {
    kind,
    label: `${kind} at ${base}`,
    continuousUsage,
    apis: ["embeddings", "images.generations", "audio.speech", "audio.transcriptions", ...textApis],
    async run(api: BackendApi, request: Record<string, unknown>, { signal }: ChatCallOptions): Promise<ChatResult> {
      if (api === "messages") throw new BackendError("job.unsupported_api", `${kind} serves Messages requests as chat completions`);
      if ((api === "responses" || api === "completions") && !textApis.includes(api))
        throw new BackendError("job.unsupported_api", `${kind} at ${base} does not serve /v1/${api}`);
      // SRP-JOB-033: a server that would ignore or refuse `suffix` is not sent a fill-in-the-middle request.
      if (api === "completions" && wantsSuffix(request) && !honoursSuffix(kind)) {
        throw new BackendError("job.unsupported_api", `${kind} does not honour suffix (fill-in-the-middle) in /v1/completions`);
      }
      if (api === "responses") request = responsesReasoningSwitch(kind, request);
      const streams = STREAMING_APIS.has(api) && request.stream === true;
      if (streams && api === "completions" && continuousUsage) {
        const so = request.stream_options;
        request = {
          ...request,
          stream_options: { ...(typeof so === "object" && so !== null ? so : {}), include_usage: true, continuous_usage_stats: true },
        };
      }
      let init: Send;
      if (api === "audio.transcriptions") {
        const form = await transcriptionForm(request);
        init = {
          method: "POST",
          headers: { ...headers, "content-type": form.contentType, accept: "application/json" },
          body: form.body,
          signal,
        };
      } else {
        init = {
          method: "POST",
          headers: { ...headers, "content-type": "application/json", ...(streams ? { accept: "text/event-stream" } : {}) },
          body: JSON.stringify(request),
          signal,
        };
      }
      let res: Reply;
      try {
        res = await send(`${base}${API_PATHS[api]}`, init);
      } catch (error) {
        networkError(error, signal);
      }
      if (res.status < 200 || res.status > 299) return fail(res);
      if (streams) {
        if (!res.body) throw new BackendError("job.upstream_error", "backend sent no stream");
        return { kind: "stream", chunks: streamChunks(res.body, signal, api === "responses" ? "responses" : "chat") };
      }
      if (api === "audio.speech") {
        // Audio bytes travel base64 in the job's response; the hub serves them as they came.
        let bytes: Uint8Array;
        try {
          bytes = await res.bytes();
        } catch (error) {
          networkError(error, signal);
        }
        return {
          kind: "response",
          body: {
            object: "srp.audio",
            content_type: res.headers.get("content-type") ?? "application/octet-stream",
            data: Buffer.from(bytes).toString("base64"),
          },
        };
      }
      return { kind: "response", body: await readObject(res, signal) };
    },
    async listModels(signal?: AbortSignal): Promise<BackendModel[]> {
      const res = await send(`${base}/models`, { method: "GET", headers, ...(signal ? { signal } : {}) });
      if (res.status < 200 || res.status > 299)
        throw new BackendError("job.upstream_error", `GET /models: ${res.status} ${await errorText(res)}`, res.status);
      const body = (await res.json()) as { data?: { id?: unknown; context_length?: unknown; max_model_len?: unknown }[] };
      return (body.data ?? [])
        .filter((m) => typeof m.id === "string")
        .map((m) => {
          const ctx =
            typeof m.context_length === "number" ? m.context_length : typeof m.max_model_len === "number" ? m.max_model_len : undefined;
          return ctx === undefined ? { id: m.id as string } : { id: m.id as string, contextLength: ctx };
        });
    },
    async chat(request: Record<string, unknown>, { signal }: ChatCallOptions): Promise<ChatResult> {
      let res: Reply;
      request = reasoningSwitch(kind, request);
      if (mirrorMaxTokens) request = withMaxTokens(request);
      if (continuousUsage && request.stream === true) {
        const so = request.stream_options;
        request = {
          ...request,
          stream_options: { ...(typeof so === "object" && so !== null ? so : {}), include_usage: true, continuous_usage_stats: true },
        };
      }
      try {
        res = await send(`${base}/chat/completions`, {
          method: "POST",
          headers: {
            ...headers,
            "content-type": "application/json",
            accept: request.stream === true ? "text/event-stream" : "application/json",
          },
          body: JSON.stringify(request),
          signal,
        });
      } catch (error) {
        networkError(error, signal);
      }
      if (res.status < 200 || res.status > 299) return fail(res);
      if (request.stream !== true) return { kind: "response", body: await readObject(res, signal) };
      if (!res.body) throw new BackendError("job.upstream_error", "backend sent no stream");
      return { kind: "stream", chunks: streamChunks(res.body, signal) };
    },
  };
}

/** Events that end a Responses stream (it has no `[DONE]`). */
const RESPONSES_END: ReadonlySet<unknown> = new Set(["response.completed", "response.incomplete"]);

/**
 * The JSON objects of an SSE stream: chat and text completions (ended by `[DONE]`), or the
 * Responses API's events (ended by `response.completed` or `response.incomplete`; an
 * `error` or `response.failed` event is a backend failure, relayed as a job error).
 */
async function* streamChunks(
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  format: "chat" | "responses" = "chat",
): AsyncGenerator<Record<string, unknown>> {
  let finished = false;
  try {
    for await (const event of parseSse(body)) {
      if (event.data === "[DONE]") {
        finished = true;
        return;
      }
      let data: unknown;
      try {
        data = JSON.parse(event.data);
      } catch {
        throw new BackendError("job.upstream_error", "backend sent a stream event that is not JSON");
      }
      if (typeof data !== "object" || data === null || Array.isArray(data))
        throw new BackendError("job.upstream_error", "backend stream event is not a JSON object");
      const obj = data as Record<string, unknown>;
      if (format === "responses") {
        if (obj.type === "error" || obj.type === "response.failed")
          throw new BackendError("job.upstream_error", `backend stream error: ${responsesError(obj)}`);
        yield obj;
        if (RESPONSES_END.has(obj.type)) {
          finished = true;
          return;
        }
        continue;
      }
      if (obj.error !== undefined && obj.choices === undefined) {
        const e = obj.error as { message?: unknown; code?: unknown };
        throw new BackendError(
          "job.upstream_error",
          `backend stream error: ${typeof e?.message === "string" ? e.message : JSON.stringify(obj.error).slice(0, 500)}`,
        );
      }
      yield obj;
    }
  } catch (error) {
    networkError(error, signal);
  }
  if (!finished && !signal.aborted)
    throw new BackendError(
      "job.upstream_error",
      format === "responses" ? "backend stream ended without response.completed" : "backend stream ended without [DONE]",
    );
}

/** The message of a Responses stream's `error` or `response.failed` event. */
function responsesError(event: Record<string, unknown>): string {
  const nested =
    typeof event.response === "object" && event.response !== null
      ? (event.response as { error?: { message?: unknown } | null }).error
      : undefined;
  const m = typeof event.message === "string" ? event.message : nested && typeof nested.message === "string" ? nested.message : undefined;
  return (m ?? JSON.stringify(event)).slice(0, 1000);
}
