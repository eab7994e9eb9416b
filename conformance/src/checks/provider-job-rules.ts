/**
 * Provider-mode checks of how a node takes and ends jobs: the order of its refusals
 * (SRP-JOB-023), repeated job ids (SRP-JOB-024), errors caused by the consumer's input
 * (SRP-JOB-014), jobs of a session that ended (SRP-JOB-015), and the output limit and
 * request hash of a rewritten request (SRP-JOB-022, SRP-JOB-028), and jobs carrying a
 * request id and trace context in `ext` (SRP-JOB-038). The harness is the hub, as in
 * provider-jobs.ts.
 */
import { randomBytes, requestHash, toHex } from "@srp/core";
import type { Instance, Job, Receipt, Usage } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { authProblem, hello, type ProviderContext, welcome } from "../harness/provider-session.js";
import {
  acceptOffer,
  chatJob,
  countersign,
  describe,
  jobProblems,
  ofJob,
  pick,
  PROMPT,
  runDone,
  runJob,
  serving,
  type Serving,
} from "../harness/serving.js";
import { fail, skip } from "../harness/verdict.js";
import type { WirePeer } from "../harness/wire.js";

const hex = (bytes: number) => toHex(randomBytes(bytes));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isHeartbeat = (m: Record<string, unknown>) => m.type === "heartbeat";

/** The most jobs the refusal-order check starts to fill an instance. */
const MAX_FILL = 16;

/** Sends a long streamed job and waits for its first chunk, so that it occupies a slot. */
async function startLong(s: Serving, inst: Instance): Promise<Job> {
  const job = chatJob(inst, true, 4096);
  const from = s.peer.received.length;
  s.peer.send(job);
  const first = await s.peer.take(ofJob(job.jobId), 15_000, from, `the first chunk of ${job.jobId}`);
  if (first.type !== "chunk") fail(`a streamed job of up to 4096 tokens ended with ${describe(first)} before any chunk`);
  return job;
}

/** Cancels `jobs` and waits briefly for their ends. */
async function cancelAll(s: Serving, jobs: Job[]): Promise<void> {
  for (const j of jobs) s.peer.send({ type: "cancel", jobId: j.jobId, reason: "superseded" });
  await sleep(300);
}

/** The completion tokens a usage or an answer shows, for a limit check. */
function completionOf(usage: Usage | undefined): number | undefined {
  return usage?.measured ? usage.completionTokens : undefined;
}

