/**
 * Routing policy as pure functions (`spec/v1/liveness.md`, "Routing policy"): which instances may take a request,
 * which one takes it, and how outcomes move an instance's breaker, health window,
 * throughput estimate and ramp-up. Nothing here does I/O or reads the clock: callers
 * pass `now` and a random source, so every rule is unit- and property-testable.
 */
import type { Capability, Price } from "@srp/core/schema";

/** The numbers of the routing policy. Defaults are {@link ROUTING_DEFAULTS}. */
export interface RoutingConfig {
  /** Failures within `breakerWindowMs` that park an instance; default 3. */
  breakerFailures: number;
  /** Window for counting failures; default 60 s. */
  breakerWindowMs: number;
  /** How long a parked instance rests before its probe; default 15 s. */
  parkMs: number;
  /** Sustained speed below which an instance is only used when nothing faster is free; default 5 tokens/s. */
  minTokensPerSecond: number;
  /** Streams measured before the floor applies; default 3. */
  throughputMinSamples: number;
  /** Length of the rolling health window; default 14 days. */
  healthWindowMs: number;
  /** Ramp-up period of a new instance; default 7 days. */
  rampMs: number;
  /** Share of traffic a brand-new instance gets relative to a seasoned one; default 0.1. */
  rampFloor: number;
  /** How long a prefix stays with the instance that served it, after its last use (prefix affinity); default 5 min, 0 turns affinity off. */
  affinityTtlMs: number;
  /** Most prefix keys remembered (least recently used dropped first); default 10,000. */
  affinityMaxEntries: number;
}

/**
 * The reference hub's routing numbers, as `spec/v1/liveness.md` ("Routing policy") and
 * `spec/v1/offer.md` ("Hub policy", ramp-up over the first week) describe them.
 */
export const ROUTING_DEFAULTS: Readonly<RoutingConfig> = Object.freeze({
  breakerFailures: 3,
  breakerWindowMs: 60_000,
  parkMs: 15_000,
  minTokensPerSecond: 5,
  throughputMinSamples: 3,
  healthWindowMs: 14 * 24 * 3600_000,
  rampMs: 7 * 24 * 3600_000,
  rampFloor: 0.1,
  affinityTtlMs: 5 * 60_000,
  affinityMaxEntries: 10_000,
});

/** How a job ended, for health: consumer-caused failures are neutral. */
export type Outcome = "success" | "failure" | "neutral";

// ---------------------------------------------------------------------------
// Breaker

/** The forgiving breaker of one instance. */
export interface Breaker {
  /** Times of recent failures (within the window). */
  failures: readonly number[];
  /** While `now < parkedUntil` the instance is parked. */
  parkedUntil: number;
  /** True from the moment the park ends until the probe's result arrives. */
  probing: boolean;
  /** Whether the instance was ever parked and is waiting for a probe to succeed. */
  needsProbe: boolean;
}

/** A breaker that has seen nothing. */
export const CLOSED_BREAKER: Breaker = Object.freeze({ failures: [], parkedUntil: 0, probing: false, needsProbe: false });

/** Where a breaker stands: `closed` takes jobs; `parked` rests; `probe_due` wants its probe sent; `probing` waits for it. */
export type BreakerStatus = "closed" | "parked" | "probe_due" | "probing";

/** The status of a breaker at `now`. */
export function breakerStatus(b: Breaker, now: number): BreakerStatus {
  if (!b.needsProbe) return "closed";
  if (now < b.parkedUntil) return "parked";
  return b.probing ? "probing" : "probe_due";
}

/**
 * A breaker after a job outcome. Neutral outcomes change nothing; a success clears the
 * failure count; the `breakerFailures`-th failure within `breakerWindowMs` parks the
 * instance for `parkMs`. Outcomes that arrive while parked (jobs started before) do not
 * extend the park.
 */
