// The checks of API keys' spending controls (checks/hub-keys.ts) against a billing hub (a
// SQLite ledger, so keys can be managed and budgets apply) behind the faulty relay
// (fixtures/faulty-hub.ts): the unchanged relay passes them all, and each fails against a
// hub that refuses with the wrong answer.
import { describe, expect, it } from "vitest";
import { runAgainstFault } from "./fixtures/faulty-hub.js";

const CHECKS = [
  "hub.keys.manage",
  "hub.keys.expired",
  "hub.keys.budget_refused",
  "hub.keys.budget_one_request",
  "hub.keys.models",
  "hub.keys.rate_limit",
];

/** Check id -> the faults that must fail it, with what the failure's details must say. */
const FAULTS: Record<string, Array<[fault: string, why: RegExp]>> = {
  "hub.keys.expired": [["key_expired_as_unauthorized", /expected 401 api\.key_expired/]],
  "hub.keys.budget_refused": [["key_budget_as_forbidden", /expected 402 api\.key_budget_exceeded/]],
  "hub.keys.budget_one_request": [["key_budget_as_forbidden", /expected 402 api\.key_budget_exceeded/]],
  "hub.keys.models": [["model_not_allowed_as_unknown", /expected 403 api\.model_not_allowed/]],
  "hub.keys.rate_limit": [["rate_limited_without_retry_after", /Retry-After is null/]],
};

describe("API key spending control checks against a billing @srp/hub", () => {
  it("the unchanged relay passes every hub.keys check", async () => {
    const results = await runAgainstFault("none", CHECKS, {}, { ledger: true });
    expect(Object.entries(results).filter(([, [s]]) => s !== "pass")).toEqual([]);
    expect(Object.keys(results).sort()).toEqual([...CHECKS].sort());
  }, 120_000);

  it("a hub without spending controls (no ledger, no key store) skips them, saying why", async () => {
    const results = await runAgainstFault("none", CHECKS);
    expect(Object.values(results).map(([s, d]) => [s, d])).toEqual(
      CHECKS.map(() => ["skipped", expect.stringMatching(/404 on GET \/v1\/account\/keys/)]),
    );
  });

  for (const [check, list] of Object.entries(FAULTS))
    for (const [fault, why] of list)
      it(`${check} fails against the fault ${fault}`, async () => {
        const results = await runAgainstFault(fault, [check], {}, { ledger: true });
        expect(results[check]?.[0]).toBe("fail");
        expect(results[check]?.[1]).toMatch(why);
      }, 60_000);
});
