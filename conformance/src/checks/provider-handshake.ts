/**
 * Provider-mode checks of the handshake's finer rules and of reconnection: the order of the
 * node's checks on `hello`, its check of `welcome`, an `error` with a code it does not know
 * (during the session, and ending the handshake), and the backoff before it reconnects.
 */
import { generateIdentity } from "@srp/core";
import type { Hello } from "@srp/core/schema";
import type { Check, CheckVerdict } from "../types.js";
import type { FakeHub } from "../harness/fake-hub.js";
import { hello, openSession, type ProviderContext, setup, welcome } from "../harness/provider-session.js";
import { fail } from "../harness/verdict.js";

/** How long a provider is watched for an unwanted reconnect. */
const QUIET_MS = 3000;
/** The least delay before a reconnection (SRP-HS-010). */
const MIN_BACKOFF_MS = 500;
/** A timestamp ten minutes old: stale on any clock within the 60 s window. */
const stale = () => Date.now() - 600_000;

/** Launches the provider, sends it the hello `make` builds, and returns the first error code and the close code. */
async function firstRejection(
  ctx: ProviderContext,
  make: (hub: FakeHub) => Hello,
): Promise<{ code: string | undefined; close: number | undefined }> {
  const s = await setup(ctx);
  const peer = await s.accept();
  peer.send(make(s.hub));
  const m = await peer.next(5000).catch(() => undefined);
  const closed = await peer.closedWithin(5000);
  return {
    code: m === undefined ? undefined : m.type === "error" ? String(m.code) : `(${String(m.type)} instead of error)`,
    close: closed?.code,
  };
}

/** Fails with `what` when the provider connects again within QUIET_MS. */
async function noReconnect(hub: FakeHub, what: string): Promise<string | undefined> {
  const again = await hub.accept(QUIET_MS);
  return again ? `the provider reconnected within ${QUIET_MS} ms ${what}` : undefined;
}

/**
 * Completes a handshake but answers the auth with a welcome changed by `change`, and expects
 * the first of `codes` ([code, close]) that matches; returns what went wrong, if anything.
 */
async function mismatchedWelcome(
  ctx: ProviderContext,
  what: string,
  change: (w: ReturnType<typeof welcome>) => Record<string, unknown>,
  codes: Array<[string, number]>,
): Promise<string | undefined> {
  const s = await setup(ctx);
  const peer = await s.accept();
  peer.send(hello(s.hub));
  const auth = await peer.expect("auth");
  peer.send(change(welcome(auth)));
  const m = await peer.next(5000).catch(() => undefined);
  const closed = await peer.closedWithin(5000);
  const got: [string, number | undefined] = [
    m?.type === "error" ? String(m.code) : m ? `(${String(m.type)})` : "no error message",
    closed?.code,
  ];
  if (!codes.some(([code, close]) => got[0] === code && got[1] === close)) {
    return `${what}: error ${got[0]}, close ${got[1] ?? "(still open)"}; expected ${codes.map(([c, n]) => `${c} and ${n}`).join(", or ")}`;
  }
  const again = await noReconnect(s.hub, `after rejecting ${what} (a handshake error, not retryable)`);
  return again;
}

