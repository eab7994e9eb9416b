/**
 * Provider-mode checks of the transport and frame rules that the handshake, frame and job
 * checks do not already cover: ping and pong, the `ext` key rule, roles, the pre-hello frame
 * limit, the frame rules during the handshake, what a node may send on a v1 session, and
 * `goodbye` in both directions.
 */
import type { Hello } from "@srp/core/schema";
import type { Check, CheckVerdict } from "../types.js";
import { BAD_EXTS, oversizeFrames, reservedExtKeys, UNKNOWN_EXT, withDuplicate } from "../harness/frames.js";
import { authProblem, hello, openSession, type ProviderContext, setup, untilAuth, welcome } from "../harness/provider-session.js";
import { ensure, fail } from "../harness/verdict.js";
import { expectRejection, type WirePeer } from "../harness/wire.js";

/** The frame limit a node must accept before hello (SRP-FRM-013). */
const PRE_HELLO_BYTES = 1_048_576;

/** Accepts every instance of the node's first offer within 5 s, if it sends one. */
async function ackOffer(peer: WirePeer): Promise<void> {
  const offer = await peer.take((m) => m.type === "offer", 5000, 0, "an offer").catch(() => undefined);
  if (offer)
    peer.send({
      type: "offer_ack",
      results: (offer.instances as Array<{ instanceId: string }>).map((i) => ({ instanceId: i.instanceId, accepted: true })),
    });
}

/** A hello signed by the harness hub whose JSON text is exactly `bytes` bytes long (padded in `ext`). */
function helloOfSize(hub: Parameters<typeof hello>[0], bytes: number): string {
  const padded = (n: number) => JSON.stringify(hello(hub, { ext: { "conformance.pad": "x".repeat(n) } } as Partial<Hello>));
  const text = padded(bytes - padded(0).length);
  if (text.length !== bytes) throw new Error(`harness bug: hello of ${text.length} bytes, wanted ${bytes}`);
  return text;
}

/** Provider-mode wire checks. */
export const PROVIDER_WIRE_CHECKS: Check<ProviderContext>[] = [
  {
    id: "provider.transport.ping",
    title: "Answers a WebSocket ping with a pong",
    requirements: ["SRP-TR-006"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await openSession(ctx);
      ensure(await peer.ping(2000), "no pong within 2 s of a ping sent in an open session");
    },
  },
  {
    id: "provider.frame.ext",
    title: "Ignores well-formed ext keys it does not know, and rejects a welcome whose ext breaks the key rule with frame.invalid",
    requirements: ["SRP-FRM-011", "SRP-FRM-019", "SRP-FRM-004", "SRP-VER-008"],
    level: "MUST",
    async run(ctx) {
      const ok = await untilAuth(ctx);
      ok.peer.send({ ...welcome(ok.auth), ext: UNKNOWN_EXT });
      const closed = await ok.peer.closedWithin(1000);
      ensure(!closed, `the node closed (${closed?.code} ${closed?.reason}) after a welcome with unknown, well-formed ext keys`);
      const errors = ok.peer.matching((m) => m.type === "error");
      ensure(errors.length === 0, `the node answered a welcome with unknown, well-formed ext keys with error ${String(errors[0]?.code)}`);
      // An upper-case namespace, and a key ending in a line feed.
      for (const [what, ext] of [BAD_EXTS[0]!, BAD_EXTS[2]!]) {
        const bad = await untilAuth(ctx);
        bad.peer.send({ ...welcome(bad.auth), ext });
        const problem = await expectRejection(bad.peer, "frame.invalid", 4422);
        if (problem) fail(`a welcome whose ext has ${what}: ${problem}`);
      }
    },
  },
  {
    id: "provider.wire.valid_frames",
    title: "Sends only frames within the session's limit that match schema.json, with no ext key in the reserved namespace srp",
    requirements: ["SRP-FRM-008", "SRP-VER-004", "SRP-VER-005"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await openSession(ctx, 1000);
      await ackOffer(peer);
      await peer.take((m) => m.type === "heartbeat", 2500, 0, "a heartbeat");
      ensure(peer.violations.length === 0, `the node sent messages that v1 does not define: ${peer.violations.slice(0, 3).join("; ")}`);
      const big = oversizeFrames(peer, PRE_HELLO_BYTES);
      ensure(big.length === 0, `frames over the session's maxFrameBytes: ${big.join(", ")}`);
      const reserved = reservedExtKeys(peer);
      ensure(reserved.length === 0, `the node defined ext keys in the reserved namespace srp: ${reserved.join(", ")}`);
    },
  },
  {
    id: "provider.frame.wrong_role",
    title: "Rejects a heartbeat (a message only nodes send) from the hub with protocol.unexpected_message",
    requirements: ["SRP-FRM-007"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await openSession(ctx);
      peer.send({ type: "heartbeat", ts: Date.now(), load: [] });
      const problem = await expectRejection(peer, "protocol.unexpected_message", 1002);
      if (problem) fail(problem);
    },
  },
  {
    id: "provider.frame.large_hello",
    title: "Accepts a hello of exactly 1 048 576 bytes and answers it with auth",
    requirements: ["SRP-FRM-013"],
    level: "MUST",
    async run(ctx) {
      const s = await setup(ctx);
      const peer = await s.accept();
      const text = helloOfSize(s.hub, PRE_HELLO_BYTES);
      peer.sendRaw(text);
      const auth = await peer.expect("auth").catch((e: Error) => fail(`no auth for a hello of ${PRE_HELLO_BYTES} bytes: ${e.message}`));
      const problem = authProblem(auth, JSON.parse(text) as Hello);
      if (problem) fail(problem);
    },
  },
  {
    id: "provider.frame.handshake_state",
    title: "Refuses a hello with a member name twice with frame.malformed, without sending auth",
    requirements: ["SRP-FRM-018", "SRP-FRM-016"],
    level: "MUST",
    async run(ctx) {
      const s = await setup(ctx);
      const peer = await s.accept();
      const h = hello(s.hub);
      peer.sendRaw(withDuplicate(JSON.stringify(h), `"ts":${h.ts}`));
      const problem = await expectRejection(peer, "frame.malformed", 1007);
      if (problem) fail(problem);
    },
  },
  {
    id: "provider.goodbye.reconnect_delay",
    title: "After a goodbye with reconnectAfterMs 2500, does not reconnect within 2 s",
    requirements: ["SRP-TR-012"],
    level: "MUST",
    async run(ctx): Promise<CheckVerdict> {
      const { peer, hub } = await openSession(ctx);
      peer.send({ type: "goodbye", reason: "conformance: come back later", reconnectAfterMs: 2500 });
      peer.close(1000, "goodbye");
      const again = await hub.accept(2000);
      if (again) fail("the node reconnected within 2 s of a goodbye with reconnectAfterMs 2500");
    },
  },
  {
    id: "provider.goodbye.no_offer_after",
    title: "When it shuts down, sends no offer after its goodbye",
    requirements: ["SRP-TR-011"],
    level: "MUST",
    async run(ctx): Promise<CheckVerdict> {
      const { peer, proc } = await openSession(ctx);
      await ackOffer(peer);
      await proc.stop();
      await peer.closedWithin(3000);
      const types = peer.received.map((r) => r.message?.type);
      const bye = types.indexOf("goodbye");
      if (bye < 0) return { status: "warning", details: "the node closed without sending goodbye first (SRP-TR-011 SHOULD)" };
      const late = types.slice(bye + 1).filter((t) => t === "offer");
      ensure(late.length === 0, `the node sent ${late.length} offer(s) after its goodbye`);
    },
  },
];
