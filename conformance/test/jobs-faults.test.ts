// The job, offer and probe checks of hub-job-rules.ts and provider-job-rules.ts: each must pass
// against our hub and provider, and fail against a target that breaks exactly its rule
// (fixtures/faulty-hub.ts, fixtures/faulty-provider.mjs).
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runProviderSuite } from "../src/index.js";
import { runAgainstFault as run } from "./fixtures/faulty-hub.js";

const fixtures = fileURLToPath(new URL("./fixtures", import.meta.url));
/** A hub that parks a failing instance for 0.5 s and gives its probes 1 s, so that hub.probe.rules runs. */
const SHORT_PROBES = { routingConfig: { parkMs: 500 }, probeTimeoutMs: 1000 };

/** Hub check id -> the faults that must fail it. */
const HUB_CHECK_FAULTS: Record<string, string[]> = {
  "hub.offer.precedence": ["tier_before_invalid"],
  "hub.job.error_keeps_session": ["closes_on_job_error"],
  "hub.job.nonstream_violations": ["nonstream_chunk_ignored", "missing_response_unreported"],
  "hub.job.failed_unbilled": ["bills_failed"],
  "hub.probe.rules": ["probe_id_reused", "probe_deadline_shortened", "probes_withdrawn"],
};

/** Provider check id -> the faults that must fail it. */
const PROVIDER_CHECK_FAULTS: Record<string, string[]> = {
  "provider.job.refusal_order": ["busy_before_model"],
  "provider.job.repeated_id": ["reruns_repeated_job"],
  "provider.job.consumer_input": ["input_errors_as_upstream"],
  "provider.job.session_end": ["replays_old_session"],
  "provider.job.output_limit": ["ignores_max_completion_tokens", "hashes_rewritten_request"],
  "provider.job.trace_context": ["fails_on_trace_context"],
};

describe.concurrent("job, offer and probe checks against @srp/hub", () => {
  it("the unchanged relay (a hub with short probe timers) passes every check listed here", async () => {
    const results = await run("none", Object.keys(HUB_CHECK_FAULTS), SHORT_PROBES);
    expect(Object.entries(results).filter(([, [s]]) => s !== "pass")).toEqual([]);
  }, 120_000);

  it("hub.probe.rules is skipped, saying why, against a hub that parks for 15 s", async () => {
    const results = await run("none", ["hub.probe.rules"]);
    expect(results["hub.probe.rules"]).toEqual(["skipped", expect.stringMatching(/no probe within 4 s/)]);
  }, 60_000);

  for (const [check, faults] of Object.entries(HUB_CHECK_FAULTS)) {
    for (const fault of faults) {
      it(`${check} fails against the hub fault ${fault}`, async () => {
        const results = await run(fault, [check]);
        expect(results[check]?.[0]).toBe("fail");
      }, 60_000);
    }
  }
});

describe("job checks against our provider", () => {
  const provider = `SRP_ACCOUNT_KEY=srp_any_key_123 node ${join(fixtures, "sim-provider.mjs")}`;
  const faulty = (fault: string) => `SRP_ACCOUNT_KEY=srp_any_key_123 node ${join(fixtures, "faulty-provider.mjs")} ${fault}`;

  it("our provider passes every check listed here", async () => {
    const report = await runProviderSuite({ command: provider, only: new Set(Object.keys(PROVIDER_CHECK_FAULTS)) });
    expect(report.results.map((r) => [r.id, r.status, r.details ?? ""])).toEqual(
      Object.keys(PROVIDER_CHECK_FAULTS).map((id) => [id, "pass", ""]),
    );
  }, 120_000);

  for (const [check, faults] of Object.entries(PROVIDER_CHECK_FAULTS)) {
    for (const fault of faults) {
      it(`${check} fails against the provider fault ${fault}`, async () => {
        const report = await runProviderSuite({ command: faulty(fault), only: new Set([check]) });
        expect(report.results.map((r) => [r.id, r.status])).toEqual([[check, "fail"]]);
      }, 60_000);
    }
  }
});
