// The handshake, authentication and error checks against faulty targets: each hub-mode check
// fails against a real @srp/hub behind a relay that breaks exactly its rule
// (fixtures/faulty-hub.ts), each provider-mode check against our provider behind a relay that
// breaks its rule (fixtures/faulty-provider.mjs) or a node without backoff
// (fixtures/eager-reconnect-provider.mjs); all pass against the unchanged targets. Also: our
// provider's reconnection rules (SRP-HS-020, SRP-HS-021) over a real WebSocket.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateIdentity } from "@srp/core";
import { backoffDelay, connectToHub, mayReconnect } from "@srp/provider";
import { describe, expect, it } from "vitest";
import { PROVIDER_HANDSHAKE_CHECKS } from "../src/checks/provider-handshake.js";
import { FakeHub } from "../src/harness/fake-hub.js";
import { hello, welcome } from "../src/harness/provider-session.js";
import { runProviderSuite } from "../src/index.js";
import { SchemaValidator } from "../src/schema.js";
import { testHubFaults } from "./fixtures/faulty-hub.js";

const fixture = (name: string) => join(fileURLToPath(new URL(".", import.meta.url)), "fixtures", name);

/** Hub check id -> the faults that must fail it, each with what its details must say. */
const HUB_CHECK_FAULTS: Record<string, Array<[fault: string, details: RegExp]>> = {
  "hub.handshake.version_unsupported": [["welcomes_bad_version", /got welcome/]],
  "hub.handshake.welcome": [["welcome_frame_limit", /welcome\.limits\.maxFrameBytes is \d+, hello announced/]],
  "hub.handshake.rejection": [
    ["error_then_goodbye", /hello, error, goodbye/],
    ["bare_vendor_code", /acme\.refused.*SRP-ERR-005/],
  ],
  // SRP-ERR-006 is cited by the security helper's check; the same fault fails it.
  "hub.security.key_not_echoed": [["echoes_key", /srp_conformance_secret_/]],
  "hub.auth.signing_input": [["drops_auth_ext", /auth\.bad_signature .*SRP-HS-011/]],
  "hub.auth.wallet": [["skips_wallet_proof", /signed by another wallet: error auth\.unknown_account/]],
  "hub.error.unknown_code": [["rejects_unknown_error", /was closed|answered with error/]],
  "hub.session.goodbye": [["goodbye_not_1000", /closed with 1011/]],
  "hub.session.replaced_routing": [["carries_offers", /reached the new session/]],
};

describe.concurrent("handshake and error checks against faulty hubs", () => {
  testHubFaults(HUB_CHECK_FAULTS);
});

