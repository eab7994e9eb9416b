/**
 * Async jobs on the consumer side (consumer.md "Async jobs"): a video (`POST /v1/videos`) or
 * a run (`POST /v1/runs`) admitted like any request (its worst case reserved, or an x402
 * payment settled first) is kept in an {@link AsyncJobStore} and answered 202 with its id at
 * once; the job then runs in the background through the relay (failover before its `done`,
 * SRP-JOB-050), its progress written as it rises. When its receipt is countersigned the
 * result's artifacts are kept with the job for the retention time and served by URL
 * (`GET /v1/jobs/{id}/artifacts/{name}`, `GET /v1/videos/{id}/content`); a run's output
 * names them by those URLs. A failed job is never billed: its reservation goes back. A
 * finished job is posted to its webhook, signed (Standard Webhooks).
 */
import { StateWriter } from "./state-writer.js";
import { artifactRanges, formatAmount, formatUsdc, randomBytes, SrpError, toBase64Url } from "@srp/core";
import type { AsyncJobObject, ResultManifest } from "@srp/core/schema";
import type { AccountStore } from "../accounts.js";
import { endJob, jobEnded, MemoryAsyncJobStore, type AsyncJobRecord, type AsyncJobStore, type StoredArtifact } from "./async-job-store.js";
import { isAsyncPlan, type AsyncOutcome, type AsyncPlan } from "./async-surfaces.js";
import { authenticate, errorResponse } from "./http.js";
import { admissionMaximum, runPlan, type AsyncAdmission, type AsyncJobStarter, type ConsumerApiContext } from "./serve.js";
import { deliverWebhook, newWebhookSecret, webhookUrlProblem } from "./webhooks.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The numbers of async jobs. */
export const ASYNC_JOB_DEFAULTS = Object.freeze({
  /** How long a finished job's result is kept, ms (24 h). */
  retentionMs: 24 * 3_600_000,
  /** Jobs one account may have kept (running, or finished and not yet forgotten). */
  maxKeptPerAccount: 100,
  /** Jobs the hub keeps in all. */
  maxKept: 10_000,
  /** Time a video may take from admission to its result, ms (30 min). */
  videoTimeoutMs: 30 * 60_000,
  /** Time a run may take beyond its `max_seconds` (waiting for a slot, starting, sending its result), ms. */
  runMarginMs: 120_000,
  /** How long a failed job is kept (at most the retention), ms (1 h): failures are cheap to cause and keep nothing worth reading. */
  failedRetentionMs: 3_600_000,
});

/** Content types the hub serves inline; any other artifact is served as `application/octet-stream`, as an attachment. */
const INLINE_TYPES = /^(video\/[a-z0-9.+-]+|audio\/[a-z0-9.+-]+|image\/(png|jpeg|webp|gif|avif)|application\/json|text\/plain)$/i;

/**
 * The headers of an artifact's bytes: a node chose its content type, so nothing it sends can
 * run as a page of the hub's origin (no HTML, SVG or script; `nosniff`; a sandboxing CSP).
 */
export function artifactHeaders(contentType: string, name: string, bytes: number, sha256: string | undefined): Record<string, string> {
  const inline = INLINE_TYPES.test(contentType);
  return {
    "content-type": inline ? contentType : "application/octet-stream",
    "content-length": String(bytes),
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; sandbox",
    ...(inline ? {} : { "content-disposition": `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, "_")}"` }),
    ...(sha256 ? { etag: `"${sha256}"` } : {}),
    "cache-control": "private, max-age=3600",
  };
}

/** How a hub runs and keeps async jobs (`HubOptions.asyncJobs`). */
export interface AsyncJobOptions {
  /** How long a finished job's result is kept, ms; default 24 h. */
  retentionMs?: number;
  /** Jobs one account may have kept; default 100. */
  maxKeptPerAccount?: number;
  /** Jobs kept in all; default 10 000. */
  maxKept?: number;
  /** Time a video may take, ms; default 30 minutes. */
  videoTimeoutMs?: number;
  /** Webhooks to `http:` URLs and private or loopback hosts (a hub on a private network, tests); default false. */
  allowPrivateWebhooks?: boolean;
  /** The base URL artifact links are made with; default the hub's public URL, else the creating request's origin. */
  publicUrl?: string;
  /** Where jobs are kept; default the `asyncJobs` of the hub's `storage`, else this process's memory. */
  store?: AsyncJobStore;
}

