/**
 * Stored responses of the OpenAI Responses surface (spec/v1/consumer.md, "Stored
 * responses"): the {@link ResponseStore} a `POST /v1/responses` with `store` saves each
 * answered turn in and reads a `previous_response_id` conversation from, its in-memory
 * implementation (a hub without storage; the SQL one is `storage/response-book.ts`), and
 * the HTTP handlers of `GET` / `DELETE /v1/responses/{id}` and
 * `GET /v1/responses/{id}/input_items`. Everything is per account: another account's
 * response is answered as unknown.
 */
import { SrpError } from "@srp/core";
import type { AccountStore } from "../accounts.js";
import { authenticate, errorResponse, fail } from "./http.js";

/** One stored turn of a Responses conversation. */
export interface StoredResponse {
  /** The response id (`resp_...`), unique on the hub. */
  id: string;
  /** The account that asked (and paid) for it; only this account sees it. */
  accountId: string;
  /** Unix ms. */
  createdAt: number;
  /** The Response object as answered (output items, usage, …). */
  response: Record<string, unknown>;
  /** This turn's input items, normalized to item objects each with an id. */
  input: Record<string, unknown>[];
  /** The response this turn continued (`previous_response_id`), if any. */
  previousResponseId?: string;
}

/** Where a hub keeps stored responses. */
export interface ResponseStore {
  /**
   * Stores (or replaces, for the same account) a turn. When the account then holds more than
   * {@link ResponseStoreOptions.maxAccountTurns} turns or {@link ResponseStoreOptions.maxAccountBytes}
   * bytes, its own turns that would expire soonest are deleted (never this one, never another
   * account's) until it fits (SRP-CON-056).
   */
  save(r: StoredResponse): Promise<void>;
  /** A stored turn of this account, unless unknown, expired (at `now`, default the clock) or deleted. */
  get(accountId: string, id: string, now?: number): Promise<StoredResponse | undefined>;
  /**
   * Items of the conversation up to and including `id` (each turn's input items then its
   * output items, oldest first); undefined when `id` is unknown/expired/another account's,
   * or when a turn of its conversation is gone (deleted or expired). Throws an `SrpError`
   * (`api.invalid_body`) when the conversation is too long to be continued
   * ({@link ResponseStoreOptions.maxTurns}, {@link ResponseStoreOptions.maxChainBytes}).
   */
  history(accountId: string, id: string, now?: number): Promise<Record<string, unknown>[] | undefined>;
  /**
   * Items of this account's live stored turns (input or output items), by id, for the ids
   * among `ids` that one holds (an `item_reference`, SRP-CON-036); when several turns hold
   * an item with the same id, the newest turn's.
   */
  items(accountId: string, ids: readonly string[], now?: number): Promise<Map<string, Record<string, unknown>>>;
  /** Deletes a turn of this account; false when there was none. */
  delete(accountId: string, id: string): Promise<boolean>;
  /** Deletes expired turns (bounded batches); returns how many. The hub calls it every minute. */
  sweep?(now?: number): Promise<number>;
}

/** Options of a {@link ResponseStore}. */
export interface ResponseStoreOptions {
  /** How long a turn is kept after it, or the last turn continuing its conversation, was stored; default 30 days. */
  retentionMs?: number;
  /** Turns one conversation may have; a turn continuing a conversation this long is refused. Default 1,000. */
  maxTurns?: number;
  /** Bytes (JSON of the inputs and answers) of one conversation's turns; a continuation of a conversation this large is refused. Default 16 MiB. */
  maxChainBytes?: number;
  /** Turns one account may hold; past it the account's turns that would expire soonest are deleted. Default 10,000. */
  maxAccountTurns?: number;
  /** Bytes (JSON of the inputs and answers) one account's turns may hold; past it the account's turns that would expire soonest are deleted. Default 64 MiB. */
  maxAccountBytes?: number;
  /**
   * In-memory store only: bytes of all accounts' turns together; past it turns of the account
   * holding the most bytes are dropped (those that would expire soonest first). Default 64 MiB.
   */
  maxTotalBytes?: number;
}

