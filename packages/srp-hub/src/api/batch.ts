/**
 * Batches: `POST /v1/batch` takes up to 50 mixed requests to every non-streamed JSON surface
 * (chat completions, Messages, Responses, legacy completions, embeddings, image generations,
 * speech, transcriptions; not videos nor runs, which are async jobs themselves) in one call,
 * admits them with one atomic reservation of every item's worst case (or one x402 payment
 * of their sum), and runs them asynchronously at a 10 % discount; `GET /v1/jobs/{id}` tells
 * how far they are, with each item's answer and cost. A failed item is never billed: its reservation goes back.
 * Batches are kept in a {@link BatchStore} while they run and for a configurable time
 * after: this process's memory, or the SQL store every process of a hub shares (then any
 * process answers `GET /v1/jobs/{id}`, and the batches of a process that stopped are ended
 * by another's reconcile).
 */
import { StateWriter } from "./state-writer.js";
import { admitKeyRate, estimatedTokens, keyBudgetError, modelNotAllowed, rateLimitError } from "./key-admission.js";
import { hasRateLimits } from "../keys/policy.js";
import type { ReserveKey } from "../ledger/ledger.js";
import { formatAmount, formatUsdc, randomBytes, SrpError, toBase64Url } from "@srp/core";
import { BATCH_ENDPOINTS, BatchRequest, checkConsumerBody, type BatchObject } from "@srp/core/schema";
import { authenticate, errorResponse, readJsonObject } from "./http.js";
import { planChat } from "./openai.js";
import { planMessages } from "./anthropic.js";
import { planCompletions } from "./completions.js";
import { audioSecondsBound, planEmbeddings, planImages, planSpeech, planTranscription } from "./modalities.js";
import { planResponses } from "./responses.js";
import { admissionMaximum, admitPayment, payer, runPlan, type Plan, type ConsumerApiContext } from "./serve.js";
import type { PaidResource } from "../payments/x402-policy.js";
import type { Admission } from "../payments/x402-flow.js";
import { endBatch, MemoryBatchStore, type BatchRecord, type BatchStore } from "./batch-store.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The numbers of batches: 50 items and a 10 % discount (SRP-CON-012, SRP-CON-013), results kept 24 hours by default. */
export const BATCH_LIMITS = Object.freeze({
  /** Items in one batch. */
  maxItems: 50,
  /** Discount on every item's charge, basis points (10 %). */
  discountBps: 1000,
  /** Items of one batch running at once. */
  concurrency: 4,
  /** How long a finished batch's results are kept, ms (24 h). */
  retentionMs: 24 * 3_600_000,
  /** Batches one account may have kept (running or finished and not yet forgotten). */
  maxKeptPerAccount: 100,
  /** Batches the hub keeps in all. */
  maxKept: 10_000,
});

/**
 * A Responses item: planned as `POST /v1/responses` would plan it, but never stored and never
 * continuing a stored turn. It runs later, so `previous_response_id` is refused (the
 * conversation is sent as `input`) and `store` is false whatever the body says.
 */
