// The hub-mode async-job checks (hub-async.ts: SRP-JOB-039, SRP-JOB-040, SRP-OFF-019,
// SRP-OFF-020), each against a real @srp/hub behind a relay that breaks the rule it checks
// (fixtures/faulty-hub.ts). hub.async.offer_rules is skipped against the unchanged hub, which
// announces no async jobs yet; the fault that adds the announcement makes it run, and fail.
import { describe, expect, it } from "vitest";
import { runAgainstFault } from "./fixtures/faulty-hub.js";

describe("hub.async checks against faulty hubs", () => {
  it("the unchanged relay passes hub.async.announce and hub.async.frames_without_announce, and skips hub.async.offer_rules", async () => {
    const results = await runAgainstFault("none", ["hub.async.announce", "hub.async.frames_without_announce", "hub.async.offer_rules"]);
    expect(Object.fromEntries(Object.entries(results).map(([id, [status]]) => [id, status]))).toEqual({
      "hub.async.announce": "pass",
      "hub.async.frames_without_announce": "pass",
      "hub.async.offer_rules": "skipped",
    });
  }, 60_000);

  const FAULTS: Array<[check: string, fault: string, why: RegExp]> = [
    ["hub.async.announce", "async_announce_bad", /outside SRP-JOB-039's bounds/],
    ["hub.async.frames_without_announce", "async_frames_taken", /progress: no error message.*\(SRP-JOB-040\)/],
    ["hub.async.offer_rules", "async_accepts_bad_offers", /a run instance without io: accepted.*\(SRP-OFF-019, SRP-OFF-020\)/],
  ];
  for (const [check, fault, why] of FAULTS) {
    it(`${check} fails against the fault ${fault}`, async () => {
      const results = await runAgainstFault(fault, [check]);
      expect(results[check]?.[0]).toBe("fail");
      expect(results[check]?.[1]).toMatch(why);
    }, 60_000);
  }
});
