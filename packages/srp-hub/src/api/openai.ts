/**
 * The OpenAI-compatible consumer surface: `POST /v1/chat/completions` (streamed and not),
 * `GET /v1/models` and `GET /v1/receipts/{id}`. Request bodies reach the provider
 * untouched apart from the members SRP routes and meters by (SRP-JOB-002); responses are
 * the provider's, with `usage` extended by the cost and the receipt id.
 */
import { formatAmount, formatSse, formatUsdc, parseAmount, SrpError, type Capability, type Receipt, type Usage } from "@srp/core";
import type { AccountStore } from "../accounts.js";
import type { ReceiptBook } from "../receipts.js";
import { chatNeeds, estimatePromptTokens } from "../routing/policy.js";
import type { RouteSort, Router } from "../routing/router.js";
import { follow, relay, type Committed, type JobEvent, type RelayContext } from "../relay.js";
import { authenticate, bearer, errorResponse, fail, formatDecimal, readJsonObject } from "./http.js";
import type { Admission, X402Payments } from "../payments/payments.js";
import type { PaidResource } from "../payments/x402.js";
import type { HubLedger } from "../ledger/ledger.js";
import { worstCase } from "../ledger/policy.js";

/** What the OpenAI surface needs from its hub. */
export interface OpenAIContext extends RelayContext {
  hubId: string;
  accounts: AccountStore;
  receipts: ReceiptBook;
  /** Largest request body accepted. */
  maxBodyBytes: number;
  /** Default time a request may take, ms. */
  requestTimeoutMs: number;
  /** Remembers which consumer account (and reservation) a job is for. */
  setJobOwner(jobId: string, accountId: string, reservationId: string | undefined): void;
  /** Bills consumers; absent when the hub bills nobody. */
  ledger: HubLedger | undefined;
  /** Resolves when the ledger has reconciled at start (requests reserve only after it). */
  ledgerReady: Promise<void>;
  /** Reports a storage failure that a request could not report itself. */
  storageError(what: string, error: unknown): void;
  /** Counts a consumer request for a model (demand, for derived bounty multipliers). */
  noteDemand(model: string): void;
  /** The hub cancelled this request's job: keep the reservation until the node ends the job (a late `done` is billed), then release. */
  releaseAfterCancel(reservationId: string): void;
  /** x402 pay-per-call for requests without an API key; absent when the hub takes no x402 payments. */
  payments?: X402Payments | undefined;
}

/** The chat completion surface as an x402 resource (its `bazaar` discovery entry). */
export function chatResource(url: string): PaidResource {
  return {
    url,
    description: "Chat completion relayed to an SRP provider (OpenAI wire format). The amount is this request's maximum cost; what it does not use stays with the paying wallet as prepaid balance.",
    mimeType: "application/json",
    method: "POST",
    example: { model: "llama3.1:8b", messages: [{ role: "user", content: "Hello" }], max_tokens: 64 },
  };
}

const PAYMENT_RESPONSE = "PAYMENT-RESPONSE";

const RECEIPT_HEADER = "x-srp-receipt";

/** The SRP additions to an OpenAI `usage` object. */
export interface SrpUsageExtension {
  /** Cost in USD (USDC), decimal string. */
  cost: string;
  /** Cost in USDC atomic units (1e-6 USD), decimal string. */
  cost_units: string;
  /** The id of the job's signed receipt (`GET /v1/receipts/{id}`), or null when the receipt was not countersigned. */
  receipt_id: string | null;
  /** False when the backend did not report usage (then nothing is billed). */
  measured: boolean;
}

/** What the consumer's answer says about billing: the charge, and whether a stored receipt backs it. */
interface Billed {
  /** Units charged (a billing hub), or undefined when the hub bills nobody (then the receipt's cost is shown). */
  charged: bigint | undefined;
  /** Whether the receipt was stored; when not, there is nothing to point at. */
  recorded: boolean;
}

function usageWithCost(upstream: unknown, usage: Usage, receipt: Receipt | undefined, jobId: string, billed: Billed): Record<string, unknown> {
  const base = typeof upstream === "object" && upstream !== null ? { ...(upstream as Record<string, unknown>) } : {};
  const units = billed.charged ?? (receipt && billed.recorded ? parseAmount(receipt.cost) : 0n);
  const ext: SrpUsageExtension = { cost: formatUsdc(units), cost_units: formatAmount(units), receipt_id: receipt && billed.recorded ? jobId : null, measured: usage.measured };
  if (base.prompt_tokens === undefined) {
    base.prompt_tokens = usage.promptTokens;
    base.completion_tokens = usage.completionTokens;
    base.total_tokens = usage.promptTokens + usage.completionTokens;
  }
  return { ...base, ...ext };
}

