/**
 * The hub's Prometheus metrics (`prom-client`), off unless the `metrics` option is set: the
 * metric definitions on a registry of the hub's own, the wiring from the hub's events to
 * counters and histograms, gauges read at scrape time from what the hub already knows
 * (sessions, instances by model and breaker state, slots, requests waiting), and the
 * `GET /metrics` answer behind a bearer token. The README's "Metrics" lists every metric.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { bearer, fail } from "./api/http.js";
import { breakerStatus } from "./routing/policy.js";
import type { Router } from "./routing/router.js";
import type { WaitQueue } from "./routing/wait-queue.js";
import type { HubEmitter, HubMetrics, LedgerEvent, RequestEvent, SessionInfo } from "./hub/types.js";

/** The `metrics` option of `createHub`. */
export interface HubMetricsOptions {
  /**
   * Serve `GET /metrics` on the hub's own HTTP surface to `Authorization: Bearer <token>`
   * (at least 16 characters). Absent: metrics are kept but not served by the hub; serve
   * `hub.metrics.scrape()` on a port of your own.
   */
  token?: string;
}

/** The path the hub serves its metrics at (with a token). */
export const METRICS_PATH = "/metrics";

/** What the metrics read from the hub. */
export interface MetricsSources {
  emitter: HubEmitter;
  router: Router;
  waiting: WaitQueue;
  /** Open provider sessions of this process. */
  sessions(): SessionInfo[];
}

/** Request latency buckets, seconds: 5 ms to 5 minutes. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Time-to-first-token buckets, seconds. */
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

/** The label of a request without a served model. */
const NO_MODEL = "none";

/** The per-request metrics. */
interface RequestMetrics {
  requests: Counter<"surface" | "model" | "status">;
  duration: Histogram<"surface" | "model">;
  ttft: Histogram<"surface" | "model">;
  tokens: Counter<"model" | "kind">;
  cost: Counter<"model">;
  errors: Counter<"code">;
}

