// Each hub-mode check that has no faulty fixture of its own is run here against a real
// @srp/hub behind a relay that breaks exactly one rule (fixtures/faulty-hub.ts): the check
// must fail there, and pass through the unchanged relay.
import { describe, expect, it } from "vitest";
import { runAgainstFault as run } from "./fixtures/faulty-hub.js";

/** check id -> the fault that must fail it. */
const HUB_CHECK_FAULTS: Record<string, string> = {
  "hub.handshake.timeout": "never_closes",
};

describe("hub checks against faulty hubs", () => {
  it("the unchanged relay passes every check listed here", async () => {
    const results = await run("none", Object.keys(HUB_CHECK_FAULTS));
    expect(Object.entries(results).filter(([, [s]]) => s !== "pass")).toEqual([]);
  }, 120_000);

  for (const [check, fault] of Object.entries(HUB_CHECK_FAULTS)) {
    it(`${check} fails against the fault ${fault}`, async () => {
      const results = await run(fault, [check]);
      expect(results[check]?.[0]).toBe("fail");
    }, 60_000);
  }
});
