/**
 * Writes a running job's (or batch's) state to its store: one write at a time, each of the
 * state as it is then, so changes made during a write are written by the next one and the
 * last write holds the last state. `lost`: the store refused a write (the state is no longer
 * this process's to write: another process ended it, or it was deleted).
 */
export class StateWriter {
  readonly #write: () => Promise<boolean>;
  readonly #onError: (error: unknown) => void;
  #pending = false;
  #inflight: Promise<void> | undefined;
  /** The store refused a write: the state is no longer this process's. */
  lost = false;

  /** @param write writes the state as it is now; false when the store refuses it. @param onError reports a write that failed. */
  constructor(write: () => Promise<boolean>, onError: (error: unknown) => void) {
    this.#write = write;
    this.#onError = onError;
  }

  /** The state changed: write it (now, or after the write in flight). */
  touch(): void {
    this.#pending = true;
    this.#inflight ??= this.#drain();
  }

  /** Writes the state as it is now and waits for it. */
  async flush(): Promise<void> {
    this.touch();
    await this.#inflight;
  }

  /** Waits for the writes in flight, writing nothing new. */
  async settled(): Promise<void> {
    await this.#inflight;
  }

  async #drain(): Promise<void> {
    while (this.#pending) {
      this.#pending = false;
      try {
        if (!(await this.#write())) this.lost = true;
      } catch (e) {
        this.#onError(e);
      }
    }
    this.#inflight = undefined;
  }
}
