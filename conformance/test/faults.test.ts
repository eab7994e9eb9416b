// Each hub-mode check that has no faulty fixture of its own is run here against a real
// @srp/hub behind a relay that breaks exactly one rule (fixtures/faulty-hub.ts): the check
// must fail there, and pass through the unchanged relay.
import { describe } from "vitest";
import { testHubFaults } from "./fixtures/faulty-hub.js";

/** check id -> the fault that must fail it. */
const HUB_CHECK_FAULTS: Record<string, string> = {
  "hub.handshake.timeout": "never_closes",
};

describe("hub checks against faulty hubs", () => testHubFaults(HUB_CHECK_FAULTS));
