/**
 * The limits on strangers (`limits.ts`, spec/v1/security.md SRP-SEC-014..) shared by the
 * processes of one hub: without it, a client spread by a load balancer over N processes gets
 * N times every rate limit.
 *
 * Nothing waits for Redis on the request path: each process keeps limiting with its own token
 * buckets, collects what they spend per (limit, key), and every `syncMs` (100 ms) appends it to
 * one Redis stream (`limits`, under the connection's key prefix) and reads what the other
 * processes appended since its last read, charging it to its own buckets. The stream is
 * bounded (at most `maxEntries` entries of at most `maxKeysPerSync` keys each) and expires
 * once no process has written to it for as long as the slowest limit takes to refill. A
 * process that starts reads back that much of the stream first, so a restart does not hand a
 * client a fresh burst.
 *
 * While Redis is unreachable each process limits on its own (what it spends meanwhile is not
 * shared); the first failure of each outage is reported.
 */
import { SHARED_LIMITS, type ClientLimiter, type SharedLimit } from "../limits.js";

/** A stream entry as Redis returns it: its id and its fields (`[name, value, name, value...]`). */
export type StreamEntry = [id: string, fields: string[]];

/** The Redis commands the sharing uses; an ioredis client (`connectRedis(...).commands`) has them. */
export interface LimitsRedis {
  /** `XADD key MAXLEN n * field value...`: appends an entry, keeping the newest `n`. */
  xadd(key: string, maxlen: "MAXLEN", count: number, id: "*", ...fields: string[]): Promise<string | null>;
  /** `PEXPIRE key milliseconds`. */
  pexpire(key: string, milliseconds: number): Promise<number>;
  /** `XREAD COUNT n STREAMS key id`: entries after `id`, oldest first; null when there are none. */
  xread(count: "COUNT", n: number, streams: "STREAMS", key: string, id: string): Promise<[key: string, entries: StreamEntry[]][] | null>;
}

/** How a {@link SharedLimits} behaves. */
export interface SharedLimitsOptions {
  /** This process's id: its own entries are skipped when reading. */
  processId: string;
  /** Milliseconds between syncs; 100 by default. */
  syncMs?: number;
  /** Most (limit, key) pairs one entry carries; the rest wait for the next sync; 256 by default. */
  maxKeysPerSync?: number;
  /** Most (limit, key) pairs waiting to be written; spending on further keys is not shared; 4096 by default. */
  maxPending?: number;
  /** Most entries the stream keeps; 4000 by default. */
  maxEntries?: number;
  /** Entries read per command; 500 by default. */
  readCount?: number;
  /** Clock (ms); `Date.now` by default. */
  now?: () => number;
  /** Told of the first failure of each Redis outage (the limits are then this process's alone). */
  onError?: (operation: "write" | "read", error: unknown) => void;
}

/** The stream's key (under the connection's key prefix). */
export const LIMITS_STREAM = "limits";

/** One (limit, key, tokens) spent, as an entry carries it. */
export type Spent = [limit: SharedLimit, key: string, tokens: number];

/**
 * How long the stream is kept after its last write, and how far back a starting process
 * reads (pure): the longest time one of the limits takes to refill from empty, between 1 s
 * and 1 hour.
 */
export function retentionMs(limiter: Pick<ClientLimiter, "rateOf">): number {
  let longest = 1000;
  for (const limit of SHARED_LIMITS) {
    const rate = limiter.rateOf(limit);
    if (!rate) continue;
    longest = Math.max(longest, rate.perSecond > 0 ? Math.ceil((rate.burst * 1000) / rate.perSecond) : Number.POSITIVE_INFINITY);
  }
  return Math.min(longest, 3_600_000);
}

/** The fields of an entry (pure). */
export function encodeEntry(processId: string, spent: readonly Spent[]): string[] {
  return ["p", processId, "d", JSON.stringify(spent)];
}

/** An entry's writer and what it spent, or undefined when it is not one of ours (pure). */
export function decodeEntry(fields: readonly string[]): { processId: string; spent: Spent[] } | undefined {
  let processId: string | undefined;
  let data: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === "p") processId = fields[i + 1];
    else if (fields[i] === "d") data = fields[i + 1];
  }
  if (processId === undefined || data === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const spent: Spent[] = [];
  for (const s of parsed) {
    if (!Array.isArray(s) || s.length !== 3) continue;
    const [limit, key, tokens] = s as unknown[];
    if (
      (SHARED_LIMITS as readonly unknown[]).includes(limit) &&
      typeof key === "string" &&
      typeof tokens === "number" &&
      Number.isFinite(tokens)
    )
      spent.push([limit as SharedLimit, key, tokens]);
  }
  return { processId, spent };
}

