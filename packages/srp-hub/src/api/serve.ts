/**
 * One consumer request through admission, the relay and billing, whatever its API: the
 * OpenAI and Anthropic surfaces and the other modalities each describe their request in
 * a {@link Plan} (what to route, what the worst case uses, the job for an instance, how
 * to answer), and {@link serve} does the rest: authentication or x402, the reservation of
 * the worst case, failover before content, the answer with its cost, and the settlement
 * or release of the reservation.
 */
import { normalizeQuantization, cost as priceCost, formatAmount, formatUsdc, parseAmount, SrpError, type BillableUsage } from "@srp/core";
import type { Capability, Done, Instance, Job, JobApi, Receipt, Usage } from "@srp/core/schema";
import type { OutputMeasurer, UsageBounds } from "@srp/core/metering";
import { paymentHeaderOf } from "@srp/core/x402";
import type { AccountStore } from "../accounts.js";
import type { ReceiptBook } from "../receipts.js";
import type { RouteSort, Router } from "../routing/router.js";
import type { CandidateView, RouteNeeds } from "../routing/policy.js";
import { follow, relay, type Committed, type JobEvent, type RelayContext, type RelayRequest } from "../relay.js";
import { authenticate, bearer } from "./http.js";
import type { Admission, X402Payments } from "../payments/x402-flow.js";
import type { PaidResource } from "../payments/x402-policy.js";
import type { PaymentRecord } from "../payments/book.js";
import type { HubLedger } from "../ledger/ledger.js";
import { modelList, modelsToTry } from "../routing/fallbacks.js";
import { QUEUE_TIMEOUT_HEADER, queueWaitOf } from "../routing/wait-queue.js";
import { accountAffinityKey } from "../routing/affinity.js";
import type { ResponseStore } from "./response-store.js";
import { cancelledByHub, closeBilling, closeOnce, type Billed, type CloseBilling } from "./run-billing.js";
import { STREAM_HEADERS, streamBody } from "./run-stream.js";
import { noteBilled, noteOf, openNote, type RequestNote } from "./request-note.js";
import { admitKeyRate, estimatedTokens, keyBudgetError, modelNotAllowed, rateLimitError, releasedAtEnd } from "./key-admission.js";
import { hasRateLimits, type RequestKey } from "../keys/policy.js";
import type { KeyLimits } from "../limits/key-limits.js";
import { watchJobs } from "../tracing.js";

/** What every consumer API surface (OpenAI chat and completions, Anthropic Messages, Responses, modalities, batches) needs from its hub. */
export interface ConsumerApiContext extends RelayContext {
  hubId: string;
  /** API keys' rate limits (SRP-CON-087); without them keys are not rate-limited. */
  keyLimits?: KeyLimits;
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
  /**
   * Stored responses of the Responses surface (`store`, `previous_response_id`; SRP-CON-050..):
   * save a paid, answered turn, read a conversation to continue. Absent: nothing is stored.
   */
  responses?: ResponseStore;
  /** Async jobs (`POST /v1/videos`, `POST /v1/runs`): started after admission and answered 202. Absent: the hub runs none. */
  asyncJobs?: AsyncJobStarter;
}

/** An async request admitted (its worst case held, a payment for it settled): what starting its job needs. */
export interface AsyncAdmission {
  request: Request;
  plan: Plan;
  /** The paying account. */
  accountId: string;
  /** Whether only that account's keys may read the job (not an x402 payer). */
  keyed: boolean;
  reservationId: string | undefined;
  /** The worst case reserved (a billing hub). */
  reserved: bigint | undefined;
  models: string[] | undefined;
  note: RequestNote | undefined;
  /** The payment's settlement header, for the 202 answer. */
  paid: Record<string, string>;
}

/** What runs async jobs for the consumer surfaces (`api/async-jobs.ts`). */
export interface AsyncJobStarter {
  /** Keeps and starts an admitted async job; the 202 answer (or a refusal, the reservation released). */
  start(admitted: AsyncAdmission): Promise<Response>;
  /** What is wrong with a webhook URL a request names, or undefined. */
  webhookProblem(url: string): string | undefined;
}

/** The SRP additions to an API's `usage` object. */
export interface SrpUsageExtension {
  /** Cost in USD (USDC), decimal string. */
  cost: string;
  /** Cost in USDC atomic units (1e-6 USD), decimal string. */
  cost_units: string;
  /** The id of the job's signed receipt (`GET /v1/receipts/{id}`), or null when the receipt was not countersigned. */
  receipt_id: string | null;
  /** False when the backend did not report usage (then nothing is billed). */
  measured: boolean;
  /** Why the node's receipt was not countersigned (an error code such as `receipt.implausible_usage`); absent when it was. */
  receipt_error?: string;
}

/** SRP's own members of a shown `usage` ({@link SrpUsageExtension}): never taken from a node. */
const SRP_USAGE_KEYS: ReadonlySet<string> = new Set(["cost", "cost_units", "receipt_id", "measured", "receipt_error"]);

/**
 * The members of a node's `usage` object a consumer may still be shown beside the billed
 * usage (SRP-ATT-019): everything except SRP's own members and the counts (any member named
 * `*_tokens` or `*_tokens_details`, `cache_creation`), so that timings, `service_tier` or
 * `server_tool_use` survive but a forged `receipt_error` or `prompt_cache_hit_tokens` does not.
 */
export function upstreamUsageExtras(upstream: unknown): Record<string, unknown> {
  if (typeof upstream !== "object" || upstream === null || Array.isArray(upstream)) return {};
  const kept: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(upstream)) {
    if (SRP_USAGE_KEYS.has(k) || k.endsWith("_tokens") || k.endsWith("_tokens_details") || k === "cache_creation") continue;
    kept[k] = v;
  }
  return kept;
}

