/**
 * Hub-mode checks of x402 pay-per-call (spec/v1/payments.md), over HTTP only. They run when
 * the hub's discovery document lists `x402` among its payments, and are skipped otherwise.
 *
 * A 402 needs a model online. With an account key the harness offers a model of its own as a
 * provider node (so that no other provider is involved, and the node can tell whether the hub
 * routed a request it should have refused); without one it uses a model from `GET /models`.
 * The refusal checks sign with throwaway keys: every check they make comes before the hub
 * looks at the chain, so they need no funds. `hub.x402.pay_once` pays one request for real
 * and needs a funded payer key (`--x402-payer-key`).
 */
import { decodeSettlementResponse, encodeX402Header, evmChainId, X402_V1_EVM_NETWORKS } from "@srp/core/x402";
import { privateKeyToAccount } from "viem/accounts";
import type { Check, CheckVerdict } from "../types.js";
import { check as defineCheck } from "../harness/check.js";
import { bodyText, within } from "../harness/consumer.js";
import type { HubContext } from "../harness/hub-session.js";
import { ensure, fail, skip } from "../harness/verdict.js";
import {
  ADDRESS,
  asVersion1,
  paidTarget,
  paymentHeader,
  postUnauthenticated,
  quote,
  refused,
  throwaway,
  UNITS,
  x402Hub,
} from "../harness/x402-payer.js";

/** An x402 check: every one is a MUST. */
function check(id: string, title: string, requirements: string[], body: (ctx: HubContext) => Promise<CheckVerdict>): Check<HubContext> {
  return defineCheck(id, title, requirements, "MUST", body);
}

