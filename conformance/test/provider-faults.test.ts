// The core provider-mode checks (provider.ts, frames.ts, provider-jobs.ts) against faulty
// providers: each fails against our provider behind a relay that makes the node break
// exactly its rule (fixtures/faulty-provider.mjs), for that reason (its details say so).
// That our provider passes them is conformance.test.ts's "passes every check"; that the relay
// alone does not break the frame checks (it carries non-UTF-8 text byte for byte) is tested here.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runProviderSuite } from "../src/index.js";

const fixtures = fileURLToPath(new URL("./fixtures", import.meta.url));
const faulty = (fault: string) => `SRP_ACCOUNT_KEY=srp_any_key_123 node ${join(fixtures, "faulty-provider.mjs")} ${fault}`;

/** A node that goes on with the session instead of refusing the frame (the check waits out its 5 s). */
const NO_REFUSAL = /no error message.*connection still open/;

/** Frame faults -> the checks each must fail, with what the details must say: run side by side (their checks wait, and nothing else). */
const FRAME_FAULTS: Record<string, Record<string, RegExp>> = {
  ignores_unparsable: { "provider.frame.malformed": NO_REFUSAL },
  ignores_unknown_types: { "provider.frame.unknown_type": NO_REFUSAL },
  loose_cancel: { "provider.frame.invalid": NO_REFUSAL },
  no_frame_limit: { "provider.frame.too_large": NO_REFUSAL },
  // Closed with the right code (else the details would say so), but without the error message;
  // the node's periodic offer may be the frame that came instead (as for the frame limit below).
  library_utf8: { "provider.frame.bad_utf8": /^no error message( \(got offer\))?$/ },
  library_frame_limit: { "provider.frame.far_too_large": /^no error message( \(got offer\))?$/ },
  reparse_handshake: { "provider.frame.duplicate_names": NO_REFUSAL },
  no_depth_limit: { "provider.frame.deep_nesting": NO_REFUSAL },
};

/** The other faults -> the checks each must fail, with what the details must say: run one after another (some checks time heartbeats and chunks). */
const FAULTS: Record<string, Record<string, RegExp>> = {
  no_heartbeats: { "provider.liveness.heartbeat": /no heartbeat within 2\.5 s of a 1 s interval/ },
  stale_as_bad_signature: { "provider.auth.stale_timestamp": /error code "auth\.bad_signature", expected auth\.stale_timestamp/ },
  replays_auth: { "provider.auth.replayed_nonce": /second session: auth\.nonce \S+ does not echo this session's nonce/ },
  load_lists_offered: {
    "provider.offer":
      /a heartbeat sent before offer_ack lists 2 instance\(s\).*the first heartbeat after offer_ack lists \[\S+, \S+\]; it must list exactly the accepted instance/,
  },
  runs_any_job: {
    "provider.job.unknown_instance": /the job ended with done, expected job_error job\.unknown_instance/,
    "provider.job.unknown_model": /the job ended with done, expected job_error job\.unknown_model/,
  },
  ignores_cancel: { "provider.job.cancel": /chunk\(s\) arrived more than 500 ms after cancel \(SRP-JOB-018\)/ },
  rejects_valid_receipts: {
    "provider.receipt.countersign": /answered its valid countersigned receipt with error receipt\.bad_hub_signature/,
  },
  position_per_session: {
    "provider.receipt.sequence":
      /second session: receipt\.seq is 1; the node's previous receipt for this hub is 1, so it must be 2 \(SRP-ATT-006\)/,
  },
  double_probe_results: { "provider.probe": /2 probe_results for probe_conf_\w+; exactly one is due \(SRP-LIV-008\)/ },
  disputes_every_statement: { "provider.statement.agree": /answered a correct statement with dispute totals_mismatch/ },
  no_disputes: {
    "provider.welcome.position":
      /no dispute within 3 s of a welcome that records lastSeq 0 while the node issued receipt 1 \(SRP-SET-002\)/,
  },
};

/** Runs the checks against the fault: each fails, for the reason its pattern names. */
async function failsFor(fault: string, checks: Record<string, RegExp>): Promise<void> {
  const report = await runProviderSuite({ command: faulty(fault), only: new Set(Object.keys(checks)) });
  expect(report.results.map((r) => [r.id, r.status]).sort()).toEqual(
    Object.keys(checks)
      .map((id) => [id, "fail"])
      .sort(),
  );
  for (const r of report.results) expect(r.details, r.id).toMatch(checks[r.id]!);
}

describe.concurrent("frame checks against faulty providers", () => {
  it("the relay alone (fault none) passes them", async () => {
    const only = new Set(Object.values(FRAME_FAULTS).flatMap((c) => Object.keys(c)));
    const report = await runProviderSuite({ command: faulty("none"), only });
    expect(report.results.map((r) => [r.id, r.status, r.details ?? ""])).toEqual([...only].map((id) => [id, "pass", ""]));
  }, 60_000);

  for (const [fault, checks] of Object.entries(FRAME_FAULTS)) {
    it(`${Object.keys(checks).join(", ")} fails against the provider fault ${fault}`, () => failsFor(fault, checks), 60_000);
  }
});

describe("core provider checks against faulty providers", () => {
  for (const [fault, checks] of Object.entries(FAULTS)) {
    it(`${Object.keys(checks).join(", ")} fail(s) against the provider fault ${fault}`, () => failsFor(fault, checks), 60_000);
  }
});
