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
  /** Stores (or replaces, for the same account) a turn. */
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
  /** In-memory store only: bytes of all accounts' turns together; the oldest turns are dropped past it. Default 64 MiB. */
  maxTotalBytes?: number;
}

/** The defaults of {@link ResponseStoreOptions}. */
export const RESPONSE_STORE_LIMITS = {
  retentionMs: 30 * 24 * 3_600_000,
  maxTurns: 1000,
  maxChainBytes: 16 * 1024 * 1024,
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
export function chainBoundsError(turns: number, bytes: number, policy: Pick<Required<ResponseStoreOptions>, "maxTurns" | "maxChainBytes">): SrpError | undefined {
  if (turns >= policy.maxTurns) {
    return new SrpError("api.invalid_body", `the conversation of previous_response_id has ${turns} turns, the most this hub keeps is ${policy.maxTurns}: start a new conversation (send the items you need as input)`);
  }
  if (bytes >= policy.maxChainBytes) {
    return new SrpError("api.invalid_body", `the conversation of previous_response_id holds ${bytes} bytes, the most this hub keeps is ${policy.maxChainBytes}: start a new conversation (send the items you need as input)`);
  }
  return undefined;
}

/** The output items of a stored Response object. */
export function outputItems(response: Record<string, unknown>): Record<string, unknown>[] {
  const output = response.output;
  return Array.isArray(output) ? output.filter((i): i is Record<string, unknown> => typeof i === "object" && i !== null && !Array.isArray(i)) : [];
}

/** The conversation items of turns given oldest first: each turn's input items, then its output items. */
export function conversationItems(turns: readonly Pick<StoredResponse, "input" | "response">[]): Record<string, unknown>[] {
  return turns.flatMap((t) => [...t.input, ...outputItems(t.response)]);
}

interface MemoryTurn {
  r: StoredResponse;
  depth: number;
  bytes: number;
  chainBytes: number;
  expiresAt: number;
}

/**
 * Stored responses in this process's memory (a hub without storage): bounded by
 * {@link ResponseStoreOptions.maxTotalBytes} (the oldest turns go first) and lost on restart.
 */
export class MemoryResponseStore implements ResponseStore {
  readonly #policy: Required<ResponseStoreOptions>;
  /** By id, in order of storage (oldest first). */
  readonly #turns = new Map<string, MemoryTurn>();
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
    this.#turns.set(r.id, { r: structuredClone(r), depth: (prev?.depth ?? 0) + 1, bytes, chainBytes: (prev?.chainBytes ?? 0) + bytes, expiresAt });
    this.#bytes += bytes;
    // The conversation is kept as long as its newest turn.
    for (let t = prev; t; t = t.r.previousResponseId === undefined ? undefined : this.#turns.get(t.r.previousResponseId)) {
      if (t.r.accountId !== r.accountId) break;
      t.expiresAt = Math.max(t.expiresAt, expiresAt);
    }
    for (const [id] of this.#turns) {
      if (this.#bytes <= this.#policy.maxTotalBytes || id === r.id) break;
      this.#drop(id);
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

  #drop(id: string): void {
    const t = this.#turns.get(id);
    if (!t) return;
    this.#turns.delete(id);
    this.#bytes -= t.bytes;
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
  if (!Number.isInteger(limit) || limit < 1 || limit > INPUT_ITEMS_PAGE.max) return new SrpError("api.invalid_body", `limit must be an integer from 1 to ${INPUT_ITEMS_PAGE.max}`);
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
    return items ? fail("api.method_not_allowed", "use GET", { allow: "GET" }) : fail("api.method_not_allowed", "use GET or DELETE", { allow: "GET, DELETE" });
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
    if (!items && query.get("stream") === "true") return fail("api.invalid_body", "this hub does not replay stored responses as streams: retrieve without stream");
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
