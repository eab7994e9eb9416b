/**
 * One consumer request through the relay: route it, send the job, and retry on another
 * instance while nothing has reached the consumer (SRP-JOB-019). Once output is committed
 * to the consumer the caller streams the rest from the same {@link JobRun}; failures after
 * that point are never retried (SRP-JOB-020).
 */
import { randomBytes, requestHash, SrpError, toBase64Url } from "@srp/core";
import type { Chunk, Done, Instance, Job, JobApi, JobError, Receipt } from "@srp/core/schema";
import type { OutputMeasurer, UsageBounds } from "@srp/core/metering";
import type { JobHandle } from "./session.js";
import type { Outcome, RouteNeeds } from "./routing/policy.js";
import type { LiveInstance, RouteSort, Router } from "./routing/router.js";
import { fallbackError, fallsThrough, waitingModelIndex } from "./routing/fallbacks.js";
import type { WaitQueue, WaitRoom, Waiter } from "./routing/wait-queue.js";

/** An event of a running job, in order. */
export type JobEvent =
  | { type: "chunk"; chunk: Chunk; at: number }
  | {
      type: "done";
      done: Done;
      receipt: Receipt | undefined;
      settled?: Promise<unknown>;
      rejected?: SrpError;
      /** An async job's result stream, checked against its manifest (SRP-JOB-043). */
      result?: Uint8Array;
    }
  | { type: "error"; error: JobError }
  | { type: "lost"; reason: string };

/** How the reason of a `lost` event starts when the job never started (see {@link JobRun.onNotStarted}). */
const NOT_STARTED = "not started: ";
/** Jobs of one request that another hub process could not start, before the request gives up (each is sent again at once, or waits for a slot). */
const MAX_NOT_STARTED = 16;

/** Bound on events queued for a consumer who is not reading (SRP-JOB-011). */
const MAX_QUEUED_EVENTS = 20_000;

/** Receives a job's events from its session and hands them out in order. */
export class JobRun implements JobHandle {
  /** What the job was admitted to use (SRP-ATT-015). */
  readonly bounds: UsageBounds | undefined;
  /** Measures the output as the consumer is relayed it, when the hub translates it (SRP-ATT-016). */
  readonly meter: OutputMeasurer | undefined;
  readonly #queue: JobEvent[] = [];
  #waiting: ((e: JobEvent) => void) | undefined;
  #ended = false;
  /** Called when more events are queued than the consumer reads. */
  onOverflow: (() => void) | undefined;
  /** Called once, with the job's end (done, error, lost) when it arrives: its slot is free again. */
  onEnd: ((e: JobEvent) => void) | undefined;
  /** Called when an async job's progress rises (SRP-JOB-041). */
  progress: ((progress: number, message?: string) => void) | undefined;

  /**
   * @param bounds What the job was admitted to use; its receipt's usage is checked against them.
   * @param meter Measures the output as translated for the consumer; absent: the job's own API.
   */
  constructor(bounds?: UsageBounds, meter?: OutputMeasurer) {
    this.bounds = bounds;
    this.meter = meter;
  }