/** Defines the per-request metrics on a registry. */
function requestMetrics(registry: Registry): RequestMetrics {
  const registers = [registry];
  return {
    requests: new Counter({
      name: "srp_requests_total",
      help: "Consumer HTTP requests answered, by surface (route), model and HTTP status",
      labelNames: ["surface", "model", "status"],
      registers,
    }),
    duration: new Histogram({
      name: "srp_request_duration_seconds",
      help: "Time from a request's arrival to the end of its response (a stream's end), seconds",
      labelNames: ["surface", "model"],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    ttft: new Histogram({
      name: "srp_time_to_first_token_seconds",
      help: "Streamed answers: time from the request's arrival to its first output, seconds",
      labelNames: ["surface", "model"],
      buckets: TTFT_BUCKETS,
      registers,
    }),
    tokens: new Counter({
      name: "srp_tokens_total",
      help: "Billed tokens (the countersigned receipts'), by model and kind (prompt or completion)",
      labelNames: ["model", "kind"],
      registers,
    }),
    cost: new Counter({
      name: "srp_cost_units_total",
      help: "What consumers' jobs cost, USDC atomic units (1e-6 USD); approximate above 2^53 units",
      labelNames: ["model"],
      registers,
    }),
    errors: new Counter({
      name: "srp_request_errors_total",
      help: "Consumer requests answered with an error the hub built, by SRP error code (not a stream's in-band error)",
      labelNames: ["code"],
      registers,
    }),
  };
}

/** Most distinct model labels a hub's metrics take; later models are counted as `other`. */
export const MAX_MODEL_LABELS = 200;

/**
 * A model's label, bounded: the first {@link MAX_MODEL_LABELS} distinct models are their own
 * label, every later one is `other`, so names a provider or a client chooses can never grow
 * the registry without bound.
 */
export function boundedModelLabels(max = MAX_MODEL_LABELS): (model: string) => string {
  const seen = new Set<string>();
  return (model) => {
    if (seen.has(model)) return model;
    if (seen.size >= max) return "other";
    seen.add(model);
    return model;
  };
}

const unbounded = (model: string) => model;

/** Records one answered request (the `/metrics` scrapes themselves are not counted). */
export function recordRequest(m: RequestMetrics, e: RequestEvent, label: (model: string) => string = unbounded): void {
  if (e.surface === METRICS_PATH) return;
  const model = e.model === undefined ? NO_MODEL : label(e.model);
  m.requests.inc({ surface: e.surface, model, status: String(e.status) });
  m.duration.observe({ surface: e.surface, model }, e.durationMs / 1000);
  if (e.ttftMs !== undefined) m.ttft.observe({ surface: e.surface, model }, e.ttftMs / 1000);
  if (e.promptTokens) m.tokens.inc({ model, kind: "prompt" }, e.promptTokens);
  if (e.completionTokens) m.tokens.inc({ model, kind: "completion" }, e.completionTokens);
  if (e.costUnits !== undefined && e.costUnits > 0n) m.cost.inc({ model }, Number(e.costUnits));
  if (e.errorCode !== undefined) m.errors.inc({ code: e.errorCode });
}

/** Queue wait buckets, seconds: 10 ms to 5 minutes (the longest wait a request may ask for). */
const QUEUE_WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Counters of consumers' reservations (the `ledger` event) and on-chain payouts (`payout`), and the histogram of waits for a slot (`queue.wait`). */
function countMoneyAndWaits(registry: Registry, emitter: HubEmitter, label: (model: string) => string): void {
  const registers = [registry];
  const reservations = new Counter({
    name: "srp_ledger_reservations_total",
    help: "Consumers' reservations by outcome: held at admission, settled by a receipt, released unbilled",
    labelNames: ["outcome"],
    registers,
  });
  const amounts = new Counter({
    name: "srp_ledger_amount_units_total",
    help: "Money reservations moved, USDC atomic units: held at admission, charged at settlement, released (unbilled, or a settlement's unspent rest)",
    labelNames: ["movement"],
    registers,
  });
  const waits = new Histogram({
    name: "srp_queue_wait_seconds",
    help: "How long requests waited for a slot, by model and outcome (served, timed_out, left)",
    labelNames: ["model", "outcome"],
    buckets: QUEUE_WAIT_BUCKETS,
    registers,
  });
  const payouts = new Counter({
    name: "srp_payouts_total",
    help: "On-chain payout vouchers by kind: issued, funded into the contract, claimed in a batch the hub submitted",
    labelNames: ["kind"],
    registers,
  });
  const payoutAmounts = new Counter({
    name: "srp_payout_amount_units_total",
    help: "On-chain payout money, USDC atomic units: issued (providers' shares), funded (with the protocol's fee), claimed (providers' shares paid)",
    labelNames: ["kind"],
    registers,
  });
  emitter.on("ledger", (e) => recordLedger(reservations, amounts, e));
  emitter.on("payout", (e) => {
    payouts.inc({ kind: e.kind }, e.kind === "issued" ? 1 : e.vouchers);
    if (e.amount > 0n) payoutAmounts.inc({ kind: e.kind }, Number(e.amount));
  });
  emitter.on("queue.wait", (e) => waits.observe({ model: label(e.model), outcome: e.outcome }, e.waitedMs / 1000));
}

/** Records one `ledger` event on the reservation and amount counters. */
export function recordLedger(reservations: Counter<"outcome">, amounts: Counter<"movement">, e: LedgerEvent): void {
  reservations.inc({ outcome: e.outcome }, e.reservations);
  const add = (movement: string, units: bigint | undefined) => {
    if (units !== undefined && units > 0n) amounts.inc({ movement }, Number(units));
  };
  if (e.outcome === "held") add("held", e.amount);
  else if (e.outcome === "settled") {
    add("charged", e.charged);
    add("released", e.returned);
  } else add("released", e.returned);
}

/** Counters of the hub's other events: sessions opened and closed, breakers, receipts, statements, disputes, payments, handshakes, storage. */
function countHubEvents(registry: Registry, emitter: HubEmitter, label: (model: string) => string): void {
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  const opened = counter("srp_provider_sessions_opened_total", "Provider sessions opened (authenticated)");
  const closed = counter("srp_provider_sessions_closed_total", "Provider sessions closed, by WebSocket close code", ["code"]);
  const breaker = counter("srp_breaker_changes_total", "Breakers that parked or readmitted an instance, by model", ["model", "status"]);
  const lastParked = counter("srp_breaker_last_instance_parked_total", "Breakers that parked a model's last instance taking jobs", [
    "model",
  ]);
  const rejected = counter("srp_receipts_rejected_total", "Node receipts refused (not countersigned, not billed), by error code", ["code"]);
  const gaps = counter("srp_receipt_gaps_total", "Node receipts that skipped sequence numbers");
  const statements = counter("srp_statements_total", "Statements issued to nodes");
  const disputes = counter("srp_disputes_total", "Disputes nodes raised");
  const payments = counter("srp_payments_total", "x402 payment outcomes, by kind", ["kind"]);
  const handshakes = counter("srp_handshakes_rejected_total", "Provider handshakes refused, by error code", ["code"]);
  const storage = counter("srp_storage_errors_total", "Storage failures no answer could report, by what failed", ["what"]);
  emitter.on("session.open", () => opened.inc());
  emitter.on("session.close", (s) => closed.inc({ code: String(s.code) }));
  emitter.on("breaker", (c) => {
    breaker.inc({ model: label(c.model), status: c.status });
    if (c.lastForModel) lastParked.inc({ model: label(c.model) });
  });
  emitter.on("receipt.rejected", (d) => rejected.inc({ code: d.code }));
  emitter.on("receipt.gap", () => gaps.inc());
  emitter.on("statement", () => statements.inc());
  emitter.on("dispute", () => disputes.inc());
  emitter.on("payment", (e) => payments.inc({ kind: e.kind }));
  emitter.on("handshake.rejected", (d) => handshakes.inc({ code: d.code }));
  emitter.on("storage.error", (d) => storage.inc({ what: d.what }));
}

/** What the live instances add up to at one moment, per model (pure over the router's views). */
export interface InstanceTally {
  /** Instances by model and breaker status (`closed`, `parked`, `probe_due`, `probing`). */
  byBreaker: Map<string, Map<string, number>>;
  /** Jobs running, per model. */
  active: Map<string, number>;
  /** Slots, per model. */
  slots: Map<string, number>;
}

/** Tallies the live instances of a router's catalog at `now`. */
export function tallyInstances(router: Pick<Router, "catalog">, now: number): InstanceTally {
  const out: InstanceTally = { byBreaker: new Map(), active: new Map(), slots: new Map() };
  for (const [model, views] of router.catalog(now)) {
    const states = new Map<string, number>();
    let active = 0;
    let slots = 0;
    for (const v of views) {
      const s = breakerStatus(v.breaker, now);
      states.set(s, (states.get(s) ?? 0) + 1);
      active += v.active;
      slots += v.capacity;
    }
    out.byBreaker.set(model, states);
    out.active.set(model, active);
    out.slots.set(model, slots);
  }
  return out;
}

/** Gauges read at scrape time: sessions, instances by model and breaker state, jobs running, slots, requests waiting. */
function hubGauges(registry: Registry, sources: MetricsSources): void {
  const registers = [registry];
  new Gauge({
    name: "srp_provider_sessions",
    help: "Open, authenticated provider sessions on this process",
    registers,
    collect() {
      this.set(sources.sessions().length);
    },
  });
  // One pass over the instances fills the four gauges: the first of them, registered first, runs it at each scrape.
  const instances: Gauge<"model" | "breaker"> = new Gauge({
    name: "srp_instances",
    help: "Live instances, by model and breaker state (closed, parked, probe_due, probing)",
    labelNames: ["model", "breaker"],
    registers,
    collect: () => {
      const t = tallyInstances(sources.router, Date.now());
      for (const g of [instances, active, slots, waiting]) g.reset();
      for (const [model, states] of t.byBreaker) for (const [breaker, n] of states) instances.set({ model, breaker }, n);
      for (const [model, n] of t.active) active.set({ model }, n);
      for (const [model, n] of t.slots) slots.set({ model }, n);
      for (const model of t.byBreaker.keys()) waiting.set({ model }, sources.waiting.size(model));
    },
  });
  const active = new Gauge({
    name: "srp_instance_jobs",
    help: "Jobs running on live instances, by model",
    labelNames: ["model"],
    registers,
  });
  const slots = new Gauge({ name: "srp_instance_slots", help: "Slots of live instances, by model", labelNames: ["model"], registers });
  const waiting = new Gauge({
    name: "srp_queue_waiting",
    help: "Requests waiting for a free slot, by model",
    labelNames: ["model"],
    registers,
  });
}

/** Creates a hub's metrics on a registry of its own and wires them to the hub's events. */
export function createMetrics(sources: MetricsSources): HubMetrics {
  const registry = new Registry();
  const perRequest = requestMetrics(registry);
  const label = boundedModelLabels();
  sources.emitter.on("request", (e) => recordRequest(perRequest, e, label));
  countHubEvents(registry, sources.emitter, label);
  countMoneyAndWaits(registry, sources.emitter, label);
  hubGauges(registry, sources);
  return { registry, scrape: () => registry.metrics(), contentType: registry.contentType };
}

/** Whether a bearer token is the expected one (compared as digests, in the same time whatever the lengths). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The answer to `GET /metrics`: the metrics for the right bearer token, else 401 `api.unauthorized`. */
export async function metricsResponse(request: Request, metrics: HubMetrics, token: string): Promise<Response> {
  if (!tokenMatches(bearer(request), token)) return fail("api.unauthorized", "`/metrics` needs `Authorization: Bearer <metrics token>`");
  return new Response(await metrics.scrape(), { headers: { "content-type": metrics.contentType, "cache-control": "no-store" } });
}
