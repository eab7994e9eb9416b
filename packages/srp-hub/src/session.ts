/**
 * One provider WebSocket connection on the hub side, from `hello` to close: the hub's
 * half of the v1 handshake state machine (spec/v1/handshake.md), frame-error handling,
 * heartbeat supervision and offers.
 */
import {
  CanonicalizationError,
  checkAuth,
  createHello,
  decode,
  encode,
  errorMessage,
  HANDSHAKE_TIMING,
  nodeBindingText,
  randomNonce,
  SrpError,
  toBase64Url,
  randomBytes,
  responseHash,
  StreamHasher,
  type Identity,
  type ReceiptPosition,
  asyncInstanceProblem,
  asyncJobsExt,
  isAsyncApi,
  isAsyncInstance,
} from "@srp/core";
import type {
  AsyncJobsAnnouncement,
  Auth,
  Cancel,
  Chunk,
  Dispute,
  Done,
  Job,
  JobError,
  ProbeResult,
  Receipt,
  Instance,
  MessageType,
  Offer,
  Progress,
  Result,
  ResultManifest,
  SrpMessage,
} from "@srp/core/schema";
import { OutputMeter, type OutputMeasurer, type RelayedOutput, type UsageBounds } from "@srp/core/metering";
import { coalesceWrites, type Corkable } from "@srp/core/node";
import type { WebSocket } from "ws";
import { unexpired, type Account, type AccountStore } from "./accounts.js";
import type { NonceStore } from "./nonces.js";
import { TokenBucket, type Rate } from "./limits.js";
import { asyncJobBounds, ResultBuffer, type ByteBudget } from "./async-result.js";

/** Where a session is in its life. */
export type SessionState = "await_auth" | "open" | "closed";

/** Settings a session needs from its hub. */
export interface SessionContext {
  identity: Identity;
  accounts: AccountStore;
  nonces: NonceStore;
  versions: readonly number[];
  maxFrameBytes: number;
  heartbeatIntervalMs: number;
  handshakeTimeoutMs: number;
  maxInstances: number;
  maxConcurrentJobs: number;
  refusedTiers: ReadonlySet<string>;
  verifyWalletSignature: (address: string, message: string, signature: string) => Promise<boolean>;
  /**
   * A hub of several processes: resolves once the node's session on another process (if
   * any) has ended, with whether there was one. The welcome waits for it (SRP-HS-017).
   */
  replacedElsewhere?(session: ProviderSession): Promise<boolean>;
  /**
   * The hub takes `videos` and `runs` jobs under these limits (SRP-JOB-039): announced in
   * every `welcome`; absent: the hub takes no async jobs and refuses async instances.
   */
  asyncJobs?: AsyncJobsAnnouncement;
  /** What the hub's sessions may hold of running async jobs' results at once; absent: each job's `maxResultBytes` only. */
  resultBudget?: ByteBudget;
  /**
   * Keeps an async job of this session past its end for the resume window (SRP-JOB-045);
   * false (or absent) when it cannot: the job is then lost with the session.
   */
  suspendJob?(session: ProviderSession, state: AsyncJobState): boolean;
  /** The node's first offer on this session was acknowledged: its suspended async jobs resume here (SRP-JOB-046). */
  onFirstOffer?(session: ProviderSession): void;
  /** Cancels a job this session no longer runs because it was suspended or resumed on a newer session; whether it was found. */
  cancelMoved?(jobId: string, reason: Cancel["reason"], message?: string): boolean;
  /** A job this session adopted (a resumed async job) ended here. */
  onAdoptedEnded?(jobId: string): void;
  /** Called after a successful handshake; returns the session it replaced, if any. */
  onAuthenticated(session: ProviderSession): ProviderSession | undefined;
  /** Changes whenever the hub re-checks open sessions' bindings (a revocation): a handshake straddling a change looks its account up again (SRP-SEC-022). */
  revocationEpoch?(): number;
  onClosed(session: ProviderSession, code: number, reason: string): void;
  onRejected(session: ProviderSession, error: SrpError): void;
  /** Called when offers or withdrawals change the session's instances. */
  onInstancesChanged(session: ProviderSession): void;
  /** Called after a heartbeat reported the capacity of the session's instances (slots may have freed). */
  onCapacityReported?(session: ProviderSession): void;
  /** Called when the jobs running on one of the session's instances went up or down (routing keeps instances ordered by load). */
  onLoadChanged?(session: ProviderSession, instanceId: string): void;
  /** Verifies and countersigns the receipt of a `done`; returns the countersigned receipt or the error to report. */
  settleReceipt(
    session: ProviderSession,
    job: Job,
    done: Done,
    requestHash: string,
    responseHash: string,
    plausibility?: { relayed: RelayedOutput; bounds?: UsageBounds },
  ): { receipt?: Receipt; error?: SrpError; settled?: Promise<unknown> };
  /** The hub's recorded receipt position for a node (sent in welcome). */
  receiptPosition(nodeId: string): Promise<ReceiptPosition>;
  /** A `probe_result` arrived. */
  onProbeResult(session: ProviderSession, result: ProbeResult): void;
  /** A job the hub cancelled has ended on the node's side: with a `done` (already settled), a `job_error`, or never (session gone). */
  onCancelledEnd(jobId: string, end: "done" | "error" | "lost"): void;
  /** A node disputed the hub's view of its receipts (SRP-SET-011). */
  onDispute(session: ProviderSession, dispute: Dispute): void;
  /** Messages an open session may send (a token bucket per session, SRP-SEC-019); absent: unlimited. */
  messageRate?: Rate;
  /** Whether an `auth` may be checked now: the error to refuse it with (SRP-SEC-018), or undefined; a promise when a shared limit is asked. */
  admitAuth?(session: ProviderSession): SrpError | undefined | Promise<SrpError | undefined>;
}

