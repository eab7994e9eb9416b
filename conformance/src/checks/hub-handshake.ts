/**
 * Hub-mode checks of the handshake's finer rules and of `error` messages: what a hub sends
 * before `welcome` and after a rejection, the signing input with members the hub does not
 * understand, wallet account bindings, an `error` with a code the hub does not know, and
 * routing around a replaced session. (Secrets in error messages: hub.security.key_not_echoed.)
 */
import {
  createAuth,
  ERROR_TABLE,
  generateIdentity,
  isErrorCode,
  nodeBindingText,
  omitFields,
  randomBytes,
  signDetached,
  toHex,
  type Identity,
} from "@srp/core";
import type { Auth } from "@srp/core/schema";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { bodyText, within } from "../harness/consumer.js";
import { connect, type HubContext, needKey, openSession, stillServing } from "../harness/hub-session.js";
import { ASK, instance, isJob, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { ensure, fail } from "../harness/verdict.js";
import type { WirePeer } from "../harness/wire.js";

/**
 * What is wrong with a received `error`'s code and `retryable` (SRP-ERR-001, SRP-ERR-005): a
 * code must be in the error table, with the table's `retryable`, or an `x-` extension code.
 */
export function errorCodeProblem(error: Record<string, unknown>): string | undefined {
  const code = String(error.code);
  if (isErrorCode(code)) {
    return error.retryable === ERROR_TABLE[code].retryable
      ? undefined
      : `error ${code} has retryable ${String(error.retryable)}; the error table says ${String(ERROR_TABLE[code].retryable)} (SRP-ERR-001)`;
  }
  return code.startsWith("x-")
    ? undefined
    : `error code ${JSON.stringify(code)} is neither in the error table nor an extension code whose family starts with x- (SRP-ERR-005)`;
}

/** The types of the frames received so far, "<not JSON>" for a frame that is not a JSON object. */
const frameTypes = (peer: WirePeer) => peer.received.map((r) => (r.message ? String(r.message.type) : "<not JSON>"));

/** A wallet binding of `nodeId`, signed by `signer` (default the wallet itself), claiming `address`. */
async function walletBinding(nodeId: string, wallet = privateKeyToAccount(generatePrivateKey()), signer = wallet) {
  const signature = await signer.signMessage({ message: nodeBindingText(nodeId) });
  return { kind: "wallet" as const, address: wallet.address, signature };
}

/** Sends an auth bound with `account` on a fresh connection; returns the peer after the hub's answer. */
async function authWith(ctx: HubContext, identity: Identity, account: Auth["account"]): Promise<WirePeer> {
  const { peer, hello } = await connect(ctx);
  peer.send(createAuth({ identity, hello, account }));
  return peer;
}

/** The hub's answer to a handshake: welcome, or the error code and close code. */
async function answer(peer: WirePeer): Promise<{ welcome: boolean; code?: string; close?: number }> {
  const m = await peer.next(5000).catch(() => undefined);
  if (m?.type === "welcome") return { welcome: true };
  const closed = await peer.closedWithin(5000);
  return { welcome: false, ...(m?.type === "error" ? { code: String(m.code) } : {}), ...(closed ? { close: closed.code } : {}) };
}

/** Hub-mode handshake and error checks. */
export const HUB_HANDSHAKE_CHECKS: Check<HubContext>[] = [
  check(
    "hub.handshake.welcome",
    "Sends nothing but hello before welcome; welcome repeats hello's maxFrameBytes and names a new sessionId each time",
    ["SRP-HS-013", "SRP-HS-006"],
    "MUST",
    async (ctx) => {
      const problems: string[] = [];
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const { peer, hello, welcome } = await openSession(ctx);
        const types = frameTypes(peer);
        if (types.join(",") !== "hello,welcome") problems.push(`the hub sent ${types.join(", ")} up to welcome; only hello may precede it`);
        const announced = (hello.limits as { maxFrameBytes: number }).maxFrameBytes;
        const limits = welcome.limits as { maxFrameBytes?: unknown } | undefined;
        if (limits?.maxFrameBytes !== announced)
          problems.push(`welcome.limits.maxFrameBytes is ${String(limits?.maxFrameBytes)}, hello announced ${announced}`);
        ids.push(String(welcome.sessionId));
        peer.close();
      }
      if (ids[0] === ids[1]) problems.push(`two sessions got the same sessionId ${ids[0]}`);
      if (problems.length) fail(problems.join("; "));
    },
  ),
  {
    id: "hub.handshake.rejection",
    title:
      "Rejects a handshake with hello, then one error (a table code with its retryable), then the close with the code's close code; nothing after the error",
    requirements: ["SRP-HS-013", "SRP-ERR-002", "SRP-ERR-005", "SRP-ERR-001"],
    level: "MUST",
    async run(ctx) {
      const peer = await authWith(ctx, generateIdentity(), { kind: "api_key", key: `srp_conformance_unknown_${toHex(randomBytes(8))}` });
      const closed = await peer.closedWithin(5000);
      const types = frameTypes(peer);
      const error = peer.received[1]?.message;
      const problems: string[] = [];
      if (types.join(",") !== "hello,error")
        problems.push(`the hub sent ${types.join(", ")}; a rejected handshake is hello then exactly one error`);
      if (error?.type === "error") {
        const bad = errorCodeProblem(error);
        if (bad) problems.push(bad);
        else if (error.code !== "auth.unknown_account") problems.push(`error code ${String(error.code)}, expected auth.unknown_account`);
      }
      if (!closed) problems.push("connection still open 5 s after the error");
      else if (closed.code !== 4403) problems.push(`closed with ${closed.code}, expected 4403 (auth.unknown_account)`);
      if (problems.length) fail(problems.join("; "));
    },
  },
  check(
    "hub.auth.signing_input",
    "Verifies auth over every member as received: an auth with extension members the hub does not understand, signed over them, gets welcome",
    ["SRP-HS-011"],
    "MUST",
    async (ctx) => {
      const identity = generateIdentity();
      const { peer, hello } = await connect(ctx);
      const auth = createAuth({
        identity,
        hello,
        account: { kind: "api_key", key: needKey(ctx) },
        agent: 'conformance "é" \u{1F680}\ttab',
      });
      // Members in non-canonical order, an ext the hub cannot know, nested, with escapes and non-ASCII.
      const body = omitFields(
        { ext: { "conformance.signing-input": { zeta: true, alpha: null, list: [1, "é\u0001"], nested: { b: 2, a: "\u2028" } } }, ...auth },
        "sig",
      );
      peer.send({ ...body, sig: signDetached("auth", body, identity) });
      const m = await peer.next(5000).catch((e: Error) => fail(`no answer to the auth: ${e.message}`));
      if (m.type !== "welcome")
        fail(
          `the hub answered ${m.type}${m.type === "error" ? ` ${String(m.code)}` : ""} to an auth signed over its ext member; a verifier keeps every member it received (SRP-HS-011)`,
        );
    },
  ),
  check(
    "hub.auth.wallet",
    "Rejects a wallet binding signed by another wallet, or signed for another node id, with auth.bad_account_proof (4403); a correct binding with v 27 or 28 is not refused for its signature",
    ["SRP-AUTH-007", "SRP-AUTH-008", "SRP-AUTH-005"],
    "MUST",
    async (ctx) => {
      const problems: string[] = [];
      const expectProof = async (what: string, identity: Identity, account: Auth["account"]) => {
        const got = await answer(await authWith(ctx, identity, account));
        if (got.code !== "auth.bad_account_proof" || got.close !== 4403) {
          problems.push(
            `${what}: ${got.welcome ? "welcome" : `error ${got.code ?? "(none)"}, close ${got.close ?? "(none)"}`}, expected auth.bad_account_proof and 4403`,
          );
        }
      };
      const node = generateIdentity();
      const wallet = privateKeyToAccount(generatePrivateKey());
      await expectProof("signed by another wallet", node, await walletBinding(node.id, wallet, privateKeyToAccount(generatePrivateKey())));
      const other = generateIdentity();
      await expectProof("signed for another node id", node, await walletBinding(other.id, wallet));
      // Correct bindings, one with v = 27 and one with v = 28: the wallet is unknown to the hub, so
      // auth.unknown_account (or welcome, if the hub admits new wallets) but never auth.bad_account_proof.
      const seen = new Set<string>();
      for (let i = 0; i < 32 && seen.size < 2; i++) {
        const n = generateIdentity();
        const binding = await walletBinding(n.id);
        const v = binding.signature.slice(-2).toLowerCase();
        if (seen.has(v)) continue;
        seen.add(v);
        const got = await answer(await authWith(ctx, n, binding));
        if (!got.welcome && !(got.code === "auth.unknown_account" && got.close === 4403)) {
          problems.push(
            `a correct binding with v = 0x${v}: error ${got.code ?? "(none)"}, close ${got.close ?? "(none)"}; expected welcome or auth.unknown_account (4403)`,
          );
        }
      }
      ensure(seen.size === 2, "could not produce signatures with both v values");
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.error.unknown_code",
    "Keeps a session open after the node sends an error with an extension code and no close, and does not answer it with an error",
    ["SRP-ERR-004"],
    "MUST",
    async (ctx) => {
      const { peer } = await openSession(ctx);
      const from = peer.received.length;
      peer.send({
        type: "error",
        code: "x-conformance.notice",
        message: "conformance: a code the hub does not know; the session continues",
        retryable: true,
      });
      await stillServing(peer, "the session whose node sent an error with an unknown code");
      const errors = peer.matching((m) => m.type === "error", from);
      if (errors.length) fail(`the hub answered with error ${String(errors[0]!.code)}`);
    },
  ),
  check(
    "hub.session.replaced_routing",
    "After a session is replaced, sends no job to the old session and none to the new one before it offers: offers do not carry over",
    ["SRP-HS-017"],
    "MUST",
    async (ctx) => {
      const identity = generateIdentity();
      const model = newModel();
      const old = await HarnessNode.open(ctx, [instance(model)], identity);
      const fresh = await openSession(ctx, identity);
      ensure(fresh.welcome.replaced === true, "welcome.replaced is not true for the second session of a node id");
      const fromOld = old.peer.received.length;
      const fromNew = fresh.peer.received.length;
      const call = old.chat({ model, messages: ASK, max_tokens: 8 });
      const jobOn = (peer: WirePeer, from: number, which: string) => peer.take(isJob, 5000, from, "a job").then(() => which);
      const first = await Promise.race([
        jobOn(old.peer, fromOld, "the replaced session").catch(() => new Promise<never>(() => {})),
        jobOn(fresh.peer, fromNew, "the new session, which has offered nothing").catch(() => new Promise<never>(() => {})),
        within(call.response, 8000, "the consumer's answer").then(
          async (res) => `answer ${res.status} ${(await bodyText(res).catch(() => "")).slice(0, 120)}`,
        ),
      ]);
      if (!first.startsWith("answer ")) fail(`a job for ${model} reached ${first}`);
      if (first.startsWith("answer 200")) fail(`the consumer got ${first} for a model no open session offers`);
    },
  ),
];
