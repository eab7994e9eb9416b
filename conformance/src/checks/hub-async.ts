/**
 * Hub-mode checks of async jobs (`spec/v1/jobs.md#async-jobs`, `consumer.md` "Async jobs"):
 * the `srp.async_jobs` announcement is well formed when present (SRP-JOB-039); `progress`
 * and `result` for a job of another API, or on a session that announced none, are protocol
 * violations (SRP-JOB-040); a hub that announced async jobs refuses inconsistent async
 * instances with `offer.invalid` (SRP-OFF-019, SRP-OFF-020). The run checks act as a node
 * with a fresh `run` instance and as its consumer (`POST /v1/runs` with the account key):
 * a run relayed end to end, its result served byte for byte and billed at its receipt
 * (SRP-CON-088 to SRP-CON-091); a manifest that does not match its bytes refused and never
 * billed (SRP-JOB-043, SRP-CON-092); a result part at the wrong offset or over `partBytes`
 * ending the session (SRP-JOB-042); a receipt with two runs refused as implausible
 * (SRP-ATT-027); webhook URLs a hub must refuse (SRP-CON-093).
 */
import {
  asyncJobsOf,
  canonicalize,
  fromBase64,
  formatAmount,
  randomBytes,
  receiptCost,
  resultFrames,
  sha256Hex,
  toBase64,
  utf8,
} from "@srp/core";
import { AsyncJobObject, checkConsumerBody, type Instance, type Job, type Usage } from "@srp/core/schema";
import type { AsyncJobsAnnouncement } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { bodyText, errorProblem, get, json, post, surfaces, within, type Json } from "../harness/consumer.js";
import { needKey, openSession, stillServing, type HubContext } from "../harness/hub-session.js";
import { ASK, hex, instance, isJob, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { ensure, fail, skip } from "../harness/verdict.js";
import { expectRejection, WireTimeoutError } from "../harness/wire.js";

/** The welcome's `ext`, if any. */
const extOf = (welcome: Record<string, unknown>) => welcome.ext as Record<string, unknown> | undefined;
const sameJson = (a: unknown, b: unknown) => canonicalize(a) === canonicalize(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The price of the harness's run instances: per second of run time and per run (1000 and 5000 units). */
const RUN_PRICE = { input: "0", output: "0", second: "1000000000", run: "5000000000" };
/** A small valid `io` (SRP-OFF-019, SRP-OFF-020). */
const RUN_IO = { input: { type: "object" }, output: {} };
/** The run time the harness's runs ask for at most, and are billed for at most. */
const MAX_SECONDS = 10;
/** The usage of a run that took a second (SRP-JOB-052). */
const RUN_USAGE: Usage = { promptTokens: 0, completionTokens: 0, seconds: 1, runs: 1, measured: true };

/** A run admitted by the hub and sent to the harness's node as a `runs` job. */
interface StartedRun {
  node: HarnessNode;
  /** The consumer base URL (`.../v1`). */
  base: string;
  limits: AsyncJobsAnnouncement;
  inst: Instance;
  /** The 202 answer's job id. */
  id: string;
  /** Where the job is read (its `Location`, absolute). */
  url: string;
  job: Job;
}

/** GETs a job's view as the harness's account. */
async function readView(ctx: HubContext, url: string): Promise<Json> {
  const res = await get(url, ctx.accountKey);
  return json(res, `GET ${url}`);
}

/**
 * Offers a fresh `run` instance (skipping when the hub announces no async jobs, lists no
 * `srp.runs` surface, or no key is given), posts a run for it as the consumer, checks the
 * 202 answer (SRP-CON-089) and waits for the `runs` job on the node (SRP-JOB-039).
 */
async function startRun(ctx: HubContext): Promise<StartedRun> {
  needKey(ctx);
  const base = await surfaces(ctx, "srp.runs");
  const inst = instance(newModel(), { capabilities: ["run"], io: RUN_IO, price: RUN_PRICE, maxConcurrency: 2 });
  let limits: AsyncJobsAnnouncement | undefined;
  const node = await HarnessNode.open(ctx, [inst], undefined, (welcome) => {
    limits = asyncJobsOf(welcome as never);
    if (!limits) skip("the hub announces no async jobs (welcome.ext srp.async_jobs)");
  });
  const input = { prompt: `conformance run ${hex(4)}`, scale: 2 };
  const call = post(ctx, base, "/runs", { model: inst.model, input, max_seconds: MAX_SECONDS }, {}, "bearer");
  const res = await within(call.response, 10_000, "the answer to POST /v1/runs");
  if (res.status !== 202) {
    const text = await bodyText(res).catch(() => "");
    if (res.status === 402 && text.includes("billing.insufficient_credits"))
      skip(
        `the account under test cannot pay a run of ${MAX_SECONDS} s (402: ${text.slice(0, 200)}); add credit to it and run the check again`,
      );
    fail(`POST /v1/runs for the harness's run model answered ${res.status}, expected 202 (SRP-CON-089): ${text.slice(0, 300)}`);
  }
  const created = await json(res, "POST /v1/runs");
  const problems: string[] = [];
  const schema = checkConsumerBody(AsyncJobObject, created);
  if (schema) problems.push(`the 202 answer does not match AsyncJobObject: ${schema}`);
  if (created.object !== "srp.run") problems.push(`object is ${JSON.stringify(created.object)}, expected "srp.run"`);
  if (typeof created.id !== "string" || !created.id.startsWith("run_"))
    problems.push(`id ${JSON.stringify(created.id)} does not start with run_`);
  if (created.status !== "queued") problems.push(`status is ${JSON.stringify(created.status)}, expected "queued"`);
  const location = res.headers.get("location");
  const id = String(created.id);
  const url = location ? new URL(location, `${base}/`).toString() : "";
  if (!location) problems.push("the 202 answer has no Location");
  else if (!new URL(url).pathname.endsWith(`/v1/jobs/${id}`)) problems.push(`Location ${location} is not GET /v1/jobs/${id}`);
  if (problems.length) fail(`${problems.join("; ")} (SRP-CON-089)`);
  // Once the check has ended the run is deleted (SRP-CON-091): a run whose session the check ended is not left
  // suspended for the hub's resume window (SRP-JOB-045), and no result is kept for the retention time.
  ctx.tracker.cleanups.push(async () => {
    const res = await fetch(url, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ctx.accountKey ?? ""}` },
      signal: AbortSignal.timeout(5000),
    }).catch(() => undefined);
    await res?.body?.cancel().catch(() => undefined);
  });
  // Waits up to 10 s for the job, reading the run's view meanwhile: a run that ended without one fails at once.
  let job: Job | undefined;
  let view: Json = created;
  for (const giveUp = Date.now() + 10_000; !job && Date.now() < giveUp; ) {
    try {
      job = (await node.peer.take(isJob, 500, 0, "a runs job")) as unknown as Job;
    } catch (e) {
      if (!(e instanceof WireTimeoutError)) throw e;
      view = await readView(ctx, url);
      if (view.status === "completed" || view.status === "failed") break;
    }
  }
  if (!job)
    fail(
      `the hub admitted the run (202) but sent no runs job to the harness's run instance (GET ${location}: status ${String(view.status)}${isObject(view.error) ? `, error ${String(view.error.code)}: ${String(view.error.message)}` : ""})`,
    );
  const request = job.request as Json;
  if (job.api !== "runs") problems.push(`job.api is ${String(job.api)}, expected runs`);
  if (job.stream !== false) problems.push(`job.stream is ${String(job.stream)}, expected false`);
  if (job.instanceId !== inst.instanceId || job.model !== inst.model)
    problems.push(`the job names ${job.instanceId} (${job.model}), not the offered instance ${inst.instanceId} (${inst.model})`);
  if (!sameJson(job.quote, inst.price)) problems.push(`job.quote ${JSON.stringify(job.quote)} is not the instance's price`);
  if (!sameJson(request?.input, input))
    problems.push(`job.request.input ${canonicalize(request?.input).slice(0, 200)} is not the consumer's input`);
  if (problems.length) fail(`${problems.join("; ")} (SRP-JOB-039)`);
  return { node, base, limits: limits!, inst, id, url, job };
}

/** A run's result: two artifacts (the first longer than one part) and an output naming both. */
function runResult(limits: AsyncJobsAnnouncement) {
  const image = randomBytes(limits.partBytes + 4321);
  const log = utf8("conformance run: ok\n".repeat(40));
  const stream = new Uint8Array(image.length + log.length);
  stream.set(image, 0);
  stream.set(log, image.length);
  const artifacts = [
    { name: "image.png", content_type: "image/png", bytes: image.length, sha256: sha256Hex(image) },
    { name: "log.txt", content_type: "text/plain", bytes: log.length, sha256: sha256Hex(log) },
  ];
  const manifest = {
    object: "srp.result",
    artifacts,
    output: { image: "srp-artifact:image.png", logs: ["srp-artifact:log.txt"], note: "done", scale: 2 },
  };
  return { stream, parts: [image, log], artifacts, manifest };
}

/** Sends `stream` as the job's `result` frames of the announced part size; returns how many. */
function sendResult(run: StartedRun, stream: Uint8Array): number {
  const frames = resultFrames(run.job.jobId, stream, run.limits.partBytes);
  for (const f of frames) run.node.peer.send(f);
  return frames.length;
}

/**
 * From now on the node answers any further job (the hub failing the run over to the same
 * node, SRP-JOB-050) with a non-retryable `job_error`, so that the run ends.
 */
function refuseRetries(run: StartedRun): string[] {
  const retried: string[] = [];
  const before = run.node.peer.onMessage;
  run.node.peer.onMessage = (m) => {
    before?.(m);
    if (m.type === "job" && m.jobId !== run.job.jobId) {
      retried.push(String(m.jobId));
      run.node.peer.send({
        type: "job_error",
        jobId: m.jobId,
        code: "job.invalid_request",
        message: "conformance: the retried run is refused",
        retryable: false,
        chunks: 0,
      });
    }
  };
  // A job that arrived before the handler was set.
  for (const m of run.node.peer.matching(isJob))
    if (m.jobId !== run.job.jobId && !retried.includes(String(m.jobId))) run.node.peer.onMessage(m);
  return retried;
}

/** Polls the job until it has ended (completed or failed); returns every view read, the last one ended. */
async function untilEnded(ctx: HubContext, url: string, ms = 15_000): Promise<Json[]> {
  const views: Json[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await readView(ctx, url);
    views.push(v);
    if (v.status === "completed" || v.status === "failed") return views;
    if (Date.now() > deadline) fail(`GET ${url}: the job is still ${String(v.status)} ${ms / 1000} s after its done`);
    await sleep(100);
  }
}

/** Problems with a job's views over time: progress 0..100, never decreasing, 100 only once completed (SRP-CON-090). */
function progressProblems(views: Json[]): string[] {
  const p: string[] = [];
  let last = 0;
  for (const v of views) {
    const n = v.progress;
    if (typeof n !== "number" || n < last) p.push(`progress went from ${last} to ${String(n)}`);
    else last = n;
    if (n === 100 && v.status !== "completed") p.push(`progress is 100 while the job is ${String(v.status)}`);
  }
  return p;
}

/** Problems with a job that must not have been billed (SRP-CON-092). */
function unbilledProblems(v: Json): string[] {
  const p: string[] = [];
  if (v.cost_units !== "0") p.push(`cost_units is ${JSON.stringify(v.cost_units)}, expected "0" (nothing billed)`);
  if (v.receipt_id !== null) p.push(`receipt_id is ${JSON.stringify(v.receipt_id)}, expected null`);
  return p;
}

/** Receipts the hub sent the node for any job. */
const receiptsSent = (run: StartedRun) => run.node.peer.matching((m) => m.type === "receipt");

/** Hub-mode checks of async jobs. */
export const HUB_ASYNC_CHECKS: Check<HubContext>[] = [
  check(
    "hub.async.announce",
    "Announces async jobs, if at all, as welcome.ext srp.async_jobs with partBytes, maxResultBytes and resumeWindowMs within their bounds",
    ["SRP-JOB-039"],
    "MUST",
    async (ctx) => {
      const { welcome } = await openSession(ctx);
      const value = extOf(welcome)?.["srp.async_jobs"];
      // A hub that announces nothing takes no async jobs: nothing more to check here.
      if (value !== undefined && !asyncJobsOf(welcome as never))
        fail(`welcome.ext srp.async_jobs is ${JSON.stringify(value).slice(0, 200)}, outside SRP-JOB-039's bounds`);
    },
  ),
  check(
    "hub.async.frames_without_announce",
    "Answers progress and result for a job of a non-async API (or, on a hub that announces no async jobs, for any job) with protocol.unexpected_message and close 1002",
    ["SRP-JOB-040"],
    "MUST",
    async (ctx) => {
      const problems: string[] = [];
      for (const frame of [
        { type: "progress", progress: 10 },
        { type: "result", offset: 0, data: "AAECAw==" },
      ]) {
        const session = await openSession(ctx);
        let peer = session.peer;
        let jobId = `job_conf_none_${hex(4)}`;
        if (extOf(session.welcome)?.["srp.async_jobs"] !== undefined) {
          // The hub takes async jobs: the frame is for a running chat.completions job.
          const model = newModel();
          const node = await HarnessNode.open(ctx, [instance(model)]);
          const call = node.chat({ model, messages: ASK, max_tokens: 8 });
          jobId = (await node.nextJob(call)).jobId;
          peer = node.peer;
        }
        peer.send({ ...frame, jobId });
        const problem = await expectRejection(peer, "protocol.unexpected_message", 1002);
        if (problem) problems.push(`${frame.type}: ${problem}`);
      }
      if (problems.length) fail(`${problems.join("; ")} (SRP-JOB-040)`);
    },
  ),
  check(
    "hub.async.offer_rules",
    "A hub that announced async jobs refuses with offer.invalid a run instance without io, an async instance with another capability, and io outside the safe JSON Schema subset",
    ["SRP-OFF-019", "SRP-OFF-020"],
    "MUST",
    async (ctx) => {
      const { peer, welcome } = await openSession(ctx);
      if (!asyncJobsOf(welcome as never)) skip("the hub announces no async jobs (welcome.ext srp.async_jobs)");
      const io = { input: { type: "object" }, output: { type: "string" } };
      const cases = [
        { what: "a run instance without io", inst: instance(newModel(), { capabilities: ["run"] }) },
        { what: "a video instance that also chats", inst: instance(newModel(), { capabilities: ["video", "chat"] }) },
        { what: "io on a chat instance", inst: instance(newModel(), { io }) },
        {
          what: "io with pattern",
          inst: instance(newModel(), { capabilities: ["run"], io: { input: { type: "string", pattern: "^(a+)+$" }, output: {} } }),
        },
        {
          what: "io with a remote $ref",
          inst: instance(newModel(), { capabilities: ["run"], io: { input: { $ref: "https://example.com/s.json" }, output: {} } }),
        },
      ];
      peer.send({ type: "offer", instances: cases.map((c) => c.inst) });
      const ack = await peer.expect("offer_ack", 5000);
      const results = ack.results as Array<{ instanceId: string; accepted: boolean; reason?: { code: string } }>;
      const problems = cases
        .map((c, i) => ({ c, r: results[i] }))
        .filter(({ r }) => r?.accepted !== false || r.reason?.code !== "offer.invalid")
        .map(({ c, r }) => `${c.what}: ${r?.accepted ? "accepted" : `refused with ${String(r?.reason?.code)}`}`);
      if (problems.length) fail(`${problems.join("; ")}; each must be refused with offer.invalid (SRP-OFF-019, SRP-OFF-020)`);
    },
  ),
  check(
    "hub.async.run_roundtrip",
    "Relays a run end to end: POST /v1/runs answered 202 queued with Location, a runs job to the run instance, its result parts and manifest countersigned, the job completed with its artifacts (sha256, URL), its output's srp-artifact references replaced by their URLs, billed at its receipt, each artifact served byte for byte",
    ["SRP-CON-088", "SRP-CON-089", "SRP-CON-090", "SRP-CON-091", "SRP-JOB-042", "SRP-JOB-043"],
    "MUST",
    async (ctx) => {
      const run = await startRun(ctx);
      const { node, job } = run;
      const result = runResult(run.limits);
      node.peer.send({ type: "progress", jobId: job.jobId, progress: 40, message: "conformance" });
      // While the job runs nothing of it is shown or billed (SRP-CON-092).
      const views: Json[] = [await readView(ctx, run.url)];
      const problems: string[] = [];
      const running = views[0]!;
      if (running.status !== "queued" && running.status !== "in_progress")
        problems.push(`before its done the job is ${JSON.stringify(running.status)}`);
      if (!Array.isArray(running.artifacts) || running.artifacts.length > 0) problems.push("before its done the job lists artifacts");
      problems.push(...unbilledProblems(running).map((p) => `before its done: ${p}`));
      const parts = sendResult(run, result.stream);
      ensure(parts >= 2, `the harness's result is ${result.stream.length} bytes, ${parts} part(s) of ${run.limits.partBytes}`);
      const sent = node.responseDone(job, result.manifest, RUN_USAGE);
      const receipt = await node.countersigned(sent);
      views.push(...(await untilEnded(ctx, run.url)));
      const done = views.at(-1)!;
      problems.push(...progressProblems(views));
      if (done.status !== "completed")
        problems.push(
          `the job ended ${String(done.status)}${isObject(done.error) ? ` (${String(done.error.code)}: ${String(done.error.message)})` : ""}, expected completed`,
        );
      else {
        const schema = checkConsumerBody(AsyncJobObject, done);
        if (schema) problems.push(`the completed job does not match AsyncJobObject: ${schema}`);
        if (done.progress !== 100) problems.push(`progress is ${String(done.progress)} once completed, expected 100`);
        const listed = (Array.isArray(done.artifacts) ? done.artifacts : []) as Json[];
        const urls: string[] = [];
        if (listed.length !== result.artifacts.length)
          problems.push(`the job lists ${listed.length} artifacts, the manifest ${result.artifacts.length}`);
        for (const [i, a] of result.artifacts.entries()) {
          const l = listed[i];
          if (!l) continue;
          const { url, ...rest } = l;
          if (!sameJson(rest, a))
            problems.push(`artifact ${i} is ${canonicalize(rest).slice(0, 200)}, the manifest's ${canonicalize(a).slice(0, 200)}`);
          if (typeof url !== "string" || url.length === 0) problems.push(`artifact ${a.name} has no url`);
          else urls.push(url);
        }
        if (urls.length === result.artifacts.length) {
          const expected = { image: urls[0], logs: [urls[1]], note: "done", scale: 2 };
          if (!sameJson(done.output, expected))
            problems.push(
              `output is ${canonicalize(done.output).slice(0, 300)}, expected the node's output with each srp-artifact:<name> replaced by that artifact's url: ${canonicalize(expected).slice(0, 300)}`,
            );
          for (const [i, a] of result.artifacts.entries()) {
            const target = new URL(urls[i]!, `${run.base}/`).toString();
            const res = await get(target, ctx.accountKey);
            const bytes = new Uint8Array(await within(res.arrayBuffer(), 10_000, `reading ${target}`));
            const type = res.headers.get("content-type") ?? "";
            if (res.status !== 200) problems.push(`GET ${target} answered ${res.status}`);
            else if (bytes.length !== result.parts[i]!.length || sha256Hex(bytes) !== a.sha256)
              problems.push(
                `GET ${target} served ${bytes.length} bytes that are not the artifact's ${a.bytes} (sha256 ${sha256Hex(bytes)})`,
              );
            else if (!type.startsWith(a.content_type)) problems.push(`GET ${target} has content-type ${type}, expected ${a.content_type}`);
          }
        }
        if (!sameJson(done.usage, { seconds: RUN_USAGE.seconds, runs: RUN_USAGE.runs }))
          problems.push(`usage is ${JSON.stringify(done.usage)}, the receipt's {"seconds":1,"runs":1}`);
        const cost = formatAmount(receiptCost(RUN_USAGE, job.quote));
        if (done.cost_units !== receipt.cost || done.cost_units !== cost)
          problems.push(`cost_units is ${JSON.stringify(done.cost_units)}, the receipt's cost is ${receipt.cost} (SRP-CON-092)`);
        if (typeof done.receipt_id !== "string" || done.receipt_id.length === 0)
          problems.push(`receipt_id is ${JSON.stringify(done.receipt_id)}`);
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.async.manifest_mismatch",
    "Refuses a run's done whose manifest sha256 does not match the bytes received with error receipt.field_mismatch naming the job, no receipt, the session open; the job ends failed and is not billed",
    ["SRP-JOB-043", "SRP-CON-092"],
    "MUST",
    async (ctx) => {
      const run = await startRun(ctx);
      const { node, job } = run;
      refuseRetries(run);
      const result = runResult(run.limits);
      const bad = structuredClone(result.manifest);
      const sha = bad.artifacts[0]!.sha256;
      bad.artifacts[0]!.sha256 = `${sha[0] === "0" ? "1" : "0"}${sha.slice(1)}`;
      sendResult(run, result.stream);
      node.responseDone(job, bad, RUN_USAGE);
      const answer = await node.answerTo(job.jobId);
      const problems: string[] = [];
      if (answer.type === "receipt")
        problems.push("the hub countersigned a done whose manifest's sha256 does not match the bytes it received");
      else {
        if (answer.code !== "receipt.field_mismatch")
          problems.push(`the hub answered error ${String(answer.code)}, expected receipt.field_mismatch`);
        if (answer.jobId !== job.jobId) problems.push(`the error's jobId is ${JSON.stringify(answer.jobId)}, expected ${job.jobId}`);
      }
      await stillServing(node.peer, "the session whose done was refused");
      const views = await untilEnded(ctx, run.url);
      const end = views.at(-1)!;
      if (end.status !== "failed") problems.push(`the job ended ${String(end.status)}, expected failed`);
      else if (!isObject(end.error)) problems.push("the failed job carries no error");
      problems.push(...unbilledProblems(end), ...progressProblems(views));
      const receipts = receiptsSent(run);
      if (receipts.length > 0 && answer.type !== "receipt") problems.push(`the hub sent ${receipts.length} receipt(s) on the session`);
      if (problems.length) fail(`${problems.join("; ")} (SRP-JOB-043, SRP-CON-092)`);
    },
  ),
  check(
    "hub.async.result_offset",
    "Answers a result part at an offset other than the bytes received, and one larger than partBytes, with protocol.unexpected_message and close 1002",
    ["SRP-JOB-042"],
    "MUST",
    async (ctx) => {
      const problems: string[] = [];
      // A first part at offset 5 (0 expected).
      const first = await startRun(ctx);
      first.node.peer.send({ type: "result", jobId: first.job.jobId, offset: 5, data: toBase64(randomBytes(10)) });
      const atFive = await expectRejection(first.node.peer, "protocol.unexpected_message", 1002);
      if (atFive) problems.push(`a first part at offset 5: ${atFive}`);
      // A valid part of 100 bytes, then one of partBytes + 1 at offset 100.
      const second = await startRun(ctx);
      const { jobId } = second.job;
      second.node.peer.send({ type: "result", jobId, offset: 0, data: toBase64(randomBytes(100)) });
      second.node.peer.send({ type: "result", jobId, offset: 100, data: toBase64(randomBytes(second.limits.partBytes + 1)) });
      const tooLarge = await expectRejection(second.node.peer, "protocol.unexpected_message", 1002);
      if (tooLarge) problems.push(`a part of partBytes + 1 (${second.limits.partBytes + 1}) bytes after a valid one: ${tooLarge}`);
      if (problems.length) fail(`${problems.join("; ")} (SRP-JOB-042)`);
    },
  ),
  check(
    "hub.async.implausible_usage",
    "Refuses the receipt of a run whose usage counts 2 runs with error receipt.implausible_usage naming the job and sends no receipt; the job is not billed",
    ["SRP-ATT-027"],
    "MUST",
    async (ctx) => {
      const run = await startRun(ctx);
      const { node, job } = run;
      refuseRetries(run);
      const result = runResult(run.limits);
      sendResult(run, result.stream);
      node.responseDone(job, result.manifest, { ...RUN_USAGE, runs: 2 });
      const answer = await node.answerTo(job.jobId);
      const problems: string[] = [];
      if (answer.type === "receipt") problems.push("the hub countersigned a run's receipt with usage.runs 2");
      else {
        if (answer.code !== "receipt.implausible_usage")
          problems.push(`the hub answered error ${String(answer.code)}, expected receipt.implausible_usage`);
        if (answer.jobId !== job.jobId) problems.push(`the error's jobId is ${JSON.stringify(answer.jobId)}, expected ${job.jobId}`);
      }
      await stillServing(node.peer, "the session whose receipt was refused");
      const views = await untilEnded(ctx, run.url);
      // Completed (the result delivered unbilled) or failed: either way nothing is billed.
      problems.push(...unbilledProblems(views.at(-1)!), ...progressProblems(views));
      const receipts = receiptsSent(run);
      if (receipts.length > 0 && answer.type !== "receipt") problems.push(`the hub sent ${receipts.length} receipt(s) on the session`);
      if (problems.length) fail(`${problems.join("; ")} (SRP-ATT-027)`);
    },
  ),
  check(
    "hub.async.webhook_refused",
    "Refuses with 400 api.invalid_body a run whose webhook_url carries credentials, is not https:, or names a loopback or link-local host; no job reaches the node",
    ["SRP-CON-093"],
    "MUST",
    async (ctx) => {
      needKey(ctx);
      const base = await surfaces(ctx, "srp.runs");
      const inst = instance(newModel(), { capabilities: ["run"], io: RUN_IO, price: RUN_PRICE, maxConcurrency: 2 });
      const node = await HarnessNode.open(ctx, [inst], undefined, (welcome) => {
        if (!asyncJobsOf(welcome as never)) skip("the hub announces no async jobs (welcome.ext srp.async_jobs)");
      });
      const operator = " (list this check as an expected failure if the operator allowed private webhooks)";
      const cases: Array<[url: string, what: string]> = [
        ["https://conformance:secret@srp-conformance.invalid/hook", "a webhook_url with credentials"],
        ["http://srp-conformance.invalid/hook", `an http: webhook_url${operator}`],
        ["https://127.0.0.1/hook", `a loopback webhook_url${operator}`],
        ["https://169.254.10.10/hook", `a link-local webhook_url${operator}`],
      ];
      const problems: string[] = [];
      for (const [url, what] of cases) {
        const call = post(
          ctx,
          base,
          "/runs",
          { model: inst.model, input: { prompt: "conformance" }, max_seconds: 5, webhook_url: url },
          {},
          "bearer",
        );
        const res = await within(call.response, 10_000, "the answer to POST /v1/runs");
        const problem = await errorProblem(res, what, 400, "api.invalid_body");
        if (problem) problems.push(problem);
      }
      await sleep(100);
      const jobs = node.peer.matching(isJob);
      if (jobs.length > 0) problems.push(`${jobs.length} job(s) reached the node`);
      if (problems.length) fail(`${problems.join("; ")} (SRP-CON-093)`);
    },
  ),
  check(
    "hub.async.resume",
    "Keeps a run across its node's lost session for the announced resume window: on the node's next session (same node id), right after the first offer_ack and before any job, sends resume with the bytes it holds; the rest of the result and the done are then countersigned and the run completes, billed once",
    ["SRP-JOB-045", "SRP-JOB-046", "SRP-JOB-047"],
    "MUST",
    async (ctx) => {
      const run = await startRun(ctx);
      if (run.limits.resumeWindowMs < 5000)
        skip(`the hub announces a resume window of ${run.limits.resumeWindowMs} ms; this check needs 5 s`);
      const result = runResult(run.limits);
      const frames = resultFrames(run.job.jobId, result.stream, run.limits.partBytes);
      // The first part, then the session ends (a clean close: a dropped connection is handled alike).
      run.node.peer.send({ type: "progress", jobId: run.job.jobId, progress: 30 });
      run.node.peer.send(frames[0]!);
      const held = fromBase64(frames[0]!.data)!.length;
      await sleep(200);
      run.node.peer.close(1000, "conformance: the node goes away for a moment");
      await sleep(300);
      const again = await HarnessNode.open(ctx, [run.inst], run.node.identity);
      const resume = await again.peer.take((m) => m.type === "resume" || m.type === "job", 5000, 0, "resume for the suspended run");
      const problems: string[] = [];
      if (resume.type !== "resume")
        problems.push(`the first message after the offer_ack is ${String(resume.type)}, expected resume (SRP-JOB-046)`);
      else {
        if (resume.jobId !== run.job.jobId) problems.push(`resume names ${String(resume.jobId)}, not the run's job ${run.job.jobId}`);
        if (resume.received !== held) problems.push(`resume.received is ${String(resume.received)}; the hub was sent ${held} bytes`);
      }
      if (problems.length) fail(`${problems.join("; ")} (SRP-JOB-046)`);
      for (const f of frames.slice(1)) again.peer.send(f);
      const receipt = await again.countersigned(again.responseDone(run.job, result.manifest, RUN_USAGE));
      const done = (await untilEnded(ctx, run.url)).at(-1)!;
      if (done.status !== "completed")
        fail(
          `after the resume the run ended ${String(done.status)}${isObject(done.error) ? ` (${String(done.error.code)}: ${String(done.error.message)})` : ""}, expected completed`,
        );
      const listed = (Array.isArray(done.artifacts) ? done.artifacts : []) as Json[];
      const first = listed[0]?.url;
      if (typeof first === "string") {
        const bytes = new Uint8Array(await (await get(new URL(first, `${run.base}/`).toString(), ctx.accountKey)).arrayBuffer());
        if (sha256Hex(bytes) !== result.artifacts[0]!.sha256)
          problems.push("the resumed run's first artifact is not the bytes sent across both sessions");
      } else problems.push("the resumed run lists no artifacts");
      if (done.cost_units !== receipt.cost)
        problems.push(`cost_units is ${JSON.stringify(done.cost_units)}, the receipt's ${receipt.cost}`);
      if (problems.length) fail(`${problems.join("; ")} (SRP-JOB-047)`);
    },
  ),
];