/** How often a hub ends the jobs of hub processes that stopped (shared databases). */
const RECONCILE_INTERVAL_MS = 15_000;

/** A new job id for a job object. */
function newId(object: AsyncJobObject["object"]): string {
  return `${object === "video" ? "video" : "run"}_${toBase64Url(randomBytes(16))}`;
}

/** A job as admitted: queued, its worst case reserved, nothing charged. */
export function queuedJobView(id: string, plan: AsyncPlan, reserved: bigint, now: number): AsyncJobObject {
  return {
    id,
    object: plan.object,
    model: plan.model,
    status: "queued",
    progress: 0,
    created_at: Math.floor(now / 1000),
    completed_at: null,
    expires_at: null,
    error: null,
    ...plan.shown,
    ...(plan.object === "srp.run" ? { output: null } : {}),
    artifacts: [],
    reserved_units: formatAmount(reserved),
    cost: formatUsdc(0n),
    cost_units: "0",
    receipt_id: null,
    usage: null,
  };
}

/** Where the hub serves one artifact of a job. */
export function artifactUrl(base: string, jobId: string, name: string): string {
  return `${base}/v1/jobs/${encodeURIComponent(jobId)}/artifacts/${encodeURIComponent(name)}`;
}

/** A run's output with every `srp-artifact:<name>` string of a known artifact replaced by its URL (SRP-JOB-044). */
export function linkedOutput(output: unknown, urls: ReadonlyMap<string, string>): unknown {
  if (typeof output === "string") return output.startsWith("srp-artifact:") ? (urls.get(output.slice(13)) ?? output) : output;
  if (Array.isArray(output)) return output.map((v) => linkedOutput(v, urls));
  if (isObject(output)) return Object.fromEntries(Object.entries(output).map(([k, v]) => [k, linkedOutput(v, urls)]));
  return output;
}

/**
 * The job completed: its artifacts cut from the result stream by the manifest (checked
 * against the bytes before the receipt was countersigned, SRP-JOB-043), the view with their
 * URLs, a video's delivered seconds and size, a run's linked output, the billed usage and cost.
 */
export function completedJob(
  view: AsyncJobObject,
  outcome: AsyncOutcome,
  base: string,
  now: number,
  retentionMs: number,
): { view: AsyncJobObject; artifacts: StoredArtifact[] } {
  const manifest = outcome.done.response as unknown as ResultManifest;
  const ranges = artifactRanges(manifest);
  const artifacts = ranges.map((r, i) => ({
    name: r.name,
    contentType: manifest.artifacts[i]!.content_type,
    bytes: outcome.result.subarray(r.start, r.end),
  }));
  const urls = new Map(manifest.artifacts.map((a) => [a.name, artifactUrl(base, view.id, a.name)]));
  const out: AsyncJobObject = {
    ...view,
    model: outcome.job.model,
    artifacts: manifest.artifacts.map((a) => ({ ...a, url: urls.get(a.name)! })),
    usage: { seconds: outcome.done.usage.seconds ?? 0, runs: outcome.done.usage.runs ?? 0 },
    cost: outcome.ext.cost,
    cost_units: outcome.ext.cost_units,
    receipt_id: outcome.ext.receipt_id,
  };
  if (view.object === "video" && manifest.video) Object.assign(out, { seconds: manifest.video.seconds, size: manifest.video.size });
  if (view.object === "srp.run") out.output = linkedOutput(manifest.output, urls);
  endJob(out, now, retentionMs, { ok: true });
  return { view: out, artifacts };
}

/** The error of a failed job from the relay's error answer. */
async function failureOf(response: Response): Promise<{ code: string; message: string }> {
  try {
    const body = (await response.json()) as Json;
    const e = isObject(body.error) ? body.error : {};
    return { code: String(e.code ?? "job.upstream_error"), message: String(e.message ?? `the job failed (${response.status})`) };
  } catch {
    return { code: "job.upstream_error", message: `the job failed (${response.status})` };
  }
}

/** The hub's async jobs: admission after the reservation, background running, the results store and its HTTP answers. */
export class AsyncJobs implements AsyncJobStarter {
  readonly #ctx: ConsumerApiContext;
  readonly #accounts: AccountStore;
  readonly #store: AsyncJobStore;
  readonly #options: Required<Omit<AsyncJobOptions, "store" | "publicUrl">> & Pick<AsyncJobOptions, "publicUrl">;
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  /** The jobs this process runs: what cancels each. */
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  /** Stops webhook retries when the hub closes. */
  readonly #closing = new AbortController();

