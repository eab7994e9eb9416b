// The Responses and legacy completions checks of hub-responses.ts against faulty hubs
// (fixtures/faulty-hub.ts): each fails against a hub that breaks exactly its rule, and all
// pass through the unchanged relay (our hub).
import { describe } from "vitest";
import { testHubFaults } from "./fixtures/faulty-hub.js";

describe("Responses and completions checks against faulty hubs", () => {
  testHubFaults({
    "hub.responses.translated": [["responses_usage_chat_shape", /does not say input_tokens 21, output_tokens 9/]],
    "hub.responses.stream": [["responses_events_from_one", /event 0 \(response\.created\) has sequence_number 1/]],
    "hub.responses.stream_failed": [["responses_failed_as_completed", /carries response\.completed/]],
    "hub.responses.refused": [
      ["responses_refusals_accepted", /input is a number: status 200 and code undefined, expected 400 api\.invalid_body/],
    ],
    "hub.responses.continued": [["responses_history_dropped", /the continuation's messages .* are not/]],
    "hub.responses.native": [["responses_never_native", /the job's api is chat\.completions, expected responses/]],
    "hub.completions.native": [["completions_usage_plain", /is not the billed usage with SRP's members/]],
  });
});