/** A request's routing preferences (`provider` object, or the older `srp` member). */
export interface Preferences {
  sort: RouteSort;
  allowFallbacks: boolean;
  /** Price cap per 1M tokens, atomic units. */
  maxPrice?: { input?: bigint; output?: bigint };
  /** Node ids, `node/instance` keys or supply tiers to try first, in order. */
  order?: string[];
  /** Only instances matching one of these. */
  only?: string[];
  /** Never instances matching one of these. */
  ignore?: string[];
  /** Only instances offering one of these quantizations (normalized, SRP-CON-019). */
  quantizations?: string[];
}

const SORTS = new Set(["load", "price", "throughput", "latency"]);

/** USD per 1M units as a decimal string or number, in atomic units per 1M units (exact: 1 unit = 1e-6 USD). */
function usdPerMillion(v: unknown): bigint | undefined {
  const text = typeof v === "number" && Number.isFinite(v) && v >= 0 ? String(v) : typeof v === "string" ? v : undefined;
  const m = text === undefined ? null : /^(0|[1-9][0-9]{0,24})(?:\.([0-9]{1,6}))?$/.exec(text);
  if (!m) return undefined;
  return BigInt(m[1]!) * 1_000_000n + BigInt((m[2] ?? "").padEnd(6, "0"));
}

function selectors(v: unknown, name: string): string[] | SrpError {
  if (!Array.isArray(v) || v.length > 64 || !v.every((s) => typeof s === "string" && s.length > 0 && s.length <= 256)) {
    return new SrpError("api.invalid_body", `\`provider.${name}\` is an array of at most 64 node ids, instance keys or supply tiers`);
  }
  return v as string[];
}

/** `provider.quantizations`: 1 to 32 names, each normalized (`q4_k_m` is `Q4_K_M`, `fp16` is `F16`; SRP-CON-019). */
function quantizationList(v: unknown): string[] | SrpError {
  const bad = new SrpError(
    "api.invalid_body",
    "`provider.quantizations` is an array of 1 to 32 quantizations such as Q4_K_M, Q8_0, F16, BF16, FP8, AWQ",
  );
  if (!Array.isArray(v) || v.length === 0 || v.length > 32) return bad;
  const out: string[] = [];
  for (const q of v) {
    const n = typeof q === "string" && q.length <= 32 ? normalizeQuantization(q) : undefined;
    if (n === undefined) return bad;
    out.push(n);
  }
  return out;
}

/**
 * Reads a request's routing preferences: the `provider` object (`sort` by price, latency,
 * throughput or load; `max_price` in USD per 1M tokens as `{prompt, completion}`;
 * `order`, `only` and `ignore` by node id, `node/instance` key or supply tier;
 * `allow_fallbacks`), or the `srp` member (`sort`, `allow_fallbacks`, and `max_price` in
 * atomic units per 1M tokens as `{input, output}`).
 */
export function preferences(body: Record<string, unknown>): Preferences | SrpError {
  const out: Preferences = { sort: "load", allowFallbacks: true };
  for (const member of ["srp", "provider"] as const) {
    const prefs = body[member];
    if (prefs === undefined || prefs === null) continue;
    if (typeof prefs !== "object" || Array.isArray(prefs)) return new SrpError("api.invalid_body", `\`${member}\` must be an object`);
    const p = prefs as Record<string, unknown>;
    if (p.sort !== undefined) {
      if (typeof p.sort !== "string" || !SORTS.has(p.sort))
        return new SrpError("api.invalid_body", `\`${member}.sort\` is one of load, price, throughput, latency`);
      out.sort = p.sort as RouteSort;
    }
    if (p.allow_fallbacks !== undefined) {
      if (typeof p.allow_fallbacks !== "boolean") return new SrpError("api.invalid_body", `\`${member}.allow_fallbacks\` is a boolean`);
      out.allowFallbacks = p.allow_fallbacks;
    }
    if (p.max_price !== undefined) {
      const mp = p.max_price as Record<string, unknown>;
      if (typeof mp !== "object" || mp === null || Array.isArray(mp))
        return new SrpError("api.invalid_body", `\`${member}.max_price\` is an object`);
      out.maxPrice ??= {};
      if (member === "srp") {
        const units = (v: unknown) => (typeof v === "string" && /^(0|[1-9][0-9]{0,30})$/.test(v) ? BigInt(v) : undefined);
        for (const [k, field] of [
          ["input", "input"],
          ["output", "output"],
        ] as const) {
          if (mp[k] === undefined) continue;
          const v = units(mp[k]);
          if (v === undefined)
            return new SrpError("api.invalid_body", `\`srp.max_price.${k}\` is a decimal string of atomic units per 1M tokens`);
          out.maxPrice[field] = v;
        }
      } else {
        for (const [k, field] of [
          ["prompt", "input"],
          ["completion", "output"],
        ] as const) {
          if (mp[k] === undefined) continue;
          const v = usdPerMillion(mp[k]);
          if (v === undefined)
            return new SrpError("api.invalid_body", `\`provider.max_price.${k}\` is USD per 1M tokens (a decimal of at most 6 places)`);
          out.maxPrice[field] = v;
        }
      }
    }
    for (const name of ["order", "only", "ignore"] as const) {
      if (p[name] === undefined) continue;
      if (member === "srp") return new SrpError("api.invalid_body", `\`${name}\` belongs in the \`provider\` object`);
      const list = selectors(p[name], name);
      if (list instanceof SrpError) return list;
      out[name] = list;
    }
    if (p.quantizations !== undefined) {
      if (member === "srp") return new SrpError("api.invalid_body", "`quantizations` belongs in the `provider` object");
      const q = quantizationList(p.quantizations);
      if (q instanceof SrpError) return q;
      out.quantizations = q;
    }
  }
  return out;
}

/** How a committed job's stream reaches the consumer, in the surface's wire format. */
export interface StreamEncoder {
  /** Text to send for a chunk ("" holds or drops it). */
  chunk(data: Record<string, unknown>): string;
  /** Text that ends a successful stream, with the billed usage (`done.usage`: the countersigned receipt's, or nothing) and its cost. */
  end(done: Done, ext: SrpUsageExtension): string;
  /** Text that ends a stream in an explicit in-band error (SRP-JOB-020). */
  fail(code: "job.stream_interrupted" | "job.deadline_exceeded", message: string): string;
  /** Runs after {@link StreamEncoder.end} and before its text is sent (a Responses turn is stored then, so a follow-up finds it). */
  finish?(): Promise<void>;
}

