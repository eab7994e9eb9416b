// SRP-ATT-021 check 1 and SRP-ATT-014: a node answers a `receipt` that carries no `hubSig`
// with `receipt.missing_hub_signature` (not `receipt.bad_hub_signature`), and still accepts
// the correct countersignature afterwards. Runs our provider (built, with the simulator)
// against the harness hub, with a one-off check built from the suite's own helpers.
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { omitFields } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { check } from "../src/harness/check.js";
import type { ProviderContext } from "../src/harness/provider-session.js";
import { chatJob, countersign, expectReceiptError, pick, runDone, serving } from "../src/harness/serving.js";
import { fail } from "../src/harness/verdict.js";
import { runChecks } from "../src/runner.js";
import { SchemaValidator } from "../src/schema.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const command = `SRP_ACCOUNT_KEY=srp_any_key_123 node ${join(root, "conformance/test/fixtures/sim-provider.mjs")}`;

const missingHubSig = check<ProviderContext>(
  "test.receipt.missing_hub_signature",
  "Answers a receipt without hubSig with receipt.missing_hub_signature and the jobId, then accepts the countersigned receipt",
  ["SRP-ATT-021", "SRP-ATT-014"],
  "SHOULD",
  async (ctx) => {
    const s = await serving(ctx);
    const ran = await runDone(s, chatJob(pick(s, false), false, 4));
    const from = s.peer.received.length;
    s.peer.send({ type: "receipt", receipt: omitFields(ran.receipt, "hubSig") as Receipt });
    await expectReceiptError(s, ran.job.jobId, from, "receipt.missing_hub_signature");
    const after = s.peer.received.length;
    countersign(s, ran.receipt);
    await new Promise((r) => setTimeout(r, 400));
    const errors = s.peer.matching((m) => m.type === "error", after);
    if (errors.length)
      fail(`after a receipt without hubSig, the node answered the correct countersignature with error ${String(errors[0]!.code)}`);
  },
);

describe("SRP-ATT-021 check 1 against our provider", () => {
  it("answers a receipt without hubSig with receipt.missing_hub_signature", async () => {
    const validator = new SchemaValidator();
    const report = await runChecks<ProviderContext>([missingHubSig], (tracker) => ({ command, validator, tracker }), {
      mode: "provider",
      target: command,
    });
    const result = report.results[0]!;
    expect([result.status, result.details ?? ""]).toEqual(["pass", ""]);
  }, 60_000);
});
