/**
 * Write-behind for state the hub reads synchronously on the request path (routing state,
 * payout history): changes are made in memory, their keys marked dirty, and written to the
 * database in one batch every interval and on `flush()`, never on the request path. A
 * failed write marks its keys dirty again, so the next flush retries them.
 */

/** Options of {@link WriteBehind}. */
export interface WriteBehindOptions {
  /** Milliseconds between background flushes; 0 writes only on `flush()`. */
  intervalMs: number;
  /** Told of a background flush that failed (its keys are retried next time). */
  onError?: (error: unknown) => void;
}

/** Dirty keys and the timer that writes them. */
export class WriteBehind<K> {
  readonly #write: (keys: K[]) => Promise<void>;
  readonly #onError: (error: unknown) => void;
  #dirty = new Set<K>();
  /** Keys being written now (still unwritten from a reader's point of view). */
  #writing = new Set<K>();
  #running: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** @param write writes the current state of `keys` (read from memory when called). */
  constructor(write: (keys: K[]) => Promise<void>, options: WriteBehindOptions) {
    this.#write = write;
    this.#onError = options.onError ?? (() => {});
    if (options.intervalMs > 0) {
      this.#timer = setInterval(() => void this.flush().catch(this.#onError), options.intervalMs);
      // Write-behind never keeps a process alive: shutdown flushes explicitly.
      this.#timer.unref();
    }
  }

  /** Marks a key as changed in memory and not yet written. */
  mark(key: K): void {
    this.#dirty.add(key);
  }

  /** Whether the key has a change not yet written (or being written now). */
  has(key: K): boolean {
    return this.#dirty.has(key) || this.#writing.has(key);
  }

  /** Keys waiting to be written. */
  get pending(): number {
    return this.#dirty.size + this.#writing.size;
  }

  /** Writes every key marked so far; flushes run one at a time. Rejects if the write fails. */
  flush(): Promise<void> {
    const next = this.#running.then(() => this.#flushOnce());
    this.#running = next.catch(() => {});
    return next;
  }

  async #flushOnce(): Promise<void> {
    if (this.#dirty.size === 0) return;
    this.#writing = this.#dirty;
    this.#dirty = new Set();
    try {
      await this.#write([...this.#writing]);
    } catch (error) {
      for (const key of this.#writing) this.#dirty.add(key);
      throw error;
    } finally {
      this.#writing = new Set();
    }
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