/** What a surface says about one request. */
export interface Plan {
  /** The model asked for (`auto` allowed where the surface supports it). */
  model: string;
  stream: boolean;
  prefs: Preferences;
  /** Capabilities an instance needs to take the request. */
  capabilities: Capability[];
  /** Prompt plus requested output, in tokens (an estimate), for context matching. */
  contextTokens: number;
  /** The most the request can use, priced at the dearest instance to reserve its worst case. */
  bound: BillableUsage;
  /**
   * The prompt grows while the job runs (Anthropic server tools, MCP servers): its bound is
   * the serving instance's context length, not `bound.promptTokens` ({@link admittedPromptTokens}).
   */
  promptByContext?: boolean;
  /** The job's API and body for an instance, and the extension members it carries (`ext`). */
  job(instance: Instance): { api: JobApi; body: Record<string, unknown>; ext?: Record<string, unknown> };
  /** Whether a job event commits output to the consumer (before it, failover is invisible). */
  commits?(e: JobEvent, job: Job): boolean;
  /**
   * What a job on an instance is admitted to use, for the plausibility of its receipt
   * (SRP-ATT-015); default {@link defaultUsageBounds}.
   */
  bounds?(instance: Instance): UsageBounds;
  /**
   * The meter of a job whose output the surface translates (SRP-ATT-016): it measures what
   * the consumer is relayed; undefined (or absent) for a job relayed in its own API.
   */
  meter?(job: Job): OutputMeasurer | undefined;
  /**
   * The answer to a non-streamed request. `done.usage` is what was billed (the countersigned
   * receipt's usage, or nothing: SRP-ATT-019), never the node's own report.
   */
  respond(
    job: Job,
    done: Done,
    ext: SrpUsageExtension,
    headers: Record<string, string>,
    accountId: string,
    result?: Uint8Array,
  ): Response | Promise<Response>;
  /** The encoder of a streamed answer; `accountId` is the paying account's. */
  encoder?(job: Job, accountId: string): StreamEncoder;
  /**
   * The request's prefix key (`routing/affinity.ts`; SRP-CON-070): requests with the same key
   * go to the instance that served it recently while it can take them. Absent: no affinity.
   */
  affinityKey?: string;
}

/** A consumer API served through the relay. */
export interface Surface {
  /** The surface's jobs are async: admitted, answered 202 and run in the background (`ConsumerApiContext.asyncJobs`). */
  async?: boolean;
  /** The API as an x402 resource (its discovery entry). */
  resource(url: string): PaidResource;
  /** An error response in the API's own shape. */
  error(error: SrpError, headers?: Record<string, string>): Response;
  /** Reads the request into a JSON body (JSON by default; multipart for transcriptions). */
  read(request: Request, maxBytes: number): Promise<Record<string, unknown> | SrpError>;
  /**
   * Checks the body (and the headers it may need) and plans the request. `accountId` is the
   * paying account's ("" for an x402 payer, whose account is known only once it has paid).
   */
  plan(
    body: Record<string, unknown>,
    ctx: ConsumerApiContext,
    request: Request,
    accountId: string,
  ): Plan | SrpError | Promise<Plan | SrpError>;
}

const RECEIPT_HEADER = "x-srp-receipt";

function extension(usage: Usage, receipt: Receipt | undefined, jobId: string, billed: Billed, rejected?: SrpError): SrpUsageExtension {
  const units = billed.charged ?? (receipt && billed.recorded ? parseAmount(receipt.cost) : 0n);
  return {
    cost: formatUsdc(units),
    cost_units: formatAmount(units),
    receipt_id: receipt && billed.recorded ? jobId : null,
    measured: usage.measured,
    ...(!receipt && rejected ? { receipt_error: rejected.code } : {}),
  };
}

/** Usage of a job nothing was billed for. */
const NOTHING_BILLED: Usage = Object.freeze({ promptTokens: 0, completionTokens: 0, measured: false });

/**
 * The usage a consumer is shown for a job (SRP-ATT-019): the countersigned, stored
 * receipt's, else nothing (what was billed), whatever the node's chunks or body said.
 */
export function billedUsage(receipt: Receipt | undefined, recorded: boolean): Usage {
  return receipt && recorded ? receipt.usage : NOTHING_BILLED;
}

/** A `done` whose usage is what was billed, and the usage extension that goes with it. */
function shown(e: Extract<JobEvent, { type: "done" }>, jobId: string, billed: Billed): { done: Done; ext: SrpUsageExtension } {
  const usage = billedUsage(e.receipt, billed.recorded);
  return { done: { ...e.done, usage }, ext: extension(usage, e.receipt, jobId, billed, e.rejected) };
}

/**
 * What a planned request's job on `instance` is admitted to use (SRP-ATT-015): the plan's
 * prompt bound; the request's output limit, else (a chat request without one) the
 * instance's context length less the prompt; the images, characters and seconds asked for.
 */
export function defaultUsageBounds(
  plan: Pick<Plan, "bound" | "capabilities" | "promptByContext">,
  instance: Pick<Instance, "contextLength" | "capabilities">,
): UsageBounds {
  const { bound } = plan;
  const chat = plan.capabilities.includes("chat");
  return {
    promptTokens: admittedPromptTokens(plan, instance.contextLength),
    ...(chat && bound.completionTokens === 0 ? { contextTokens: instance.contextLength } : { outputTokens: bound.completionTokens }),
    images: bound.images ?? 0,
    characters: bound.characters ?? 0,
    seconds: bound.seconds ?? 0,
    ...(bound.runs ? { runs: bound.runs } : {}),
    hiddenReasoning: instance.capabilities.includes("reasoning"),
  };
}

/**
 * The prompt bound a plan is admitted with on an instance of `contextLength` tokens (the
 * largest context online, for the reservation): the plan's byte bound, or, for a prompt
 * that grows while the job runs (`promptByContext`), at least the context length. Admission
 * (the worst case reserved) and plausibility (SRP-ATT-015) both use this one bound.
 */