describe("handshake and error checks against faulty providers", () => {
  const provider = `SRP_ACCOUNT_KEY=srp_any_key_123 node ${fixture("sim-provider.mjs")}`;
  const faulty = (fault: string) => `SRP_ACCOUNT_KEY=srp_any_key_123 node ${fixture("faulty-provider.mjs")} ${fault}`;
  const OTHERS = ["provider.handshake.version_unsupported", "provider.auth.bad_signature", "provider.auth.unknown_account"];

  it("our provider passes every handshake check", async () => {
    const only = new Set([...PROVIDER_HANDSHAKE_CHECKS.map((c) => c.id), ...OTHERS]);
    const report = await runProviderSuite({ command: provider, only });
    expect(report.results.map((r) => [r.id, r.status, r.details ?? ""]).filter(([, s]) => s !== "pass")).toEqual([]);
    expect(report.results).toHaveLength(only.size);
    // Our node reconnects after session.rate_limited, after its backoff.
    expect(report.results.find((r) => r.id === "provider.reconnect.backoff")?.details).toBeUndefined();
  }, 120_000);

  const cases: Array<[check: string, command: string, details: RegExp]> = [
    ["provider.handshake.check_order", faulty("sig_first"), /stale ts and a bad signature: error auth\.bad_signature/],
    [
      "provider.handshake.welcome_mismatch",
      faulty("fixes_welcome"),
      /another node id: error \(offer\)|another node id: error no error message/,
    ],
    ["provider.error.unknown_code", faulty("closes_on_unknown_error"), /closed the session \(1002/],
    ["provider.handshake.unknown_error", faulty("ignores_retryable"), /reconnected within 3000 ms/],
    ["provider.reconnect.backoff", `node ${fixture("eager-reconnect-provider.mjs")}`, /reconnected \d+ ms after session\.rate_limited/],
  ];
  for (const [check, command, details] of cases) {
    it(`${check} fails against a provider that breaks it`, async () => {
      const report = await runProviderSuite({ command, only: new Set([check]) });
      expect(report.results[0]?.status).toBe("fail");
      expect(report.results[0]?.details).toMatch(details);
    }, 60_000);
  }
});

describe("our provider's reconnection rules", () => {
  it("mayReconnect: before welcome the error's retryable decides, sent or received; after welcome only session.replaced and auth.* stop it", () => {
    expect(mayReconnect({ code: "auth.bad_signature", afterWelcome: false })).toBe(false);
    expect(mayReconnect({ code: "auth.stale_timestamp", afterWelcome: false })).toBe(true);
    expect(mayReconnect({ code: "frame.invalid", afterWelcome: false })).toBe(false);
    // A code outside the table: its retryable member decides.
    expect(mayReconnect({ code: "x-acme.refused", retryable: false, afterWelcome: false })).toBe(false);
    expect(mayReconnect({ code: "x-acme.busy", retryable: true, afterWelcome: false })).toBe(true);
    expect(mayReconnect({ code: "frame.invalid", afterWelcome: true })).toBe(true);
    expect(mayReconnect({ code: "protocol.unexpected_message", afterWelcome: true })).toBe(true);
    expect(mayReconnect({ code: "auth.revoked", afterWelcome: true })).toBe(false);
    expect(mayReconnect({ code: "session.replaced", afterWelcome: true })).toBe(false);
    expect(mayReconnect({ afterWelcome: false })).toBe(true);
  });

  it("backoffDelay: the first delay is 500 to 1000 ms, then doubles up to the cap", () => {
    expect([backoffDelay(0, 500, 60_000, 0), backoffDelay(0, 500, 60_000, 0.999999)]).toEqual([500, 1000]);
    expect([backoffDelay(3, 500, 60_000, 0), backoffDelay(3, 500, 60_000, 0.999999)]).toEqual([4000, 8000]);
    expect([backoffDelay(20, 500, 60_000, 0), backoffDelay(20, 500, 60_000, 0.999999)]).toEqual([30_000, 60_000]);
    // A cap below twice the initial delay never takes the delay under the initial delay.
    expect(backoffDelay(0, 500, 600, 0)).toBe(500);
  });

  /** A harness hub with one provider connected and welcomed. */
  async function welcomed() {
    const hub = new FakeHub(new SchemaValidator());
    await hub.start();
    const conn = connectToHub({ hub: hub.baseUrl, identity: generateIdentity(), account: { kind: "api_key", key: "srp_test_key_123" } });
    const peer = (await hub.accept(5000))!;
    peer.send(hello(hub));
    peer.send(welcome(await peer.expect("auth")));
    await conn.ready();
    return { hub, conn, peer };
  }

  it("after welcome, a node that sends frame.malformed for a bad hub frame reconnects (SRP-HS-021)", async () => {
    const { hub, conn, peer } = await welcomed();
    try {
      peer.sendRaw('{"type":"cancel",');
      expect(await peer.expect("error")).toMatchObject({ code: "frame.malformed", retryable: false });
      expect(await hub.accept(5000)).toBeDefined();
      expect(conn.state).not.toBe("stopped");
    } finally {
      await conn.close();
      await hub.stop();
    }
  });

  it("after welcome, a node that receives frame.invalid reconnects, and one that receives auth.revoked stops", async () => {
    const a = await welcomed();
    const b = await welcomed();
    try {
      a.peer.send({
        type: "error",
        code: "frame.invalid",
        message: "the hub found a message that does not match its schema",
        retryable: false,
      });
      a.peer.close(4422, "frame.invalid");
      expect(await a.hub.accept(5000)).toBeDefined();
      const stopped = new Promise<{ error?: { code: string } }>((resolve) => b.conn.once("stopped", resolve));
      b.peer.send({ type: "error", code: "auth.revoked", message: "the key was revoked", retryable: false });
      b.peer.close(4403, "auth.revoked");
      expect((await stopped).error?.code).toBe("auth.revoked");
    } finally {
      await Promise.all([a.conn.close(), b.conn.close()]);
      await Promise.all([a.hub.stop(), b.hub.stop()]);
    }
  });

  it("a welcome for another node id is refused with protocol.unexpected_message, and the node stops (SRP-HS-015, SRP-HS-020)", async () => {
    const hub = new FakeHub(new SchemaValidator());
    await hub.start();
    const conn = connectToHub({ hub: hub.baseUrl, identity: generateIdentity(), account: { kind: "api_key", key: "srp_test_key_123" } });
    try {
      const peer = (await hub.accept(5000))!;
      peer.send(hello(hub));
      peer.send({ ...welcome(await peer.expect("auth")), nodeId: generateIdentity().id });
      await expect(conn.ready()).rejects.toMatchObject({ code: "protocol.unexpected_message" });
      expect((await peer.closedWithin(2000))?.code).toBe(1002);
    } finally {
      await conn.close();
      await hub.stop();
    }
  });
});
