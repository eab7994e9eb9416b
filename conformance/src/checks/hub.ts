/**
 * Hub-mode checks: the harness plays provider nodes against a hub under test, over the
 * wire only. Each check opens its own connections with fresh node identities.
 */
import { createAuth, generateIdentity, omitFields, signDetached, verifyDetached, type Identity } from "@srp/core";
import type { Auth } from "@srp/core/schema";
import type { Check } from "../types.js";
import { connect, discovery, type HubContext, needKey, openSession, stillServing } from "../harness/hub-session.js";
import { ensure, fail, skippable } from "../harness/verdict.js";
import { expectRejection } from "../harness/wire.js";
import { HUB_FRAME_CHECKS } from "./frames.js";
import { HUB_ASYNC_CHECKS } from "./hub-async.js";
import { HUB_CONSUMER_RULE_CHECKS } from "./hub-consumer-rules.js";
import { HUB_CONSUMER_SURFACE_CHECKS } from "./hub-consumer-surfaces.js";
import { HUB_HANDSHAKE_CHECKS } from "./hub-handshake.js";
import { HUB_JOB_CHECKS } from "./hub-jobs.js";
import { HUB_JOB_RULE_CHECKS } from "./hub-job-rules.js";
import { HUB_ESTIMATE_CHECKS } from "./hub-estimates.js";
import { HUB_KEYS_CHECKS } from "./hub-keys.js";
import { HUB_LIFECYCLE_CHECKS, HUB_RECORD_CHECKS } from "./hub-lifecycle.js";
import { HUB_MODEL_CHECKS } from "./hub-models.js";
import { HUB_QUEUE_CHECKS } from "./hub-queue.js";
import { HUB_REASONING_CHECKS } from "./hub-reasoning.js";
import { HUB_RECEIPT_CHECKS } from "./hub-receipts.js";
import { HUB_RESPONSES_CHECKS } from "./hub-responses.js";
import { HUB_SECURITY_CHECKS } from "./hub-security.js";
import { HUB_SETTLEMENT_CHECKS } from "./hub-settlement.js";
import { HUB_STORED_RESPONSES_CHECKS } from "./hub-stored-responses.js";
import { HUB_WIRE_CHECKS } from "./hub-wire.js";
import { HUB_X402_CHECKS } from "./hub-x402.js";

export type { HubContext } from "../harness/hub-session.js";

/** Signs an auth body with a chosen key after applying changes. */
function resign(body: Auth | Record<string, unknown>, signer: Identity): Record<string, unknown> {
  const unsigned = omitFields(body, "sig");
  return { ...unsigned, sig: signDetached("auth", unsigned, signer) };
}

/**
 * Sends an auth answering a fresh hello, built by `make` from a correct one, and expects
 * the hub to reject it with `code` and `close`.
 */
async function rejectsAuth(
  ctx: HubContext,
  make: (auth: Auth, identity: Identity) => Record<string, unknown>,
  code: string,
  close: number,
) {
  return skippable(async () => {
    const identity = generateIdentity();
    const { peer, hello } = await connect(ctx);
    peer.send(make(createAuth({ identity, hello, account: { kind: "api_key", key: needKey(ctx) } }), identity));
    const problem = await expectRejection(peer, code, close);
    if (problem) fail(problem);
  });
}

