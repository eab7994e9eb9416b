/**
 * The harness's provider node in hub mode: one session with offered instances that answers
 * probes and sends heartbeats, posts consumer requests for its own models, and plays the
 * node's part of each job (chunks, `done` with a signed receipt) while following the
 * receipt position the hub countersigns.
 */
import {
  addToTotals,
  canonicalize,
  formatAmount,
  generateIdentity,
  omitFields,
  receiptCost,
  requestHash,
  responseHash,
  signDetached,
  StreamHasher,
  verifyDetached,
  type Identity,
  type ReceiptPosition,
} from "@srp/core";
import type { Hello, Instance, Job, Receipt, Usage } from "@srp/core/schema";
import { chatChunks, usageOf } from "./answers.js";
import { bodyText, postChat, type ConsumerCall } from "./consumer.js";
import { needKey, openSession, type DiscoveryLike, type HubContext } from "./hub-session.js";
import { hex, isJob } from "./instances.js";
import { ensure, fail, skip } from "./verdict.js";
import type { WirePeer } from "./wire.js";

const sameJson = (a: unknown, b: unknown) => canonicalize(a) === canonicalize(b);

/** Where the hub's OpenAI-compatible surface is, or a skip when it announces none. */
function consumerUrl(ctx: HubContext, doc: DiscoveryLike): string {
  if (doc.consumer) {
    if (!doc.consumer.surfaces.includes("openai.chat.completions")) {
      skip("the discovery document does not list the openai.chat.completions consumer surface; job checks act as a consumer through it");
    }
    return doc.consumer.baseUrl;
  }
  return new URL("/v1", ctx.baseUrl).toString();
}

/** The harness's node: one open session with offered instances, and its receipt position. */
export class HarnessNode {
  position: ReceiptPosition;

  private constructor(
    readonly ctx: HubContext,
    readonly peer: WirePeer,
    readonly hello: Hello,
    readonly identity: Identity,
    readonly consumer: string,
    readonly key: string,
    /** The hub's `welcome` of this session. */
    readonly welcome: Record<string, unknown>,
  ) {
    this.position = welcome.receipts as ReceiptPosition;
  }

  /**
   * Opens a session and offers `instances`, all of which must be accepted. `beforeOffer` sees
   * the welcome first (it may skip the check, for example when the hub announces no async jobs).
   */
  static async open(
    ctx: HubContext,
    instances: Instance[],
    identity: Identity = generateIdentity(),
    beforeOffer?: (welcome: Record<string, unknown>) => void,
  ): Promise<HarnessNode> {
    const key = needKey(ctx);
    const s = await openSession(ctx, identity);
    beforeOffer?.(s.welcome);
    const node = new HarnessNode(ctx, s.peer, s.hello, s.identity, consumerUrl(ctx, s.doc), key, s.welcome);
    // Like any node: answer probes (the instance is healthy) ...
    s.peer.onMessage = (m) => {
      if (m.type === "probe") s.peer.send({ type: "probe_result", probeId: m.probeId, instanceId: m.instanceId, ok: true, latencyMs: 1 });
    };
    const ack = await node.offer(instances);
    const results = ack.results as Array<{ instanceId: string; accepted: boolean; reason?: { code: string; message: string } }>;
    for (const [i, inst] of instances.entries()) {
      const r = results[i];
      if (!r?.accepted)
        fail(
          `the hub refused the harness's instance ${inst.instanceId} (${inst.model}): ${r?.reason ? `${r.reason.code}: ${r.reason.message}` : "no result for it"}`,
        );
    }
    // ... and report load in heartbeats, once now and then within every interval.
    const load = instances.map((i) => ({ instanceId: i.instanceId, active: 0, capacity: i.maxConcurrency }));
    const beat = () => s.peer.send({ type: "heartbeat", ts: Date.now(), load });
    beat();
    const interval = typeof s.welcome.heartbeatIntervalMs === "number" ? s.welcome.heartbeatIntervalMs : 15_000;
    const timer = setInterval(beat, Math.max(250, Math.floor(interval * 0.8)));
    ctx.tracker.cleanups.push(() => clearInterval(timer));
    return node;
  }

  /** Sends an offer and returns the next offer_ack. */
  async offer(instances: Instance[]): Promise<Record<string, unknown>> {
    this.peer.send({ type: "offer", instances });
    return this.peer.take((m) => m.type === "offer_ack", 5000, 0, "offer_ack");
  }

  /** Posts a chat completion as the consumer. */
  chat(body: Record<string, unknown>, headers: Record<string, string> = {}): ConsumerCall {
    return postChat(this.ctx.tracker, this.consumer, this.key, body, headers);
  }

  /**
   * The next job sent to this node; fails early when the hub answers the consumer
   * before sending one.
   */
  async nextJob(call: ConsumerCall, ms = 5000): Promise<Job> {
    const job = this.peer.take(isJob, ms, 0, "a job for the offered instance");
    job.catch(() => {
      /* the race below reports it */
    });
    const answered = call.response.then(
      (res) => ({ res }),
      (err: Error) => ({ err }),
    );
    const first = await Promise.race([job.then((j) => ({ job: j })), answered]);
    if ("job" in first) return first.job as unknown as Job;
    if ("err" in first) fail(`the consumer request failed before any job reached the node: ${first.err.message}`);
    const text = await bodyText(first.res).catch(() => "");
    if (first.res.status === 402 && text.includes("billing.insufficient_credits")) {
      skip(
        `the account under test cannot pay this check's request (402 billing.insufficient_credits: ${text.slice(0, 200)}); add credit to it and run the check again`,
      );
    }
    fail(`the hub answered the consumer ${first.res.status} ${text.slice(0, 300)} without sending a job to the offered instance`);
  }

