/**
 * The harness as an x402 payer in hub mode (spec/v1/payments.md): finding a hub that takes
 * x402 and a model to pay for, unauthenticated requests and their 402 quotes, EIP-3009
 * payments built right or wrong on purpose, and what is wrong with a hub's refusal.
 */
import {
  decodePaymentPayload,
  decodePaymentRequired,
  encodeX402Header,
  evmChainId,
  type PaymentRequired,
  type PaymentRequirements,
} from "@srp/core/x402";
import { authorizationNonce, transferWithAuthorizationTypes } from "@srp/core/chain";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { bodyText, within, type ConsumerCall } from "./consumer.js";
import { discovery, type DiscoveryLike, type HubContext } from "./hub-session.js";
import { ASK, instance, isJob, newModel } from "./instances.js";
import { HarnessNode } from "./node.js";
import { fail, skip } from "./verdict.js";

/** An EVM address. */
export const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
/** A decimal string of atomic units. */
export const UNITS = /^(0|[1-9][0-9]*)$/;

/** The hub's discovery document and consumer base URL, or a skip when it takes no x402 payments. */
export async function x402Hub(ctx: HubContext): Promise<{ doc: DiscoveryLike; consumer: string }> {
  const doc = await discovery(ctx);
  if (!Array.isArray(doc.payments) || !doc.payments.includes("x402")) {
    skip(`the discovery document's payments (${JSON.stringify(doc.payments ?? [])}) do not include x402 (SRP-PAY-001)`);
  }
  if (doc.consumer && !doc.consumer.surfaces.includes("openai.chat.completions")) {
    skip("the discovery document does not list the openai.chat.completions consumer surface, the resource x402 checks pay for");
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

/** The hub, and what to pay for on it: a model of the harness's node with an account key, else a model the hub lists. */
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
  if (!model)
    skip("a 402 needs a model online: pass --account-key (the harness then offers one) or run against a hub with a provider online");
  return { doc, consumer, node: undefined, body: { model, messages: ASK, max_tokens: 8 } };
}

/** Posts a chat completion without an API key, optionally with a `PAYMENT-SIGNATURE` (or, with `header`, a version-1 `X-PAYMENT`). */
export function postUnauthenticated(
  ctx: HubContext,
  target: PaidTarget,
  payment?: string,
  header: "payment-signature" | "x-payment" = "payment-signature",
): ConsumerCall {
  const controller = new AbortController();
  const response = fetch(`${target.consumer}/chat/completions`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      ...(payment === undefined ? {} : { [header]: payment }),
    },
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

/** An answer in a few words, for details: its status, and its code or the start of its body. */
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
  if (!offer)
    fail(`PAYMENT-REQUIRED accepts no exact requirements on an eip155 network: ${JSON.stringify(required.accepts).slice(0, 300)}`);
  return offer;
}

/** Asks for a request's price: the 402 of an unauthenticated request, decoded. */
export async function quote(
  ctx: HubContext,
  target: PaidTarget,
): Promise<{ answer: Answer; required: PaymentRequired; offer: PaymentRequirements }> {
  const answer = await unroutedAnswer(target, postUnauthenticated(ctx, target), "an unauthenticated chat completion");
  if (answer.status !== 402)
    fail(`an unauthenticated chat completion for a model online was answered ${shown(answer)}, not 402 (SRP-PAY-002)`);
  const required = requiredOf(answer, "an unauthenticated chat completion");
  return { answer, required, offer: exactOffer(required) };
}

/** How a payment is built, and what is wrong with it. */
export interface PaymentPlan {
  /** The wallet named as `from`. */
  payer: PrivateKeyAccount;
  /** The key that signs (default the payer). */
  signer?: PrivateKeyAccount;
  /** Changes to the echoed requirements (the authorization follows them unless `value` is given). */
  accepted?: Partial<PaymentRequirements>;
  /** `validBefore`, Unix seconds (default now + maxTimeoutSeconds). */
  validBefore?: bigint;
}

/** A fresh wallet holding nothing. */
export const throwaway = () => privateKeyToAccount(generatePrivateKey());

/** A `PAYMENT-SIGNATURE` value for `offer`, signed as EIP-3009 in the token's EIP-712 domain from `extra`. */
export async function paymentHeader(required: PaymentRequired, offer: PaymentRequirements, plan: PaymentPlan): Promise<string> {
  const accepted = { ...offer, ...plan.accepted };
  const chainId = evmChainId(offer.network);
  const name = offer.extra?.name;
  const version = offer.extra?.version;
  if (chainId === undefined) fail(`network ${offer.network} is not an eip155 network`);
  if (!ADDRESS.test(offer.asset) || !ADDRESS.test(offer.payTo)) fail(`asset ${offer.asset} or payTo ${offer.payTo} is not an EVM address`);
  if (typeof name !== "string" || typeof version !== "string")
    fail(`extra ${JSON.stringify(offer.extra)} does not name the token's EIP-712 domain (SRP-PAY-003)`);
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
    if (!doc.error?.startsWith(code))
      return `${what}: the fresh PAYMENT-REQUIRED's error ${JSON.stringify(doc.error)} does not begin with ${code} (SRP-PAY-005)`;
  } catch (error) {
    return `${what}: the fresh PAYMENT-REQUIRED does not decode: ${(error as Error).message}`;
  }
  return undefined;
}

/** The version-1 `X-PAYMENT` value carrying the same payload as a version-2 `PAYMENT-SIGNATURE` value, naming `network`. */
export function asVersion1(header: string, network: string): string {
  const v2 = decodePaymentPayload(header);
  return encodeX402Header({ x402Version: 1, scheme: v2.accepted.scheme, network, payload: v2.payload });
}

/** Sends a payment the hub must refuse and returns what is wrong with its answer. */
export async function refused(
  ctx: HubContext,
  target: PaidTarget,
  header: string,
  status: number,
  code: string,
  what: string,
  name: "payment-signature" | "x-payment" = "payment-signature",
): Promise<string | undefined> {
  const a = await unroutedAnswer(target, postUnauthenticated(ctx, target, header, name), what);
  return refusalProblem(a, status, code, what);
}