/** Hub-mode checks, in run order. */
export const HUB_CHECKS: Check<HubContext>[] = [
  {
    id: "hub.discovery",
    title: "Serves /.well-known/srp.json matching schema.json, with a WebSocket provider URL",
    requirements: ["SRP-TR-003", "SRP-TR-001"],
    level: "MUST",
    async run(ctx) {
      const doc = await discovery(ctx);
      ensure(/^wss?:\/\//.test(doc.provider.url), `provider.url ${doc.provider.url} is not a ws:// or wss:// URL`);
    },
  },
  {
    id: "hub.handshake.hello",
    title: "Opens every connection with a signed, fresh hello; nonces never repeat",
    requirements: ["SRP-HS-001", "SRP-HS-002", "SRP-AUTH-002", "SRP-TR-003"],
    level: "MUST",
    async run(ctx) {
      const nonces = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const { hello, doc, peer } = await connect(ctx);
        ensure(hello.hubId === doc.hubId, `hello.hubId ${hello.hubId} differs from the discovery document's ${doc.hubId}`);
        ensure(
          verifyDetached("hello", omitFields(hello, "sig"), hello.sig, hello.hubId),
          "hello signature does not verify with hello.hubId",
        );
        ensure(Math.abs(hello.ts - Date.now()) <= 60_000, `hello.ts is ${hello.ts - Date.now()} ms from the harness clock`);
        ensure(hello.versions.includes(1), `hello.versions ${JSON.stringify(hello.versions)} does not include 1`);
        ensure(!nonces.has(hello.nonce), "two connections received the same nonce");
        nonces.add(hello.nonce);
        peer.close();
      }
    },
  },
  {
    id: "hub.handshake.ok",
    title: "Answers a valid auth bound to a known account with welcome",
    requirements: ["SRP-HS-003", "SRP-HS-006", "SRP-AUTH-006"],
    level: "MUST",
    run: (ctx) =>
      skippable(async () => {
        const { welcome, identity } = await openSession(ctx);
        ensure(welcome.nodeId === identity.id, `welcome.nodeId ${String(welcome.nodeId)} is not the node's id`);
        ensure(welcome.version === 1, `welcome.version is ${String(welcome.version)}, the node chose 1`);
        ensure(welcome.replaced === false, "welcome.replaced is true for a node that had no session");
      }),
  },
  {
    id: "hub.handshake.version_unsupported",
    title: "Rejects an auth choosing a version the hub did not offer with version.unsupported",
    requirements: ["SRP-HS-004", "SRP-HS-012"],
    level: "MUST",
    run: (ctx) => rejectsAuth(ctx, (auth, identity) => resign({ ...auth, version: 999 }, identity), "version.unsupported", 4426),
  },
  {
    id: "hub.auth.bad_signature",
    title: "Rejects an auth whose signature does not verify with auth.bad_signature",
    requirements: ["SRP-AUTH-001", "SRP-AUTH-005"],
    level: "MUST",
    // Signed by a key other than nodeId.
    run: (ctx) => rejectsAuth(ctx, (auth) => resign(auth, generateIdentity()), "auth.bad_signature", 4401),
  },
  {
    id: "hub.auth.stale_timestamp",
    title: "Rejects a correctly signed auth with a ten-minute-old timestamp with auth.stale_timestamp",
    requirements: ["SRP-AUTH-002", "SRP-AUTH-005"],
    level: "MUST",
    run: (ctx) =>
      rejectsAuth(ctx, (auth, identity) => resign({ ...auth, ts: Date.now() - 600_000 }, identity), "auth.stale_timestamp", 4401),
  },
  {
    id: "hub.auth.replayed_nonce",
    title: "Rejects an auth that replays the nonce of an earlier connection with auth.replayed_nonce",
    requirements: ["SRP-AUTH-003", "SRP-HS-001"],
    level: "MUST",
    run: (ctx) =>
      skippable(async () => {
        const identity = generateIdentity();
        const key = needKey(ctx);
        const first = await connect(ctx);
        first.peer.send(createAuth({ identity, hello: first.hello, account: { kind: "api_key", key } }));
        await first.peer.expect("welcome");
        first.peer.close();
        const second = await connect(ctx);
        ensure(second.hello.nonce !== first.hello.nonce, "the hub reused a nonce");
        // A well-formed, freshly signed auth that answers the first connection's nonce.
        second.peer.send(createAuth({ identity, hello: first.hello, account: { kind: "api_key", key } }));
        const problem = await expectRejection(second.peer, "auth.replayed_nonce", 4401);
        if (problem) fail(problem);
      }),
  },
  {
    id: "hub.auth.unknown_account",
    title: "Rejects a node bound to an API key the hub does not know with auth.unknown_account",
    requirements: ["SRP-AUTH-006", "SRP-AUTH-005"],
    level: "MUST",
    async run(ctx) {
      const { peer, hello } = await connect(ctx);
      peer.send(
        createAuth({ identity: generateIdentity(), hello, account: { kind: "api_key", key: `srp_conformance_unknown_${Date.now()}` } }),
      );
      const problem = await expectRejection(peer, "auth.unknown_account", 4403);
      if (problem) fail(problem);
    },
  },
  {
    id: "hub.handshake.unexpected_message",
    title: "Rejects a message other than auth before welcome with protocol.unexpected_message",
    requirements: ["SRP-HS-007"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await connect(ctx);
      peer.send({ type: "heartbeat", ts: Date.now(), load: [] });
      const problem = await expectRejection(peer, "protocol.unexpected_message", 1002);
      if (problem) fail(problem);
    },
  },
  ...(
    [
      ["malformed", "a frame that is not JSON", "frame.malformed", 1007, () => '{"type":"heartbeat",'],
      [
        "unknown_type",
        "a message of an undefined type",
        "frame.unknown_type",
        4400,
        () => JSON.stringify({ type: "x-teleport", ts: Date.now() }),
      ],
      [
        "invalid",
        "a heartbeat that violates its schema",
        "frame.invalid",
        4422,
        () => JSON.stringify({ type: "heartbeat", ts: "yesterday", load: [] }),
      ],
    ] as const
  ).map(
    ([name, what, code, close, frame]): Check<HubContext> => ({
      id: `hub.frame.${name}`,
      title: `Answers ${what} with ${code} and closes with ${close}`,
      requirements: [{ malformed: "SRP-FRM-002", unknown_type: "SRP-FRM-003", invalid: "SRP-FRM-004" }[name], "SRP-FRM-005", "SRP-TR-002"],
      level: "MUST",
      run: (ctx) =>
        skippable(async () => {
          const { peer } = await openSession(ctx);
          peer.sendRaw(frame());
          const problem = await expectRejection(peer, code, close);
          if (problem) fail(problem);
        }),
    }),
  ),
  {
    id: "hub.frame.too_large",
    title: "Answers a frame one byte over the announced limit with frame.too_large and closes with 1009",
    requirements: ["SRP-FRM-001", "SRP-FRM-005"],
    level: "MUST",
    run: (ctx) =>
      skippable(async () => {
        const { peer, hello } = await openSession(ctx);
        const limit = (hello.limits as { maxFrameBytes: number }).maxFrameBytes;
        const head = '{"type":"goodbye","reason":"';
        const tail = '"}';
        peer.sendRaw(head + "x".repeat(limit + 1 - head.length - tail.length) + tail);
        const problem = await expectRejection(peer, "frame.too_large", 1009);
        if (problem) fail(problem);
      }),
  },
  ...HUB_FRAME_CHECKS,
  {
    id: "hub.frame.isolation",
    title: "Keeps serving other sessions and new handshakes while a peer sends bad frames",
    requirements: ["SRP-FRM-006"],
    level: "MUST",
    run: (ctx) =>
      skippable(async () => {
        const bystander = await openSession(ctx);
        for (const frame of ["not json", '{"type":"x-unknown"}', '{"type":"heartbeat"}']) {
          const { peer } = await openSession(ctx);
          peer.sendRaw(frame);
          await peer.closedWithin(5000);
        }
        await stillServing(bystander.peer);
        const late = await openSession(ctx);
        await stillServing(late.peer);
      }),
  },
  {
    id: "hub.session.replaced",
    title: "A second session for the same node replaces the first with session.replaced; welcome.replaced is true",
    requirements: ["SRP-HS-008"],
    level: "MUST",
    run: (ctx) =>
      skippable(async () => {
        const identity = generateIdentity();
        const first = await openSession(ctx, identity);
        const second = await openSession(ctx, identity);
        const problem = await expectRejection(first.peer, "session.replaced", 4409);
        if (problem) fail(`old session: ${problem}`);
        ensure(second.welcome.replaced === true, "the new session's welcome.replaced is not true");
        await stillServing(second.peer);
      }),
  },
  ...HUB_WIRE_CHECKS,
  ...HUB_LIFECYCLE_CHECKS,
  ...HUB_HANDSHAKE_CHECKS,
  ...HUB_JOB_CHECKS,
  ...HUB_RECEIPT_CHECKS,
  ...HUB_SETTLEMENT_CHECKS,
  ...HUB_JOB_RULE_CHECKS,
  ...HUB_ASYNC_CHECKS,
  ...HUB_CONSUMER_SURFACE_CHECKS,
  ...HUB_CONSUMER_RULE_CHECKS,
  ...HUB_MODEL_CHECKS,
  ...HUB_RESPONSES_CHECKS,
  ...HUB_STORED_RESPONSES_CHECKS,
  ...HUB_QUEUE_CHECKS,
  ...HUB_KEYS_CHECKS,
  ...HUB_ESTIMATE_CHECKS,
  ...HUB_REASONING_CHECKS,
  ...HUB_RECORD_CHECKS,
  ...HUB_X402_CHECKS,
  ...HUB_SECURITY_CHECKS,
];
