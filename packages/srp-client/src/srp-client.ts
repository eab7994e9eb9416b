/**
 * A small typed client for a hub's consumer API: chat completions (whole or streamed as
 * an async iterator), the model catalog, and signed receipts checked against the hub key
 * published in the hub's discovery document. Runtime-neutral: `fetch` and Web streams.
 */
import { parseSse, type Discovery, type Receipt } from "@srp/core";
import { discover, verifyHubReceipt, type ReceiptCheck } from "./client.js";

/** A chat message as OpenAI's API takes it (content may be text or content parts). */
export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string | Array<Record<string, unknown>> | null;
  name?: string;
  tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
}

/** A chat completions request; members not listed pass through to the provider untouched. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  tools?: Array<Record<string, unknown>>;
  tool_choice?: unknown;
  response_format?: Record<string, unknown>;
  /** Routing preferences of this request. */
  srp?: { sort?: "load" | "price" | "throughput"; allow_fallbacks?: boolean; max_price?: { input?: string; output?: string } };
  [member: string]: unknown;
}

/** Usage as the hub reports it: OpenAI's counts plus the cost and the receipt id. */
export interface SrpUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Cost in USD (USDC), decimal string. */
  cost: string;
  /** Cost in USDC atomic units, decimal string. */
  cost_units: string;
  /** Receipt id, or null when the job has no countersigned receipt (then it was not billed). */
  receipt_id: string | null;
  /** False when the backend did not report usage. */
  measured: boolean;
  [member: string]: unknown;
}

/** A whole chat completion. */
export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{ index: number; message: { role: "assistant"; content: string | null; tool_calls?: ChatMessage["tool_calls"] }; finish_reason: string | null }>;
  usage: SrpUsage;
  [member: string]: unknown;
}

/** One streamed chunk. The last one has no choices and carries `usage`. */
export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{ index: number; delta: { role?: string; content?: string | null; tool_calls?: unknown[] }; finish_reason: string | null }>;
  usage?: SrpUsage | null;
  [member: string]: unknown;
}

/** A model of the live catalog. */
export interface CatalogModel {
  id: string;
  name: string;
  context_length: number;
  architecture: { input_modalities: string[]; output_modalities: string[] };
  supported_parameters: string[];
  pricing: { prompt: string; completion: string };
  pricing_units_per_million: { input: string; output: string };
  instances_online: number;
  [member: string]: unknown;
}

/** An error answered by the hub (or raised in-band mid-stream). */
export class SrpApiError extends Error {
  override readonly name = "SrpApiError";
  constructor(
    /** HTTP status (200 for an in-band stream error). */
    readonly status: number,
    /** SRP error code, e.g. `job.unknown_model`. */
    readonly code: string,
    message: string,
    /** Seconds to wait, from `Retry-After`, when given. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** The hub's base URL, e.g. `http://127.0.0.1:8787`. */
  hub: string;
  /** The account's API key. */
  apiKey: string;
  /** `fetch` implementation; default the global one. */
  fetch?: typeof fetch;
}

/** A typed SRP hub client. */
export interface SrpClient {
  chat: {
    /** Creates a whole (non-streamed) completion. */
    create(request: ChatRequest, init?: { signal?: AbortSignal }): Promise<ChatCompletion & { receiptId: string | null }>;
    /** Streams a completion; throws {@link SrpApiError} if the stream ends with an in-band error. */
    stream(request: ChatRequest, init?: { signal?: AbortSignal }): AsyncGenerator<ChatCompletionChunk>;
  };
  /** The live model catalog. */
  models(): Promise<CatalogModel[]>;
  /** Fetches a receipt and checks it against the hub's key from discovery. */
  receipt(id: string): Promise<{ receipt: Receipt; check: ReceiptCheck }>;
  /** The hub's discovery document (fetched once). */
  discovery(): Promise<Discovery>;
}

async function apiError(res: Response): Promise<SrpApiError> {
  const retry = res.headers.get("retry-after");
  let code = "internal";
  let message = res.statusText;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    /* not JSON */
  }
  return new SrpApiError(res.status, code, message, retry === null ? undefined : Number(retry));
}

/**
 * Creates a client for one hub and account.
 *
 * @example
 * const srp = createClient({ hub: "http://127.0.0.1:8787", apiKey: process.env.SRP_API_KEY! });
 * for await (const chunk of srp.chat.stream({ model: "llama3.1:8b", messages: [{ role: "user", content: "Hi" }] })) {
 *   process.stdout.write(chunk.choices[0]?.delta.content ?? "");
 * }
 */
export function createClient(options: ClientOptions): SrpClient {
  const base = options.hub.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const auth = { authorization: `Bearer ${options.apiKey}` };
  let doc: Promise<Discovery> | undefined;
  const discovery = () => (doc ??= discover(base).catch((e: unknown) => {
    doc = undefined;
    throw e;
  }));

  const post = async (request: ChatRequest, stream: boolean, signal?: AbortSignal) => {
    const res = await doFetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ ...request, stream }),
      ...(signal ? { signal } : {}),
    });
    if (!res.ok) throw await apiError(res);
    return res;
  };

  return {
    chat: {
      async create(request, init = {}) {
        const res = await post(request, false, init.signal);
        const body = (await res.json()) as ChatCompletion;
        return { ...body, receiptId: res.headers.get("x-srp-receipt") };
      },
      async *stream(request, init = {}) {
        const res = await post(request, true, init.signal);
        if (!res.body) throw new SrpApiError(502, "job.upstream_error", "the hub sent no stream");
        let finished = false;
        for await (const event of parseSse(res.body)) {
          if (event.data === "[DONE]") {
            finished = true;
            break;
          }
          const data = JSON.parse(event.data) as ChatCompletionChunk & { error?: { code?: string; message?: string } };
          if (data.error) throw new SrpApiError(200, data.error.code ?? "job.stream_interrupted", data.error.message ?? "stream failed");
          yield data;
        }
        if (!finished) throw new SrpApiError(200, "job.stream_interrupted", "the stream ended without [DONE]");
      },
    },
    async models() {
      const res = await doFetch(`${base}/v1/models`, { headers: auth });
      if (!res.ok) throw await apiError(res);
      return ((await res.json()) as { data: CatalogModel[] }).data;
    },
    async receipt(id) {
      const [res, d] = await Promise.all([doFetch(`${base}/v1/receipts/${encodeURIComponent(id)}`, { headers: auth }), discovery()]);
      if (!res.ok) throw await apiError(res);
      const { receipt } = (await res.json()) as { receipt: Receipt };
      return { receipt, check: verifyHubReceipt(receipt, d.hubId) };
    },
    discovery,
  };
}
