// The reasoning checks of hub-reasoning.ts against faulty hubs (fixtures/faulty-hub.ts): each
// passes through the unchanged relay and fails against a hub that breaks its rule.
import { describe } from "vitest";
import { testHubFaults } from "./fixtures/faulty-hub.js";

describe("reasoning across translations: checks against faulty hubs", () => {
  testHubFaults({
    "hub.reasoning.thinking_blocks": [["thinking_dropped", /expected a thinking block/]],
    "hub.reasoning.billed_shown": [["reasoning_unmeasured", /answered a valid done .* with error/]],
  });
});
