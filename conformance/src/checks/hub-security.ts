/**
 * Hub-mode checks of spec/v1/security.md and of wallet sign-in (payments.md, SRP-WAL-002),
 * over the wire only.
 *
 * The last checks trip the hub's limits on strangers on purpose (sign-in nonces, failed x402
 * payments, connections in their handshake, failed handshakes): they run last, and the
 * harness's address may be refused by the hub for a while afterwards (the reference hub:
 * seconds to minutes). Each sends at most a bounded number of requests and is skipped when
 * the hub's limits are higher than that.
 */
import { createAuth, generateIdentity, omitFields, signDetached } from "@srp/core";
import type { Auth, Hello } from "@srp/core/schema";
import WebSocket from "ws";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createSiweMessage } from "viem/siwe";
import type { Check } from "../types.js";
import { bodyText, within } from "../harness/consumer.js";
import { check } from "../harness/check.js";
import { connect, discovery, type DiscoveryLike, type HubContext, needKey, openSession, stillServing } from "../harness/hub-session.js";
import { ensure, fail, skip } from "../harness/verdict.js";
import { expectRejection, WIRE_OPTIONS, WirePeer } from "../harness/wire.js";
import { paidTarget, paymentHeader, postUnauthenticated, quote, shown, throwaway, unroutedAnswer, x402Hub } from "../harness/x402-payer.js";

/** Most requests or connections a limit check sends before it gives up (and skips). */
const LIMIT_BOUND = 200;
/** Most failed handshakes the failed-handshake check makes before it gives up (and skips). */
const HANDSHAKE_BOUND = 60;

/** An auth for `hello` bound to `key`, signed by a key other than its `nodeId`'s. */
function forgedAuth(hello: Hello, key: string): Record<string, unknown> {
  const auth: Auth = createAuth({ identity: generateIdentity(), hello, account: { kind: "api_key", key } });
  const unsigned = omitFields(auth, "sig");
  return { ...unsigned, sig: signDetached("auth", unsigned, generateIdentity()) };
}

/** A refused HTTP request or WebSocket upgrade, as the client saw it. */
interface Refused {
  status: number;
  retryAfter: string | null;
  code: string | undefined;
  text: string;
}

/** Reads the error code of a JSON error body. */
function codeOf(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === "string" ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What is wrong with a limit's refusal (SRP-SEC-015): status 429, a `Retry-After` of whole
 * seconds (at least 1), and the error `code` in a JSON body.
 */
function refusalProblem(r: Refused, code: string, what: string): string | undefined {
  const problems: string[] = [];
  if (r.status !== 429) problems.push(`status ${r.status}, not 429`);
  if (r.retryAfter === null) problems.push("no Retry-After header");
  else if (!/^[0-9]+$/.test(r.retryAfter.trim()) || Number(r.retryAfter) < 1)
    problems.push(`Retry-After ${JSON.stringify(r.retryAfter)} is not whole seconds, at least 1`);
  if (r.code !== code)
    problems.push(`error code ${JSON.stringify(r.code)}, not ${code}${r.code ? "" : ` (body ${JSON.stringify(r.text.slice(0, 120))})`}`);
  return problems.length ? `${what} was refused with ${problems.join(", ")} (SRP-SEC-015)` : undefined;
}

/** Opens a provider WebSocket: the open peer and its hello, or the HTTP answer of a refused upgrade. */
async function upgrade(ctx: HubContext, url: string): Promise<{ peer: WirePeer; hello: Hello } | { refused: Refused }> {
  const ws = new WebSocket(url, { handshakeTimeout: 5000, ...WIRE_OPTIONS });
  const peer = ctx.tracker.track(new WirePeer(ws, ctx.validator));
  const outcome = await new Promise<"open" | Refused>((resolve, reject) => {
    ws.once("open", () => resolve("open"));
    ws.once("unexpected-response", (req, res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => {
        const text = Buffer.concat(parts).toString("utf8");
        req.destroy();
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: typeof res.headers["retry-after"] === "string" ? res.headers["retry-after"] : null,
          code: codeOf(text),
          text,
        });
      });
      res.on("error", reject);
    });
    ws.once("error", reject);
  });
  if (outcome !== "open") return { refused: outcome };
  return { peer, hello: (await peer.expect("hello")) as unknown as Hello };
}

/** The consumer base URL of a hub (its discovery document's, else `/v1` of the base URL). */
const consumerBase = (ctx: HubContext, doc: DiscoveryLike) =>
  (doc.consumer?.baseUrl ?? new URL("/v1", ctx.baseUrl).toString()).replace(/\/+$/, "");