export function breakerAfterOutcome(b: Breaker, outcome: Outcome, now: number, cfg: RoutingConfig = ROUTING_DEFAULTS): Breaker {
  if (outcome === "neutral" || b.needsProbe) return b;
  if (outcome === "success") return b.failures.length === 0 ? b : { ...b, failures: [] };
  const failures = [...b.failures.filter((t) => now - t < cfg.breakerWindowMs), now];
  if (failures.length >= cfg.breakerFailures) return { failures: [], parkedUntil: now + cfg.parkMs, probing: false, needsProbe: true };
  return { ...b, failures };
}

/** A breaker whose probe was just sent. */
export function breakerProbeSent(b: Breaker): Breaker {
  return { ...b, probing: true };
}

/** A breaker after its probe: success lets the instance fully back in; failure parks it again. */
export function breakerAfterProbe(b: Breaker, ok: boolean, now: number, cfg: RoutingConfig = ROUTING_DEFAULTS): Breaker {
  if (!b.needsProbe) return b;
  return ok ? CLOSED_BREAKER : { failures: [], parkedUntil: now + cfg.parkMs, probing: false, needsProbe: true };
}

// ---------------------------------------------------------------------------
// Health window

/** Counts of one day of an instance's life. */
export interface HealthBucket {
  day: number;
  success: number;
  failure: number;
  neutral: number;
  probeOk: number;
  probeFail: number;
  /** Milliseconds online during the day. */
  onlineMs: number;
}

const DAY = 24 * 3600_000;

/** Adds to the window's bucket for `now`, dropping buckets older than the window. */
export function recordHealth(
  window: readonly HealthBucket[],
  now: number,
  add: Partial<Omit<HealthBucket, "day">>,
  cfg: RoutingConfig = ROUTING_DEFAULTS,
): HealthBucket[] {
  const day = Math.floor(now / DAY);
  const oldest = Math.floor((now - cfg.healthWindowMs) / DAY);
  const kept = window.filter((b) => b.day > oldest);
  let bucket = kept.find((b) => b.day === day);
  if (!bucket) {
    bucket = { day, success: 0, failure: 0, neutral: 0, probeOk: 0, probeFail: 0, onlineMs: 0 };
    kept.push(bucket);
  }
  const i = kept.indexOf(bucket);
  kept[i] = {
    day,
    success: bucket.success + (add.success ?? 0),
    failure: bucket.failure + (add.failure ?? 0),
    neutral: bucket.neutral + (add.neutral ?? 0),
    probeOk: bucket.probeOk + (add.probeOk ?? 0),
    probeFail: bucket.probeFail + (add.probeFail ?? 0),
    onlineMs: Math.min(DAY, bucket.onlineMs + (add.onlineMs ?? 0)),
  };
  return kept;
}

/**
 * Health in [0, 1] over the window: successes and passed probes against failures and
 * failed probes, with one day online worth one success of uptime credit, and a prior of
 * one success and one failure so a newcomer starts at 0.5. Neutral outcomes count for
 * nothing.
 */
export function healthScore(window: readonly HealthBucket[], now: number, cfg: RoutingConfig = ROUTING_DEFAULTS): number {
  const oldest = Math.floor((now - cfg.healthWindowMs) / DAY);
  let good = 1;
  let bad = 1;
  for (const b of window) {
    if (b.day <= oldest) continue;
    good += b.success + b.probeOk + b.onlineMs / DAY;
    bad += b.failure + b.probeFail;
  }
  return good / (good + bad);
}

// ---------------------------------------------------------------------------
// Throughput and ramp-up

/** Estimated sustained throughput of an instance, from real streams. */
export interface Throughput {
  /** Exponentially weighted tokens per second. */
  tokensPerSecond: number;
  /** Streams measured. */
  samples: number;
}

/** No measurement yet. */
export const NO_THROUGHPUT: Throughput = Object.freeze({ tokensPerSecond: 0, samples: 0 });

/**
 * Folds one measured stream into the estimate: `tokens` completion tokens produced over
 * `ms` between the first and the last chunk. Streams too short to measure (under 4
 * tokens or 50 ms) are ignored.
 */
