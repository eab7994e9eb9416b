// The provider-mode async-job checks (provider.async.*: SRP-JOB-039..048) against faulty
// providers: our provider behind a relay that breaks exactly one rule
// (fixtures/faulty-provider.mjs). That our provider passes them is conformance.test.ts's
// "passes every check" (the fixture's node serves the simulator's video and run modes).
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runProviderSuite } from "../src/index.js";

const fixtures = fileURLToPath(new URL("./fixtures", import.meta.url));
const faulty = (fault: string) => `SRP_ACCOUNT_KEY=srp_any_key_123 node ${join(fixtures, "faulty-provider.mjs")} ${fault}`;

const FAULTS: Array<[fault: string, check: string, details: RegExp]> = [
  [
    "async_offer_always",
    "provider.async.no_offer_without_announce",
    /with video or run to a hub that announced no async jobs \(SRP-JOB-039\)/,
  ],
  ["async_gap", "provider.async.video", /a result part starts at \d+; the stream was at \d+ \(SRP-JOB-042\)/],
  ["async_progress_down", "provider.async.video", /progress went from \d+ down to \d+ \(SRP-JOB-041\)/],
  ["async_resume_from_zero", "provider.async.resume", /after resume: a result part starts at 0; the stream was at \d+ \(SRP-JOB-042\)/],
  ["async_no_lost", "provider.async.resume_unknown", /no job_error within 5 s for resume of a job the node never had \(SRP-JOB-047\)/],
];

describe.concurrent("provider.async checks against faulty providers", () => {
  it("the relay alone (fault none) passes them", async () => {
    const only = new Set([
      "provider.async.no_offer_without_announce",
      "provider.async.video",
      "provider.async.run",
      "provider.async.resume",
      "provider.async.resume_unknown",
    ]);
    const report = await runProviderSuite({ command: faulty("none"), only });
    expect(report.results.map((r) => [r.id, r.status, r.details ?? ""])).toEqual([...only].map((id) => [id, "pass", ""]));
  }, 90_000);

  for (const [fault, id, details] of FAULTS) {
    it(`${id} fails against the provider fault ${fault}`, async () => {
      const report = await runProviderSuite({ command: faulty(fault), only: new Set([id]) });
      expect(report.results.map((r) => [r.id, r.status])).toEqual([[id, "fail"]]);
      expect(report.results[0]!.details).toMatch(details);
    }, 90_000);
  }
});
