/**
 * First in, first out across the processes of one hub (SRP-CON-067, docs/deployment.md):
 * the hub-wide order of the requests waiting for a slot, in Redis. Each process keeps its
 * own waiters in its `WaitQueue`; this adds a ticket per waiter to one sorted set per model,
 * scored by a hub-wide counter as the tickets arrive, so that a woken waiter can tell
 * whether waiters of other processes are ahead of it. The hub-wide bounds (SRP-CON-068) are
 * checked as a ticket enters.
 *
 * Keys (under the connection's prefix `srp:<hub id>:`): `queue:<model>` (sorted set of
 * tickets, expiring once no ticket entered for as long as the longest wait), `queue-seq` (the
 * counter). A ticket names its process, its account and when its wait ends; the tickets of a
 * process the directory (`procs`) no longer lists as alive, and those past their end, are
 * dropped whenever a ticket enters or looks ahead. Only requests that wait touch Redis.
 *
 * While Redis is unreachable (or after it restarted empty) each process orders its own
 * waiters only, as a single process does.
 */
import type { WaitOrder, WaitRoom, Waiter } from "../routing/wait-queue.js";

/** The Redis commands the hub-wide order uses; an ioredis client (`connectRedis(...).commands`) has them. */
export interface QueueRedis {
  /** `EVAL script numkeys key... arg...` */
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  /** `ZREM key member` */
  zrem(key: string, member: string): Promise<number>;
}

/** How a {@link SharedWaitOrder} behaves. */
export interface SharedWaitOrderOptions {
  /** This process's id (as in the directory's `procs`). */
  processId: string;
  /** A process whose heartbeat is older than this is dead, and its tickets are dropped (the directory's `deadAfterMs`). */
  deadAfterMs: number;
  /** Waiters per model hub-wide at most. */
  maxWaiters: number;
  /** Waiters of one account per model hub-wide at most. */
  maxWaitersPerAccount: number;
  /** The longest wait a request may ask for (ms): how long a queue is kept after its last ticket entered. */
  maxWaitMs: number;
  /** Clock (ms); `Date.now` by default. */
  now?: () => number;
  /** Told of the first failure of each Redis outage (waiting is then ordered per process). */
  onError?: (operation: "enter" | "ahead" | "leave", error: unknown) => void;
}

/** The key of a model's hub-wide queue (under the connection's prefix). */
export function queueKey(model: string): string {
  return `queue:${model}`;
}

/** The key of the counter that orders the tickets. */
export const QUEUE_SEQ = "queue-seq";

/** A waiter's ticket (pure): `[process, number in that process, end of its wait (ms), account or ""]` as JSON. */
export function ticketOf(processId: string, n: number, until: number, accountId: string | undefined): string {
  return JSON.stringify([processId, n, until, accountId ?? ""]);
}

/** The Lua of a ticket's liveness: not past its end, and its process alive (or this one). */
const LIVE = `
local function live(t, self, now, dead, procs)
  if tonumber(t[3]) < now then return false end
  if t[1] == self then return true end
  local beat = redis.call('ZSCORE', procs, t[1])
  return beat ~= false and tonumber(beat) >= now - dead
end`;

/**
 * Enters a ticket. KEYS: queue, counter, procs. ARGV: ticket, process, now, deadAfterMs,
 * maxWaiters, maxWaitersPerAccount, account, ttlMs, and the ticket's former place (or "": a
 * new one). Returns the ticket's place (a number), or `full` or `account`.
 */
const ENTER = `${LIVE}
if ARGV[9] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[9], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  return tonumber(ARGV[9])
end
local now, dead = tonumber(ARGV[3]), tonumber(ARGV[4])
local n, mine = 0, 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local ok, t = pcall(cjson.decode, m)
  if ok and type(t) == 'table' and live(t, ARGV[2], now, dead, KEYS[3]) then
    n = n + 1
    if ARGV[7] ~= '' and t[4] == ARGV[7] then mine = mine + 1 end
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
if n >= tonumber(ARGV[5]) then return 'full' end
if ARGV[7] ~= '' and mine >= tonumber(ARGV[6]) then return 'account' end
local place = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], place, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return place`;

/**
 * Counts the live tickets of other processes ahead of a ticket, dropping dead ones. KEYS:
 * queue, procs. ARGV: ticket, process, now, deadAfterMs. Returns -1 when the ticket is gone.
 */
