/**
 * An API key's spending controls (SRP-CON-083): tags, expiry, the models it may use,
 * budgets (total, per UTC day, per UTC calendar month; atomic units) and rate limits
 * (requests and tokens per minute, requests in flight). Pure functions: reading a policy
 * or a change to one from the API's JSON, applying a change, the stored JSON form, and
 * the spending periods a moment falls in.
 */
import { formatUsdc } from "@srp/core";

/** A key's budgets in atomic units; `null`: no cap for that period. */
export interface KeyBudget {
  total: bigint | null;
  day: bigint | null;
  month: bigint | null;
}

/** A key's rate limits; `null`: no limit. */
export interface KeyRateLimits {
  /** Requests per minute. */
  rpm: number | null;
  /** Tokens (prompt + completion) per minute. */
  tpm: number | null;
  /** Requests in flight at once. */
  concurrency: number | null;
}

/** Everything an account's owner may set on one of its keys. */
export interface KeyPolicy {
  tags: string[];
  /** When the key stops working (ms since the epoch), or never. */
  expiresAt: number | null;
  /** The models the key may use (exact ids), or any. */
  models: string[] | null;
  budget: KeyBudget;
  limits: KeyRateLimits;
}

/** A key that may do anything its account may. */
export const NO_POLICY: KeyPolicy = Object.freeze({
  tags: [],
  expiresAt: null,
  models: null,
  budget: Object.freeze({ total: null, day: null, month: null }),
  limits: Object.freeze({ rpm: null, tpm: null, concurrency: null }),
}) as KeyPolicy;

/** A change to a policy: members absent stay, `null` clears. */
export interface KeyPolicyPatch {
  tags?: string[];
  expiresAt?: number | null;
  models?: string[] | null;
  budget?: Partial<KeyBudget>;
  limits?: Partial<KeyRateLimits>;
}

/** The key a request was authenticated with, as admission sees it. */
export interface RequestKey {
  keyId: string;
  policy: KeyPolicy;
}

const TAG = /^[A-Za-z0-9._:-]{1,64}$/;
const MODEL = /^[\x21-\x7e]{1,256}$/;
const MAX_TAGS = 16;
const MAX_MODELS = 64;
/** The largest budget: what a ledger column holds. */
const MAX_BUDGET = 2n ** 62n;
/** The largest rate limit. */
const MAX_LIMIT = 1_000_000_000;

/** Thrown (and answered as `api.invalid_body`) for a policy that cannot be taken. */
export class PolicyError extends Error {
  override readonly name = "PolicyError";
}

function tagsOf(v: unknown): string[] {
  if (!Array.isArray(v) || v.length > MAX_TAGS || !v.every((t) => typeof t === "string" && TAG.test(t)))
    throw new PolicyError(`\`tags\` is a list of at most ${MAX_TAGS} tags, each 1-64 characters of A-Z a-z 0-9 . _ : -`);
  return [...new Set(v as string[])];
}

function modelsOf(v: unknown): string[] | null {
  if (v === null) return null;
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_MODELS || !v.every((m) => typeof m === "string" && MODEL.test(m)))
    throw new PolicyError(`\`models\` is null (any) or a list of 1 to ${MAX_MODELS} model ids`);
  return [...new Set(v as string[])];
}

function expiryOf(v: unknown): number | null {
  if (v === null) return null;
  if (typeof v === "number" && Number.isSafeInteger(v) && v > 0) return v;
  if (typeof v === "string" && !Number.isNaN(Date.parse(v))) return Date.parse(v);
  throw new PolicyError("`expires_at` is null, milliseconds since the epoch, or an ISO 8601 time");
}

/** Atomic units of a USD decimal string with at most 6 decimals (`"5"`, `"0.25"`); throws otherwise (pure). */
export function usdToUnits(text: string): bigint {
  const m = /^([0-9]{1,13})(?:\.([0-9]{1,6}))?$/.exec(text);
  if (!m) throw new PolicyError(`${JSON.stringify(text)} is not a USD amount with at most 6 decimals`);
  return BigInt(m[1]!) * 1_000_000n + BigInt((m[2] ?? "").padEnd(6, "0"));
}

