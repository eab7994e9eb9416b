/**
 * An account's owner manages its API keys and their spending controls (SRP-CON-083):
 * `GET`/`POST /v1/account/keys`, `PATCH`/`DELETE /v1/account/keys/{id}` and
 * `GET /v1/account/spend?by=key|tag`, authenticated with any live key of the account.
 * Reading a key's JSON body into a change and a key into its JSON are pure functions here,
 * shared with the admin API and the CLI; the handlers are thin adapters over `AccountAdmin`.
 */
import { SrpError } from "@srp/core";
import { LastKeyError, type AccountAdmin, type AccountStore, type ApiKeyChange, type ApiKeyRecord } from "../accounts.js";
import {
  applyPolicyPatch,
  formatBudgetAmount,
  isRestricted,
  NO_POLICY,
  parsePolicyPatch,
  PolicyError,
  type KeyPolicy,
  type SpendPeriodKind,
} from "../keys/policy.js";
import type { KeySpend } from "../storage/key-spend.js";
import { money, type Money } from "./account.js";
import { authenticate, errorResponse, fail, readJsonObject } from "./http.js";

/** What the key endpoints need. */
export interface KeysApiContext {
  accounts: AccountStore;
  /** Where keys are kept and changed; absent: the endpoints answer 404. */
  admin: AccountAdmin | undefined;
  maxBodyBytes: number;
  /** Told when the store cannot be read or written. */
  storageError(what: string, error: unknown): void;
  /** Told after a key was revoked: the hub then closes the node sessions bound with it (SRP-SEC-022). */
  revoked?(): Promise<unknown> | void;
}

/** The path of the key list. */
export const KEYS_PATH = "/v1/account/keys";

/** The members a key's JSON body may have. */
const BODY_MEMBERS = new Set(["label", "tags", "expires_at", "models", "budget", "limits"]);
const NESTED_MEMBERS: Record<string, ReadonlySet<string>> = {
  budget: new Set(["total", "day", "month"]),
  limits: new Set(["rpm", "tpm", "concurrency"]),
};
const LABEL = /^[^\p{Cc}]{1,128}$/u;

/**
 * A key change from a JSON body (`label` and the policy members of `parsePolicyPatch`;
 * `null` clears a member); throws {@link PolicyError} for a member it does not know or
 * cannot take, so a misspelt member is refused rather than ignored (pure).
 */
export function parseKeyBody(body: Record<string, unknown>): ApiKeyChange {
  for (const name of Object.keys(body)) {
    if (!BODY_MEMBERS.has(name)) throw new PolicyError(`unknown member \`${name}\` (a key takes ${[...BODY_MEMBERS].join(", ")})`);
    const nested = NESTED_MEMBERS[name];
    const value = body[name];
    if (nested && typeof value === "object" && value !== null && !Array.isArray(value))
      for (const inner of Object.keys(value))
        if (!nested.has(inner)) throw new PolicyError(`unknown member \`${name}.${inner}\` (takes ${[...nested].join(", ")})`);
  }
  const change: ApiKeyChange = parsePolicyPatch(body);
  if (body.label !== undefined) {
    if (body.label !== null && (typeof body.label !== "string" || !LABEL.test(body.label)))
      throw new PolicyError("`label` is null or 1-128 characters without control characters");
    change.label = body.label;
  }
  return change;
}

/** A key's spending per period as the API shows it. */
export interface SpentJson {
  total: Money;
  day: Money;
  month: Money;
}

/** A key as the API shows it (the `Key` object of the README's "Keys and spending controls"). */
export interface KeyJson {
  object: "srp.api_key";
  id: string;
  prefix: string;
  label: string | null;
  tags: string[];
  created_at: number;
  revoked_at: number | null;
  expires_at: number | null;
  models: string[] | null;
  budget: Record<SpendPeriodKind, Money | null>;
  limits: { rpm: number | null; tpm: number | null; concurrency: number | null };
  spent: SpentJson;
}

const NOTHING_SPENT: KeySpend = {
  spent: { total: 0n, day: 0n, month: 0n },
  held: { total: 0n, day: 0n, month: 0n },
  requests: 0,
};

/** A key's spending per period in both forms (pure). */
export function spentJson(spend: KeySpend = NOTHING_SPENT): SpentJson {
  return { total: money(spend.spent.total), day: money(spend.spent.day), month: money(spend.spent.month) };
}

