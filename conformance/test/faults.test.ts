// Each hub-mode check that has no faulty fixture of its own is run here against a real
// @srp/hub behind a relay that breaks exactly one rule (fixtures/faulty-hub.ts): the check
// must fail there, for that rule (its details say so), and pass through the unchanged relay.
import { describe, expect, it } from "vitest";
import { runAgainstFault, testHubFaults } from "./fixtures/faulty-hub.js";

/** check id -> the faults that must fail it, each with what the check's details must say. */
const HUB_CHECK_FAULTS: Record<string, Array<[fault: string, details: RegExp]>> = {
  "hub.discovery": [["discovery_no_hub_id", /does not match schema\.json/]],
  "hub.handshake.timeout": [["never_closes", /connection still open/]],
  "hub.handshake.hello": [["hello_nonce_reused", /two connections received the same nonce/]],
  "hub.handshake.ok": [["welcome_always_replaced", /welcome\.replaced is true/]],
  "hub.auth.replayed_nonce": [["accepts_replayed_nonce", /no error message \(got welcome\)/]],
  "hub.auth.nonce_mismatch": [["ignores_nonce", /no error message \(got welcome\)/]],
  "hub.auth.wrong_hub": [["ignores_auth_hub", /no error message \(got welcome\)/]],
  "hub.auth.unknown_account": [["welcomes_unknown_account", /no error message \(got welcome\)/]],
  "hub.handshake.unexpected_message": [["ignores_early_messages", /expected protocol\.unexpected_message/]],
  "hub.frame.malformed": [
    ["malformed_as_invalid", /error code "frame\.invalid", expected frame\.malformed; closed with 4422, expected 1007/],
  ],
  "hub.frame.unknown_type": [["schema_before_type", /error code "frame\.invalid", expected frame\.unknown_type/]],
  "hub.frame.invalid": [["lenient_heartbeat", /no error message/]],
  "hub.frame.too_large": [["frame_limit_off_by_one", /error code "frame\.invalid", expected frame\.too_large/]],
  "hub.frame.bad_utf8": [["library_utf8_check", /^no error message$/]],
  "hub.frame.far_too_large": [["library_max_payload", /^no error message$/]],
  "hub.frame.duplicate_names": [["plain_json_parse", /no error message \(got welcome\)/]],
  "hub.frame.deep_nesting": [
    ["unlimited_nesting", /error code "protocol\.unexpected_message", expected frame\.malformed/],
    ["shallow_nesting_limit", /error code "frame\.malformed", expected protocol\.unexpected_message/],
  ],
  "hub.frame.isolation": [["frame_error_closes_all", /an unrelated session was closed \(1011/]],
  "hub.session.replaced": [["keeps_old_session", /old session: no error message/]],
  "hub.frame.binary": [["binary_as_text", /before auth: error code "protocol\.unexpected_message", expected frame\.binary/]],
  "hub.offer.withdraw": [["ignores_withdraw", /sent a job for the withdrawn instance/]],
};

describe.concurrent("hub checks against faulty hubs", () => {
  testHubFaults(HUB_CHECK_FAULTS);
});

// The heartbeat timer check needs a hub whose three intervals fit the check's wait.
describe("hub.session.heartbeat_timeout against a hub with a 1 s heartbeat interval", () => {
  const check = "hub.session.heartbeat_timeout";

  it("passes through the unchanged relay", async () => {
    const results = await runAgainstFault("none", [check], { heartbeatIntervalMs: 1000 });
    expect(results[check]).toEqual(["pass", ""]);
  }, 60_000);

  it("fails against the fault no_heartbeat_timeout", async () => {
    const results = await runAgainstFault("no_heartbeat_timeout", [check], { heartbeatIntervalMs: 1000 });
    expect(results[check]?.[0]).toBe("fail");
    expect(results[check]?.[1]).toMatch(/no error message; connection still open/);
  }, 60_000);
});