export function admittedPromptTokens(plan: Pick<Plan, "bound" | "promptByContext">, contextLength: number): number {
  return plan.promptByContext ? Math.max(plan.bound.promptTokens, contextLength) : plan.bound.promptTokens;
}

/** Shortest deadline a consumer may ask for. */
const MIN_TIMEOUT_MS = 1000;

/** Longest deadline a consumer may ask for. */
const MAX_TIMEOUT_MS = 3_600_000;

/**
 * The request's time budget, and whether the consumer chose it (SRP-CON-025): header
 * `x-srp-timeout-ms`, a positive decimal integer clamped to 1 s .. 1 h; anything else
 * (absent, `0`, `-5`, `1e4`, `0x10`) is ignored and the hub's default applies.
 *
 * @example
 * timeoutOf(new Request("http://h", { headers: { "x-srp-timeout-ms": "250" } }), 120_000); // { ms: 1000, chosen: true }
 */
export function timeoutOf(request: Request, fallback: number): { ms: number; chosen: boolean } {
  const h = request.headers.get("x-srp-timeout-ms")?.trim();
  if (h === undefined || !/^[1-9][0-9]*$/.test(h)) return { ms: fallback, chosen: false };
  const n = h.length > 10 ? MAX_TIMEOUT_MS : Number(h);
  return { ms: Math.min(Math.max(n, MIN_TIMEOUT_MS), MAX_TIMEOUT_MS), chosen: true };
}

/** The most a request may cost, and what that bound assumes. */
export interface MaximumCost {
  cost: bigint;
  promptTokens: number;
  completionTokens: number;
  /** Per 1M units, atomic units: the dearest price among the instances that could serve it. */
  price: { input: string; output: string; image?: string; character?: string; second?: string; run?: string };
}

const UNIT_PRICES = ["image", "character", "second", "run"] as const;

/**
 * The most a request may cost: its usage bound at the dearest price among the instances
 * that could serve it (tokens capped by the consumer's `srp.max_price`). A bound without
 * `completionTokens` (0) for a chat request means "the largest context online less the
 * prompt". With `promptByContext`, the prompt bound is at least the largest context online
 * ({@link admittedPromptTokens}). Undefined when no instance serves the model.
 */
export function maximumCost(
  router: Router,
  model: string,
  bound: BillableUsage,
  maxPrice: Preferences["maxPrice"],
  capabilities: readonly Capability[] = [],
  promptByContext = false,
): MaximumCost | undefined {
  // Maxima over the instances are maxima over their summaries: a few per model, not one per instance.
  const all = router.offers(model);
  const able = all.filter((v) => capabilities.every((c) => v.capabilities.includes(c)));
  const views = able.length > 0 ? able : all;
  if (views.length === 0) return undefined;
  return maximumCostOn(views, bound, maxPrice, capabilities, promptByContext);
}

/**
 * The most a request may cost on any of `views` (at least one): {@link maximumCost} for a
 * given set of instances. On one instance, it is that instance's worst case for the request,
 * which routing compares with what was reserved ({@link withinReservation}).
 */
export function maximumCostOn(
  views: readonly Pick<CandidateView, "price" | "contextLength">[],
  bound: BillableUsage,
  maxPrice: Preferences["maxPrice"],
  capabilities: readonly Capability[] = [],
  promptByContext = false,
): MaximumCost {
  let input = 0n;
  let output = 0n;
  const units: Record<(typeof UNIT_PRICES)[number], bigint> = { image: 0n, character: 0n, second: 0n, run: 0n };
  let context = 0;
  for (const v of views) {
    // Every prompt token may be a cache write, which may cost more than plain input.
    const write = v.price.cacheWrite === undefined ? 0n : BigInt(v.price.cacheWrite);
    const plain = BigInt(v.price.input);
    const i = write > plain ? write : plain;
    const o = BigInt(v.price.output);
    if (i > input) input = i;
    if (o > output) output = o;
    for (const u of UNIT_PRICES) {
      const p = v.price[u] === undefined ? 0n : BigInt(v.price[u]!);
      if (p > units[u]) units[u] = p;
    }
    if (v.contextLength > context) context = v.contextLength;
  }
  if (maxPrice?.input !== undefined && maxPrice.input < input) input = maxPrice.input;
  if (maxPrice?.output !== undefined && maxPrice.output < output) output = maxPrice.output;
  const promptTokens = admittedPromptTokens({ bound, promptByContext }, context);
  const completionTokens =
    bound.completionTokens > 0 || !capabilities.includes("chat") ? bound.completionTokens : Math.max(context - promptTokens, 1);
  const price: MaximumCost["price"] = { input: input.toString(), output: output.toString() };
  for (const u of UNIT_PRICES) if (units[u] > 0n) price[u] = units[u].toString();
  const usage: BillableUsage = { promptTokens, completionTokens };
  if (bound.images) usage.images = bound.images;
  if (bound.characters) usage.characters = bound.characters;
  if (bound.seconds) usage.seconds = bound.seconds;
  if (bound.runs) usage.runs = bound.runs;
  return { cost: priceCost(usage, price), promptTokens, completionTokens, price };
}

/** The maximum a planned request is admitted with, and the model it was priced for. */
export interface AdmissionMaximum extends MaximumCost {
  /** The model whose worst case it is: the request's, or the dearest of its fallbacks that is served. */
  model: string;
}

/**
 * The maximum cost admission reserves for a planned request (SRP-BIL-003): {@link maximumCost}
 * of its bound on its model, or with fallback `models` (SRP-CON-062) the dearest of those
 * served. Undefined when none is served. `POST /v1/estimate` answers this same amount.
 */