  /** A receipt for `job`, signed by `signer` (default the node), with `mutate` applied before signing. */
  receipt(
    job: Job,
    usage: Usage,
    hash: string,
    options: { mutate?: (body: Record<string, unknown>) => void; signer?: Identity } = {},
  ): Receipt {
    const cost = receiptCost(usage, job.quote);
    const now = Date.now();
    const body: Record<string, unknown> = {
      v: 1,
      jobId: job.jobId,
      hubId: this.hello.hubId,
      nodeId: this.identity.id,
      instanceId: job.instanceId,
      model: job.model,
      requestHash: requestHash(job.request),
      responseHash: hash,
      usage,
      price: job.quote,
      cost: formatAmount(cost),
      startedAt: now - 5,
      finishedAt: now,
      seq: this.position.lastSeq + 1,
      totals: addToTotals(this.position.totals, usage, cost),
    };
    options.mutate?.(body);
    return { ...body, nodeSig: signDetached("receiptNode", body, options.signer ?? this.identity) } as Receipt;
  }

  /** Sends chunks of `job` from `seq` on. */
  chunks(job: Job, datas: Record<string, unknown>[], seq = 0): void {
    datas.forEach((data, i) => this.peer.send({ type: "chunk", jobId: job.jobId, seq: seq + i, data }));
  }

  /** Ends a streamed `job` whose chunks were `datas` with `done`, its receipt over their stream hash (`options` as for `receipt`); returns the receipt sent. */
  streamDone(job: Job, datas: Record<string, unknown>[], usage: Usage, options: Parameters<HarnessNode["receipt"]>[3] = {}): Receipt {
    const hasher = new StreamHasher();
    for (const d of datas) hasher.add(d);
    const receipt = this.receipt(job, usage, hasher.digest(), options);
    this.peer.send({ type: "done", jobId: job.jobId, chunks: datas.length, usage, receipt });
    return receipt;
  }

  /** Ends a non-streamed `job` with `done` carrying `response`, its receipt over the response hash (`options` as for `receipt`); returns the receipt sent. */
  responseDone(job: Job, response: Record<string, unknown>, usage: Usage, options: Parameters<HarnessNode["receipt"]>[3] = {}): Receipt {
    const receipt = this.receipt(job, usage, responseHash(response), options);
    this.peer.send({ type: "done", jobId: job.jobId, chunks: 0, usage, response, receipt });
    return receipt;
  }

  /** Streams a complete answer to `job` and ends it with `done`; returns the chunks' data and the receipt sent. */
  streamAnswer(job: Job, pieces: string[]): { datas: Record<string, unknown>[]; receipt: Receipt; usage: Usage } {
    const usage = usageOf(pieces);
    const datas = chatChunks(job, pieces, usage);
    this.chunks(job, datas);
    const receipt = this.streamDone(job, datas, usage);
    return { datas, receipt, usage };
  }

  /** Answers a non-streamed `job` with `done` carrying the response. */
  responseAnswer(
    job: Job,
    text: string,
    options: Parameters<HarnessNode["receipt"]>[3] = {},
  ): { response: Record<string, unknown>; receipt: Receipt; usage: Usage } {
    const usage = usageOf(text.split(" "));
    const response = {
      id: `chatcmpl-conf${hex(8)}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: job.model,
      choices: [{ index: 0, message: { role: "assistant", content: text }, logprobs: null, finish_reason: "stop" }],
      usage: {
        prompt_tokens: usage.promptTokens,
        completion_tokens: usage.completionTokens,
        total_tokens: usage.promptTokens + usage.completionTokens,
      },
    };
    const receipt = this.responseDone(job, response, usage, options);
    return { response, receipt, usage };
  }

  /** The hub's answer to a `done` for `jobId`: its `receipt`, or an `error` about the job. */
  answerTo(jobId: string, ms = 5000): Promise<Record<string, unknown>> {
    return this.peer.take(
      (m) =>
        (m.type === "receipt" && (m.receipt as Receipt | undefined)?.jobId === jobId) ||
        (m.type === "error" && (m.jobId === jobId || m.jobId === undefined)),
      ms,
      0,
      `the hub's receipt or error for ${jobId}`,
    );
  }

  /** Waits for the countersigned receipt of `sent` and checks it; advances the node's position. */
  async countersigned(sent: Receipt): Promise<Receipt> {
    const m = await this.answerTo(sent.jobId);
    if (m.type === "error") fail(`the hub answered a valid done for ${sent.jobId} with error ${String(m.code)}: ${String(m.message)}`);
    const r = m.receipt as Receipt;
    ensure(
      typeof r.hubSig === "string" && verifyDetached("receiptHub", omitFields(r, "hubSig"), r.hubSig, this.hello.hubId),
      `receipt ${r.jobId}: hubSig does not verify with the hub id over the receipt without hubSig`,
    );
    ensure(
      sameJson(omitFields(r, "hubSig"), sent),
      `receipt ${r.jobId}: the countersigned receipt differs from the node's receipt in more than hubSig`,
    );
    this.position = { lastSeq: r.seq, totals: r.totals };
    return r;
  }
}

/** Streams `datas` as chunks of a job and ends it with `done`; returns the receipt sent. */
export function answerStream(node: HarnessNode, job: Job, datas: Record<string, unknown>[], usage: Usage): Receipt {
  node.chunks(job, datas);
  return node.streamDone(job, datas, usage);
}
