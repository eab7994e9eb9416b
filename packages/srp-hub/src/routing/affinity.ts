/**
 * Prefix affinity (cache-aware routing): requests that share a long stable prefix (system
 * prompt or instructions, tools, the first messages) go back to the instance that served
 * that prefix recently, so a backend with a prefix cache (vLLM, llama.cpp, a forwarded
 * Anthropic key) reuses it. The key of a request is a pure function of its body
 * ({@link chatAffinityKey}, {@link messagesAffinityKey}, {@link responsesAffinityKey}); the
 * {@link AffinityTable} remembers which instance served a key, for a time and a bounded
 * number of keys. Routing honours the remembered instance only while it may take the
 * request and has a free slot (`Router.route`'s `prefer`).
 */
import { resolveModelAlias, sha256Hex } from "@srp/core";

/** A prefix shorter than this (bytes of its JSON) is not worth keeping on one instance: no affinity key. */
export const AFFINITY_MIN_PREFIX_BYTES = 1024;

/** How long a key stays with an instance after its last use, by default: 5 minutes. */
export const AFFINITY_TTL_MS = 5 * 60_000;

/** How many keys an affinity table holds at most, by default (least recently used go first). */
export const AFFINITY_MAX_ENTRIES = 10_000;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Roles whose messages lead a conversation as its instructions. */
const INSTRUCTION_ROLES: ReadonlySet<unknown> = new Set(["system", "developer"]);

/** The leading instruction messages of a list and the first message after them (the conversation's opening). */
function opening(items: readonly unknown[]): unknown[] {
  let i = 0;
  while (i < items.length && isObject(items[i]) && INSTRUCTION_ROLES.has((items[i] as Json).role)) i++;
  return items.slice(0, Math.min(items.length, i + 1));
}

/**
 * JSON of a prefix without Anthropic's `cache_control` marks (a client moves them from turn
 * to turn: the first user message carries one in the first turn and none later), or
 * undefined when the value has no JSON form (too deeply nested, lone surrogates are fine).
 */
function prefixText(parts: unknown): string | undefined {
  try {
    return JSON.stringify(parts, (k, v: unknown) => (k === "cache_control" ? undefined : v));
  } catch {
    return undefined;
  }
}

/** The key of a prefix: its model's canonical id and its text, hashed; none below the length threshold. */
function keyOf(model: unknown, kind: string, parts: unknown, minBytes: number): string | undefined {
  if (typeof model !== "string") return undefined;
  const text = prefixText(parts);
  if (text === undefined || new TextEncoder().encode(text).length < minBytes) return undefined;
  return sha256Hex(`${kind}\n${resolveModelAlias(model)}\n${text}`).slice(0, 32);
}

/** The key a consumer chose (`prompt_cache_key`, as Codex sends it), tied to the model. */
function chosenKey(model: unknown, body: Json): string | undefined {
  const chosen = body.prompt_cache_key;
  if (typeof model !== "string" || typeof chosen !== "string" || chosen.length === 0 || chosen.length > 1024) return undefined;
  return sha256Hex(`prompt_cache_key\n${resolveModelAlias(model)}\n${chosen}`).slice(0, 32);
}

/**
 * The affinity key of a chat completions body: the consumer's `prompt_cache_key` when it
 * sends one, else a hash of the canonical model, the `tools`, the leading `system` /
 * `developer` messages and the first message after them. Later turns of the same
 * conversation resend that opening unchanged, so they get the same key. Undefined when the
 * opening's JSON is shorter than `minBytes` (a short prompt gains nothing from a cache).
 */
export function chatAffinityKey(body: Json, minBytes = AFFINITY_MIN_PREFIX_BYTES): string | undefined {
  const chosen = chosenKey(body.model, body);
  if (chosen !== undefined) return chosen;
  if (!Array.isArray(body.messages)) return undefined;
  return keyOf(body.model, "chat", { tools: body.tools ?? null, opening: opening(body.messages) }, minBytes);
}