/** Hub-mode x402 checks, in run order. */
export const HUB_X402_CHECKS: Check<HubContext>[] = [
  check(
    "hub.x402.required",
    "Answers an unauthenticated chat completion with 402 payment.required and a decodable PAYMENT-REQUIRED: x402Version 2, one entry per network (an exact eip155 one first) each quoting the maximum cost, maxTimeoutSeconds >= 300, the token's EIP-712 extra, the resource URL, the bazaar extension; routes nothing",
    ["SRP-PAY-001", "SRP-PAY-002", "SRP-PAY-003", "SRP-PAY-023", "SRP-PAY-028"],
    async (ctx) => {
      const target = await paidTarget(ctx);
      const { answer, required, offer } = await quote(ctx, target);
      const problems: string[] = [];
      // A Solana entry (SRP-PAY-028): base58 mint and owner, the fee payer, nothing that changes per 402.
      const BASE58 = /^[1-9A-HJ-NP-Za-km-z]{32,44}$/;
      for (const r of required.accepts.filter((a) => a.network.startsWith("solana:"))) {
        if (r.scheme !== "exact") problems.push(`the Solana entry's scheme is ${r.scheme}, not exact (SRP-PAY-028)`);
        if (!BASE58.test(r.asset) || !BASE58.test(r.payTo))
          problems.push("the Solana entry's asset or payTo is not a base58 address (SRP-PAY-028)");
        const extra = r.extra ?? {};
        if (typeof extra.feePayer !== "string" || !BASE58.test(extra.feePayer))
          problems.push("the Solana entry's extra.feePayer is not a base58 address (SRP-PAY-028)");
        if ("recentBlockhash" in extra || "memo" in extra)
          problems.push("the Solana entry carries a blockhash or memo, which change from one 402 to the next (SRP-PAY-028)");
      }
      if (answer.code !== "payment.required")
        problems.push(`the 402's error code is ${JSON.stringify(answer.code)}, not payment.required (SRP-PAY-002)`);
      const networks = required.accepts.map((r) => r.network);
      if (new Set(networks).size !== networks.length) problems.push(`accepts lists a network twice: ${networks.join(", ")} (SRP-PAY-003)`);
      if (required.accepts[0] !== offer)
        problems.push(`the first entry of accepts is on ${networks[0]}, not the EVM network (SRP-PAY-003)`);
      const amounts = new Set(required.accepts.map((r) => r.amount));
      if (amounts.size !== 1) problems.push(`the entries of accepts quote different amounts: ${[...amounts].join(", ")} (SRP-PAY-003)`);
      if (!/^eip155:[1-9][0-9]*$/.test(offer.network)) problems.push(`network ${offer.network} is not eip155:<chainId>`);
      if (typeof offer.amount !== "string" || !UNITS.test(offer.amount))
        problems.push(`amount ${JSON.stringify(offer.amount)} is not a decimal string of atomic units`);
      if (!ADDRESS.test(offer.asset)) problems.push(`asset ${offer.asset} is not a token address`);
      if (!ADDRESS.test(offer.payTo)) problems.push(`payTo ${offer.payTo} is not an address`);
      if (!Number.isInteger(offer.maxTimeoutSeconds) || offer.maxTimeoutSeconds < 300)
        problems.push(`maxTimeoutSeconds is ${offer.maxTimeoutSeconds}, below 300 (SRP-PAY-003)`);
      const extra = offer.extra ?? {};
      if (typeof extra.name !== "string" || extra.name.length === 0 || typeof extra.version !== "string" || extra.version.length === 0) {
        problems.push(`extra ${JSON.stringify(offer.extra)} lacks the token's EIP-712 domain name and version (SRP-PAY-003)`);
      }
      let resourceUrl: URL | undefined;
      try {
        resourceUrl = new URL(required.resource.url);
      } catch {
        problems.push(`resource.url ${JSON.stringify(required.resource.url)} is not an absolute URL (SRP-PAY-002)`);
      }
      if (resourceUrl && !resourceUrl.pathname.endsWith("/chat/completions"))
        problems.push(`resource.url ${required.resource.url} is not the chat completions resource (SRP-PAY-002)`);
      const bazaar = required.extensions?.bazaar as { info?: unknown; schema?: unknown } | undefined;
      if (typeof bazaar?.info !== "object" || bazaar.info === null || typeof bazaar.schema !== "object" || bazaar.schema === null) {
        problems.push("extensions.bazaar with info and schema is missing (SRP-PAY-023)");
      }
      // The amount is the request's maximum cost, which /estimate also returns (SRP-BIL-003).
      if (target.doc.consumer?.surfaces.includes("srp.estimate")) {
        const res = await fetch(`${target.consumer}/estimate`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(target.body),
          signal: AbortSignal.timeout(5000),
        });
        const estimate = (await res.json().catch(() => ({}))) as { maximum?: { units?: unknown } };
        if (res.ok && estimate.maximum?.units !== undefined && estimate.maximum.units !== offer.amount) {
          problems.push(
            `amount ${offer.amount} is not the request's maximum cost ${String(estimate.maximum.units)} from POST /estimate (SRP-PAY-003)`,
          );
        }
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.x402.malformed",
    "Answers a PAYMENT-SIGNATURE that is not base64, a document of another x402 version, and a payload that is not an exact EVM payment with 400 payment.invalid, and keeps quoting",
    ["SRP-PAY-004", "SRP-PAY-005"],
    async (ctx) => {
      const target = await paidTarget(ctx);
      const { required, offer } = await quote(ctx, target);
      const cases: Array<[string, string]> = [
        ["a PAYMENT-SIGNATURE that is not base64", "%%%not-base64%%%"],
        ["an x402 version 1 document", encodeX402Header({ x402Version: 1, scheme: "exact", network: offer.network, payload: {} })],
        [
          "a payload that is not an exact EVM payment",
          encodeX402Header({ x402Version: 2, resource: required.resource, accepted: offer, payload: { conformance: true } }),
        ],
      ];
      const problems: string[] = [];
      for (const [what, header] of cases) {
        const problem = await refused(ctx, target, header, 400, "payment.invalid", what);
        if (problem) problems.push(problem);
      }
      if (problems.length) fail(problems.join("; "));
      // The hub keeps serving: the next request is quoted as usual.
      await quote(ctx, target);
    },
  ),
  check(
    "hub.x402.mismatch",
    "Refuses a payment whose accepted requirements differ from the offer (amount changed) with 402 payment.requirements_mismatch, and one for another network with 402 payment.wrong_network, each with fresh requirements",
    ["SRP-PAY-004", "SRP-PAY-005"],
    async (ctx) => {
      const target = await paidTarget(ctx);
      const { required, offer } = await quote(ctx, target);
      const payer = throwaway();
      const chainId = evmChainId(offer.network)!;
      const problems: string[] = [];
      const more = (BigInt(offer.amount) + 1n).toString();
      const tampered = await paymentHeader(required, offer, { payer, accepted: { amount: more } });
      const p1 = await refused(
        ctx,
        target,
        tampered,
        402,
        "payment.requirements_mismatch",
        "a payment whose accepted.amount was changed (and signed for)",
      );
      if (p1) problems.push(p1);
      const elsewhere = await paymentHeader(required, offer, { payer, accepted: { network: `eip155:${chainId + 1}` } });
      const p2 = await refused(
        ctx,
        target,
        elsewhere,
        402,
        "payment.wrong_network",
        `a payment whose accepted.network is eip155:${chainId + 1}`,
      );
      if (p2) problems.push(p2);
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.x402.bad_signature",
    "Refuses an authorization for the payer signed by another key with 402 payment.bad_signature",
    ["SRP-PAY-004", "SRP-PAY-006", "SRP-PAY-005"],
    async (ctx) => {
      const target = await paidTarget(ctx);
      const { required, offer } = await quote(ctx, target);
      const header = await paymentHeader(required, offer, { payer: throwaway(), signer: throwaway() });
      const problem = await refused(
        ctx,
        target,
        header,
        402,
        "payment.bad_signature",
        "an authorization signed by a key other than its from",
      );
      if (problem) fail(problem);
    },
  ),
  check(
    "hub.x402.expired",
    "Refuses an authorization whose validBefore has passed with 402 payment.expired",
    ["SRP-PAY-004", "SRP-PAY-005"],
    async (ctx) => {
      const target = await paidTarget(ctx);
      const { required, offer } = await quote(ctx, target);
      const past = BigInt(Math.floor(Date.now() / 1000) - 60);
      const header = await paymentHeader(required, offer, { payer: throwaway(), validBefore: past });
      const problem = await refused(ctx, target, header, 402, "payment.expired", "an authorization that expired a minute ago");
      if (problem) fail(problem);
    },
  ),
  check(
    "hub.x402.insufficient_funds",
    "Refuses a correctly signed authorization from a wallet that holds none of the token with 402 payment.insufficient_funds, checked on the chain before settling, without routing the request",
    ["SRP-PAY-008", "SRP-PAY-026", "SRP-PAY-004", "SRP-PAY-005"],
    async (ctx) => {
      const target = await paidTarget(ctx);
      const { required, offer } = await quote(ctx, target);
      // A fresh key: its balance is 0, so the on-chain check of step 12 must refuse it.
      const header = await paymentHeader(required, offer, { payer: throwaway() });
      const problem = await refused(ctx, target, header, 402, "payment.insufficient_funds", "an authorization from a wallet without funds");
      if (problem) fail(problem);
    },
  ),
  check(
    "hub.x402.version1",
    "Serves the x402 discovery document under /.well-known/x402.json too; when it lists x402 version 1, a 402's body carries x402Version 1 and the same offer by network name, a garbled X-PAYMENT is 400 payment.invalid and one on another network 402 payment.wrong_network; when it does not, a well-formed X-PAYMENT is 402 payment.wrong_network",
    ["SRP-PAY-022", "SRP-PAY-027"],
    async (ctx) => {
      const target = await paidTarget(ctx);
      const read = async (path: string) => {
        const res = await fetch(new URL(path, ctx.baseUrl), { signal: AbortSignal.timeout(5000) });
        ensure(res.ok, `GET ${path} answered ${res.status} (SRP-PAY-022)`);
        return (await res.json().catch(() => fail(`GET ${path} is not JSON`))) as { x402Versions?: unknown; resources?: unknown };
      };
      const plain = await read("/.well-known/x402");
      const named = await read("/.well-known/x402.json");
      const problems: string[] = [];
      if (JSON.stringify(named.resources) !== JSON.stringify(plain.resources))
        problems.push("/.well-known/x402.json lists other resources than /.well-known/x402 (SRP-PAY-022)");
      const versions = Array.isArray(plain.x402Versions) ? plain.x402Versions : [2];
      const { answer, offer, required } = await quote(ctx, target);
      const body = JSON.parse(answer.text) as { x402Version?: unknown; accepts?: Array<Record<string, unknown>> };
      const payer = throwaway();
      const v2 = await paymentHeader(required, offer, { payer });
      if (!versions.includes(1)) {
        if (body.x402Version === 1) problems.push("the 402's body carries x402Version 1 though discovery does not list version 1");
        const p = await refused(
          ctx,
          target,
          asVersion1(v2, "conformance-net"),
          402,
          "payment.wrong_network",
          "an X-PAYMENT to a hub without version 1",
          "x-payment",
        );
        if (p) problems.push(p);
        if (problems.length) fail(problems.join("; "));
        return;
      }
      const v1 = body.accepts?.[0];
      if (body.x402Version !== 1 || !v1)
        fail(
          `discovery lists x402 version 1 but the 402's body has x402Version ${JSON.stringify(body.x402Version)} and no accepts (SRP-PAY-027)`,
        );
      const chainId = evmChainId(offer.network);
      const name = typeof v1.network === "string" ? v1.network : "";
      if (X402_V1_EVM_NETWORKS[name] !== chainId)
        problems.push(`the version-1 network ${JSON.stringify(v1.network)} is not the name of ${offer.network} (SRP-PAY-027)`);
      if (v1.maxAmountRequired !== offer.amount)
        problems.push(`maxAmountRequired ${JSON.stringify(v1.maxAmountRequired)} is not the offer's amount ${offer.amount}`);
      if (v1.payTo !== offer.payTo || v1.asset !== offer.asset)
        problems.push("the version-1 offer names another payTo or asset than PAYMENT-REQUIRED");
      if (v1.resource !== required.resource.url)
        problems.push(`the version-1 resource ${JSON.stringify(v1.resource)} is not ${required.resource.url}`);
      const garbled = await refused(
        ctx,
        target,
        "%%%not-base64%%%",
        400,
        "payment.invalid",
        "an X-PAYMENT that is not base64",
        "x-payment",
      );
      if (garbled) problems.push(garbled);
      const elsewhere = await refused(
        ctx,
        target,
        asVersion1(v2, "conformance-net"),
        402,
        "payment.wrong_network",
        "an X-PAYMENT on another network",
        "x-payment",
      );
      if (elsewhere) problems.push(elsewhere);
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.x402.well_known",
    "Serves /.well-known/x402 listing the chat completion resource (POST, exact eip155 requirements without an amount, maxTimeoutSeconds >= 300, bazaar) and the settlement mode",
    ["SRP-PAY-022", "SRP-PAY-023"],
    async (ctx) => {
      const { consumer } = await x402Hub(ctx);
      const url = new URL("/.well-known/x402", ctx.baseUrl);
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      ensure(res.ok, `GET ${url} answered ${res.status} (SRP-PAY-022)`);
      let doc: { x402Version?: unknown; settlement?: unknown; resources?: unknown };
      try {
        doc = (await res.json()) as typeof doc;
      } catch {
        fail(`GET ${url} is not JSON`);
      }
      const problems: string[] = [];
      if (doc.x402Version !== 2) problems.push(`x402Version is ${JSON.stringify(doc.x402Version)}, not 2`);
      if (doc.settlement !== "before" && doc.settlement !== "after")
        problems.push(`settlement is ${JSON.stringify(doc.settlement)}, not "before" or "after"`);
      const chatUrl = `${consumer}/chat/completions`;
      const resources = Array.isArray(doc.resources) ? (doc.resources as Array<Record<string, unknown>>) : [];
      const chat = resources.find((r) => r.resource === chatUrl);
      if (!chat)
        problems.push(
          `resources (${resources.map((r) => JSON.stringify(r.resource)).join(", ") || "none"}) do not list the chat completion resource ${chatUrl}`,
        );
      else {
        if (chat.method !== "POST") problems.push(`the chat resource's method is ${JSON.stringify(chat.method)}, not POST`);
        const accepts = Array.isArray(chat.accepts) ? (chat.accepts as Array<Record<string, unknown>>) : [];
        const a = accepts[0];
        if (!a) problems.push("the chat resource has no accepts entry");
        else {
          if (a.scheme !== "exact" || typeof a.network !== "string" || evmChainId(a.network) === undefined)
            problems.push(`its accepts entry is not exact on an eip155 network: ${JSON.stringify(a).slice(0, 200)}`);
          if (typeof a.maxTimeoutSeconds !== "number" || a.maxTimeoutSeconds < 300)
            problems.push(`its maxTimeoutSeconds is ${JSON.stringify(a.maxTimeoutSeconds)}, below 300`);
          if ("amount" in a) problems.push("its accepts entry carries an amount; a request's amount is quoted per request");
          if (typeof a.payTo !== "string" || !ADDRESS.test(a.payTo) || typeof a.asset !== "string" || !ADDRESS.test(a.asset))
            problems.push("its accepts entry lacks an EVM payTo or asset");
        }
        const ext = chat.extensions as { bazaar?: unknown } | undefined;
        if (typeof ext?.bazaar !== "object" || ext.bazaar === null)
          problems.push("the chat resource has no bazaar extension (SRP-PAY-023)");
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.x402.pay_once",
    "Serves a request paid with x402 (200 with PAYMENT-RESPONSE success, the network, the payer and a transaction), then refuses the same PAYMENT-SIGNATURE with 402 payment.replayed without routing it",
    ["SRP-PAY-007", "SRP-PAY-009", "SRP-PAY-015", "SRP-PAY-005"],
    async (ctx) => {
      const key = ctx.x402PayerKey;
      if (!key) skip("needs --x402-payer-key (the private key of a wallet holding the hub's x402 token) to pay one request");
      if (!/^0x[0-9a-fA-F]{64}$/.test(key)) fail("the x402 payer key is not 0x followed by 64 hex digits");
      const payer = privateKeyToAccount(key as `0x${string}`);
      const target = await paidTarget(ctx);
      const { required, offer } = await quote(ctx, target);
      const header = await paymentHeader(required, offer, { payer });
      const call = postUnauthenticated(ctx, target, header);
      if (target.node) {
        const job = await target.node.nextJob(call, 15_000);
        target.node.responseAnswer(job, "Paid once.");
      }
      const res = await within(call.response, 20_000, "the answer to the paid request");
      const text = await bodyText(res);
      if (res.status !== 200) fail(`the paid request was answered ${res.status}: ${text.slice(0, 300)}`);
      const settled = res.headers.get("payment-response");
      if (settled === null) fail("the paid request's answer has no PAYMENT-RESPONSE header (SRP-PAY-015)");
      const problems: string[] = [];
      try {
        const doc = decodeSettlementResponse(settled);
        if (doc.success !== true)
          problems.push(`PAYMENT-RESPONSE says success ${String(doc.success)}${doc.errorReason ? ` (${doc.errorReason})` : ""}`);
        if (doc.network !== offer.network) problems.push(`PAYMENT-RESPONSE's network ${doc.network} is not the offer's ${offer.network}`);
        if (doc.transaction.length === 0) problems.push("PAYMENT-RESPONSE names no transaction");
        if (doc.payer !== undefined && doc.payer.toLowerCase() !== payer.address.toLowerCase())
          problems.push(`PAYMENT-RESPONSE's payer ${doc.payer} is not ${payer.address}`);
      } catch (error) {
        problems.push(`PAYMENT-RESPONSE does not decode: ${(error as Error).message}`);
      }
      const again = await refused(ctx, target, header, 402, "payment.replayed", "the same PAYMENT-SIGNATURE sent again");
      if (again) problems.push(again);
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
