/**
 * `POST /v1/estimate` for every surface (SRP-BIL-018): `{ endpoint, body }` is planned by the
 * endpoint's own planner and priced by the function its admission reserves with
 * ({@link admissionMaximum}; a batch: {@link batchTotal} of its items), so the answer's
 * `maximum` is exactly what that request would hold. The dispatch is {@link ESTIMATORS}, a
 * table from endpoint to a small estimator: a new surface adds one entry.
 */
import { SrpError } from "@srp/core";
import { BatchRequest, checkConsumerBody, type Price } from "@srp/core/schema";
import type { AccountStore } from "../accounts.js";
import type { LedgerBooks } from "../ledger/ledger.js";
import { discounted } from "../ledger/policy.js";
import { modelList, modelsToTry } from "../routing/fallbacks.js";
import type { Router } from "../routing/router.js";
import { messagesSurface } from "./anthropic.js";
import { RUNS_PATH, runsSurface, VIDEOS_PATH, videosSurface } from "./async-surfaces.js";
import { BATCH_LIMITS, BATCH_PATH, batchTotal, planItems } from "./batch.js";
import { completionsSurface } from "./completions.js";
import { authenticate, errorResponse, fail } from "./http.js";
import { MODALITY_SURFACES, secondsBoundOf } from "./modalities.js";
import { money } from "./money.js";
import { chatSurface } from "./openai.js";
import { responsesSurface } from "./responses.js";
import { admissionMaximum, maximumCostOn, type AdmissionMaximum, type ConsumerApiContext, type Plan, type Surface } from "./serve.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** What estimating a request needs: the consumer surfaces' context, the caller's account ("" without a key) and discount. */
export interface EstimateContext {
  consumer: ConsumerApiContext;
  /** The estimate request itself (its headers, such as `anthropic-beta`, reach the planner as a real request's would). */
  request: Request;
  /** The caller's account ("" without a key): a Responses body continuing a stored turn is planned with it. */
  accountId: string;
}

/** The estimate of one request (or one batch). */
export interface EndpointEstimate {
  /** The model priced (the dearest served of fallback `models`); null for a batch. */
  model: string | null;
  /** What admission reserves, atomic units. */
  maximum: bigint;
  /** The expected cost before any discount, atomic units. */
  expectedBeforeDiscount: bigint;
  /** The discount a request of this endpoint gets at least (a batch's 10 %), basis points. */
  minDiscountBps: number;
  /** What the amounts assume, as the answer shows it. */
  basis: Json;
}

/** An estimator: plans `body` as its endpoint would and prices it. */
export type Estimator = (body: Json, ctx: EstimateContext) => Promise<EndpointEstimate | SrpError>;

/** Output tokens the expected cost assumes for a chat request without an output limit. */
const EXPECTED_OUTPUT_WITHOUT_LIMIT = 512;
/** Bytes a token covers, about, for the expected cost (the maximum assumes one). */
const BYTES_PER_TOKEN = 4;

/**
 * The expected cost of a plan on `model`: its bound with a quarter of the prompt bound (about 4 bytes
 * a token) and half the output limit (512 tokens for a chat request without one), its units
 * (images, characters, seconds) as bounded, at the cheapest price online for the model.
 */
export function expectedCost(
  router: Router,
  plan: Pick<Plan, "bound" | "prefs" | "capabilities">,
  model: string,
): { cost: bigint; basis: Json } {
  const cheapest = router.cheapest(model);
  const { bound } = plan;
  const completion =
    bound.completionTokens > 0
      ? Math.ceil(bound.completionTokens / 2)
      : plan.capabilities.includes("chat")
        ? EXPECTED_OUTPUT_WITHOUT_LIMIT
        : 0;
  const usage = { ...bound, promptTokens: Math.ceil(bound.promptTokens / BYTES_PER_TOKEN), completionTokens: completion };
  if (cheapest === undefined) return { cost: 0n, basis: usageBasis(usage, { input: "0", output: "0" }) };
  const { cacheWrite: _write, cachedInput: _read, ...price } = cheapest;
  const est = maximumCostOn([{ price, contextLength: 0 }], usage, plan.prefs.maxPrice, plan.capabilities);
  return {
    cost: est.cost,
    basis: usageBasis({ ...usage, promptTokens: est.promptTokens, completionTokens: est.completionTokens }, est.price),
  };
}