export function recordThroughput(t: Throughput, tokens: number, ms: number): Throughput {
  if (tokens < 4 || ms < 50) return t;
  const rate = (tokens * 1000) / ms;
  const alpha = 0.3;
  return { tokensPerSecond: t.samples === 0 ? rate : t.tokensPerSecond * (1 - alpha) + rate * alpha, samples: t.samples + 1 };
}

/** Estimated time to first output of an instance (from job sent to its first chunk or its end). */
export interface Latency {
  /** Exponentially weighted milliseconds. */
  ms: number;
  /** Jobs measured. */
  samples: number;
}

/** No measurement yet. */
export const NO_LATENCY: Latency = Object.freeze({ ms: 0, samples: 0 });

/** Folds one measured time to first output into the estimate. */
export function recordLatency(l: Latency, ms: number): Latency {
  if (!Number.isFinite(ms) || ms < 0) return l;
  const alpha = 0.3;
  return { ms: l.samples === 0 ? ms : l.ms * (1 - alpha) + ms * alpha, samples: l.samples + 1 };
}

/** Whether an instance has been measured below the throughput floor. */
export function belowFloor(t: Throughput, cfg: RoutingConfig = ROUTING_DEFAULTS): boolean {
  return t.samples >= cfg.throughputMinSamples && t.tokensPerSecond < cfg.minTokensPerSecond;
}

/** Ramp-up weight in [rampFloor, 1]: linear over `rampMs` from the instance's first appearance. */
export function rampFactor(firstSeen: number, now: number, cfg: RoutingConfig = ROUTING_DEFAULTS): number {
  const age = Math.max(0, now - firstSeen);
  if (age >= cfg.rampMs) return 1;
  return cfg.rampFloor + (1 - cfg.rampFloor) * (age / cfg.rampMs);
}

// ---------------------------------------------------------------------------
// Selection

/** What routing knows of one live instance. */
export interface CandidateView {
  /** Registry key (node id and instance id). */
  key: string;
  model: string;
  capabilities: readonly Capability[];
  contextLength: number;
  price: Price;
  /** Jobs the hub has running on it. */
  active: number;
  /** Slots: the offer's `maxConcurrency`, lowered by the node's last reported capacity. */
  capacity: number;
  breaker: Breaker;
  health: number;
  throughput: Throughput;
  firstSeen: number;
  /** The node serving it. */
  nodeId?: string;
  /** Its supply tier. */
  tier?: string;
  /** Measured time to first output. */
  latency?: Latency;
  /** Normalized quantization of its weights, when the offer says (SRP-OFF-011). */
  quantization?: string;
}

/**
 * Whether an instance matches a consumer's provider selector: its node id, its
 * `nodeId/instanceId` key, or its supply tier (`gpu`, `key`, `credits`, `subscription`).
 */
export function matchesSelector(v: CandidateView, selector: string): boolean {
  return selector === v.nodeId || selector === v.key || selector === v.tier;
}

/** What a request needs. */
export interface RouteNeeds {
  model: string;
  /** Capabilities the request uses (stream, tools, vision, json_mode). */
  capabilities: readonly Capability[];
  /** Prompt plus requested output, in tokens (an estimate is fine). */
  contextTokens: number;
  /** The consumer's price cap per 1M tokens. */
  maxPrice?: { input?: bigint; output?: bigint };
  /** Instances already tried for this request. */
  exclude?: ReadonlySet<string>;
  /** Only instances matching one of these selectors (node ids, keys or tiers). */
  only?: readonly string[];
  /** No instance matching one of these selectors. */
  ignore?: readonly string[];
  /** Only instances whose offered quantization is one of these (normalized spellings; SRP-CON-019). */
  quantizations?: readonly string[];
  /** Only instances this accepts: on a billing hub, those whose worst case for the request fits what was reserved for it (SRP-BIL-003). */
  within?: (c: CandidateView) => boolean;
}

