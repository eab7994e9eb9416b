/**
 * Routing state on SQLite and PostgreSQL (`routing_state`, migration 7): what the hub
 * remembers of each instance (breaker, 14-day health window, throughput, latency, first
 * seen) survives a restart, so the window and ramp-up do not start again. Routing reads
 * memory only: the store is a {@link MemoryRoutingStore} in front, loaded from the table
 * at start, with changed keys written behind in batches (every second by default, and on
 * `flush()` / `close()`). A crash loses at most the last interval's statistics; money is
 * never kept here.
 *
 * Several processes on one database: each instance's row is written by the process that
 * holds its node's session (`owns`), and the others read it with `refresh()`. The first
 * seen time of a row never moves later, whoever writes it.
 */
import { freshHealth, MemoryRoutingStore, type InstanceHealth, type RoutingStore } from "../routing/store.js";
import { int, type SqlDriver, type SqlRow } from "./sql.js";
import { WriteBehind } from "./write-behind.js";

const DAY = 86_400_000;

/** Options of {@link SqlRoutingStore}. */
export interface SqlRoutingStoreOptions {
  /** Instances kept in memory (least recently updated forgotten first) and loaded at start. Default 100,000. */
  maxEntries?: number;
  /** Milliseconds between writes of changed state. Default 1000; 0 writes only on `flush()`. */
  flushIntervalMs?: number;
  /** Rows not written for this long are deleted when the store loads. Default 30 days (beyond the 14-day window and the week of ramp-up). */
  retentionMs?: number;
  /** Whether this process writes a key's row (default: every key). Changes to other keys stay in memory until `refresh()` replaces them. */
  owns?: (key: string) => boolean;
  /** Told of a background write that failed (it is retried at the next interval). */
  onError?: (error: unknown) => void;
}

/** Rows written per statement. */
const ROWS_PER_STATEMENT = 200;
/** How far before the previous refresh an unkeyed `refresh()` looks, for writers' clocks and commits in flight. */
const REFRESH_MARGIN_MS = 10_000;

const UPSERT_HEAD = "INSERT INTO routing_state (instance_key, first_seen, state, updated_at) VALUES ";
// The earlier first-seen time wins, so ramp-up never starts again because a process met an instance late.
const UPSERT_TAIL = ` ON CONFLICT (instance_key) DO UPDATE SET
  first_seen = CASE WHEN routing_state.first_seen < excluded.first_seen THEN routing_state.first_seen ELSE excluded.first_seen END,
  state = excluded.state, updated_at = excluded.updated_at`;

/** The stored JSON of a state (`firstSeen` has its own column). */
export function encodeHealth(h: InstanceHealth): string {
  const { firstSeen: _, ...rest } = h;
  return JSON.stringify(rest);
}

/** A state read back from its row; undefined when the row cannot be read (it is then started afresh). */
export function decodeHealth(state: string, firstSeen: number): InstanceHealth | undefined {
  try {
    const o = JSON.parse(state) as Partial<InstanceHealth>;
    if (typeof o !== "object" || o === null || !o.breaker || !Array.isArray(o.window) || !o.throughput) return undefined;
    const h: InstanceHealth = { ...freshHealth(firstSeen), breaker: o.breaker, window: o.window, throughput: o.throughput };
    if (o.latency) h.latency = o.latency;
    return h;
  } catch {
    return undefined;
  }
}

const marks = (n: number) => Array.from({ length: n }, () => "?").join(", ");

/** Routing state kept in memory and written behind to a SQL database. */
export class SqlRoutingStore implements RoutingStore {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  readonly #memory: MemoryRoutingStore;
  readonly #maxEntries: number;
  readonly #retentionMs: number;
  #owns: (key: string) => boolean;
  readonly #behind: WriteBehind<string>;
  /** When the previous unkeyed refresh started (wall clock). */
  #refreshedAt = 0;