/** A policy's members as the API shows them (pure). */
export function policyJson(
  policy: KeyPolicy = NO_POLICY,
): Omit<KeyJson, "object" | "id" | "prefix" | "label" | "created_at" | "revoked_at" | "spent"> {
  const b = policy.budget;
  return {
    tags: policy.tags,
    expires_at: policy.expiresAt,
    models: policy.models,
    budget: { total: formatBudgetAmount(b.total), day: formatBudgetAmount(b.day), month: formatBudgetAmount(b.month) },
    limits: { ...policy.limits },
  };
}

/** A key and its spending as the API shows it (pure). */
export function keyJson(record: ApiKeyRecord, spend?: KeySpend): KeyJson {
  return {
    object: "srp.api_key",
    id: record.keyId,
    prefix: record.prefix,
    label: record.label,
    ...policyJson(record.policy),
    created_at: record.createdAt,
    revoked_at: record.revokedAt,
    spent: spentJson(spend),
  };
}

/**
 * A key as the admin API and the CLI show it: the record's members as they are named in
 * code, its policy as `POST /v1/account/keys` takes it, and what it spent when known (pure).
 */
export function keyRecordJson({ policy, ...record }: ApiKeyRecord, spend?: KeySpend) {
  return { ...record, policy: policyJson(policy), ...(spend ? { spent: spentJson(spend), requests: spend.requests } : {}) };
}

/** One row of `GET /v1/account/spend`. */
export type SpendRow =
  | { key: string; label: string | null; spent: SpentJson; requests: number }
  | { tag: string; spent: SpentJson; requests: number };

/**
 * Spending grouped by key, or by tag (a key with several tags counts toward each of them;
 * keys without tags toward none), tags in alphabetical order (pure).
 */
export function spendRows(records: readonly ApiKeyRecord[], spend: ReadonlyMap<string, KeySpend>, by: "key" | "tag"): SpendRow[] {
  if (by === "key")
    return records.map((r) => {
      const s = spend.get(r.keyId) ?? NOTHING_SPENT;
      return { key: r.keyId, label: r.label, spent: spentJson(s), requests: s.requests };
    });
  const byTag = new Map<string, KeySpend>();
  for (const r of records) {
    const s = spend.get(r.keyId) ?? NOTHING_SPENT;
    for (const tag of r.policy.tags) {
      const sum = byTag.get(tag) ?? { spent: { total: 0n, day: 0n, month: 0n }, held: { total: 0n, day: 0n, month: 0n }, requests: 0 };
      for (const k of ["total", "day", "month"] as const) {
        sum.spent[k] += s.spent[k];
        sum.held[k] += s.held[k];
      }
      sum.requests += s.requests;
      byTag.set(tag, sum);
    }
  }
  return [...byTag.keys()].sort().map((tag) => ({ tag, spent: spentJson(byTag.get(tag)), requests: byTag.get(tag)!.requests }));
}

/** What each of `records` spent now (zeros from a store that keeps no spending). */
async function spendOf(admin: AccountAdmin, records: readonly ApiKeyRecord[]): Promise<Map<string, KeySpend>> {
  return admin.keySpend
    ? admin.keySpend(
        records.map((r) => r.keyId),
        Date.now(),
      )
    : new Map();
}

/** Most keys an account may hold, revoked ones included (each is a row the hub keeps). */
export const MAX_KEYS_PER_ACCOUNT = 1000;
/** Most live keys an account may hold. */
export const MAX_LIVE_KEYS_PER_ACCOUNT = 100;

/** Whether a key is held to any spending control (tags and label are not controls). */
const restricted = isRestricted;

/**
 * The caller's account, key and the store, or the error response. To `manage` (create,
 * change, revoke) the caller's key must hold no spending control: a key that may spend
 * only so much must not be able to lift its own limits (SRP-CON-083).
 */
async function caller(
  request: Request,
  ctx: KeysApiContext,
  manage = false,
): Promise<{ accountId: string; keyId: string | undefined; admin: AccountAdmin } | Response> {
  const account = await authenticate(request, ctx.accounts, (error) => ctx.storageError("key lookup", error));
  if (account instanceof SrpError) return errorResponse(account);
  if (!ctx.admin) return fail("api.not_found", "this hub does not manage API keys (no `admin` store)");
  if (manage && account.key && restricted(account.key.policy))
    return fail(
      "api.forbidden",
      "a key held to spending controls may not create, change or revoke keys: use an unrestricted key of the account",
    );
  return { accountId: account.id, keyId: account.key?.keyId, admin: ctx.admin };
}

/** A key of the caller's account, or undefined (another account's key is not found either). */
async function ownKey(admin: AccountAdmin, accountId: string, keyId: string): Promise<ApiKeyRecord | undefined> {
  const record = await admin.getApiKey(keyId);
  return record && record.accountId === accountId ? record : undefined;
}

