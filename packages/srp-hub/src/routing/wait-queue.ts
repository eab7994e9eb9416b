/**
 * Waiting for a slot (SRP-CON-064..069): when every instance that could take a request is
 * busy, the request waits in a bounded first-in, first-out queue of its model instead of
 * being refused at once. The queue only orders and wakes waiters; routing stays the
 * router's. A wake-up goes to the first waiter; a waiter woken but unable to get a slot
 * keeps its place and hands the wake-up to the one behind it (whose needs may differ).
 */
import { resolveModelAlias } from "@srp/core";

/** The numbers of the wait queue. */
export interface WaitQueueOptions {
  /** Waiters per model at most; one more is refused at once. Default 256. */
  maxWaiters: number;
  /**
   * Waiters of one paying account per model at most, so that one account cannot fill a
   * model's queue (SRP-CON-068); one more of that account is refused at once. Default 64.
   */
  maxWaitersPerAccount: number;
  /** How long a request waits for a slot unless it asks otherwise, ms. Default 30 s. */
  waitMs: number;
  /** The longest wait a request may ask for, ms. Default 300 s. */
  maxWaitMs: number;
  /** The first waiter of a model retries this often even without a wake-up (a safety net), ms. Default 1 s. */
  pollMs: number;
  /**
   * In a hub of several processes: how long a woken waiter that is not first hub-wide leaves a
   * free slot to the waiters of other processes ahead of it (woken at the same time) before
   * it may take the slot itself, ms. Default 250 ms.
   */
  turnGraceMs: number;
}

/** The default numbers of the wait queue. */
export const WAIT_QUEUE_DEFAULTS: Readonly<WaitQueueOptions> = Object.freeze({
  maxWaiters: 256,
  maxWaitersPerAccount: 64,
  waitMs: 30_000,
  maxWaitMs: 300_000,
  pollMs: 1000,
  turnGraceMs: 250,
});

/** The header a consumer sets to choose how long a request may wait for a slot (ms; `0`: not at all). */
export const QUEUE_TIMEOUT_HEADER = "x-srp-queue-timeout-ms";

/**
 * How long a request may wait for a slot: the `x-srp-queue-timeout-ms` header's value (a
 * decimal integer of ms, `0` for no waiting) capped at `maxWaitMs`, else `waitMs`. Anything
 * else in the header (`-1`, `1e4`, `abc`) is ignored.
 *
 * @example
 * queueWaitOf("2500", WAIT_QUEUE_DEFAULTS); // 2500
 * queueWaitOf(null, WAIT_QUEUE_DEFAULTS); // 30000
 */
export function queueWaitOf(
  header: string | null | undefined,
  options: Pick<WaitQueueOptions, "waitMs" | "maxWaitMs"> = WAIT_QUEUE_DEFAULTS,
): number {
  const h = header?.trim();
  if (h === undefined || !/^(0|[1-9][0-9]*)$/.test(h)) return options.waitMs;
  return h.length > 10 ? options.maxWaitMs : Math.min(Number(h), options.maxWaitMs);
}

/** How a wait ended: a wake-up (retry routing), the wait ran out, the consumer left, or the hub is closing. */
export type WaitOutcome = "woken" | "timeout" | "aborted" | "closed";

/** How a request's wait for a slot ended: it got a slot, its wait ran out, or it left (the consumer went away, the hub closed, an error). */
export type QueueWaitOutcome = "served" | "timed_out" | "left";

/** A request that stopped waiting for a slot of a model (the hub's `queue.wait` event). */
export interface QueueWaitEvent {
  /** The model's canonical id. */
  model: string;
  outcome: QueueWaitOutcome;
  /** From joining the queue to leaving it, ms. */
  waitedMs: number;
}

/** Whether a model's queue has room for one more waiter of an account: `full` (the queue), `account` (that account's share). */
export type WaitRoom = "ok" | "full" | "account";

/**
 * The hub-wide order of waiters in a hub of several processes (`cluster/shared-queue.ts`):
 * where the waiters of every process stand. When the shared store cannot answer, each
 * method answers as if this process's waiters were the only ones (its own order).
 */
export interface WaitOrder {
  /**
   * Enters a waiter (waiting until `until`, ms since the epoch) at the end of its model's
   * hub-wide queue, under the hub-wide bounds; `again`: a waiter that left goes back to the
   * place it had (its job could not start), without the bounds.
   */
  enter(waiter: Waiter, until: number, again?: boolean): Promise<WaitRoom>;
  /** How many waiters of other processes are ahead of this one (0: none, or not known). */
  ahead(waiter: Waiter): Promise<number>;
  /** The waiter left (served, gave up, the consumer left, the hub is closing). */
  leave(waiter: Waiter): void;
}

