/**
 * Provider-mode checks: the harness plays the hub for a provider under test, which it
 * launches once per check with the hub's base URL as the last argument.
 */
import { generateIdentity } from "@srp/core";
import type { Hello } from "@srp/core/schema";
import type { Check, CheckVerdict } from "../types.js";
import type { FakeHub } from "../harness/fake-hub.js";
import { authProblem, hello, openSession, type ProviderContext, setup } from "../harness/provider-session.js";
import { ensure, fail } from "../harness/verdict.js";
import { expectRejection, type WirePeer } from "../harness/wire.js";
import { PROVIDER_FRAME_CHECKS } from "./frames.js";
import { PROVIDER_API_CHECKS } from "./provider-apis.js";
import { PROVIDER_ASYNC_CHECKS } from "./provider-async.js";
import { PROVIDER_HANDSHAKE_CHECKS } from "./provider-handshake.js";
import { PROVIDER_JOB_RULE_CHECKS } from "./provider-job-rules.js";
import { PROVIDER_JOB_CHECKS } from "./provider-jobs.js";
import { PROVIDER_RECEIPT_CHECKS } from "./provider-receipts.js";
import { PROVIDER_WIRE_CHECKS } from "./provider-wire.js";

export type { ProviderContext } from "../harness/provider-session.js";

/** How long a provider is watched for an unwanted reconnect. */
const QUIET_MS = 3000;

/** Checks that a provider rejects a bad hello without sending auth. */
async function rejectsHello(ctx: ProviderContext, make: (hub: FakeHub) => Hello, code: string, close: number): Promise<CheckVerdict> {
  const s = await setup(ctx);
  const peer = await s.accept();
  peer.send(make(s.hub));
  const first = await peer.next(5000).catch(() => undefined);
  if (first?.type === "auth") fail("the provider answered a hello it must reject with auth");
  const rest = first?.type === "error" ? undefined : "(no error message first)";
  const problem = first?.type === "error" ? (first.code === code ? undefined : `error code ${String(first.code)}, expected ${code}`) : rest;
  const closed = await peer.closedWithin(5000);
  const closeProblem = !closed
    ? "connection still open"
    : closed.code === close
      ? undefined
      : `closed with ${closed.code}, expected ${close}`;
  if (problem || closeProblem) fail([problem, closeProblem].filter(Boolean).join("; "));
  return noReconnect(s.hub, "after a non-retryable handshake error", "fail");
}

async function noReconnect(hub: FakeHub, when: string, status: "fail" | "warning"): Promise<CheckVerdict> {
  const again = await hub.accept(QUIET_MS);
  if (again) return { status, details: `the provider reconnected within ${QUIET_MS} ms ${when}` };
  return undefined;
}

async function frameCheck(ctx: ProviderContext, frame: string, code: string, close: number): Promise<CheckVerdict> {
  const { peer } = await openSession(ctx);
  peer.sendRaw(frame);
  const problem = await expectRejection(peer, code, close);
  if (problem) fail(problem);
}