/** Receives the events of one job sent on a session. */
export interface JobHandle {
  /** What the job was admitted to use, for the plausibility of its receipt (SRP-ATT-015); absent members are unbounded. */
  readonly bounds?: UsageBounds | undefined;
  /** Measures what the consumer is relayed of the job's output when the hub translates it (SRP-ATT-016); absent: the job's own API ({@link OutputMeter.forJob}). */
  readonly meter?: OutputMeasurer | undefined;
  /** The next chunk, in order. */
  onChunk(chunk: Chunk): void;
  /** An async job's progress rose (SRP-JOB-041), percent. */
  onProgress?(progress: number, message?: string): void;
  /**
   * The job finished; `receipt` is countersigned, or absent when the receipt failed
   * verification. `settled` resolves when the receipt (and the money it moves) is stored;
   * `rejected` is why a receipt was not countersigned. `result`: an async job's result
   * stream, checked against its manifest (SRP-JOB-043).
   */
  onDone(done: Done, receipt: Receipt | undefined, settled?: Promise<unknown>, rejected?: SrpError, result?: Uint8Array): void;
  /** The node reported a failure. */
  onError(error: JobError): void;
  /** The session ended (or the hub cancelled the job) before the job did. */
  onLost(reason: string): void;
  /** The job never started: the hub process holding its node could not take it (a node connected to another process). Absent: `onError` with `job.busy`. */
  onNotStarted?(reason: string): void;
}

/**
 * What routing and the relay use of a node's connection: its offers, its load and a way
 * to start and cancel jobs. A {@link ProviderSession} is one (a node connected to this
 * process); in a hub of several processes, a node connected to another process is one too.
 */
export interface JobHost {
  /** The node id, once authenticated. */
  readonly nodeId: string | undefined;
  /** The account the node is bound to, once authenticated. */
  readonly account: Account | undefined;
  readonly state: SessionState;
  /** True when the node is connected to this process (probes and statements go only to those). */
  readonly local: boolean;
  /** Instances currently offered, by instance id. */
  readonly instances: ReadonlyMap<string, Instance>;
  /** Jobs running per instance id. */
  readonly active: ReadonlyMap<string, number>;
  /** Capacity per instance as the node last reported it. */
  readonly reportedCapacity: ReadonlyMap<string, number>;
  /** Sends a job; false when it cannot take it now (see {@link ProviderSession.startJob}). */
  startJob(job: Job, requestHash: string, handle: JobHandle): boolean;
  /**
   * Cancels a running job; whether it was running. `failed` (a missed deadline counted as
   * the instance's failure) is passed on to the process holding a node connected elsewhere.
   */
  cancelJob(jobId: string, reason: Cancel["reason"], message?: string, failed?: boolean): boolean;
}

/** An async job as it moves between sessions of its node (SRP-JOB-045, SRP-JOB-046). */
export interface AsyncJobState {
  /** The credential the job's session was bound with: only a session bound with the same one resumes it (SRP-SEC-022). */
  binding: string;
  job: Job;
  requestHash: string;
  handle: JobHandle;
  meter: OutputMeasurer;
  result: ResultBuffer;
  sentAt: number;
}

interface RunningJob {
  job: Job;
  /** SHA-256 of the job's canonical request, computed when it was sent. */
  requestHash: string;
  handle: JobHandle;
  nextSeq: number;
  hasher: StreamHasher | undefined;
  /** What the hub relayed of the job's output (SRP-ATT-016). */
  meter: OutputMeasurer;
  /** An async job's result stream, as received. */
  result: ResultBuffer | undefined;
  /** When the hub sent the job (ms): its clock bounds a run's seconds (SRP-ATT-027). */
  sentAt: number;
  /** Resumed here from an earlier session of the node. */
  adopted?: boolean;
}

/** A job the hub cancelled: late chunks keep their order and are hashed and measured as a running job's (SRP-ATT-018). */
interface CancelledJob {
  job: Job;
  requestHash: string;
  at: number;
  nextSeq: number;
  hasher: StreamHasher | undefined;
  meter: OutputMeasurer;
  bounds: UsageBounds | undefined;
  /** An async job's result stream, dropped at the cancel: late parts are discarded and a late `done` is not countersigned. */
  result: ResultBuffer | undefined;
}

