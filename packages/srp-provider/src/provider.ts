/**
 * A provider node: it offers instances (a model on a backend, with a price and limits)
 * to a hub over an outbound WebSocket, runs the hub's jobs on its backends, relays their
 * output in order, measures usage from the backend, and ends every job with a signed
 * receipt or a coded error.
 */
import { EventEmitter } from "node:events";
import type { Span } from "@opentelemetry/api";
import {
  canonicalize,
  createReceipt,
  encode,
  formatAmount,
  requestHash,
  responseHash,
  StreamHasher,
  verifyDetached,
  verifyStatement,
  compareReceiptPositions,
  totalsEqual,
  INITIAL_POSITION,
  omitFields,
  ERROR_TABLE,
  jobRequestId,
  asyncJobsOf,
  isAsyncApi,
  isAsyncInstance,
  type Identity,
} from "@srp/core";
import type {
  Dispute,
  Statement,
  AccountBinding,
  BackendKind,
  Capability,
  Cancel,
  Instance,
  InstanceIo,
  InstanceLoad,
  Job,
  Price,
  Probe,
  Receipt,
  SrpMessage,
  SupplyTier,
  Usage,
  Welcome,
} from "@srp/core/schema";
import { measureResponse, StreamMeter } from "@srp/core/metering";
import { connectToHub, type HubConnection, type ReconnectPolicy } from "./connection.js";
import { BackendError, type Backend, type ChatResult } from "./backends/types.js";
import { MemoryReceiptStore, type ReceiptStore } from "./receipt-store.js";
import { endJobSpan, startJobSpan } from "./tracing.js";
import { AsyncJobs } from "./async-jobs.js";

/** One model a node offers, on one backend. */
export interface InstanceConfig {
  /** The backend that runs it. */
  backend: Backend;
  /** Model id offered to the hub (what consumers ask for). */
  model: string;
  /** Model id as the backend names it; default `model`. */
  upstreamModel?: string;
  /** Instance id; default derived from the model and its position. */
  instanceId?: string;
  /**
   * Price per 1M units, in USDC atomic units (decimal strings or bigints): tokens for
   * `input`, `output`, `cachedInput` and `cacheWrite`; images, characters and seconds (of audio,
   * of video, of run time) for `image`, `character` and `second`; runs of an async job for `run`
   * (absent: free).
   */
  price: { [K in keyof Price]: Price[K] | bigint };
  /** Jobs at once; default 4. */
  maxConcurrency?: number;
  /** Declared speed; default 30 tokens/s. */
  tokensPerSecond?: number;
  /** Context window; default 8192. */
  contextLength?: number;
  /** Output cap, when the model has one. */
  maxOutputTokens?: number;
  /** Capabilities; default `["chat", "stream"]`. */
  capabilities?: Capability[];
  /** Supply tier; default `gpu` for local servers and `key` for forwarded keys. */
  tier?: SupplyTier;
  /** Model digest, where the backend reports one. */
  digest?: string;
  /** Normalized quantization of the weights (`Q4_K_M`, `F16`, `FP8`...), offered to the hub. */
  quantization?: string;
  /**
   * The declared input and output of an async instance (SRP-OFF-019): required for a `runs`
   * backend (take it from `backend.io()`), optional for `videos`. An async instance (a
   * backend with `asyncApi`) is offered only to a hub that announced async jobs (SRP-JOB-039).
   */
  io?: InstanceIo;
}

/** Options of {@link createProvider}. */
export interface ProviderOptions {
  /** The hub's base URL (`http(s)://`, discovered) or provider WebSocket URL (`ws(s)://`). */
  hub: string;
  /** The node identity (Ed25519). */
  identity: Identity;
  /** The hub account the node binds to: an API key, or a full binding (wallet). */
  account: string | AccountBinding;
  /** What the node serves. */
  instances: InstanceConfig[];
  /** Durable receipt positions; default in memory (use `FileReceiptStore` for real nodes). */
  receipts?: ReceiptStore;
  /** Refuse any hub whose id differs. */
  expectedHubId?: string;
  /** Reconnection policy, or `false` to connect once. Default: forever, 0.5 s to 60 s with jitter. */
  reconnect?: ReconnectPolicy | false;
  /** WebSocket send-buffer size above which the node stops reading from its backend; default 1 MiB. */
  highWaterMark?: number;
  /** Software name reported to the hub. */
  agent?: string;
}

/** How one job ended, as the provider reports it. */
export interface JobOutcome {
  jobId: string;
  instanceId: string;
  model: string;
  ok: boolean;
  code?: string;
  chunks: number;
  usage?: Usage;
  cost?: string;
  ms: number;
  /** The consumer request the job served, when the hub named it (`srp.request_id`, SRP-JOB-037). */
  requestId?: string;
}

/** Events of a {@link Provider}. */
export interface ProviderEvents {
  welcome: [welcome: Welcome];
  "offer.result": [result: { instanceId: string; accepted: boolean; reason?: { code: string; message: string } }];
  "job.start": [job: { jobId: string; instanceId: string; model: string; stream: boolean; requestId?: string }];
  "job.end": [outcome: JobOutcome];
  receipt: [receipt: Receipt];
  disconnected: [detail: { code: number; reason: string; retryInMs?: number }];
  stopped: [detail: { error?: Error }];
  /** Something the operator should look at (a hub that lost receipts, a bad countersignature, a disputed statement). */
  warning: [detail: { code: string; message: string }];
  /** The hub sent a settlement statement; `agreed` is false when the node disputed it. */
  statement: [detail: { statement: Statement; agreed: boolean; problem?: string }];
}