  constructor(ctx: ConsumerApiContext, options: AsyncJobOptions = {}) {
    this.#ctx = ctx;
    this.#accounts = ctx.accounts;
    this.#store = options.store ?? new MemoryAsyncJobStore();
    this.#options = {
      retentionMs: options.retentionMs ?? ASYNC_JOB_DEFAULTS.retentionMs,
      maxKeptPerAccount: options.maxKeptPerAccount ?? ASYNC_JOB_DEFAULTS.maxKeptPerAccount,
      maxKept: options.maxKept ?? ASYNC_JOB_DEFAULTS.maxKept,
      videoTimeoutMs: options.videoTimeoutMs ?? ASYNC_JOB_DEFAULTS.videoTimeoutMs,
      allowPrivateWebhooks: options.allowPrivateWebhooks ?? false,
      ...(options.publicUrl ? { publicUrl: options.publicUrl.replace(/\/$/, "") } : {}),
    };
    this.#timers.push(setInterval(() => this.#sweep(), Math.min(60_000, Math.max(1000, this.#options.retentionMs))));
    if (this.#store.reconcile) {
      void ctx.ledgerReady.then(() => this.#reconcile(undefined));
      this.#timers.push(setInterval(() => void this.#reconcile(false), RECONCILE_INTERVAL_MS));
    }
    for (const t of this.#timers) t.unref();
  }

  /** What is wrong with a webhook URL under this hub's rule, or undefined. */
  webhookProblem(url: string): string | undefined {
    return webhookUrlProblem(url, this.#options.allowPrivateWebhooks);
  }

  async #reconcile(all: boolean | undefined): Promise<void> {
    try {
      await this.#store.reconcile?.({ retentionMs: this.#options.retentionMs, ...(all === undefined ? {} : { all }) });
    } catch (e) {
      this.#ctx.storageError("reconcile async jobs", e);
    }
  }

  #sweep(): void {
    this.#store.sweep().catch((e: unknown) => this.#ctx.storageError("sweep async jobs", e));
  }

  /** Whether `accountId` may keep one more job (and the hub one more in all). */
  async #roomFor(accountId: string): Promise<SrpError | undefined> {
    const kept = await this.#store.kept(accountId);
    if (kept.total >= this.#options.maxKept)
      return new SrpError("api.rate_limited", "this hub keeps as many async jobs as it can; retry when older results have expired", {
        details: { retryAfterMs: 60_000 },
      });
    if (kept.account >= this.#options.maxKeptPerAccount)
      return new SrpError(
        "api.rate_limited",
        `this account has ${kept.account} async jobs kept (running, or finished within ${Math.round(this.#options.retentionMs / 60_000)} minutes); the most is ${this.#options.maxKeptPerAccount}`,
        { details: { retryAfterMs: 60_000 } },
      );
    return undefined;
  }

  #release(reservationId: string | undefined, reason: string): Promise<unknown> {
    if (reservationId === undefined) return Promise.resolve();
    return (this.#ctx.ledger?.release(reservationId, reason) ?? Promise.resolve()).catch((e: unknown) =>
      this.#ctx.storageError(`release ${reservationId}`, e),
    );
  }