const NODE_MESSAGES: ReadonlySet<MessageType> = new Set([
  "auth",
  "offer",
  "withdraw",
  "chunk",
  "done",
  "job_error",
  "progress",
  "result",
  "heartbeat",
  "probe_result",
  "dispute",
  "error",
  "goodbye",
]);

/** The hub's side of one provider session. */
export class ProviderSession implements JobHost {
  /** A node connected to this process. */
  readonly local = true;
  /** Random id of this connection. */
  readonly sessionId = `sess_${toBase64Url(randomBytes(12))}`;
  /** The node id, once authenticated. */
  nodeId: string | undefined;
  /** The account the node is bound to, once authenticated. */
  account: Account | undefined;
  /** Negotiated protocol version, once authenticated. */
  version: number | undefined;
  /** Instances currently offered, by instance id. */
  readonly instances = new Map<string, Instance>();
  /** Jobs running per instance id (slots the hub occupies, SRP-JOB-004). */
  readonly active = new Map<string, number>();
  /** Capacity per instance as the node last reported it in a heartbeat. */
  readonly reportedCapacity = new Map<string, number>();
  /** When the last message arrived (ms). */
  lastSeen = Date.now();
  state: SessionState = "await_auth";

  readonly #ws: WebSocket;
  readonly #ctx: SessionContext;
  readonly #hold: (() => void) | undefined;
  readonly #nonce = randomNonce();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #authInFlight = false;
  /** The credential the session bound its account with, to check it again later (SRP-SEC-022). */
  #binding: { kind: "api_key"; key: string } | { kind: "wallet"; address: string } | undefined;
  #messages: TokenBucket | undefined;
  readonly #jobs = new Map<string, RunningJob>();
  /** Jobs this hub cancelled, kept a while so late messages for them are not errors (SRP-JOB-016). */
  readonly #cancelled = new Map<string, CancelledJob>();
  /** The node's first offer on this session was acknowledged (suspended jobs resume then). */
  #offered = false;
  /** The session ended in a way that keeps no job for a resume (a revoked binding). */
  #noResume = false;