/** The queues of one hub, one per model (by canonical id). */
export class WaitQueue {
  readonly options: Readonly<WaitQueueOptions>;
  /** The hub-wide order, in a hub of several processes (set once this process has joined); absent: this process's order alone. */
  order: WaitOrder | undefined;
  readonly #queues = new Map<string, Waiter[]>();
  #closed = false;
  /** The number of the next waiter to join (the order of joining). */
  #joined = 0;
  /** Told once per waiter when it first leaves its queue (the hub's `queue.wait` event). */
  onWaitEnd: ((event: QueueWaitEvent) => void) | undefined;

  constructor(options: Partial<WaitQueueOptions> = {}) {
    this.options = { ...WAIT_QUEUE_DEFAULTS, ...options };
  }

  /** Whether the hub is closing (no one may join). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Waiters of a model now. */
  size(model: string): number {
    return this.#queues.get(resolveModelAlias(model))?.length ?? 0;
  }

  /** Waiters of a model that one account pays for, now. */
  sizeFor(model: string, accountId: string): number {
    return this.#queues.get(resolveModelAlias(model))?.filter((w) => w.accountId === accountId).length ?? 0;
  }

  /**
   * Whether `accountId` may add a waiter to a model's queue now: `full` when the queue holds
   * `maxWaiters`, `account` when that account already has `maxWaitersPerAccount` in it.
   */
  room(model: string, accountId?: string): WaitRoom {
    const q = this.#queues.get(resolveModelAlias(model)) ?? [];
    if (q.length >= this.options.maxWaiters) return "full";
    if (accountId !== undefined && q.filter((w) => w.accountId === accountId).length >= this.options.maxWaitersPerAccount) return "account";
    return "ok";
  }

