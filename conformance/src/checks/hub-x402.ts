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
import { decodePaymentRequired, decodeSettlementResponse, encodeX402Header, evmChainId, type PaymentRequired, type PaymentRequirements } from "@srp/core";
import { authorizationNonce, transferWithAuthorizationTypes } from "@srp/core/chain";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { bodyText, within, type ConsumerCall } from "../consumer.js";
import { ensure, fail, type Check, type CheckVerdict } from "../types.js";
import { ASK, HarnessNode, instance, isJob, newModel } from "./hub-jobs.js";
import { discovery, SkipCheck, skippable, type DiscoveryLike, type HubContext } from "./hub-session.js";

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const UNITS = /^(0|[1-9][0-9]*)$/;

/** The hub's discovery document and consumer base URL, or a skip when it takes no x402 payments. */
export async function x402Hub(ctx: HubContext): Promise<{ doc: DiscoveryLike; consumer: string }> {
  const doc = await discovery(ctx);
  if (!Array.isArray(doc.payments) || !doc.payments.includes("x402")) {
    throw new SkipCheck(`the discovery document's payments (${JSON.stringify(doc.payments ?? [])}) do not include x402 (SRP-PAY-001)`);
  }
  if (doc.consumer && !doc.consumer.surfaces.includes("openai.chat.completions")) {
    throw new SkipCheck("the discovery document does not list the openai.chat.completions consumer surface, the resource x402 checks pay for");
  }
  const consumer = (doc.consumer?.baseUrl ?? new URL("/v1", ctx.baseUrl).toString()).replace(/\/+$/, "");
  return { doc, consumer };
}

/** What the checks pay for: a chat request for a model online, and the harness's node when it serves the model. */
export interface PaidTarget {
  doc: DiscoveryLike;
  consumer: string;
  body: Record<string, unknown>;
  node: HarnessNode | undefined;
}

export async function paidTarget(ctx: HubContext): Promise<PaidTarget> {
  const { doc, consumer } = await x402Hub(ctx);
  if (ctx.accountKey) {
    const model = newModel();
    const node = await HarnessNode.open(ctx, [instance(model)]);
    return { doc, consumer, node, body: { model, messages: ASK, max_tokens: 8 } };
  }
  // Without a key the harness cannot offer a model: use one the hub has online.
  let model: string | undefined;
  try {
    const res = await fetch(`${consumer}/models`, { signal: AbortSignal.timeout(5000) });
    const list = (await res.json()) as { data?: Array<{ id?: unknown }> };
    model = list.data?.map((m) => m.id).find((id): id is string => typeof id === "string" && id.length > 0);
  } catch {
    model = undefined;
  }
  if (!model) throw new SkipCheck("a 402 needs a model online: pass --account-key (the harness then offers one) or run against a hub with a provider online");
  return { doc, consumer, node: undefined, body: { model, messages: ASK, max_tokens: 8 } };
}