  /**
   * @param socket The session's TCP (or TLS) socket; when given, the frames sent on it
   *   during one turn of the event loop leave in one system call ({@link coalesceWrites}).
   */
  constructor(ws: WebSocket, ctx: SessionContext, socket?: Corkable) {
    this.#ws = ws;
    this.#ctx = ctx;
    this.#hold = socket ? coalesceWrites(socket) : undefined;
    ctx.nonces.remember(this.#nonce);
    ws.on("message", (data, isBinary) => {
      // Nothing a peer sends may take the hub down: a frame that cannot be handled ends this session only.
      this.#onFrame(data as Buffer, isBinary).catch((error: unknown) => {
        const unhashable = error instanceof CanonicalizationError || error instanceof RangeError;
        this.fail(
          unhashable
            ? new SrpError("frame.invalid", `frame content has no canonical JSON form: ${error.message}`)
            : new SrpError("internal", "the hub could not handle a frame", { cause: error }),
        );
      });
    });
    ws.on("close", (code, reason) => this.#onClose(code, reason.toString()));
    ws.on("error", () => this.#ws.terminate());
    this.send(createHello({ identity: ctx.identity, versions: ctx.versions, maxFrameBytes: ctx.maxFrameBytes, nonce: this.#nonce }));
    this.#timer = setTimeout(() => this.fail(new SrpError("protocol.handshake_timeout")), ctx.handshakeTimeoutMs);
  }

  /** Sends one message. */
  send(message: SrpMessage): void {
    this.#sendFrame(encode(message));
  }

  #sendFrame(frame: string): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#hold?.();
    this.#ws.send(frame);
  }

  /** Sends `error` for a session-ending error and closes with its close code. */
  fail(error: SrpError): void {
    if (this.state === "closed") return;
    // Only a node that went quiet or reconnected keeps its async jobs for a resume: one the hub ends for misbehaving does not.
    if (error.code !== "protocol.heartbeat_timeout" && error.code !== "session.replaced") this.#noResume = true;
    if (this.state === "await_auth") this.#ctx.onRejected(this, error);
    this.send(errorMessage(error));
    this.#closeSocket(error.closeCode ?? 1011, error.code);
  }

  /** Closes the session on purpose (hub shutdown), telling the node when to come back. Running jobs are cancelled (`shutdown`). */
  goodbye(reason: string, reconnectAfterMs?: number): void {
    if (this.state === "closed") return;
    for (const running of [...this.#jobs.values()]) {
      this.cancelJob(running.job.jobId, "shutdown");
      running.handle.onLost("shutdown");
    }
    this.send({ type: "goodbye", reason, ...(reconnectAfterMs === undefined ? {} : { reconnectAfterMs }) });
    this.#closeSocket(1001, "session.shutdown");
  }

  #closeSocket(code: number, reason: string): void {
    this.state = "closed";
    this.#ctx.onInstancesChanged(this); // out of the routing table at once, not at the close handshake
    this.#loseJobs(`session closed (${code} ${reason})`);
    clearTimeout(this.#timer);
    this.#ws.close(code, reason);
    // A peer that never completes the closing handshake must not hold the socket.
    setTimeout(() => this.#ws.terminate(), 2000).unref();
  }

  async #onFrame(data: Buffer, isBinary: boolean): Promise<void> {
    if (this.state === "closed") return;
    this.lastSeen = Date.now();
    if (this.state === "open" && this.#messages && this.#messages.take() > 0) {
      return this.fail(new SrpError("session.rate_limited", "this session sent messages faster than the hub allows"));
    }
    const result = decode(data, { binary: isBinary, maxFrameBytes: this.#ctx.maxFrameBytes, versions: this.#ctx.versions });
    if (!result.ok) return this.fail(result.error);
    const message = result.message;
    if (!NODE_MESSAGES.has(message.type)) {
      return this.fail(new SrpError("protocol.unexpected_message", `a node does not send ${message.type}`));
    }
    if (this.state === "await_auth") {
      if (message.type === "auth" && !this.#authInFlight) return this.#onAuth(message);
      if (message.type === "error") return this.#closeSocket(1000, "peer error");
      return this.fail(new SrpError("protocol.unexpected_message", `${message.type} before welcome`));
    }
    switch (message.type) {
      case "auth":
        return this.fail(new SrpError("protocol.unexpected_message", "session is already authenticated"));
      case "heartbeat":
        for (const l of message.load) if (this.instances.has(l.instanceId)) this.reportedCapacity.set(l.instanceId, l.capacity);
        this.#ctx.onCapacityReported?.(this);
        return;
      case "chunk":
        return this.#onChunk(message);
      case "progress":
        return this.#onProgress(message);
      case "result":
        return this.#onResult(message);
      case "done":
        return this.#onDone(message);
      case "job_error":
        return this.#onJobError(message);
      case "probe_result":
        return this.#ctx.onProbeResult(this, message);
      case "offer":
        return this.#onOffer(message);
      case "withdraw":
        for (const id of message.instanceIds) {
          this.instances.delete(id);
          this.reportedCapacity.delete(id);
        }
        this.#ctx.onInstancesChanged(this);
        return;
      case "goodbye":
        return this.#closeSocket(1000, "goodbye");
      case "dispute":
        // SRP-SET-011: accepted without closing the session, recorded, and no effect on routing.
        this.#ctx.onDispute(this, message);
        return;
      case "error":
        return;
      default:
        return;
    }
  }

  async #onAuth(auth: Auth): Promise<void> {
    this.#authInFlight = true;
    const ctx = this.#ctx;
    const admitted = ctx.admitAuth?.(this);
    const refused = admitted instanceof Promise ? await admitted : admitted;
    if (refused) return this.fail(refused);
    // A shared nonce memory answers asynchronously: asked first, and only about a nonce that is not this session's.
    const known = auth.nonce === this.#nonce ? false : await ctx.nonces.has(auth.nonce);
    const rejected = checkAuth(auth, {
      hubId: ctx.identity.id,
      nonce: this.#nonce,
      isKnownNonce: (n) => n === auth.nonce && known,
      windowMs: HANDSHAKE_TIMING.freshnessWindowMs,
    });
    if (rejected) return this.fail(rejected);
    const epoch = ctx.revocationEpoch?.();
    let account: Account | undefined;
    let position: ReceiptPosition;
    try {
      if (auth.account.kind === "api_key") {
        // An expired key binds no node (SRP-CON-084), as a revoked one.
        account = unexpired(await ctx.accounts.findByApiKey(auth.account.key), Date.now());
      } else {
        const ok = await ctx.verifyWalletSignature(auth.account.address, nodeBindingText(auth.nodeId), auth.account.signature);
        if (!ok) return this.fail(new SrpError("auth.bad_account_proof", "wallet signature does not recover to the bound address"));
        account = await ctx.accounts.findByWallet(auth.account.address.toLowerCase());
      }
      position = await ctx.receiptPosition(auth.nodeId);
    } catch (cause) {
      return this.fail(new SrpError("internal", "account look-up failed", { cause }));
    }
    if (!account) return this.fail(new SrpError("auth.unknown_account"));
    const binding =
      auth.account.kind === "api_key"
        ? { kind: "api_key" as const, key: auth.account.key }
        : { kind: "wallet" as const, address: auth.account.address.toLowerCase() };
    this.#binding = binding;
    // A revocation that went through while the account was looked up: look it up again (SRP-SEC-022).
    for (let seen = epoch; ctx.revocationEpoch && ctx.revocationEpoch() !== seen; ) {
      seen = ctx.revocationEpoch();
      let again: Account | undefined;
      try {
        again = await this.#lookUpBinding(binding);
      } catch (cause) {
        return this.fail(new SrpError("internal", "account look-up failed", { cause }));
      }
      if (again?.id !== account.id)
        return this.fail(new SrpError("auth.revoked", "the API key or wallet this node bound with was revoked during the handshake"));
    }
    if (ctx.messageRate) this.#messages = new TokenBucket(ctx.messageRate);
    if (this.state === "closed") return; // the node went away while we looked the account up
    this.nodeId = auth.nodeId;
    this.account = account;
    this.version = auth.version;
    this.state = "open";
    clearTimeout(this.#timer);
    const replaced = ctx.onAuthenticated(this);
    replaced?.fail(new SrpError("session.replaced", "a newer session for this node id was opened"));
    // The node's session on another process of the hub ends before this one is welcomed.
    const elsewhere = ctx.replacedElsewhere ? await ctx.replacedElsewhere(this) : false;
    if ((this.state as SessionState) === "closed") return; // the node went away meanwhile
    this.send({
      type: "welcome",
      version: auth.version,
      sessionId: this.sessionId,
      nodeId: auth.nodeId,
      accountId: account.id,
      heartbeatIntervalMs: ctx.heartbeatIntervalMs,
      limits: { maxFrameBytes: ctx.maxFrameBytes, maxInstances: ctx.maxInstances, maxConcurrentJobs: ctx.maxConcurrentJobs },
      replaced: replaced !== undefined || elsewhere,
      receipts: position,
      ...(ctx.asyncJobs ? { ext: asyncJobsExt(ctx.asyncJobs) } : {}),
    });
    this.#armHeartbeatWatch();
  }

  #armHeartbeatWatch(): void {
    const interval = this.#ctx.heartbeatIntervalMs;
    this.#timer = setInterval(() => {
      if (Date.now() - this.lastSeen > 3 * interval) this.fail(new SrpError("protocol.heartbeat_timeout"));
    }, interval);
    this.#timer.unref?.();
  }

  #onOffer(offer: Offer): void {
    const seen = new Set<string>();
    const results = offer.instances.map((instance) => {
      const refuse = (
        code: "offer.duplicate_instance" | "offer.tier_refused" | "offer.too_many_instances" | "offer.invalid",
        message: string,
      ) => ({
        instanceId: instance.instanceId,
        accepted: false,
        reason: { code, message },
      });
      if (seen.has(instance.instanceId)) return refuse("offer.duplicate_instance", "instance id appears twice in this offer");
      seen.add(instance.instanceId);
      // SRP-OFF-014: the instance's own faults first, then hub policy, then the session limit.
      if (instance.maxOutputTokens !== undefined && instance.maxOutputTokens > instance.contextLength) {
        return refuse("offer.invalid", "maxOutputTokens exceeds contextLength");
      }
      // SRP-JOB-039, SRP-OFF-019, SRP-OFF-020: async instances only under an announcement, and consistent.
      if (isAsyncInstance(instance) && !this.#ctx.asyncJobs)
        return refuse("offer.invalid", "this hub takes no async jobs (its welcome announced no srp.async_jobs)");
      const asyncProblem = asyncInstanceProblem(instance);
      if (asyncProblem) return refuse("offer.invalid", asyncProblem);
      if (this.#ctx.refusedTiers.has(instance.tier))
        return refuse("offer.tier_refused", `this hub does not accept the ${instance.tier} tier`);
      if (!this.instances.has(instance.instanceId) && this.instances.size >= this.#ctx.maxInstances) {
        return refuse("offer.too_many_instances", `at most ${this.#ctx.maxInstances} instances per session`);
      }
      this.instances.set(instance.instanceId, instance);
      return { instanceId: instance.instanceId, accepted: true };
    });
    this.send({ type: "offer_ack", results });
    // SRP-JOB-046: suspended async jobs resume before any job is sent on this session.
    if (!this.#offered) {
      this.#offered = true;
      this.#ctx.onFirstOffer?.(this);
    }
    this.#ctx.onInstancesChanged(this);
  }

  /**
   * Whether the credential this session bound with still names its account (the API key not
   * revoked, the wallet still the account's). True for a session not (yet) bound.
   */
  async stillBound(): Promise<boolean> {
    const b = this.#binding;
    if (this.state !== "open" || !b || !this.account) return true;
    const found = await this.#lookUpBinding(b);
    return found?.id === this.account.id;
  }

  /** The account a binding names now. */
  #lookUpBinding(b: { kind: "api_key"; key: string } | { kind: "wallet"; address: string }): Promise<Account | undefined> {
    return b.kind === "api_key"
      ? this.#ctx.accounts.findByApiKey(b.key).then((a) => unexpired(a, Date.now()))
      : this.#ctx.accounts.findByWallet(b.address);
  }

  /** Closes a session whose binding was revoked (SRP-SEC-022): `auth.revoked`; its running jobs are lost, never billed. */
  revoke(): void {
    this.#noResume = true;
    if (this.state === "open") this.fail(new SrpError("auth.revoked", "the API key or wallet this node bound with was revoked"));
  }

  /** The credential this session bound its account with, as one string (an API key, or a wallet address); "" before. */
  get bindingKey(): string {
    const b = this.#binding;
    return b === undefined ? "" : b.kind === "api_key" ? `key:${b.key}` : `wallet:${b.address}`;
  }

  /** Whether the node's first offer on this session was acknowledged. */
  get offered(): boolean {
    return this.#offered;
  }

  /**
   * Takes over an async job suspended when an earlier session of this node ended, and sends
   * `resume {jobId, received}` (SRP-JOB-046): the node goes on from the bytes the hub holds.
   * The job occupies a slot of its instance again; its deadline is unchanged.
   */
  adopt(state: AsyncJobState): void {
    const { job } = state;
    this.active.set(job.instanceId, (this.active.get(job.instanceId) ?? 0) + 1);
    this.#ctx.onLoadChanged?.(this, job.instanceId);
    this.#jobs.set(job.jobId, { ...state, nextSeq: 0, hasher: undefined, adopted: true });
    this.send({ type: "resume", jobId: job.jobId, received: state.result.received });
  }

  /** Jobs running on this session. */
  get jobCount(): number {
    return this.#jobs.size;
  }

  /**
   * Sends a job and occupies a slot of its instance. Returns false when the session is
   * not open, the instance is not offered, or a slot limit would be exceeded.
   *
   * @throws SrpError `api.body_too_large` when the job's frame is over the session's frame
   *   limit (SRP-FRM-008); nothing is sent and no slot is taken.
   */
  startJob(job: Job, requestHash: string, handle: JobHandle): boolean {
    if (this.state !== "open") return false;
    const instance = this.instances.get(job.instanceId);
    if (!instance) return false;
    const active = this.active.get(job.instanceId) ?? 0;
    if (active >= instance.maxConcurrency || this.#jobs.size >= this.#ctx.maxConcurrentJobs) return false;
    // Never send a frame over the session's limit (SRP-FRM-008): the node would end the session, and every job on it.
    const frame = encode(job);
    const bytes = Buffer.byteLength(frame);
    if (bytes > this.#ctx.maxFrameBytes)
      throw new SrpError(
        "api.body_too_large",
        `the job for this request would be ${bytes} bytes, over the ${this.#ctx.maxFrameBytes}-byte frame limit of the hub's provider sessions; send a smaller request`,
      );
    this.active.set(job.instanceId, active + 1);
    this.#ctx.onLoadChanged?.(this, job.instanceId);
    this.#jobs.set(job.jobId, {
      job,
      requestHash,
      handle,
      nextSeq: 0,
      hasher: job.stream ? new StreamHasher() : undefined,
      meter: handle.meter ?? OutputMeter.forJob(job),
      result:
        this.#ctx.asyncJobs && isAsyncApi(job.api) ? new ResultBuffer(job.api, this.#ctx.asyncJobs, this.#ctx.resultBudget) : undefined,
      sentAt: Date.now(),
    });
    this.#sendFrame(frame);
    return true;
  }

  /** Cancels a running job (SRP-JOB-017): the slot is free at once; late messages are discarded. Returns whether the job was running. */
  cancelJob(jobId: string, reason: Cancel["reason"], message?: string): boolean {
    const running = this.#jobs.get(jobId);
    if (!running) return this.#ctx.cancelMoved?.(jobId, reason, message) ?? false;
    this.#release(running);
    // An async job's result is not kept past its cancel: nothing of it reaches anyone (SRP-JOB-043).
    running.result?.cutOff("the hub cancelled this async job and discarded its result; not countersigned");
    const now = Date.now();
    this.#cancelled.set(jobId, {
      job: running.job,
      requestHash: running.requestHash,
      at: now,
      nextSeq: running.nextSeq,
      hasher: running.hasher,
      meter: running.meter,
      bounds: running.handle.bounds,
      result: running.result,
    });
    for (const [id, c] of this.#cancelled) {
      if (now - c.at < 120_000 && this.#cancelled.size < 10_000) break;
      this.#cancelled.delete(id);
      this.#ctx.onCancelledEnd(id, "lost");
    }
    this.send({ type: "cancel", jobId, reason, ...(message === undefined ? {} : { message }) });
    return true;
  }

  #release(running: RunningJob): void {
    this.#jobs.delete(running.job.jobId);
    running.result?.release();
    if (running.adopted) this.#ctx.onAdoptedEnded?.(running.job.jobId);
    const n = (this.active.get(running.job.instanceId) ?? 1) - 1;
    if (n <= 0) this.active.delete(running.job.instanceId);
    else this.active.set(running.job.instanceId, n);
    this.#ctx.onLoadChanged?.(this, running.job.instanceId);
  }

  #unknownJob(jobId: string): void {
    this.send({ type: "error", code: "job.unknown", message: `no running job ${jobId} on this session`, retryable: false, jobId });
  }

  #onChunk(chunk: Chunk): void {
    const running = this.#jobs.get(chunk.jobId);
    if (!running) {
      const cancelled = this.#cancelled.get(chunk.jobId);
      if (!cancelled) return this.#unknownJob(chunk.jobId);
      // Discarded, but in order, hashed and counted: a late done is checked against what arrived (SRP-ATT-018).
      if (!cancelled.job.stream || chunk.seq !== cancelled.nextSeq) {
        return this.fail(
          new SrpError(
            "protocol.unexpected_message",
            cancelled.job.stream
              ? `chunk ${chunk.seq} of ${chunk.jobId}; expected ${cancelled.nextSeq}`
              : `chunk for non-stream job ${chunk.jobId}`,
          ),
        );
      }
      cancelled.nextSeq++;
      cancelled.hasher!.add(chunk.data);
      cancelled.meter.add(chunk.data);
      return;
    }
    if (!running.job.stream || chunk.seq !== running.nextSeq) {
      return this.fail(
        new SrpError(
          "protocol.unexpected_message",
          running.job.stream
            ? `chunk ${chunk.seq} of ${chunk.jobId}; expected ${running.nextSeq}`
            : `chunk for non-stream job ${chunk.jobId}`,
        ),
      );
    }
    running.nextSeq++;
    running.hasher!.add(chunk.data);
    running.meter.add(chunk.data);
    running.handle.onChunk(chunk);
  }

