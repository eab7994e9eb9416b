// provider.job.native_apis (SRP-OFF-015..017, SRP-JOB-034) against faulty providers: our
// provider behind a relay that breaks exactly one rule (fixtures/faulty-provider.mjs). That
// our provider passes it is conformance.test.ts's "passes every check" (the fixture's node
// declares responses and completions).
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runProviderSuite } from "../src/index.js";

const fixtures = fileURLToPath(new URL("./fixtures", import.meta.url));
const faulty = (fault: string) => `SRP_ACCOUNT_KEY=srp_any_key_123 node ${join(fixtures, "faulty-provider.mjs")} ${fault}`;

const FAULTS: Record<string, RegExp> = {
  refuses_native_apis:
    /a non-streamed responses job on an instance declaring responses ended with job_error job\.unsupported_api .*\(SRP-OFF-017\)/,
  drops_responses_terminal:
    /a streamed responses job ended with done after "response\.output_item\.done"; done comes only after response\.completed or response\.incomplete \(SRP-JOB-034\)/,
};

describe.concurrent("provider.job.native_apis against faulty providers", () => {
  it("the relay alone (fault none) passes it", async () => {
    const report = await runProviderSuite({ command: faulty("none"), only: new Set(["provider.job.native_apis"]) });
    expect(report.results.map((r) => [r.id, r.status, r.details ?? ""])).toEqual([["provider.job.native_apis", "pass", ""]]);
  }, 60_000);

  for (const [fault, details] of Object.entries(FAULTS)) {
    it(`fails against the provider fault ${fault}`, async () => {
      const report = await runProviderSuite({ command: faulty(fault), only: new Set(["provider.job.native_apis"]) });
      expect(report.results.map((r) => [r.id, r.status])).toEqual([["provider.job.native_apis", "fail"]]);
      expect(report.results[0]!.details).toMatch(details);
    }, 60_000);
  }
});
