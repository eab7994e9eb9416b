/**
 * Provider-mode checks of async jobs (`spec/v1/jobs.md#async-jobs`): no `video` or `run`
 * instance without the hub's `srp.async_jobs` announcement (SRP-JOB-039); with it, a `videos`
 * and a `runs` job end in contiguous `result` parts and a `done` whose manifest matches them,
 * with `progress` that never decreases (SRP-JOB-040..044, SRP-JOB-051, SRP-JOB-052); a job
 * survives a lost session and goes on from the harness's `resume` (SRP-JOB-045, SRP-JOB-047),
 * and an unknown or expired one is `job.lost` (SRP-JOB-047, SRP-JOB-048). The harness is the hub.
 */
import {
  asyncInstanceProblem,
  asyncJobsExt,
  canonicalize,
  fromBase64,
  manifestProblem,
  randomBytes,
  sha256Hex,
  toHex,
  type AsyncApi,
} from "@srp/core";
import type { Instance, Job, Receipt } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { authProblem, hello, type ProviderContext, untilAuth, welcome } from "../harness/provider-session.js";
import { acceptOffer, countersign, describe, jobProblems, serving, type Serving } from "../harness/serving.js";
import { fail, skip } from "../harness/verdict.js";
import type { WirePeer } from "../harness/wire.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The part size the harness announces: the smallest allowed, so a result of more than 64 KiB comes in several parts. */
const PART_BYTES = 65_536;
/** How long an async job may take in these checks. */
const ASYNC_WAIT_MS = 60_000;

/** A session whose welcome announced async jobs (with `resumeWindowMs`), its offer accepted. */
async function asyncServing(ctx: ProviderContext, resumeWindowMs = 30_000): Promise<Serving> {
  const s = await untilAuth(ctx);
  s.peer.send({ ...welcome(s.auth), ext: asyncJobsExt({ partBytes: PART_BYTES, resumeWindowMs }) });
  const instances = await acceptOffer(s.peer);
  return {
    peer: s.peer,
    hub: s.hub,
    nodeId: String(s.auth.nodeId),
    hubId: s.hub.identity.id,
    instances,
    position: { lastSeq: 0, totals: { receipts: 0, cost: "0", promptTokens: 0, completionTokens: 0 } },
    accept: s.accept,
  };
}

/** Opens the provider's next session after a lost one, announcing async jobs, and accepts its offer. */
async function nextAsyncSession(s: Serving, resumeWindowMs: number): Promise<WirePeer> {
  const peer = await s.accept("the provider to reconnect after its session was lost");
  const h = hello(s.hub);
  peer.send(h);
  const auth = await peer.expect("auth");
  const problem = authProblem(auth, h);
  if (problem) fail(`second session: ${problem}`);
  if (auth.nodeId !== s.nodeId) fail("the provider came back with another node id");
  peer.send({ ...welcome(auth, 15_000, s.position), ext: asyncJobsExt({ partBytes: PART_BYTES, resumeWindowMs }) });
  await acceptOffer(peer);
  return peer;
}

/** A value the schema accepts, for the common shapes (object with required members, strings, numbers, enums); undefined when it cannot make one. */
export function sampleOf(schema: unknown): unknown {
  if (!isObject(schema)) return undefined;
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  if ("default" in schema) return schema.default;
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === "string") {
    const max = typeof schema.maxLength === "number" ? schema.maxLength : 64;
    const min = typeof schema.minLength === "number" ? schema.minLength : 0;
    return "conformance run".slice(0, Math.max(min, Math.min(max, 15))).padEnd(min, "x");
  }
  if (type === "integer" || type === "number") return typeof schema.minimum === "number" ? Math.ceil(schema.minimum) : 1;
  if (type === "boolean") return false;
  if (type === "array") return [];
  if (type === "object" || isObject(schema.properties)) {
    const out: Record<string, unknown> = {};
    const props = isObject(schema.properties) ? schema.properties : {};
    for (const name of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      const v = sampleOf(props[name]);
      if (v === undefined) return undefined;
      out[name] = v;
    }
    return out;
  }
  return undefined;
}