/** Provider-mode handshake and reconnection checks. */
export const PROVIDER_HANDSHAKE_CHECKS: Check<ProviderContext>[] = [
  {
    id: "provider.handshake.check_order",
    title: "Checks hello in the order version, hub id, timestamp, signature and reports the first failure",
    requirements: ["SRP-HS-014"],
    level: "MUST",
    async run(ctx) {
      // Each hello has several faults; the node must name the first in the order of SRP-HS-014.
      const cases = [
        {
          what: "a hello with no common version, a stale ts and a bad signature",
          make: (hub: FakeHub) => hello(hub, { versions: [999], ts: stale() }, generateIdentity()),
          code: "version.unsupported",
          close: 4426,
        },
        {
          what: "a hello with a stale ts and a bad signature",
          make: (hub: FakeHub) => hello(hub, { ts: stale() }, generateIdentity()),
          code: "auth.stale_timestamp",
          close: 4401,
        },
      ];
      const got = await Promise.all(cases.map((c) => firstRejection(ctx, c.make)));
      const problems = cases.flatMap((c, i) =>
        got[i]!.code === c.code && got[i]!.close === c.close
          ? []
          : [`${c.what}: error ${got[i]!.code ?? "(none)"}, close ${got[i]!.close ?? "(none)"}; expected ${c.code} and ${c.close}`],
      );
      if (problems.length) fail(problems.join("; "));
    },
  },
  {
    id: "provider.handshake.welcome_mismatch",
    title:
      "Rejects a welcome naming another node id or another version with protocol.unexpected_message (1002; version.unsupported for a version it does not speak), and does not reconnect",
    requirements: ["SRP-HS-015", "SRP-HS-020", "SRP-HS-010"],
    level: "MUST",
    async run(ctx) {
      const problems = await Promise.all([
        mismatchedWelcome(ctx, "a welcome for another node id", (w) => ({ ...w, nodeId: generateIdentity().id }), [
          ["protocol.unexpected_message", 1002],
        ]),
        // A node that does not speak version 2 rejects it at SRP-FRM-009 step 8 instead.
        mismatchedWelcome(ctx, "a welcome for version 2 (the auth chose 1)", (w) => ({ ...w, version: 2 }), [
          ["protocol.unexpected_message", 1002],
          ["version.unsupported", 4426],
        ]),
      ]);
      const found = problems.filter(Boolean);
      if (found.length) fail(found.join("; "));
    },
  },
  {
    id: "provider.error.unknown_code",
    title: "Keeps the session after an error with a code it does not know and no close, without answering it with an error",
    requirements: ["SRP-ERR-004"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await openSession(ctx);
      const from = peer.received.length;
      peer.send({
        type: "error",
        code: "x-conformance.notice",
        message: "conformance: a code the node does not know; the session continues",
        retryable: true,
      });
      const closed = await peer.closedWithin(1000);
      if (closed) fail(`the provider closed the session (${closed.code} ${closed.reason}) after an error the hub did not close for`);
      const errors = peer.matching((m) => m.type === "error", from);
      if (errors.length) fail(`the provider answered with error ${String(errors[0]!.code)}`);
    },
  },
  {
    id: "provider.handshake.unknown_error",
    title: "Does not reconnect after a handshake ended by an error with an unknown code and retryable false",
    requirements: ["SRP-HS-020", "SRP-ERR-004", "SRP-HS-010"],
    level: "MUST",
    async run(ctx): Promise<CheckVerdict> {
      const s = await setup(ctx);
      const peer = await s.accept();
      peer.send(hello(s.hub));
      await peer.expect("auth");
      peer.send({
        type: "error",
        code: "x-conformance.refused",
        message: "conformance: an extension code; not retryable",
        retryable: false,
      });
      peer.close(4000, "x-conformance.refused");
      const problem = await noReconnect(s.hub, "after a handshake error whose retryable is false");
      if (problem) fail(problem);
    },
  },
  {
    id: "provider.reconnect.backoff",
    title: "After session.rate_limited, waits at least 500 ms before it reconnects (if it does within 3 s)",
    requirements: ["SRP-ERR-008", "SRP-HS-010", "SRP-HS-021"],
    level: "MUST",
    async run(ctx): Promise<CheckVerdict> {
      const { peer, hub } = await openSession(ctx);
      peer.send({ type: "error", code: "session.rate_limited", message: "conformance: too many connections", retryable: true });
      peer.close(4429, "session.rate_limited");
      const t0 = Date.now();
      const again = await hub.accept(QUIET_MS);
      if (!again) return { status: "pass", details: `did not reconnect within ${QUIET_MS} ms (allowed)` };
      const waited = Date.now() - t0;
      if (waited < MIN_BACKOFF_MS)
        fail(`the provider reconnected ${waited} ms after session.rate_limited; the first delay is at least ${MIN_BACKOFF_MS} ms`);
    },
  },
];