function planResponsesItem(body: Json, ctx: ConsumerApiContext, accountId: string): Promise<Plan | SrpError> {
  if (body.previous_response_id !== undefined && body.previous_response_id !== null)
    return Promise.resolve(
      new SrpError(
        "api.invalid_body",
        "a batch item does not continue a stored response (`previous_response_id`): it runs later; send the conversation as `input`",
      ),
    );
  return planResponses({ ...body, store: false }, ctx, accountId);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A transcription item: its body is the form's fields as JSON, the file as `{filename,
 * content_type, data}` with its bytes in base64. It becomes the body the multipart reader
 * would have made (`readTranscriptionForm`): the file's size and its seconds bound
 * ({@link audioSecondsBound} of the decoded bytes), at most the form reader's limit (the
 * hub's body limit less base64's third), a numeric `temperature` as the form's string.
 */
function planTranscriptionItem(body: Json, ctx: ConsumerApiContext): Plan | SrpError {
  const file = body.file;
  if (!isObject(file) || typeof file.data !== "string")
    return new SrpError("api.invalid_body", "`file` is `{filename, content_type, data}`, the audio's bytes in base64 in `data`");
  if (!BASE64.test(file.data)) return new SrpError("api.invalid_body", "`file.data` is not base64");
  const audio = Buffer.from(file.data, "base64");
  const limit = Math.floor((ctx.maxBodyBytes * 3) / 4);
  if (audio.length > limit)
    return new SrpError("api.body_too_large", `the audio file is ${audio.length} bytes; the most this hub takes is ${limit}`);
  const form: Json = {
    ...body,
    file: {
      filename: typeof file.filename === "string" ? file.filename : "audio",
      content_type: typeof file.content_type === "string" ? file.content_type : "application/octet-stream",
      data: file.data,
      bytes: audio.length,
      seconds_bound: audioSecondsBound(audio),
    },
  };
  if (typeof body.temperature === "number") form.temperature = String(body.temperature);
  return planTranscription(form);
}

/** How a batch item is planned: its body, the hub's context and the paying account ("" for an x402 payer, as at admission). */
type ItemPlanner = (body: Json, ctx: ConsumerApiContext, accountId: string) => Plan | SrpError | Promise<Plan | SrpError>;

/** The endpoints a batch item may call, and how each is planned. */
const PLANNERS: Readonly<Record<(typeof BATCH_ENDPOINTS)[number], ItemPlanner>> = {
  "/v1/chat/completions": (body) => planChat(body),
  "/v1/messages": (body, ctx) => planMessages(body, ctx),
  "/v1/responses": planResponsesItem,
  "/v1/completions": (body, ctx) => planCompletions(body, ctx),
  "/v1/embeddings": (body) => planEmbeddings(body),
  "/v1/images/generations": (body) => planImages(body),
  "/v1/audio/speech": (body) => planSpeech(body),
  "/v1/audio/transcriptions": planTranscriptionItem,
};

/** State of a batch or of one item. */
export type BatchStatus = BatchObject["status"];

/** One item of a batch as `GET /v1/jobs/{id}` shows it. */
export type BatchItemView = BatchObject["items"][number];

/** A batch as `GET /v1/jobs/{id}` shows it (the `BatchObject` schema of `@srp/core`). */
export type BatchView = BatchObject;

/** Where batches are created (`POST`). */
export const BATCH_PATH = "/v1/batch";

/** The batch as an x402 resource. */
export function batchResource(url: string): PaidResource {
  return {
    url,
    description:
      "A batch of up to 50 mixed requests (chat completions, Messages, Responses, legacy completions, embeddings, image generations, speech, transcriptions with the file in base64), run asynchronously at a 10 % discount. The amount is the sum of the items' maximum costs; what they do not use stays with the paying wallet as prepaid balance.",
    mimeType: "application/json",
    method: "POST",
    example: {
      requests: [
        {
          custom_id: "a",
          url: "/v1/chat/completions",
          body: { model: "llama3.1:8b", messages: [{ role: "user", content: "Hello" }], max_tokens: 64 },
        },
      ],
    },
  };
}

/** A ledger that reserves a batch's items at once (such as a `SqlStore`'s). */
type BatchLedger = NonNullable<ConsumerApiContext["ledger"]> & Required<Pick<NonNullable<ConsumerApiContext["ledger"]>, "reserveMany">>;

function batchLedger(ledger: ConsumerApiContext["ledger"]): ledger is BatchLedger {
  return ledger?.reserveMany !== undefined;
}

/** One planned item of a batch: its plan, the endpoint it was sent to, its custom id and its worst case (atomic units). */
export interface PlannedItem {
  plan: Plan;
  url: string;
  customId: string | null;
  max: bigint;
}

/**
 * Plans a batch's items. The schema bounds the items (1 to 50), their urls, methods and
 * custom ids; what it cannot say is checked here: custom ids are unique, items do not
 * stream and name one model (no fallback `models`), each plans under its endpoint and is
 * served by some online provider. The first problem refuses the batch, naming its item.
 * `accountId` is the paying account's ("" for an x402 payer): a Responses item's
 * `item_reference`s are resolved with it, as `POST /v1/responses` would.
 */
export async function planItems(
  ctx: ConsumerApiContext,
  items: BatchRequest["requests"],
  accountId: string,
): Promise<PlannedItem[] | SrpError> {
  const plans: PlannedItem[] = [];
  const ids = new Set<string>();
  for (const [i, item] of items.entries()) {
    const at = `requests[${i}]`;
    if (item.custom_id !== undefined && ids.has(item.custom_id)) return new SrpError("api.invalid_body", `${at}.custom_id is not unique`);
    const itemBody = item.body as Json;
    if (itemBody.stream === true) return new SrpError("api.invalid_body", `${at}: batch items do not stream`);
    if (itemBody.models !== undefined)
      return new SrpError("api.invalid_body", `${at}: a batch item names one model; \`models\` (fallbacks) is not taken in a batch`);
    const plan = await PLANNERS[item.url](itemBody, ctx, accountId);
    if (plan instanceof SrpError) return new SrpError(plan.code, `${at}: ${plan.message}`, plan.details ? { details: plan.details } : {});
    const max = admissionMaximum(ctx.router, plan)?.cost;
    if (max === undefined) return new SrpError("job.unknown_model", `${at}: model ${plan.model} is not served by any online provider`);
    if (typeof item.custom_id === "string") ids.add(item.custom_id);
    plans.push({ plan, url: item.url, customId: typeof item.custom_id === "string" ? item.custom_id : null, max });
  }
  return plans;
}