export function admissionMaximum(
  router: Router,
  plan: Pick<Plan, "model" | "bound" | "prefs" | "capabilities" | "promptByContext">,
  models?: readonly string[],
): AdmissionMaximum | undefined {
  let dearest: AdmissionMaximum | undefined;
  for (const model of models ?? [plan.model]) {
    const max = maximumCost(router, model, plan.bound, plan.prefs.maxPrice, plan.capabilities, plan.promptByContext);
    if (max !== undefined && (dearest === undefined || max.cost > dearest.cost)) dearest = { ...max, model };
  }
  return dearest;
}

/**
 * Whether an instance may serve a planned request whose worst case `reserved` was reserved
 * (SRP-BIL-003): its own worst case for the request ({@link maximumCostOn}) is not more. An
 * instance that came online (or a model of `models` tried) after admission, at a higher price
 * or with a longer context than the reservation assumed, is not routed to: the consumer could
 * otherwise be charged more than was reserved, which the ledger caps at the platform's cost.
 */
export function withinReservation(
  plan: Pick<Plan, "bound" | "prefs" | "capabilities" | "promptByContext">,
  reserved: bigint,
): (v: Pick<CandidateView, "price" | "contextLength">) => boolean {
  return (v) => maximumCostOn([v], plan.bound, plan.prefs.maxPrice, plan.capabilities, plan.promptByContext).cost <= reserved;
}

/** What routing needs to know of a planned request. */
function routeNeeds(plan: Plan): RouteNeeds {
  const { prefs } = plan;
  return {
    model: plan.model,
    capabilities: plan.capabilities,
    contextTokens: plan.contextTokens,
    ...(prefs.maxPrice ? { maxPrice: prefs.maxPrice } : {}),
    ...(prefs.only ? { only: prefs.only } : {}),
    ...(prefs.ignore ? { ignore: prefs.ignore } : {}),
    ...(prefs.quantizations ? { quantizations: prefs.quantizations } : {}),
  };
}

/** The response with the payment's settlement header (`PAYMENT-RESPONSE`, or `X-PAYMENT-RESPONSE` for a version-1 payer) added, the payment ended as `served` says. */
async function withPayment(response: Response, admission: Admission, served: boolean): Promise<Response> {
  response.headers.set(admission.responseHeader, await admission.finish(served));
  return response;
}

/**
 * Who pays for a request: the account of its API key (refused while it owes for a payment
 * that did not settle), or, without a key on a hub that takes them, an x402 payment
 * (`payments`; the account is then the paying wallet's, known once the payment is admitted).
 */
export async function payer(
  request: Request,
  ctx: ConsumerApiContext,
): Promise<{ accountId: string; payments?: X402Payments; key?: RequestKey } | SrpError> {
  if (ctx.payments && ctx.ledger && bearer(request) === undefined) return { accountId: "", payments: ctx.payments };
  const account = await authenticate(request, ctx.accounts, (e) => ctx.storageError("authenticate", e));
  if (account instanceof SrpError) return account;
  // An account that owes for a payment that did not settle spends nothing until it has repaid.
  if (ctx.payments) {
    const owed = await ctx.payments.outstandingDebt(account.id).catch((e: unknown) => (ctx.storageError("debt", e), 0n));
    if (owed > 0n)
      return new SrpError(
        "payment.wallet_blocked",
        `this account owes ${owed} units from a payment that did not settle; a deposit repays it`,
      );
  }
  return account.key ? { accountId: account.id, key: account.key } : { accountId: account.id };
}

/**
 * x402 (SRP-PAY-001..): quotes `amount` for `resource` (a 402 when the request carries no
 * `PAYMENT-SIGNATURE`, nor a version-1 `X-PAYMENT`), else verifies, locks and, per the
 * hub's mode, settles the payment.
 * Answers the admitted payment, or the response that refuses it.
 */
export async function admitPayment(
  request: Request,
  ctx: ConsumerApiContext,
  payments: X402Payments,
  amount: bigint,
  resource: PaidResource,
  error: Surface["error"],
  mode?: "before" | "after",
): Promise<Admission | Response> {
  const header = paymentHeaderOf(request.headers);
  if (header === undefined) return payments.required(amount, resource);
  try {
    await ctx.ledgerReady;
    const admitted = await payments.admit(header, amount, resource.url, mode ? { mode } : {});
    if (admitted instanceof SrpError) return admitted.httpStatus === 402 ? payments.required(amount, resource, admitted) : error(admitted);
    return admitted;
  } catch (e) {
    ctx.storageError("x402 payment", e);
    return error(new SrpError("payment.unavailable", "the hub cannot take payments now; retry shortly"));
  }
}

/**
 * Serves one consumer request of a surface: authenticates it (an API key, or an x402
 * payment on a hub that takes them), plans it, reserves its worst case, relays it with
 * failover before content, answers in the surface's format with the cost, and settles
 * or releases the reservation.
 */