/** An amount given as `{ "units": "…" }` or `{ "usd": "…" }` (or a bare USD string), or null. */
export function amountOf(v: unknown, what: string): bigint | null {
  if (v === null) return null;
  let units: bigint | undefined;
  try {
    if (typeof v === "string") units = usdToUnits(v);
    else if (typeof v === "object" && v !== null) {
      const m = v as { units?: unknown; usd?: unknown };
      if (typeof m.units === "string" && /^[0-9]{1,19}$/.test(m.units)) units = BigInt(m.units);
      else if (typeof m.usd === "string") units = usdToUnits(m.usd);
    }
  } catch {
    units = undefined;
  }
  if (units === undefined || units < 0n || units > MAX_BUDGET)
    throw new PolicyError(`\`${what}\` is null, { "usd": "5.00" } or { "units": "5000000" } (non-negative)`);
  return units;
}

function limitOf(v: unknown, what: string): number | null {
  if (v === null) return null;
  if (typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= MAX_LIMIT) return v;
  throw new PolicyError(`\`${what}\` is null or a whole number from 1 to ${MAX_LIMIT}`);
}

function pick<T>(o: Record<string, unknown>, key: string, read: (v: unknown) => T): T | undefined {
  return key in o && o[key] !== undefined ? read(o[key]) : undefined;
}

function objectOf(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new PolicyError(`\`${what}\` is an object`);
  return v as Record<string, unknown>;
}

/**
 * A policy change from the API's JSON (`tags`, `expires_at`, `models`, `budget: { total,
 * day, month }`, `limits: { rpm, tpm, concurrency }`); throws {@link PolicyError}.
 */
export function parsePolicyPatch(body: Record<string, unknown>): KeyPolicyPatch {
  const patch: KeyPolicyPatch = {};
  const tags = pick(body, "tags", tagsOf);
  if (tags !== undefined) patch.tags = tags;
  const expiresAt = pick(body, "expires_at", expiryOf);
  if (expiresAt !== undefined) patch.expiresAt = expiresAt;
  const models = pick(body, "models", modelsOf);
  if (models !== undefined) patch.models = models;
  if (body.budget !== undefined) {
    const b = body.budget === null ? { total: null, day: null, month: null } : objectOf(body.budget, "budget");
    const budget: Partial<KeyBudget> = {};
    for (const period of ["total", "day", "month"] as const) {
      const v = pick(b, period, (x) => amountOf(x, `budget.${period}`));
      if (v !== undefined) budget[period] = v;
    }
    patch.budget = budget;
  }
  if (body.limits !== undefined) {
    const l = body.limits === null ? { rpm: null, tpm: null, concurrency: null } : objectOf(body.limits, "limits");
    const limits: Partial<KeyRateLimits> = {};
    for (const name of ["rpm", "tpm", "concurrency"] as const) {
      const v = pick(l, name, (x) => limitOf(x, `limits.${name}`));
      if (v !== undefined) limits[name] = v;
    }
    patch.limits = limits;
  }
  return patch;
}

/** A policy with a change applied (pure). */
export function applyPolicyPatch(policy: KeyPolicy, patch: KeyPolicyPatch): KeyPolicy {
  return {
    tags: patch.tags ?? policy.tags,
    expiresAt: patch.expiresAt !== undefined ? patch.expiresAt : policy.expiresAt,
    models: patch.models !== undefined ? patch.models : policy.models,
    budget: { ...policy.budget, ...patch.budget },
    limits: { ...policy.limits, ...patch.limits },
  };
}

/** Whether a policy caps any period's spending. */
export function hasBudget(policy: KeyPolicy): boolean {
  const b = policy.budget;
  return b.total !== null || b.day !== null || b.month !== null;
}