  #push(e: JobEvent): void {
    if (this.#ended) return;
    if (e.type !== "chunk") {
      this.#ended = true;
      this.onEnd?.(e);
    }
    const w = this.#waiting;
    if (w) {
      this.#waiting = undefined;
      w(e);
      return;
    }
    this.#queue.push(e);
    if (this.#queue.length > MAX_QUEUED_EVENTS) this.onOverflow?.();
  }
  onChunk(chunk: Chunk): void {
    this.#push({ type: "chunk", chunk, at: Date.now() });
  }
  onDone(done: Done, receipt: Receipt | undefined, settled?: Promise<unknown>, rejected?: SrpError, result?: Uint8Array): void {
    this.#push({
      type: "done",
      done,
      receipt,
      ...(settled ? { settled } : {}),
      ...(rejected ? { rejected } : {}),
      ...(result ? { result } : {}),
    });
  }
  onProgress(progress: number, message?: string): void {
    if (!this.#ended) this.progress?.(progress, message);
  }
  onError(error: JobError): void {
    this.#push({ type: "error", error });
  }
  onLost(reason: string): void {
    this.#push({ type: "lost", reason });
  }
  /** The job never started: the process holding its node could not take it (it is sent again, or waits for a slot). */
  onNotStarted(reason: string): void {
    this.#push({ type: "lost", reason: `${NOT_STARTED}${reason}` });
  }
  /** Ends the run from the hub's side (deadline, consumer gone): queued output is dropped and the end is next. */
  abort(reason: string): void {
    if (this.#ended) return;
    this.#queue.length = 0;
    this.onLost(reason);
  }
  /** Events queued and not yet read. */
  get queued(): number {
    return this.#queue.length;
  }
  /** The next event. */
  next(): Promise<JobEvent> {
    const e = this.#queue.shift();
    if (e) return Promise.resolve(e);
    return new Promise((resolve) => (this.#waiting = resolve));
  }
}

/** A new job id: `job_` and 22 base64url characters. */
export function newJobId(): string {
  return `job_${toBase64Url(randomBytes(16))}`;
}

/** Whether a `done` came with a receipt refused as implausible (SRP-ATT-015): nothing is billed for it. */
export function implausible(e: JobEvent): boolean {
  return e.type === "done" && e.rejected?.code === "receipt.implausible_usage";
}

/**
 * How a job event counts for the instance's health (SRP-JOB-014: consumer-caused failures
 * are neutral). A `done` whose receipt was implausible is neutral here: the hub records
 * its failure when it refuses the receipt (SRP-ATT-017).
 */
export function outcomeOf(e: JobEvent): Outcome {
  if (e.type === "done") return implausible(e) ? "neutral" : "success";
  if (e.type === "lost") return e.reason === "shutdown" || e.reason === "consumer_gone" ? "neutral" : "failure";
  if (e.type === "chunk") return "neutral";
  const code = e.error.code;
  if (code === "job.invalid_request" || code === "job.context_length_exceeded" || code === "job.cancelled" || code === "job.busy")
    return "neutral";
  return "failure";
}

/** What the relay needs to run a request. */
export interface RelayRequest {
  /**
   * The job's API and body (routing members removed) for one instance: they may depend
   * on it (an Anthropic Messages request goes natively to an instance that takes
   * `messages` jobs, and as chat completions to every other).
   */
  prepare: (instance: Instance) => { api: JobApi; body: Record<string, unknown>; ext?: Record<string, unknown> };
  stream: boolean;
  needs: RouteNeeds;
  sort?: RouteSort;
  /** Retry on another instance before anything is committed; default true. */
  allowFallbacks?: boolean;
  /** Selectors (node ids, keys, tiers) to prefer in order; with `only`, no other instance is used. */
  order?: { selectors: readonly string[]; only: boolean };
  deadline: number;
  /** True when the consumer chose the deadline: missing it then says nothing about the instance's health. */
  consumerDeadline?: boolean;
  /** Fires when the consumer goes away. */
  signal: AbortSignal;
  /** Called with each job started (for bookkeeping such as the consumer of a receipt). */
  onJob?: (job: Job, live: LiveInstance) => void;
  /**
   * Watches each job about to be sent (every attempt): the members it adds to the job's `ext`
   * (the request id and trace context, SRP-JOB-037) and what it is told of the job's end.
   */
  observe?: (job: Job, live: LiveInstance) => JobWatch;
  /** Whether an event of a job commits output to the consumer (default: any chunk or done). */
  commits?: (e: JobEvent, job: Job) => boolean;
  /** Told of an async job's progress (SRP-JOB-041), each attempt's. */
  onProgress?: (job: Job, progress: number, message?: string) => void;
  /** What a job on an instance is admitted to use, for the plausibility of its receipt (SRP-ATT-015). */
  bounds?: (instance: Instance) => UsageBounds;
  /** The meter of a job whose output the hub translates for the consumer (SRP-ATT-016); absent or undefined: the job's own API. */
  meter?: (job: Job) => OutputMeasurer | undefined;
  /**
   * The models to try in order (SRP-CON-058..063): the next when none of the previous could
   * serve the request before output. Absent: `needs.model` only.
   */
  models?: readonly string[];
  /**
   * Until when (ms since the epoch) the request may wait for a slot while every instance is
   * busy (SRP-CON-064); at or before now: it does not wait, but does not pass requests that
   * do (SRP-CON-067). Absent: it takes no part in queueing (batch items).
   */
  queueUntil?: number;
  /** The request's prefix key (SRP-CON-070): routed to the instance that served it recently, and recorded for the one that serves it now. */
  affinityKey?: string;
  /** The paying account: its requests waiting for a slot of one model are bounded (SRP-CON-068). Absent: counted against no account. */
  accountId?: string;
  /**
   * Whether the request already waited for other processes' announcements ({@link RelayContext.catchUp}):
   * set by the caller that did, and by routing when it does, so a request waits at most once.
   */
  caughtUp?: boolean;
}

/** What {@link RelayRequest.observe} makes of one job. */
export interface JobWatch {
  /** Members added to the job's `ext`. */
  readonly ext?: Readonly<Record<string, unknown>>;
  /** The job ended: with its end event, or `undefined` when it was never sent. */
  ended(e: JobEvent | undefined): void;
}

/** A request whose output is committed to one job. */
export interface Committed {
  job: Job;
  live: LiveInstance;
  run: JobRun;
  /** Events received before and including the committing one, in order. */
  head: JobEvent[];
  /** Time of the first chunk (for throughput). */
  firstChunkAt: number | undefined;
}

/** Chunks without content held back before the response commits (they would otherwise pile up). */
const MAX_HELD_CHUNKS = 64;
const MAX_HELD_BYTES = 256 * 1024;

function approximateSize(data: Record<string, unknown>): number {
  const choices = data.choices;
  return 64 + (Array.isArray(choices) ? JSON.stringify(choices).length : 0);
}

/** Maximum attempts of one request (the first plus failovers). */
export const MAX_ATTEMPTS = 3;

/** The dependencies of {@link relay}. */
export interface RelayContext {
  router: Router;
  /**
   * Cancels a job on its session. `failed`: the cancel was counted as the instance's failure
   * (a missed deadline), so a late implausible `done` for the job is not counted again (SRP-ATT-017).
   */
  cancel(live: LiveInstance, jobId: string, reason: "consumer_gone" | "deadline" | "superseded", failed?: boolean): void;
  /** Where requests wait for a slot while every instance is busy (SRP-CON-064); absent: they are refused at once. */
  waiting?: WaitQueue | undefined;
  /** In a hub of several processes: waits (briefly) until one of `models` is served: a model may just have been offered on another process. */
  catchUp?: (models: readonly string[]) => Promise<void>;
}

/**
 * Runs a request until some job commits output, failing over on retryable failures, and
 * on to the request's next model when one cannot serve it (SRP-CON-060). Throws an
 * {@link SrpError} for the consumer when no job can.
 */
export async function relay(ctx: RelayContext, req: RelayRequest): Promise<Committed> {
  const models = req.models && req.models.length > 0 ? req.models : [req.needs.model];
  const errors: SrpError[] = [];
  // Only the last model the request may reach waits for a slot: a busy model before it falls through to the next at once, behind its own waiters.
  const waitAt = models.length === 1 ? 0 : waitingModelIndex(models, (model) => reachable(ctx, req, model));
  for (const [i, model] of models.entries()) {
    const waits = i === waitAt || req.queueUntil === undefined ? {} : { queueUntil: Date.now() };
    const one: RelayRequest = { ...req, ...waits, ...(model === req.needs.model ? {} : { needs: { ...req.needs, model } }) };
    try {
      return await relayModel(ctx, one);
    } catch (e) {
      // A model that waited for announcements: the next ones do not wait again.
      if (one.caughtUp) req.caughtUp = true;
      if (!(e instanceof SrpError) || !fallsThrough(e)) throw e;
      errors.push(e);
    }
  }
  throw fallbackError(errors) ?? new SrpError("job.no_capacity", `no instance of ${req.needs.model} could take the request`);
}

/** Whether a model can serve the request now or once a slot frees: an instance of it is online, matches its needs and preferences, and is not parked. */
function reachable(ctx: RelayContext, req: RelayRequest, model: string): boolean {
  const r = ctx.router.route({ ...req.needs, model }, req.sort ?? "load", Date.now(), req.order);
  return "key" in r || r.reason === "busy";
}

/** One model's part of {@link relay}: routing (waiting for a slot when every instance is busy) and failover. */
async function relayModel(ctx: RelayContext, req: RelayRequest): Promise<Committed> {
  const slot: Slot = {};
  try {
    return await attemptModel(ctx, req, slot);
  } finally {
    slot.waiter?.leave();
  }
}

/** A request's place in its model's queue: while it waits, and once it left it for a slot (until its job has started). */
interface Slot {
  waiter?: Waiter;
  served?: Waiter;
}

async function attemptModel(ctx: RelayContext, req: RelayRequest, slot: Slot): Promise<Committed> {
  const tried = new Set<string>();
  let lastError: SrpError | undefined;
  const attempts = req.allowFallbacks === false ? 1 : MAX_ATTEMPTS;
  let notStarted = 0;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (req.signal.aborted) throw new SrpError("job.cancelled", "the consumer went away");
    const now = Date.now();
    if (now >= req.deadline)
      throw lastError ?? new SrpError("job.deadline_exceeded", "the request passed its deadline before any instance answered");
    const prefer = req.affinityKey === undefined ? undefined : ctx.router.affinity.lookup(req.affinityKey, now);
    const live = await routeOrWait(ctx, req, slot, lastError, () =>
      ctx.router.route({ ...req.needs, exclude: tried }, req.sort ?? "load", Date.now(), req.order, prefer),
    );
    tried.add(live.key);
    const { api, body, ext } = req.prepare(live.instance);
    const job: Job = {
      type: "job",
      jobId: newJobId(),
      instanceId: live.instance.instanceId,
      model: live.instance.model,
      api,
      stream: req.stream,
      request: { ...body, model: live.instance.model, ...(api === "chat.completions" || api === "messages" ? { stream: req.stream } : {}) },
      deadline: req.deadline,
      quote: live.instance.price,
      ...(ext ? { ext } : {}),
    };
    const watch = req.observe?.(job, live);
    if (watch?.ext) job.ext = { ...job.ext, ...watch.ext };
    let hash: string;
    try {
      hash = requestHash(job.request); // bound by the receipt (SRP-ATT-004); computed once, here
    } catch (error) {
      watch?.ended(undefined);
      throw new SrpError(
        "api.invalid_body",
        `the body has no canonical JSON form (${(error as Error).message}); send I-JSON without lone surrogates`,
      );
    }
    const run = new JobRun(req.bounds?.(live.instance), req.meter?.(job));
    const onProgress = req.onProgress;
    if (onProgress) run.progress = (p, m) => onProgress(job, p, m);
    // The slot frees when the job ends: the first waiter of its model retries (after the session's bookkeeping).
    const queue = ctx.waiting;
    if (queue) run.onEnd = () => setImmediate(() => queue.notify(live.instance.model));
    if (watch) run.onEnd = endWatched(watch, run.onEnd);
    const sentAt = Date.now();
    // A session that cannot take the job (closing): the request tries again, keeping its place in the queue.
    // A job over the session's frame limit throws api.body_too_large and is never sent (SRP-FRM-008).
    if (!startJob(live, job, hash, run, watch)) continue;
    leaveQueue(ctx, slot, req.needs.model);
    req.onJob?.(job, live);
    const result = await untilCommitted(ctx, req, job, live, run, sentAt);
    if ("committed" in result) {
      // The instance that serves the prefix now keeps it (prefix affinity, SRP-CON-070).
      if (req.affinityKey !== undefined) ctx.router.affinity.record(req.affinityKey, live.key, Date.now());
      return result.committed;
    }
    if ("notStarted" in result && notStarted++ < MAX_NOT_STARTED) {
      // Like a session that could not take the job: the instance was not tried, and the attempt does not count.
      tried.delete(live.key);
      attempt--;
      await requeue(ctx, req, slot);
      continue;
    }
    lastError = result.error;
    if (!result.retry) throw result.error;
  }
  throw lastError ?? new SrpError("job.no_capacity", `no instance of ${req.needs.model} could take the request`);
}

/** A run's end hook that tells the job's watch first. */
function endWatched(watch: JobWatch, then: JobRun["onEnd"]): (e: JobEvent) => void {
  return (e) => {
    watch.ended(e);
    then?.(e);
  };
}

/** Sends a job on its session; a job that was not sent (the session is closing, or the job is over its frame limit) ends its watch. */
function startJob(live: LiveInstance, job: Job, hash: string, run: JobRun, watch: JobWatch | undefined): boolean {
  let started = false;
  try {
    started = live.session.startJob(job, hash, run);
    return started;
  } finally {
    if (!started) watch?.ended(undefined);
  }
}

type Routed = ReturnType<Router["route"]>;

/**
 * Routes a request; while every instance is busy, waits in its model's queue
 * (SRP-CON-064..067) until a slot frees, its wait runs out, or the consumer leaves. A
 * request that finds others waiting for its model queues behind them (first in, first out).
 */
async function routeOrWait(
  ctx: RelayContext,
  req: RelayRequest,
  slot: Slot,
  lastError: SrpError | undefined,
  route: () => Routed,
): Promise<LiveInstance> {
  const queue = ctx.waiting;
  const model = req.needs.model;
  let woken = false;
  for (;;) {
    // A request that takes part in queueing (`queueUntil` set, even to now) never jumps the requests already waiting.
    const queued =
      queue !== undefined && req.queueUntil !== undefined && slot.waiter === undefined && lastError === undefined && queue.size(model) > 0;
    const r: Routed = queued ? { reason: "busy" } : route();
    // Routed: a waiter leaves the queue once its job has started (leaveQueue), so it keeps its place if the job cannot start.
    if ("key" in r) return r;
    if (lastError) throw lastError;
    if (r.reason === "unknown_model" && ctx.catchUp && !req.caughtUp) {
      req.caughtUp = true;
      await ctx.catchUp([model]);
      continue;
    }
    const until = Math.min(req.queueUntil ?? 0, req.deadline);
    if (r.reason !== "busy" || !queue || Date.now() >= until) {
      if (r.reason === "busy" && slot.waiter) throw waitedError(model);
      throw noRouteError(r, model);
    }
    if (slot.waiter) {
      // Woken, but no slot for this request: it keeps its place; the one behind may fit where it does not.
      if (woken) slot.waiter.pass();
    } else {
      const w = queue.join(model, req.accountId);
      if (!w && queue.closed) throw new SrpError("session.shutdown", "the hub is shutting down");
      if (!w) throw queueFullError(queue, model, queue.room(model, req.accountId));
      slot.waiter = w;
      // In a hub of several processes the bounds hold hub-wide too (SRP-CON-068): a waiter refused there leaves.
      const room = await queue.enter(w, until);
      if (room !== "ok") throw queueFullError(queue, model, room);
      // Joined behind others while a slot is free (its wake-up not yet handled): the first waiter retries.
      if (queued && "key" in route()) queue.notify(model);
    }
    const outcome = await slot.waiter.wait(until, req.signal);
    if (outcome === "aborted") throw new SrpError("job.cancelled", "the consumer went away while waiting for a slot");
    if (outcome === "closed") throw new SrpError("session.shutdown", "the hub is shutting down");
    if (outcome === "timeout") throw waitedError(model);
    woken = true;
    // First in, first out across the hub's processes: waiters of other processes ahead of this one have their turn first.
    await queue.turn(slot.waiter, until, req.signal);
    if (req.signal.aborted) throw new SrpError("job.cancelled", "the consumer went away while waiting for a slot");
  }
}

/** The refusal of a request that finds its model's queue full, or its account's share of it taken (SRP-CON-068). */
function queueFullError(queue: WaitQueue, model: string, room: WaitRoom): SrpError {
  const why =
    room === "account"
      ? `${queue.options.maxWaitersPerAccount} requests of this account already wait for it`
      : `${queue.options.maxWaiters} requests already wait for it`;
  return new SrpError("job.no_capacity", `every instance of ${model} is busy and ${why}`, { details: { retryAfterMs: 1000 } });
}

/** A request whose job started leaves its model's queue, if it waited. */
function leaveQueue(ctx: RelayContext, slot: Slot, model: string): void {
  delete slot.served;
  if (!slot.waiter) return;
  slot.waiter.leave("served");
  slot.served = slot.waiter;
  delete slot.waiter;
  // Another slot may be free too (an instance came online with several): the next waiter tries, once this job holds its slot.
  const queue = ctx.waiting;
  if (queue) setImmediate(() => queue.notify(model));
}

/**
 * A waiter whose job came back not started (another process found its slot taken) goes back
 * to its place in the queue, hub-wide too, rather than behind those who came after it.
 */
async function requeue(ctx: RelayContext, req: RelayRequest, slot: Slot): Promise<void> {
  const w = slot.served;
  delete slot.served;
  const queue = ctx.waiting;
  if (!w || !queue || slot.waiter || !queue.rejoin(w)) return;
  slot.waiter = w;
  await queue.enter(w, Math.min(req.queueUntil ?? 0, req.deadline), true);
}

/** The refusal of a request whose wait for a slot ran out (SRP-CON-066). */
function waitedError(model: string): SrpError {
  return new SrpError("job.no_capacity", `every instance of ${model} stayed busy for as long as the request could wait`, {
    details: { retryAfterMs: 1000 },
  });
}

function noRouteError(r: Exclude<ReturnType<Router["route"]>, LiveInstance>, model: string): SrpError {
  switch (r.reason) {
    case "unknown_model":
      return new SrpError("job.unknown_model", `model ${model} is not served by any online provider`);
    case "no_match":
      return new SrpError("job.unknown_model", r.detail);
    case "parked":
      return new SrpError(
        "job.no_capacity",
        `every instance of ${model} is parked after repeated failures; retry in ${Math.ceil(r.retryAfterMs / 1000)} s`,
        {
          details: { retryAfterMs: r.retryAfterMs },
        },
      );
    case "busy":
      return new SrpError("job.no_capacity", `every instance of ${model} is busy`, { details: { retryAfterMs: 1000 } });
  }
}

const defaultCommits = (e: JobEvent) => e.type === "done" || e.type === "chunk";

async function untilCommitted(
  ctx: RelayContext,
  req: RelayRequest,
  job: Job,
  live: LiveInstance,
  run: JobRun,
  sentAt: number,
): Promise<{ committed: Committed } | { error: SrpError; retry: boolean; notStarted?: true }> {
  const head: JobEvent[] = [];
  let first = true;
  let firstChunkAt: number | undefined;
  let heldBytes = 0;
  const commits = req.commits ?? defaultCommits;
  const deadlineTimer = setTimeout(() => run.abort("deadline"), Math.max(0, req.deadline - Date.now()));
  const onAbort = () => run.abort("consumer_gone");
  req.signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const e = await run.next();
      if (first && (e.type === "chunk" || e.type === "done")) {
        // Time to first output, for `sort: latency`.
        first = false;
        ctx.router.latency(live.key, (e.type === "chunk" ? e.at : Date.now()) - sentAt);
      }
      if (e.type === "chunk") {
        firstChunkAt ??= e.at;
        head.push(e);
        heldBytes += approximateSize(e.chunk.data);
        // Chunks held back before content are bounded: past the bound they commit the response.
        if (commits(e, job) || head.length >= MAX_HELD_CHUNKS || heldBytes >= MAX_HELD_BYTES)
          return { committed: { job, live, run, head, firstChunkAt } };
        continue;
      }
      if (e.type === "done") {
        ctx.router.outcome(live.key, live.instance.model, outcomeOf(e));
        // Nothing reached the consumer yet: an answer whose bill was refused is failed over (SRP-ATT-017).
        if (implausible(e))
          return {
            error: new SrpError("job.upstream_error", "the provider's receipt claimed usage the job could not have used; not billed"),
            retry: true,
          };
        head.push(e);
        return { committed: { job, live, run, head, firstChunkAt } };
      }
      if (e.type === "lost" && e.reason.startsWith(NOT_STARTED)) {
        return {
          error: new SrpError("job.no_capacity", `the job could not start: ${e.reason.slice(NOT_STARTED.length)}`),
          retry: true,
          notStarted: true,
        };
      }
      if (e.type === "lost" && (e.reason === "consumer_gone" || e.reason === "deadline")) {
        const failed = e.reason === "deadline" && !req.consumerDeadline;
        ctx.cancel(live, job.jobId, e.reason, failed);
        if (e.reason === "consumer_gone") {
          ctx.router.outcome(live.key, live.instance.model, "neutral");
          return { error: new SrpError("job.cancelled", "the consumer went away"), retry: false };
        }
        ctx.router.outcome(live.key, live.instance.model, failed ? "failure" : "neutral");
        return { error: new SrpError("job.deadline_exceeded", "no answer before the deadline"), retry: false };
      }
      if (e.type === "lost" && e.reason === "shutdown") {
        ctx.router.outcome(live.key, live.instance.model, "neutral");
        return { error: new SrpError("session.shutdown", "the hub is shutting down"), retry: false };
      }
      ctx.router.outcome(live.key, live.instance.model, outcomeOf(e));
      if (e.type === "lost") return { error: new SrpError("job.upstream_error", `the provider went away: ${e.reason}`), retry: true };
      const code = e.error.code as ConstructorParameters<typeof SrpError>[0];
      const known = (() => {
        try {
          return new SrpError(code, e.error.message, {
            details: e.error.upstreamStatus === undefined ? {} : { upstreamStatus: e.error.upstreamStatus },
          });
        } catch {
          return new SrpError("job.upstream_error", e.error.message);
        }
      })();
      return { error: known, retry: e.error.retryable };
    }
  } finally {
    clearTimeout(deadlineTimer);
    req.signal.removeEventListener("abort", onAbort);
  }
}

