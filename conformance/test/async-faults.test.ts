// The hub-mode async-job checks (hub-async.ts: SRP-JOB-039, SRP-JOB-040, SRP-JOB-042,
// SRP-JOB-043, SRP-OFF-019, SRP-OFF-020, SRP-CON-088 to SRP-CON-093, SRP-ATT-027), each
// against a real @srp/hub (which announces async jobs and serves POST /v1/runs) behind a
// relay that breaks the rule it checks (fixtures/faulty-hub.ts).
import { describe, expect, it } from "vitest";
import { runAgainstFault } from "./fixtures/faulty-hub.js";

const CHECKS = [
  "hub.async.announce",
  "hub.async.frames_without_announce",
  "hub.async.offer_rules",
  "hub.async.run_roundtrip",
  "hub.async.manifest_mismatch",
  "hub.async.result_offset",
  "hub.async.implausible_usage",
  "hub.async.webhook_refused",
];

describe("hub.async checks against faulty hubs", () => {
  it("the unchanged relay passes every hub.async check", async () => {
    const results = await runAgainstFault("none", CHECKS);
    expect(
      Object.fromEntries(
        Object.entries(results).map(([id, [status, details]]) => [id, status === "pass" ? status : `${status}: ${details}`]),
      ),
    ).toEqual(Object.fromEntries(CHECKS.map((id) => [id, "pass"])));
  }, 120_000);

  it("the unchanged relay in front of a billing hub (SQLite ledger) passes the run checks", async () => {
    const runs = CHECKS.filter((c) => /run_roundtrip|manifest_mismatch|implausible_usage/.test(c));
    const results = await runAgainstFault("none", runs, {}, { ledger: true });
    expect(
      Object.fromEntries(
        Object.entries(results).map(([id, [status, details]]) => [id, status === "pass" ? status : `${status}: ${details}`]),
      ),
    ).toEqual(Object.fromEntries(runs.map((id) => [id, "pass"])));
  }, 120_000);

  it("a hub that announces no async jobs skips the run checks and still runs hub.async.frames_without_announce", async () => {
    const results = await runAgainstFault("none", CHECKS, { asyncJobs: false });
    expect(Object.fromEntries(Object.entries(results).map(([id, [status]]) => [id, status]))).toEqual({
      "hub.async.announce": "pass",
      "hub.async.frames_without_announce": "pass",
      "hub.async.offer_rules": "skipped",
      "hub.async.run_roundtrip": "skipped",
      "hub.async.manifest_mismatch": "skipped",
      "hub.async.result_offset": "skipped",
      "hub.async.implausible_usage": "skipped",
      "hub.async.webhook_refused": "skipped",
    });
  }, 120_000);

  const FAULTS: Array<[check: string, fault: string, why: RegExp]> = [
    ["hub.async.announce", "async_announce_bad", /outside SRP-JOB-039's bounds/],
    ["hub.async.frames_without_announce", "async_frames_taken", /progress: no error message.*\(SRP-JOB-040\)/],
    ["hub.async.offer_rules", "async_accepts_bad_offers", /a run instance without io: accepted.*\(SRP-OFF-019, SRP-OFF-020\)/],
    [
      "hub.async.run_roundtrip",
      "async_output_unlinked",
      /output is .*srp-artifact:image\.png.*expected the node's output with each srp-artifact/,
    ],
    ["hub.async.manifest_mismatch", "async_manifest_unchecked", /the hub countersigned a done whose manifest's sha256 does not match/],
    ["hub.async.result_offset", "async_offset_unchecked", /a first part at offset 5: no error message.*\(SRP-JOB-042\)/],
    ["hub.async.implausible_usage", "countersigns_any_usage", /the hub countersigned a run's receipt with usage\.runs 2/],
    ["hub.async.webhook_refused", "async_webhooks_unchecked", /an http: webhook_url.*status 202/],
    ["hub.async.resume", "async_never_resumes", /expected resume \(SRP-JOB-046\)|resume for the suspended run/],
  ];
  for (const [check, fault, why] of FAULTS) {
    it(`${check} fails against the fault ${fault}`, async () => {
      const results = await runAgainstFault(fault, [check]);
      expect(results[check]?.[0]).toBe("fail");
      expect(results[check]?.[1]).toMatch(why);
    }, 60_000);
  }
});