/** The request's output limit (`max_completion_tokens`, else `max_tokens`; 0 when neither), or the error for a malformed one. */
export function outputLimit(body: Record<string, unknown>): number | SrpError {
  for (const name of ["max_completion_tokens", "max_tokens"] as const) {
    const v = body[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > 100_000_000) return new SrpError("api.invalid_body", `\`${name}\` is a non-negative integer`);
    return v;
  }
  return 0;
}

/** A request's `srp` routing preferences. */
export interface Preferences {
  sort: RouteSort;
  allowFallbacks: boolean;
  maxPrice?: { input?: bigint; output?: bigint };
}

/** Reads a request's `srp` member. */
export function preferences(body: Record<string, unknown>): Preferences | SrpError {
  const prefs = body.srp;
  const out: Preferences = { sort: "load", allowFallbacks: true };
  if (prefs === undefined) return out;
  if (typeof prefs !== "object" || prefs === null || Array.isArray(prefs)) return new SrpError("api.invalid_body", "`srp` must be an object");
  const p = prefs as Record<string, unknown>;
  if (p.sort !== undefined) {
    if (p.sort !== "load" && p.sort !== "price" && p.sort !== "throughput") return new SrpError("api.invalid_body", "`srp.sort` is one of load, price, throughput");
    out.sort = p.sort;
  }
  if (p.allow_fallbacks !== undefined) {
    if (typeof p.allow_fallbacks !== "boolean") return new SrpError("api.invalid_body", "`srp.allow_fallbacks` is a boolean");
    out.allowFallbacks = p.allow_fallbacks;
  }
  if (p.max_price !== undefined) {
    const mp = p.max_price as Record<string, unknown>;
    const units = (v: unknown) => (typeof v === "string" && /^(0|[1-9][0-9]{0,30})$/.test(v) ? BigInt(v) : undefined);
    if (typeof mp !== "object" || mp === null) return new SrpError("api.invalid_body", "`srp.max_price` is an object of atomic-unit strings per 1M tokens");
    out.maxPrice = {};
    if (mp.input !== undefined) {
      const v = units(mp.input);
      if (v === undefined) return new SrpError("api.invalid_body", "`srp.max_price.input` is a decimal string of atomic units per 1M tokens");
      out.maxPrice.input = v;
    }
    if (mp.output !== undefined) {
      const v = units(mp.output);
      if (v === undefined) return new SrpError("api.invalid_body", "`srp.max_price.output` is a decimal string of atomic units per 1M tokens");
      out.maxPrice.output = v;
    }
  }
  return out;
}

/** Shortest deadline a consumer may ask for. */
const MIN_TIMEOUT_MS = 1000;

/** The request's deadline budget, and whether the consumer chose it (header `x-srp-timeout-ms`, 1 s to 1 h). */
function timeoutOf(request: Request, fallback: number): { ms: number; chosen: boolean } {
  const h = request.headers.get("x-srp-timeout-ms");
  const n = h === null ? NaN : Number(h);
  if (!Number.isSafeInteger(n) || n <= 0) return { ms: fallback, chosen: false };
  return { ms: Math.min(Math.max(n, MIN_TIMEOUT_MS), 3_600_000), chosen: true };
}

/** Tokens an image part may count for, when bounding a prompt. */
const IMAGE_TOKEN_ALLOWANCE = 3_000;
/** Tokens a chat template may add per message (role markers, separators), and once per request. */
const TEMPLATE_TOKENS_PER_MESSAGE = 16;
const TEMPLATE_TOKENS_PER_REQUEST = 64;

/**
 * An upper bound on a request's prompt tokens: its messages' (and tools') UTF-8 bytes,
 * since a token of a byte-level tokenizer covers at least one byte, plus what a chat
 * template adds (16 tokens a message, 64 a request), with each inline image (a `data:`
 * URL) counted as a fixed allowance instead of its bytes.
 */