/** Provider-mode checks of taking and ending jobs (SRP-JOB-014, -015, -022, -023, -024, -028). */
export const PROVIDER_JOB_RULE_CHECKS: Check<ProviderContext>[] = [
  check(
    "provider.job.refusal_order",
    "Refuses a job in the order unknown instance, unknown model, busy: a job for an instance it does not offer naming a model it does not serve is job.unknown_instance; on a full instance, a wrong model is job.unknown_model and a right one job.busy",
    ["SRP-JOB-023", "SRP-JOB-005"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const inst = s.instances.find(
        (x) => x.capabilities.includes("chat") && x.capabilities.includes("stream") && x.maxConcurrency <= MAX_FILL,
      );
      if (!inst) skip(`the provider offers no streaming chat instance with maxConcurrency at most ${MAX_FILL}`);
      const p: string[] = [];
      const expectCode = async (job: Job, code: string, what: string) => {
        const ran = await runJob(s, job, 5000);
        if (ran.end.type !== "job_error" || ran.end.code !== code)
          p.push(`${what} ended with ${describe(ran.end)}; expected job_error ${code} (SRP-JOB-023)`);
        else if (ran.end.chunks !== 0 || ran.chunks.length)
          p.push(
            `${what}: job_error.chunks ${String(ran.end.chunks)} with ${ran.chunks.length} chunk(s); a refused job gets none (SRP-JOB-005)`,
          );
      };
      await expectCode(
        { ...chatJob({ ...inst, instanceId: `conf-not-offered-${hex(4)}` }, false, 4), model: `conformance-not-served-${hex(4)}` },
        "job.unknown_instance",
        "a job for an instance not offered, naming a model not served",
      );
      const fill: Job[] = [];
      try {
        for (let i = 0; i < inst.maxConcurrency; i++) fill.push(await startLong(s, inst));
        await expectCode(
          { ...chatJob(inst, false, 4), model: `conformance-not-served-${hex(4)}` },
          "job.unknown_model",
          `a job naming a model not served, on instance ${inst.instanceId} running ${inst.maxConcurrency} of ${inst.maxConcurrency} jobs`,
        );
        await expectCode(
          chatJob(inst, false, 4),
          "job.busy",
          `a job for instance ${inst.instanceId} running ${inst.maxConcurrency} of ${inst.maxConcurrency} jobs`,
        );
      } finally {
        await cancelAll(s, fill);
      }
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.job.repeated_id",
    "Ignores a job whose jobId is running (one run, one end) or already ended on the session (nothing sent), and keeps serving",
    ["SRP-JOB-024", "SRP-JOB-012"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const inst = pick(s, true);
      const job = chatJob(inst, true, 48);
      const from = s.peer.received.length;
      s.peer.send(job);
      await s.peer.take(ofJob(job.jobId), 15_000, from, `the first message of ${job.jobId}`);
      s.peer.send(job); // again, while it runs
      const end = await s.peer.take(
        (m) => m.jobId === job.jobId && (m.type === "done" || m.type === "job_error"),
        20_000,
        from,
        `done or job_error for ${job.jobId}`,
      );
      await sleep(500);
      const p: string[] = [];
      const mine = s.peer.matching(ofJob(job.jobId), from);
      const ends = mine.filter((m) => m.type === "done" || m.type === "job_error");
      const seqs = mine.filter((m) => m.type === "chunk").map((m) => m.seq as number);
      if (ends.length !== 1)
        p.push(
          `the job, sent twice while it ran, ended ${ends.length} times (${ends.map((m) => m.type).join(", ")}); a repeat is ignored (SRP-JOB-024)`,
        );
      if (seqs.some((q, i) => q !== i))
        p.push(`its chunks arrived with seq ${seqs.slice(0, 16).join(", ")}; a second run of the same job id is not allowed (SRP-JOB-024)`);
      if (end.type === "done") countersign(s, end.receipt as Receipt);
      // Again, after it ended.
      const mark = s.peer.received.length;
      s.peer.send(job);
      await sleep(800);
      const after = s.peer.matching(ofJob(job.jobId), mark);
      if (after.length)
        p.push(
          `the job, sent again after it ended, was answered with ${after.map((m) => `${String(m.type)}${m.type === "job_error" ? ` ${String(m.code)}` : ""}`).join(", ")}; a repeat is ignored (SRP-JOB-024)`,
        );
      const next = await runJob(s, chatJob(inst, false, 4));
      if (next.end.type !== "done") p.push(`a new job afterwards ended with ${describe(next.end)}`);
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.job.consumer_input",
    "Reports a request its backend refuses because of the consumer's input (empty messages; a prompt longer than the context window) with job.invalid_request or job.context_length_exceeded, not a backend-failure code",
    ["SRP-JOB-014"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const inst = pick(s, false);
      const cases: Array<{ what: string; request: Record<string, unknown> }> = [
        { what: "a request with an empty messages array", request: { model: inst.model, messages: [], max_tokens: 4, stream: false } },
      ];
      if (inst.contextLength <= 65_536) {
        const words = "spare ".repeat(inst.contextLength + 64);
        cases.push({
          what: `a prompt of more than ${inst.contextLength} tokens (the instance's contextLength)`,
          request: { model: inst.model, messages: [{ role: "user", content: words }], max_tokens: 4, stream: false },
        });
      }
      const p: string[] = [];
      let refused = 0;
      for (const c of cases) {
        const job: Job = { ...chatJob(inst, false, 4), request: c.request };
        const ran = await runJob(s, job, 20_000);
        if (ran.end.type === "done") {
          countersign(s, ran.end.receipt as Receipt);
          continue;
        }
        refused++;
        const code = String(ran.end.code);
        if (code !== "job.invalid_request" && code !== "job.context_length_exceeded")
          p.push(
            `${c.what} ended with ${describe(ran.end)}; a failure caused by the consumer's input is job.invalid_request or job.context_length_exceeded (SRP-JOB-014)`,
          );
        else if (ran.end.retryable !== false)
          p.push(`${c.what}: job_error ${code} has retryable ${String(ran.end.retryable)}; the table says false`);
      }
      if (p.length) fail(p.join("; "));
      if (refused === 0)
        return { status: "skipped", details: "the backend answered every malformed or over-long request; nothing to check" };
    },
  ),
  check(
    "provider.job.session_end",
    "Aborts the jobs of a session that ends: after the hub closes mid-stream and the node reconnects, nothing of the old job arrives on the new session and the new session's heartbeats count no running job",
    ["SRP-JOB-015"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx, 1000);
      const inst = pick(s, true);
      const job = await startLong(s, inst);
      s.peer.send({ type: "goodbye", reason: "conformance: closing with a job in flight", reconnectAfterMs: 0 });
      s.peer.close(1001, "session.shutdown");
      const peer: WirePeer = await s.accept("the provider to reconnect after goodbye (reconnectAfterMs 0)");
      const h = hello(s.hub);
      peer.send(h);
      const auth = await peer.expect("auth");
      const problem = authProblem(auth, h);
      if (problem) fail(`second session: ${problem}`);
      peer.send(welcome(auth, 1000));
      await acceptOffer(peer);
      const ackAt = Date.now();
      const p: string[] = [];
      const hb = await peer.take(
        (m) => isHeartbeat(m) && (peer.arrival(m)?.at ?? 0) > ackAt + 200,
        3000,
        0,
        "a heartbeat after offer_ack on the new session",
      );
      const entry = (hb.load as Array<{ instanceId: string; active: number }>).find((l) => l.instanceId === inst.instanceId);
      if (entry && entry.active !== 0)
        p.push(
          `the new session's heartbeat reports ${entry.active} running job(s) on ${inst.instanceId}; the old session's job was not aborted (SRP-JOB-015)`,
        );
      await sleep(500);
      const leaked = peer.matching((m) => m.jobId === job.jobId);
      if (leaked.length)
        p.push(
          `the node sent ${leaked.map((m) => m.type).join(", ")} for ${job.jobId}, a job of the previous session, on the new one (SRP-JOB-015)`,
        );
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.job.output_limit",
    "Honours max_completion_tokens given without max_tokens (streamed and not), and hashes job.request as the hub sent it, not the request it sent its backend",
    ["SRP-JOB-022", "SRP-JOB-028", "SRP-ATT-004"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const LIMIT = 3;
      const p: string[] = [];
      for (const stream of [false, true]) {
        const inst = pick(s, stream);
        // No max_tokens, no stream_options: the node adds what its backend needs, and hashes this.
        const request = { model: inst.model, messages: PROMPT, max_completion_tokens: LIMIT, ...(stream ? { stream: true } : {}) };
        const job: Job = { ...chatJob(inst, stream, LIMIT), request };
        const previous = s.position;
        const ran = await runDone(s, job);
        const what = stream ? "streamed" : "non-streamed";
        const r = ran.receipt;
        if (r.requestHash !== requestHash(request))
          p.push(
            `${what}: receipt.requestHash is not the hash of job.request as the hub sent it (max_completion_tokens only, no max_tokens${stream ? ", no stream_options" : ""}); the node hashes the request before any rewrite (SRP-JOB-028, SRP-ATT-004)`,
          );
        const used = completionOf(r.usage);
        if (used !== undefined && used > LIMIT)
          p.push(`${what}: the job used ${used} completion tokens with max_completion_tokens ${LIMIT} (SRP-JOB-022)`);
        p.push(
          ...jobProblems(s, ran, previous)
            .filter((x) => !x.includes("requestHash"))
            .map((x) => `${what}: ${x}`),
        );
        countersign(s, r);
      }
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.job.trace_context",
    "Runs jobs whose ext carries a request id and W3C trace context (srp.request_id, srp.traceparent, srp.tracestate) as any other job, whether the values are well formed, all-zero or not strings",
    ["SRP-JOB-038", "SRP-JOB-012"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const inst = pick(s, true);
      const variants: [string, Record<string, unknown>][] = [
        [
          "well formed",
          {
            "srp.request_id": `req_conf_${hex(8)}`,
            "srp.traceparent": `00-${hex(16)}-${hex(8)}-01`,
            "srp.tracestate": "conformance=1,other=x",
          },
        ],
        [
          "all-zero ids",
          { "srp.request_id": "x", "srp.traceparent": `00-${"0".repeat(32)}-${"0".repeat(16)}-01`, "srp.tracestate": "=bad=" },
        ],
        ["not strings", { "srp.request_id": 42, "srp.traceparent": { version: "00" }, "srp.tracestate": ["a"] }],
        ["malformed", { "srp.request_id": "has spaces", "srp.traceparent": "ff-not-a-trace-context", "srp.tracestate": "" }],
      ];
      const p: string[] = [];
      for (const [what, ext] of variants) {
        const previous = s.position;
        const ran = await runJob(s, { ...chatJob(inst, true, 8), ext });
        if (ran.end.type !== "done") {
          p.push(`a job whose trace context is ${what} ended with ${describe(ran.end)}; a node runs it as any other job (SRP-JOB-038)`);
          continue;
        }
        p.push(...jobProblems(s, ran, previous).map((x) => `${what}: ${x}`));
        countersign(s, ran.end.receipt as Receipt);
      }
      if (p.length) fail(p.join("; "));
    },
  ),
];
