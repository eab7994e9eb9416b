/**
 * Hub-mode checks of the transport and frame rules that the handshake, frame and job
 * checks do not already cover: the WebSocket itself (no subprotocol, ping and pong), the
 * discovery document against the hello, the `ext` key rule, the roles and the order of the
 * frame checks, the frame rules after the handshake, what a hub may send on a v1 session,
 * and the canonical form of numbers in the request hash.
 */
import { createAuth, generateIdentity } from "@srp/core";
import type { Hello, Receipt } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import type { ConsumerCall } from "../harness/consumer.js";
import { BAD_EXTS, deepFrame, oversizeFrames, reservedExtKeys, schemaValidJob, UNKNOWN_EXT, withDuplicate } from "../harness/frames.js";
import { connect, type DiscoveryLike, type HubContext, needKey, openSession, stillServing } from "../harness/hub-session.js";
import { instance, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { ensure, fail, skippable } from "../harness/verdict.js";
import { expectRejection } from "../harness/wire.js";

/** Opens a session, sends `frame` (text, or bytes as a binary frame) and expects the coded rejection. */
async function sessionRejects(
  ctx: HubContext,
  frame: string | Buffer | ((hello: Hello) => string),
  code: string,
  close: number,
  what: string,
): Promise<void> {
  const { peer, hello } = await openSession(ctx);
  peer.sendRaw(typeof frame === "function" ? frame(hello) : frame);
  const problem = await expectRejection(peer, code, close);
  if (problem) fail(`${what}: ${problem}`);
}

/** A chat request body whose numbers JSON parsers and formatters disagree on (SRP-FRM-020, SRP-FRM-021), as JSON text. */
function numbersBody(model: string): string {
  return `{"model":"${model}","messages":[{"role":"user","content":"Conformance: numbers."}],"max_tokens":8,"temperature":0.1,"top_p":1e-7,"frequency_penalty":-0,"presence_penalty":4.50,"seed":9007199254740993,"logit_bias":{"11":1e21,"12":1.0}}`;
}

/** Hub-mode wire checks. */
export const HUB_WIRE_CHECKS: Check<HubContext>[] = [
  {
    id: "hub.transport.no_subprotocol",
    title: "Accepts a provider WebSocket that names no subprotocol and sends hello on it",
    requirements: ["SRP-TR-005"],
    level: "MUST",
    async run(ctx) {
      // The harness's WebSocket sends no Sec-WebSocket-Protocol header.
      const { hello } = await connect(ctx).catch((e: Error) =>
        fail(`a WebSocket without Sec-WebSocket-Protocol was refused: ${e.message}`),
      );
      ensure(hello.type === "hello", "no hello on a WebSocket without a subprotocol");
    },
  },
  {
    id: "hub.transport.ping",
    title: "Answers a WebSocket ping with a pong, before and after the handshake",
    requirements: ["SRP-TR-006"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await connect(ctx);
      ensure(await peer.ping(2000), "no pong within 2 s of a ping sent before auth");
      if (!ctx.accountKey) return;
      const s = await openSession(ctx);
      ensure(await s.peer.ping(2000), "no pong within 2 s of a ping sent in an open session");
    },
  },
  {
    id: "hub.discovery.consistent",
    title:
      "Serves the discovery document as application/json, with consumer.baseUrl and surfaces, and with the versions and frame limit of its hello",
    requirements: ["SRP-TR-008", "SRP-TR-009", "SRP-TR-015", "SRP-VER-001"],
    level: "MUST",
    async run(ctx) {
      const url = new URL("/.well-known/srp.json", ctx.baseUrl);
      const res = await fetch(url);
      ensure(res.ok, `GET ${url} answered ${res.status}`);
      const type = res.headers.get("content-type") ?? "";
      ensure(
        /^application\/json\s*(;|$)/i.test(type),
        `the discovery document is served as ${JSON.stringify(type)}, not application/json (SRP-TR-009)`,
      );
      const doc = (await res.json()) as DiscoveryLike & { versions: number[] };
      const problem = ctx.validator.checkDef("Discovery", doc);
      ensure(!problem, `discovery document does not match schema.json (SRP-TR-015): ${problem}`);
      const { hello } = await connect(ctx);
      const sorted = (v: number[]) => JSON.stringify([...v].sort((a, b) => a - b));
      ensure(
        sorted(doc.versions) === sorted(hello.versions),
        `discovery versions ${JSON.stringify(doc.versions)} differ from hello.versions ${JSON.stringify(hello.versions)} (SRP-TR-008, SRP-VER-001)`,
      );
      const limit = (hello.limits as { maxFrameBytes: number }).maxFrameBytes;
      ensure(
        doc.provider.maxFrameBytes === limit,
        `discovery provider.maxFrameBytes ${doc.provider.maxFrameBytes} differs from hello.limits.maxFrameBytes ${limit} (SRP-TR-008)`,
      );
    },
  },
  {
    id: "hub.frame.ext",
    title: "Ignores well-formed ext keys it does not know, and rejects an ext that breaks the key rule with frame.invalid",
    requirements: ["SRP-FRM-011", "SRP-FRM-019", "SRP-FRM-004", "SRP-VER-008"],
    level: "MUST",
    run: (ctx) =>
      skippable(async () => {
        const { peer } = await openSession(ctx);
        peer.send({ type: "heartbeat", ts: Date.now(), load: [], ext: UNKNOWN_EXT });
        await stillServing(peer, "a session whose heartbeat carried unknown, well-formed ext keys");
        for (const [what, ext] of BAD_EXTS) {
          await sessionRejects(
            ctx,
            JSON.stringify({ type: "heartbeat", ts: Date.now(), load: [], ext }),
            "frame.invalid",
            4422,
            `a heartbeat whose ext has ${what}`,
          );
        }
      }),
  },
  check(
    "hub.wire.valid_frames",
    "Sends only frames within the session's limit that match schema.json, with no ext key in the reserved namespace srp",
    ["SRP-FRM-008", "SRP-VER-004", "SRP-VER-005"],
    "MUST",
    async (ctx) => {
      const { peer, hello } = await openSession(ctx);
      const model = newModel();
      peer.send({ type: "offer", instances: [instance(model)] });
      await peer.take((m) => m.type === "offer_ack", 5000, 0, "offer_ack");
      peer.send({ type: "heartbeat", ts: Date.now(), load: [] });
      await stillServing(peer, "the session");
      ensure(peer.violations.length === 0, `the hub sent messages that v1 does not define: ${peer.violations.slice(0, 3).join("; ")}`);
      const big = oversizeFrames(peer, (hello.limits as { maxFrameBytes: number }).maxFrameBytes);
      ensure(big.length === 0, `frames over the session's maxFrameBytes: ${big.join(", ")}`);
      const reserved = reservedExtKeys(peer);
      ensure(reserved.length === 0, `the hub defined ext keys in the reserved namespace srp: ${reserved.join(", ")}`);
    },
  ),
  check(
    "hub.frame.wrong_role",
    "Rejects a job (a message only hubs send) from a node with protocol.unexpected_message",
    ["SRP-FRM-007"],
    "MUST",
    (ctx) =>
      sessionRejects(ctx, JSON.stringify(schemaValidJob()), "protocol.unexpected_message", 1002, "a schema-valid job sent by the node"),
  ),
  check(
    "hub.frame.check_order",
    "Reports the first failing frame check when a frame fails several (binary, unknown type, schema, version before role and state)",
    ["SRP-FRM-009"],
    "MUST",
    async (ctx) => {
      await sessionRejects(ctx, Buffer.from("not json"), "frame.binary", 1003, "a binary frame that is not JSON (step 1 before 3)");
      await sessionRejects(
        ctx,
        JSON.stringify({ type: "x-conformance-order", jobId: 7 }),
        "frame.unknown_type",
        4400,
        "an undefined type with members no schema allows (step 6 before 7)",
      );
      await sessionRejects(
        ctx,
        JSON.stringify({ type: "job", jobId: 7 }),
        "frame.invalid",
        4422,
        "an invalid job from a node (step 7 before 9)",
      );
      const identity = generateIdentity();
      const key = needKey(ctx);
      await sessionRejects(
        ctx,
        (hello) => JSON.stringify({ ...createAuth({ identity, hello, account: { kind: "api_key", key } }), version: 999 }),
        "version.unsupported",
        4426,
        "an auth with an unsupported version after welcome (step 8 before 9)",
      );
    },
  ),
  check(
    "hub.frame.every_state",
    "Applies the duplicate-name and nesting rules after the handshake too, with frame.malformed",
    ["SRP-FRM-018", "SRP-FRM-016", "SRP-FRM-017"],
    "MUST",
    async (ctx) => {
      const beat = JSON.stringify({ ts: Date.now(), type: "heartbeat", load: [] });
      await sessionRejects(
        ctx,
        withDuplicate(beat, '"type":"heartbeat"'),
        "frame.malformed",
        1007,
        "a heartbeat with the member type twice",
      );
      await sessionRejects(ctx, deepFrame(200), "frame.malformed", 1007, "a goodbye nested 202 levels deep");
    },
  ),
  check(
    "hub.job.number_canonical",
    "Hashes a request with fractions, exponents, -0 and an integer above 2^53 as RFC 8785 does: countersigns the receipt whose requestHash does",
    ["SRP-FRM-020", "SRP-FRM-021", "SRP-FRM-022"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const controller = new AbortController();
      const response = fetch(`${node.consumer.replace(/\/+$/, "")}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${node.key}` },
        body: numbersBody(model),
        signal: controller.signal,
      });
      response.catch(() => undefined);
      ctx.tracker.cleanups.push(() => controller.abort());
      const call: ConsumerCall = { response, abort: () => controller.abort() };
      const job = await node.nextJob(call);
      const req = job.request as Record<string, unknown>;
      ensure(
        req.temperature === 0.1 && req.top_p === 1e-7 && req.seed === 9007199254740992,
        `the job's request does not carry the consumer's numbers: ${JSON.stringify(req).slice(0, 300)}`,
      );
      const { receipt } = node.responseAnswer(job, "numbers hashed");
      const countersigned: Receipt = await node.countersigned(receipt);
      ensure(countersigned.requestHash === receipt.requestHash, "the countersigned requestHash differs");
      const res = await response;
      ensure(res.ok, `the consumer got ${res.status} for a request the node answered`);
    },
  ),
];