/**
 * The affinity key of an Anthropic Messages body: a hash of the canonical model, `tools`,
 * `system` and the first message, with every `cache_control` mark left out (they move
 * between turns). Undefined below `minBytes`.
 */
export function messagesAffinityKey(body: Json, minBytes = AFFINITY_MIN_PREFIX_BYTES): string | undefined {
  if (!Array.isArray(body.messages)) return undefined;
  return keyOf(
    body.model,
    "messages",
    { tools: body.tools ?? null, system: body.system ?? null, first: body.messages[0] ?? null },
    minBytes,
  );
}

/**
 * The affinity key of an OpenAI Responses body: the consumer's `prompt_cache_key` when it
 * sends one (Codex sends its conversation id), else a hash of the canonical model,
 * `instructions`, `tools` and the opening of `input` (the whole of a string input; of a
 * list, its leading `system` / `developer` items and the first item after them). A body
 * that continues a stored response should be keyed with its stored items in `input`, as the
 * instance receives it. Undefined below `minBytes`.
 */
export function responsesAffinityKey(body: Json, minBytes = AFFINITY_MIN_PREFIX_BYTES): string | undefined {
  const chosen = chosenKey(body.model, body);
  if (chosen !== undefined) return chosen;
  const input = typeof body.input === "string" ? body.input : Array.isArray(body.input) ? opening(body.input) : null;
  return keyOf(body.model, "responses", { instructions: body.instructions ?? null, tools: body.tools ?? null, input }, minBytes);
}

/**
 * The key a prefix is remembered under for one paying account (SRP-CON-070): a hash of the
 * account and the request's key. Accounts never share a remembered instance, so one account
 * cannot learn from where (and how fast) its requests are served whether another account sent
 * the same prefix recently (a prompt-cache timing side channel).
 *
 * @example
 * accountAffinityKey(chatAffinityKey(body)!, "acct_a") !== accountAffinityKey(chatAffinityKey(body)!, "acct_b"); // true
 */
export function accountAffinityKey(key: string, accountId: string): string {
  return sha256Hex(`account\n${accountId}\n${key}`).slice(0, 32);
}

/** Limits of an {@link AffinityTable}. */
export interface AffinityOptions {
  /** How long a key stays with its instance after its last use, ms; 0 turns affinity off. */
  ttlMs: number;
  /** Most keys held; the least recently used are dropped first. */
  maxEntries: number;
}

/**
 * Which instance served each prefix key recently: bounded in time (a key is forgotten
 * `ttlMs` after its last use) and in size (at most `maxEntries` keys, least recently used
 * dropped first), so strangers sending made-up prefixes cannot grow it without bound.
 */
export class AffinityTable {
  /** Entries in order of last use, oldest first (a Map keeps insertion order). */
  readonly #entries = new Map<string, { instance: string; at: number }>();
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(options: Partial<AffinityOptions> = {}) {
    this.#ttlMs = Math.max(0, options.ttlMs ?? AFFINITY_TTL_MS);
    this.#max = Math.max(0, Math.floor(options.maxEntries ?? AFFINITY_MAX_ENTRIES));
  }

  /** Whether the table remembers anything (a time limit and a size above zero). */
  get enabled(): boolean {
    return this.#ttlMs > 0 && this.#max > 0;
  }

  /** Keys held now (expired ones not yet dropped included). */
  get size(): number {
    return this.#entries.size;
  }

  /** The instance key that served `key` within the time limit, or undefined. */
  lookup(key: string, now: number): string | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (now - e.at >= this.#ttlMs || now < e.at - this.#ttlMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.instance;
  }

  /** Records that `instance` served `key` at `now` (its last use), dropping expired and least recently used keys. */
  record(key: string, instance: string, now: number): void {
    if (!this.enabled) return;
    this.#entries.delete(key);
    this.#entries.set(key, { instance, at: now });
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.#max && now - e.at < this.#ttlMs) break;
      this.#entries.delete(k);
    }
  }

  /** Forgets every key (for tests and operators). */
  clear(): void {
    this.#entries.clear();
  }
}