/** What a batch reserves at admission (and `POST /v1/estimate` answers): the sum of its items' worst cases. */
export function batchTotal(plans: readonly Pick<PlannedItem, "max">[]): bigint {
  return plans.reduce((a, p) => a + p.max, 0n);
}

/** The refusal of a batch after its x402 payment was admitted: the payment, if any, is finished unserved. */
async function refusal(error: SrpError, admission: Admission | undefined): Promise<Response> {
  const refused = errorResponse(error);
  if (admission) refused.headers.set(admission.responseHeader, await admission.finish(false));
  return refused;
}

/** A batch as admitted: queued, `total` reserved at `discountBps`, nothing charged, every item queued. */
function queuedView(id: string, plans: readonly PlannedItem[], total: bigint, discountBps: number): BatchView {
  return {
    id,
    object: "srp.batch",
    status: "queued",
    created_at: Math.floor(Date.now() / 1000),
    completed_at: null,
    expires_at: null,
    discount_bps: discountBps,
    reserved_units: formatAmount(total),
    charged_units: "0",
    charged: formatUsdc(0n),
    counts: { total: plans.length, queued: plans.length, running: 0, completed: 0, failed: 0 },
    items: plans.map((p, index) => ({
      index,
      custom_id: p.customId,
      url: p.url,
      status: "queued",
      status_code: null,
      response: null,
      cost: formatUsdc(0n),
      cost_units: "0",
      receipt_id: null,
    })),
  };
}

/** How a hub runs and keeps batches (`HubOptions.batches`). */
export interface BatchOptions {
  /** How long a finished batch's results are kept, ms; default 24 h. */
  retentionMs?: number;
  /** Items of one batch running at once; default 4. */
  concurrency?: number;
  /** Batches one account may have kept (running, or finished within the retention time); default 100. */
  maxKeptPerAccount?: number;
  /** Batches kept in all; default 10 000. */
  maxKept?: number;
  /**
   * Where batches are kept; default the `batches` of the hub's `storage` (a `SqlStore`'s is
   * shared by every hub process on its database), else this process's memory.
   */
  store?: BatchStore;
}

/** How often a hub ends the batches of hub processes that stopped (shared databases). */
const RECONCILE_INTERVAL_MS = 15_000;

/** The hub's batches: admission, asynchronous running and the results store. */
export class Batches {
  readonly #store: BatchStore;
  readonly #ctx: ConsumerApiContext;
  readonly #retentionMs: number;
  readonly #concurrency: number;
  readonly #maxPerAccount: number;
  readonly #maxKept: number;
  readonly #timers: ReturnType<typeof setInterval>[];
  /** Aborts the items in flight (a hub that stops before they end). */
  readonly #stop = new AbortController();
  /** No new items start (the hub is closing). */
  #stopping = false;
  readonly #running = new Set<Promise<void>>();

