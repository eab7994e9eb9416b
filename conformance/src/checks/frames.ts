/**
 * Frame checks that a stock WebSocket library gets wrong unless the implementation takes
 * care: invalid UTF-8 and frames over the limit must be answered with the SRP `error`
 * message before the close, not closed by the library alone (1007, 1009); duplicate
 * member names and deep nesting must be refused although `JSON.parse` accepts them.
 * Each runs in both modes: the harness plays a node against a hub, or a hub against a node.
 */
import { createAuth, generateIdentity } from "@srp/core";
import type { Check } from "../types.js";
import { badUtf8Frame, deepFrame, goodbyeOfSize, withDuplicate } from "../harness/frames.js";
import { connect, type HubContext, needKey } from "../harness/hub-session.js";
import { openSession as openProviderSession, type ProviderContext } from "../harness/provider-session.js";
import { fail, skippable } from "../harness/verdict.js";
import { expectRejection, WirePeer } from "../harness/wire.js";

/** Sends `send(peer)` and expects the coded rejection. */
async function rejects(peer: WirePeer, send: (peer: WirePeer) => void, code: string, close: number): Promise<void> {
  send(peer);
  const problem = await expectRejection(peer, code, close);
  if (problem) fail(problem);
}

/** Hub-mode frame checks (before and after the handshake). */
export const HUB_FRAME_CHECKS: Check<HubContext>[] = [
  {
    id: "hub.frame.bad_utf8",
    title: "Answers a text frame that is not UTF-8 with an error message frame.malformed before closing with 1007",
    requirements: ["SRP-FRM-014", "SRP-FRM-002", "SRP-FRM-005"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await connect(ctx);
      await rejects(peer, (p) => p.sendText(badUtf8Frame()), "frame.malformed", 1007);
    },
  },
  {
    id: "hub.frame.far_too_large",
    title: "Answers a frame of one and a half times the announced limit with an error message frame.too_large before closing with 1009",
    requirements: ["SRP-FRM-015", "SRP-FRM-001", "SRP-FRM-005"],
    level: "MUST",
    async run(ctx) {
      const { peer, hello } = await connect(ctx);
      const limit = (hello.limits as { maxFrameBytes: number }).maxFrameBytes;
      await rejects(peer, (p) => p.sendRaw(goodbyeOfSize(Math.floor(limit * 1.5))), "frame.too_large", 1009);
    },
  },
  {
    id: "hub.frame.duplicate_names",
    title: "Refuses a correctly signed auth with a member name twice, at the top or nested, with frame.malformed",
    requirements: ["SRP-FRM-016", "SRP-FRM-010", "SRP-FRM-005"],
    level: "MUST",
    run: (ctx) =>
      skippable(async () => {
        const key = needKey(ctx);
        for (const pick of [(id: string) => `"nodeId":"${id}"`, () => `"kind":"api_key"`]) {
          const identity = generateIdentity();
          const { peer, hello } = await connect(ctx);
          const auth = JSON.stringify(createAuth({ identity, hello, account: { kind: "api_key", key } }));
          await rejects(peer, (p) => p.sendRaw(withDuplicate(auth, pick(identity.id))), "frame.malformed", 1007);
        }
      }),
  },
  {
    id: "hub.frame.deep_nesting",
    title: "Refuses a frame nested 100 000 levels deep with frame.malformed, and accepts 128 levels",
    requirements: ["SRP-FRM-017", "SRP-FRM-005"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await connect(ctx);
      await rejects(peer, (p) => p.sendRaw(deepFrame(100_000)), "frame.malformed", 1007);
      // 128 levels are well-formed: the goodbye is then refused for its state, not its nesting.
      const ok = await connect(ctx);
      await rejects(ok.peer, (p) => p.sendRaw(deepFrame(126)), "protocol.unexpected_message", 1002);
    },
  },
];

/** Provider-mode frame checks (after the handshake, within the hello's 1 MiB limit). */
export const PROVIDER_FRAME_CHECKS: Check<ProviderContext>[] = [
  {
    id: "provider.frame.bad_utf8",
    title: "Answers a text frame that is not UTF-8 with an error message frame.malformed before closing with 1007",
    requirements: ["SRP-FRM-014", "SRP-FRM-002", "SRP-FRM-005"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await openProviderSession(ctx);
      await rejects(peer, (p) => p.sendText(badUtf8Frame()), "frame.malformed", 1007);
    },
  },
  {
    id: "provider.frame.far_too_large",
    title: "Answers a frame of one and a half times the hello's limit with an error message frame.too_large before closing with 1009",
    requirements: ["SRP-FRM-015", "SRP-FRM-001", "SRP-FRM-005"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await openProviderSession(ctx);
      await rejects(peer, (p) => p.sendRaw(goodbyeOfSize(Math.floor(1_048_576 * 1.5))), "frame.too_large", 1009);
    },
  },
  {
    id: "provider.frame.duplicate_names",
    title: "Refuses a frame with a member name twice with frame.malformed",
    requirements: ["SRP-FRM-016", "SRP-FRM-010", "SRP-FRM-005"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await openProviderSession(ctx);
      await rejects(
        peer,
        (p) => p.sendRaw('{"type":"cancel","jobId":"job_1","jobId":"job_2","reason":"consumer_gone"}'),
        "frame.malformed",
        1007,
      );
    },
  },
  {
    id: "provider.frame.deep_nesting",
    title: "Refuses a frame nested 100 000 levels deep with frame.malformed",
    requirements: ["SRP-FRM-017", "SRP-FRM-005"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await openProviderSession(ctx);
      await rejects(peer, (p) => p.sendRaw(deepFrame(100_000)), "frame.malformed", 1007);
    },
  },
];
