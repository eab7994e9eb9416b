/**
 * The payout terms' memory on SQLite and PostgreSQL (migration 7): demand per model per
 * minute (`payout_demand`), the models each node offered last (`payout_offers`) and each
 * instance's last model switch (`payout_switches`), so a restart forgets neither a switch
 * (nor its 72-hour anti-flapping reduction) nor the last 15 minutes of demand. Memory is in
 * front ({@link MemoryPayoutState}); changes are written behind in batches, every second by
 * default and on `flush()` / `close()`. A crash loses at most the last interval.
 *
 * Several processes on one database: demand is written as increments (each process adds
 * its own requests) and `refresh()` reads the totals back; offers and switches are written
 * by the process holding the node's session, and a switch never moves earlier.
 */
import { PAYOUT_DEFAULTS } from "../ledger/payout-terms.js";
import { MemoryPayoutState, type PayoutState } from "../ledger/payout-state.js";
import { DEMAND_MINUTES } from "../ledger/payout-tracker.js";
import { int, type SqlDriver, type SqlExecutor, type SqlValue } from "./sql.js";
import { WriteBehind } from "./write-behind.js";

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Options of {@link SqlPayoutState}. */
export interface SqlPayoutStateOptions {
  /** Nodes whose offers are kept in memory and loaded at start. Default 100,000. */
  maxNodes?: number;
  /** Milliseconds between writes of changes. Default 1000; 0 writes only on `flush()`. */
  flushIntervalMs?: number;
  /** Switches older than this are forgotten (the reduction's decay). Default 72 hours (`PAYOUT_DEFAULTS.flapDecayMs`). */
  switchRetentionMs?: number;
  /** Offers of nodes not seen for this long are deleted when the state loads. Default 30 days. */
  offersRetentionMs?: number;
  /** Told of a background write that failed (it is retried at the next interval). */
  onError?: (error: unknown) => void;
}

/** Rows written per statement. */
const ROWS_PER_STATEMENT = 200;
/** How far before the previous refresh `refresh()` looks, for writers' clocks and commits in flight. */
const REFRESH_MARGIN_MS = 10_000;
/** The write-behind key of the demand increments (offers and switches use `o:` and `s:` prefixes). */
const DEMAND = "d";

/** Payout state kept in memory and written behind to a SQL database. */
export class SqlPayoutState implements PayoutState {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  readonly #memory: MemoryPayoutState;
  readonly #maxNodes: number;
  readonly #switchRetentionMs: number;
  readonly #offersRetentionMs: number;
  readonly #behind: WriteBehind<string>;
  /** Requests counted here and not yet added to the table: model, minute, count. */
  #increments = new Map<string, Map<number, number>>();
  /** The minute up to which the table's demand was last swept. */
  #sweptMinute = Number.NEGATIVE_INFINITY;
  #refreshedAt = 0;

