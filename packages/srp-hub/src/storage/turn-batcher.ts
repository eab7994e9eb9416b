/**
 * Batching by event-loop turn: the calls made during one turn run as one batch, and a
 * failed batch falls back to one call at a time. `SqlStore`'s books use it on PostgreSQL
 * for reservations and receipts (see `pg-batch.ts`).
 */

/**
 * Collects the calls made during one turn of the event loop and runs them as one batch
 * (at most `max` at a time). When a batch fails (nothing of it committed), its calls run
 * one at a time, in order, so a bad call fails alone and the others behave as if they
 * had never been batched.
 */
export class TurnBatcher<A, R> {
  readonly #queue: Array<{ item: A; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  readonly #batch: (items: A[]) => Promise<R[]>;
  readonly #one: (item: A) => Promise<R>;
  readonly #max: number;

  constructor(batch: (items: A[]) => Promise<R[]>, one: (item: A) => Promise<R>, max = 512) {
    this.#batch = batch;
    this.#one = one;
    this.#max = max;
  }

  /** Queues a call for this turn's batch. */
  push(item: A): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (this.#queue.length === 1) setImmediate(() => void this.#flush());
    });
  }

  async #flush(): Promise<void> {
    const queued = this.#queue.splice(0, this.#max);
    if (this.#queue.length > 0) setImmediate(() => void this.#flush());
    let results: R[];
    try {
      results = await this.#batch(queued.map((q) => q.item));
    } catch {
      for (const q of queued) await this.#one(q.item).then(q.resolve, q.reject);
      return;
    }
    queued.forEach((q, i) => q.resolve(results[i]!));
  }
}
