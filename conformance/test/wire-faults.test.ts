// The transport, frame and versioning checks (hub-wire.ts, provider-wire.ts), each run
// against a peer that breaks exactly the rule it checks: a real @srp/hub behind a faulty
// relay (fixtures/faulty-hub.ts), or our provider behind one (fixtures/faulty-provider.mjs).
// Each check must fail there and pass against our unchanged hub and provider.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { HUB_WIRE_CHECKS } from "../src/checks/hub-wire.js";
import { PROVIDER_WIRE_CHECKS } from "../src/checks/provider-wire.js";
import { runProviderSuite } from "../src/index.js";
import { runAgainstFault } from "./fixtures/faulty-hub.js";

const fixture = (name: string) => join(fileURLToPath(new URL(".", import.meta.url)), "fixtures", name);
const provider = `SRP_ACCOUNT_KEY=srp_any_key_123 node ${fixture("sim-provider.mjs")}`;
const faulty = (fault: string) => `SRP_ACCOUNT_KEY=srp_any_key_123 node ${fixture("faulty-provider.mjs")} ${fault}`;

/** hub check id -> the faults (faulty-hub.ts) that must fail it. */
const HUB: Record<string, string[]> = {
  "hub.transport.no_subprotocol": ["requires_subprotocol"],
  "hub.transport.ping": ["no_pong"],
  "hub.discovery.consistent": ["discovery_versions", "discovery_text_plain", "discovery_no_surfaces"],
  "hub.frame.ext": ["ignores_bad_ext"],
  "hub.wire.valid_frames": ["srp_ext", "undefined_member"],
  "hub.frame.wrong_role": ["ignores_wrong_role"],
  "hub.frame.check_order": ["schema_before_type"],
  "hub.frame.every_state": ["reparse_after_welcome"],
  "hub.job.number_canonical": ["number_canonical"],
};

/** provider check id -> the faults (faulty-provider.mjs) that must fail it. */
const PROVIDER: Record<string, string[]> = {
  "provider.transport.ping": ["no_pong"],
  "provider.frame.ext": ["strips_ext"],
  "provider.wire.valid_frames": ["srp_ext", "undefined_member"],
  "provider.frame.wrong_role": ["drops_wrong_role"],
  "provider.frame.large_hello": ["small_prehello_limit"],
  "provider.frame.handshake_state": ["reparse_handshake"],
  "provider.goodbye.reconnect_delay": ["early_reconnect"],
  "provider.goodbye.no_offer_after": ["offer_after_goodbye"],
};

describe.concurrent("hub wire checks", () => {
  it("every check has a fault here", () => {
    expect(Object.keys(HUB).sort()).toEqual(HUB_WIRE_CHECKS.map((c) => c.id).sort());
  });

  it("@srp/hub (through the unchanged relay) passes every wire check", async () => {
    const results = await runAgainstFault("none", Object.keys(HUB));
    expect(Object.entries(results).filter(([, [s]]) => s !== "pass")).toEqual([]);
  }, 120_000);

  for (const [check, faults] of Object.entries(HUB)) {
    for (const fault of faults) {
      it(`${check} fails against the hub fault ${fault}`, async () => {
        const results = await runAgainstFault(fault, [check]);
        expect(results[check]?.[0]).toBe("fail");
      }, 60_000);
    }
  }
});

describe("provider wire checks", () => {
  it("every check has a fault here", () => {
    expect(Object.keys(PROVIDER).sort()).toEqual(PROVIDER_WIRE_CHECKS.map((c) => c.id).sort());
  });

  it("@srp/provider passes every wire check", async () => {
    const report = await runProviderSuite({ command: provider, only: new Set(Object.keys(PROVIDER)) });
    expect(report.results.filter((r) => r.status !== "pass").map((r) => [r.id, r.status, r.details])).toEqual([]);
  }, 120_000);

  for (const [check, faults] of Object.entries(PROVIDER)) {
    for (const fault of faults) {
      it(`${check} fails against the provider fault ${fault}`, async () => {
        const report = await runProviderSuite({ command: faulty(fault), only: new Set([check]) });
        expect(report.results.map((r) => [r.id, r.status])).toEqual([[check, "fail"]]);
      }, 60_000);
    }
  }
});
