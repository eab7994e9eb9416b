/**
 * How a request for a model unknown to this process waits for other processes'
 * announcements (docs/deployment.md, "Several processes"): it waits for the announcement
 * itself, not by asking the bus again and again, and concurrent requests share the round
 * trips they do make.
 */

/** One request waiting for one of its models to be announced. */
interface Waiter {
  readonly models: readonly string[];
  readonly done: (announced: boolean) => void;
}

/** Requests waiting for one of their models to be announced, each for at most a given time. */
export class ModelWaiters {
  readonly #byModel = new Map<string, Set<Waiter>>();

  /** How many requests are waiting. */
  get size(): number {
    const all = new Set<Waiter>();
    for (const set of this.#byModel.values()) for (const w of set) all.add(w);
    return all.size;
  }

  /** Resolves true once one of `models` is {@link announced}, or false after `timeoutMs`. */
  wait(models: readonly string[], timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        models,
        done: (announced) => {
          clearTimeout(timer);
          for (const m of models) {
            const set = this.#byModel.get(m);
            set?.delete(waiter);
            if (set?.size === 0) this.#byModel.delete(m);
          }
          resolve(announced);
        },
      };
      const timer = setTimeout(() => waiter.done(false), timeoutMs);
      timer.unref();
      for (const m of models) {
        let set = this.#byModel.get(m);
        if (!set) this.#byModel.set(m, (set = new Set()));
        set.add(waiter);
      }
    });
  }

  /** An instance of `model` is now known here: the requests waiting for it go on. */
  announced(model: string): void {
    const set = this.#byModel.get(model);
    if (set) for (const w of [...set]) w.done(true);
  }

  /** Releases every waiter (as timed out). */
  clear(): void {
    for (const set of [...this.#byModel.values()]) for (const w of [...set]) w.done(false);
  }
}

/**
 * Shares a barrier (a round trip on the bus) among concurrent callers. A caller never joins
 * a barrier already under way (its message left before the caller came, so it proves
 * nothing about what was published since): it joins the next one, which starts when the
 * current one ends. At most two are under way, however many callers wait.
 */
export class SharedBarrier {
  readonly #run: () => Promise<void>;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  /** `run` performs one barrier and never rejects. */
  constructor(run: () => Promise<void>) {
    this.#run = run;
  }

  /** Resolves once a barrier that started after this call has completed. */
  wait(): Promise<void> {
    // A barrier yet to start serves every caller until it starts.
    if (this.#next !== undefined) return this.#next;
    const running = this.#running;
    if (running === undefined) return this.#start();
    this.#next ??= running.then(() => {
      this.#next = undefined;
      return this.#start();
    });
    return this.#next;
  }

  #start(): Promise<void> {
    const p: Promise<void> = this.#run().finally(() => {
      if (this.#running === p) this.#running = undefined;
    });
    this.#running = p;
    return p;
  }
}