  /** @param ready resolves once the store's migrations have run. Call {@link SqlRoutingStore.load} before routing. */
  constructor(db: SqlDriver, ready: Promise<void>, options: SqlRoutingStoreOptions = {}) {
    this.#db = db;
    this.#ready = ready;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#memory = new MemoryRoutingStore(this.#maxEntries);
    this.#retentionMs = options.retentionMs ?? 30 * DAY;
    this.#owns = options.owns ?? (() => true);
    this.#behind = new WriteBehind((keys) => this.#write(keys), {
      intervalMs: options.flushIntervalMs ?? 1000,
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  /** Deletes rows past retention and reads the newest rows (up to `maxEntries`) into memory; returns how many. */
  async load(now = Date.now()): Promise<number> {
    await this.#ready;
    await this.#db.run("DELETE FROM routing_state WHERE updated_at < ?", [now - this.#retentionMs]);
    const rows = await this.#db.all(
      "SELECT instance_key, first_seen, state FROM routing_state ORDER BY updated_at DESC, instance_key LIMIT ?",
      [this.#maxEntries],
    );
    this.#refreshedAt = now;
    // Oldest first, so the memory's least-recently-updated order matches the table's.
    return this.#take(rows.reverse(), () => true);
  }

  get(key: string): InstanceHealth | undefined {
    return this.#memory.get(key);
  }

  update(key: string, now: number, fn: (current: InstanceHealth) => InstanceHealth): InstanceHealth {
    const next = this.#memory.update(key, now, fn);
    if (this.#owns(key)) this.#behind.mark(key);
    return next;
  }

  /** Says which keys this process writes from now on (a hub of several processes: the instances of nodes connected here). */
  setOwner(owns: (key: string) => boolean): void {
    this.#owns = owns;
  }

  /** Writes every change made so far. */
  flush(): Promise<void> {
    return this.#behind.flush();
  }

  /**
   * Reads rows another process may have written: those of `keys`, or (without `keys`) every
   * row written since the previous refresh. A key with a change not yet written here keeps
   * its memory (only its first-seen time moves earlier if the row's is). Returns the number
   * of keys replaced.
   */
  async refresh(keys?: readonly string[], now = Date.now()): Promise<number> {
    await this.#ready;
    const rows: SqlRow[] = [];
    if (keys === undefined) {
      const since = this.#refreshedAt - REFRESH_MARGIN_MS;
      this.#refreshedAt = now;
      rows.push(
        ...(await this.#db.all("SELECT instance_key, first_seen, state FROM routing_state WHERE updated_at >= ? ORDER BY updated_at", [
          since,
        ])),
      );
    } else {
      for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
        const chunk = keys.slice(i, i + ROWS_PER_STATEMENT);
        rows.push(
          ...(await this.#db.all(
            `SELECT instance_key, first_seen, state FROM routing_state WHERE instance_key IN (${marks(chunk.length)})`,
            chunk,
          )),
        );
      }
    }
    return this.#take(rows, (key) => !this.#behind.has(key));
  }

  /** Instances in memory. */
  get size(): number {
    return this.#memory.size;
  }

  /** Changed keys not yet written. */
  get pending(): number {
    return this.#behind.pending;
  }

  /** Stops the background writes and writes what is left. */
  close(): Promise<void> {
    return this.#behind.close();
  }

  /** Puts rows into memory: each whole when `replace(key)`, else only an earlier first-seen time. */
  #take(rows: readonly SqlRow[], replace: (key: string) => boolean): number {
    let taken = 0;
    for (const row of rows) {
      const key = String(row.instance_key);
      const firstSeen = int(row.first_seen);
      const stored = decodeHealth(String(row.state), firstSeen);
      if (!stored) continue;
      const current = this.#memory.get(key);
      if (current === undefined || replace(key)) {
        const merged = current && current.firstSeen < firstSeen ? { ...stored, firstSeen: current.firstSeen } : stored;
        this.#memory.update(key, firstSeen, () => merged);
        taken++;
      } else if (firstSeen < current.firstSeen) {
        this.#memory.update(key, firstSeen, (h) => ({ ...h, firstSeen }));
      }
    }
    return taken;
  }

  /** Writes the memory of `keys` in batched upserts, one transaction. */
  async #write(keys: readonly string[]): Promise<void> {
    await this.#ready;
    const updatedAt = Date.now();
    const params: (string | number)[] = [];
    let rows = 0;
    for (const key of keys) {
      const h = this.#memory.get(key);
      if (!h) continue; // forgotten from memory since (the bound): its last written row stays
      params.push(key, h.firstSeen, encodeHealth(h), updatedAt);
      rows++;
    }
    if (rows === 0) return;
    await this.#db.transaction(async (tx) => {
      for (let i = 0; i < rows; i += ROWS_PER_STATEMENT) {
        const n = Math.min(ROWS_PER_STATEMENT, rows - i);
        const values = Array.from({ length: n }, () => "(?, ?, ?, ?)").join(", ");
        await tx.run(UPSERT_HEAD + values + UPSERT_TAIL, params.slice(i * 4, (i + n) * 4));
      }
    });
  }
}
