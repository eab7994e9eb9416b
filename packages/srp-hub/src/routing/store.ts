/**
 * Routing state behind an interface: what the hub remembers about each instance across
 * jobs and reconnects (breaker, 14-day health window, throughput, first appearance).
 * The in-memory store serves one hub process; the SQL store (`SqlRoutingStore` of
 * `@srp/hub/storage`, from `SqlStore.openRouting()`) keeps the same memory in front and
 * writes it behind to SQLite or PostgreSQL, so the 14-day window and ramp-up survive a
 * restart. Reads never wait for I/O: routing decisions stay pure functions over memory.
 */
import { CLOSED_BREAKER, NO_THROUGHPUT, type Breaker, type HealthBucket, type Latency, type Throughput } from "./policy.js";

/** What routing remembers of one instance, keyed by node id and instance id. */
export interface InstanceHealth {
  breaker: Breaker;
  window: HealthBucket[];
  throughput: Throughput;
  /** Time to first output; absent until measured (and in stores written before it existed). */
  latency?: Latency;
  /** When the hub first saw this instance (ramp-up starts here). */
  firstSeen: number;
}

/** Storage of routing state. Implementations must apply `update` atomically per key. */
export interface RoutingStore {
  /** The state of an instance, if known. */
  get(key: string): InstanceHealth | undefined;
  /** Replaces the state of an instance with `fn(current)` (a fresh state when unknown) and returns it. */
  update(key: string, now: number, fn: (current: InstanceHealth) => InstanceHealth): InstanceHealth;
  /** Writes what is kept only in memory so far to where it lasts (a durable store); the hub calls it when it closes. */
  flush?(): Promise<void>;
  /**
   * Says which keys this process writes from now on; other keys change in memory only. A
   * hub of several processes sets it: the process holding a node's session writes its
   * instances' state, and publishes it to the others.
   */
  setOwner?(owns: (key: string) => boolean): void;
  /** Reads the given keys again from a store shared by several processes; resolves with how many changed. */
  refresh?(keys: readonly string[]): Promise<number>;
}

/** A fresh state for an instance first seen at `now`. */
export function freshHealth(now: number): InstanceHealth {
  return { breaker: CLOSED_BREAKER, window: [], throughput: NO_THROUGHPUT, firstSeen: now };
}

/** Routing state in memory, bounded: past `maxEntries` the least recently updated instance is forgotten. */
export class MemoryRoutingStore implements RoutingStore {
  readonly #map = new Map<string, InstanceHealth>();
  readonly #max: number;
  constructor(maxEntries = 100_000) {
    this.#max = maxEntries;
  }
  get(key: string): InstanceHealth | undefined {
    return this.#map.get(key);
  }
  update(key: string, now: number, fn: (current: InstanceHealth) => InstanceHealth): InstanceHealth {
    const next = fn(this.#map.get(key) ?? freshHealth(now));
    this.#map.delete(key); // re-insert: Map order is then least recently updated first
    this.#map.set(key, next);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string);
    return next;
  }
  /** Instances remembered. */
  get size(): number {
    return this.#map.size;
  }
}