/** The defaults of {@link ResponseStoreOptions}. */
export const RESPONSE_STORE_LIMITS = {
  retentionMs: 30 * 24 * 3_600_000,
  maxTurns: 1000,
  maxChainBytes: 16 * 1024 * 1024,
  maxAccountTurns: 10_000,
  maxAccountBytes: 64 * 1024 * 1024,
  maxTotalBytes: 64 * 1024 * 1024,
} as const;

/** The options with defaults filled in (and checked). */
export function responseStorePolicy(options: ResponseStoreOptions = {}): Required<ResponseStoreOptions> {
  const policy = { ...RESPONSE_STORE_LIMITS, ...options };
  for (const [name, value] of Object.entries(policy)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`responses.${name} must be a positive integer, got ${value}`);
  }
  return policy;
}

/** Bytes a turn takes: the JSON of its input items and of its Response object. */
export function turnBytes(r: Pick<StoredResponse, "input" | "response">): number {
  return Buffer.byteLength(JSON.stringify(r.input)) + Buffer.byteLength(JSON.stringify(r.response));
}

/**
 * Refuses to continue a conversation of `turns` turns and `bytes` bytes when one more turn
 * would pass the bounds (SRP-CON-056); undefined when it may continue.
 */
export function chainBoundsError(
  turns: number,
  bytes: number,
  policy: Pick<Required<ResponseStoreOptions>, "maxTurns" | "maxChainBytes">,
): SrpError | undefined {
  if (turns >= policy.maxTurns) {
    return new SrpError(
      "api.invalid_body",
      `the conversation of previous_response_id has ${turns} turns, the most this hub keeps is ${policy.maxTurns}: start a new conversation (send the items you need as input)`,
    );
  }
  if (bytes >= policy.maxChainBytes) {
    return new SrpError(
      "api.invalid_body",
      `the conversation of previous_response_id holds ${bytes} bytes, the most this hub keeps is ${policy.maxChainBytes}: start a new conversation (send the items you need as input)`,
    );
  }
  return undefined;
}

/** Whether an account holding `turns` turns and `bytes` bytes holds more than the policy lets one account hold. */
export function accountOverBounds(
  turns: number,
  bytes: number,
  policy: Pick<Required<ResponseStoreOptions>, "maxAccountTurns" | "maxAccountBytes">,
): boolean {
  return turns > policy.maxAccountTurns || bytes > policy.maxAccountBytes;
}

/** The output items of a stored Response object. */
export function outputItems(response: Record<string, unknown>): Record<string, unknown>[] {
  const output = response.output;
  return Array.isArray(output)
    ? output.filter((i): i is Record<string, unknown> => typeof i === "object" && i !== null && !Array.isArray(i))
    : [];
}

/** The conversation items of turns given oldest first: each turn's input items, then its output items. */
export function conversationItems(turns: readonly Pick<StoredResponse, "input" | "response">[]): Record<string, unknown>[] {
  return turns.flatMap((t) => [...t.input, ...outputItems(t.response)]);
}

/** The distinct ids of a turn's items (input and output items), the ones an `item_reference` can name. */
export function turnItemIds(r: Pick<StoredResponse, "input" | "response">): string[] {
  return [...new Set(conversationItems([r]).flatMap((i) => (typeof i.id === "string" && i.id !== "" ? [i.id] : [])))];
}

/** The item of a turn with this id (its last one, when the turn holds several). */
export function turnItem(r: Pick<StoredResponse, "input" | "response">, id: string): Record<string, unknown> | undefined {
  let found: Record<string, unknown> | undefined;
  for (const i of conversationItems([r])) if (i.id === id) found = i;
  return found;
}

/** The ids an `input` names by `item_reference` items, with the index of each such item; an `item_reference` without an id is an error. */
export function itemReferences(input: unknown): Array<{ index: number; id: string }> | SrpError {
  if (!Array.isArray(input)) return [];
  const refs: Array<{ index: number; id: string }> = [];
  for (const [index, item] of (input as unknown[]).entries()) {
    if (typeof item !== "object" || item === null || (item as { type?: unknown }).type !== "item_reference") continue;
    const id = (item as { id?: unknown }).id;
    if (typeof id !== "string" || id === "")
      return new SrpError("api.invalid_body", `input[${index}]: an item_reference needs the id of a stored item`);
    refs.push({ index, id });
  }
  return refs;
}

