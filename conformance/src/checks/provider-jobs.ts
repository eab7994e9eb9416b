/**
 * Provider-mode checks of offers, jobs, receipts and probes. The harness is the hub: it
 * accepts the provider's offer, sends it jobs (OpenAI chat completions), checks every
 * chunk, done and receipt the node sends back against the spec, and countersigns the
 * receipts as a hub would.
 */
import { canonicalize, formatAmount, generateIdentity, INITIAL_POSITION, omitFields, parseAmount, signDetached } from "@srp/core";
import type { Instance, Job, Receipt, Statement } from "@srp/core/schema";
import type { Check, CheckVerdict } from "../types.js";
import { check } from "../harness/check.js";
import { hex } from "../harness/instances.js";
import { openSession, type ProviderContext, welcome, WELCOME_LIMITS } from "../harness/provider-session.js";
import {
  acceptOffer,
  afterEnd,
  chatJob,
  countersign,
  describe,
  expectReceiptError,
  JOB_END,
  jobProblems,
  OFFER_WAIT_MS,
  ofJob,
  pick,
  type Ran,
  runDone,
  runJob,
  servedAndBack,
  servedTwice,
  type Serving,
  serving,
  statementFor,
} from "../harness/serving.js";
import { ensure, fail } from "../harness/verdict.js";
import { WireTimeoutError } from "../harness/wire.js";