/** The events after the commit point, with the deadline and the consumer's abort applied. */
export async function* follow(
  ctx: RelayContext,
  req: Pick<RelayRequest, "deadline" | "signal" | "consumerDeadline">,
  c: Committed,
): AsyncGenerator<JobEvent> {
  const { run, live, job } = c;
  let ended = c.head.some((e) => e.type !== "chunk");
  // The hub gives up on the job (deadline, consumer gone or not reading): the node is told at once.
  const stop = (reason: "deadline" | "consumer_gone") => {
    if (ended) return;
    ended = true;
    const failed = reason === "deadline" && !req.consumerDeadline;
    ctx.cancel(live, job.jobId, reason, failed);
    ctx.router.outcome(live.key, live.instance.model, failed ? "failure" : "neutral");
    run.abort(reason);
  };
  const deadlineTimer = setTimeout(() => stop("deadline"), Math.max(0, req.deadline - Date.now()));
  const onAbort = () => stop("consumer_gone");
  req.signal.addEventListener("abort", onAbort, { once: true });
  if (req.signal.aborted) stop("consumer_gone");
  run.onOverflow = () => stop("consumer_gone");
  let firstAt = c.firstChunkAt;
  let lastAt = firstAt;
  let chunks = c.head.filter((e) => e.type === "chunk").length;
  let finished = ended;
  try {
    for (const e of c.head) yield e;
    while (!finished) {
      const e = await run.next();
      if (e.type === "chunk") {
        firstAt ??= e.at;
        lastAt = e.at;
        chunks++;
        yield e;
        continue;
      }
      finished = true;
      if (!ended) {
        ended = true;
        ctx.router.outcome(live.key, live.instance.model, outcomeOf(e));
        if (e.type === "done" && firstAt !== undefined && lastAt !== undefined) {
          // The countersigned count only: a refused receipt's claim says nothing about speed.
          const tokens = e.receipt?.usage.measured ? e.receipt.usage.completionTokens : chunks;
          ctx.router.throughput(live.key, tokens, lastAt - firstAt);
        }
      }
      yield e;
    }
  } finally {
    clearTimeout(deadlineTimer);
    req.signal.removeEventListener("abort", onAbort);
    // The consumer stopped reading (the response stream was cancelled) before the job ended.
    stop("consumer_gone");
  }
}