/** The usage and prices an amount assumes, in the answer's names. */
function usageBasis(usage: Plan["bound"], price: Price | AdmissionMaximum["price"]): Json {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    ...(usage.images ? { images: usage.images } : {}),
    ...(usage.characters ? { characters: usage.characters } : {}),
    ...(usage.seconds ? { seconds: usage.seconds } : {}),
    ...(usage.runs ? { runs: usage.runs } : {}),
    price_per_million: price,
  };
}

/** The estimate of a planned request: the maximum its admission reserves, and the expected cost. */
function planEstimate(router: Router, plan: Plan, models: readonly string[] | undefined): EndpointEstimate | SrpError {
  const max = admissionMaximum(router, plan, models);
  if (max === undefined)
    return new SrpError("job.unknown_model", `model ${models?.join(", ") ?? plan.model} is not served by any online provider`);
  const expected = expectedCost(router, plan, max.model);
  return {
    model: max.model,
    maximum: max.cost,
    expectedBeforeDiscount: expected.cost,
    minDiscountBps: 0,
    basis: {
      maximum: {
        ...usageBasis({ ...plan.bound, promptTokens: max.promptTokens, completionTokens: max.completionTokens }, max.price),
        ...(models ? { models } : {}),
        note: "what admission reserves: the endpoint's own bound of the request (the prompt's bytes bound its tokens; the output limit, or the largest context online; images, characters or seconds as bounded) at the dearest instance",
      },
      expected: {
        ...expected.basis,
        note: "about 4 bytes per prompt token; half the output limit; the cheapest instance online; your discount applied",
      },
    },
  };
}

/**
 * An estimator for a surface served by `serve`: fallback `models` read as admission reads
 * them (SRP-CON-058, SRP-CON-062), the body planned by the surface's own planner.
 */
export function surfaceEstimator(surface: Pick<Surface, "plan">): Estimator {
  return async (given, ctx) => {
    const body: Json = { ...given };
    const fallbacks = modelList(body);
    if (fallbacks instanceof SrpError) return fallbacks;
    const named = typeof body.model === "string" ? body.model : undefined;
    if (fallbacks) {
      delete body.models;
      if (body.model === undefined) body.model = fallbacks[0];
    }
    const { consumer } = ctx;
    const asked = fallbacks ?? (typeof body.model === "string" ? [body.model] : []);
    // A hub of several processes: a model offered a moment ago on another process may not be known here yet.
    if (consumer.catchUp && asked.length > 0 && !asked.includes("auto") && asked.every((m) => consumer.router.count(m) === 0))
      await consumer.catchUp(asked);
    const plan = await surface.plan(body, consumer, ctx.request, ctx.accountId);
    if (plan instanceof SrpError) return plan;
    const models = fallbacks ? modelsToTry(named, fallbacks, plan.prefs.allowFallbacks) : undefined;
    return planEstimate(consumer.router, plan, models);
  };
}

/**
 * A transcription is a multipart upload; its estimate takes a JSON stand-in with what the
 * bound needs: the form's other fields, and `duration_seconds` (the audio's length, as a PCM
 * WAV header states it: the bound is then exact) or `file_bytes` (the file's size, bounded at
 * 4 kbit/s as any other audio). The stand-in becomes the body the form would have been read into.
 */
export function transcriptionStandIn(body: Json): Json | SrpError {
  const { duration_seconds: duration, file_bytes: bytes, file, ...fields } = body;
  const number = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 1e12;
  if (file !== undefined)
    return new SrpError("api.invalid_body", "a transcription is estimated without its file: give `duration_seconds` or `file_bytes`");
  if (duration !== undefined && !number(duration)) return new SrpError("api.invalid_body", "`duration_seconds` is a non-negative number");
  if (bytes !== undefined && !(number(bytes) && Number.isInteger(bytes)))
    return new SrpError("api.invalid_body", "`file_bytes` is a non-negative integer");
  if (duration === undefined && bytes === undefined)
    return new SrpError("api.invalid_body", "a transcription estimate gives `duration_seconds` or `file_bytes` (the audio file's size)");
  const secondsBound = secondsBoundOf((bytes as number | undefined) ?? 0, duration as number | undefined);
  return { ...fields, file: { filename: "audio", content_type: "application/octet-stream", data: "", seconds_bound: secondsBound } };
}