/** The wallet surface (`GET /auth/nonce`, `POST /auth/wallet`), or a skip when the hub lists none. */
async function walletHub(ctx: HubContext): Promise<{ doc: DiscoveryLike; consumer: string }> {
  const doc = await discovery(ctx);
  if (!doc.consumer?.surfaces.includes("srp.wallet"))
    skip("the discovery document does not list the srp.wallet consumer surface (wallet sign-in)");
  return { doc, consumer: consumerBase(ctx, doc) };
}

/** A fresh sign-in nonce. */
async function nonce(consumer: string): Promise<string> {
  const res = await fetch(`${consumer}/auth/nonce`, { signal: AbortSignal.timeout(5000) });
  const text = await bodyText(res);
  ensure(res.status === 200, `GET ${consumer}/auth/nonce answered ${res.status}: ${text.slice(0, 200)} (SRP-WAL-001)`);
  const body = JSON.parse(text) as { nonce?: unknown };
  ensure(
    typeof body.nonce === "string" && /^[A-Za-z0-9]{8,64}$/.test(body.nonce),
    `GET /auth/nonce returned nonce ${JSON.stringify(body.nonce)}, not 8 to 64 ASCII letters and digits (SRP-WAL-001)`,
  );
  return body.nonce;
}

/** The chain a hub taking x402 payments is on (its wallet sign-in must name it), else undefined. */
async function x402ChainId(ctx: HubContext, doc: DiscoveryLike): Promise<number | undefined> {
  if (!doc.payments?.includes("x402")) return undefined;
  const res = await fetch(new URL("/.well-known/x402", ctx.baseUrl), { signal: AbortSignal.timeout(5000) });
  const body = (await res.json().catch(() => ({}))) as { resources?: Array<{ accepts?: Array<{ network?: unknown }> }> };
  const network = body.resources?.[0]?.accepts?.[0]?.network;
  const m = typeof network === "string" ? /^eip155:([0-9]+)$/.exec(network) : null;
  return m ? Number(m[1]) : undefined;
}

/** Posts a wallet sign-in and reads the answer. */
async function signIn(
  consumer: string,
  message: string,
  signature: string,
): Promise<{ status: number; code: string | undefined; text: string }> {
  const res = await fetch(`${consumer}/auth/wallet`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ message, signature }),
    signal: AbortSignal.timeout(5000),
  });
  const text = await bodyText(res);
  return { status: res.status, code: codeOf(text), text };
}