/**
 * A request's `input` with each `item_reference` item replaced by the stored item it names
 * (SRP-CON-036), looked up among the account's live stored turns, and how many were
 * replaced; `input` itself when it has none. An id no such turn holds (or any id, for a
 * payer without an account or a hub that stores nothing) is `api.not_found`; a storage
 * failure is reported and answered `internal`.
 */
export async function resolveItemReferences(
  ctx: { responses?: ResponseStore | undefined; storageError(what: string, error: unknown): void },
  accountId: string,
  input: unknown,
): Promise<{ input: unknown; resolved: number } | SrpError> {
  const refs = itemReferences(input);
  if (refs instanceof SrpError) return refs;
  if (refs.length === 0) return { input, resolved: 0 };
  let found = new Map<string, Record<string, unknown>>();
  try {
    if (ctx.responses && accountId !== "") found = await ctx.responses.items(accountId, [...new Set(refs.map((r) => r.id))]);
  } catch (e) {
    ctx.storageError("read stored items", e);
    return new SrpError("internal", "the hub cannot read stored responses now; retry shortly");
  }
  const out = [...(input as unknown[])];
  for (const { index, id } of refs) {
    const item = found.get(id);
    if (!item)
      return new SrpError(
        "api.not_found",
        `input[${index}]: item_reference ${id} names no item of a response stored for this account (unknown, expired, deleted, or not stored)`,
      );
    out[index] = item;
  }
  return { input: out, resolved: refs.length };
}

interface MemoryTurn {
  r: StoredResponse;
  depth: number;
  bytes: number;
  chainBytes: number;
  expiresAt: number;
}

/** What one account holds in a {@link MemoryResponseStore}. */
interface MemoryAccount {
  /** Its turns' ids, in order of storage. */
  ids: Set<string>;
  bytes: number;
}

/**
 * Stored responses in this process's memory (a hub without storage), lost on restart: each
 * account bounded by {@link ResponseStoreOptions.maxAccountTurns} and
 * {@link ResponseStoreOptions.maxAccountBytes}, all together by
 * {@link ResponseStoreOptions.maxTotalBytes} (turns of the account holding the most go first).
 */
export class MemoryResponseStore implements ResponseStore {
  readonly #policy: Required<ResponseStoreOptions>;
  /** By id, in order of storage (oldest first). */
  readonly #turns = new Map<string, MemoryTurn>();
  readonly #accounts = new Map<string, MemoryAccount>();
  /** Ids of the turns holding an item, by account and item id (`account\nitem`), oldest first. */
  readonly #items = new Map<string, string[]>();
  #bytes = 0;

  constructor(options: ResponseStoreOptions = {}) {
    this.#policy = responseStorePolicy(options);
  }

