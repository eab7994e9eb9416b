/**
 * Paying for a request with x402 from the client's wallet: the first try (with the
 * account's key, when it has one), the hub's 402 and its `PAYMENT-REQUIRED` offer, the
 * requirements chosen within the wallet's limits, the signed retry (the same payment again
 * while its settlement is pending), and the settlement the hub reports. Also what the
 * client knows of the hub's x402 chain.
 */
import {
  decodePaymentRequired,
  decodeSettlementResponse,
  evmChainId,
  X402_HEADERS,
  type PaymentRequired,
  type PaymentRequirements,
} from "@srp/core/x402";
import { apiError, SrpApiError } from "./api-error.js";
import { discard, sleep, type HubTransport } from "./transport.js";
import { chooseRequirements, createPaymentSignature, type X402Options, type X402PaymentInfo, type X402Policy } from "./wallet-signing.js";

/** Waits before each new try of a payment whose settlement is pending (the same payment, never a new one). */
const PENDING_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15_000] as const;
/** How long, in all, a client keeps trying a pending payment. */
const PENDING_RETRY_BUDGET_MS = 30_000;

/** A response, and the x402 payment that bought it (if one did). */
export interface PaidResponse {
  res: Response;
  payment?: X402PaymentInfo;
}

/** Sends the request once more with these extra headers. */
type Send = (headers: Record<string, string>) => Promise<Response>;

/** The client's paying side. */
export interface Payer {
  /**
   * POSTs JSON to `path`. With `useKey` and a key, the account is billed; without (or when
   * the account cannot cover it), a 402 is paid with the wallet within `policy`, and sent
   * again with the signed payment. A pending settlement is retried with the same payment.
   */
  post(path: string, body: string, signal: AbortSignal | undefined, policy: X402Policy, useKey: boolean): Promise<PaidResponse>;
  /** The hub's x402 chain: from an offer seen, else from `/.well-known/x402`; a hub without x402 accepts any. */
  chainId(signal?: AbortSignal): Promise<number>;
}

/** The wallet's limits: `limits` (networks, assets) for every payment, `perRequest` adding its `maxAmount`. */
export function walletPolicies(wallet: X402Options | undefined): { limits: X402Policy; perRequest: X402Policy } {
  const limits: X402Policy = {
    ...(wallet?.networks ? { networks: wallet.networks } : {}),
    ...(wallet?.assets ? { assets: wallet.assets } : {}),
  };
  return { limits, perRequest: { ...limits, ...(wallet?.maxAmount !== undefined ? { maxAmount: wallet.maxAmount } : {}) } };
}

/** Tells the wallet's observer about a payment; an observer's failure does not undo it. */
function tell(wallet: X402Options, info: X402PaymentInfo): void {
  try {
    wallet.onPayment?.(info);
  } catch {
    // an observer's failure does not undo a payment
  }
}

/**
 * The first try: with the key when `useKey` (and again without it when the account cannot
 * cover the request and there is a wallet). Resolves with an ok response or a 402 to pay;
 * throws the hub's error otherwise.
 */
async function firstTry(send: Send, hub: HubTransport, wallet: X402Options | undefined, useKey: boolean): Promise<Response> {
  const keyed = useKey && hub.hasKey();
  let res = await send(useKey ? hub.auth() : {});
  if (res.ok) return res;
  if (!wallet || res.status !== 402) throw await apiError(res);
  if (keyed) {
    // The account cannot cover this request: the wallet pays for it instead.
    const refused = await apiError(res);
    if (refused.code !== "billing.insufficient_credits") throw refused;
    res = await send({});
    if (res.ok) return res;
    if (res.status !== 402) throw await apiError(res);
  }
  return res;
}

/** The offer of a 402 (its `PAYMENT-REQUIRED` header, decoded); the body is dropped. */
async function paymentRequired(res: Response): Promise<PaymentRequired> {
  const header = res.headers.get(X402_HEADERS.required);
  if (header === null) throw await apiError(res);
  let required: PaymentRequired;
  try {
    required = decodePaymentRequired(header);
  } catch (error) {
    await discard(res);
    throw new SrpApiError(402, "payment.invalid", `the hub's ${X402_HEADERS.required} header does not decode: ${(error as Error).message}`);
  }
  await discard(res);
  return required;
}

