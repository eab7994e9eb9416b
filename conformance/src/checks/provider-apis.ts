/**
 * Provider-mode check of the native text APIs: an instance that declares `responses` or
 * `completions` takes jobs of that API and answers in its wire format (SRP-OFF-015..017),
 * and a streamed `responses` job ends with its terminal event and that event's usage
 * (SRP-JOB-034). The harness is the hub, as in provider-jobs.ts.
 */
import { canonicalize, randomBytes, toHex } from "@srp/core";
import type { Instance, Job, Usage } from "@srp/core/schema";
import { usageFromOpenAI, usageFromResponses } from "@srp/core/metering";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import type { ProviderContext } from "../harness/provider-session.js";
import { describe, type Ran, runJob, serving, type Serving } from "../harness/serving.js";
import { fail, skip } from "../harness/verdict.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const same = (a: unknown, b: unknown) => canonicalize(a) === canonicalize(b);

/** A `responses` or `completions` job for `inst`, as a hub would send it. */
export function textApiJob(inst: Pick<Instance, "instanceId" | "model" | "price">, api: "responses" | "completions", stream: boolean): Job {
  const request: Record<string, unknown> =
    api === "responses"
      ? {
          model: inst.model,
          input: "Conformance: write one short sentence about spare capacity.",
          max_output_tokens: 16,
          store: false,
          stream,
        }
      : {
          model: inst.model,
          prompt: "Conformance: spare capacity is",
          max_tokens: 8,
          stream,
          ...(stream ? { stream_options: { include_usage: true } } : {}),
        };
  return {
    type: "job",
    jobId: `job_conf_${toHex(randomBytes(8))}`,
    instanceId: inst.instanceId,
    model: inst.model,
    api,
    stream,
    request,
    deadline: Date.now() + 60_000,
    quote: inst.price,
  };
}

/** Everything wrong with how a job of a native text API ran. */
function textApiProblems(api: "responses" | "completions", ran: Ran): string[] {
  const what = `a ${ran.job.stream ? "streamed" : "non-streamed"} ${api} job`;
  if (ran.end.type !== "done") return [`${what} on an instance declaring ${api} ended with ${describe(ran.end)} (SRP-OFF-017)`];
  const p: string[] = [];
  const usage = ran.end.usage as Usage | undefined;
  const data = ran.chunks.map((c) => c.data);
  if (!ran.job.stream) {
    const r = ran.end.response;
    if (api === "responses" && !(isObject(r) && r.object === "response" && Array.isArray(r.output)))
      p.push(`${what}: done.response is not a Response object: ${JSON.stringify(r).slice(0, 160)} (SRP-OFF-017, SRP-JOB-030)`);
    if (api === "completions" && !(isObject(r) && r.object === "text_completion" && Array.isArray(r.choices)))
      p.push(`${what}: done.response is not a text_completion: ${JSON.stringify(r).slice(0, 160)} (SRP-OFF-017, SRP-JOB-031)`);
    return p;
  }
  if (data.length === 0) return [`${what} produced no chunk (SRP-OFF-017)`];
  if (api === "completions") {
    const odd = data.find((d) => !isObject(d) || d.object !== "text_completion");
    if (odd)
      p.push(`${what}: a chunk's data is not a text_completion object: ${JSON.stringify(odd).slice(0, 160)} (SRP-OFF-017, SRP-JOB-031)`);
    const reported = data
      .map((d) => (isObject(d) ? usageFromOpenAI(d.usage) : undefined))
      .filter((u) => u !== undefined)
      .at(-1);
    if (reported && usage && !same(usage, reported))
      p.push(`${what}: done.usage ${JSON.stringify(usage)} is not the stream's usage ${JSON.stringify(reported)}`);
    return p;
  }
  const odd = data.find(
    (d) => !isObject(d) || typeof d.type !== "string" || !d.type.startsWith("response.") || typeof d.sequence_number !== "number",
  );
  if (odd)
    p.push(`${what}: a chunk's data is not a Responses stream event: ${JSON.stringify(odd).slice(0, 160)} (SRP-OFF-017, SRP-JOB-030)`);
  const last = data.at(-1) as Record<string, unknown>;
  if (last.type !== "response.completed" && last.type !== "response.incomplete") {
    p.push(
      `${what} ended with done after ${JSON.stringify(last.type)}; done comes only after response.completed or response.incomplete (SRP-JOB-034)`,
    );
  } else {
    const reported = isObject(last.response) ? usageFromResponses(last.response.usage) : undefined;
    if (!reported) p.push(`${what}: the terminal event carries no response.usage (SRP-JOB-034)`);
    else if (!same(usage, reported))
      p.push(`${what}: done.usage ${JSON.stringify(usage)} is not the terminal event's usage ${JSON.stringify(reported)} (SRP-JOB-034)`);
  }
  return p;
}

/** Runs one job of `api`, non-streamed and (where the instance streams) streamed, on `inst`. */
async function runTextApi(s: Serving, inst: Instance, api: "responses" | "completions"): Promise<string[]> {
  const p: string[] = [];
  for (const stream of inst.capabilities.includes("stream") ? [false, true] : [false])
    p.push(...textApiProblems(api, await runJob(s, textApiJob(inst, api, stream))));
  return p;
}

/** Provider-mode checks of the native text APIs (SRP-OFF-015..017, SRP-JOB-034). */
export const PROVIDER_API_CHECKS: Check<ProviderContext>[] = [
  check(
    "provider.job.native_apis",
    "Takes responses and completions jobs on instances that declare those capabilities, answering in the API's wire format; a streamed responses job ends with done after its terminal event, with that event's usage",
    ["SRP-OFF-015", "SRP-OFF-016", "SRP-OFF-017", "SRP-JOB-034"],
    "MUST",
    async (ctx) => {
      const s = await serving(ctx);
      const p: string[] = [];
      let ran = 0;
      for (const api of ["responses", "completions"] as const) {
        const inst = s.instances.find((i) => i.capabilities.includes(api));
        if (!inst) continue;
        ran++;
        p.push(...(await runTextApi(s, inst, api)));
      }
      if (ran === 0) skip("the provider offers no instance with the responses or completions capability");
      if (p.length) fail(p.join("; "));
    },
  ),
];