/** The time (ms) in a stream entry id `<ms>-<seq>` (pure); undefined when it has none. */
export function entryTime(id: string): number | undefined {
  const ms = Number(id.slice(0, id.indexOf("-")));
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/** What a process spent and has not yet written, by limit and key, bounded. */
export class PendingSpending {
  readonly #max: number;
  readonly #byLimit = new Map<SharedLimit, Map<string, number>>();
  #size = 0;

  /** @param max Most (limit, key) pairs kept; spending on a new pair beyond it is dropped. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Pairs waiting. */
  get size(): number {
    return this.#size;
  }

  /** Adds `tokens` spent under `limit` on `key`. */
  add(limit: SharedLimit, key: string, tokens: number): void {
    let keys = this.#byLimit.get(limit);
    if (!keys) this.#byLimit.set(limit, (keys = new Map()));
    const was = keys.get(key);
    if (was === undefined) {
      if (this.#size >= this.#max) return;
      this.#size++;
    }
    keys.set(key, (was ?? 0) + tokens);
  }

  /** Takes up to `n` pairs out (the oldest first), leaving out those that add up to nothing. */
  take(n: number): Spent[] {
    const out: Spent[] = [];
    for (const [limit, keys] of this.#byLimit) {
      for (const [key, tokens] of keys) {
        if (out.length >= n) return out;
        keys.delete(key);
        this.#size--;
        if (tokens !== 0) out.push([limit, key, tokens]);
      }
      if (keys.size === 0) this.#byLimit.delete(limit);
    }
    return out;
  }

  /** Drops everything waiting. */
  clear(): void {
    this.#byLimit.clear();
    this.#size = 0;
  }
}

/** A limiter's spending, shared with the other processes of its hub through Redis. */
export class SharedLimits {
  readonly #limiter: ClientLimiter;
  readonly #redis: LimitsRedis;
  readonly #processId: string;
  readonly #syncMs: number;
  readonly #maxKeysPerSync: number;
  readonly #maxEntries: number;
  readonly #readCount: number;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #onError: (operation: "write" | "read", error: unknown) => void;
  readonly #pending: PendingSpending;
  /** The id of the last entry read. */
  #cursor: string;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** Whether Redis failed at the last try (a failure is reported only after a success). */
  #failing = false;
  #closed = false;

  /**
   * Starts collecting what `limiter` spends (call {@link start} to begin syncing).
   *
   * @param limiter The limits of this process.
   * @param redis The connection; the stream's key goes under its prefix (one prefix per hub identity).
   * @param options This process's id, timings and bounds, error reporting.
   */
  constructor(limiter: ClientLimiter, redis: LimitsRedis, options: SharedLimitsOptions) {
    this.#limiter = limiter;
    this.#redis = redis;
    this.#processId = options.processId;
    this.#syncMs = options.syncMs ?? 100;
    this.#maxKeysPerSync = Math.max(1, options.maxKeysPerSync ?? 256);
    this.#maxEntries = Math.max(1, options.maxEntries ?? 4000);
    this.#readCount = Math.max(1, options.readCount ?? 500);
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    this.#pending = new PendingSpending(Math.max(this.#maxKeysPerSync, options.maxPending ?? 4096));
    this.#retentionMs = retentionMs(limiter);
    this.#cursor = `${Math.max(0, this.#now() - this.#retentionMs)}-0`;
    limiter.observeSpending((limit, key, tokens) => this.#pending.add(limit, key, tokens));
  }

  /** (Limit, key) pairs spent and not yet written. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Syncs every `syncMs` from now on. */
  start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => {
      if (!this.#running) void this.sync();
    }, this.#syncMs);
    this.#timer.unref();
  }

  /** One sync: writes what this process spent, then reads what the others spent; never rejects. */
  sync(): Promise<void> {
    const run = (this.#running ?? Promise.resolve()).then(() => this.#round());
    const tracked = run.finally(() => {
      if (this.#running === tracked) this.#running = undefined;
    });
    this.#running = tracked;
    return tracked;
  }

  /** Stops syncing and collecting at once; what is still waiting is dropped (the connection is gone). */
  stop(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#limiter.observeSpending(undefined);
  }

  /** Stops syncing and collecting, after writing what is still waiting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.stop();
    await this.sync();
  }

  async #round(): Promise<void> {
    let operation: "write" | "read" = "write";
    try {
      await this.#write();
      operation = "read";
      if (!this.#closed) await this.#read();
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) this.#onError(operation, error);
      this.#failing = true;
    }
  }

  /** Appends one entry with what waits (what does not fit waits for the next sync); on failure it is dropped. */
  async #write(): Promise<void> {
    const spent = this.#pending.take(this.#maxKeysPerSync);
    if (spent.length === 0) return;
    await Promise.all([
      this.#redis.xadd(LIMITS_STREAM, "MAXLEN", this.#maxEntries, "*", ...encodeEntry(this.#processId, spent)),
      this.#redis.pexpire(LIMITS_STREAM, this.#retentionMs),
    ]);
  }

  /** Reads the entries after the cursor (a few pages at most) and charges the other processes' spending here. */
  async #read(): Promise<void> {
    for (let page = 0; page < 4; page++) {
      const answer = await this.#redis.xread("COUNT", this.#readCount, "STREAMS", LIMITS_STREAM, this.#cursor);
      const entries = answer?.[0]?.[1] ?? [];
      for (const [id, fields] of entries) {
        this.#cursor = id;
        const entry = decodeEntry(fields);
        if (!entry || entry.processId === this.#processId) continue;
        const at = entryTime(id);
        for (const [limit, key, tokens] of entry.spent) this.#limiter.absorb(limit, key, tokens, at);
      }
      if (entries.length < this.#readCount) return;
    }
  }
}
