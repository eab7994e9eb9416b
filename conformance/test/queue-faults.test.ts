// The checks of fallbacks across models and waiting for a slot (checks/hub-queue.ts) against
// faulty hubs (fixtures/faulty-hub.ts): each fails against a hub that breaks its rule and
// passes through the unchanged relay.
import { describe } from "vitest";
import { testHubFaults } from "./fixtures/faulty-hub.js";

describe("fallback and queue checks against faulty hubs", () => {
  testHubFaults({
    "hub.fallbacks.models": [
      ["models_sent_to_node", /carries `models`/],
      ["fallback_model_misnamed", /names model/],
    ],
    "hub.queue.waits_in_order": [["queue_refuses_at_once", /instead of waiting for the slot/]],
    "hub.queue.wait_runs_out": [
      ["queue_wait_capped_at_zero", /before its wait ran out/],
      ["queue_refuses_at_once", /default wait is at least 1000 ms/],
    ],
  });
});