/** Posts a chat completion without an API key, optionally with a `PAYMENT-SIGNATURE`. */
export function postUnauthenticated(ctx: HubContext, target: PaidTarget, payment?: string): ConsumerCall {
  const controller = new AbortController();
  const response = fetch(`${target.consumer}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...(payment === undefined ? {} : { "payment-signature": payment }) },
    body: JSON.stringify(target.body),
    signal: controller.signal,
  });
  response.catch(() => {
    /* reported where it is awaited */
  });
  const abort = () => controller.abort();
  ctx.tracker.cleanups.push(abort);
  return { response, abort };
}

/** A hub's answer, read in full. */
export interface Answer {
  status: number;
  /** `error.code` of a JSON error body. */
  code: string | undefined;
  text: string;
  headers: Headers;
}

export const shown = (a: Answer) => `${a.status}${a.code ? ` ${a.code}` : ""}${a.code ? "" : `: ${a.text.slice(0, 200)}`}`;

/**
 * The hub's answer to a request it must not route. Fails when a job reaches the harness's
 * node first: nothing unpaid may be routed (SRP-PAY-002, SRP-PAY-004).
 */
export async function unroutedAnswer(target: PaidTarget, call: ConsumerCall, what: string, ms = 10_000): Promise<Answer> {
  const peer = target.node?.peer;
  // Jobs are watched without taking them, so that a later check's nextJob still sees its own.
  const from = peer?.received.length ?? 0;
  const routed = () => peer?.matching(isJob, from)[0];
  let answered = false;
  const response = within(call.response, ms, `the hub's answer to ${what}`).finally(() => void (answered = true));
  response.catch(() => {
    /* awaited below */
  });
  while (peer && !answered) {
    const job = routed();
    if (job) fail(`the hub routed ${what} to a provider (job ${String(job.jobId)}) instead of refusing it before any work`);
    await Promise.race([response.catch(() => undefined), new Promise((r) => setTimeout(r, 25))]);
  }
  const res = await response;
  const late = routed();
  if (late) fail(`the hub routed ${what} to a provider (job ${String(late.jobId)}) instead of refusing it before any work`);
  const text = await bodyText(res);
  let code: unknown;
  try {
    code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code: typeof code === "string" ? code : undefined, text, headers: res.headers };
}

/** Decodes the `PAYMENT-REQUIRED` header of a 402, or fails. */
function requiredOf(a: Answer, what: string): PaymentRequired {
  const header = a.headers.get("payment-required");
  if (header === null) fail(`${what}: the 402 has no PAYMENT-REQUIRED header (SRP-PAY-002)`);
  try {
    return decodePaymentRequired(header);
  } catch (error) {
    fail(`${what}: PAYMENT-REQUIRED is not standard base64 of an x402 version 2 PaymentRequired document: ${(error as Error).message}`);
  }
}

/** The first `exact` EVM requirements of a 402, or fails. */
function exactOffer(required: PaymentRequired): PaymentRequirements {
  const offer = required.accepts.find((r) => r.scheme === "exact" && evmChainId(r.network) !== undefined);
  if (!offer) fail(`PAYMENT-REQUIRED accepts no exact requirements on an eip155 network: ${JSON.stringify(required.accepts).slice(0, 300)}`);
  return offer;
}

/** Asks for a request's price: the 402 of an unauthenticated request, decoded. */
export async function quote(ctx: HubContext, target: PaidTarget): Promise<{ answer: Answer; required: PaymentRequired; offer: PaymentRequirements }> {
  const answer = await unroutedAnswer(target, postUnauthenticated(ctx, target), "an unauthenticated chat completion");
  if (answer.status !== 402) fail(`an unauthenticated chat completion for a model online was answered ${shown(answer)}, not 402 (SRP-PAY-002)`);
  const required = requiredOf(answer, "an unauthenticated chat completion");
  return { answer, required, offer: exactOffer(required) };
}

/** How a payment is built, and what is wrong with it. */
interface PaymentPlan {
  /** The wallet named as `from`. */
  payer: PrivateKeyAccount;
  /** The key that signs (default the payer). */
  signer?: PrivateKeyAccount;
  /** Changes to the echoed requirements (the authorization follows them unless `value` is given). */
  accepted?: Partial<PaymentRequirements>;
  /** `validBefore`, Unix seconds (default now + maxTimeoutSeconds). */
  validBefore?: bigint;
}

export const throwaway = () => privateKeyToAccount(generatePrivateKey());

/** A `PAYMENT-SIGNATURE` value for `offer`, signed as EIP-3009 in the token's EIP-712 domain from `extra`. */
export async function paymentHeader(required: PaymentRequired, offer: PaymentRequirements, plan: PaymentPlan): Promise<string> {
  const accepted = { ...offer, ...plan.accepted };
  const chainId = evmChainId(offer.network);
  const name = offer.extra?.name;
  const version = offer.extra?.version;
  if (chainId === undefined) fail(`network ${offer.network} is not an eip155 network`);
  if (!ADDRESS.test(offer.asset) || !ADDRESS.test(offer.payTo)) fail(`asset ${offer.asset} or payTo ${offer.payTo} is not an EVM address`);
  if (typeof name !== "string" || typeof version !== "string") fail(`extra ${JSON.stringify(offer.extra)} does not name the token's EIP-712 domain (SRP-PAY-003)`);
  if (!UNITS.test(accepted.amount)) fail(`amount ${JSON.stringify(accepted.amount)} is not a decimal string of atomic units (SRP-PAY-003)`);
  const now = BigInt(Math.floor(Date.now() / 1000));
  const authorization = {
    from: plan.payer.address,
    to: offer.payTo as `0x${string}`,
    value: BigInt(accepted.amount),
    validAfter: 0n,
    validBefore: plan.validBefore ?? now + BigInt(offer.maxTimeoutSeconds),
    nonce: authorizationNonce(),
  };
  const signature = await (plan.signer ?? plan.payer).signTypedData({
    domain: { name, version, chainId, verifyingContract: offer.asset as `0x${string}` },
    types: transferWithAuthorizationTypes,
    primaryType: "TransferWithAuthorization",
    message: authorization,
  });
  return encodeX402Header({
    x402Version: 2,
    resource: required.resource,
    accepted,
    payload: {
      signature,
      authorization: {
        from: authorization.from,
        to: authorization.to,
        value: authorization.value.toString(),
        validAfter: authorization.validAfter.toString(),
        validBefore: authorization.validBefore.toString(),
        nonce: authorization.nonce,
      },
    },
  });
}

/**
 * What is wrong with a refusal: its status and code, and for a 402 the fresh
 * `PAYMENT-REQUIRED` whose `error` begins with the code (SRP-PAY-005).
 */
export function refusalProblem(a: Answer, status: number, code: string, what: string): string | undefined {
  if (a.status !== status || a.code !== code) return `${what}: answered ${shown(a)}, expected ${status} ${code}`;
  if (status !== 402) return undefined;
  const header = a.headers.get("payment-required");
  if (header === null) return `${what}: the 402 ${code} carries no fresh PAYMENT-REQUIRED (SRP-PAY-005)`;
  try {
    const doc = decodePaymentRequired(header);
    if (!doc.error?.startsWith(code)) return `${what}: the fresh PAYMENT-REQUIRED's error ${JSON.stringify(doc.error)} does not begin with ${code} (SRP-PAY-005)`;
  } catch (error) {
    return `${what}: the fresh PAYMENT-REQUIRED does not decode: ${(error as Error).message}`;
  }
  return undefined;
}

/** Sends a payment the hub must refuse and returns what is wrong with its answer. */
async function refused(ctx: HubContext, target: PaidTarget, header: string, status: number, code: string, what: string): Promise<string | undefined> {
  const a = await unroutedAnswer(target, postUnauthenticated(ctx, target, header), what);
  return refusalProblem(a, status, code, what);
}

function check(id: string, title: string, requirements: string[], body: (ctx: HubContext) => Promise<CheckVerdict>): Check<HubContext> {
  return { id, title, requirements, level: "MUST", run: (ctx) => skippable(() => body(ctx)) };
}

/** Hub-mode x402 checks, in run order. */
export const HUB_X402_CHECKS: Check<HubContext>[] = [
  check(
    "hub.x402.required",
    "Answers an unauthenticated chat completion with 402 payment.required and a decodable PAYMENT-REQUIRED: x402Version 2, one exact eip155 requirement quoting the maximum cost, maxTimeoutSeconds >= 300, the token's EIP-712 extra, the resource URL, the bazaar extension; routes nothing",
    ["SRP-PAY-001", "SRP-PAY-002", "SRP-PAY-003", "SRP-PAY-023"],
    async (ctx) => {
      const target = await paidTarget(ctx);
      const { answer, required, offer } = await quote(ctx, target);
      const problems: string[] = [];
      if (answer.code !== "payment.required") problems.push(`the 402's error code is ${JSON.stringify(answer.code)}, not payment.required (SRP-PAY-002)`);
      if (required.accepts.length !== 1) problems.push(`accepts has ${required.accepts.length} entries, not exactly one (SRP-PAY-003)`);
      if (!/^eip155:[1-9][0-9]*$/.test(offer.network)) problems.push(`network ${offer.network} is not eip155:<chainId>`);
      if (typeof offer.amount !== "string" || !UNITS.test(offer.amount)) problems.push(`amount ${JSON.stringify(offer.amount)} is not a decimal string of atomic units`);
      if (!ADDRESS.test(offer.asset)) problems.push(`asset ${offer.asset} is not a token address`);
      if (!ADDRESS.test(offer.payTo)) problems.push(`payTo ${offer.payTo} is not an address`);
      if (!Number.isInteger(offer.maxTimeoutSeconds) || offer.maxTimeoutSeconds < 300) problems.push(`maxTimeoutSeconds is ${offer.maxTimeoutSeconds}, below 300 (SRP-PAY-003)`);
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
      if (resourceUrl && !resourceUrl.pathname.endsWith("/chat/completions")) problems.push(`resource.url ${required.resource.url} is not the chat completions resource (SRP-PAY-002)`);
      const bazaar = required.extensions?.bazaar as { info?: unknown; schema?: unknown } | undefined;
      if (typeof bazaar?.info !== "object" || bazaar.info === null || typeof bazaar.schema !== "object" || bazaar.schema === null) {
        problems.push("extensions.bazaar with info and schema is missing (SRP-PAY-023)");
      }
      // The amount is the request's maximum cost, which /estimate also returns (SRP-BIL-003).
      if (target.doc.consumer?.surfaces.includes("srp.estimate")) {
        const res = await fetch(`${target.consumer}/estimate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(target.body), signal: AbortSignal.timeout(5000) });
        const estimate = (await res.json().catch(() => ({}))) as { maximum?: { units?: unknown } };
        if (res.ok && estimate.maximum?.units !== undefined && estimate.maximum.units !== offer.amount) {
          problems.push(`amount ${offer.amount} is not the request's maximum cost ${String(estimate.maximum.units)} from POST /estimate (SRP-PAY-003)`);
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
        ["a payload that is not an exact EVM payment", encodeX402Header({ x402Version: 2, resource: required.resource, accepted: offer, payload: { conformance: true } })],
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
      const p1 = await refused(ctx, target, tampered, 402, "payment.requirements_mismatch", "a payment whose accepted.amount was changed (and signed for)");
      if (p1) problems.push(p1);
      const elsewhere = await paymentHeader(required, offer, { payer, accepted: { network: `eip155:${chainId + 1}` } });
      const p2 = await refused(ctx, target, elsewhere, 402, "payment.wrong_network", `a payment whose accepted.network is eip155:${chainId + 1}`);
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
      const problem = await refused(ctx, target, header, 402, "payment.bad_signature", "an authorization signed by a key other than its from");
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
      if (doc.settlement !== "before" && doc.settlement !== "after") problems.push(`settlement is ${JSON.stringify(doc.settlement)}, not "before" or "after"`);
      const chatUrl = `${consumer}/chat/completions`;
      const resources = Array.isArray(doc.resources) ? (doc.resources as Array<Record<string, unknown>>) : [];
      const chat = resources.find((r) => r.resource === chatUrl);
      if (!chat) problems.push(`resources (${resources.map((r) => JSON.stringify(r.resource)).join(", ") || "none"}) do not list the chat completion resource ${chatUrl}`);
      else {
        if (chat.method !== "POST") problems.push(`the chat resource's method is ${JSON.stringify(chat.method)}, not POST`);
        const accepts = Array.isArray(chat.accepts) ? (chat.accepts as Array<Record<string, unknown>>) : [];
        const a = accepts[0];
        if (!a) problems.push("the chat resource has no accepts entry");
        else {
          if (a.scheme !== "exact" || typeof a.network !== "string" || evmChainId(a.network) === undefined) problems.push(`its accepts entry is not exact on an eip155 network: ${JSON.stringify(a).slice(0, 200)}`);
          if (typeof a.maxTimeoutSeconds !== "number" || a.maxTimeoutSeconds < 300) problems.push(`its maxTimeoutSeconds is ${JSON.stringify(a.maxTimeoutSeconds)}, below 300`);
          if ("amount" in a) problems.push("its accepts entry carries an amount; a request's amount is quoted per request");
          if (typeof a.payTo !== "string" || !ADDRESS.test(a.payTo) || typeof a.asset !== "string" || !ADDRESS.test(a.asset)) problems.push("its accepts entry lacks an EVM payTo or asset");
        }
        const ext = chat.extensions as { bazaar?: unknown } | undefined;
        if (typeof ext?.bazaar !== "object" || ext.bazaar === null) problems.push("the chat resource has no bazaar extension (SRP-PAY-023)");
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
      if (!key) throw new SkipCheck("needs --x402-payer-key (the private key of a wallet holding the hub's x402 token) to pay one request");
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
        if (doc.success !== true) problems.push(`PAYMENT-RESPONSE says success ${String(doc.success)}${doc.errorReason ? ` (${doc.errorReason})` : ""}`);
        if (doc.network !== offer.network) problems.push(`PAYMENT-RESPONSE's network ${doc.network} is not the offer's ${offer.network}`);
        if (doc.transaction.length === 0) problems.push("PAYMENT-RESPONSE names no transaction");
        if (doc.payer !== undefined && doc.payer.toLowerCase() !== payer.address.toLowerCase()) problems.push(`PAYMENT-RESPONSE's payer ${doc.payer} is not ${payer.address}`);
      } catch (error) {
        problems.push(`PAYMENT-RESPONSE does not decode: ${(error as Error).message}`);
      }
      const again = await refused(ctx, target, header, 402, "payment.replayed", "the same PAYMENT-SIGNATURE sent again");
      if (again) problems.push(again);
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