export async function serve(request: Request, ctx: ConsumerApiContext, surface: Surface): Promise<Response> {
  const error = (e: SrpError, headers?: Record<string, string>) => surface.error(e, headers);
  if (surface.async && !ctx.asyncJobs) return error(new SrpError("api.not_found", "this hub runs no async jobs"));
  const who = await payer(request, ctx);
  if (who instanceof SrpError) return error(who);
  const payments = who.payments;
  let accountId = who.accountId;
  const body = await surface.read(request, ctx.maxBodyBytes);
  if (body instanceof SrpError) return error(body);
  // Fallback models (SRP-CON-058): read and taken out of the body (never sent to a node); `model` may then be omitted.
  const fallbacks = modelList(body);
  if (fallbacks instanceof SrpError) return error(fallbacks);
  const given = typeof body.model === "string" ? body.model : undefined;
  if (fallbacks) {
    delete body.models;
    if (body.model === undefined) body.model = fallbacks[0];
  }
  // A hub of several processes: a model offered a moment ago on another process may not be known here yet (plans read the offers).
  const asked = fallbacks ?? (typeof body.model === "string" ? [body.model] : []);
  // At most once per request: the relay does not wait again (RunOptions.caughtUp).
  const caughtUp =
    ctx.catchUp !== undefined && asked.length > 0 && !asked.includes("auto") && asked.every((m) => ctx.router.count(m) === 0);
  if (caughtUp) await ctx.catchUp!(asked);
  const plan = await surface.plan(body, ctx, request, accountId);
  if (plan instanceof SrpError) return error(plan);
  const timeout = timeoutOf(request, ctx.requestTimeoutMs);
  const models = fallbacks ? modelsToTry(given, fallbacks, plan.prefs.allowFallbacks) : undefined;
  // The key's allowed models (SRP-CON-086): every model the request may be served by.
  const disallowed = who.key ? modelNotAllowed(who.key.policy, models ?? [plan.model]) : undefined;
  if (disallowed) return error(disallowed);

  // The key's rate limits (SRP-CON-087): a request over one is refused before any money is held.
  const estimate = estimatedTokens(plan);
  const limited =
    who.key && hasRateLimits(who.key.policy) && ctx.keyLimits ? await admitKeyRate(ctx.keyLimits, who.key, estimate) : undefined;
  if (limited && !limited.ok) return error(rateLimitError(limited), limited.headers);
  // Demand only for a model some instance serves: a stranger's made-up names are not remembered (nor noted).
  const note = noteOf(request) ?? (limited ? openNote(request, "") : undefined);
  // The note names a model only once a job runs: the serving instance's model, not a name the client chose.
  if (ctx.router.count(plan.model) > 0) ctx.noteDemand(plan.model);
  const admitted: AdmittedRequest = { request, surface, error, payments, accountId, key: who.key, plan, models, timeout, caughtUp, note };
  if (!limited) return holdAndRun(ctx, admitted);
  let response: Response;
  try {
    response = await holdAndRun(ctx, admitted);
  } catch (e) {
    limited.release(0);
    throw e;
  }
  return releasedAtEnd(response, limited, note, estimate);
}

/** A consumer request authenticated, planned and within its key's limits: what {@link holdAndRun} needs. */
interface AdmittedRequest {
  request: Request;
  surface: Surface;
  error: (e: SrpError, headers?: Record<string, string>) => Response;
  payments: X402Payments | undefined;
  accountId: string;
  key: RequestKey | undefined;
  plan: Plan;
  models: string[] | undefined;
  timeout: ReturnType<typeof timeoutOf>;
  caughtUp: boolean;
  note: RequestNote | undefined;
}

/**
 * Holds a planned request's worst case (an x402 payment first when it pays that way; the
 * key's budget with the money) and relays it; answers the refusal when it cannot be held.
 */
async function holdAndRun(ctx: ConsumerApiContext, a: AdmittedRequest): Promise<Response> {
  const { request, surface, error, payments, plan, models, timeout, caughtUp, note, key } = a;
  let accountId = a.accountId;
  // Admission: reserve the worst case before routing, so concurrent requests can never overspend.
  let reservationId: string | undefined;
  let admission: Admission | undefined;
  let reserved: bigint | undefined;
  if (ctx.ledger) {
    // With fallbacks, the dearest of the listed models that is served (SRP-CON-062).
    const max = admissionMaximum(ctx.router, plan, models)?.cost;
    if (max === undefined)
      return error(new SrpError("job.unknown_model", `model ${models?.join(", ") ?? plan.model} is not served by any online provider`));
    if (payments) {
      // An async job runs later, on money that has arrived: its payment settles before it is admitted.
      const admitted = await admitPayment(
        request,
        ctx,
        payments,
        max,
        surface.resource(request.url),
        error,
        surface.async ? "before" : undefined,
      );
      if (admitted instanceof Response) return admitted;
      admission = admitted;
      accountId = admission.accountId;
    }
    let r;
    try {
      await ctx.ledgerReady;
      r = await ctx.ledger.reserve(accountId, max, key ? { keyId: key.keyId, budget: key.policy.budget } : undefined);
    } catch (e) {
      ctx.storageError("reserve", e);
      const unavailable = error(new SrpError("billing.unavailable", "the hub's ledger cannot take requests now; retry shortly"));
      return admission ? withPayment(unavailable, admission, false) : unavailable;
    }
    if (!r.ok) {
      if (r.keyBudget) return error(keyBudgetError(r.keyBudget, max));
      if (admission)
        return withPayment(
          error(new SrpError("billing.insufficient_credits", "the payment does not cover this request's maximum cost")),
          admission,
          false,
        );
      return error(
        new SrpError(
          "billing.insufficient_credits",
          `this request may cost up to ${formatUsdc(max)} USD (${max} units); the account can spend ${formatUsdc(r.available)} USD. Lower max_tokens or add credits.`,
          {
            details: { required: max.toString(), available: r.available.toString() },
          },
        ),
      );
    }
    reservationId = r.reservationId;
    reserved = max;
  }
  if (surface.async && ctx.asyncJobs) {
    // Admitted: a payment has served its purpose (what the job does not use stays as prepaid balance).
    const paid = admission ? { [admission.responseHeader]: await admission.finish(true) } : {};
    return ctx.asyncJobs.start({ request, plan, accountId, keyed: !payments, reservationId, reserved, models, note, paid });
  }
  const queueMs = ctx.waiting ? queueWaitOf(request.headers.get(QUEUE_TIMEOUT_HEADER), ctx.waiting.options) : undefined;
  return runPlan(ctx, plan, {
    accountId,
    reservationId,
    admission,
    signal: request.signal,
    timeout,
    error,
    ...(models ? { models } : {}),
    ...(queueMs !== undefined ? { queueMs } : {}),
    ...(reserved !== undefined ? { reserved } : {}),
    ...(caughtUp ? { caughtUp } : {}),
    ...(note ? { note } : {}),
  });
}

/**
 * How long before an x402 authorization expires a hub that settles after serving must have
 * settled it: time for the settlement to land on the chain (the default validity asked of an
 * `after` payment is the request time-out plus this).
 */
export const SETTLE_MARGIN_MS = 60_000;