const sameJson = (a: unknown, b: unknown) => canonicalize(a) === canonicalize(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isHeartbeat = (m: Record<string, unknown>) => m.type === "heartbeat";

/** Checks a job for an instance or model the node does not serve on this session. */
async function refusesJob(ctx: ProviderContext, make: (inst: Instance) => Job, code: string): Promise<CheckVerdict> {
  const s = await serving(ctx);
  const job = make(pick(s, false));
  const t0 = Date.now();
  const ran = await runJob(s, job, 5000);
  const p: string[] = [];
  if (ran.end.type !== "job_error" || ran.end.code !== code) p.push(`the job ended with ${describe(ran.end)}, expected job_error ${code}`);
  else {
    if (ran.end.chunks !== 0 || ran.chunks.length)
      p.push(
        `job_error.chunks is ${String(ran.end.chunks)} with ${ran.chunks.length} chunk(s) sent; a job the node cannot run gets none (SRP-JOB-005)`,
      );
    if (ran.end.retryable !== false) p.push(`job_error.retryable is ${String(ran.end.retryable)}; ${code} is not retryable (SRP-ERR-001)`);
  }
  if (Date.now() - t0 > 2000) p.push(`the answer took ${Date.now() - t0} ms; a node answers at once (SRP-JOB-005)`);
  if (p.length) fail(p.join("; "));
}

/** Provider-mode offer, job, receipt and probe checks, in run order. */
export const PROVIDER_JOB_CHECKS: Check<ProviderContext>[] = [
  check(
    "provider.offer",
    "Offers consistent instances after welcome and waits for offer_ack: heartbeats list only accepted instances, and a job for a refused instance is refused",
    ["SRP-OFF-002", "SRP-OFF-003", "SRP-LIV-004", "SRP-JOB-005"],
    "MUST",
    async (ctx) => {
      const s = await openSession(ctx, 1000);
      const offer = await s.peer
        .take((m) => m.type === "offer", OFFER_WAIT_MS, 0, "an offer")
        .catch((e: Error) =>
          fail(
            e instanceof WireTimeoutError
              ? `the provider sent no offer within ${OFFER_WAIT_MS / 1000} s of welcome; a node offers its instances after every welcome`
              : e.message,
          ),
        );
      const instances = offer.instances as Instance[];
      const p: string[] = [];
      const ids = instances.map((i) => i.instanceId);
      if (new Set(ids).size !== ids.length) p.push(`the offer repeats an instance id: ${ids.join(", ")}`);
      if (instances.length > WELCOME_LIMITS.maxInstances)
        p.push(`the offer has ${instances.length} instances; welcome allows ${WELCOME_LIMITS.maxInstances} (SRP-OFF-003)`);
      for (const i of instances) {
        if (i.maxOutputTokens !== undefined && i.maxOutputTokens > i.contextLength)
          p.push(`${i.instanceId}: maxOutputTokens ${i.maxOutputTokens} > contextLength ${i.contextLength} (SRP-OFF-002)`);
      }
      // Nothing is accepted before offer_ack: a heartbeat now lists no instance.
      const early = await s.peer.take(isHeartbeat, 1500, 0).catch(() => undefined);
      if (early && Array.isArray(early.load) && early.load.length > 0) {
        p.push(
          `a heartbeat sent before offer_ack lists ${early.load.length} instance(s); load lists accepted instances only, and none is accepted before offer_ack (SRP-LIV-004)`,
        );
      }
      const [accepted, ...others] = instances;
      const ackAt = Date.now();
      const mark = s.peer.received.length;
      s.peer.send({
        type: "offer_ack",
        results: instances.map((i, k) =>
          k === 0
            ? { instanceId: i.instanceId, accepted: true }
            : {
                instanceId: i.instanceId,
                accepted: false,
                reason: { code: "offer.model_refused", message: "conformance: refused on purpose" },
              },
        ),
      });
      let late: Record<string, unknown> | undefined;
      while (!late) {
        const hb = await s.peer.take(isHeartbeat, 3000, mark, "a heartbeat after offer_ack");
        if ((s.peer.arrival(hb)?.at ?? 0) >= ackAt + 100) late = hb;
      }
      const load = late.load as Array<{ instanceId: string; active: number; capacity: number }>;
      const listed = load.map((l) => l.instanceId).sort();
      if (!sameJson(listed, [accepted!.instanceId]))
        p.push(
          `the first heartbeat after offer_ack lists [${listed.join(", ")}]; it must list exactly the accepted instance ${accepted!.instanceId} (SRP-LIV-004)`,
        );
      for (const l of load) {
        const inst = instances.find((i) => i.instanceId === l.instanceId);
        if (inst && l.capacity > inst.maxConcurrency)
          p.push(`${l.instanceId}: heartbeat capacity ${l.capacity} exceeds maxConcurrency ${inst.maxConcurrency} (SRP-LIV-004)`);
        if (l.active !== 0) p.push(`${l.instanceId}: heartbeat active is ${l.active} with no job sent (SRP-LIV-004)`);
      }
      const refused = others.find((i) => i.instanceId !== accepted!.instanceId);
      if (refused) {
        const serving: Serving = {
          peer: s.peer,
          hub: s.hub,
          nodeId: String(s.auth.nodeId),
          hubId: s.hub.identity.id,
          instances: [accepted!],
          position: INITIAL_POSITION,
          accept: s.accept,
        };
        const ran = await runJob(serving, chatJob(refused, false, 4), 5000);
        if (ran.end.type !== "job_error" || ran.end.code !== "job.unknown_instance" || ran.end.chunks !== 0) {
          p.push(
            `a job for the refused instance ${refused.instanceId} ended with ${describe(ran.end)}; expected job_error job.unknown_instance with chunks 0 (SRP-JOB-005)`,
          );
        }
      }
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.job.stream",
    "Streams a job as chunks with seq 0, 1, 2, ... then done with the chunk count, usage equal to the receipt's, and a receipt that is signed, describes the job, hashes request and chunks, prices usage, and numbers 1 then 2 with running totals",
    [
      "SRP-JOB-007",
      "SRP-JOB-008",
      "SRP-JOB-012",
      "SRP-JOB-013",
      "SRP-ATT-001",
      "SRP-ATT-003",
      "SRP-ATT-004",
      "SRP-ATT-005",
      "SRP-ATT-006",
      "SRP-ATT-007",
      "SRP-ATT-008",
    ],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const inst = pick(s, true);
      const p: string[] = [];
      const runs: Ran[] = [];
      for (const n of [1, 2]) {
        const previous = s.position;
        const ran = await runDone(s, chatJob(inst, true, 8));
        runs.push(ran);
        p.push(...jobProblems(s, ran, previous).map((x) => `job ${n}: ${x}`));
        countersign(s, ran.receipt);
      }
      await sleep(200);
      for (const [n, ran] of runs.entries()) {
        const extra = afterEnd(s.peer, ran);
        if (extra.length) p.push(`job ${n + 1}: the node sent ${extra.map((m) => m.type).join(", ")} after done (SRP-JOB-012)`);
      }
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.job.nonstream",
    "Answers a non-streamed job with no chunks and one done carrying the complete response, whose hash the receipt binds",
    ["SRP-JOB-009", "SRP-JOB-012", "SRP-JOB-013", "SRP-ATT-001", "SRP-ATT-003", "SRP-ATT-004", "SRP-ATT-005", "SRP-ATT-008"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const ran = await runDone(s, chatJob(pick(s, false), false, 8));
      const p = jobProblems(s, ran, s.position);
      countersign(s, ran.receipt);
      await sleep(200);
      const extra = afterEnd(s.peer, ran);
      if (extra.length) p.push(`the node sent ${extra.map((m) => m.type).join(", ")} after done (SRP-JOB-012)`);
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.job.unknown_instance",
    "Answers a job for an instance it did not offer at once with job_error job.unknown_instance and chunks 0",
    ["SRP-JOB-005", "SRP-ERR-001"],
    "MUST",
    (ctx) => refusesJob(ctx, (inst) => chatJob({ ...inst, instanceId: `conf-not-offered-${hex(4)}` }, false, 4), "job.unknown_instance"),
  ),
  check(
    "provider.job.unknown_model",
    "Answers a job whose model is not its instance's model at once with job_error job.unknown_model and chunks 0",
    ["SRP-JOB-005", "SRP-ERR-001"],
    "MUST",
    (ctx) => refusesJob(ctx, (inst) => ({ ...chatJob(inst, false, 4), model: `conformance-not-served-${hex(4)}` }), "job.unknown_model"),
  ),
  check(
    "provider.job.cancel",
    "After cancel, sends no further chunks and at most one end (job_error job.cancelled, or done), frees the slot, and ignores cancel for unknown or ended jobs",
    ["SRP-JOB-018", "SRP-JOB-012", "SRP-JOB-013", "SRP-LIV-004"],
    "MUST",
    async (ctx) => {
      const GRACE_MS = 500;
      const s = await serving(ctx, 1000);
      const inst = pick(s, true);
      const job = chatJob(inst, true, 4096);
      const from = s.peer.received.length;
      s.peer.send(job);
      const first = await s.peer.take(ofJob(job.jobId), 15_000, from, `the first chunk of ${job.jobId}`);
      if (first.type !== "chunk")
        fail(`a streamed job of up to 4096 tokens ended with ${describe(first)} before any chunk, so cancel could not be tested`);
      const cancelAt = Date.now();
      s.peer.send({ type: "cancel", jobId: job.jobId, reason: "consumer_gone", message: "conformance: the consumer went away" });
      await sleep(2000);
      const p: string[] = [];
      let warning: string | undefined;
      const mine = s.peer.received.slice(from).filter((r) => r.message && ofJob(job.jobId)(r.message));
      const ends = mine.filter((r) => JOB_END.has(r.message!.type as string));
      const late = mine.filter((r) => r.message!.type === "chunk" && r.at > cancelAt + GRACE_MS);
      if (late.length) p.push(`${late.length} chunk(s) arrived more than ${GRACE_MS} ms after cancel (SRP-JOB-018)`);
      if (ends.length > 1)
        p.push(`the node ended the cancelled job ${ends.length} times (${ends.map((e) => e.message!.type).join(", ")}) (SRP-JOB-012)`);
      const end = ends[0];
      if (end) {
        const endIndex = mine.indexOf(end);
        const before = mine.slice(0, endIndex).filter((r) => r.message!.type === "chunk").length;
        const after = mine.slice(endIndex + 1).filter((r) => r.message!.type === "chunk").length;
        if (after) p.push(`${after} chunk(s) after ${String(end.message!.type)} (SRP-JOB-012)`);
        if (end.message!.chunks !== before)
          p.push(
            `${String(end.message!.type)}.chunks is ${String(end.message!.chunks)}; ${before} chunk(s) arrived before it (SRP-JOB-013)`,
          );
        if (end.message!.type === "job_error" && end.message!.code !== "job.cancelled")
          warning = `the cancelled job ended with job_error ${String(end.message!.code)}; it should be job.cancelled (SRP-JOB-018)`;
      }
      // The slot is free: a heartbeat sent after the cancel counts no active job.
      let hb = s.peer.received.find((r) => r.message?.type === "heartbeat" && r.at > cancelAt + 300)?.message;
      hb ??= await s.peer.take(
        (m) => isHeartbeat(m) && (s.peer.arrival(m)?.at ?? 0) > cancelAt + 300,
        3000,
        from,
        "a heartbeat after the cancel",
      );
      const entry = (hb.load as Array<{ instanceId: string; active: number }>).find((l) => l.instanceId === inst.instanceId);
      if (!entry) p.push(`the heartbeat after the cancel has no load entry for ${inst.instanceId} (SRP-LIV-004)`);
      else if (entry.active !== 0)
        p.push(
          `the heartbeat after the cancel reports ${entry.active} active job(s) on ${inst.instanceId}; the cancelled job's slot must be free (SRP-JOB-018)`,
        );
      // Cancels for a job the node does not know, and for one that has ended, are ignored.
      const mark = s.peer.received.length;
      s.peer.send({ type: "cancel", jobId: `job_conf_unknown_${hex(6)}`, reason: "superseded" });
      s.peer.send({ type: "cancel", jobId: job.jobId, reason: "superseded" });
      await sleep(300);
      const answers = s.peer.matching((m) => m.type !== "heartbeat", mark);
      if (answers.length)
        p.push(
          `the node answered cancel for an unknown or ended job with ${answers.map((m) => `${String(m.type)} ${String(m.code ?? "")}`).join(", ")} (SRP-JOB-018)`,
        );
      if (!s.peer.open) fail([...p, `the node closed the session (${s.peer.closed?.code})`].join("; "));
      const next = await runJob(s, chatJob(inst, true, 4));
      if (next.end.type !== "done") p.push(`a job after the cancel ended with ${describe(next.end)}`);
      if (p.length) fail(p.join("; "));
      if (warning) return { status: "warning", details: warning };
    },
  ),
  check(
    "provider.job.deadline",
    "Ends a job that cannot finish before its deadline with job_error job.deadline_exceeded",
    ["SRP-JOB-006", "SRP-JOB-013"],
    "SHOULD",
    async (ctx) => {
      const s = await serving(ctx);
      // The harness makes the job too slow for its deadline itself: a deadline 1.5 s away first;
      // a backend that finishes within it gets a deadline a quarter of the time it took, then
      // one already reached when the job is sent. Only a node that finishes all three is faulted.
      const tries: string[] = [];
      let took = 0;
      let ran: Ran | undefined;
      let job: Job | undefined;
      for (const attempt of [0, 1, 2]) {
        const ms = attempt === 0 ? 1500 : attempt === 1 ? Math.max(1, Math.floor(took / 4)) : 0;
        const sent = Date.now();
        job = { ...chatJob(pick(s, true), true, 4096), deadline: sent + ms };
        ran = await runJob(s, job, ms + 6000).catch((e: Error) =>
          fail(`a job with a deadline ${ms} ms away did not end within ${ms + 6000} ms: ${e.message}`),
        );
        if (ran.end.type !== "done") break;
        took = Date.now() - sent;
        tries.push(`${took} ms with a deadline ${ms} ms ahead`);
      }
      if (!ran || !job) fail("no job ran");
      if (ran.end.type === "done")
        return { status: "warning", details: `the node finished every job despite its deadline: ${tries.join(", ")}` };
      const p: string[] = [];
      if (ran.end.code !== "job.deadline_exceeded") p.push(`the job ended with ${describe(ran.end)}, expected job.deadline_exceeded`);
      if (ran.end.chunks !== ran.chunks.length)
        p.push(`job_error.chunks is ${String(ran.end.chunks)}; ${ran.chunks.length} chunk(s) arrived (SRP-JOB-013)`);
      const at = s.peer.arrival(ran.end)?.at ?? Date.now();
      if (at > job.deadline + 2000) p.push(`the job_error came ${at - job.deadline} ms after the deadline`);
      if (p.length) fail(p.join("; "));
      if (tries.length > 0)
        return { status: "pass", details: `ended with job.deadline_exceeded after the node finished ${tries.join(", ")}` };
    },
  ),
  check(
    "provider.receipt.countersign",
    "Accepts its receipt countersigned by the hub without error, and keeps serving",
    ["SRP-ATT-013"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const inst = pick(s, true);
      const ran = await runDone(s, chatJob(inst, true, 6));
      const mark = s.peer.received.length;
      countersign(s, ran.receipt);
      await sleep(500);
      const errors = s.peer.matching((m) => m.type === "error", mark);
      if (errors.length)
        fail(`the node answered its valid countersigned receipt with error ${String(errors[0]!.code)}: ${String(errors[0]!.message)}`);
      ensure(s.peer.open, `the node closed the session after the receipt (${s.peer.closed?.code})`);
      await runDone(s, chatJob(inst, false, 4));
    },
  ),
  check(
    "provider.receipt.sequence",
    "Continues its receipt seq and running totals with the same hub across sessions: after a reconnect the next receipt follows the last one",
    ["SRP-ATT-006", "SRP-ATT-007"],
    "MUST",
    async (ctx) => {
      const back = await servedAndBack(ctx);
      if (!back) return { status: "skipped", details: "the provider reconnected with another node id; receipt sequences are per node id" };
      const { s, first, peer, auth } = back;
      const p = jobProblems(s, first, INITIAL_POSITION).map((x) => `first session: ${x}`);
      peer.send(welcome(auth, undefined, s.position));
      const again: Serving = { ...s, peer, instances: await acceptOffer(peer) };
      const second = await runDone(again, chatJob(pick(again, false), false, 4));
      p.push(...jobProblems(again, second, s.position).map((x) => `second session: ${x}`));
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.receipt.bad_hub_signature",
    "Answers a receipt whose hubSig does not verify with error receipt.bad_hub_signature and the jobId; the session continues",
    ["SRP-ATT-013", "SRP-ERR-003"],
    "SHOULD",
    async (ctx) => {
      const s = await serving(ctx);
      const ran = await runDone(s, chatJob(pick(s, true), true, 6));
      const mark = s.peer.received.length;
      countersign(s, ran.receipt, generateIdentity());
      await expectReceiptError(s, ran.job.jobId, mark, "receipt.bad_hub_signature");
    },
  ),
  check(
    "provider.receipt.field_mismatch",
    "Answers a validly countersigned receipt that differs from the one it sent with error receipt.field_mismatch and the jobId",
    ["SRP-ATT-013", "SRP-ERR-003"],
    "SHOULD",
    async (ctx) => {
      const s = await serving(ctx);
      const ran = await runDone(s, chatJob(pick(s, true), true, 6));
      const mark = s.peer.received.length;
      const changed = omitFields({ ...ran.receipt, finishedAt: ran.receipt.finishedAt + 1 }, "nodeSig");
      countersign(s, { ...changed, nodeSig: ran.receipt.nodeSig } as Receipt);
      await expectReceiptError(s, ran.job.jobId, mark, "receipt.field_mismatch");
    },
  ),
  check(
    "provider.receipt.member_order",
    "Takes a countersigned receipt whose members come in another order as its own (equal as canonical JSON): a second copy is then a duplicate, answered with receipt.field_mismatch, and the first drew no error",
    ["SRP-ATT-013", "SRP-ATT-021"],
    "SHOULD",
    async (ctx) => {
      const s = await serving(ctx);
      const ran = await runDone(s, chatJob(pick(s, true), true, 6));
      const mark = s.peer.received.length;
      // The node's own receipt, countersigned, sent with its members in reverse order, twice.
      const body = omitFields(ran.receipt, "hubSig");
      const reversed = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).reverse());
      const signed = { ...body, hubSig: signDetached("receiptHub", body, s.hub.identity) };
      s.peer.send({ type: "receipt", receipt: reversed(signed) });
      s.peer.send({ type: "receipt", receipt: reversed(signed) });
      s.position = { lastSeq: ran.receipt.seq, totals: ran.receipt.totals };
      // Exactly one error, for the duplicate: had the first been refused, both would draw one.
      await expectReceiptError(s, ran.job.jobId, mark, "receipt.field_mismatch");
      const second = await s.peer
        .take((x) => x.type === "error", 1000, mark)
        .then(
          (m) => m,
          () => undefined,
        );
      if (second)
        fail(
          `the node refused a countersigned receipt that differs from its own only in member order (${String(second.code)}): receipts compare as canonical JSON`,
        );
    },
  ),
  check(
    "provider.probe",
    "Answers each probe with exactly one probe_result (ok for an offered instance, job.unknown_instance for another), producing no job output and no receipt",
    ["SRP-LIV-008", "SRP-LIV-009"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const inst = pick(s, false);
      const from = s.peer.received.length;
      const probes = [
        { probeId: `probe_conf_${hex(6)}`, instanceId: inst.instanceId },
        { probeId: `probe_conf_${hex(6)}`, instanceId: `conf-not-offered-${hex(4)}` },
      ];
      for (const pr of probes) s.peer.send({ type: "probe", ...pr, deadline: Date.now() + 10_000 });
      const p: string[] = [];
      const results = [];
      for (const pr of probes) {
        results.push(
          await s.peer.take((m) => m.type === "probe_result" && m.probeId === pr.probeId, 12_000, from, `probe_result for ${pr.probeId}`),
        );
      }
      await sleep(500);
      const [good, unknown] = results as [Record<string, unknown>, Record<string, unknown>];
      if (good.instanceId !== inst.instanceId) p.push(`probe_result.instanceId is ${String(good.instanceId)}, expected ${inst.instanceId}`);
      if (good.ok !== true) {
        const e = good.error as { code?: string; message?: string } | undefined;
        if (!e) p.push("probe_result has ok false and no error (SRP-LIV-008)");
        else if (!/^job\.upstream_/.test(e.code ?? "")) p.push(`the probe of an offered instance failed with ${e.code}: ${e.message}`);
      }
      if (unknown.ok !== false || (unknown.error as { code?: string } | undefined)?.code !== "job.unknown_instance") {
        p.push(
          `the probe of an instance not offered was answered ${JSON.stringify(omitFields(unknown, "type")).slice(0, 200)}; expected ok false with error job.unknown_instance (SRP-LIV-008)`,
        );
      }
      if (unknown.instanceId !== probes[1]!.instanceId) p.push("probe_result.instanceId does not echo the probe's");
      for (const pr of probes) {
        const n = s.peer.matching((m) => m.type === "probe_result" && m.probeId === pr.probeId, from).length;
        if (n !== 1) p.push(`${n} probe_results for ${pr.probeId}; exactly one is due (SRP-LIV-008)`);
      }
      const output = s.peer.matching((m) => m.type === "chunk" || m.type === "done" || m.type === "job_error", from);
      if (output.length) p.push(`the node sent ${output.map((m) => m.type).join(", ")} in answer to a probe (SRP-LIV-009)`);
      // A probe does not advance the receipt sequence: the first job's receipt is still 1.
      const ran = await runDone(s, chatJob(inst, false, 4));
      const r = ran.receipt;
      if (r.seq !== 1) p.push(`the first receipt after probes has seq ${r.seq}; probes do not advance the sequence (SRP-LIV-009)`);
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.statement.agree",
    "Accepts a correct, signed statement of its receipts silently: no dispute, no error, the session goes on",
    ["SRP-SET-008", "SRP-SET-009"],
    "MUST",
    async (ctx) => {
      const s = await servedTwice(ctx);
      const from = s.peer.received.length;
      s.peer.send({ type: "statement", statement: statementFor(s) });
      await sleep(1000);
      const said = s.peer.matching((m) => m.type === "dispute" || m.type === "error", from);
      if (said.length)
        fail(
          `the node answered a correct statement with ${said.map((m) => `${String(m.type)} ${String(m.kind ?? m.code)}: ${String(m.message)}`).join("; ")}`,
        );
      const closed = await s.peer.closedWithin(100);
      ensure(!closed, `the node closed the session after a correct statement (${closed?.code})`);
    },
  ),
  check(
    "provider.statement.dispute",
    "Disputes a statement whose signature does not verify (bad_signature), whose totals differ from its receipts (totals_mismatch), and one that shows the hub lacks receipts (missing_receipt), each with the statementId, without closing the session",
    ["SRP-SET-008", "SRP-SET-009", "SRP-SET-011"],
    "MUST",
    async (ctx) => {
      const s = await servedTwice(ctx);
      const cases: Array<{ kind: string; statement: Statement }> = [
        { kind: "bad_signature", statement: statementFor(s, {}, generateIdentity()) },
        {
          kind: "totals_mismatch",
          statement: statementFor(s, { totals: { ...s.position.totals, cost: formatAmount(parseAmount(s.position.totals.cost) + 1n) } }),
        },
        { kind: "missing_receipt", statement: statementFor(s, { receipts: { count: 1, firstSeq: 1, lastSeq: s.position.lastSeq } }) },
      ];
      const p: string[] = [];
      for (const c of cases) {
        const from = s.peer.received.length;
        s.peer.send({ type: "statement", statement: c.statement });
        const d = await s.peer.take((m) => m.type === "dispute", 3000, from, `a dispute of kind ${c.kind}`).catch(() => undefined);
        if (!d) {
          p.push(`no dispute within 3 s for a statement that should be disputed as ${c.kind}`);
          continue;
        }
        if (d.kind !== c.kind) p.push(`a statement that should be disputed as ${c.kind} was disputed as ${String(d.kind)}`);
        if (d.statementId !== c.statement.statementId)
          p.push(`the ${c.kind} dispute carries statementId ${String(d.statementId)}, expected ${c.statement.statementId}`);
        if (c.kind === "totals_mismatch" && !sameJson((d.node as { totals?: unknown } | undefined)?.totals, s.position.totals))
          p.push("the totals_mismatch dispute's node totals are not the node's own totals at that seq (SRP-SET-009)");
      }
      const closed = await s.peer.closedWithin(200);
      if (closed) p.push(`the node closed the session after disputing (${closed.code}); a dispute does not end it`);
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.welcome.position",
    "Disputes a welcome whose recorded receipt position differs from its own (missing_receipt when the hub lacks receipts), with no statementId, and keeps its own numbering",
    ["SRP-SET-002", "SRP-SET-003"],
    "MUST",
    async (ctx) => {
      const back = await servedAndBack(ctx);
      if (!back) return { status: "skipped", details: "the provider reconnected with another node id; positions are per node id" };
      const { s, peer, auth } = back;
      // The hub "lost" the node's receipt: it welcomes the node as if it had none.
      peer.send(welcome(auth, undefined, INITIAL_POSITION));
      const p: string[] = [];
      const d = await peer.take((m) => m.type === "dispute", 3000, 0, "a dispute of the welcome's position").catch(() => undefined);
      if (!d) p.push("no dispute within 3 s of a welcome that records lastSeq 0 while the node issued receipt 1 (SRP-SET-002)");
      else {
        if (d.kind !== "missing_receipt") p.push(`the dispute's kind is ${String(d.kind)}, expected missing_receipt (SRP-SET-002)`);
        if (d.statementId !== undefined) p.push("a dispute of a welcome carries no statementId (SRP-SET-002)");
        if (!sameJson(d.hub, INITIAL_POSITION)) p.push(`dispute.hub is ${JSON.stringify(d.hub)}, expected welcome.receipts (SRP-SET-002)`);
        if (!sameJson(d.node, s.position))
          p.push(`dispute.node is ${JSON.stringify(d.node)}, expected the node's own position ${JSON.stringify(s.position)} (SRP-SET-002)`);
      }
      // SRP-SET-003: the node goes on from its own position, not the hub's.
      const again: Serving = { ...s, peer, instances: await acceptOffer(peer) };
      const second = await runDone(again, chatJob(pick(again, false), false, 4));
      if (second.receipt.seq !== s.position.lastSeq + 1)
        p.push(
          `after the disputed welcome the next receipt has seq ${second.receipt.seq}; the node continues from its own position, ${s.position.lastSeq + 1} (SRP-SET-003)`,
        );
      if (p.length) fail(p.join("; "));
    },
  ),
];