  /** The async job a `progress` or `result` is for: running, cancelled (late), or neither (answered `job.unknown`); the session fails on a frame no async job may carry (SRP-JOB-040). */
  #asyncJob(frame: Progress | Result): { result: ResultBuffer; running?: RunningJob } | undefined {
    const running = this.#jobs.get(frame.jobId);
    const cancelled = running ? undefined : this.#cancelled.get(frame.jobId);
    const result = running?.result ?? cancelled?.result;
    if (!this.#ctx.asyncJobs || ((running || cancelled) && !result)) {
      this.fail(new SrpError("protocol.unexpected_message", `${frame.type} for ${frame.jobId}, which is not an async job (SRP-JOB-040)`));
      return undefined;
    }
    if (!result) {
      this.#unknownJob(frame.jobId);
      return undefined;
    }
    return { result, ...(running ? { running } : {}) };
  }

  #onProgress(progress: Progress): void {
    const job = this.#asyncJob(progress);
    // Informational (SRP-JOB-041): a value smaller than the last is ignored; a cancelled job's is not relayed.
    if (!job || progress.progress <= job.result.progress) return;
    job.result.progress = progress.progress;
    job.running?.handle.onProgress?.(progress.progress, progress.message);
  }

  #onResult(part: Result): void {
    const job = this.#asyncJob(part);
    if (!job) return;
    const refused = job.result.append(part.offset, part.data);
    if (!refused) return;
    if (refused.kind === "protocol") return this.fail(new SrpError("protocol.unexpected_message", `${refused.message} (SRP-JOB-042)`));
    // SRP-JOB-042: a result over maxResultBytes: cancelled as superseded, handled as failed with job.result_too_large.
    const running = job.running;
    if (!running) return;
    this.cancelJob(part.jobId, "superseded", refused.message);
    running.handle.onError({
      type: "job_error",
      jobId: part.jobId,
      code: "job.result_too_large",
      message: refused.message,
      retryable: false,
      chunks: 0,
    });
  }

  /**
   * An async job's `done` whose manifest does not match the bytes received (SRP-JOB-043):
   * `receipt.field_mismatch` with the job id, no receipt, nothing billed. Undefined when it
   * matches (or the job is not async).
   */
  #manifestRefusal(done: Done, result: ResultBuffer | undefined): JobError | undefined {
    if (!result) return undefined;
    const problem = result.check(done.response);
    if (!problem) return undefined;
    this.send(errorMessage(new SrpError("receipt.field_mismatch", `${problem}; not countersigned (SRP-JOB-043)`, { jobId: done.jobId })));
    return {
      type: "job_error",
      jobId: done.jobId,
      code: "job.upstream_error",
      message: `the node's result did not match its manifest: ${problem}`,
      retryable: true,
      chunks: 0,
    };
  }

  #onDone(done: Done): void {
    const running = this.#jobs.get(done.jobId);
    if (!running) {
      const cancelled = this.#cancelled.get(done.jobId);
      if (!cancelled) return this.#unknownJob(done.jobId);
      // A late done for a cancelled job still has its receipt verified and countersigned (SRP-JOB-016).
      this.#cancelled.delete(done.jobId);
      // An async job's result is checked first (one cut off at maxResultBytes never matches).
      if (this.#manifestRefusal(done, cancelled.result)) {
        this.#ctx.onCancelledEnd(done.jobId, "error");
        return;
      }
      // A streamed job's response hash is the hub's own, over every chunk before and after the cancel.
      if (!cancelled.job.stream && done.response !== undefined) cancelled.meter.add(done.response);
      this.#settle(cancelled.job, cancelled.requestHash, done, cancelled.hasher?.digest(), {
        relayed: cancelled.meter.measure,
        ...(cancelled.bounds ? { bounds: cancelled.bounds } : {}),
      });
      this.#ctx.onCancelledEnd(done.jobId, "done");
      return;
    }
    if (done.chunks !== running.nextSeq) {
      return this.fail(
        new SrpError("protocol.unexpected_message", `done for ${done.jobId} counts ${done.chunks} chunks; ${running.nextSeq} arrived`),
      );
    }
    this.#release(running);
    if (!running.job.stream && done.response === undefined) {
      // SRP-JOB-009: a non-streamed job's answer is its response; without one there is nothing to bill or relay.
      this.send(
        errorMessage(
          new SrpError(
            "receipt.field_mismatch",
            `done for the non-streamed job ${done.jobId} carries no response (SRP-JOB-009); not countersigned`,
            { jobId: done.jobId },
          ),
        ),
      );
      running.handle.onError({
        type: "job_error",
        jobId: done.jobId,
        code: "job.upstream_error",
        message: "the node ended a non-streamed job without a response",
        retryable: true,
        chunks: 0,
      });
      return;
    }
    const mismatch = this.#manifestRefusal(done, running.result);
    if (mismatch) return running.handle.onError(mismatch);
    if (!running.job.stream) running.meter.add(done.response);
    const bounds = running.result
      ? asyncJobBounds(
          running.result.api,
          running.handle.bounds,
          running.sentAt,
          Date.now(),
          running.result.videoSeconds(done.response as unknown as ResultManifest),
        )
      : running.handle.bounds;
    const { receipt, settled, error } = this.#settle(running.job, running.requestHash, done, running.hasher?.digest(), {
      relayed: running.meter.measure,
      ...(bounds ? { bounds } : {}),
    });
    running.handle.onDone(done, receipt, settled, receipt ? undefined : error, running.result?.bytes());
  }

  #settle(
    job: Job,
    requestHash: string,
    done: Done,
    streamHash: string | undefined,
    plausibility: { relayed: RelayedOutput; bounds?: UsageBounds },
  ): { receipt?: Receipt; settled?: Promise<unknown>; error?: SrpError } {
    let hash = streamHash;
    if (hash === undefined) {
      hash = done.response === undefined ? "" : responseHash(done.response);
    }
    const { receipt, error, settled } = this.#ctx.settleReceipt(this, job, done, requestHash, hash, plausibility);
    if (error) this.send(errorMessage(error.jobId === undefined ? new SrpError(error.code, error.message, { jobId: job.jobId }) : error));
    // The node gets its copy of the countersignature once the receipt is stored, after the consumer's answer.
    if (receipt) {
      const send = () => setImmediate(() => this.send({ type: "receipt", receipt }));
      if (settled) settled.then(send, send);
      else send();
    }
    return { ...(receipt ? { receipt } : {}), ...(settled ? { settled } : {}), ...(error ? { error } : {}) };
  }

  #onJobError(error: JobError): void {
    const running = this.#jobs.get(error.jobId);
    if (!running) {
      // A cancelled job ends here: a later done for it is not settled (SRP-JOB-012, at most one end).
      if (this.#cancelled.delete(error.jobId)) this.#ctx.onCancelledEnd(error.jobId, "error");
      else this.#unknownJob(error.jobId);
      return;
    }
    if (error.chunks !== running.nextSeq) {
      return this.fail(
        new SrpError(
          "protocol.unexpected_message",
          `job_error for ${error.jobId} counts ${error.chunks} chunks; ${running.nextSeq} arrived`,
        ),
      );
    }
    this.#release(running);
    running.handle.onError(error);
  }

  #loseJobs(reason: string): void {
    const jobs = [...this.#jobs.values()].filter((j) => !this.#suspended(j));
    this.#jobs.clear();
    for (const j of jobs) {
      j.result?.release();
      if (j.adopted) this.#ctx.onAdoptedEnded?.(j.job.jobId);
    }
    const busy = [...this.active.keys()];
    this.active.clear();
    for (const id of busy) this.#ctx.onLoadChanged?.(this, id);
    for (const j of jobs) j.handle.onLost(reason);
  }

  /** Whether a running job was kept for its node's next session (an async job under a resume window, SRP-JOB-045). */
  #suspended(j: RunningJob): boolean {
    if (!j.result || this.#noResume || this.nodeId === undefined || !this.#ctx.suspendJob) return false;
    if (j.adopted) this.#ctx.onAdoptedEnded?.(j.job.jobId);
    const { job, requestHash, handle, meter, result, sentAt } = j;
    return this.#ctx.suspendJob(this, { binding: this.bindingKey, job, requestHash, handle, meter, result, sentAt });
  }

  #onClose(code: number, reason: string): void {
    const wasOpen = this.state !== "closed";
    this.state = "closed";
    clearTimeout(this.#timer);
    clearInterval(this.#timer);
    this.#loseJobs(`session closed (${code}${reason ? ` ${reason}` : ""})`);
    // Cancelled jobs that never ended can no longer end (SRP-JOB-015).
    for (const id of this.#cancelled.keys()) this.#ctx.onCancelledEnd(id, "lost");
    this.#cancelled.clear();
    if (wasOpen || this.nodeId !== undefined) this.#ctx.onClosed(this, code, reason);
  }
}