export function promptTokenBound(body: Record<string, unknown>): number {
  let images = 0;
  const text = JSON.stringify([body.messages ?? null, body.tools ?? null], (_key, value: unknown) => {
    if (typeof value === "string" && value.startsWith("data:")) {
      images++;
      return "";
    }
    return value;
  });
  const messages = Array.isArray(body.messages) ? body.messages.length : 0;
  return Buffer.byteLength(text) + images * IMAGE_TOKEN_ALLOWANCE + messages * TEMPLATE_TOKENS_PER_MESSAGE + TEMPLATE_TOKENS_PER_REQUEST;
}

/** The most a request may cost, and what that bound assumes. */
export interface MaximumCost {
  cost: bigint;
  promptTokens: number;
  completionTokens: number;
  /** Per 1M tokens, atomic units. */
  price: { input: string; output: string };
}

/**
 * The most a request may cost: its prompt bound plus its output limit (`max_tokens`, or
 * the largest context online less the prompt), at the dearest price among the instances
 * that could serve it (capped by the consumer's `srp.max_price`). Undefined when no
 * instance serves the model.
 */
export function maximumCost(router: Router, model: string, body: Record<string, unknown>, maxOut: number, maxPrice: Preferences["maxPrice"]): MaximumCost | undefined {
  const views = model === "auto" ? [...router.catalog().values()].flat() : router.views(model);
  if (views.length === 0) return undefined;
  let input = 0n;
  let output = 0n;
  let context = 0;
  for (const v of views) {
    const i = BigInt(v.price.input);
    const o = BigInt(v.price.output);
    if (i > input) input = i;
    if (o > output) output = o;
    if (v.contextLength > context) context = v.contextLength;
  }
  if (maxPrice?.input !== undefined && maxPrice.input < input) input = maxPrice.input;
  if (maxPrice?.output !== undefined && maxPrice.output < output) output = maxPrice.output;
  const promptTokens = promptTokenBound(body);
  const completionTokens = maxOut > 0 ? maxOut : Math.max(context - promptTokens, 1);
  const price = { input: input.toString(), output: output.toString() };
  return { cost: worstCase(promptTokens, completionTokens, price), promptTokens, completionTokens, price };
}

/** The consumer's charge from a settlement, when this request's reservation was the one settled. */
function chargeOf(settled: unknown, reservationId: string | undefined): bigint | undefined {
  if (reservationId === undefined || typeof settled !== "object" || settled === null) return undefined;
  const s = settled as { reservationId?: unknown; charge?: unknown };
  return s.reservationId === reservationId && typeof s.charge === "bigint" ? s.charge : undefined;
}

/** Whether a chat chunk carries something the consumer would see (text, a tool call, a finish). */
function contentful(e: JobEvent): boolean {
  if (e.type !== "chunk") return true;
  const choices = e.chunk.data.choices;
  if (!Array.isArray(choices)) return false;
  return choices.some((c) => {
    const ch = c as { delta?: Record<string, unknown>; finish_reason?: unknown };
    const d = ch.delta ?? {};
    const text = (k: string) => typeof d[k] === "string" && (d[k] as string).length > 0;
    return text("content") || d.tool_calls !== undefined || text("refusal") || text("reasoning_content") || text("reasoning") || (ch.finish_reason !== null && ch.finish_reason !== undefined);
  });
}

