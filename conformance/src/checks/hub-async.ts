/**
 * Hub-mode checks of async jobs (`spec/v1/jobs.md#async-jobs`) that need no consumer
 * video or run: the `srp.async_jobs` announcement is well formed when present (SRP-JOB-039);
 * `progress` and `result` on a session that announced none are protocol violations
 * (SRP-JOB-040); a hub that announced async jobs refuses inconsistent async instances with
 * `offer.invalid` (SRP-OFF-019, SRP-OFF-020).
 */
import { asyncJobsOf } from "@srp/core";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { openSession, type HubContext } from "../harness/hub-session.js";
import { instance, newModel } from "../harness/instances.js";
import { fail, skip } from "../harness/verdict.js";
import { expectRejection } from "../harness/wire.js";

/** The welcome's `ext`, if any. */
const extOf = (welcome: Record<string, unknown>) => welcome.ext as Record<string, unknown> | undefined;

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
    "Answers progress and result on a session whose welcome announced no async jobs with protocol.unexpected_message and close 1002",
    ["SRP-JOB-040"],
    "MUST",
    async (ctx) => {
      const problems: string[] = [];
      for (const frame of [
        { type: "progress", jobId: "job_conf_none", progress: 10 },
        { type: "result", jobId: "job_conf_none", offset: 0, data: "AAECAw==" },
      ]) {
        const { peer, welcome } = await openSession(ctx);
        if (extOf(welcome)?.["srp.async_jobs"] !== undefined)
          skip("the hub announces async jobs; the rule for other jobs needs a consumer job");
        peer.send(frame);
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
];