/** Sends the signed payment, and the same payment again while the hub answers that its settlement is pending. */
async function sendPaid(send: Send, payment: string, signal: AbortSignal | undefined): Promise<Response> {
  const started = Date.now();
  let res = await send({ [X402_HEADERS.signature]: payment });
  // The settlement's outcome is not known yet: the same payment again, never a new one (that could pay twice).
  for (let tries = 1; res.status === 503; tries++) {
    const pending = await apiError(res);
    if (pending.code !== "payment.settlement_pending") throw pending;
    const delay = PENDING_RETRY_DELAYS_MS[tries - 1];
    const wait = delay === undefined ? undefined : Math.max(delay, (pending.retryAfter ?? 0) * 1000);
    if (wait === undefined || Date.now() - started + wait > PENDING_RETRY_BUDGET_MS) {
      throw new SrpApiError(
        503,
        pending.code,
        `${pending.message} (still pending after ${tries} tries; the hub reconciles it on-chain: money that moved is the wallet account's prepaid balance)`,
        pending.retryAfter,
      );
    }
    await sleep(wait, signal);
    res = await send({ [X402_HEADERS.signature]: payment });
  }
  return res;
}

/** The paid answer with its payment (and the hub's settlement, when it sent one); the wallet's observer hears of it. */
async function settled(wallet: X402Options, res: Response, requirements: PaymentRequirements): Promise<PaidResponse> {
  const settlement = res.headers.get(X402_HEADERS.response);
  const info: X402PaymentInfo = { requirements };
  if (settlement !== null) {
    try {
      info.response = decodeSettlementResponse(settlement);
    } catch {
      // not a settlement document: reported without it
    }
  }
  if (res.ok || settlement !== null) tell(wallet, info);
  if (!res.ok) throw await apiError(res);
  return { res, payment: info };
}

/** The paying side of a client of `hub`, with `wallet` (none: a 402 is thrown as the hub's error). */
export function createPayer(hub: HubTransport, wallet: X402Options | undefined): Payer {
  /** The x402 chain id, as last seen in a hub's offer. */
  let x402ChainId: number | undefined;

  async function post(
    path: string,
    body: string,
    signal: AbortSignal | undefined,
    policy: X402Policy,
    useKey: boolean,
  ): Promise<PaidResponse> {
    const send: Send = (headers) =>
      hub.request(path, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
        ...(signal ? { signal } : {}),
      });
    const res = await firstTry(send, hub, wallet, useKey);
    if (res.ok || !wallet) return { res };
    const required = await paymentRequired(res);
    const choice = chooseRequirements(required, policy);
    if ("reason" in choice) throw new SrpApiError(402, "payment.required", `${choice.reason}; nothing was signed`);
    const { requirements } = choice;
    x402ChainId = evmChainId(requirements.network) ?? x402ChainId;
    const payment = await createPaymentSignature(wallet.account, required, requirements);
    return settled(wallet, await sendPaid(send, payment, signal), requirements);
  }

  async function chainId(signal?: AbortSignal): Promise<number> {
    if (x402ChainId !== undefined) return x402ChainId;
    const allowed = wallet?.networks;
    const res = await hub.request("/.well-known/x402", signal ? { signal } : {});
    if (res.ok) {
      const x402 = (await res.json()) as { resources?: Array<{ accepts?: Array<{ network?: unknown }> }> };
      for (const r of x402.resources ?? []) {
        for (const a of r.accepts ?? []) {
          if (typeof a.network !== "string" || (allowed && !allowed.includes(a.network))) continue;
          const id = evmChainId(a.network);
          if (id !== undefined) return (x402ChainId = id);
        }
      }
    } else {
      await discard(res);
    }
    return allowed?.map(evmChainId).find((id) => id !== undefined) ?? 1;
  }

  return { post, chainId };
}
