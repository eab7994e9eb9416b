/**
 * `@srp/hub/routing`: how the hub picks an instance for a job, for those who tune or
 * inspect routing. The pure policy (breaker, health window, throughput floor, ramp-up,
 * eligibility and the weighted pick), the `Router` that applies it to live sessions and
 * its health store, the per-account wait queue, model fallbacks and prefix affinity.
 * `createHub` takes a `RoutingConfig`, a `RoutingStore` and `WaitQueueOptions`; `hub.router`
 * and `hub.waiting` are the live instances.
 *
 * Every export of this entry is public API: a new export is a promise to keep it.
 *
 * @module @srp/hub/routing
 */
export {
  ROUTING_DEFAULTS,
  CLOSED_BREAKER,
  NO_THROUGHPUT,
  breakerStatus,
  breakerAfterOutcome,
  breakerProbeSent,
  breakerAfterProbe,
  recordHealth,
  healthScore,
  recordThroughput,
  belowFloor,
  rampFactor,
  eligible,
  pick,
  pickPool,
  chatNeeds,
  estimatePromptTokens,
  type RoutingConfig,
  type Outcome,
  type Breaker,
  type BreakerStatus,
  type HealthBucket,
  type Throughput,
  type CandidateView,
  type RouteNeeds,
  type NoRoute,
} from "./policy.js";
export {
  Router,
  instanceKey,
  type LiveInstance,
  type RouteSort,
  type RouteOrder,
  type BreakerChange,
  type RouterCluster,
  type RoutingRecord,
} from "./router.js";
export { MemoryRoutingStore, freshHealth, type RoutingStore, type InstanceHealth } from "./store.js";
export { summarizeOffers, type OfferSummary } from "./offers.js";
export { ModelTally, needsRecount, CATALOG_REFRESH_MS, type ModelSummary, type TallyMember, type PriceKey } from "./catalog.js";
export {
  WaitQueue,
  Waiter,
  queueWaitOf,
  WAIT_QUEUE_DEFAULTS,
  QUEUE_TIMEOUT_HEADER,
  type WaitQueueOptions,
  type WaitOutcome,
  type WaitOrder,
  type WaitRoom,
  type QueueWaitEvent,
  type QueueWaitOutcome,
} from "./wait-queue.js";
export { modelList, modelsToTry, fallsThrough, fallbackError, waitingModelIndex, MAX_FALLBACK_MODELS } from "./fallbacks.js";
export {
  AffinityTable,
  accountAffinityKey,
  chatAffinityKey,
  messagesAffinityKey,
  responsesAffinityKey,
  AFFINITY_MIN_PREFIX_BYTES,
  AFFINITY_TTL_MS,
  AFFINITY_MAX_ENTRIES,
  type AffinityOptions,
} from "./affinity.js";