/** What {@link Provider.stats} reports. */
export interface ProviderStats {
  /** Jobs running now. */
  active: number;
  /** Jobs served and failed since start. */
  served: number;
  failed: number;
  instances: { instanceId: string; model: string; accepted: boolean; active: number }[];
  /** Earnings as this node's own receipts and the hub's last statement show them. */
  earnings: {
    /** Receipts this node issued to the current hub, and their total cost (atomic units): the provider earns 90 % of each. */
    receipts: number;
    cost: string;
    /** The hub's last statement: earned in its period, paid out, balance owed (atomic units), and whether the node agreed. */
    statement?: {
      statementId: string;
      period: { from: number; to: number };
      earned: string;
      paid: string;
      balance: string;
      agreed: boolean;
    };
  };
}

interface Running {
  job: Job;
  instance: ResolvedInstance;
  controller: AbortController;
  chunks: number;
  cancelled: boolean;
  /** For a stream: the hash of the chunks sent so far, and the usage the backend last reported (with continuous usage, as of the last chunk). */
  hasher: StreamHasher | undefined;
  usage: Usage | undefined;
  requestHash: string | undefined;
  ended: boolean;
  /** Its `done` waits for the receipt position to be durable. */
  finishing?: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  startedAt: number;
  /** Its `srp.node.job` span, while traced (`tracing.ts`). */
  span: Span | undefined;
  /** The consumer request it serves, when the hub named it. */
  requestId: string | undefined;
}

interface ResolvedInstance {
  offer: Instance;
  backend: Backend;
  upstreamModel: string;
  active: number;
  accepted: boolean;
}

/** How many ended job ids a session remembers (SRP-JOB-024). */
const ENDED_JOBS_KEPT = 10_000;

const KEY_BACKENDS: ReadonlySet<BackendKind> = new Set(["openai", "anthropic", "gemini"]);

function toPrice(p: InstanceConfig["price"]): Price {
  const a = (v: string | bigint) => (typeof v === "bigint" ? formatAmount(v) : v);
  const out: Price = { input: a(p.input), output: a(p.output) };
  for (const k of ["cachedInput", "cacheWrite", "image", "character", "second", "run"] as const) {
    const v = p[k];
    if (v !== undefined) out[k] = a(v);
  }
  return out;
}

function defaultInstanceId(model: string, index: number): string {
  return `${model.replace(/[^A-Za-z0-9._:-]/g, "-").slice(0, 100)}.${index}`;
}

/** The text APIs an instance takes natively when its backend serves them and the instance chats (SRP-OFF-015, SRP-OFF-016). */
const NATIVE_TEXT_APIS = ["responses", "completions"] as const;

function withNative(capabilities: Capability[], backend: Backend): Capability[] {
  let out =
    backend.apis?.includes("messages") && !capabilities.includes("messages") ? [...capabilities, "messages" as const] : capabilities;
  // Offered exactly when the backend serves them: added for a chat instance, dropped where the backend cannot.
  for (const api of NATIVE_TEXT_APIS) {
    const serves = backend.run !== undefined && backend.apis?.includes(api) === true && out.includes("chat");
    if (serves && !out.includes(api)) out = [...out, api];
    else if (!serves && out.includes(api)) out = out.filter((c) => c !== api);
  }
  return out;
}