/**
 * The time (ms since the epoch) by which a request paid by an x402 authorization that settles
 * after serving must be ready to settle: the authorization's `validBefore` less `marginMs`.
 * Such a request waits for a slot only until then, and when not streamed (settled after the
 * whole answer) runs only until then; a streamed one settles at its first output. Undefined
 * when there is no such payment (none, or settled before serving).
 *
 * @example
 * settleBy({ mode: "after", validBefore: 1_700_000_300 }); // 1_700_000_240_000
 * settleBy({ mode: "before", validBefore: 1_700_000_300 }); // undefined
 */
export function settleBy(
  payment: Pick<PaymentRecord, "mode" | "validBefore"> | undefined,
  marginMs = SETTLE_MARGIN_MS,
): number | undefined {
  if (payment?.mode !== "after") return undefined;
  return payment.validBefore * 1000 - marginMs;
}

/** Who a planned request is for and how it may run. */
export interface RunOptions {
  /** The consumer account billed. */
  accountId: string;
  /** Its reservation of the request's worst case (a billing hub). */
  reservationId: string | undefined;
  /** An x402 payment to finish when the request ends. */
  admission?: Admission | undefined;
  /** Fires when the consumer goes away. */
  signal: AbortSignal;
  /** The request's time budget, and whether the consumer chose it. */
  timeout: { ms: number; chosen: boolean };
  /** An error response in the surface's shape. */
  error(e: SrpError, headers?: Record<string, string>): Response;
  /**
   * Release the reservation at once when the hub cancels the job (deadline, hub closing),
   * instead of waiting for a late `done` to bill it: a batch item that failed is never billed.
   */
  releaseOnCancel?: boolean;
  /** The models to try in order (SRP-CON-060); absent: the plan's model only. */
  models?: readonly string[];
  /** How long the request may wait for a slot while every instance is busy (SRP-CON-064), ms; 0: not at all; absent: no part in queueing. */
  queueMs?: number;
  /** The worst case reserved for the request: no instance whose worst case for it is more is routed to (SRP-BIL-003). Absent: any price. */
  reserved?: bigint;
  /** The request already waited for other processes' announcements of its models (a hub of several processes): routing does not wait again. */
  caughtUp?: boolean;
  /** Where the request's served model and billed usage are noted for the hub's `request` event. */
  note?: RequestNote;
  /** Told of an async job's progress (SRP-JOB-041). */
  onProgress?: (job: Job, progress: number, message?: string) => void;
}

/**
 * The time a request runs under: its own budget, cut short for a non-streamed request paid
 * by an x402 authorization settled after serving, which must still be valid when the hub
 * settles it (SRP-PAY-013): it then runs only until `settleLimit` ({@link settleBy}), and
 * counts as a deadline the consumer chose. A streamed one settles at its first output.
 *
 * @example
 * runTimeout(false, { ms: 120_000, chosen: false }, 1_000_030_000, 1_000_000_000); // { ms: 30_000, chosen: true }
 */
export function runTimeout(
  stream: boolean,
  timeout: RunOptions["timeout"],
  settleLimit: number | undefined,
  now: number,
): RunOptions["timeout"] {
  if (stream || settleLimit === undefined || settleLimit >= now + timeout.ms) return timeout;
  return { ms: Math.max(0, settleLimit - now), chosen: true };
}

/** The job's side of the consumer's signal: aborted when the consumer goes away, or by `abort` (a cancelled stream). */
interface ConsumerLink {
  signal: AbortSignal;
  abort(): void;
  /** Removes the listener on the consumer's signal. */
  detach(): void;
}

function linkConsumer(signal: AbortSignal): ConsumerLink {
  const consumer = new AbortController();
  const onAbort = () => consumer.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) consumer.abort();
  return { signal: consumer.signal, abort: () => consumer.abort(), detach: () => signal.removeEventListener("abort", onAbort) };
}

/** When a running request must end, and what the relay and its events are told of it. */
interface RunLimits {
  deadline: number;
  /** The consumer chose the deadline (or an x402 settle limit set it). */
  consumerDeadline: boolean;
  /** When an x402 payment settled after serving must be ready to settle (SRP-PAY-013). */
  settleLimit: number | undefined;
  signal: AbortSignal;
}

/**
 * What the relay is asked for a planned request: routing within what was reserved
 * (SRP-BIL-003), the preferred order, the models to try (SRP-CON-060), the wait for a slot
 * (SRP-CON-064) bounded by the deadline and the settle limit, and prefix affinity per paying
 * account (SRP-CON-070): accounts never share a remembered instance.
 */
function relayRequest(ctx: ConsumerApiContext, plan: Plan, run: RunOptions, limits: RunLimits): RelayRequest {
  const { accountId, reservationId } = run;
  const { deadline } = limits;
  return {
    prepare: (instance) => plan.job(instance),
    stream: plan.stream,
    needs: run.reserved === undefined ? routeNeeds(plan) : { ...routeNeeds(plan), within: withinReservation(plan, run.reserved) },
    sort: plan.prefs.sort,
    allowFallbacks: plan.prefs.allowFallbacks,
    ...(plan.prefs.order ? { order: { selectors: plan.prefs.order, only: !plan.prefs.allowFallbacks } } : {}),
    deadline,
    consumerDeadline: limits.consumerDeadline,
    signal: limits.signal,
    onJob: (job) => ctx.setJobOwner(job.jobId, accountId, reservationId),
    // The request's id (and trace context, while traced) in every job's ext (SRP-JOB-037).
    ...(run.note ? { observe: watchJobs(run.note) } : {}),
    bounds: (instance) => (plan.bounds ? plan.bounds(instance) : defaultUsageBounds(plan, instance)),
    ...(plan.meter ? { meter: (job: Job) => plan.meter!(job) } : {}),
    ...(plan.commits ? { commits: (e: JobEvent, job: Job) => plan.commits!(e, job) } : {}),
    ...(run.onProgress ? { onProgress: run.onProgress } : {}),
    ...(plan.affinityKey !== undefined ? { affinityKey: accountAffinityKey(plan.affinityKey, accountId) } : {}),
    ...(run.models ? { models: run.models } : {}),
    ...(run.queueMs !== undefined ? { queueUntil: Math.min(Date.now() + run.queueMs, deadline, limits.settleLimit ?? Infinity) } : {}),
    ...(run.caughtUp ? { caughtUp: true } : {}),
    accountId,
  };
}