  constructor(ctx: ConsumerApiContext, options: BatchOptions = {}) {
    this.#ctx = ctx;
    this.#store = options.store ?? new MemoryBatchStore();
    this.#retentionMs = options.retentionMs ?? BATCH_LIMITS.retentionMs;
    this.#concurrency = options.concurrency ?? BATCH_LIMITS.concurrency;
    this.#maxPerAccount = options.maxKeptPerAccount ?? BATCH_LIMITS.maxKeptPerAccount;
    this.#maxKept = options.maxKept ?? BATCH_LIMITS.maxKept;
    // Finished results are forgotten on time whether or not anyone asks for them.
    this.#timers = [setInterval(() => this.#sweep(), Math.min(60_000, Math.max(1000, this.#retentionMs)))];
    if (this.#store.reconcile) {
      // At start (once the ledger has reconciled: on SQLite, every other holder's batches),
      // then every 15 s (processes not seen for a minute): end the batches of processes that stopped.
      void ctx.ledgerReady.then(() => this.#reconcile(undefined));
      this.#timers.push(setInterval(() => void this.#reconcile(false), RECONCILE_INTERVAL_MS));
    }
    for (const t of this.#timers) t.unref();
  }

  /** Ends the batches of hub processes that stopped (see {@link BatchStore.reconcile}). */
  async #reconcile(all: boolean | undefined): Promise<void> {
    if (this.#stopping) return;
    try {
      await this.#store.reconcile?.({ retentionMs: this.#retentionMs, ...(all === undefined ? {} : { all }) });
    } catch (e) {
      this.#ctx.storageError("reconcile batches", e);
    }
  }

  /** Whether `accountId` may keep one more batch (and the hub one more in all). */
  async #roomFor(accountId: string): Promise<SrpError | undefined> {
    let kept;
    try {
      kept = await this.#store.kept(accountId);
    } catch (e) {
      this.#ctx.storageError("count batches", e);
      return unavailable();
    }
    if (kept.total >= this.#maxKept)
      return new SrpError("api.rate_limited", "this hub keeps as many batches as it can; retry when older results have expired", {
        details: { retryAfterMs: 60_000 },
      });
    if (kept.account >= this.#maxPerAccount)
      return new SrpError(
        "api.rate_limited",
        `this account has ${kept.account} batches kept (running, or finished within ${Math.round(this.#retentionMs / 60_000)} minutes); the most is ${this.#maxPerAccount}`,
        { details: { retryAfterMs: 60_000 } },
      );
    return undefined;
  }

  /** `POST /v1/batch`: admits a batch (one reservation of every item's worst case, or one x402 payment of their sum) and starts it. */
  async create(request: Request): Promise<Response> {
    const ctx = this.#ctx;
    const ledger = ctx.ledger;
    if (!batchLedger(ledger))
      return errorResponse(
        new SrpError("api.not_found", "this hub runs no batches (it needs a ledger that reserves batches, such as a SqlStore)"),
      );
    const who = await payer(request, ctx);
    if (who instanceof SrpError) return errorResponse(who);
    const payments = who.payments;
    let accountId = who.accountId;
    const body = await readJsonObject(request, ctx.maxBodyBytes);
    if (body instanceof SrpError) return errorResponse(body);
    const full = accountId !== "" ? await this.#roomFor(accountId) : undefined;
    if (full) return errorResponse(full);
    const problem = checkConsumerBody(BatchRequest, body);
    if (problem) return errorResponse(new SrpError("api.invalid_body", problem));
    const plans = await planItems(ctx, (body as unknown as BatchRequest).requests, accountId);
    if (plans instanceof SrpError) return errorResponse(plans);
    const total = batchTotal(plans);
    let admission: Admission | undefined;
    if (payments) {
      // A batch is always settled before it runs (its items run later, on money that has arrived).
      const admitted = await admitPayment(request, ctx, payments, total, batchResource(request.url), errorResponse, "before");
      if (admitted instanceof Response) return admitted;
      accountId = admitted.accountId;
      admission = admitted;
    }
    // The key's allowed models (SRP-CON-086), for every item.
    const disallowed = who.key ? modelNotAllowed(who.key.policy, [...new Set(plans.map((p) => p.plan.model))]) : undefined;
    if (disallowed) return errorResponse(disallowed);
    // A batch is one request of the key's rate limits, with every item's tokens; it holds no slot while it runs (SRP-CON-087).
    if (who.key && hasRateLimits(who.key.policy) && ctx.keyLimits) {
      const estimate = plans.reduce((a, p) => a + estimatedTokens(p.plan), 0);
      const limited = await admitKeyRate(ctx.keyLimits, who.key, estimate);
      if (!limited.ok) return errorResponse(rateLimitError(limited), limited.headers);
      limited.release(estimate);
    }
    const key = who.key ? { keyId: who.key.keyId, budget: who.key.policy.budget } : undefined;
    const reserved = await this.#reserve(ledger, accountId, plans, total, payments !== undefined, key);
    if (reserved instanceof SrpError) return refusal(reserved, admission);
    // The batch is admitted: a payment for it has served its purpose (unused money stays as prepaid balance).
    const paid = admission ? { [admission.responseHeader]: await admission.finish(true) } : {};
    return this.#start({ accountId, keyed: !payments }, plans, total, reserved, paid);
  }

  /**
   * Holds the money of an admitted batch: room for one more batch of an x402 payer (whose
   * account is known only once it has paid), then one atomic reservation of every item's
   * worst case at the batch discount (SRP-CON-012, SRP-CON-013). Else the refusal.
   */
  async #reserve(
    ledger: BatchLedger,
    accountId: string,
    plans: readonly PlannedItem[],
    total: bigint,
    byX402: boolean,
    key: ReserveKey | undefined,
  ): Promise<{ reservationIds: string[]; discountBps: number } | SrpError> {
    const ctx = this.#ctx;
    const full = byX402 ? await this.#roomFor(accountId) : undefined;
    if (full) return full;
    let reserved;
    try {
      await ctx.ledgerReady;
      reserved = await ledger.reserveMany(
        accountId,
        plans.map((p) => p.max),
        BATCH_LIMITS.discountBps,
        key,
      );
    } catch (e) {
      ctx.storageError("reserve a batch", e);
      return new SrpError("billing.unavailable", "the hub's ledger cannot take requests now; retry shortly");
    }
    if (!reserved.ok) {
      if (reserved.keyBudget) return keyBudgetError(reserved.keyBudget, total);
      return new SrpError(
        "billing.insufficient_credits",
        `this batch may cost up to ${formatUsdc(total)} USD (${total} units); the account can spend ${formatUsdc(reserved.available)} USD`,
        {
          details: { required: total.toString(), available: reserved.available.toString() },
        },
      );
    }
    return reserved;
  }

  /**
   * Keeps an admitted batch and starts its items; the answer is the batch as admitted
   * (queued), before any item starts. A batch the store cannot keep does not run: its
   * reservations are released (a payment for it stays as prepaid balance).
   */
  async #start(
    owner: Pick<BatchRecord, "accountId" | "keyed">,
    plans: readonly PlannedItem[],
    total: bigint,
    reserved: { reservationIds: string[]; discountBps: number },
    paid: Record<string, string>,
  ): Promise<Response> {
    const id = `batch_${toBase64Url(randomBytes(16))}`;
    const view = queuedView(id, plans, total, reserved.discountBps);
    const batch: BatchRecord = { view, ...owner, reservationIds: reserved.reservationIds };
    try {
      await this.#store.add(batch);
    } catch (e) {
      this.#ctx.storageError("keep a batch", e);
      for (const r of reserved.reservationIds) await this.#release(r, "the hub could not keep the batch");
      const refused = errorResponse(unavailable());
      for (const [name, value] of Object.entries(paid)) refused.headers.set(name, value);
      return refused;
    }
    for (const p of plans) this.#ctx.noteDemand(p.plan.model);
    const accepted = Response.json(view, { status: 202, headers: { location: `/v1/jobs/${id}`, ...paid } });
    const run = this.#run(
      batch,
      plans.map((p) => p.plan),
    ).finally(() => this.#running.delete(run));
    this.#running.add(run);
    return accepted;
  }

  /** `GET /v1/jobs/{id}`: the batch as its store has it, from whichever process runs it. */
  async get(request: Request, id: string): Promise<Response> {
    let batch: BatchRecord | undefined;
    try {
      batch = await this.#store.get(id);
    } catch (e) {
      this.#ctx.storageError("read a batch", e);
      return errorResponse(new SrpError("internal", "the hub cannot read batches now; retry shortly"));
    }
    if (!batch)
      return errorResponse(
        new SrpError("api.not_found", `no job ${id} (finished jobs are kept for ${Math.round(this.#retentionMs / 60_000)} minutes)`),
      );
    if (batch.keyed) {
      const account = await authenticate(request, this.#ctx.accounts);
      if (account instanceof SrpError) return errorResponse(account);
      if (account.id !== batch.accountId) return errorResponse(new SrpError("api.not_found", `no job ${id} for this account`));
    }
    return Response.json(batch.view);
  }

  /**
   * Starts no more items (the unstarted ones fail and their reservations are released)
   * and waits up to `drainMs` for the items in flight, then aborts them; each batch's last
   * state is written before it resolves.
   */
  async close(drainMs: number): Promise<void> {
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = Promise.all([...this.#running]).then(() => true);
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), drainMs)));
    if (!(await Promise.race([drained, late]))) this.#stop.abort();
    clearTimeout(timer);
    await drained;
  }

