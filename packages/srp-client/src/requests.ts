/**
 * The client's requests to the hub's consumer API: chat completions (whole, or streamed as
 * an async generator of chunks), embeddings and batches (each paid by the account or with
 * x402 through `payment.ts`), the model catalog, and receipts checked against the hub key.
 */
import { parseSse } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { apiError, SrpApiError } from "./api-error.js";
import { verifyHubReceipt, type ReceiptCheck } from "./client.js";
import type { PaidResponse, Payer } from "./payment.js";
import { sleep, type HubTransport } from "./transport.js";
import type { Batch, CatalogModel, ChatCompletion, ChatCompletionChunk, ChatRequest, ChatStream, Embeddings, SrpClient } from "./types.js";
import type { X402PaymentInfo, X402Policy } from "./wallet-signing.js";

/** POSTs a body with the account's key, paying with x402 when needed. */
type Post = (path: string, body: string, signal: AbortSignal | undefined) => Promise<PaidResponse>;

/** A poster paying within `policy` (the wallet's per-request limits). */
export function poster(payer: Payer, policy: X402Policy): Post {
  return (path, body, signal) => payer.post(path, body, signal, policy, true);
}

/** The chunks of a streamed completion; throws {@link SrpApiError} for an in-band error or a stream cut before `[DONE]`. */
async function* chatChunks(res: Response): AsyncGenerator<ChatCompletionChunk> {
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
}

/** `client.chat`. */
export function chatRequests(post: Post): SrpClient["chat"] {
  return {
    async create(request, init = {}) {
      const { res, payment } = await post("/v1/chat/completions", JSON.stringify({ ...request, stream: false }), init.signal);
      const body = (await res.json()) as ChatCompletion;
      return { ...body, receiptId: res.headers.get("x-srp-receipt"), ...(payment ? { payment } : {}) };
    },
    stream(request: ChatRequest, init: { signal?: AbortSignal } = {}): ChatStream {
      let paid: X402PaymentInfo | undefined;
      const chunks = (async function* () {
        const { res, payment } = await post("/v1/chat/completions", JSON.stringify({ ...request, stream: true }), init.signal);
        paid = payment;
        yield* chatChunks(res);
      })();
      return Object.defineProperty(chunks, "payment", { get: () => paid, enumerable: true }) as ChatStream;
    },
  };
}

/** `client.embeddings`. */
export function embeddingRequests(post: Post): SrpClient["embeddings"] {
  return {
    async create(request, init = {}) {
      const { res, payment } = await post("/v1/embeddings", JSON.stringify(request), init.signal);
      const body = (await res.json()) as Embeddings;
      return { ...body, receiptId: res.headers.get("x-srp-receipt"), ...(payment ? { payment } : {}) };
    },
  };
}

/** `client.batches`. */
export function batchRequests(hub: HubTransport, post: Post): SrpClient["batches"] {
  const get = (id: string, signal?: AbortSignal) => hub.getJson<Batch>(`/v1/jobs/${encodeURIComponent(id)}`, hub.auth(), signal);
  return {
    async create(requests, init = {}) {
      const { res, payment } = await post("/v1/batch", JSON.stringify({ requests }), init.signal);
      const body = (await res.json()) as Batch;
      return { ...body, ...(payment ? { payment } : {}) };
    },
    get: (id, init = {}) => get(id, init.signal),
    async wait(id, options = {}) {
      const until = Date.now() + (options.timeoutMs ?? 600_000);
      for (;;) {
        const batch = await get(id, options.signal);
        if (batch.status === "completed" || batch.status === "failed") return batch;
        if (Date.now() > until) throw new SrpApiError(504, "job.deadline_exceeded", `batch ${id} is still ${batch.status}`);
        await sleep(options.intervalMs ?? 250, options.signal);
      }
    },
  };
}

/** The live model catalog (`GET /v1/models`). */
export async function listModels(hub: HubTransport): Promise<CatalogModel[]> {
  const res = await hub.request("/v1/models", { headers: hub.auth() });
  if (!res.ok) throw await apiError(res);
  return ((await res.json()) as { data: CatalogModel[] }).data;
}

/** Fetches a receipt (with the key in force) and checks it against the hub's key from discovery. */
export async function fetchReceipt(hub: HubTransport, id: string): Promise<{ receipt: Receipt; check: ReceiptCheck }> {
  const [res, d] = await Promise.all([hub.request(`/v1/receipts/${encodeURIComponent(id)}`, { headers: hub.auth() }), hub.discovery()]);
  if (!res.ok) throw await apiError(res);
  const { receipt } = (await res.json()) as { receipt: Receipt };
  return { receipt, check: verifyHubReceipt(receipt, d.hubId) };
}