const AHEAD = `${LIVE}
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return -1 end
if rank == 0 then return 0 end
local now, dead = tonumber(ARGV[3]), tonumber(ARGV[4])
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, rank - 1)) do
  local ok, t = pcall(cjson.decode, m)
  if not (ok and type(t) == 'table' and live(t, ARGV[2], now, dead, KEYS[2])) then
    redis.call('ZREM', KEYS[1], m)
  elseif t[1] ~= ARGV[2] then
    n = n + 1
  end
end
return n`;

/** The directory's sorted set of live processes (see `directory.ts`). */
const PROCS = "procs";

/** A ticket's life after its wait ends, so that a waiter finishing late is still in order (ms). */
const TICKET_SLACK_MS = 5000;

/** The hub-wide order of waiters, kept in Redis. */
export class SharedWaitOrder implements WaitOrder {
  readonly #redis: QueueRedis;
  readonly #o: Required<Omit<SharedWaitOrderOptions, "onError">>;
  readonly #onError: NonNullable<SharedWaitOrderOptions["onError"]>;
  /** The tickets of this process's waiters that entered. */
  readonly #tickets = new Map<Waiter, string>();
  /** The ticket and place each waiter had, kept after it leaves (its job may come back not started). */
  readonly #places = new WeakMap<Waiter, { ticket: string; place: number }>();
  #next = 0;
  #failing = false;

  /**
   * @param redis The connection; keys go under its prefix (one prefix per hub identity).
   * @param options This process's id, the directory's liveness delay, the bounds, error reporting.
   */
  constructor(redis: QueueRedis, options: SharedWaitOrderOptions) {
    this.#redis = redis;
    this.#o = { now: Date.now, ...options };
    this.#onError = options.onError ?? (() => {});
  }

  /** Tickets of this process's waiters in the hub-wide order now. */
  get size(): number {
    return this.#tickets.size;
  }

  async enter(waiter: Waiter, until: number, again = false): Promise<WaitRoom> {
    const former = again ? this.#places.get(waiter) : undefined;
    const ticket = former?.ticket ?? ticketOf(this.#o.processId, this.#next++, until + TICKET_SLACK_MS, waiter.accountId);
    const room = await this.#attempt("enter", async () => {
      const answer = await this.#redis.eval(
        ENTER,
        3,
        queueKey(waiter.model),
        QUEUE_SEQ,
        PROCS,
        ticket,
        this.#o.processId,
        this.#o.now(),
        this.#o.deadAfterMs,
        this.#o.maxWaiters,
        this.#o.maxWaitersPerAccount,
        waiter.accountId ?? "",
        this.#o.maxWaitMs + TICKET_SLACK_MS,
        former ? former.place : "",
      );
      return answer === "full" || answer === "account" ? answer : Number(answer);
    });
    // Redis unreachable: the waiter waits in this process's order only.
    if (room === undefined) return "ok";
    if (typeof room !== "number") return room;
    this.#tickets.set(waiter, ticket);
    this.#places.set(waiter, { ticket, place: room });
    // Left while its ticket was on its way (the hub is closing): the ticket goes too.
    if (waiter.left) this.leave(waiter);
    return "ok";
  }

  async ahead(waiter: Waiter): Promise<number> {
    const ticket = this.#tickets.get(waiter);
    if (ticket === undefined) return 0;
    const n = await this.#attempt("ahead", async () =>
      Number(
        await this.#redis.eval(AHEAD, 2, queueKey(waiter.model), PROCS, ticket, this.#o.processId, this.#o.now(), this.#o.deadAfterMs),
      ),
    );
    // Unknown (Redis unreachable, or restarted without the ticket): this process's order decides.
    return n === undefined || !(n > 0) ? 0 : n;
  }

  leave(waiter: Waiter): void {
    const ticket = this.#tickets.get(waiter);
    if (ticket === undefined) return;
    this.#tickets.delete(waiter);
    void this.#attempt("leave", () => this.#redis.zrem(queueKey(waiter.model), ticket));
  }

  async #attempt<T>(operation: "enter" | "ahead" | "leave", fn: () => Promise<T>): Promise<T | undefined> {
    try {
      const value = await fn();
      this.#failing = false;
      return value;
    } catch (error) {
      if (!this.#failing) this.#onError(operation, error);
      this.#failing = true;
      return undefined;
    }
  }
}