/** Whether a policy limits the rate of requests or tokens, or requests in flight. */
export function hasRateLimits(policy: KeyPolicy): boolean {
  const l = policy.limits;
  return l.rpm !== null || l.tpm !== null || l.concurrency !== null;
}

/**
 * Whether a key is held to any spending control (a budget, a rate limit, a model list or an
 * expiry; tags and label are not controls). Such a key may not manage keys (SRP-CON-083) nor
 * refund the account (SRP-BIL-011).
 */
export function isRestricted(policy: KeyPolicy): boolean {
  return hasBudget(policy) || hasRateLimits(policy) || policy.models !== null || policy.expiresAt !== null;
}

/** The stored form of a policy (JSON, amounts as strings); null for {@link NO_POLICY}'s equal. */
export function encodePolicy(p: KeyPolicy): string | null {
  const empty = p.tags.length === 0 && p.expiresAt === null && p.models === null && !hasBudget(p) && !hasRateLimits(p);
  if (empty) return null;
  const amount = (x: bigint | null) => (x === null ? null : x.toString());
  return JSON.stringify({
    tags: p.tags,
    expiresAt: p.expiresAt,
    models: p.models,
    budget: { total: amount(p.budget.total), day: amount(p.budget.day), month: amount(p.budget.month) },
    limits: p.limits,
  });
}

/** A policy from its stored form (null: none). */
export function decodePolicy(stored: string | null | undefined): KeyPolicy {
  if (stored === null || stored === undefined || stored === "") return NO_POLICY;
  const j = JSON.parse(stored) as {
    tags?: string[];
    expiresAt?: number | null;
    models?: string[] | null;
    budget?: Record<string, string | null>;
    limits?: Partial<KeyRateLimits>;
  };
  const amount = (x: string | null | undefined) => (x === null || x === undefined ? null : BigInt(x));
  return {
    tags: j.tags ?? [],
    expiresAt: j.expiresAt ?? null,
    models: j.models ?? null,
    budget: { total: amount(j.budget?.total), day: amount(j.budget?.day), month: amount(j.budget?.month) },
    limits: { rpm: j.limits?.rpm ?? null, tpm: j.limits?.tpm ?? null, concurrency: j.limits?.concurrency ?? null },
  };
}

/** The spending periods of a key (`SpendPeriod`): all time, a UTC day, a UTC calendar month. */
export type SpendPeriodKind = "total" | "day" | "month";

/** The ids of the periods the moment `ms` falls in: `total`, `d:YYYY-MM-DD`, `m:YYYY-MM` (UTC). */
export function periodsAt(ms: number): Record<SpendPeriodKind, string> {
  const iso = new Date(ms).toISOString();
  return { total: "total", day: `d:${iso.slice(0, 10)}`, month: `m:${iso.slice(0, 7)}` };
}

/** When the period of kind `kind` that holds `ms` ends (ms; Infinity for `total`). */
export function periodEnd(kind: SpendPeriodKind, ms: number): number {
  const d = new Date(ms);
  if (kind === "day") return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  if (kind === "month") return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return Number.POSITIVE_INFINITY;
}

/** The first period whose cap `amount` more would pass, given what each has held and spent; undefined when it fits. */
export function budgetExceeded(
  budget: KeyBudget,
  used: Partial<Record<SpendPeriodKind, bigint>>,
  amount: bigint,
): { period: SpendPeriodKind; cap: bigint; used: bigint } | undefined {
  for (const period of ["day", "month", "total"] as const) {
    const cap = budget[period];
    if (cap === null) continue;
    const u = used[period] ?? 0n;
    if (u + amount > cap) return { period, cap, used: u };
  }
  return undefined;
}

/** A budget as the API shows it. */
export function formatBudgetAmount(units: bigint | null): { units: string; usd: string } | null {
  return units === null ? null : { units: units.toString(), usd: formatUsdc(units) };
}
