/**
 * Hub-mode checks of the rules a hub applies to what a node sends about jobs, offers and
 * probes: the precedence of offer refusals (SRP-OFF-014), a `job_error` that ends only its
 * job (SRP-JOB-025), malformed answers to non-streamed jobs (SRP-JOB-029), no bill for a
 * failed job (SRP-JOB-021), and probes (SRP-LIV-007, SRP-LIV-010). The harness is a node,
 * as in hub-jobs.ts.
 */
import { randomBytes, responseHash, toHex } from "@srp/core";
import type { Instance, Job, Receipt, Usage } from "@srp/core/schema";
import type { Check } from "../types.js";
import { chatChunks, usageOf } from "../harness/answers.js";
import { check } from "../harness/check.js";
import { bodyText, codedError, type ConsumerCall, eventJson } from "../harness/consumer.js";
import { type HubContext, openSession, stillServing } from "../harness/hub-session.js";
import { ASK, instance, isJob, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { drain, readStream } from "../harness/streams.js";
import { ensure, fail } from "../harness/verdict.js";
import { expectRejection, WireTimeoutError } from "../harness/wire.js";

const hex = (bytes: number) => toHex(randomBytes(bytes));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long the probe check waits for a hub to probe a parked instance before it skips. */
const PROBE_WAIT_MS = 4000;
/** The longest probe deadline the probe check waits out. */
const PROBE_DEADLINE_MAX_MS = 4000;

type OfferResult = { instanceId: string; accepted: boolean; reason?: { code: string; message: string } };

/** The job ids each harness node has handed to this file's checks (jobs are found by polling, so that no pending wait takes a later job). */
const handed = new WeakMap<HarnessNode, Set<string>>();
const handedOf = (node: HarnessNode) => handed.get(node) ?? handed.set(node, new Set()).get(node)!;

/** The next job for the consumer call, as {@link HarnessNode.nextJob}, remembered as handed out. */
async function firstJob(node: HarnessNode, call: ConsumerCall): Promise<Job> {
  const job = await node.nextJob(call);
  handedOf(node).add(job.jobId);
  return job;
}

/** A job not handed out before, or the consumer's answer when the hub answered without one. */
async function jobOrAnswer(node: HarnessNode, call: ConsumerCall, ms = 5000): Promise<{ job: Job } | { res: Response }> {
  const seen = handedOf(node);
  let res: Response | undefined;
  let failed: Error | undefined;
  call.response.then(
    (r) => (res = r),
    (e: Error) => (failed = e),
  );
  const deadline = Date.now() + ms;
  for (;;) {
    const job = node.peer.matching(isJob).find((j) => !seen.has(j.jobId as string));
    if (job) {
      seen.add(job.jobId as string);
      return { job: job as unknown as Job };
    }
    if (res) return { res };
    if (failed) fail(`the consumer request failed: ${failed.message}`);
    if (Date.now() > deadline) fail(`neither a job nor the consumer's answer arrived within ${ms} ms`);
    await sleep(20);
  }
}

/** Fails `count` jobs of `model` with a retryable backend error, sending consumer requests as needed. */
async function failJobs(node: HarnessNode, model: string, count: number): Promise<void> {
  let failed = 0;
  for (let calls = 0; failed < count; calls++) {
    if (calls >= count * 3)
      fail(`the hub sent ${failed} job(s) for ${count * 3} consumer requests; the instance cannot be made to fail ${count} times`);
    const call = node.chat({ model, messages: ASK, max_tokens: 8 });
    for (;;) {
      const next = await jobOrAnswer(node, call);
      if ("res" in next) {
        await bodyText(next.res).catch(() => "");
        break;
      }
      node.peer.send({
        type: "job_error",
        jobId: next.job.jobId,
        code: "job.upstream_error",
        message: "conformance: the backend failed",
        retryable: true,
        upstreamStatus: 503,
        chunks: 0,
      });
      failed++;
    }
  }
}

/** Whether the hub routes a request for `model` to the node within a second (the job is answered). */
async function routes(node: HarnessNode, model: string): Promise<boolean> {
  const call = node.chat({ model, messages: ASK, max_tokens: 8 });
  const next = await jobOrAnswer(node, call);
  if ("res" in next) {
    await bodyText(next.res).catch(() => "");
    return false;
  }
  node.responseAnswer(next.job, "pong");
  await drain(call);
  await node.answerTo(next.job.jobId).then(
    (m) => {
      if (m.type === "receipt") node.position = { lastSeq: (m.receipt as Receipt).seq, totals: (m.receipt as Receipt).totals };
    },
    () => undefined,
  );
  return true;
}

/** Hub-mode checks of job, offer and probe rules (SRP-JOB-021, -025, -029, SRP-OFF-014, SRP-LIV-007, -010). */
export const HUB_JOB_RULE_CHECKS: Check<HubContext>[] = [
  check(
    "hub.offer.precedence",
    "When several refusal codes apply to an instance, refuses it with the first in the table's order: a duplicate id before an inconsistent instance, an inconsistent instance before a refused tier, and neither counts towards maxInstances",
    ["SRP-OFF-014", "SRP-OFF-005"],
    "MUST",
    async (ctx) => {
      const { peer, welcome } = await openSession(ctx);
      const model = newModel();
      const bad = { contextLength: 4096, maxOutputTokens: 9000 };
      const first = instance(model);
      const dupBad = instance(model, { ...bad, tier: "subscription", instanceId: first.instanceId });
      const subBad = instance(model, { ...bad, tier: "subscription" });
      const sub = instance(model, { tier: "subscription" });
      peer.send({ type: "offer", instances: [first, dupBad, subBad, sub] });
      const ack = await peer.take((m) => m.type === "offer_ack", 5000, 0, "offer_ack");
      const results = ack.results as OfferResult[];
      const problems: string[] = [];
      const code = (r: OfferResult | undefined) => (r === undefined ? "no result" : r.accepted ? "accepted" : String(r.reason?.code));
      if (code(results[0]) !== "accepted") problems.push(`a valid instance was ${code(results[0])}`);
      if (code(results[1]) !== "offer.duplicate_instance")
        problems.push(
          `an instance repeating an earlier id, inconsistent and of the subscription tier, was ${code(results[1])}; expected offer.duplicate_instance`,
        );
      if (code(results[2]) !== "offer.invalid")
        problems.push(
          `an inconsistent instance (maxOutputTokens > contextLength) of the subscription tier was ${code(results[2])}; expected offer.invalid`,
        );
      const tierRefused = code(results[3]) === "offer.tier_refused";
      // The session limit comes last: fill the session, then offer instances refused for other reasons.
      const limit = (welcome.limits as { maxInstances?: number } | undefined)?.maxInstances ?? 64;
      let offered = 1 + (results[3]?.accepted ? 1 : 0);
      if (limit <= 256) {
        while (offered < limit) {
          const batch = Array.from({ length: Math.min(64, limit - offered) }, () => instance(model));
          peer.send({ type: "offer", instances: batch });
          const a = await peer.take((m) => m.type === "offer_ack", 5000, 0, "offer_ack while filling the session");
          const refused = (a.results as OfferResult[]).filter((r) => !r.accepted);
          if (refused.length)
            fail(
              `${problems.join("; ")}${problems.length ? "; " : ""}the hub refused ${refused.length} valid instance(s) below maxInstances ${limit} (${code(refused[0])})`,
            );
          offered += batch.length;
        }
        const late = [instance(model, bad), ...(tierRefused ? [instance(model, { tier: "subscription" })] : []), instance(model)];
        peer.send({ type: "offer", instances: late });
        const a = await peer.take((m) => m.type === "offer_ack", 5000, 0, "offer_ack of a full session");
        const r = a.results as OfferResult[];
        if (code(r[0]) !== "offer.invalid")
          problems.push(`on a full session an inconsistent instance was ${code(r[0])}; expected offer.invalid`);
        if (tierRefused && code(r[1]) !== "offer.tier_refused")
          problems.push(`on a full session a subscription-tier instance was ${code(r[1])}; expected offer.tier_refused`);
        const last = r[late.length - 1];
        if (code(last) !== "offer.too_many_instances")
          problems.push(`a valid instance beyond maxInstances ${limit} was ${code(last)}; expected offer.too_many_instances`);
      }
      if (problems.length) fail(problems.join("; "));
      await stillServing(peer, "the session whose offers were refused");
    },
  ),
  check(
    "hub.job.error_keeps_session",
    "Keeps the session open after a job_error with code internal (whose close code applies to error messages only), and routes the next job to the node",
    ["SRP-JOB-025"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = node.chat({ model, messages: ASK, max_tokens: 8 });
      const job = await firstJob(node, call);
      node.peer.send({
        type: "job_error",
        jobId: job.jobId,
        code: "internal",
        message: "conformance: the node failed in a way no other code describes",
        retryable: true,
        chunks: 0,
      });
      const closed = await node.peer.closedWithin(500);
      ensure(
        !closed,
        `the hub closed the session (${closed?.code} ${closed?.reason}) after a job_error with code internal; a job_error ends its job only (SRP-JOB-025)`,
      );
      // The consumer's request is retried (answered here) or answered with an error.
      for (;;) {
        const next = await jobOrAnswer(node, call);
        if ("res" in next) {
          await bodyText(next.res).catch(() => "");
          break;
        }
        node.responseAnswer(next.job, "pong");
      }
      const errors = node.peer.matching((m) => m.type === "error" && m.jobId === job.jobId);
      ensure(errors.length === 0, `the hub answered the job_error with error ${String(errors[0]?.code)}`);
      ensure(await routes(node, model), "after the job_error the hub sent no job for the next request");
      await stillServing(node.peer, "the session that sent a job_error with code internal");
    },
  ),
  check(
    "hub.job.nonstream_violations",
    "For a non-streamed job: answers a done without response with error receipt.field_mismatch naming the job and no receipt (session continues), and a chunk with protocol.unexpected_message and close 1002",
    ["SRP-JOB-029", "SRP-JOB-009"],
    "MUST",
    async (ctx) => {
      const problems: string[] = [];
      // A done without response.
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = node.chat({ model, messages: ASK, max_tokens: 8 });
      const job = await firstJob(node, call);
      const usage: Usage = { promptTokens: 11, completionTokens: 2, measured: true };
      node.peer.send({ type: "done", jobId: job.jobId, chunks: 0, usage, receipt: node.receipt(job, usage, responseHash({})) });
      const answer = await node.answerTo(job.jobId, 3000).catch((e: Error) => {
        problems.push(`no error for a done without response: ${e.message}`);
        return undefined;
      });
      if (answer?.type === "receipt") problems.push("the hub countersigned the receipt of a non-streamed done without response");
      else if (answer && (answer.code !== "receipt.field_mismatch" || answer.jobId !== job.jobId)) {
        problems.push(
          `a non-streamed done without response was answered with error ${String(answer.code)} (jobId ${String(answer.jobId)}); expected receipt.field_mismatch with ${job.jobId}`,
        );
      }
      // Nothing reached the consumer: a retry (answered here) or a coded error, never a 200 without the answer.
      for (;;) {
        const next = await jobOrAnswer(node, call);
        if ("job" in next) {
          node.responseAnswer(next.job, "pong");
          continue;
        }
        if (next.res.status === 200 && node.peer.matching((m) => isJob(m) && m.jobId !== job.jobId).length === 0)
          problems.push("the consumer got 200 for a job whose done carried no response");
        else if (next.res.status !== 200) {
          const p = await codedError(next.res);
          if (p) problems.push(`consumer answer: ${p}`);
        } else await bodyText(next.res).catch(() => "");
        break;
      }
      await sleep(200);
      if (
        node.peer.matching((m) => m.type === "receipt" && (m.receipt as Receipt).jobId === job.jobId).length &&
        answer?.type !== "receipt"
      )
        problems.push("the hub sent a receipt for the done without response");
      if (!node.peer.open)
        problems.push(`the hub closed the session (${node.peer.closed?.code}) after a done without response; the session continues`);
      // A chunk for a non-streamed job.
      const model2 = newModel();
      const node2 = await HarnessNode.open(ctx, [instance(model2)]);
      const call2 = node2.chat({ model: model2, messages: ASK, max_tokens: 8 });
      const job2 = await firstJob(node2, call2);
      node2.chunks(job2, chatChunks({ ...job2, request: {} }, ["Hi"], usageOf(["Hi"])).slice(0, 1));
      const problem = await expectRejection(node2.peer, "protocol.unexpected_message", 1002, 3000);
      if (problem) problems.push(`a chunk for a non-streamed job: ${problem}`);
      call2.abort();
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.job.failed_unbilled",
    "Shows no bill for a job that failed: a stream ended by job_error after content, and one lost with its session, carry no usage with a cost or a receipt id",
    ["SRP-JOB-021", "SRP-JOB-015"],
    "MUST",
    async (ctx) => {
      const problems: string[] = [];
      for (const how of ["job_error", "session lost"] as const) {
        const model = newModel();
        const node = await HarnessNode.open(ctx, [instance(model)]);
        const call = node.chat({ model, messages: ASK, max_tokens: 16, stream: true });
        const job = await firstJob(node, call);
        const datas = chatChunks({ ...job, request: {} }, ["Partial ", "answer"], usageOf(["x"])).slice(0, 3);
        node.chunks(job, datas);
        if (how === "job_error")
          node.peer.send({
            type: "job_error",
            jobId: job.jobId,
            code: "job.upstream_error",
            message: "conformance: the backend failed mid-stream",
            retryable: true,
            chunks: datas.length,
          });
        else {
          await sleep(100);
          node.peer.close(1000, "conformance: gone mid-job");
        }
        const seen = await readStream(call).catch((e: Error) => {
          problems.push(`${how}: ${e.message}`);
          return undefined;
        });
        if (!seen) continue;
        if (seen.errors.length === 0) problems.push(`${how}: the failed stream has no in-band error (SRP-JOB-020)`);
        for (const e of seen.events) {
          const u = eventJson(e)?.usage as Record<string, unknown> | undefined;
          if (!u || typeof u !== "object") continue;
          const billed =
            (typeof u.cost_units === "string" && u.cost_units !== "0") || (u.receipt_id !== undefined && u.receipt_id !== null);
          if (billed)
            problems.push(
              `${how}: the failed stream carries usage ${JSON.stringify(u).slice(0, 200)}; a job without done is not billed (SRP-JOB-021)`,
            );
        }
        if (node.peer.matching((m) => m.type === "receipt" && (m.receipt as Receipt).jobId === job.jobId).length)
          problems.push(`${how}: the hub sent a receipt for a job that ended without done`);
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.probe.rules",
    "Probes a parked instance only while it is offered, with a fresh probeId each time; treats a probe unanswered by its deadline as failed and ignores a late or unknown probe_result (skipped when the hub sends no probe within 4 s of three failures)",
    ["SRP-LIV-007", "SRP-LIV-010", "SRP-OFF-008"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const inst: Instance = instance(model);
      const node = await HarnessNode.open(ctx, [inst]);
      node.peer.onMessage = undefined; // the harness answers probes itself here
      const isProbe = (m: Record<string, unknown>) => m.type === "probe";
      await failJobs(node, model, 3);
      const parkedAt = Date.now();
      const probe1 = await node.peer.take(isProbe, PROBE_WAIT_MS, 0, "a probe").catch((e: Error) => {
        if (e instanceof WireTimeoutError) return undefined;
        throw e;
      });
      if (!probe1)
        return {
          status: "skipped",
          details: `the hub sent no probe within ${PROBE_WAIT_MS / 1000} s of the instance's third failed job; this check needs a hub that parks for less (the reference hub: routingConfig.parkMs)`,
        };
      const interval = Date.now() - parkedAt;
      const problems: string[] = [];
      if (probe1.instanceId !== inst.instanceId)
        problems.push(`a probe names instance ${String(probe1.instanceId)}, not the node's offered instance (SRP-LIV-007)`);
      const deadline = probe1.deadline as number;
      if (deadline - Date.now() > PROBE_DEADLINE_MAX_MS) {
        node.peer.send({ type: "probe_result", probeId: probe1.probeId, instanceId: inst.instanceId, ok: true, latencyMs: 1 });
        if (problems.length) fail(problems.join("; "));
        return {
          status: "skipped",
          details: `the probe's deadline is ${Math.round((deadline - Date.now()) / 1000)} s away; this check waits out deadlines of at most ${PROBE_DEADLINE_MAX_MS / 1000} s`,
        };
      }
      // No answer by the deadline: failed. A late ok and an ok for an unknown probeId are ignored.
      await sleep(Math.max(0, deadline - Date.now()) + 300);
      node.peer.send({ type: "probe_result", probeId: probe1.probeId, instanceId: inst.instanceId, ok: true, latencyMs: 1 });
      node.peer.send({
        type: "probe_result",
        probeId: `probe_conf_unknown_${hex(6)}`,
        instanceId: inst.instanceId,
        ok: true,
        latencyMs: 1,
      });
      await sleep(200);
      if (!node.peer.open)
        fail(
          [
            ...problems,
            `the hub closed the session (${node.peer.closed?.code}) after a late or unknown probe_result; it ignores them (SRP-LIV-010)`,
          ].join("; "),
        );
      if (await routes(node, model))
        problems.push(
          "the hub routed a job to the instance after its probe went unanswered past the deadline and only a late or unknown probe_result said ok (SRP-LIV-010)",
        );
      // The next probe has a new probeId; its ok readmits the instance.
      const probe2 = await node.peer.take(isProbe, interval + 3000, 0, "a second probe after the first failed").catch(() => undefined);
      let warning: string | undefined;
      if (!probe2) warning = "the hub sent no second probe after the first one failed";
      else {
        if (probe2.probeId === probe1.probeId) problems.push(`the hub reused probeId ${String(probe1.probeId)} (SRP-LIV-007)`);
        if (probe2.instanceId !== inst.instanceId)
          problems.push(`the second probe names instance ${String(probe2.instanceId)} (SRP-LIV-007)`);
        node.peer.send({ type: "probe_result", probeId: probe2.probeId, instanceId: inst.instanceId, ok: true, latencyMs: 1 });
        await sleep(200);
        if (!(await routes(node, model))) warning = "the instance was not routed to after a successful probe (hub policy)";
      }
      // A withdrawn instance is never probed, even when it was parked.
      if (probe2) {
        await failJobs(node, model, 3);
        node.peer.send({ type: "withdraw", instanceIds: [inst.instanceId], reason: "conformance: withdrawn while parked" });
        const mark = node.peer.received.length;
        await sleep(interval + 1000);
        const late = node.peer.matching((m) => isProbe(m) && m.instanceId === inst.instanceId, mark);
        if (late.length) problems.push(`the hub probed instance ${inst.instanceId} after it was withdrawn (SRP-LIV-007, SRP-OFF-008)`);
        for (const p of late)
          node.peer.send({
            type: "probe_result",
            probeId: p.probeId,
            instanceId: inst.instanceId,
            ok: false,
            latencyMs: 1,
            error: { code: "job.unknown_instance", message: "withdrawn" },
          });
      }
      if (problems.length) fail(problems.join("; "));
      if (warning) return { status: "warning", details: warning };
    },
  ),
];