/** The transcription estimator: its stand-in, planned by the transcription surface. */
const transcriptionEstimator: Estimator = (body, ctx) => {
  const standIn = transcriptionStandIn(body);
  if (standIn instanceof SrpError) return Promise.resolve(standIn);
  return surfaceEstimator(MODALITY_SURFACES["/v1/audio/transcriptions"]!)(standIn, ctx);
};

/** A batch (`POST /v1/batch`, its body as sent): the sum of its items' maximums, each item's estimate, the batch discount. */
const batchEstimator: Estimator = async (body, ctx) => {
  const problem = checkConsumerBody(BatchRequest, body);
  if (problem) return new SrpError("api.invalid_body", problem);
  const plans = await planItems(ctx.consumer, (body as unknown as BatchRequest).requests, ctx.accountId);
  if (plans instanceof SrpError) return plans;
  let expected = 0n;
  const items = plans.map((p) => {
    const e = expectedCost(ctx.consumer.router, p.plan, p.plan.model).cost;
    expected += e;
    return { custom_id: p.customId, endpoint: p.url, model: p.plan.model, maximum: money(p.max), expected_before_discount: money(e) };
  });
  return {
    model: null,
    maximum: batchTotal(plans),
    expectedBeforeDiscount: expected,
    minDiscountBps: BATCH_LIMITS.discountBps,
    basis: {
      maximum: { note: "what admission reserves: the sum of the items' maximums, each item's as its endpoint's admission bounds it" },
      expected: { note: "the sum of the items' expected costs; the batch discount (or your larger one) applied" },
      items,
    },
  };
};

/** The endpoints `POST /v1/estimate` estimates, and how: one entry per surface. */
export const ESTIMATORS: Readonly<Record<string, Estimator>> = {
  "/v1/chat/completions": surfaceEstimator(chatSurface),
  "/v1/messages": surfaceEstimator(messagesSurface),
  "/v1/responses": surfaceEstimator(responsesSurface),
  "/v1/completions": surfaceEstimator(completionsSurface),
  "/v1/embeddings": surfaceEstimator(MODALITY_SURFACES["/v1/embeddings"]!),
  "/v1/images/generations": surfaceEstimator(MODALITY_SURFACES["/v1/images/generations"]!),
  "/v1/audio/speech": surfaceEstimator(MODALITY_SURFACES["/v1/audio/speech"]!),
  "/v1/audio/transcriptions": transcriptionEstimator,
  [BATCH_PATH]: batchEstimator,
  [VIDEOS_PATH]: surfaceEstimator(videosSurface),
  [RUNS_PATH]: surfaceEstimator(runsSurface),
};

/** What {@link estimateEndpoint} needs besides the consumer surfaces. */
export interface EstimateApiContext {
  accounts: AccountStore;
  books: LedgerBooks | undefined;
  consumer: ConsumerApiContext;
}

/**
 * `POST /v1/estimate` with `{ endpoint, body }` (SRP-BIL-018): the body estimated as that
 * endpoint would admit it. An unknown endpoint is refused with `api.invalid_body` naming the
 * ones that can be estimated. A key is optional and adds the account's discount.
 */
export async function estimateEndpoint(request: Request, given: Json, ctx: EstimateApiContext): Promise<Response> {
  const { endpoint, body } = given;
  const estimator = typeof endpoint === "string" && Object.hasOwn(ESTIMATORS, endpoint) ? ESTIMATORS[endpoint] : undefined;
  if (!estimator) return fail("api.invalid_body", `\`endpoint\` is one of ${Object.keys(ESTIMATORS).join(", ")}`);
  if (!isObject(body)) return fail("api.invalid_body", "`body` is the request body of the endpoint, a JSON object");
  let accountId = "";
  let discountBps = 0;
  if (request.headers.has("authorization") || request.headers.has("x-api-key")) {
    const account = await authenticate(request, ctx.accounts);
    if (account instanceof SrpError) return errorResponse(account);
    accountId = account.id;
    discountBps = ctx.books ? await ctx.books.discountOf(account.id) : 0;
  }
  const est = await estimator(body, { consumer: ctx.consumer, request, accountId });
  if (est instanceof SrpError) return errorResponse(est);
  const bps = Math.max(discountBps, est.minDiscountBps);
  return Response.json({
    object: "srp.estimate",
    endpoint,
    model: est.model,
    maximum: money(est.maximum),
    expected: money(discounted(est.expectedBeforeDiscount, bps)),
    discount_bps: bps,
    basis: est.basis,
  });
}