  /** @param ready resolves once the store's migrations have run. Call {@link SqlPayoutState.load} before serving. */
  constructor(db: SqlDriver, ready: Promise<void>, options: SqlPayoutStateOptions = {}) {
    this.#db = db;
    this.#ready = ready;
    this.#maxNodes = options.maxNodes ?? 100_000;
    this.#memory = new MemoryPayoutState(this.#maxNodes);
    this.#switchRetentionMs = options.switchRetentionMs ?? PAYOUT_DEFAULTS.flapDecayMs;
    this.#offersRetentionMs = options.offersRetentionMs ?? 30 * DAY;
    this.#behind = new WriteBehind((keys) => this.#write(keys), {
      intervalMs: options.flushIntervalMs ?? 1000,
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  /** Deletes what is past retention and reads the rest into memory. */
  async load(now = Date.now()): Promise<void> {
    await this.#ready;
    await this.#db.run("DELETE FROM payout_offers WHERE updated_at < ?", [now - this.#offersRetentionMs]);
    await this.#sweep(this.#db, now);
    const offers = await this.#db.all("SELECT node_id, offers FROM payout_offers ORDER BY updated_at DESC, node_id LIMIT ?", [
      this.#maxNodes,
    ]);
    for (const row of offers.reverse()) {
      const byInstance = decodeOffers(String(row.offers));
      if (byInstance) this.#memory.setOffers(String(row.node_id), byInstance);
    }
    await this.#readSwitches(Number.NEGATIVE_INFINITY);
    await this.#readDemand(now);
    this.#refreshedAt = now;
  }

  /**
   * Reads what other processes wrote: demand totals over the window (plus this process's
   * increments not yet written), switches and offers written since the previous refresh
   * (offers changed here and not yet written are kept).
   */
  async refresh(now = Date.now()): Promise<void> {
    await this.#ready;
    const since = this.#refreshedAt - REFRESH_MARGIN_MS;
    this.#refreshedAt = now;
    const offers = await this.#db.all("SELECT node_id, offers FROM payout_offers WHERE updated_at >= ? ORDER BY updated_at", [since]);
    for (const row of offers) {
      const nodeId = String(row.node_id);
      const byInstance = decodeOffers(String(row.offers));
      if (byInstance && !this.#behind.has(`o:${nodeId}`)) this.#memory.setOffers(nodeId, byInstance);
    }
    await this.#readSwitches(now - this.#switchRetentionMs);
    await this.#readDemand(now);
  }

  demand(model: string): ReadonlyMap<number, number> | undefined {
    return this.#memory.demand(model);
  }

  addDemand(model: string, minute: number, n: number): void {
    this.#memory.addDemand(model, minute, n);
    addTo(this.#increments, model, minute, n);
    this.#behind.mark(DEMAND);
  }

  forgetDemand(minute: number): void {
    this.#memory.forgetDemand(minute);
  }

  get demandModels(): number {
    return this.#memory.demandModels;
  }

  offers(nodeId: string): ReadonlyMap<string, string> | undefined {
    return this.#memory.offers(nodeId);
  }

  setOffers(nodeId: string, byInstance: ReadonlyMap<string, string>): void {
    this.#memory.setOffers(nodeId, byInstance);
    this.#behind.mark(`o:${nodeId}`);
  }

  switchedAt(key: string): number | undefined {
    return this.#memory.switchedAt(key);
  }

  setSwitchedAt(key: string, at: number): void {
    this.#memory.setSwitchedAt(key, at);
    this.#behind.mark(`s:${key}`);
  }

  forgetSwitches(before: number): void {
    this.#memory.forgetSwitches(before);
  }

  /** Writes every change made so far. */
  flush(): Promise<void> {
    return this.#behind.flush();
  }

  /** Changes not yet written (the demand increments count as one). */
  get pending(): number {
    return this.#behind.pending;
  }

  /** Stops the background writes and writes what is left. */
  close(): Promise<void> {
    return this.#behind.close();
  }

  /** Reads switches made at or after `from` into memory (a later one wins). */
  async #readSwitches(from: number): Promise<void> {
    const rows = await this.#db.all("SELECT instance_key, switched_at FROM payout_switches WHERE switched_at >= ?", [
      Number.isFinite(from) ? from : 0,
    ]);
    for (const row of rows) {
      const key = String(row.instance_key);
      const at = int(row.switched_at);
      if ((this.#memory.switchedAt(key) ?? Number.NEGATIVE_INFINITY) < at) this.#memory.setSwitchedAt(key, at);
    }
  }

  /** Replaces the demand in memory by the table's totals over the window plus the increments not yet written. */
  async #readDemand(now: number): Promise<void> {
    const from = Math.floor(now / MINUTE) - DEMAND_MINUTES;
    const rows = await this.#db.all("SELECT model, minute, requests FROM payout_demand WHERE minute > ?", [from]);
    const totals = new Map<string, Map<number, number>>();
    for (const row of rows) addTo(totals, String(row.model), int(row.minute), int(row.requests));
    for (const [model, m] of this.#increments) for (const [minute, n] of m) if (minute > from) addTo(totals, model, minute, n);
    const models = new Set([...totals.keys(), ...[...this.#memory.demandEntries()].map(([model]) => model)]);
    for (const model of models) this.#memory.setDemand(model, totals.get(model) ?? new Map());
  }

  /** Deletes demand out of the window and switches past retention. */
  async #sweep(on: SqlExecutor, now: number): Promise<void> {
    const minute = Math.floor(now / MINUTE) - DEMAND_MINUTES;
    if (minute === this.#sweptMinute) return;
    this.#sweptMinute = minute;
    await on.run("DELETE FROM payout_demand WHERE minute <= ?", [minute]);
    await on.run("DELETE FROM payout_switches WHERE switched_at < ?", [now - this.#switchRetentionMs]);
  }

  /** Writes the demand increments, and the offers and switches of `keys`, in one transaction. */
  async #write(keys: readonly string[]): Promise<void> {
    await this.#ready;
    const now = Date.now();
    const increments = keys.includes(DEMAND) ? this.#increments : new Map<string, Map<number, number>>();
    if (increments === this.#increments) this.#increments = new Map();
    const demand: SqlValue[] = [];
    for (const [model, m] of increments) for (const [minute, n] of m) demand.push(model, minute, n);
    const offers: SqlValue[] = [];
    const switches: SqlValue[] = [];
    for (const key of keys) {
      if (key.startsWith("o:")) {
        const byInstance = this.#memory.offers(key.slice(2));
        if (byInstance) offers.push(key.slice(2), JSON.stringify([...byInstance]), now);
      } else if (key.startsWith("s:")) {
        const at = this.#memory.switchedAt(key.slice(2));
        if (at !== undefined) switches.push(key.slice(2), at);
      }
    }
    try {
      await this.#db.transaction(async (tx) => {
        await upsert(
          tx,
          "INSERT INTO payout_demand (model, minute, requests) VALUES ",
          3,
          demand,
          " ON CONFLICT (model, minute) DO UPDATE SET requests = payout_demand.requests + excluded.requests",
        );
        await upsert(
          tx,
          "INSERT INTO payout_offers (node_id, offers, updated_at) VALUES ",
          3,
          offers,
          " ON CONFLICT (node_id) DO UPDATE SET offers = excluded.offers, updated_at = excluded.updated_at",
        );
        await upsert(
          tx,
          "INSERT INTO payout_switches (instance_key, switched_at) VALUES ",
          2,
          switches,
          // The later switch wins: a reduction is never shortened by an older write.
          ` ON CONFLICT (instance_key) DO UPDATE SET switched_at = CASE WHEN payout_switches.switched_at > excluded.switched_at
            THEN payout_switches.switched_at ELSE excluded.switched_at END`,
        );
        await this.#sweep(tx, now);
      });
    } catch (error) {
      // Nothing was added: the increments go back to be written next time.
      for (const [model, m] of increments) for (const [minute, n] of m) addTo(this.#increments, model, minute, n);
      this.#sweptMinute = Number.NEGATIVE_INFINITY;
      throw error;
    }
  }
}

/** Adds `n` to a model's minute in a nested map. */
function addTo(to: Map<string, Map<number, number>>, model: string, minute: number, n: number): void {
  let m = to.get(model);
  if (!m) to.set(model, (m = new Map()));
  m.set(minute, (m.get(minute) ?? 0) + n);
}

/** A node's offers read back (`[[instanceId, model], ...]`); undefined when unreadable. */
function decodeOffers(json: string): Map<string, string> | undefined {
  try {
    const pairs = JSON.parse(json) as unknown;
    if (!Array.isArray(pairs) || !pairs.every((p) => Array.isArray(p) && typeof p[0] === "string" && typeof p[1] === "string"))
      return undefined;
    return new Map(pairs as [string, string][]);
  } catch {
    return undefined;
  }
}

/** Runs a multi-row `INSERT ... ON CONFLICT` over `params` (`width` per row), in statements of at most {@link ROWS_PER_STATEMENT} rows. */
async function upsert(tx: SqlExecutor, head: string, width: number, params: readonly SqlValue[], tail: string): Promise<void> {
  const rows = params.length / width;
  for (let i = 0; i < rows; i += ROWS_PER_STATEMENT) {
    const n = Math.min(ROWS_PER_STATEMENT, rows - i);
    const row = `(${Array.from({ length: width }, () => "?").join(", ")})`;
    await tx.run(head + Array.from({ length: n }, () => row).join(", ") + tail, params.slice(i * width, (i + n) * width));
  }
}