  #sweep(): void {
    this.#store.sweep().catch((e: unknown) => this.#ctx.storageError("sweep batches", e));
  }

  #release(reservationId: string | undefined, reason: string): Promise<unknown> {
    if (reservationId === undefined) return Promise.resolve();
    return (this.#ctx.ledger?.release(reservationId, reason) ?? Promise.resolve()).catch((e: unknown) =>
      this.#ctx.storageError(`release ${reservationId}`, e),
    );
  }

  /**
   * Runs a batch's items, `concurrency` at a time, writing its state after each change. When
   * the store refuses a write (another process found this one stopped and ended the batch),
   * no more items start here: that process released their reservations.
   */
  async #run(batch: BatchRecord, plans: Plan[]): Promise<void> {
    const { view, reservationIds: reservations } = batch;
    const writer = new StateWriter(
      () => this.#store.update(view),
      (e) => this.#ctx.storageError(`write batch ${view.id}`, e),
    );
    view.status = "running";
    writer.touch();
    let next = 0;
    let charged = 0n;
    const worker = async () => {
      for (;;) {
        if (writer.lost) return;
        const i = next++;
        if (i >= plans.length) return;
        const item = view.items[i]!;
        if (this.#stopping) {
          await this.#release(reservations[i], "the hub closed before the batch item ran");
          view.counts.queued--;
          this.#finish(
            view,
            item,
            503,
            { error: { message: "the hub closed before this item ran", type: "api_error", param: null, code: "session.shutdown" } },
            false,
          );
          writer.touch();
          continue;
        }
        view.counts.queued--;
        view.counts.running++;
        item.status = "running";
        writer.touch();
        let status = 500;
        let body: Json;
        try {
          const res = await runPlan(this.#ctx, plans[i]!, {
            accountId: batch.accountId,
            reservationId: reservations[i],
            signal: this.#stop.signal,
            timeout: { ms: this.#ctx.requestTimeoutMs, chosen: false },
            error: errorResponse,
            releaseOnCancel: true,
          });
          status = res.status;
          body = await itemAnswer(res);
        } catch (e) {
          body = { error: { message: `the item failed: ${(e as Error).message}`, type: "api_error", param: null, code: "internal" } };
        }
        view.counts.running--;
        const usage = isObject(body.usage) ? body.usage : {};
        const units = status === 200 && typeof usage.cost_units === "string" ? BigInt(usage.cost_units) : 0n;
        charged += units;
        item.cost_units = formatAmount(units);
        item.cost = formatUsdc(units);
        item.receipt_id = status === 200 && typeof usage.receipt_id === "string" ? usage.receipt_id : null;
        view.charged_units = formatAmount(charged);
        view.charged = formatUsdc(charged);
        this.#finish(view, item, status, body, status === 200);
        writer.touch();
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, plans.length) }, worker));
    if (writer.lost) return;
    endBatch(view, Date.now(), this.#retentionMs);
    await writer.flush();
  }

  #finish(view: BatchView, item: BatchItemView, status: number, body: Json, ok: boolean): void {
    item.status_code = status;
    item.response = body;
    item.status = ok ? "completed" : "failed";
    if (ok) view.counts.completed++;
    else view.counts.failed++;
  }
}