/** Whether an instance takes jobs of this API: chat always; `messages` and the modalities when its backend serves them; `responses` and `completions` when it offers them too. */
function servesApi(instance: ResolvedInstance, api: Job["api"]): boolean {
  if (api === "chat.completions") return true;
  if (!instance.backend.run || !instance.backend.apis?.includes(api)) return false;
  return api !== "responses" && api !== "completions" ? true : instance.offer.capabilities.includes(api);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A running provider node. */
/**
 * Whether the countersigned receipt (without `hubSig`) is the one the node sent, as
 * canonical JSON (SRP-ATT-021 check 3): a hub may send its members in any order. The
 * common case, the same order, is one comparison of two serializations.
 */
function sameReceipt(received: object, sent: object): boolean {
  if (JSON.stringify(received) === JSON.stringify(sent)) return true;
  try {
    return canonicalize(received) === canonicalize(sent);
  } catch {
    return false;
  }
}

export class Provider extends EventEmitter<ProviderEvents> {
  /** The node id. */
  readonly nodeId: string;
  /** The underlying hub connection. */
  readonly connection: HubConnection;
  readonly #instances = new Map<string, ResolvedInstance>();
  readonly #running = new Map<string, Running>();
  /** Ids of the jobs ended on the current session, oldest first (at most ENDED_JOBS_KEPT), so a repeated job is not run again (SRP-JOB-024). */
  readonly #endedJobs = new Set<string>();
  readonly #awaitingCountersign = new Map<string, Receipt>();
  readonly #opts: ProviderOptions;
  readonly #receipts: ReceiptStore;
  #served = 0;
  /** Async jobs across sessions (`async-jobs.ts`), and the resume window of the current session (SRP-JOB-045). */
  readonly #async: AsyncJobs = new AsyncJobs({
    sendEncoded: (frame) => this.connection.sendEncoded(frame),
    announcement: () => (this.connection.state === "open" && this.connection.welcome ? asyncJobsOf(this.connection.welcome) : undefined),
    drain: () => this.#drain(),
    signReceipt: (job, usage, reqHash, respHash, startedAt, then) => this.#signReceipt(job, usage, reqHash, respHash, startedAt, then),
    occupy: (job) => this.#occupy(job),
    release: (job, outcome) => this.#release(job, outcome),
  });
  #asyncWindowMs = 0;
  #lastStatement: { statement: Statement; agreed: boolean } | undefined;
  #failed = 0;

  /** @internal Use {@link createProvider}. */
  constructor(options: ProviderOptions) {
    super();
    this.#opts = options;
    this.nodeId = options.identity.id;
    this.#receipts = options.receipts ?? new MemoryReceiptStore();
    options.instances.forEach((c, i) => {
      const offer: Instance = {
        instanceId: c.instanceId ?? defaultInstanceId(c.model, i),
        model: c.model,
        tier: c.tier ?? (KEY_BACKENDS.has(c.backend.kind) ? "key" : "gpu"),
        backend: c.digest === undefined ? { kind: c.backend.kind } : { kind: c.backend.kind, digest: c.digest },
        price: toPrice(c.price),
        maxConcurrency: c.maxConcurrency ?? 4,
        tokensPerSecond: c.tokensPerSecond ?? 30,
        contextLength: c.contextLength ?? 8192,
        // A backend that serves the Anthropic Messages API itself takes `messages` jobs natively;
        // an async backend's instance has its one capability and nothing else (SRP-OFF-019).
        capabilities: c.backend.asyncApi
          ? [c.backend.asyncApi === "videos" ? "video" : "run"]
          : withNative(c.capabilities ?? ["chat", "stream"], c.backend),
        ...(c.maxOutputTokens === undefined ? {} : { maxOutputTokens: c.maxOutputTokens }),
        ...(c.quantization === undefined ? {} : { quantization: c.quantization }),
        ...(c.io === undefined || !c.backend.asyncApi ? {} : { io: c.io }),
      };
      if (c.backend.asyncApi === "runs" && c.io === undefined)
        throw new TypeError(`instance ${offer.instanceId} runs a model but declares no io`);
      if (this.#instances.has(offer.instanceId)) throw new TypeError(`instance id ${offer.instanceId} is configured twice`);
      this.#instances.set(offer.instanceId, {
        offer,
        backend: c.backend,
        upstreamModel: c.upstreamModel ?? c.model,
        active: 0,
        accepted: false,
      });
    });
    const account: AccountBinding = typeof options.account === "string" ? { kind: "api_key", key: options.account } : options.account;
    this.connection = connectToHub({
      hub: options.hub,
      identity: options.identity,
      account,
      agent: options.agent ?? "@srp/provider",
      load: () => this.load(),
      ...(options.expectedHubId === undefined ? {} : { expectedHubId: options.expectedHubId }),
      ...(options.reconnect === undefined ? {} : { reconnect: options.reconnect }),
    });
    this.connection.on("welcome", (w) => this.#onWelcome(w));
    this.connection.on("message", (m) => this.#onMessage(m));
    this.connection.on("disconnected", (d) => {
      // SRP-JOB-045: async jobs outlive the session for the resume window it announced.
      this.#async.sessionEnded(this.#asyncWindowMs);
      this.#abortAll("session lost");
      for (const inst of this.#instances.values()) inst.accepted = false;
      this.emit("disconnected", d);
    });
    this.connection.on("stopped", (d) => {
      this.#async.abortAll();
      this.#abortAll("stopped");
      this.emit("stopped", d);
    });
  }

  /** Resolves when the session is open and the hub has answered the offer. */
  async ready(): Promise<Welcome> {
    const welcome = await this.connection.ready();
    if (![...this.#instances.values()].some((i) => i.accepted)) {
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          this.off("stopped", fail);
          resolve();
        };
        const fail = () => reject(new Error("provider stopped before its offer was answered"));
        this.once("offer.result", () => setImmediate(done));
        this.once("stopped", fail);
      });
    }
    return welcome;
  }

  /** Current load per instance (what heartbeats carry). */
  load(): InstanceLoad[] {
    return [...this.#instances.values()]
      .filter((i) => i.accepted)
      .map((i) => ({ instanceId: i.offer.instanceId, active: i.active, capacity: i.offer.maxConcurrency }));
  }

  /** Counters for status displays. */
  stats(): ProviderStats {
    const hubId = this.connection.hubId;
    const position = hubId === undefined ? undefined : this.#receipts.position(hubId);
    const last = hubId === undefined ? undefined : (this.#lastStatement ?? this.#receipts.statements?.(hubId).at(-1));
    return {
      active: this.#running.size + this.#async.active,
      served: this.#served,
      failed: this.#failed,
      instances: [...this.#instances.values()].map((i) => ({
        instanceId: i.offer.instanceId,
        model: i.offer.model,
        accepted: i.accepted,
        active: i.active,
      })),
      earnings: {
        receipts: position?.totals.receipts ?? 0,
        cost: position?.totals.cost ?? "0",
        ...(last
          ? {
              statement: {
                statementId: last.statement.statementId,
                period: last.statement.period,
                earned: last.statement.earned,
                paid: last.statement.paid,
                balance: last.statement.balance,
                agreed: last.agreed,
              },
            }
          : {}),
      },
    };
  }

  /** Aborts running jobs, says goodbye and stops. */
  async close(): Promise<void> {
    this.#async.abortAll();
    this.#abortAll("closing");
    await this.connection.close();
  }

  #send(message: SrpMessage): boolean {
    return this.connection.send(message);
  }

  #onWelcome(welcome: Welcome): void {
    this.#endedJobs.clear(); // job ids are remembered per session
    this.#asyncWindowMs = asyncJobsOf(welcome)?.resumeWindowMs ?? 0;
    this.emit("welcome", welcome);
    const hubId = this.connection.hubId;
    if (hubId !== undefined) {
      // SRP-SET-002: compare the hub's recorded position with ours; dispute any difference
      // loudly. Our own numbering goes on regardless (SRP-SET-003).
      const mine = this.#receipts.position(hubId);
      // SRP-JOB-047: the receipt of a kept async job's done the hub has not seen yet is not missing.
      const kept = this.#async.keptReceiptSeqs().filter((seq) => seq > welcome.receipts.lastSeq);
      const problem = kept.length > 0 ? undefined : compareReceiptPositions(welcome.receipts, mine);
      if (problem) {
        const kind = welcome.receipts.lastSeq < mine.lastSeq ? "missing_receipt" : "totals_mismatch";
        this.emit("warning", {
          code: kind === "missing_receipt" ? "receipt.sequence_gap" : "statement.totals_mismatch",
          message: `at welcome: ${problem}`,
        });
        this.#send({ type: "dispute", kind, hub: welcome.receipts, node: mine, message: problem.slice(0, 2000) });
      }
    }
    // SRP-JOB-039: async instances only to a hub that announced async jobs.
    const announced = asyncJobsOf(welcome) !== undefined;
    const offered = [...this.#instances.values()].filter((i) => announced || !isAsyncInstance(i.offer)).map((i) => i.offer);
    if (offered.length > 0) this.#send({ type: "offer", instances: offered });
    else
      this.emit("warning", {
        code: "offer.invalid",
        message: "nothing to offer: this hub announced no async jobs and every instance is async",
      });
  }

  #onMessage(m: SrpMessage): void {
    switch (m.type) {
      case "offer_ack":
        for (const r of m.results) {
          const inst = this.#instances.get(r.instanceId);
          if (inst) inst.accepted = r.accepted;
          this.emit("offer.result", r);
        }
        return;
      case "job":
        return this.#onJob(m);
      case "cancel":
        return this.#onCancel(m);
      case "resume":
        return this.#async.resume(m);
      case "probe":
        void this.#onProbe(m);
        return;
      case "receipt":
        return this.#onReceipt(m.receipt);
      case "statement":
        return this.#onStatement(m.statement);
      default:
        return;
    }
  }

  #jobError(job: Job, code: keyof typeof ERROR_TABLE, message: string, chunks: number, upstreamStatus?: number): void {
    this.#send({
      type: "job_error",
      jobId: job.jobId,
      code,
      message: message.slice(0, 2000),
      retryable: ERROR_TABLE[code].retryable,
      chunks,
      ...(upstreamStatus === undefined ? {} : { upstreamStatus }),
    });
  }

  #onJob(job: Job): void {
    // SRP-JOB-024: a hub never reuses job ids; a repeat of a running or ended job is ignored.
    if (this.#running.has(job.jobId) || this.#endedJobs.has(job.jobId)) return;
    // SRP-JOB-023: unknown instance, unknown model, unsupported API, busy, in that order.
    const instance = this.#instances.get(job.instanceId);
    if (!instance || !instance.accepted)
      return this.#refuse(job, "job.unknown_instance", `instance ${job.instanceId} is not offered on this session`);
    if (job.model !== instance.offer.model)
      return this.#refuse(job, "job.unknown_model", `instance ${job.instanceId} serves ${instance.offer.model}`);
    if (isAsyncApi(job.api) || instance.backend.asyncApi) {
      if (job.api !== instance.backend.asyncApi)
        return this.#refuse(job, "job.unsupported_api", `instance ${job.instanceId} does not serve ${job.api}`);
      if (instance.active >= instance.offer.maxConcurrency) return this.#refuse(job, "job.busy", "instance is at its concurrency limit");
      this.#rememberEnded(job.jobId); // never run twice on this session (SRP-JOB-024); the runner keeps it
      return this.#async.start(job, instance.backend, instance.upstreamModel);
    }
    if (!servesApi(instance, job.api)) {
      return this.#refuse(job, "job.unsupported_api", `instance ${job.instanceId} does not serve ${job.api}`);
    }
    if (instance.active >= instance.offer.maxConcurrency) return this.#refuse(job, "job.busy", "instance is at its concurrency limit");
    const run: Running = {
      job,
      instance,
      controller: new AbortController(),
      chunks: 0,
      cancelled: false,
      ended: false,
      timer: undefined,
      startedAt: Date.now(),
      hasher: undefined,
      usage: undefined,
      requestHash: undefined,
      span: startJobSpan(job, this.nodeId),
      requestId: jobRequestId(job.ext),
    };
    instance.active++;
    this.#running.set(job.jobId, run);
    run.timer = setTimeout(
      () => run.controller.abort(new BackendError("job.deadline_exceeded", "the job passed its deadline")),
      Math.max(0, job.deadline - Date.now()),
    );
    const named = run.requestId === undefined ? {} : { requestId: run.requestId };
    this.emit("job.start", { jobId: job.jobId, instanceId: job.instanceId, model: job.model, stream: job.stream, ...named });
    void this.#execute(run);
  }

  /** Refuses a job on the spot; it has ended with job_error, so a repeat of its id is ignored (SRP-JOB-024). */
  #refuse(job: Job, code: "job.unknown_instance" | "job.unknown_model" | "job.unsupported_api" | "job.busy", message: string): void {
    this.#jobError(job, code, message, 0);
    this.#rememberEnded(job.jobId);
  }

  /** Remembers an ended job id, forgetting the oldest beyond ENDED_JOBS_KEPT (SRP-JOB-024). */
  #rememberEnded(jobId: string): void {
    this.#endedJobs.add(jobId);
    if (this.#endedJobs.size > ENDED_JOBS_KEPT) this.#endedJobs.delete(this.#endedJobs.values().next().value as string);
  }

  #end(run: Running, outcome: Omit<JobOutcome, "jobId" | "instanceId" | "model" | "ms">): void {
    if (run.ended) return;
    run.ended = true;
    clearTimeout(run.timer);
    this.#rememberEnded(run.job.jobId);
    run.instance.active--;
    this.#running.delete(run.job.jobId);
    if (outcome.ok) this.#served++;
    else this.#failed++;
    if (run.span) endJobSpan(run.span, outcome);
    this.emit("job.end", {
      jobId: run.job.jobId,
      instanceId: run.job.instanceId,
      model: run.job.model,
      ms: Date.now() - run.startedAt,
      ...outcome,
      ...(run.requestId === undefined ? {} : { requestId: run.requestId }),
    });
  }

  async #drain(): Promise<void> {
    const limit = this.#opts.highWaterMark ?? 1024 * 1024;
    while (this.connection.bufferedAmount > limit && this.connection.state === "open") {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async #execute(run: Running): Promise<void> {
    const { job, instance } = run;
    const signal = run.controller.signal;
    const request: Record<string, unknown> = { ...job.request, model: instance.upstreamModel };
    if (job.api === "chat.completions" || job.api === "messages" || job.api === "responses" || job.api === "completions")
      request.stream = job.stream;
    if (job.stream && (job.api === "chat.completions" || job.api === "completions"))
      request.stream_options = { ...(isObject(job.request.stream_options) ? job.request.stream_options : {}), include_usage: true };
    const maxFrame = this.connection.welcome?.limits.maxFrameBytes ?? 1024 * 1024;
    let reqHash: string;
    try {
      reqHash = requestHash(job.request);
      run.requestHash = reqHash;
    } catch (error) {
      // A request without a canonical form cannot be attested: the consumer's input is at fault.
      this.#jobError(job, "job.invalid_request", `the request has no canonical JSON form: ${(error as Error).message}`, 0);
      return this.#end(run, { ok: false, code: "job.invalid_request", chunks: 0 });
    }
    try {
      const backend = instance.backend;
      let result: ChatResult;
      const call = job.ext ? { signal, ext: job.ext } : { signal };
      if (job.api === "chat.completions") result = await backend.chat(request, call);
      else if (backend.run && backend.apis?.includes(job.api)) result = await backend.run(job.api, request, call);
      else throw new BackendError("job.unsupported_api", `instance ${job.instanceId} does not serve ${job.api}`);
      if (run.cancelled || run.ended) return;
      let usage: Usage | undefined;
      let hash: string;
      let response: Record<string, unknown> | undefined;
      if (job.stream) {
        if (result.kind !== "stream") throw new BackendError("job.upstream_error", "backend answered a stream request without streaming");
        const hasher = new StreamHasher();
        const meter = new StreamMeter(job.api);
        run.hasher = hasher;
        for await (const data of result.chunks) {
          if (run.cancelled || run.ended) return;
          if (typeof data.model === "string") data.model = job.model;
          if (data.type === "message_start" && isObject(data.message) && typeof data.message.model === "string")
            data.message.model = job.model;
          if (job.api === "responses" && isObject(data.response) && typeof data.response.model === "string")
            data.response.model = job.model;
          const u = meter.chunk(data);
          if (u) usage = u;
          const frame = encode({ type: "chunk", jobId: job.jobId, seq: run.chunks, data });
          if (Buffer.byteLength(frame) > maxFrame) throw new BackendError("job.upstream_error", "a stream chunk exceeds the frame limit");
          try {
            hasher.add(data); // before sending: a chunk that cannot be hashed is never sent
          } catch (error) {
            throw new BackendError(
              "job.upstream_error",
              `the backend sent a chunk without a canonical JSON form: ${(error as Error).message}`,
              undefined,
              { cause: error },
            );
          }
          if (!this.connection.sendEncoded(frame)) throw new Error("session lost");
          run.chunks++;
          if (u) run.usage = u; // measured up to and including the chunk just sent
          await this.#drain();
        }
        hash = hasher.digest();
      } else {
        if (result.kind !== "response") throw new BackendError("job.upstream_error", "backend streamed a non-stream request");
        response = result.body;
        if (typeof response.model === "string") response.model = job.model;
        usage = measureResponse(job.api, request, response);
        try {
          hash = responseHash(response);
        } catch (error) {
          throw new BackendError(
            "job.upstream_error",
            `the backend response has no canonical JSON form: ${(error as Error).message}`,
            undefined,
            { cause: error },
          );
        }
      }
      if (run.cancelled || run.ended) return;
      this.#finish(run, usage ?? { promptTokens: 0, completionTokens: 0, measured: false }, reqHash, hash, response, maxFrame);
    } catch (error) {
      if (run.ended) return;
      if (run.cancelled) {
        this.#jobError(job, "job.cancelled", "cancelled by the hub", run.chunks);
        return this.#end(run, { ok: false, code: "job.cancelled", chunks: run.chunks });
      }
      const reason = signal.aborted ? signal.reason : error;
      if (reason instanceof BackendError) {
        const code = run.chunks > 0 && reason.code !== "job.deadline_exceeded" ? "job.stream_interrupted" : reason.code;
        this.#jobError(job, code, reason.message, run.chunks, reason.upstreamStatus);
        return this.#end(run, { ok: false, code, chunks: run.chunks });
      }
      if (this.connection.state !== "open") return this.#end(run, { ok: false, code: "session.lost", chunks: run.chunks });
      const code = run.chunks > 0 ? "job.stream_interrupted" : "job.upstream_error";
      this.#jobError(job, code, `backend failed: ${(reason as Error)?.message ?? String(reason)}`, run.chunks);
      this.#end(run, { ok: false, code, chunks: run.chunks });
    }
  }

  #finish(
    run: Running,
    usage: Usage,
    reqHash: string,
    hash: string,
    response: Record<string, unknown> | undefined,
    maxFrame: number,
  ): void {
    const { job } = run;
    const hubId = this.connection.hubId;
    if (hubId === undefined || this.connection.state !== "open")
      return this.#end(run, { ok: false, code: "session.lost", chunks: run.chunks });
    const previous = this.#receipts.position(hubId);
    const receipt = createReceipt(
      {
        jobId: job.jobId,
        hubId,
        instanceId: job.instanceId,
        model: job.model,
        requestHash: reqHash,
        responseHash: hash,
        usage,
        price: job.quote,
        startedAt: run.startedAt,
        finishedAt: Math.max(run.startedAt, Date.now()),
      },
      previous,
      this.#opts.identity,
    );
    const done: SrpMessage = {
      type: "done",
      jobId: job.jobId,
      chunks: run.chunks,
      usage,
      receipt,
      ...(response === undefined ? {} : { response }),
    };
    const doneFrame = encode(done);
    if (Buffer.byteLength(doneFrame) > maxFrame) {
      this.#jobError(job, "internal", "the response exceeds the frame limit", run.chunks);
      return this.#end(run, { ok: false, code: "internal", chunks: run.chunks });
    }
    // SRP-ATT-006: the position is durable before the receipt leaves the node.
    const saved = this.#receipts.savePosition(hubId, { lastSeq: receipt.seq, totals: receipt.totals });
    this.#awaitingCountersign.set(job.jobId, receipt);
    if (this.#awaitingCountersign.size > 10_000) this.#awaitingCountersign.delete(this.#awaitingCountersign.keys().next().value as string);
    const send = () => {
      if (run.ended) return; // the session ended meanwhile
      this.connection.sendEncoded(doneFrame);
      this.#end(run, { ok: true, chunks: run.chunks, usage, cost: receipt.cost });
    };
    // A store written synchronously returns nothing (or, written in plain JavaScript, whatever its last call returned): not a promise.
    if (typeof (saved as Promise<void> | undefined)?.then !== "function") return send();
    // Written off the event loop: the job is finishing, a cancel that arrives meanwhile is too late (SRP-JOB-018).
    run.finishing = true;
    (saved as Promise<void>).then(send, (error: unknown) => {
      if (run.ended) return;
      this.#jobError(
        job,
        "internal",
        `the receipt position could not be stored: ${(error as Error)?.message ?? String(error)}`,
        run.chunks,
      );
      this.#end(run, { ok: false, code: "internal", chunks: run.chunks });
    });
  }

  /** An async job took a slot of its instance. */
  #occupy(job: Job): void {
    const instance = this.#instances.get(job.instanceId);
    if (instance) instance.active++;
    const requestId = jobRequestId(job.ext);
    this.emit("job.start", {
      jobId: job.jobId,
      instanceId: job.instanceId,
      model: job.model,
      stream: false,
      ...(requestId === undefined ? {} : { requestId }),
    });
  }

  /** An async job left its slot. */
  #release(job: Job, outcome: { ok: boolean; code?: string; usage?: Usage; cost?: string; startedAt: number }): void {
    const instance = this.#instances.get(job.instanceId);
    if (instance) instance.active--;
    if (outcome.ok) this.#served++;
    else this.#failed++;
    const requestId = jobRequestId(job.ext);
    this.emit("job.end", {
      jobId: job.jobId,
      instanceId: job.instanceId,
      model: job.model,
      ok: outcome.ok,
      chunks: 0,
      ms: Date.now() - outcome.startedAt,
      ...(outcome.code === undefined ? {} : { code: outcome.code }),
      ...(outcome.usage === undefined ? {} : { usage: outcome.usage }),
      ...(outcome.cost === undefined ? {} : { cost: outcome.cost }),
      ...(requestId === undefined ? {} : { requestId }),
    });
  }

  /**
   * Numbers, signs and durably records an async job's receipt (SRP-ATT-006), then hands it to
   * `then` as `#finish` sends a done: at once for a store written synchronously, else when the
   * write completes (writes complete in order, so receipts leave in `seq` order).
   */
  #signReceipt(
    job: Job,
    usage: Usage,
    reqHash: string,
    respHash: string,
    startedAt: number,
    then: (receipt: Receipt | undefined, error?: unknown) => void,
  ): void {
    const hubId = this.connection.hubId;
    if (hubId === undefined || this.connection.state !== "open") return then(undefined);
    const receipt = createReceipt(
      {
        jobId: job.jobId,
        hubId,
        instanceId: job.instanceId,
        model: job.model,
        requestHash: reqHash,
        responseHash: respHash,
        usage,
        price: job.quote,
        startedAt,
        finishedAt: Math.max(startedAt, Date.now()),
      },
      this.#receipts.position(hubId),
      this.#opts.identity,
    );
    const saved = this.#receipts.savePosition(hubId, { lastSeq: receipt.seq, totals: receipt.totals });
    this.#awaitingCountersign.set(job.jobId, receipt);
    if (typeof (saved as Promise<void> | undefined)?.then !== "function") return then(receipt);
    (saved as Promise<void>).then(
      () => then(receipt),
      (error: unknown) => then(undefined, error ?? new Error("the receipt position could not be stored")),
    );
  }

  #onCancel(cancel: Cancel): void {
    if (this.#async.cancel(cancel.jobId)) return;
    const run = this.#running.get(cancel.jobId);
    if (!run || run.ended || run.finishing) return; // SRP-JOB-018: ignore unknown or ended jobs (a finishing one sends its done)
    run.cancelled = true;
    run.controller.abort(new Error(`cancelled: ${cancel.reason}`));
    // SRP-JOB-018: a consumer who left pays for what was delivered, when the backend
    // measured it (usage in every chunk): the job ends with done for the chunks sent.
    if (cancel.reason === "consumer_gone" && run.chunks > 0 && run.hasher && run.usage?.measured && run.requestHash !== undefined) {
      const maxFrame = this.connection.welcome?.limits.maxFrameBytes ?? 1024 * 1024;
      return this.#finish(run, run.usage, run.requestHash, run.hasher.digest(), undefined, maxFrame);
    }
    // The slot is free as soon as the cancel arrives; the backend call unwinds on its own.
    this.#jobError(run.job, "job.cancelled", `cancelled by the hub (${cancel.reason})`, run.chunks);
    this.#end(run, { ok: false, code: "job.cancelled", chunks: run.chunks });
  }

  async #onProbe(probe: Probe): Promise<void> {
    const instance = this.#instances.get(probe.instanceId);
    const started = Date.now();
    const result = (ok: boolean, error?: { code: string; message: string }) =>
      this.#send({
        type: "probe_result",
        probeId: probe.probeId,
        instanceId: probe.instanceId,
        ok,
        latencyMs: Math.min(3_600_000, Date.now() - started),
        ...(error ? { error } : {}),
      });
    if (!instance || !instance.accepted)
      return void result(false, { code: "job.unknown_instance", message: "instance is not offered on this session" });
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new BackendError("job.upstream_timeout", "probe passed its deadline")),
      Math.max(0, probe.deadline - Date.now()),
    );
    try {
      if (instance.backend.probe) {
        await instance.backend.probe(controller.signal);
        return void result(true);
      }
      const r = await instance.backend.chat(
        { model: instance.upstreamModel, messages: [{ role: "user", content: "Reply with one word." }], max_tokens: 1, stream: false },
        { signal: controller.signal },
      );
      if (r.kind !== "response") throw new BackendError("job.upstream_error", "probe answered with a stream");
      result(true);
    } catch (error) {
      const reason = controller.signal.aborted ? controller.signal.reason : error;
      result(false, {
        code: reason instanceof BackendError ? reason.code : "job.upstream_error",
        message: String((reason as Error)?.message ?? reason).slice(0, 2000),
      });
    } finally {
      clearTimeout(timer);
    }
  }

  #onReceipt(receipt: Receipt): void {
    const sent = this.#awaitingCountersign.get(receipt.jobId);
    const problem = (code: "receipt.missing_hub_signature" | "receipt.bad_hub_signature" | "receipt.field_mismatch", message: string) => {
      this.emit("warning", { code, message });
      this.#send({ type: "error", code, message, retryable: false, jobId: receipt.jobId });
    };
    // SRP-ATT-021 check 1: a missing countersignature has its own code (SRP-ATT-014).
    if (receipt.hubSig === undefined)
      return problem("receipt.missing_hub_signature", `receipt ${receipt.jobId} carries no countersignature`);
    if (!verifyDetached("receiptHub", omitFields(receipt, "hubSig"), receipt.hubSig, receipt.hubId)) {
      return problem("receipt.bad_hub_signature", `countersignature of ${receipt.jobId} does not verify`);
    }
    if (!sent || !sameReceipt(omitFields(receipt, "hubSig"), sent)) {
      return problem("receipt.field_mismatch", `countersigned receipt ${receipt.jobId} differs from the receipt sent`);
    }
    this.#awaitingCountersign.delete(receipt.jobId);
    this.#async.receipted(receipt.jobId);
    this.#receipts.addCountersigned(receipt);
    this.emit("receipt", receipt);
  }

  /**
   * SRP-SET-008..010: checks a statement's signature and ids, compares the hub's
   * position with the node's own receipts, disputes loudly on any difference, and keeps
   * the statement as evidence.
   */
  #onStatement(statement: Statement): void {
    const hubId = this.connection.hubId;
    const mine = hubId === undefined ? undefined : this.#receipts.position(hubId);
    const dispute = (kind: Dispute["kind"], problem: string, node: { lastSeq: number; totals: Statement["totals"] } | undefined) => {
      this.#send({
        type: "dispute",
        kind,
        statementId: statement.statementId,
        hub: { lastSeq: statement.receipts.lastSeq, totals: statement.totals },
        node: node ?? mine ?? { lastSeq: 0, totals: statement.totals },
        message: problem.slice(0, 2000),
      });
      this.emit("warning", {
        code: kind === "bad_signature" ? "statement.bad_signature" : "statement.totals_mismatch",
        message: `statement ${statement.statementId}: ${problem}`,
      });
      this.#receipts.addStatement?.(statement, false);
      this.#lastStatement = { statement, agreed: false };
      this.emit("statement", { statement, agreed: false, problem });
    };
    if (!verifyStatement(statement) || statement.hubId !== hubId || statement.nodeId !== this.nodeId) {
      return dispute(
        "bad_signature",
        "the signature does not verify with this session's hub id, or the statement is not about this node",
        undefined,
      );
    }
    const seq = statement.receipts.lastSeq;
    if (mine === undefined || seq > mine.lastSeq) {
      return dispute(
        "totals_mismatch",
        `the hub claims receipts up to seq ${seq}; this node issued only up to ${mine?.lastSeq ?? 0}`,
        mine,
      );
    }
    const at = seq === 0 ? INITIAL_POSITION.totals : seq === mine.lastSeq ? mine.totals : this.#receipts.totalsAt?.(hubId!, seq);
    if (at === undefined) {
      this.emit("warning", {
        code: "statement.unchecked",
        message: `statement ${statement.statementId}: this node no longer knows its totals at seq ${seq}; kept unchecked`,
      });
    } else if (!totalsEqual(at, statement.totals)) {
      return dispute(
        "totals_mismatch",
        `totals at seq ${seq} differ: hub ${JSON.stringify(statement.totals)}, node ${JSON.stringify(at)}`,
        { lastSeq: seq, totals: at },
      );
    }
    const { count, firstSeq } = statement.receipts;
    if (count > 0 && count < seq - firstSeq + 1) {
      return dispute(
        "missing_receipt",
        `the hub holds ${count} of the ${seq - firstSeq + 1} receipts ${firstSeq}..${seq} this node issued`,
        at ? { lastSeq: seq, totals: at } : undefined,
      );
    }
    this.#receipts.addStatement?.(statement, true);
    this.#lastStatement = { statement, agreed: true };
    this.emit("statement", { statement, agreed: true });
  }

  #abortAll(reason: string): void {
    for (const run of [...this.#running.values()]) {
      run.controller.abort(new Error(reason));
      this.#end(run, { ok: false, code: "session.lost", chunks: run.chunks });
    }
  }
}

/**
 * Starts a provider node: connects to the hub, offers the configured instances and
 * serves jobs until closed.
 *
 * @example
 * import { generateIdentity } from "@srp/core";
 * import { createProvider, openAICompatibleBackend } from "@srp/provider";
 *
 * const provider = createProvider({
 *   hub: "http://127.0.0.1:8787",
 *   identity: generateIdentity(),
 *   account: process.env.SRP_ACCOUNT_KEY ?? "",
 *   instances: [{
 *     backend: openAICompatibleBackend({ baseUrl: "http://127.0.0.1:11434/v1", kind: "ollama" }),
 *     model: "llama3.1:8b",
 *     price: { input: "100000", output: "300000" },
 *   }],
 * });
 * await provider.ready();
 */
export function createProvider(options: ProviderOptions): Provider {
  if (options.instances.length === 0) throw new TypeError("a provider needs at least one instance");
  return new Provider(options);
}