/** The body of a POST or PATCH as a change, or the error response. */
async function changeOf(request: Request, ctx: KeysApiContext): Promise<ApiKeyChange | Response> {
  const body = await readJsonObject(request, ctx.maxBodyBytes);
  if (body instanceof SrpError) return errorResponse(body);
  try {
    return parseKeyBody(body);
  } catch (error) {
    if (error instanceof PolicyError) return fail("api.invalid_body", error.message);
    throw error;
  }
}

/** `GET /v1/account/keys`: every key of the account, revoked ones too, oldest first, with what each spent. */
export async function listKeys(request: Request, ctx: KeysApiContext): Promise<Response> {
  const who = await caller(request, ctx);
  if (who instanceof Response) return who;
  const records = await who.admin.listApiKeys(who.accountId);
  const spend = await spendOf(who.admin, records);
  return Response.json({ object: "list", data: records.map((r) => keyJson(r, spend.get(r.keyId))) });
}

/** `POST /v1/account/keys`: a new key with the body's policy; 201 with the key's secret, shown only here. */
export async function createKey(request: Request, ctx: KeysApiContext): Promise<Response> {
  const who = await caller(request, ctx, true);
  if (who instanceof Response) return who;
  const change = await changeOf(request, ctx);
  if (change instanceof Response) return change;
  const held = await who.admin.listApiKeys(who.accountId);
  if (held.length >= MAX_KEYS_PER_ACCOUNT || held.filter((k) => k.revokedAt === null).length >= MAX_LIVE_KEYS_PER_ACCOUNT)
    return fail(
      "api.forbidden",
      `an account holds at most ${MAX_LIVE_KEYS_PER_ACCOUNT} live keys and ${MAX_KEYS_PER_ACCOUNT} keys in all, revoked ones included`,
    );
  const { label, ...patch } = change;
  const { key, record } = await who.admin.createApiKey(who.accountId, label ?? undefined, applyPolicyPatch(NO_POLICY, patch));
  return Response.json({ ...keyJson(record), api_key: key }, { status: 201, headers: { "cache-control": "no-store" } });
}

/** `PATCH /v1/account/keys/{id}`: changes the members the body names (`null` clears one). */
export async function updateKey(request: Request, keyId: string, ctx: KeysApiContext): Promise<Response> {
  const who = await caller(request, ctx, true);
  if (who instanceof Response) return who;
  // A key changing itself could lock the account out (an expiry now on its last live key).
  if (keyId === who.keyId) return fail("api.forbidden", "a key may not change its own policy: use another key of the account");
  const change = await changeOf(request, ctx);
  if (change instanceof Response) return change;
  if (!(await ownKey(who.admin, who.accountId, keyId))) return fail("api.not_found", `no key ${keyId} in this account`);
  const record = await who.admin.updateApiKey(keyId, change);
  if (!record) return fail("api.not_found", `key ${keyId} is revoked`);
  const spend = await spendOf(who.admin, [record]);
  return Response.json(keyJson(record, spend.get(keyId)));
}

/**
 * `DELETE /v1/account/keys/{id}`: revokes the key; 403 `api.forbidden` when it is the
 * account's last live key (the account would be locked out of its own keys).
 */
export async function revokeKey(request: Request, keyId: string, ctx: KeysApiContext): Promise<Response> {
  const who = await caller(request, ctx, true);
  if (who instanceof Response) return who;
  if (!(await ownKey(who.admin, who.accountId, keyId))) return fail("api.not_found", `no key ${keyId} in this account`);
  try {
    if (!(await who.admin.revokeApiKey(keyId, { keepLastLive: true }))) return fail("api.not_found", `key ${keyId} is already revoked`);
  } catch (error) {
    if (error instanceof LastKeyError) return fail("api.forbidden", error.message);
    throw error;
  }
  await ctx.revoked?.();
  const record = (await who.admin.getApiKey(keyId))!;
  const spend = await spendOf(who.admin, [record]);
  return Response.json(keyJson(record, spend.get(keyId)));
}

/** `GET /v1/account/spend?by=key|tag` (default `key`): what the account's keys spent, per key or per tag. */
export async function getSpend(request: Request, ctx: KeysApiContext): Promise<Response> {
  const who = await caller(request, ctx);
  if (who instanceof Response) return who;
  const by = new URL(request.url).searchParams.get("by") ?? "key";
  if (by !== "key" && by !== "tag") return fail("api.invalid_body", "`by` is key or tag");
  const records = await who.admin.listApiKeys(who.accountId);
  return Response.json({ object: "list", by, data: spendRows(records, await spendOf(who.admin, records), by) });
}