  async save(r: StoredResponse): Promise<void> {
    const prev = r.previousResponseId === undefined ? undefined : this.#live(r.accountId, r.previousResponseId, r.createdAt);
    const existing = this.#turns.get(r.id);
    if (existing && existing.r.accountId !== r.accountId) throw new Error(`response id ${r.id} belongs to another account`);
    if (existing) this.#drop(r.id);
    const bytes = turnBytes(r);
    const expiresAt = r.createdAt + this.#policy.retentionMs;
    this.#turns.set(r.id, {
      r: structuredClone(r),
      depth: (prev?.depth ?? 0) + 1,
      bytes,
      chainBytes: (prev?.chainBytes ?? 0) + bytes,
      expiresAt,
    });
    this.#bytes += bytes;
    const account = this.#account(r.accountId);
    account.ids.add(r.id);
    account.bytes += bytes;
    for (const itemId of turnItemIds(r)) {
      const key = `${r.accountId}\n${itemId}`;
      this.#items.set(key, [...(this.#items.get(key) ?? []), r.id]);
    }
    // The conversation is kept as long as its newest turn.
    for (let t = prev; t; t = t.r.previousResponseId === undefined ? undefined : this.#turns.get(t.r.previousResponseId)) {
      if (t.r.accountId !== r.accountId) break;
      t.expiresAt = Math.max(t.expiresAt, expiresAt);
    }
    // The account's own bounds first, then the total: the account holding the most gives way.
    while (accountOverBounds(account.ids.size, account.bytes, this.#policy) && this.#evictFrom(account, r.id));
    while (this.#bytes > this.#policy.maxTotalBytes) {
      const largest = [...this.#accounts.values()]
        .filter((a) => a.ids.size > (a.ids.has(r.id) ? 1 : 0))
        .sort((a, b) => b.bytes - a.bytes)[0];
      if (!largest || !this.#evictFrom(largest, r.id)) break;
    }
  }

  async get(accountId: string, id: string, now = Date.now()): Promise<StoredResponse | undefined> {
    const t = this.#live(accountId, id, now);
    return t ? structuredClone(t.r) : undefined;
  }

  async history(accountId: string, id: string, now = Date.now()): Promise<Record<string, unknown>[] | undefined> {
    const top = this.#live(accountId, id, now);
    if (!top) return undefined;
    const bounds = chainBoundsError(top.depth, top.chainBytes, this.#policy);
    if (bounds) throw bounds;
    const turns: MemoryTurn[] = [];
    for (let t: MemoryTurn | undefined = top; t; ) {
      turns.push(t);
      const prev: string | undefined = t.r.previousResponseId;
      if (prev === undefined) break;
      t = this.#live(accountId, prev, now);
      if (!t) return undefined; // a turn of the conversation is gone
    }
    return structuredClone(conversationItems(turns.reverse().map((t) => t.r)));
  }

  async items(accountId: string, ids: readonly string[], now = Date.now()): Promise<Map<string, Record<string, unknown>>> {
    const found = new Map<string, Record<string, unknown>>();
    for (const id of ids) {
      const holders = this.#items.get(`${accountId}\n${id}`) ?? [];
      for (let i = holders.length - 1; i >= 0; i--) {
        const t = this.#live(accountId, holders[i]!, now);
        const item = t ? turnItem(t.r, id) : undefined;
        if (item) {
          found.set(id, structuredClone(item));
          break;
        }
      }
    }
    return found;
  }

  async delete(accountId: string, id: string): Promise<boolean> {
    const t = this.#turns.get(id);
    if (!t || t.r.accountId !== accountId) return false;
    this.#drop(id);
    return true;
  }

  async sweep(now = Date.now()): Promise<number> {
    let n = 0;
    for (const [id, t] of this.#turns) {
      if (t.expiresAt > now) continue;
      this.#drop(id);
      n++;
    }
    return n;
  }

  #live(accountId: string, id: string, now: number): MemoryTurn | undefined {
    const t = this.#turns.get(id);
    return t && t.r.accountId === accountId && t.expiresAt > now ? t : undefined;
  }

  #account(accountId: string): MemoryAccount {
    let a = this.#accounts.get(accountId);
    if (!a) this.#accounts.set(accountId, (a = { ids: new Set(), bytes: 0 }));
    return a;
  }

  /** Drops the account's turn that would expire soonest (the oldest stored among equals), other than `keep`; false when it has none. */
  #evictFrom(account: MemoryAccount, keep: string): boolean {
    let soonest: [string, MemoryTurn] | undefined;
    for (const id of account.ids) {
      const t = this.#turns.get(id);
      if (id !== keep && t && (!soonest || t.expiresAt < soonest[1].expiresAt)) soonest = [id, t];
    }
    if (soonest) this.#drop(soonest[0]);
    return soonest !== undefined;
  }

  #drop(id: string): void {
    const t = this.#turns.get(id);
    if (!t) return;
    this.#turns.delete(id);
    this.#bytes -= t.bytes;
    const account = this.#accounts.get(t.r.accountId);
    if (account) {
      account.ids.delete(id);
      account.bytes -= t.bytes;
      if (account.ids.size === 0) this.#accounts.delete(t.r.accountId);
    }
    for (const itemId of turnItemIds(t.r)) {
      const key = `${t.r.accountId}\n${itemId}`;
      const rest = (this.#items.get(key) ?? []).filter((h) => h !== id);
      if (rest.length > 0) this.#items.set(key, rest);
      else this.#items.delete(key);
    }
  }
}

// -- HTTP ---------------------------------------------------------------------

/** What the stored-response routes need from their hub. */
export interface StoredResponsesContext {
  accounts: AccountStore;
  /** Absent: the hub stores no responses (every id is unknown). */
  responses: ResponseStore | undefined;
  /** Reports a storage failure. */
  storageError(what: string, error: unknown): void;
}