/** The usage of an answer that is not JSON, from the headers that carry it: what it cost and its receipt, the characters of speech. */
function headerUsage(headers: Headers): Json {
  const characters = headers.get("x-srp-characters");
  return {
    ...(characters !== null && /^\d+$/.test(characters) ? { characters: Number(characters) } : {}),
    cost: headers.get("x-srp-cost") ?? "0",
    cost_units: headers.get("x-srp-cost-units") ?? "0",
    receipt_id: headers.get("x-srp-receipt"),
  };
}

/**
 * An item's answer as the JSON a batch shows: a JSON answer as it is; any other (speech's
 * audio, a transcription asked for as `text`) as `{object: "srp.audio", content_type, data}`
 * with the bytes in base64, or `{object: "srp.text", content_type, text}` for text, with the
 * `usage` (cost, cost units, receipt id) its headers carry.
 */
async function itemAnswer(res: Response): Promise<Json> {
  const type = res.headers.get("content-type") ?? "";
  if (/^application\/([\w.+-]*\+)?json\b/i.test(type)) return (await res.json()) as Json;
  const bytes = Buffer.from(await res.arrayBuffer());
  const usage = headerUsage(res.headers);
  if (/^text\//i.test(type)) return { object: "srp.text", content_type: type, text: bytes.toString("utf8"), usage };
  return { object: "srp.audio", content_type: type || "application/octet-stream", data: bytes.toString("base64"), usage };
}

/** The refusal when the batch store cannot be reached. */
function unavailable(): SrpError {
  return new SrpError("billing.unavailable", "the hub cannot keep batches now; retry shortly");
}
