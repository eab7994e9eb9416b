// The stored-response checks of hub-stored-responses.ts against faulty hubs
// (fixtures/faulty-hub.ts): each fails against a hub that breaks exactly its rule, and all
// pass through the unchanged relay (our hub, whose Responses surface stores each answered
// turn in memory).
import { describe } from "vitest";
import { testHubFaults } from "./fixtures/faulty-hub.js";

describe("stored-response checks against faulty hubs", () => {
  testHubFaults({
    "hub.responses.stored": [
      ["stored_response_altered", /differs from the Response object answered at creation in usage/],
      ["stores_when_told_not", /GET of the store:false response .*: status 200/],
    ],
    "hub.responses.own_account": [["stored_responses_keyless", /without a key: status 200/]],
    "hub.responses.input_items": [["input_items_oldest_first", /expected the three input items newest first/]],
    "hub.responses.delete": [
      ["delete_answer_bare", /DELETE \/v1\/responses\/\{id\} answered 200 \{"id":"resp_[^"]+","deleted":true\}/],
      ["continuation_refused_as_invalid", /previous_response_id naming a deleted response: status 400 and code api\.invalid_body/],
    ],
  });
});