/** Hub-mode security checks, in run order (the limit checks last). */
export const HUB_SECURITY_CHECKS: Check<HubContext>[] = [
  check(
    "hub.security.signature_before_account",
    "Answers an auth with a bad signature and an unknown API key with auth.bad_signature, not auth.unknown_account: the signature is verified before the account is looked up",
    ["SRP-SEC-008", "SRP-AUTH-005"],
    "MUST",
    async (ctx) => {
      const { peer, hello } = await connect(ctx);
      peer.send(forgedAuth(hello, `srp_conformance_unknown_${Date.now()}`));
      const problem = await expectRejection(peer, "auth.bad_signature", 4401);
      if (problem) fail(`${problem} (a hub that looks the account up first tells a forger whether a key exists, SRP-SEC-008)`);
    },
  ),
  check(
    "hub.security.key_not_echoed",
    "Never echoes an API key in an error: neither a refused auth's unknown key nor a consumer request's unknown key appears in the hub's answer",
    ["SRP-SEC-004", "SRP-SEC-026", "SRP-ERR-006"],
    "MUST",
    async (ctx) => {
      const secret = `srp_conformance_secret_${generatePrivateKey().slice(2, 26)}`;
      const problems: string[] = [];
      const { peer, hello, doc } = await connect(ctx);
      peer.send(createAuth({ identity: generateIdentity(), hello, account: { kind: "api_key", key: secret } }));
      await peer.closedWithin(5000);
      const leaked = peer.received.find((r) => r.raw.includes(secret));
      if (leaked) problems.push(`the hub's answer to an auth with an unknown key repeats the key: ${leaked.raw.slice(0, 200)}`);
      if (doc.consumer?.surfaces.includes("openai.chat.completions")) {
        const res = await fetch(`${consumerBase(ctx, doc)}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
          body: JSON.stringify({ model: "conformance-none", messages: [{ role: "user", content: "hi" }] }),
          signal: AbortSignal.timeout(5000),
        });
        const text = await bodyText(res);
        if (text.includes(secret) || [...res.headers.values()].some((v) => v.includes(secret)))
          problems.push(`the answer (${res.status}) to a chat completion with an unknown key repeats the key: ${text.slice(0, 200)}`);
      }
      if (problems.length) fail(`${problems.join("; ")} (SRP-SEC-004)`);
    },
  ),
  check(
    "hub.security.frame_limit_first",
    "Enforces the frame limit before parsing: a frame one byte over the limit that is not JSON is answered frame.too_large (1009), not frame.malformed",
    ["SRP-SEC-007", "SRP-SEC-027", "SRP-FRM-001"],
    "MUST",
    async (ctx) => {
      const { peer, hello } = await connect(ctx);
      const limit = (hello.limits as { maxFrameBytes: number }).maxFrameBytes;
      peer.sendRaw(`{"type":"auth",${"x".repeat(limit + 1 - 15)}`);
      const problem = await expectRejection(peer, "frame.too_large", 1009);
      if (problem) fail(`an oversize frame that is not JSON, before auth: ${problem} (SRP-SEC-007)`);
    },
  ),
  check(
    "hub.security.message_headroom",
    "Keeps a session open through a burst of 10,000 messages, as a node streaming a fast job sends: a per-session message limit must be well above what an honest node sends",
    ["SRP-SEC-019", "SRP-SEC-028"],
    "MUST",
    async (ctx) => {
      const { peer } = await openSession(ctx);
      const burst = 10_000;
      for (let i = 0; i < burst; i++) peer.send({ type: "heartbeat", ts: Date.now(), load: [] });
      const closed = await peer.closedWithin(500);
      if (closed) {
        const error = peer.matching((m) => m.type === "error")[0];
        fail(
          `the hub closed a session that sent ${burst} heartbeats at once (${closed.code}${error ? ` ${String(error.code)}` : ""}): the message limit must be well above what an honest node sends, 10,000 at once (SRP-SEC-019, SRP-SEC-028)`,
        );
      }
      await stillServing(peer, "the session");
    },
  ),
  check(
    "hub.wallet.sign_in",
    "Signs a wallet in with EIP-4361 (an API key of its account) and refuses a message for another domain or chain, expired, not yet valid, signed by another wallet (403 auth.bad_account_proof) or not EIP-4361 (400 api.invalid_body) without consuming the nonce; a used or unknown nonce is 401 auth.replayed_nonce",
    ["SRP-WAL-002", "SRP-WAL-001", "SRP-WAL-009"],
    "MUST",
    async (ctx) => {
      const { doc, consumer } = await walletHub(ctx);
      const domain = new URL(consumer).host;
      const uri = new URL(consumer).origin;
      const chainId = (await x402ChainId(ctx, doc)) ?? 1;
      const wallet = privateKeyToAccount(generatePrivateKey());
      const n = await nonce(consumer);
      const now = Date.now();
      const base = { address: wallet.address, chainId, domain, nonce: n, uri, version: "1" as const, issuedAt: new Date(now) };
      const problems: string[] = [];
      const expect = async (what: string, message: string, signature: string, status: number, code: string) => {
        const a = await signIn(consumer, message, signature);
        if (a.status !== status || a.code !== code)
          problems.push(`${what}: answered ${a.status} ${a.code ?? a.text.slice(0, 120)}, expected ${status} ${code}`);
      };
      const refusals: Array<[string, Parameters<typeof createSiweMessage>[0]]> = [
        ["a message for another domain", { ...base, domain: "evil.example" }],
        ["a message that expired a minute ago", { ...base, issuedAt: new Date(now - 120_000), expirationTime: new Date(now - 60_000) }],
        ["a message valid only from an hour from now", { ...base, notBefore: new Date(now + 3_600_000) }],
        ...(doc.payments?.includes("x402")
          ? ([["a message for another chain", { ...base, chainId: chainId + 1 }]] as Array<
              [string, Parameters<typeof createSiweMessage>[0]]
            >)
          : []),
      ];
      for (const [what, fields] of refusals) {
        const message = createSiweMessage(fields);
        await expect(what, message, await wallet.signMessage({ message }), 403, "auth.bad_account_proof");
      }
      const good = createSiweMessage(base);
      await expect(
        "a message signed by another wallet",
        good,
        await throwaway().signMessage({ message: good }),
        403,
        "auth.bad_account_proof",
      );
      await expect(
        "a message that is not EIP-4361",
        "Sign me in, please.",
        await wallet.signMessage({ message: "Sign me in, please." }),
        400,
        "api.invalid_body",
      );
      // Every refusal above left the nonce unused: the good message signs in with it.
      const signature = await wallet.signMessage({ message: good });
      const ok = await signIn(consumer, good, signature);
      if (ok.status !== 200)
        problems.push(
          `a valid sign-in (after refused attempts with the same nonce, which must not consume it) answered ${ok.status} ${ok.code ?? ok.text.slice(0, 200)}`,
        );
      else {
        const session = JSON.parse(ok.text) as Record<string, unknown>;
        if (session.object !== "srp.wallet_session")
          problems.push(`the sign-in's object is ${JSON.stringify(session.object)}, not srp.wallet_session`);
        if (typeof session.address !== "string" || session.address.toLowerCase() !== wallet.address.toLowerCase())
          problems.push(`the sign-in's address ${JSON.stringify(session.address)} is not ${wallet.address}`);
        for (const k of ["account_id", "api_key", "key_id"])
          if (typeof session[k] !== "string" || (session[k] as string).length === 0) problems.push(`the sign-in has no ${k}`);
      }
      await expect("the same signed message again (a used nonce)", good, signature, 401, "auth.replayed_nonce");
      const unknown = createSiweMessage({ ...base, nonce: `conformance${Date.now()}` });
      await expect("a nonce the hub never issued", unknown, await wallet.signMessage({ message: unknown }), 401, "auth.replayed_nonce");
      if (problems.length) fail(`${problems.join("; ")} (SRP-WAL-002)`);
    },
  ),
  check(
    "hub.security.nonce_limit",
    `Limits GET /auth/nonce per address: within ${LIMIT_BOUND} requests it refuses one with 429 api.rate_limited and a Retry-After of at least 1 second (trips the limit)`,
    ["SRP-SEC-016", "SRP-SEC-015"],
    "MUST",
    async (ctx) => {
      const { consumer } = await walletHub(ctx);
      for (let i = 1; i <= LIMIT_BOUND; i++) {
        const res = await fetch(`${consumer}/auth/nonce`, { signal: AbortSignal.timeout(5000) });
        const text = await bodyText(res);
        if (res.status === 200) continue;
        const problem = refusalProblem(
          { status: res.status, retryAfter: res.headers.get("retry-after"), code: codeOf(text), text },
          "api.rate_limited",
          `sign-in nonce ${i}`,
        );
        if (problem) fail(problem);
        return;
      }
      skip(`the hub issued ${LIMIT_BOUND} sign-in nonces to one address without refusing one: its limit is above what this check sends`);
    },
  ),
  check(
    "hub.security.payment_limit",
    `Once failed x402 payments from an address are over the limit (at most ${LIMIT_BOUND} sent), refuses the next payment with 429 api.rate_limited before verifying its signature, and still serves a request that carries an API key`,
    ["SRP-SEC-020", "SRP-SEC-021", "SRP-SEC-015"],
    "MUST",
    async (ctx) => {
      await x402Hub(ctx);
      const target = await paidTarget(ctx);
      const { required, offer } = await quote(ctx, target);
      let refusal: Refused | undefined;
      for (let i = 1; i <= LIMIT_BOUND && !refusal; i++) {
        const a = await unroutedAnswer(target, postUnauthenticated(ctx, target, "%%%not-base64%%%"), `failed payment ${i}`);
        if (a.status === 429) refusal = { status: a.status, retryAfter: a.headers.get("retry-after"), code: a.code, text: a.text };
        else if (a.status !== 400 || a.code !== "payment.invalid")
          fail(`failed payment ${i} (a PAYMENT-SIGNATURE that is not base64) was answered ${shown(a)}, not 400 payment.invalid or 429`);
      }
      if (!refusal)
        skip(`the hub refused none of ${LIMIT_BOUND} failed payments from one address: its limit is above what this check sends`);
      const problems: string[] = [];
      const p1 = refusalProblem(refusal, "api.rate_limited", "a payment over the failed-payment limit");
      if (p1) problems.push(p1);
      // A forged authorization: a hub that verified it would answer payment.bad_signature.
      const forged = await paymentHeader(required, offer, { payer: throwaway(), signer: throwaway() });
      const a = await unroutedAnswer(target, postUnauthenticated(ctx, target, forged), "a forged payment over the limit");
      const p2 = refusalProblem(
        { status: a.status, retryAfter: a.headers.get("retry-after"), code: a.code, text: a.text },
        "api.rate_limited",
        "a forged payment over the limit (to be refused before its signature is verified, SRP-SEC-020)",
      );
      if (p2) problems.push(p2);
      if (ctx.accountKey) {
        // The same address, with a key: the key is what the request uses, so no limit on strangers applies (SRP-SEC-021).
        const res = await fetch(`${target.consumer}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${ctx.accountKey}`, "payment-signature": forged },
          body: JSON.stringify({ ...target.body, model: `conformance-absent-${Date.now()}` }),
          signal: AbortSignal.timeout(5000),
        });
        const text = await bodyText(res);
        if (res.status === 429)
          problems.push(
            `a request with an API key (and a stray PAYMENT-SIGNATURE) was refused 429 ${codeOf(text) ?? ""}: limits on strangers must not refuse an authenticated consumer request (SRP-SEC-021)`,
          );
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.security.failed_handshakes",
    `Once an address's failed handshakes are over the limit (at most ${HANDSHAKE_BOUND} made), refuses its upgrades with 429, Retry-After and a session.rate_limited body, answers an auth on a connection opened before with session.rate_limited (4429) without checking its signature, and keeps an authenticated session open (trips the limit)`,
    ["SRP-SEC-018", "SRP-SEC-015", "SRP-SEC-021"],
    "MUST",
    async (ctx) => {
      const doc = await discovery(ctx);
      // Earlier checks may have used up the address's allowance: wait for it once (at most 5 s).
      const first = await upgrade(ctx, doc.provider.url);
      if ("refused" in first) {
        const wait = Number(first.refused.retryAfter ?? "0");
        if (!(wait >= 1 && wait <= 5))
          skip(
            `the hub already refuses this address's upgrades (${first.refused.status}, Retry-After ${String(first.refused.retryAfter)}): rerun this check alone later`,
          );
        await new Promise((r) => setTimeout(r, wait * 1000));
      } else first.peer.close();
      const bystander = ctx.accountKey ? await openSession(ctx) : undefined;
      const early = await connect(ctx);
      let refusal: Refused | undefined;
      for (let i = 1; i <= HANDSHAKE_BOUND && !refusal; i++) {
        const next = await upgrade(ctx, doc.provider.url);
        if ("refused" in next) {
          refusal = next.refused;
          break;
        }
        next.peer.send(forgedAuth(next.hello, `srp_conformance_unknown_${i}`));
        await within(next.peer.closedWithin(5000), 6000, "the close of a rejected handshake");
      }
      if (!refusal)
        skip(
          `the hub refused no upgrade after ${HANDSHAKE_BOUND} failed handshakes from one address: its limit is above what this check sends`,
        );
      const problems: string[] = [];
      const p1 = refusalProblem(refusal, "session.rate_limited", "an upgrade after too many failed handshakes");
      if (p1) problems.push(p1);
      early.peer.send(forgedAuth(early.hello, needKey(ctx)));
      const p2 = await expectRejection(early.peer, "session.rate_limited", 4429);
      if (p2)
        problems.push(
          `a forged auth on a connection opened before the limit was reached: ${p2} (over the limit the hub refuses it without checking its signature, SRP-SEC-018)`,
        );
      if (bystander) {
        const closed = await bystander.peer.closedWithin(300);
        if (closed)
          problems.push(
            `an authenticated session from the same address was closed (${closed.code} ${closed.reason}): limits on strangers must not count against it (SRP-SEC-021)`,
          );
        else await stillServing(bystander.peer, "an authenticated session from the same address");
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.security.pending_handshakes",
    `Refuses an upgrade over its cap on connections in their handshake (at most ${LIMIT_BOUND} held open) with 429, Retry-After and a session.rate_limited body, before any WebSocket opens`,
    ["SRP-SEC-025", "SRP-SEC-015"],
    "MUST",
    async (ctx) => {
      const doc = await discovery(ctx);
      const held: WirePeer[] = [];
      try {
        for (let i = 1; i <= LIMIT_BOUND; i++) {
          const next = await upgrade(ctx, doc.provider.url);
          if ("refused" in next) {
            const problem = refusalProblem(
              next.refused,
              "session.rate_limited",
              `upgrade ${i} (with ${held.length} connections in their handshake)`,
            );
            if (problem) fail(problem);
            return;
          }
          held.push(next.peer);
        }
      } finally {
        for (const p of held) p.close();
      }
      skip(`the hub held ${LIMIT_BOUND} connections from one address in their handshake without refusing one`);
    },
  ),
];