/** Prefix of the stored-response routes. */
export const RESPONSES_PREFIX = "/v1/responses/";

/** Items of one `input_items` page: default and most. */
export const INPUT_ITEMS_PAGE = { default: 20, max: 100 } as const;

/** The parsed query of `GET /v1/responses/{id}/input_items`. */
export interface InputItemsQuery {
  limit: number;
  order: "asc" | "desc";
  after: string | undefined;
}

/** Parses `limit` (1..100, default 20), `order` (`asc`/`desc`, default `desc`) and `after`; `include` is ignored. */
export function inputItemsQuery(params: URLSearchParams): InputItemsQuery | SrpError {
  const rawLimit = params.get("limit");
  const limit = rawLimit === null ? INPUT_ITEMS_PAGE.default : /^[0-9]{1,4}$/.test(rawLimit) ? Number(rawLimit) : NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > INPUT_ITEMS_PAGE.max)
    return new SrpError("api.invalid_body", `limit must be an integer from 1 to ${INPUT_ITEMS_PAGE.max}`);
  const order = params.get("order") ?? "desc";
  if (order !== "asc" && order !== "desc") return new SrpError("api.invalid_body", "order must be asc or desc");
  const after = params.get("after");
  return { limit, order, after: after === null || after === "" ? undefined : after };
}

/**
 * One page of a turn's input items as OpenAI lists them: `order` first, starting after the
 * item `after` names (an unknown `after` is an error), at most `limit`.
 */
export function inputItemsPage(items: readonly Record<string, unknown>[], q: InputItemsQuery): Record<string, unknown> | SrpError {
  const ordered = q.order === "asc" ? [...items] : [...items].reverse();
  let start = 0;
  if (q.after !== undefined) {
    const at = ordered.findIndex((i) => i.id === q.after);
    if (at < 0) return new SrpError("api.not_found", `no input item ${q.after} in this response`);
    start = at + 1;
  }
  const data = ordered.slice(start, start + q.limit);
  const idOf = (i: Record<string, unknown> | undefined) => (typeof i?.id === "string" ? i.id : null);
  return { object: "list", data, first_id: idOf(data[0]), last_id: idOf(data.at(-1)), has_more: start + q.limit < ordered.length };
}

/**
 * Serves `GET` / `DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`
 * (API key only; another account's or an expired response is `api.not_found`).
 */
export async function handleStoredResponse(request: Request, path: string, ctx: StoredResponsesContext): Promise<Response> {
  const rest = path.slice(RESPONSES_PREFIX.length).split("/");
  const id = decodeSegment(rest[0] ?? "");
  const items = rest.length === 2 && rest[1] === "input_items";
  if (id === "" || rest.length > 2 || (rest.length === 2 && !items)) return fail("api.not_found", `no route for ${request.method} ${path}`);
  if (items ? request.method !== "GET" : request.method !== "GET" && request.method !== "DELETE") {
    return items
      ? fail("api.method_not_allowed", "use GET", { allow: "GET" })
      : fail("api.method_not_allowed", "use GET or DELETE", { allow: "GET, DELETE" });
  }
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  const store = ctx.responses;
  const unknown = () => fail("api.not_found", `no stored response ${id} for this account`);
  try {
    if (request.method === "DELETE") {
      if (!store || !(await store.delete(account.id, id))) return unknown();
      return Response.json({ id, object: "response", deleted: true });
    }
    const query = new URL(request.url).searchParams;
    if (!items && query.get("stream") === "true")
      return fail("api.invalid_body", "this hub does not replay stored responses as streams: retrieve without stream");
    const stored = store ? await store.get(account.id, id) : undefined;
    if (!stored) return unknown();
    if (!items) return Response.json(stored.response);
    const q = inputItemsQuery(query);
    if (q instanceof SrpError) return errorResponse(q);
    const page = inputItemsPage(stored.input, q);
    return page instanceof SrpError ? errorResponse(page) : Response.json(page);
  } catch (e) {
    ctx.storageError(`stored response ${id}`, e);
    return fail("internal", "the hub cannot reach its stored responses now; retry shortly");
  }
}

/** A percent-decoded path segment (a malformed escape is left as it came, and then names nothing). */
function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
