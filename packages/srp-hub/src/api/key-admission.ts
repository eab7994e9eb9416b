/**
 * What an API key's policy allows a consumer request (SRP-CON-084..087): the models it may
 * use, the answer when its budget refuses a reservation, and the answer and headers of its
 * rate limits. Pure functions; the budget itself is enforced by the ledger, in the
 * transaction that holds the money (`storage/key-spend.ts`).
 */
import { formatUsdc, SrpError, type BillableUsage } from "@srp/core";
import type { KeyPolicy, RequestKey } from "../keys/policy.js";
import type { ReserveRefusal } from "../ledger/ledger.js";
import type { Admission as LimitAdmission, Admitted, KeyLimits, Refused } from "../limits/key-limits.js";
import type { RequestNote } from "./request-note.js";
import { watchedBody } from "./watched-body.js";

/** `api.model_not_allowed` for the first of `models` the key may not use; undefined when all are allowed. */
export function modelNotAllowed(policy: KeyPolicy, models: readonly string[]): SrpError | undefined {
  if (policy.models === null) return undefined;
  const allowed = new Set(policy.models);
  const refused = models.find((m) => !allowed.has(m));
  if (refused === undefined) return undefined;
  return new SrpError("api.model_not_allowed", `this API key may not use model ${refused}; it may use ${policy.models.join(", ")}`, {
    details: { model: refused, allowed: policy.models },
  });
}

const PERIOD_NAMES = { total: "total", day: "daily", month: "monthly" } as const;

/** `api.key_budget_exceeded` (402) for a reservation of `amount` the key's budget refused. */
export function keyBudgetError(over: NonNullable<ReserveRefusal["keyBudget"]>, amount: bigint): SrpError {
  const left = over.cap > over.used ? over.cap - over.used : 0n;
  return new SrpError(
    "api.key_budget_exceeded",
    `this request may cost up to ${formatUsdc(amount)} USD; the API key's ${PERIOD_NAMES[over.period]} budget of ${formatUsdc(over.cap)} USD has ${formatUsdc(left)} USD left. Lower max_tokens, or raise the key's budget.`,
    { details: { period: over.period, budget: over.cap.toString(), used: over.used.toString(), required: amount.toString() } },
  );
}

/**
 * Admits a request under its key's rate limits, charging its worst-case tokens (the
 * prompt's bound plus the output limit asked for), to be corrected when it ends.
 */
export function admitKeyRate(limits: KeyLimits, key: RequestKey, estimate: number): Promise<LimitAdmission> {
  return limits.admit(key.keyId, key.policy.limits, estimate);
}

/** A request's tokens as its key's limits count them at admission: its prompt's bound plus the output limit it asked for (pure). */
export function estimatedTokens(plan: { bound: BillableUsage }): number {
  return plan.bound.promptTokens + plan.bound.completionTokens;
}

const REASONS = { requests: "requests per minute", tokens: "tokens per minute", concurrency: "requests in flight" } as const;

/** `api.rate_limited` (429) for a request its key's limits refused. */
export function rateLimitError(refused: Refused): SrpError {
  const message = refused.tooLarge
    ? "this request alone may use more tokens than the API key's tokens-per-minute limit allows: lower max_tokens or raise the limit"
    : `the API key's limit of ${REASONS[refused.reason]} is reached; retry in ${Math.ceil(refused.retryAfterMs / 1000)} s`;
  return new SrpError("api.rate_limited", message, {
    details: { limit: refused.reason, ...(refused.tooLarge ? {} : { retryAfterMs: refused.retryAfterMs }) },
  });
}

/**
 * The response with the key's rate-limit headers, the request's share of the limits given
 * back when it ends: at once for a whole body, when a streamed body ends or is cancelled.
 * Its tokens become the billed ones (`note`), or stay at the `estimate` when the billing is
 * not known yet (a stream the consumer left: its job may still be billed), so leaving early
 * never takes tokens back.
 */
export function releasedAtEnd(response: Response, admitted: Admitted, note: RequestNote | undefined, estimate: number): Response {
  const billed = () =>
    note?.promptTokens !== undefined || note?.completionTokens !== undefined
      ? (note.promptTokens ?? 0) + (note.completionTokens ?? 0)
      : undefined;
  // A refusal served nothing; an answer or a stream whose billing is unknown keeps the estimate.
  const tokens = () => billed() ?? (response.status >= 400 ? 0 : estimate);
  let out = response;
  try {
    for (const [name, value] of Object.entries(admitted.headers)) response.headers.set(name, value);
  } catch {
    // Immutable headers: copied below.
    out = new Response(response.body, { status: response.status, statusText: response.statusText, headers: response.headers });
    for (const [name, value] of Object.entries(admitted.headers)) out.headers.set(name, value);
  }
  const streamed = out.body !== null && (out.headers.get("content-type") ?? "").startsWith("text/event-stream");
  if (!streamed) {
    admitted.release(tokens());
    return out;
  }
  const body = watchedBody(
    out.body!,
    () => {},
    () => admitted.release(tokens()),
  );
  return new Response(body, { status: out.status, statusText: out.statusText, headers: out.headers });
}
