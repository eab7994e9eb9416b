/**
 * Any OpenAI-compatible chat server: Ollama, LM Studio, vLLM, llama.cpp server, the
 * SRP simulator, or OpenAI itself with a forwarded key (the key stays on the node).
 */
import { parseSse, type BackendKind } from "@srp/core";
import { BackendError, classifyUpstreamStatus, type Backend, type BackendModel, type ChatCallOptions, type ChatResult } from "./types.js";

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
  /** `fetch` implementation; default the global one. */
  fetch?: typeof fetch;
}

async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string };
    const m = typeof body.error === "string" ? body.error : body.error?.message;
    if (typeof m === "string") return m.slice(0, 1000);
  } catch {
    /* not JSON */
  }
  return text.slice(0, 1000) || res.statusText;
}

/** Turns a thrown fetch/network error into a BackendError (aborts pass through). */
export function networkError(error: unknown, signal: AbortSignal): never {
  if (signal.aborted) throw signal.reason ?? error;
  if (error instanceof BackendError) throw error;
  throw new BackendError("job.upstream_error", `backend unreachable: ${(error as Error).message}`);
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
  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const kind = options.kind ?? "openai-compatible";

  return {
    kind,
    label: `${kind} at ${base}`,
    async listModels(signal?: AbortSignal): Promise<BackendModel[]> {
      const res = await doFetch(`${base}/models`, { headers, ...(signal ? { signal } : {}) });
      if (!res.ok) throw new BackendError("job.upstream_error", `GET /models: ${res.status} ${await errorText(res)}`, res.status);
      const body = (await res.json()) as { data?: { id?: unknown; context_length?: unknown; max_model_len?: unknown }[] };
      return (body.data ?? [])
        .filter((m) => typeof m.id === "string")
        .map((m) => {
          const ctx = typeof m.context_length === "number" ? m.context_length : typeof m.max_model_len === "number" ? m.max_model_len : undefined;
          return ctx === undefined ? { id: m.id as string } : { id: m.id as string, contextLength: ctx };
        });
    },
    async chat(request: Record<string, unknown>, { signal }: ChatCallOptions): Promise<ChatResult> {
      let res: Response;
      try {
        res = await doFetch(`${base}/chat/completions`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json", accept: request.stream === true ? "text/event-stream" : "application/json" },
          body: JSON.stringify(request),
          signal,
        });
      } catch (error) {
        networkError(error, signal);
      }
      if (!res.ok) {
        const text = await errorText(res);
        throw new BackendError(classifyUpstreamStatus(res.status, text), text, res.status);
      }
      if (request.stream !== true) {
        let body: unknown;
        try {
          body = await res.json();
        } catch (error) {
          if (signal.aborted) throw signal.reason ?? error;
          throw new BackendError("job.upstream_error", "backend sent an unreadable response");
        }
        if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BackendError("job.upstream_error", "backend response is not a JSON object");
        return { kind: "response", body: body as Record<string, unknown> };
      }
      if (!res.body) throw new BackendError("job.upstream_error", "backend sent no stream");
      return { kind: "stream", chunks: streamChunks(res.body, signal) };
    },
  };
}

async function* streamChunks(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<Record<string, unknown>> {
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
      if (typeof data !== "object" || data === null || Array.isArray(data)) throw new BackendError("job.upstream_error", "backend stream event is not a JSON object");
      const obj = data as Record<string, unknown>;
      if (obj.error !== undefined && obj.choices === undefined) {
        const e = obj.error as { message?: unknown; code?: unknown };
        throw new BackendError("job.upstream_error", `backend stream error: ${typeof e?.message === "string" ? e.message : JSON.stringify(obj.error).slice(0, 500)}`);
      }
      yield obj;
    }
  } catch (error) {
    networkError(error, signal);
  }
  if (!finished && !signal.aborted) throw new BackendError("job.upstream_error", "backend stream ended without [DONE]");
}
