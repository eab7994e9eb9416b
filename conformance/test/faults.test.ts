// Each hub-mode check that has no faulty fixture of its own is run here against a real
// @srp/hub behind a relay that breaks exactly one rule (fixtures/faulty-hub.ts): the check
// must fail there, and pass through the unchanged relay.
import { describe, expect, it } from "vitest";
import { runHubSuite } from "../src/index.js";
import { startFaultyHub } from "./fixtures/faulty-hub.js";

/** Runs `checks` against the hub with fault `name`; returns id -> [status, details]. */
async function run(name: string, checks: string[]): Promise<Record<string, [string, string]>> {
  const hub = await startFaultyHub(name);
  try {
    const report = await runHubSuite({ url: hub.url, accountKey: hub.accountKey, only: new Set(checks) });
    return Object.fromEntries(report.results.map((r) => [r.id, [r.status, r.details ?? ""]]));
  } finally {
    await hub.close();
  }
}

/** check id -> the fault that must fail it. */
export const HUB_CHECK_FAULTS: Record<string, string> = {
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