/** A request whose output is committed to one job: what answering it needs. */
interface CommittedRun<P extends Plan = Plan> {
  plan: P;
  run: RunOptions;
  committed: Committed;
  events: AsyncGenerator<JobEvent>;
  consumer: ConsumerLink;
  /** Ends the request's billing ({@link closeBilling}). */
  close: CloseBilling;
}

/** A plan answered as a stream. */
type StreamedPlan = Plan & { encoder: NonNullable<Plan["encoder"]> };

function streamed(plan: Plan): plan is StreamedPlan {
  return plan.stream && plan.encoder !== undefined;
}

/** The headers naming the job's receipt (`x-srp-receipt`) and the model that served it. */
function receiptHeaders(job: Job): Record<string, string> {
  return { [RECEIPT_HEADER]: job.jobId, "x-srp-model": job.model };
}

/** Whether an x402 payment of a non-streamed request is settled: the job answered, or the hub cancelled it (it may still end in a billable receipt). */
function paymentServed(e: JobEvent): boolean {
  return (e.type === "done" && e.done.response !== undefined) || cancelledByHub(e);
}

/**
 * A request no job took (the relay failed before content): the reservation is released as
 * not served, and an x402 payment is finished unserved.
 */
async function notRelayed(ctx: ConsumerApiContext, run: RunOptions, consumer: ConsumerLink, failure: unknown): Promise<Response> {
  const { admission, error } = run;
  consumer.detach();
  await closeBilling(ctx, run, undefined);
  const failed = error(failure instanceof SrpError ? failure : new SrpError("internal", "relay failed", { cause: failure }));
  return admission ? withPayment(failed, admission, false) : failed;
}

/**
 * The answer to a non-streamed request, once its job has ended: billing closed, an x402
 * payment finished (served when the job answered or the hub cancelled it), then the
 * surface's answer with the billed usage (SRP-ATT-019) and `x-srp-receipt` only when a
 * countersigned receipt was stored; without a response, `job.upstream_error`.
 */
async function answerOnce({ plan, run, committed, events, consumer, close }: CommittedRun): Promise<Response> {
  const { admission, error } = run;
  const e = (await events.next()).value as JobEvent;
  await events.return(undefined); // runs follow()'s clean-up (deadline timer, abort listener)
  consumer.detach();
  const billed = await close(e);
  const paid = admission ? { [admission.responseHeader]: await admission.finish(paymentServed(e)) } : {};
  if (e.type !== "done" || e.done.response === undefined) {
    return error(
      new SrpError("job.upstream_error", e.type === "error" ? e.error.message : "the provider ended the job without a response"),
      paid,
    );
  }
  const out = { ...(e.receipt && billed.recorded ? receiptHeaders(committed.job) : { "x-srp-model": committed.job.model }), ...paid };
  const answer = shown(e, committed.job.jobId, billed);
  noteBilled(run.note, committed.job.model, answer.done.usage, answer.ext.cost_units);
  return plan.respond(committed.job, answer.done, answer.ext, out, run.accountId, e.result);
}

/**
 * The streamed answer: the provider has started answering, so an x402 payment settles now
 * (in `after` mode) and `PAYMENT-RESPONSE` tells how; its bookkeeping failing is reported
 * (reconciliation settles it later) and the answer still streams and bills. The body is
 * {@link streamBody}, whose billing ends once ({@link closeOnce}).
 */
async function answerStream(
  ctx: ConsumerApiContext,
  { plan, run, committed, events, consumer, close }: CommittedRun<StreamedPlan>,
): Promise<Response> {
  const headers = receiptHeaders(committed.job);
  if (run.admission) {
    try {
      headers[run.admission.responseHeader] = await run.admission.finish(true);
    } catch (e) {
      ctx.storageError("finish an x402 payment", e);
    }
  }
  const wire = plan.encoder(committed.job, run.accountId);
  const endBilling = closeOnce(close);
  const body = streamBody(events, {
    chunk: (data) => wire.chunk(data),
    end: async (e) => {
      // Shown = billed (SRP-ATT-019): the receipt's usage, or nothing with the reason the receipt was refused.
      const answer = shown(e, committed.job.jobId, await endBilling(e));
      noteBilled(run.note, committed.job.model, answer.done.usage, answer.ext.cost_units);
      const end = wire.end(answer.done, answer.ext);
      if (wire.finish) await wire.finish();
      return end;
    },
    fail: (code, message) => wire.fail(code, message),
    endBilling,
    abort: consumer.abort,
    detach: consumer.detach,
  });
  return new Response(body, { status: 200, headers: { ...headers, ...STREAM_HEADERS } });
}

/**
 * Runs an admitted request: relays it with failover before content, answers in the
 * surface's format with the cost, and settles or releases its reservation. Every path that
 * reserved ends its billing once ({@link closeBilling}).
 */
export async function runPlan(ctx: ConsumerApiContext, plan: Plan, run: RunOptions): Promise<Response> {
  const settleLimit = settleBy(run.admission?.payment);
  const now = Date.now();
  const timeout = runTimeout(plan.stream, run.timeout, settleLimit, now);
  const deadline = now + timeout.ms;
  const close: CloseBilling = (e, consumerLeft = false) => closeBilling(ctx, run, e, consumerLeft);
  const consumer = linkConsumer(run.signal);
  let committed: Committed;
  try {
    committed = await relay(
      ctx,
      relayRequest(ctx, plan, run, { deadline, consumerDeadline: timeout.chosen, settleLimit, signal: consumer.signal }),
    );
  } catch (e) {
    return notRelayed(ctx, run, consumer, e);
  }
  if (run.note) run.note.model = committed.job.model;
  const events = follow(ctx, { deadline, signal: consumer.signal, consumerDeadline: timeout.chosen }, committed);
  const answering = { plan, run, committed, events, consumer, close };
  return streamed(plan) ? answerStream(ctx, { ...answering, plan }) : answerOnce(answering);
}