  /**
   * Keeps an admitted job and starts it; the answer is the job as admitted (queued, 202).
   * A job the hub cannot keep (its caps, its store) does not run: its reservation is released
   * (a payment for it stays as prepaid balance).
   */
  async start(a: AsyncAdmission): Promise<Response> {
    const plan = a.plan;
    if (!isAsyncPlan(plan)) throw new TypeError("an async surface planned a request that is not async");
    // A hub that bills nobody reserved nothing: a model no instance serves is still refused before a job is kept (SRP-CON-088).
    if (a.reserved === undefined && admissionMaximum(this.#ctx.router, plan, a.models) === undefined)
      return errorResponse(
        new SrpError("job.unknown_model", `model ${a.models?.join(", ") ?? plan.model} is not served by any online provider`),
        a.paid,
      );
    const refuse = async (error: SrpError) => {
      await this.#release(a.reservationId, "the hub could not keep the async job");
      return errorResponse(error, a.paid);
    };
    const now = Date.now();
    const id = newId(plan.object);
    const view = queuedJobView(id, plan, a.reserved ?? 0n, now);
    const secret = plan.webhookUrl ? newWebhookSecret() : undefined;
    const record: AsyncJobRecord = {
      view,
      accountId: a.accountId,
      keyed: a.keyed,
      reservationId: a.reservationId ?? null,
      webhook: plan.webhookUrl && secret ? { url: plan.webhookUrl, secret } : null,
    };
    try {
      const full = await this.#roomFor(a.accountId);
      if (full) return refuse(full);
      await this.#store.add(record, now);
    } catch (e) {
      this.#ctx.storageError("keep an async job", e);
      return refuse(new SrpError("billing.unavailable", "the hub cannot keep async jobs now; retry shortly"));
    }
    const base = this.#options.publicUrl ?? new URL(a.request.url).origin;
    // The answer is the job as admitted, before it starts running.
    const accepted = Response.json(
      { ...view, ...(secret ? { webhook_secret: secret } : {}) },
      { status: 202, headers: { location: `/v1/jobs/${id}`, ...a.paid } },
    );
    const controller = new AbortController();
    const done = this.#run(record, plan, a, controller, base).finally(() => this.#running.delete(id));
    this.#running.set(id, { controller, done });
    return accepted;
  }

  /** Runs one job to its end and keeps the end (with the artifacts), then posts the webhook. */
  async #run(record: AsyncJobRecord, plan: AsyncPlan, a: AsyncAdmission, controller: AbortController, base: string): Promise<void> {
    let view = record.view;
    const writer = new StateWriter(
      () => this.#store.update(view),
      (e) => this.#ctx.storageError(`write async job ${view.id}`, e),
    );
    view.status = "in_progress";
    writer.touch();
    const timeoutMs = plan.object === "video" ? this.#options.videoTimeoutMs : plan.seconds * 1000 + ASYNC_JOB_DEFAULTS.runMarginMs;
    let response: Response;
    try {
      response = await runPlan(this.#ctx, plan, {
        accountId: a.accountId,
        reservationId: a.reservationId,
        signal: controller.signal,
        timeout: { ms: timeoutMs, chosen: false },
        error: errorResponse,
        // A job the hub cancels (deadline, deletion, closing) is never billed: its reservation goes back at once.
        releaseOnCancel: true,
        ...(a.models ? { models: a.models } : {}),
        ...(a.reserved !== undefined ? { reserved: a.reserved } : {}),
        ...(a.note ? { note: a.note } : {}),
        onProgress: (_job, progress) => {
          // 100 only once the result is kept (SRP-JOB-041 lets a node send 100 before its done).
          const p = Math.min(99, progress);
          if (p > view.progress) {
            view.progress = p;
            writer.touch();
          }
        },
      });
    } catch (e) {
      response = errorResponse(new SrpError("internal", `the job failed: ${(e as Error).message}`));
    }
    await writer.settled();
    const now = Date.now();
    let artifacts: StoredArtifact[] | undefined;
    if (plan.outcome) {
      const completed = completedJob(view, plan.outcome, base, now, this.#options.retentionMs);
      view = completed.view;
      artifacts = completed.artifacts;
    } else {
      const failure = controller.signal.aborted
        ? { code: "job.cancelled", message: "the job was cancelled before it ended; it was not billed" }
        : await failureOf(response);
      endJob(view, now, Math.min(this.#options.retentionMs, ASYNC_JOB_DEFAULTS.failedRetentionMs), { ok: false, ...failure });
    }
    if (!(await this.#keepEnd(view, artifacts, now))) return;
    if (record.webhook) void this.#notify(record.webhook, view);
  }

  /** Writes a job's end, retrying a store that fails (a billed job's result must not be lost to a passing error); whether it was written. */
  async #keepEnd(view: AsyncJobObject, artifacts: StoredArtifact[] | undefined, now: number): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#store.update(view, artifacts, now);
      } catch (e) {
        this.#ctx.storageError(`keep the result of async job ${view.id}`, e);
        if (attempt >= 4) return false;
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      }
    }
  }

  /** Posts a finished job to its webhook (never throws). */
  async #notify(webhook: NonNullable<AsyncJobRecord["webhook"]>, view: AsyncJobObject): Promise<void> {
    const kind = view.object === "video" ? "video" : "run";
    await deliverWebhook(
      {
        url: webhook.url,
        secret: webhook.secret,
        id: `msg_${view.id}`,
        payload: { type: `${kind}.${view.status}`, timestamp: Math.floor(Date.now() / 1000), data: view },
      },
      this.#closing.signal,
    );
  }

  /** A kept job the request may read: any job paid by x402 (read by its id), a keyed one only by its account's keys. */
  async #readable(request: Request, id: string): Promise<AsyncJobRecord | Response> {
    let record: AsyncJobRecord | undefined;
    try {
      record = await this.#store.get(id);
    } catch (e) {
      this.#ctx.storageError("read an async job", e);
      return errorResponse(new SrpError("internal", "the hub cannot read async jobs now; retry shortly"));
    }
    const missing = () =>
      errorResponse(
        new SrpError(
          "api.not_found",
          `no job ${id} (finished jobs are kept for ${Math.round(this.#options.retentionMs / 60_000)} minutes)`,
        ),
      );
    if (!record) return missing();
    if (record.keyed) {
      const account = await authenticate(request, this.#accounts);
      if (account instanceof SrpError) return errorResponse(account);
      if (account.id !== record.accountId) return missing();
    }
    return record;
  }

  /** `GET /v1/jobs/{id}` (and `GET /v1/videos/{id}`): the job as its store has it. */
  async get(request: Request, id: string): Promise<Response> {
    const record = await this.#readable(request, id);
    return record instanceof Response ? record : Response.json(record.view);
  }

  /** `GET /v1/jobs/{id}/artifacts/{name}`: one artifact's bytes, once the job has completed. */
  async artifact(request: Request, id: string, name: string): Promise<Response> {
    const record = await this.#readable(request, id);
    if (record instanceof Response) return record;
    if (record.view.status !== "completed")
      return errorResponse(
        new SrpError("api.invalid_body", `job ${id} is ${record.view.status}; its result is served once it has completed`),
      );
    let artifact: StoredArtifact | undefined;
    try {
      artifact = await this.#store.artifact(id, name);
    } catch (e) {
      this.#ctx.storageError("read an artifact", e);
      return errorResponse(new SrpError("internal", "the hub cannot read results now; retry shortly"));
    }
    if (!artifact) return errorResponse(new SrpError("api.not_found", `job ${id} has no artifact ${name}`));
    const listed = record.view.artifacts.find((a) => a.name === name);
    return new Response(artifact.bytes, { headers: artifactHeaders(artifact.contentType, name, artifact.bytes.length, listed?.sha256) });
  }

  /** `GET /v1/videos/{id}/content?variant=video|thumbnail|spritesheet` (OpenAI's shape): the artifact of that name. */
  content(request: Request, id: string): Promise<Response> {
    const variant = new URL(request.url).searchParams.get("variant") ?? "video";
    return this.artifact(request, id, variant);
  }

  /** `GET /v1/videos`: the account's kept videos, newest first (`limit`, `after`), in OpenAI's list shape. */
  async listVideos(request: Request): Promise<Response> {
    const account = await authenticate(request, this.#accounts);
    if (account instanceof SrpError) return errorResponse(account);
    const params = new URL(request.url).searchParams;
    const limit = Math.max(1, Math.min(Number(params.get("limit") ?? 20) || 20, 100));
    const after = params.get("after") ?? undefined;
    const data = await this.#store.list(account.id, "video", limit + 1, after);
    const page = data.slice(0, limit);
    if (params.get("order") === "asc") page.reverse();
    return Response.json({
      object: "list",
      data: page,
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
      has_more: data.length > limit,
    });
  }

  /**
   * `DELETE /v1/videos/{id}` (and `/v1/jobs/{id}`): a running job is cancelled first (never
   * billed: its reservation goes back), then the job and its artifacts are forgotten.
   */
  async remove(request: Request, id: string): Promise<Response> {
    const record = await this.#readable(request, id);
    if (record instanceof Response) return record;
    const running = this.#running.get(id);
    if (running) {
      running.controller.abort();
      await running.done;
    } else if (!jobEnded(record.view))
      return errorResponse(new SrpError("api.invalid_body", `job ${id} runs on another hub process; delete it there or once it has ended`));
    await this.#store.remove(id);
    return Response.json({ id, object: record.view.object === "video" ? "video.deleted" : "srp.run.deleted", deleted: true });
  }

  /** Waits up to `drainMs` for the jobs in flight, then cancels the rest (never billed); each job's end is written before it resolves. */
  async close(drainMs: number): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    const all = () => Promise.all([...this.#running.values()].map((r) => r.done));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), drainMs)));
    if (!(await Promise.race([all().then(() => true), late]))) for (const r of this.#running.values()) r.controller.abort();
    clearTimeout(timer);
    await all();
    this.#closing.abort();
  }
}