/** Provider-mode checks, in run order. */
export const PROVIDER_CHECKS: Check<ProviderContext>[] = [
  {
    id: "provider.handshake.ok",
    title: "Answers a valid hello with an auth that echoes the nonce and hub id, chooses version 1 and is signed by the node",
    requirements: ["SRP-HS-003", "SRP-AUTH-001", "SRP-AUTH-002", "SRP-TR-001"],
    level: "MUST",
    async run(ctx) {
      await openSession(ctx);
    },
  },
  {
    id: "provider.liveness.heartbeat",
    title: "Sends heartbeats at least once per announced interval",
    requirements: ["SRP-LIV-001"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await openSession(ctx, 1000);
      const t0 = Date.now();
      for (let i = 0; i < 2; i++) {
        // Other messages (an offer, for one) may come in between.
        await peer
          .take((m) => m.type === "heartbeat", 2500, 0, "a heartbeat")
          .catch((e: Error) => fail(`no heartbeat within 2.5 s of a 1 s interval: ${e.message}`));
      }
      ensure(Date.now() - t0 <= 3000, "two heartbeats took more than three 1 s intervals");
    },
  },
  {
    id: "provider.handshake.version_unsupported",
    title: "Rejects a hello offering no common version with version.unsupported and does not reconnect",
    requirements: ["SRP-HS-004", "SRP-HS-010", "SRP-HS-020"],
    level: "MUST",
    run: (ctx) => rejectsHello(ctx, (hub) => hello(hub, { versions: [999] }), "version.unsupported", 4426),
  },
  {
    id: "provider.auth.bad_signature",
    title: "Rejects a hello whose signature does not verify with auth.bad_signature, without sending auth",
    requirements: ["SRP-HS-002", "SRP-HS-010", "SRP-HS-020"],
    level: "MUST",
    run: (ctx) => rejectsHello(ctx, (hub) => hello(hub, {}, generateIdentity()), "auth.bad_signature", 4401),
  },
  {
    id: "provider.auth.stale_timestamp",
    title: "Rejects a hello with a ten-minute-old timestamp with auth.stale_timestamp",
    requirements: ["SRP-AUTH-002"],
    level: "MUST",
    async run(ctx) {
      const s = await setup(ctx);
      const peer = await s.accept();
      peer.send(hello(s.hub, { ts: Date.now() - 600_000 }));
      const problem = await expectRejection(peer, "auth.stale_timestamp", 4401);
      if (problem) fail(problem);
    },
  },
  {
    id: "provider.auth.replayed_nonce",
    title: "After a reconnect, answers the new session's nonce, never replaying an earlier auth",
    requirements: ["SRP-HS-003", "SRP-AUTH-003", "SRP-HS-010"],
    level: "MUST",
    async run(ctx) {
      const { peer, hub, accept } = await openSession(ctx);
      peer.send({ type: "goodbye", reason: "conformance: reconnect please", reconnectAfterMs: 0 });
      peer.close(1001, "session.shutdown");
      const again = await accept("the provider to reconnect after goodbye (reconnectAfterMs 0)");
      const h = hello(hub);
      again.send(h);
      const auth = await again.expect("auth");
      const problem = authProblem(auth, h);
      if (problem) fail(`second session: ${problem}`);
    },
  },
  {
    id: "provider.auth.unknown_account",
    title: "Stops without reconnecting after auth.unknown_account",
    requirements: ["SRP-HS-010", "SRP-HS-020"],
    level: "MUST",
    async run(ctx) {
      const s = await setup(ctx);
      const peer = await s.accept();
      peer.send(hello(s.hub));
      await peer.expect("auth");
      peer.send({ type: "error", code: "auth.unknown_account", message: "conformance: this hub knows no such account", retryable: false });
      peer.close(4403, "auth.unknown_account");
      return noReconnect(s.hub, "after auth.unknown_account", "fail");
    },
  },
  {
    id: "provider.frame.malformed",
    title: "Answers a frame that is not JSON with frame.malformed and closes with 1007",
    requirements: ["SRP-FRM-002", "SRP-FRM-005"],
    level: "MUST",
    run: (ctx) => frameCheck(ctx, '{"type":"cancel",', "frame.malformed", 1007),
  },
  {
    id: "provider.frame.unknown_type",
    title: "Answers a message of an undefined type with frame.unknown_type and closes with 4400",
    requirements: ["SRP-FRM-003", "SRP-FRM-005"],
    level: "MUST",
    run: (ctx) => frameCheck(ctx, JSON.stringify({ type: "x-teleport" }), "frame.unknown_type", 4400),
  },
  {
    id: "provider.frame.invalid",
    title: "Answers a cancel that violates its schema with frame.invalid and closes with 4422",
    requirements: ["SRP-FRM-004", "SRP-FRM-005"],
    level: "MUST",
    run: (ctx) => frameCheck(ctx, JSON.stringify({ type: "cancel", jobId: "job_1", reason: "bored" }), "frame.invalid", 4422),
  },
  {
    id: "provider.frame.too_large",
    title: "Answers a frame one byte over the hello's limit with frame.too_large and closes with 1009",
    requirements: ["SRP-FRM-001", "SRP-FRM-005"],
    level: "MUST",
    async run(ctx) {
      const head = '{"type":"goodbye","reason":"';
      const tail = '"}';
      return frameCheck(ctx, head + "x".repeat(1_048_576 + 1 - head.length - tail.length) + tail, "frame.too_large", 1009);
    },
  },
  ...PROVIDER_FRAME_CHECKS,
  ...PROVIDER_WIRE_CHECKS,
  ...PROVIDER_HANDSHAKE_CHECKS,
  {
    id: "provider.session.replaced",
    title: "Does not reconnect after its session was replaced by another process with the same identity",
    requirements: ["SRP-HS-009"],
    level: "SHOULD",
    async run(ctx) {
      const { peer, hub } = await openSession(ctx);
      peer.send({ type: "error", code: "session.replaced", message: "conformance: a newer session replaced this one", retryable: false });
      peer.close(4409, "session.replaced");
      return noReconnect(hub, "after session.replaced", "fail");
    },
  },
  ...PROVIDER_JOB_CHECKS,
  ...PROVIDER_RECEIPT_CHECKS,
  ...PROVIDER_JOB_RULE_CHECKS,
  ...PROVIDER_API_CHECKS,
  ...PROVIDER_ASYNC_CHECKS,
];

export type { WirePeer };