/** A `videos` or `runs` job for `inst`, as a hub would send it. */
function asyncJob(inst: Instance, api: AsyncApi): Job {
  const input = api === "runs" ? sampleOf(inst.io?.input) : undefined;
  if (api === "runs" && !isObject(input)) skip(`cannot build an input for ${inst.instanceId} from its io.input`);
  return {
    type: "job",
    jobId: `job_conf_${toHex(randomBytes(8))}`,
    instanceId: inst.instanceId,
    model: inst.model,
    api,
    stream: false,
    request:
      api === "videos"
        ? { model: inst.model, prompt: "Conformance: a lighthouse at dusk, waves rolling in", seconds: "4", size: "720x1280" }
        : { model: inst.model, input: input as Record<string, unknown> },
    deadline: Date.now() + ASYNC_WAIT_MS,
    quote: inst.price,
  };
}

/** What the node sent for one async job on one session. */
interface AsyncRan {
  frames: Record<string, unknown>[];
  end: Record<string, unknown>;
}

/** Collects the node's frames for `jobId` (from index `from`) until its done or job_error. */
async function collect(peer: WirePeer, jobId: string, from: number): Promise<AsyncRan> {
  const frames: Record<string, unknown>[] = [];
  const deadline = Date.now() + ASYNC_WAIT_MS;
  for (;;) {
    const m = await peer
      .take((x) => x.jobId === jobId || x.type === "error", Math.max(1, deadline - Date.now()), from, `done or job_error for ${jobId}`)
      .catch((e: Error) => fail(`${e.message}; frames so far: ${frames.map((f) => f.type).join(", ")}`));
    if (m.type === "error") fail(`the node sent error ${String(m.code)} (${String(m.message)}) while running ${jobId}`);
    if (m.type === "done" || m.type === "job_error") return { frames, end: m };
    frames.push(m);
  }
}

/** Everything wrong with the frames of an async job (from byte `start` of its stream), and the bytes they carried. */
function frameProblems(frames: Record<string, unknown>[], start: number): { problems: string[]; bytes: Uint8Array[] } {
  const problems: string[] = [];
  const bytes: Uint8Array[] = [];
  let offset = start;
  let progress = -1;
  for (const f of frames) {
    if (f.type === "chunk") problems.push("the node sent a chunk for an async job (SRP-JOB-040)");
    else if (f.type === "progress") {
      const p = f.progress as number;
      if (p < progress) problems.push(`progress went from ${progress} down to ${p} (SRP-JOB-041)`);
      progress = Math.max(progress, p);
    } else if (f.type === "result") {
      const data = fromBase64(String(f.data));
      if (!data) problems.push("a result part is not padded standard base64 (SRP-JOB-042)");
      else if (f.offset !== offset) problems.push(`a result part starts at ${String(f.offset)}; the stream was at ${offset} (SRP-JOB-042)`);
      else if (data.length > PART_BYTES)
        problems.push(`a result part has ${data.length} bytes, more than partBytes ${PART_BYTES} (SRP-JOB-042)`);
      else {
        bytes.push(data);
        offset += data.length;
      }
    }
  }
  return { problems: [...new Set(problems)], bytes };
}

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Everything wrong with an async job's end, given the whole result stream the harness holds. */
function endProblems(s: Serving, job: Job, end: Record<string, unknown>, stream: Uint8Array): string[] {
  if (end.type !== "done") return [`the ${job.api} job ended with ${describe(end)}`];
  const p: string[] = [];
  if (end.chunks !== 0) p.push(`done.chunks is ${String(end.chunks)}; an async job sends no chunk (SRP-JOB-040)`);
  const api = job.api as AsyncApi;
  const manifest = manifestProblem(api, end.response, stream.length, (a, b) => sha256Hex(stream.subarray(a, b)));
  if (manifest) p.push(`${manifest} (SRP-JOB-042, SRP-JOB-043)`);
  p.push(...jobProblems(s, { job, chunks: [], end }, s.position));
  const usage = end.usage as Record<string, unknown>;
  if (
    usage.promptTokens !== 0 ||
    usage.completionTokens !== 0 ||
    usage.runs !== 1 ||
    typeof usage.seconds !== "number" ||
    usage.measured !== true
  )
    p.push(
      `done.usage ${JSON.stringify(usage)} is not {promptTokens: 0, completionTokens: 0, seconds, runs: 1, measured: true} (${api === "videos" ? "SRP-JOB-051" : "SRP-JOB-052"})`,
    );
  if (api === "videos" && typeof usage.seconds === "number" && usage.seconds > Number(job.request.seconds))
    p.push(`a ${String(job.request.seconds)}-second video reports ${usage.seconds} seconds (SRP-JOB-051)`);
  if (api === "runs" && isObject(end.response)) {
    const names = new Set((end.response.artifacts as Array<{ name: string }>).map((a) => a.name));
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === "string") {
        if (v.startsWith("srp-artifact:")) refs.push(v.slice("srp-artifact:".length));
        else if (v.length > 4096 && v.startsWith("data:"))
          p.push("the run's output carries a data: URL longer than 4096 characters inline (SRP-JOB-044)");
      } else if (Array.isArray(v)) v.forEach(walk);
      else if (isObject(v)) Object.values(v).forEach(walk);
    };
    walk(end.response.output);
    for (const r of refs)
      if (!names.has(r)) p.push(`the run's output names the artifact ${r}, which the result does not have (SRP-JOB-044)`);
    if (canonicalize(end.response.output ?? null).length > 65_536) p.push("the run's inline output is more than 65536 bytes (SRP-JOB-044)");
  }
  return [...new Set(p)];
}