/** Why no instance can take a request. */
export type NoRoute =
  | { reason: "unknown_model" }
  | { reason: "no_match"; detail: string }
  | { reason: "parked"; retryAfterMs: number }
  | { reason: "busy" };

/**
 * The instances that may take a request now: right model, needed capabilities, enough
 * context, within the price cap, not excluded, breaker closed and a free slot. When
 * instances above the throughput floor are free, the ones below it are left out.
 */
export function eligible(
  all: readonly CandidateView[],
  needs: RouteNeeds,
  now: number,
  cfg: RoutingConfig = ROUTING_DEFAULTS,
): CandidateView[] | NoRoute {
  const served = all.filter((c) => c.model === needs.model);
  if (served.length === 0) return { reason: "unknown_model" };
  const { only, ignore, quantizations } = needs;
  const forModel = served.filter(
    (c) =>
      (!only || only.some((s) => matchesSelector(c, s))) &&
      !ignore?.some((s) => matchesSelector(c, s)) &&
      (!quantizations || (c.quantization !== undefined && quantizations.includes(c.quantization))),
  );
  if (forModel.length === 0) {
    const which =
      quantizations && !served.some((c) => c.quantization !== undefined && quantizations.includes(c.quantization))
        ? `provider.quantizations (${quantizations.join(", ")})`
        : "the request's provider.only / provider.ignore";
    return { reason: "no_match", detail: `no instance of ${needs.model} matches ${which}` };
  }
  const matching = forModel.filter(
    (c) =>
      needs.capabilities.every((cap) => c.capabilities.includes(cap)) &&
      c.contextLength >= needs.contextTokens &&
      (needs.maxPrice?.input === undefined || BigInt(c.price.input) <= needs.maxPrice.input) &&
      (needs.maxPrice?.output === undefined || BigInt(c.price.output) <= needs.maxPrice.output) &&
      (!needs.within || needs.within(c)) &&
      !needs.exclude?.has(c.key),
  );
  if (matching.length === 0) {
    // Instances that match but were already tried for this request: that is "busy", not "no match".
    if (needs.exclude && needs.exclude.size > 0 && forModel.some((c) => needs.exclude!.has(c.key))) {
      const retried = eligible(
        forModel.filter((c) => needs.exclude!.has(c.key)),
        { ...needs, exclude: new Set() },
        now,
        cfg,
      );
      if (Array.isArray(retried)) return { reason: "busy" };
    }
    const missing = needs.capabilities.filter((cap) => !forModel.some((c) => c.capabilities.includes(cap)));
    const combined = !forModel.some((c) => needs.capabilities.every((cap) => c.capabilities.includes(cap)));
    const detail =
      missing.length > 0
        ? `no instance of ${needs.model} supports ${missing.join(", ")}`
        : combined
          ? `no single instance of ${needs.model} supports ${needs.capabilities.join(" + ")} together`
          : `no instance of ${needs.model} fits the request's context length, price cap or reserved maximum cost`;
    return { reason: "no_match", detail };
  }
  const closed = matching.filter((c) => breakerStatus(c.breaker, now) === "closed");
  if (closed.length === 0) {
    const until = Math.min(...matching.map((c) => Math.max(c.breaker.parkedUntil, now + 1000)));
    return { reason: "parked", retryAfterMs: Math.max(1000, until - now) };
  }
  const free = closed.filter((c) => c.active < c.capacity);
  if (free.length === 0) return { reason: "busy" };
  const fast = free.filter((c) => !belowFloor(c.throughput, cfg));
  return fast.length > 0 ? fast : free;
}

/**
 * The instances {@link pick} draws from, with their weights: the least loaded (lowest share
 * of busy slots), among those the best health bucket of the seasoned ones plus every one
 * still ramping up, each weighted by its ramp-up factor.
 */