  /**
   * Joins the end of a model's queue for `accountId` (the paying account; absent: counted
   * against no account); undefined when the queue is full, the account already has its
   * share of it ({@link WaitQueueOptions.maxWaitersPerAccount}) or the hub is closing.
   */
  join(model: string, accountId?: string): Waiter | undefined {
    if (this.#closed) return undefined;
    const name = resolveModelAlias(model);
    if (this.room(name, accountId) !== "ok") return undefined;
    let q = this.#queues.get(name);
    if (!q) this.#queues.set(name, (q = []));
    const w = new Waiter(name, this, this.options.pollMs, accountId, this.#joined++);
    q.push(w);
    return w;
  }

  /**
   * Puts a waiter that left because it got a slot back in its model's queue, at the place
   * its time of joining gives it, when its job could not start after all; false when the hub
   * is closing. Call {@link enter} with `again` next.
   */
  rejoin(w: Waiter): boolean {
    if (this.#closed || !w.left) return false;
    let q = this.#queues.get(w.model);
    if (!q) this.#queues.set(w.model, (q = []));
    const i = q.findIndex((other) => other.seq > w.seq);
    q.splice(i < 0 ? q.length : i, 0, w);
    w.back();
    return true;
  }

  /**
   * Enters a waiter that just joined into the hub-wide order ({@link WaitOrder.enter}); `ok`
   * at once without one. A waiter refused there (the hub-wide bounds) leaves.
   */
  async enter(w: Waiter, until: number, again = false): Promise<WaitRoom> {
    if (!this.order) return "ok";
    const room = await this.order.enter(w, until, again);
    if (room !== "ok") w.leave();
    return room;
  }

  /**
   * Resolves once a woken waiter may take a free slot: at once when no waiter of another
   * process is ahead of it hub-wide (or without a hub-wide order), else after
   * `turnGraceMs` (the waiters ahead, woken by the same freed slot, have had their turn: a
   * slot still free then is one they could not use), or sooner when `until` comes or the
   * signal fires.
   */
  async turn(w: Waiter, until: number, signal: AbortSignal): Promise<void> {
    if (!this.order || (await this.order.ahead(w)) === 0) return;
    const ms = Math.min(this.options.turnGraceMs, until - Date.now());
    if (ms <= 0 || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** A slot of a model may be free (a job ended, an instance came online or reported capacity): its first waiter retries. Waiters for `auto` retry too. */
  notify(model: string): void {
    const name = resolveModelAlias(model);
    this.#queues.get(name)?.[0]?.wake();
    if (name !== "auto") this.#queues.get("auto")?.[0]?.wake();
  }

  /** Ends every wait with `closed` (the hub is closing); later joins are refused. */
  close(): void {
    this.#closed = true;
    for (const q of this.#queues.values()) for (const w of [...q]) w.end("closed");
  }

  /** Tells {@link onWaitEnd} how a waiter's first wait ended (a waiter back in the queue is not told again). */
  #reportEnd(w: Waiter): void {
    if (!this.onWaitEnd || w.reported) return;
    w.reported = true;
    const now = Date.now();
    const outcome: QueueWaitOutcome = w.leaving ?? (now >= w.until ? "timed_out" : "left");
    this.onWaitEnd({ model: w.model, outcome, waitedMs: now - w.joinedAt });
  }

  /** @internal The queue a waiter is in. */
  queueOf(w: Waiter): Waiter[] | undefined {
    return this.#queues.get(w.model);
  }

  /** @internal Removes a waiter. */
  remove(w: Waiter): void {
    this.#reportEnd(w);
    this.order?.leave(w);
    const q = this.#queues.get(w.model);
    if (!q) return;
    const i = q.indexOf(w);
    if (i >= 0) q.splice(i, 1);
    if (q.length === 0) this.#queues.delete(w.model);
  }
}

/** One request waiting for a slot of a model. */
export class Waiter {
  /** The model's canonical id. */
  readonly model: string;
  /** The paying account, when the waiter counts against one. */
  readonly accountId: string | undefined;
  /** The order of joining among the waiters of this process. */
  readonly seq: number;
  /** When it joined its queue, ms since the epoch. */
  readonly joinedAt = Date.now();
  /** @internal Until when its last wait could last (ms since the epoch). */
  until = Number.POSITIVE_INFINITY;
  /** @internal Why it is leaving, when the caller says ({@link leave}). */
  leaving: QueueWaitOutcome | undefined;
  /** @internal Its wait was reported ({@link WaitQueue.onWaitEnd}). */
  reported = false;
  readonly #queue: WaitQueue;
  readonly #pollMs: number;
  #woken = false;
  #resolve: ((o: WaitOutcome) => void) | undefined;
  #left = false;

  /** @internal Made by {@link WaitQueue.join}. */
  constructor(model: string, queue: WaitQueue, pollMs: number, accountId?: string, seq = 0) {
    this.model = model;
    this.accountId = accountId;
    this.seq = seq;
    this.#queue = queue;
    this.#pollMs = pollMs;
  }

  /** Whether this waiter has left its queue. */
  get left(): boolean {
    return this.#left;
  }

  /** Waiters ahead of this one in this process (0: first). */
  get position(): number {
    return this.#queue.queueOf(this)?.indexOf(this) ?? -1;
  }

  /**
   * Waits for a wake-up (one that came since the last wait counts at once), until `until`
   * (ms since the epoch) or the signal fires. The first waiter is also woken every
   * `pollMs`, in case a slot freed without a wake-up.
   */
  wait(until: number, signal: AbortSignal): Promise<WaitOutcome> {
    this.until = until;
    if (this.#left) return Promise.resolve("closed");
    if (signal.aborted) return Promise.resolve("aborted");
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve("woken");
    }
    if (Date.now() >= until) return Promise.resolve("timeout");
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => this.end("aborted");
      const arm = () => {
        const left = until - Date.now();
        if (left <= 0) return this.end("timeout");
        // A timer set for the deadline ends the wait as timed out even when it fires a
        // millisecond before `Date.now()` reaches `until` (timers run on a monotonic clock).
        const deadline = left <= this.#pollMs;
        timer = setTimeout(
          () => {
            if (deadline || Date.now() >= until) this.end("timeout");
            else if (this.position === 0) this.end("woken");
            else arm();
          },
          Math.min(left, this.#pollMs),
        );
      };
      this.#resolve = (o) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#resolve = undefined;
        resolve(o);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      arm();
    });
  }

  /** @internal Wakes this waiter (now, or at its next wait). */
  wake(): void {
    if (this.#resolve) this.#resolve("woken");
    else this.#woken = true;
  }

  /** @internal Ends the current wait with an outcome; `closed` also takes the waiter out. */
  end(o: WaitOutcome): void {
    if (o === "closed") this.leave();
    this.#resolve?.(o);
  }

  /** Woken but no slot was free for this request: keeps its place and wakes the waiter behind it. */
  pass(): void {
    const q = this.#queue.queueOf(this);
    const i = q?.indexOf(this) ?? -1;
    if (i >= 0) q![i + 1]?.wake();
  }

  /** @internal Back in the queue ({@link WaitQueue.rejoin}). */
  back(): void {
    this.#left = false;
    this.leaving = undefined;
    this.#woken = false;
  }

  /** Leaves the queue (`served`: it got a slot; else it gave up, its wait ran out, or the consumer left). */
  leave(outcome?: QueueWaitOutcome): void {
    if (this.#left) return;
    this.#left = true;
    this.leaving = outcome;
    this.#queue.remove(this);
  }
}
