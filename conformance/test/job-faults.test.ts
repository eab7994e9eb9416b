// The job relay, receipt, position and dispute checks of hub-jobs.ts and hub-receipts.ts against faulty hubs
// (fixtures/faulty-hub.ts): each passes through the unchanged relay and fails against a hub
// that breaks exactly its rule, saying which.
import { describe, expect, it } from "vitest";
import { runAgainstFault as run, testHubFaults } from "./fixtures/faulty-hub.js";

/** Check id -> the faults that must fail it, and what the failure's details say. */
const HUB_CHECK_FAULTS: Record<string, Array<[string, RegExp]>> = {
  "hub.job.dispatch": [["quote_stale", /after re-offer, non-streamed: job\.quote .* differs from the accepted price .*\(SRP-JOB-003\)/]],
  "hub.job.concurrency": [["ignores_max_concurrency", /sent job \S+ to an instance with maxConcurrency 1 while job \S+ was running/]],
  "hub.job.stream_relay": [
    [
      "relays_out_of_order",
      /the consumer's text is "capacity Spare relayed in order\.", the node streamed "Spare capacity relayed in order\."/,
    ],
    ["receipt_restamped", /the countersigned receipt differs from the node's receipt in more than hubSig/],
  ],
  "hub.job.nonstream_relay": [
    ["response_content_dropped", /the consumer's message content is undefined, the node answered "A complete non-streamed answer\."/],
    ["receipt_restamped", /the countersigned receipt differs from the node's receipt in more than hubSig/],
  ],
  "hub.job.receipt_rejected": [["skips_node_signature", /a receipt signed by another key: the hub countersigned it/]],
  "hub.job.receipt_sequence": [["accepts_repeated_seq", /the hub countersigned a receipt that repeats seq \d+/]],
  "hub.job.chunk_order": [["ignores_chunk_seq", /skipped seq: .+; wrong done\.chunks: /]],
  "hub.job.unknown": [
    ["ignores_unknown_jobs", /a chunk for a job never sent: .*a job_error for a job never sent: .*a done for a job never sent: /],
  ],
  "hub.job.cancel": [["forgets_cancelled", /answered a late message for the cancelled job with error job\.unknown/]],
  "hub.job.deadline": [
    ["midstream_clean_end", /the stream of a job that passed its deadline carries data: \[DONE\]; no in-band error event/],
    ["deadline_not_cancelled", /cancel for \S+ after its deadline/],
  ],
  "hub.job.error_failover": [["relays_failed_attempt", /the consumer saw an error event although the retry succeeded/]],
  "hub.job.error_midstream": [["retries_after_content", /the hub retried the request after content had reached the consumer/]],
  "hub.receipt.implausible_usage": [
    [
      "countersigns_any_usage",
      /non-streamed: the hub countersigned a receipt claiming 1000000 completion tokens .*streamed: the hub answered the inflated receipt with a countersigned receipt/,
    ],
  ],
  "hub.receipt.hidden_output": [
    [
      "judges_usage_by_size",
      /the hub countersigned 2000 completion tokens for the answer 'Hi' padded .*the hub countersigned 2000 completion tokens for the answer 'Hi' with a second choice/,
    ],
  ],
  "hub.consumer.shown_is_billed": [
    [
      "shows_node_usage",
      /non-streamed: the consumer was shown 999999 prompt and 999999 completion tokens; the countersigned receipt says 11 and 3/,
    ],
  ],
  "hub.receipt.position": [["forgets_position", /welcome\.receipts\.lastSeq is 0; the hub countersigned receipts up to 2 \(SRP-SET-001\)/]],
  "hub.dispute": [["refuses_dispute", /the hub closed the session after a dispute \(1002 /]],
};

describe.concurrent("job relay and receipt checks against faulty hubs", () => {
  testHubFaults(HUB_CHECK_FAULTS);

  it("hub.receipt.implausible_usage passes against judges_usage_by_size, whose fault is only in what it counts as output", async () => {
    const results = await run("judges_usage_by_size", ["hub.receipt.implausible_usage"]);
    expect(results["hub.receipt.implausible_usage"]).toEqual(["pass", ""]);
  }, 60_000);
});