/** `POST /v1/chat/completions`. */
export async function chatCompletions(request: Request, ctx: OpenAIContext): Promise<Response> {
  // Without an API key, a hub that takes x402 payments quotes the request and is paid per call.
  const payments = ctx.payments && ctx.ledger && bearer(request) === undefined ? ctx.payments : undefined;
  let accountId = "";
  if (!payments) {
    const account = await authenticate(request, ctx.accounts);
    if (account instanceof SrpError) return errorResponse(account);
    accountId = account.id;
    // An account that owes for a payment that did not settle spends nothing until it has repaid.
    if (ctx.payments) {
      const owed = await ctx.payments.outstandingDebt(accountId).catch((error: unknown) => (ctx.storageError("debt", error), 0n));
      if (owed > 0n) return fail("payment.wallet_blocked", `this account owes ${owed} units from a payment that did not settle; a deposit repays it`);
    }
  }
  const body = await readJsonObject(request, ctx.maxBodyBytes);
  if (body instanceof SrpError) return errorResponse(body);
  if (typeof body.model !== "string" || body.model.length === 0) return fail("api.invalid_body", "`model` is a required string");
  if (!Array.isArray(body.messages) || body.messages.length === 0) return fail("api.invalid_body", "`messages` must be a non-empty array");
  if (body.stream !== undefined && typeof body.stream !== "boolean") return fail("api.invalid_body", "`stream` must be a boolean");
  if (body.n !== undefined && body.n !== 1) return fail("api.invalid_body", "`n` other than 1 is not supported by this hub");
  const prefs = preferences(body);
  if (prefs instanceof SrpError) return errorResponse(prefs);
  const stream = body.stream === true;
  const forwarded: Record<string, unknown> = { ...body };
  delete forwarded.srp;
  // SRP-JOB-002: ask the backend to measure usage in the stream's last chunk.
  if (stream) {
    const so = body.stream_options;
    forwarded.stream_options = { ...(typeof so === "object" && so !== null && !Array.isArray(so) ? so : {}), include_usage: true };
  }
  const limit = outputLimit(body);
  if (limit instanceof SrpError) return errorResponse(limit);
  const maxOut = limit;
  const capabilities: Capability[] = chatNeeds(body);
  const timeout = timeoutOf(request, ctx.requestTimeoutMs);
  const deadline = Date.now() + timeout.ms;

  ctx.noteDemand(body.model);
  // Admission: reserve the worst case before routing, so concurrent requests can never overspend.
  let reservationId: string | undefined;
  let admission: Admission | undefined;
  if (ctx.ledger) {
    const max = maximumCost(ctx.router, body.model, body, maxOut, prefs.maxPrice)?.cost;
    if (max === undefined) return fail("job.unknown_model", `model ${body.model} is not served by any online provider`);
    if (payments) {
      // x402 (SRP-PAY-001..): quote the maximum cost; a paid retry is verified, locked and settled per the hub's mode.
      const resource = chatResource(request.url);
      const header = request.headers.get("payment-signature");
      if (header === null) return payments.required(max, resource);
      try {
        await ctx.ledgerReady;
        const admitted = await payments.admit(header, payments.offer(max), resource.url);
        if (admitted instanceof SrpError) return admitted.httpStatus === 402 ? payments.required(max, resource, admitted) : errorResponse(admitted);
        admission = admitted;
      } catch (error) {
        ctx.storageError("x402 payment", error);
        return fail("payment.unavailable", "the hub cannot take payments now; retry shortly");
      }
      accountId = admission.accountId;
    }
    let r;
    try {
      await ctx.ledgerReady;
      r = await ctx.ledger.reserve(accountId, max);
    } catch (error) {
      ctx.storageError("reserve", error);
      const unavailable = fail("billing.unavailable", "the hub's ledger cannot take requests now; retry shortly");
      return admission ? withPayment(unavailable, await admission.finish(false)) : unavailable;
    }
    if (!r.ok) {
      if (admission) return withPayment(errorResponse(new SrpError("billing.insufficient_credits", "the payment does not cover this request's maximum cost")), await admission.finish(false));
      return errorResponse(
        new SrpError("billing.insufficient_credits", `this request may cost up to ${formatUsdc(max)} USD (${max} units); the account can spend ${formatUsdc(r.available)} USD. Lower max_tokens or add credits.`, {
          details: { required: max.toString(), available: r.available.toString() },
        }),
      );
    }
    reservationId = r.reservationId;
  }
  const ledger = ctx.ledger;
  /** Ends the request's billing: the charge when the job settled this reservation, else the reservation is released. */
  const closeBilling = async (e: JobEvent | undefined, consumerLeft = false): Promise<Billed> => {
    const cancelled = consumerLeft || (e?.type === "lost" && (e.reason === "deadline" || e.reason === "consumer_gone"));
    let recorded = true;
    const settled = e?.type === "done" && e.settled ? await e.settled.catch(() => ((recorded = false), undefined)) : undefined;
    const found = chargeOf(settled, reservationId);
    // A billing hub reports what it charged: nothing, when the reservation was not settled by this receipt.
    const charged = ledger ? (found ?? 0n) : undefined;
    if (found === undefined && reservationId !== undefined && cancelled) {
      // The hub cancelled the job (consumer gone, deadline): the node may still end it with a done, which is billed.
      ctx.releaseAfterCancel(reservationId);
      return { charged, recorded };
    }
    if (found === undefined && reservationId !== undefined && ledger) {
      const why = e === undefined ? "not served" : e.type === "done" ? "no countersigned receipt" : e.type === "error" ? "the provider failed" : e.type === "lost" ? `the job ended: ${e.reason}` : "the stream ended early";
      await ledger.release(reservationId, why).catch((error: unknown) => ctx.storageError(`release ${reservationId}`, error));
    }
    return { charged, recorded };
  };
  const consumer = new AbortController();
  const onAbort = () => consumer.abort();
  request.signal.addEventListener("abort", onAbort, { once: true });
  if (request.signal.aborted) consumer.abort();

  let committed: Committed;
  try {
    committed = await relay(ctx, {
      api: "chat.completions",
      body: forwarded,
      stream,
      needs: { model: body.model, capabilities, contextTokens: estimatePromptTokens(body) + maxOut, ...(prefs.maxPrice ? { maxPrice: prefs.maxPrice } : {}) },
      sort: prefs.sort,
      allowFallbacks: prefs.allowFallbacks,
      deadline,
      consumerDeadline: timeout.chosen,
      signal: consumer.signal,
      onJob: (job) => ctx.setJobOwner(job.jobId, accountId, reservationId),
      commits: contentful,
    });
  } catch (error) {
    request.signal.removeEventListener("abort", onAbort);
    await closeBilling(undefined);
    const failed = errorResponse(error instanceof SrpError ? error : new SrpError("internal", "relay failed", { cause: error }));
    return admission ? withPayment(failed, await admission.finish(false)) : failed;
  }
  const jobId = committed.job.jobId;
  const headers: Record<string, string> = { [RECEIPT_HEADER]: jobId, "x-srp-model": committed.job.model };
  const events = follow(ctx, { deadline, signal: consumer.signal, consumerDeadline: timeout.chosen }, committed);

  if (!stream) {
    const e = (await events.next()).value as JobEvent;
    await events.return(undefined); // runs follow()'s clean-up (deadline timer, abort listener)
    request.signal.removeEventListener("abort", onAbort);
    const billed = await closeBilling(e);
    // A job the hub cancelled (consumer gone, deadline) may still end in a billable receipt: its payment settles.
    const served = (e.type === "done" && e.done.response !== undefined) || (e.type === "lost" && (e.reason === "deadline" || e.reason === "consumer_gone"));
    const paid = admission ? { [PAYMENT_RESPONSE]: await admission.finish(served) } : {};
    if (e.type !== "done" || e.done.response === undefined) {
      return fail("job.upstream_error", e.type === "error" ? e.error.message : "the provider ended the job without a response", paid);
    }
    const response = { ...e.done.response, usage: usageWithCost(e.done.response.usage, e.done.usage, e.receipt, jobId, billed) };
    // Without a countersigned, stored receipt there is nothing to point at (and nothing is billed).
    return Response.json(response, { headers: { ...(e.receipt && billed.recorded ? headers : { "x-srp-model": committed.job.model }), ...paid } });
  }
  // A paid stream: the provider has started answering, so the payment settles now (in `after` mode) and the header tells how.
  if (admission) headers[PAYMENT_RESPONSE] = await admission.finish(true);

  const encoder = new TextEncoder();
  let billingClosed = false;
  const endBilling = (e: JobEvent | undefined, consumerLeft = false): Promise<Billed> => {
    if (billingClosed) return Promise.resolve({ charged: undefined, recorded: false });
    billingClosed = true;
    return closeBilling(e, consumerLeft);
  };
  let heldUsage: Record<string, unknown> | undefined;
  let template: Record<string, unknown> | undefined;
  const body$ = new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const { value: e, done: finished } = await events.next();
        if (finished || !e) {
          await endBilling(undefined);
          controller.close();
          return;
        }
        if (e.type === "chunk") {
          const data = e.chunk.data;
          template ??= data;
          // The upstream's usage chunk is held until the receipt arrives, then extended.
          if (data.usage !== null && data.usage !== undefined && Array.isArray(data.choices) && data.choices.length === 0) {
            heldUsage = data;
            continue;
          }
          controller.enqueue(encoder.encode(formatSse(data)));
          return;
        }
        if (e.type === "done") {
          const base = heldUsage ?? {
            id: template?.id ?? jobId,
            object: "chat.completion.chunk",
            created: template?.created ?? Math.floor(Date.now() / 1000),
            model: committed.job.model,
            choices: [],
          };
          const usage = usageWithCost(heldUsage?.usage, e.done.usage, e.receipt, jobId, await endBilling(e));
          controller.enqueue(encoder.encode(formatSse({ ...base, usage }) + formatSse("[DONE]")));
          controller.close();
          await events.return(undefined);
          request.signal.removeEventListener("abort", onAbort);
          return;
        }
        // After content: an explicit in-band error, and no [DONE] (SRP-JOB-020).
        const code = e.type === "error" ? (e.error.code === "job.deadline_exceeded" ? e.error.code : "job.stream_interrupted") : e.reason === "deadline" ? "job.deadline_exceeded" : "job.stream_interrupted";
        const message =
          e.type === "error" ? `the provider failed mid-stream: ${e.error.message}` : e.reason === "deadline" ? "the request passed its deadline mid-stream" : `the provider went away mid-stream (${e.reason})`;
        await endBilling(e);
        controller.enqueue(encoder.encode(formatSse({ error: { message, type: "api_error", param: null, code } })));
        controller.close();
        await events.return(undefined);
        request.signal.removeEventListener("abort", onAbort);
        return;
      }
    },
    async cancel() {
      consumer.abort();
      await events.return(undefined);
      await endBilling(undefined, true);
      request.signal.removeEventListener("abort", onAbort);
    },
  });
  return new Response(body$, { status: 200, headers: { ...headers, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" } });
}

/** The response with a `PAYMENT-RESPONSE` header added. */
function withPayment(response: Response, header: string): Response {
  response.headers.set(PAYMENT_RESPONSE, header);
  return response;
}

/** One entry of `GET /v1/models`. */
export interface ModelEntry {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
  name: string;
  context_length: number;
  architecture: { modality: string; input_modalities: string[]; output_modalities: string[] };
  supported_parameters: string[];
  /** Lowest price online, USD per token, as decimal strings. */
  pricing: { prompt: string; completion: string };
  /** The same lowest price in USDC atomic units per 1M tokens. */
  pricing_units_per_million: { input: string; output: string };
  capabilities: string[];
  instances_online: number;
}

const BASE_PARAMETERS = ["max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "frequency_penalty", "presence_penalty", "stream", "stream_options"];

/** The live catalog. */
export function modelCatalog(router: Router, now = Date.now()): ModelEntry[] {
  const out: ModelEntry[] = [];
  for (const [model, views] of router.catalog(now)) {
    if (views.length === 0) continue;
    const caps = new Set<string>(views.flatMap((v) => v.capabilities));
    const minIn = views.reduce((m, v) => (BigInt(v.price.input) < m ? BigInt(v.price.input) : m), BigInt(views[0]!.price.input));
    const minOut = views.reduce((m, v) => (BigInt(v.price.output) < m ? BigInt(v.price.output) : m), BigInt(views[0]!.price.output));
    const params = [...BASE_PARAMETERS];
    if (caps.has("tools")) params.push("tools", "tool_choice", "parallel_tool_calls");
    if (caps.has("json_mode")) params.push("response_format");
    const input = caps.has("vision") ? ["text", "image"] : ["text"];
    out.push({
      id: model,
      object: "model",
      created: Math.floor(Math.min(...views.map((v) => v.firstSeen)) / 1000),
      owned_by: "srp",
      name: model,
      context_length: Math.max(...views.map((v) => v.contextLength)),
      architecture: { modality: `${input.join("+")}->text`, input_modalities: input, output_modalities: ["text"] },
      supported_parameters: params,
      // atomic units per 1M tokens = 1e-6 USD per 1e6 tokens, so USD per token = units / 1e12
      pricing: { prompt: formatDecimal(minIn, 12), completion: formatDecimal(minOut, 12) },
      pricing_units_per_million: { input: minIn.toString(), output: minOut.toString() },
      capabilities: [...caps].sort(),
      instances_online: views.length,
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/** `GET /v1/models` (free, no key needed). */
export function listModels(router: Router): Response {
  return Response.json({ object: "list", data: modelCatalog(router) });
}

/** `GET /v1/receipts/{id}`: the countersigned receipt, for the account that paid for the job. */
export async function getReceipt(request: Request, id: string, ctx: Pick<OpenAIContext, "accounts" | "receipts" | "hubId">): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  const stored = await ctx.receipts.get(id);
  if (!stored || (stored.consumerAccountId !== account.id && stored.providerAccountId !== account.id)) return fail("api.not_found", `no receipt ${id} for this account`);
  // The provider's account also sees its payout adjustments for the receipt (SRP-SET-006).
  const payout =
    stored.payout && stored.providerAccountId === account.id
      ? { payout: { credited: stored.payout.credited.toString(), bounty: stored.payout.bounty.toString(), reduction: stored.payout.reduction.toString() } }
      : {};
  return Response.json({ object: "srp.receipt", hub_id: ctx.hubId, receipt: stored.receipt, ...payout });
}
