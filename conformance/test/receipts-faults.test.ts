// The receipt, money and settlement checks (hub-settlement.ts, provider-receipts.ts), each
// run against a target that breaks exactly its rule: a real @srp/hub behind a faulty relay
// (fixtures/faulty-hub.ts) or our provider behind one (fixtures/faulty-provider.mjs). Each
// must fail (a SHOULD check: warn) there, and pass against the unchanged hub or provider.
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runProviderSuite } from "../src/index.js";
import { runAgainstFault as run, testHubFaults } from "./fixtures/faulty-hub.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const fixture = (name: string) => join(root, "conformance/test/fixtures", name);

/** hub check id -> the fault that must fail it. */
const HUB_CHECK_FAULTS: Record<string, string> = {
  "hub.receipt.codes": "receipt_codes_generic",
  "hub.receipt.refused_answer": "refusal_unexplained",
  "hub.receipt.after_cancel": "drops_late_chunks",
  "hub.money.exact": "float_costs",
  "hub.money.amount_format": "lenient_amounts",
};

/** A hub that keeps statements (a SQLite ledger) and sends one every 300 ms to each node with new receipts. */
const STATEMENTS = { statementIntervalMs: 300 };

describe.concurrent("receipt and money checks against faulty hubs", () => {
  testHubFaults(HUB_CHECK_FAULTS);

  it("hub.receipt.codes names the code a faulty hub reported instead of receipt.totals_mismatch", async () => {
    const results = await run("receipt_codes_generic", ["hub.receipt.codes"]);
    expect(results["hub.receipt.codes"]?.[1]).toMatch(/error receipt\.field_mismatch, expected receipt\.totals_mismatch/);
  }, 60_000);

  it("hub.receipt.refused_answer fails on the missing receipt_error", async () => {
    const results = await run("refusal_unexplained", ["hub.receipt.refused_answer"]);
    expect(results["hub.receipt.refused_answer"]?.[1]).toMatch(/usage\.receipt_error is undefined, expected "receipt\.bad_node_signature"/);
  }, 60_000);
});

describe("hub.statement.content", () => {
  it("is skipped against a hub that sends no statement within 2 s", async () => {
    const results = await run("none", ["hub.statement.content"]);
    expect(results["hub.statement.content"]?.[0]).toBe("skipped");
  }, 60_000);

  it("passes against a hub that sends statements often, and fails when a statement miscounts its receipts", async () => {
    expect(await run("none", ["hub.statement.content"], STATEMENTS, { ledger: true })).toEqual({ "hub.statement.content": ["pass", ""] });
    const results = await run("statement_miscounted", ["hub.statement.content"], STATEMENTS, { ledger: true });
    expect(results["hub.statement.content"]?.[0]).toBe("fail");
    expect(results["hub.statement.content"]?.[1]).toMatch(/count must be/);
  }, 60_000);
});

describe("receipt and statement checks against faulty providers", () => {
  const provider = (fault?: string) =>
    `SRP_ACCOUNT_KEY=srp_any_key_123 node ${fixture(fault ? "faulty-provider.mjs" : "sim-provider.mjs")}${fault ? ` ${fault}` : ""}`;
  const statuses = async (command: string, only: string[]) => {
    const report = await runProviderSuite({ command, only: new Set(only) });
    return Object.fromEntries(report.results.map((r) => [r.id, [r.status, r.details ?? ""]]));
  };
  const CHECKS = ["provider.statement.dispute_positions", "provider.statement.empty", "provider.receipt.not_awaited"];

  it("our provider passes them", async () => {
    const results = await statuses(provider(), CHECKS);
    expect(Object.entries(results).filter(([, [s]]) => s !== "pass")).toEqual([]);
  }, 120_000);

  it.each([
    ["provider.statement.dispute_positions", "bad_signature_positions", "fail", /expected the node's own position/],
    ["provider.statement.dispute_positions", "double_dispute", "fail", /at most one dispute per statement/],
    ["provider.statement.empty", "disputes_empty", "fail", /dispute missing_receipt/],
    ["provider.receipt.not_awaited", "no_receipt_errors", "warning", /no error within 3 s/],
  ])(
    "%s against the fault %s: %s",
    async (check, fault, status, details) => {
      const results = await statuses(provider(fault), [check]);
      expect(results[check]?.[0]).toBe(status);
      expect(results[check]?.[1]).toMatch(details);
    },
    60_000,
  );
});
