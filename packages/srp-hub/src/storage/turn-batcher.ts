/**
 * Batching by event-loop turn with group commit: the calls made while earlier batches are
 * still running wait and go together in the next one, so under load a batch grows with the
 * load instead of every call paying its own transaction; a failed batch falls back to one
 * call at a time. `SqlStore`'s books use it on PostgreSQL for reservations and receipts
 * (see `pg-batch.ts`).
 */

/** Options of {@link TurnBatcher}. */
export interface TurnBatcherOptions {
  /** Most calls in one batch (default 512). */
  max?: number;
  /**
   * Most batches running at once (default 2). Calls made while this many run wait for the
   * first of them to end and then go together as one batch (group commit).
   */
  inFlight?: number;
  /**
   * Whether the calls of a batch that failed with `error` run again one at a time (default:
   * always). When it says no (the database cannot be reached: each call would wait for it
   * in turn), every call of the batch fails with that error.
   */
  oneByOne?: (error: unknown) => boolean;
}

interface Queued<A, R> {
  item: A;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Collects calls and runs them as batches: the calls of one turn of the event loop go
 * together, and while `inFlight` batches already run, later calls queue up for the next
 * batch (at most `max` calls each). When a batch fails (nothing of it committed), its calls
 * run one at a time, in order, so a bad call fails alone and the others behave as if they
 * had never been batched; unless `oneByOne` says the failure is not one a smaller batch
 * avoids, in which case they all fail with it.
 */
export class TurnBatcher<A, R> {
  readonly #queue: Queued<A, R>[] = [];
  readonly #batch: (items: A[]) => Promise<R[]>;
  readonly #one: (item: A) => Promise<R>;
  readonly #max: number;
  readonly #inFlight: number;
  readonly #oneByOne: (error: unknown) => boolean;
  /** Batches running now. */
  #running = 0;
  /** Whether a flush is scheduled for the end of this turn. */
  #scheduled = false;

  constructor(batch: (items: A[]) => Promise<R[]>, one: (item: A) => Promise<R>, options: TurnBatcherOptions = {}) {
    this.#batch = batch;
    this.#one = one;
    this.#max = Math.max(1, options.max ?? 512);
    this.#inFlight = Math.max(1, options.inFlight ?? 2);
    this.#oneByOne = options.oneByOne ?? (() => true);
  }

  /** Queues a call for the next batch. */
  push(item: A): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Flushes at the end of this turn if a batch may start and none is scheduled yet. */
  #schedule(): void {
    if (this.#scheduled || this.#queue.length === 0 || this.#running >= this.#inFlight) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#start();
    });
  }

  /** Starts as many batches as the in-flight limit allows from the queue. */
  #start(): void {
    while (this.#queue.length > 0 && this.#running < this.#inFlight) {
      const queued = this.#queue.splice(0, this.#max);
      this.#running++;
      void this.#run(queued).finally(() => {
        this.#running--;
        this.#schedule();
      });
    }
  }

  /** Runs one batch and settles its calls (never rejects). */
  async #run(queued: Queued<A, R>[]): Promise<void> {
    let results: R[];
    try {
      results = await this.#batch(queued.map((q) => q.item));
    } catch (error) {
      if (!this.#oneByOne(error)) return void queued.forEach((q) => q.reject(error));
      for (const q of queued) await this.#one(q.item).then(q.resolve, q.reject);
      return;
    }
    queued.forEach((q, i) => q.resolve(results[i]!));
  }
}