/** The first instance with the capability, or a skip. */
function asyncInstance(s: Serving, capability: "video" | "run"): Instance {
  const inst = s.instances.find((i) => i.capabilities.includes(capability));
  if (!inst) skip(`the provider offers no instance with the ${capability} capability to a hub that announced async jobs`);
  return inst;
}

/** Runs one async job of `api` on a fresh announced session and checks it end to end. */
async function runAsyncCheck(ctx: ProviderContext, capability: "video" | "run", api: AsyncApi): Promise<void> {
  const s = await asyncServing(ctx);
  const inst = asyncInstance(s, capability);
  const shape = asyncInstanceProblem(inst);
  const p: string[] = shape ? [`instance ${inst.instanceId}: ${shape} (SRP-OFF-019, SRP-OFF-020)`] : [];
  const job = asyncJob(inst, api);
  const from = s.peer.received.length;
  s.peer.send(job);
  const ran = await collect(s.peer, job.jobId, from);
  const frames = frameProblems(ran.frames, 0);
  p.push(...frames.problems, ...endProblems(s, job, ran.end, concat(frames.bytes)));
  if (p.length) fail(p.join("; "));
  countersign(s, ran.end.receipt as Receipt);
}

/** Provider-mode checks of async jobs. */
export const PROVIDER_ASYNC_CHECKS: Check<ProviderContext>[] = [
  check(
    "provider.async.no_offer_without_announce",
    "Offers no instance with the video or run capability on a session whose welcome did not announce srp.async_jobs",
    ["SRP-JOB-039"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const bad = s.instances.filter((i) => i.capabilities.includes("video") || i.capabilities.includes("run"));
      if (bad.length)
        fail(`offered ${bad.map((i) => i.instanceId).join(", ")} with video or run to a hub that announced no async jobs (SRP-JOB-039)`);
    },
  ),
  check(
    "provider.async.video",
    "Runs a videos job announced by srp.async_jobs: progress never decreasing, the video in contiguous result parts of at most partBytes, then done with an srp.result manifest whose sha256s match, chunks 0 and usage {seconds, runs: 1}",
    ["SRP-JOB-039", "SRP-JOB-040", "SRP-JOB-041", "SRP-JOB-042", "SRP-JOB-051", "SRP-OFF-019", "SRP-OFF-020"],
    "MUST",
    (ctx) => runAsyncCheck(ctx, "video", "videos"),
  ),
  check(
    "provider.async.run",
    "Runs a runs job on an instance declaring io: its files as artifacts named by srp-artifact: references, no long data: URL inline, a done manifest matching the result parts, usage {seconds, runs: 1}",
    ["SRP-JOB-040", "SRP-JOB-042", "SRP-JOB-044", "SRP-JOB-052", "SRP-OFF-019", "SRP-OFF-020"],
    "MUST",
    (ctx) => runAsyncCheck(ctx, "run", "runs"),
  ),
  check(
    "provider.async.resume",
    "Keeps a videos job across a lost session: sends nothing for it on the new session until resume, then the rest of the stream from the resume's received byte and the job's done",
    ["SRP-JOB-045", "SRP-JOB-047"],
    "MUST",
    async (ctx) => {
      const s = await asyncServing(ctx);
      const inst = asyncInstance(s, "video");
      const job = asyncJob(inst, "videos");
      s.peer.send(job);
      const first = await s.peer
        .take(
          (m) => m.jobId === job.jobId && (m.type === "result" || m.type === "done" || m.type === "job_error"),
          ASYNC_WAIT_MS,
          0,
          `the first result part of ${job.jobId}`,
        )
        .catch((e: Error) => fail(e.message));
      if (first.type !== "result") fail(`the videos job ended with ${describe(first)} before any result part`);
      // The harness holds only the first part: the session is lost, and the node is asked to go on from there.
      s.peer.terminate();
      const held = fromBase64(String(first.data)) ?? fail("the first result part is not base64");
      const peer = await nextAsyncSession(s, 30_000);
      const quiet = peer.received.length;
      await new Promise((r) => setTimeout(r, 300));
      const early = peer.matching((m) => m.jobId === job.jobId, quiet);
      const p: string[] = early.length
        ? [`the node sent ${early.map((m) => m.type).join(", ")} for the suspended job before resume (SRP-JOB-045)`]
        : [];
      const from = peer.received.length;
      peer.send({ type: "resume", jobId: job.jobId, received: held.length });
      const ran = await collect(peer, job.jobId, from);
      const frames = frameProblems(ran.frames, held.length);
      const resumed: Serving = { ...s, peer };
      p.push(
        ...frames.problems.map((x) => `after resume: ${x}`),
        ...endProblems(resumed, job, ran.end, concat([held, ...frames.bytes])).map((x) => `after resume: ${x}`),
      );
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.async.resume_unknown",
    "Answers resume for a job it never had with job_error job.lost (retryable, chunks 0), and once the resume window has passed, answers resume for a job of the lost session the same way",
    ["SRP-JOB-047", "SRP-JOB-048"],
    "MUST",
    async (ctx) => {
      const window = 1000;
      const s = await asyncServing(ctx, window);
      const p: string[] = [];
      const lost = async (peer: WirePeer, jobId: string, what: string) => {
        const from = peer.received.length;
        peer.send({ type: "resume", jobId, received: 0 });
        const m = await peer
          .take(
            (x) => x.jobId === jobId && (x.type === "job_error" || x.type === "done" || x.type === "result"),
            5000,
            from,
            `job_error for ${what}`,
          )
          .catch(() => undefined);
        if (!m) p.push(`no job_error within 5 s for resume of ${what} (SRP-JOB-047)`);
        else if (m.type !== "job_error" || m.code !== "job.lost" || m.retryable !== true || m.chunks !== 0)
          p.push(
            `resume of ${what} was answered ${JSON.stringify(m).slice(0, 200)}, not job_error job.lost (retryable, chunks 0) (SRP-JOB-047, SRP-JOB-048)`,
          );
      };
      await lost(s.peer, `job_conf_never_${toHex(randomBytes(6))}`, "a job the node never had");
      const inst = s.instances.find((i) => i.capabilities.includes("video") || i.capabilities.includes("run"));
      if (inst) {
        const job = asyncJob(inst, inst.capabilities.includes("video") ? "videos" : "runs");
        s.peer.send(job);
        s.peer.terminate();
        await new Promise((r) => setTimeout(r, window * 2 + 500));
        const peer = await nextAsyncSession(s, window);
        await lost(peer, job.jobId, "a job whose resume window passed");
      }
      if (p.length) fail(p.join("; "));
    },
  ),
];