export function pickPool(
  candidates: readonly CandidateView[],
  now: number,
  cfg: RoutingConfig = ROUTING_DEFAULTS,
): { pool: CandidateView[]; weights: number[] } {
  let bestLoad = Infinity;
  let tied: CandidateView[] = [];
  for (const c of candidates) {
    const load = c.active / c.capacity;
    if (load < bestLoad - 1e-9) {
      bestLoad = load;
      tied = [c];
    } else if (Math.abs(load - bestLoad) <= 1e-9) tied.push(c);
  }
  // Health tie-break in coarse buckets: small differences do not concentrate traffic.
  // Instances still ramping up have no health history worth comparing: they join the
  // best bucket, and their ramp weight alone limits their share.
  const seasoned = (c: CandidateView) => now - c.firstSeen >= cfg.rampMs;
  const bucket = (c: CandidateView) => Math.floor(c.health * 10);
  const bestHealth = tied.some(seasoned) ? Math.max(...tied.filter(seasoned).map(bucket)) : 0;
  const pool = tied.filter((c) => !seasoned(c) || bucket(c) === bestHealth);
  return { pool, weights: pool.map((c) => rampFactor(c.firstSeen, now, cfg)) };
}

/**
 * Picks one instance: least loaded first (the lowest share of busy slots), then the best
 * health bucket among those, then a random choice weighted by ramp-up, so equally idle,
 * equally healthy, equally seasoned instances share traffic evenly ({@link pickPool}).
 */
export function pick(
  candidates: readonly CandidateView[],
  now: number,
  random: () => number = Math.random,
  cfg: RoutingConfig = ROUTING_DEFAULTS,
): CandidateView | undefined {
  if (candidates.length === 0) return undefined;
  const { pool: healthy, weights } = pickPool(candidates, now, cfg);
  const total = weights.reduce((a, b) => a + b, 0);
  let r = random() * total;
  for (let i = 0; i < healthy.length; i++) {
    r -= weights[i]!;
    if (r < 0) return healthy[i];
  }
  return healthy[healthy.length - 1];
}

/** Capabilities a chat completions body uses. */
export function chatNeeds(body: Record<string, unknown>): Capability[] {
  const needs: Capability[] = ["chat"];
  if (body.stream === true) needs.push("stream");
  if (Array.isArray(body.tools) && body.tools.length > 0) needs.push("tools");
  const rf = body.response_format as { type?: unknown } | undefined;
  if (rf && (rf.type === "json_object" || rf.type === "json_schema")) needs.push("json_mode");
  if (Array.isArray(body.messages)) {
    const image = body.messages.some(
      (m) =>
        Array.isArray((m as { content?: unknown })?.content) &&
        (m as { content: unknown[] }).content.some((p) => (p as { type?: unknown })?.type === "image_url"),
    );
    if (image) needs.push("vision");
  }
  return needs;
}

/**
 * The length of `JSON.stringify(value)` for a parsed JSON value, counted with a loop
 * instead of recursion, so that no nesting overflows the stack.
 */
function jsonTextLength(value: unknown): number {
  let length = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v === "string") length += JSON.stringify(v).length;
    else if (typeof v === "number") length += Number.isFinite(v) ? String(v).length : 4;
    else if (typeof v === "boolean") length += v ? 4 : 5;
    else if (Array.isArray(v)) {
      length += 1 + Math.max(1, v.length);
      for (const item of v) pending.push(item ?? null);
    } else if (typeof v === "object" && v !== null) {
      const members = Object.entries(v).filter(([, x]) => x !== undefined);
      length += 1 + Math.max(1, members.length);
      for (const [k, x] of members) {
        length += JSON.stringify(k).length + 1;
        pending.push(x);
      }
    } else length += 4;
  }
  return length;
}

/** A rough token count of a chat body (4 characters per token), for context-length matching only; never billed. */
export function estimatePromptTokens(body: Record<string, unknown>): number {
  return Math.ceil(jsonTextLength(body.messages ?? "") / 4);
}
