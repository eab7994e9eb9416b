/**
 * Authorization settlers settle an x402 payment by executing the payer's EIP-3009
 * authorization on-chain (`spec/v1/payments.md`, "Settlement"); charging accounts and node
 * statements are the ledger's, not theirs. Two are built in: {@link directSettler} submits
 * EIP-3009 `transferWithAuthorization` itself with a hub key over any RPC URL, and
 * {@link facilitatorSettler} asks an x402 facilitator over its HTTP API (`/verify`,
 * `/settle`, `/supported`). Both report three outcomes for a settlement: settled, failed
 * for certain, or unknown (a time-out), which the hub reconciles on-chain and never turns
 * into a second charge.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  parseAbi,
  parseEventLogs,
  type Account,
  type Chain,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import type { ErrorCode } from "@srp/core";
import type { PaymentPayload, PaymentRequirements } from "@srp/core/x402";
import type { CheckedPayment } from "./x402-policy.js";

/** The EIP-3009 and ERC-20 functions a settler calls (USDC's own interface). */
export const EIP3009_ABI = parseAbi([
  "function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature)",
  "function authorizationState(address authorizer, bytes32 nonce) view returns (bool)",
  "function balanceOf(address account) view returns (uint256)",
  "function transfer(address to, uint256 value) returns (bool)",
  "event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)",
  "event Transfer(address indexed from, address indexed to, uint256 value)",
]);

/** The chain reads x402 payments and payouts make; any viem `PublicClient` is one. */
export interface ChainReader {
  /** Calls a view function. */
  readContract: PublicClient<Transport, Chain | undefined>["readContract"];
  /** Waits for a transaction's receipt. */
  waitForTransactionReceipt: PublicClient<Transport, Chain | undefined>["waitForTransactionReceipt"];
  /** Verifies a typed-data signature, by EOAs and contract wallets (ERC-1271, ERC-6492). */
  verifyTypedData: PublicClient<Transport, Chain | undefined>["verifyTypedData"];
  /** Reads event logs. */
  getLogs: PublicClient<Transport, Chain | undefined>["getLogs"];
  /** The latest block number. */
  getBlockNumber: PublicClient<Transport, Chain | undefined>["getBlockNumber"];
  /** A mined transaction's receipt. */
  getTransactionReceipt: PublicClient<Transport, Chain | undefined>["getTransactionReceipt"];
}

/** What the chain says of an authorization: it paid the hub (in `transaction`), it is unused, or its nonce was spent otherwise. */
export type AuthorizationOutcome = { state: "paid"; transaction: string } | { state: "unused" } | { state: "spent"; transaction?: string };

/** The authorization an outcome is asked for. */
export interface AuthorizationQuery {
  asset: string;
  payer: string;
  nonce: string;
  /** Who it must have paid, and how much. */
  payTo: string;
  amount: bigint;
}

/** How far back (blocks) the logs of a used authorization are looked for. */
const LOG_WINDOW_BLOCKS = 200_000n;

/**
 * Whether an authorization paid the hub. A used nonce alone proves nothing (the payer can
 * spend its own nonce with another authorization, to itself): the transaction that used it
 * must also carry the `Transfer` of the amount from the payer to `payTo` on the token.
 */
export async function authorizationOutcome(chain: ChainReader, q: AuthorizationQuery): Promise<AuthorizationOutcome> {
  const asset = q.asset as `0x${string}`;
  const used = await chain.readContract({
    address: asset,
    abi: EIP3009_ABI,
    functionName: "authorizationState",
    args: [q.payer as `0x${string}`, q.nonce as `0x${string}`],
  });
  if (!used) return { state: "unused" };
  const latest = await chain.getBlockNumber();
  const logs = await chain.getLogs({
    address: asset,
    event: AUTHORIZATION_USED,
    args: { authorizer: q.payer as `0x${string}`, nonce: q.nonce as `0x${string}` },
    fromBlock: latest > LOG_WINDOW_BLOCKS ? latest - LOG_WINDOW_BLOCKS : 0n,
    toBlock: latest,
  });
  const hash = logs[0]?.transactionHash;
  if (!hash) return { state: "spent" };
  const receipt = await chain.getTransactionReceipt({ hash });
  const paid = parseEventLogs({ abi: EIP3009_ABI, eventName: "Transfer", logs: receipt.logs }).some(
    (l) =>
      l.address.toLowerCase() === q.asset.toLowerCase() &&
      l.args.from.toLowerCase() === q.payer.toLowerCase() &&
      l.args.to.toLowerCase() === q.payTo.toLowerCase() &&
      l.args.value === q.amount,
  );
  return paid ? { state: "paid", transaction: hash } : { state: "spent", transaction: hash };
}

const AUTHORIZATION_USED = EIP3009_ABI.find((x) => x.type === "event" && x.name === "AuthorizationUsed") as Extract<
  (typeof EIP3009_ABI)[number],
  { type: "event"; name: "AuthorizationUsed" }
>;

/** The transactions x402 settlement and payouts send; any viem `WalletClient` with an account is one. */
export interface ChainWriter {
  /** The chain the client is for (its id goes into each transaction). */
  chain: Chain | undefined;
  /** Sends a contract call signed by the client's account. */
  writeContract: WalletClient<Transport, Chain | undefined, Account>["writeContract"];
}

/** A payment as a settler sees it: the checked authorization, and the documents for a facilitator. */
export interface SettleInput extends CheckedPayment {
  payment: PaymentPayload;
}

/** What a settler's pre-flight check found. */
export type PreflightResult = { ok: true } | { ok: false; code: ErrorCode; message: string };

/** What a settlement came to. `unknown`: submitted, outcome not known in time. */
export type SettleResult =
  | { outcome: "settled"; transaction: string }
  | { outcome: "failed"; reason: string }
  | { outcome: "unknown"; reason: string };

/** Moves x402 money on-chain. */
export interface Settler {
  /** For logs and the discovery document. */
  readonly name: string;
  /**
   * Checks what only the chain knows: the nonce is unused and the payer can cover the
   * value (and, for a facilitator, its own full verification). Stateless: the hub's
   * durable lock is what stops a second use.
   */
  preflight(input: SettleInput): Promise<PreflightResult>;
  /** Settles the authorization. Submitting an authorization twice is safe: the chain accepts it once. */
  settle(input: SettleInput): Promise<SettleResult>;
  /** What the chain says of this authorization (see {@link authorizationOutcome}); undefined when it cannot tell. */
  outcome(query: AuthorizationQuery): Promise<AuthorizationOutcome | undefined>;
  /** Verifies typed-data signatures with the chain's help (smart-contract wallets, ERC-1271); absent: EOA only. */
  readonly chain?: ChainReader;
}

/** Options of {@link directSettler}. */
export interface DirectSettlerOptions {
  /** Reads the chain. */
  publicClient: ChainReader;
  /** Signs and sends the settlement transactions (pays their gas). Its account need not be the treasury. */
  walletClient: ChainWriter;
  /** How long to wait for a settlement's receipt before calling its outcome unknown. Default 60 s. */
  confirmTimeoutMs?: number;
}

const message = (e: unknown) =>
  (e instanceof Error ? ((e as { shortMessage?: string }).shortMessage ?? e.message) : String(e)).slice(0, 500);

/** A settler that submits `transferWithAuthorization` itself, with a hub key. */
export function directSettler(options: DirectSettlerOptions): Settler {
  const { publicClient, walletClient } = options;
  const confirmTimeoutMs = options.confirmTimeoutMs ?? 60_000;
  const used = async (asset: string, payer: string, nonce: string) =>
    publicClient.readContract({
      address: asset as `0x${string}`,
      abi: EIP3009_ABI,
      functionName: "authorizationState",
      args: [payer as `0x${string}`, nonce as `0x${string}`],
    });
  return {
    name: "direct",
    chain: publicClient,
    async preflight({ authorization: a, requirements }) {
      try {
        const [isUsed, balance] = await Promise.all([
          used(requirements.asset, a.from, a.nonce),
          publicClient.readContract({
            address: requirements.asset as `0x${string}`,
            abi: EIP3009_ABI,
            functionName: "balanceOf",
            args: [a.from as `0x${string}`],
          }),
        ]);
        if (isUsed) return { ok: false, code: "payment.replayed", message: "the chain has already used this authorization" };
        if (balance < BigInt(a.value))
          return {
            ok: false,
            code: "payment.insufficient_funds",
            message: `the payer holds ${balance} units; the authorization is for ${a.value}`,
          };
        return { ok: true };
      } catch (error) {
        return { ok: false, code: "payment.unavailable", message: `the chain cannot be read: ${message(error)}` };
      }
    },
    async settle({ authorization: a, signature, requirements }) {
      const query = { asset: requirements.asset, payer: a.from, nonce: a.nonce, payTo: requirements.payTo, amount: BigInt(a.value) };
      /** After a refusal or a revert, the chain decides: paid (by an earlier submission), spent otherwise, or unused. */
      const decide = async (why: string, deterministic: boolean): Promise<SettleResult> => {
        const o = await authorizationOutcome(publicClient, query).catch(() => undefined);
        if (o === undefined) return { outcome: "unknown", reason: `${why}; the chain cannot be read` };
        if (o.state === "paid") return { outcome: "settled", transaction: o.transaction };
        if (o.state === "spent") return { outcome: "failed", reason: "the payer spent the authorization's nonce without paying the hub" };
        return deterministic ? { outcome: "failed", reason: why } : { outcome: "unknown", reason: why };
      };
      let hash: `0x${string}`;
      try {
        hash = await walletClient.writeContract({
          address: requirements.asset as `0x${string}`,
          abi: EIP3009_ABI,
          functionName: "transferWithAuthorization",
          args: [
            a.from as `0x${string}`,
            a.to as `0x${string}`,
            BigInt(a.value),
            BigInt(a.validAfter),
            BigInt(a.validBefore),
            a.nonce as `0x${string}`,
            signature,
          ],
          chain: walletClient.chain ?? null,
        });
      } catch (error) {
        // Refused before it was mined: a revert in simulation is definite, anything else (RPC trouble) is not.
        return decide(`submission refused: ${message(error)}`, isRevert(error));
      }
      try {
        const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: confirmTimeoutMs });
        if (receipt.status === "success") return { outcome: "settled", transaction: hash };
        return decide(`transaction ${hash} reverted`, true);
      } catch (error) {
        return { outcome: "unknown", reason: `transaction ${hash} not confirmed: ${message(error)}` };
      }
    },
    async outcome(query) {
      return authorizationOutcome(publicClient, query).catch(() => undefined);
    },
  };
}

/** Whether an error is the chain refusing the call (a revert), rather than trouble reaching it. */
export function isRevert(error: unknown): boolean {
  if (error instanceof BaseError)
    return error.walk((e) => e instanceof ContractFunctionRevertedError) !== null || /execution reverted|revert/i.test(error.message);
  return /execution reverted|revert/i.test(String(error));
}

/** Options of {@link facilitatorSettler}. */
export interface FacilitatorSettlerOptions {
  /** The facilitator's base URL (its `/verify`, `/settle` and `/supported` are under it). */
  url: string;
  /** Extra request headers (e.g. an API key). */
  headers?: Record<string, string>;
  /** Time allowed for `/settle`, after which the outcome is unknown. Default 60 s. */
  settleTimeoutMs?: number;
  /** Reads the chain to reconcile unknown outcomes; without it they stay unknown until the payer retries. */
  publicClient?: ChainReader;
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
}

/** How a facilitator's `invalidReason` / `errorReason` maps onto SRP codes. */
function facilitatorCode(reason: string | undefined): ErrorCode {
  const r = (reason ?? "").toLowerCase();
  if (r.includes("insufficient")) return "payment.insufficient_funds";
  if (r.includes("nonce") || r.includes("used")) return "payment.replayed";
  if (r.includes("signature")) return "payment.bad_signature";
  if (r.includes("expired") || r.includes("valid_before")) return "payment.expired";
  if (r.includes("valid_after")) return "payment.not_yet_valid";
  if (r.includes("recipient") || r.includes("pay_to")) return "payment.wrong_recipient";
  if (r.includes("value") || r.includes("amount")) return "payment.wrong_amount";
  if (r.includes("network") || r.includes("scheme")) return "payment.wrong_network";
  return "payment.bad_signature";
}

/** A settler that delegates to an x402 facilitator over its HTTP API. */
export function facilitatorSettler(options: FacilitatorSettlerOptions): Settler {
  const base = options.url.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const settleTimeoutMs = options.settleTimeoutMs ?? 60_000;
  const call = async (path: string, payment: PaymentPayload, requirements: PaymentRequirements, timeoutMs: number) => {
    const res = await doFetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...options.headers },
      body: JSON.stringify({ x402Version: 2, paymentPayload: payment, paymentRequirements: requirements }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new Error(`facilitator ${path} answered ${res.status} without JSON`);
    }
    return { status: res.status, body };
  };
  const publicClient = options.publicClient;
  return {
    name: "facilitator",
    ...(publicClient ? { chain: publicClient } : {}),
    async preflight({ payment, requirements }) {
      try {
        const { body } = await call("/verify", payment, requirements, 15_000);
        if (body.isValid === true) return { ok: true };
        const reason = typeof body.invalidReason === "string" ? body.invalidReason : "refused";
        return { ok: false, code: facilitatorCode(reason), message: `the facilitator refused the payment: ${reason}` };
      } catch (error) {
        return { ok: false, code: "payment.unavailable", message: `the facilitator cannot be reached: ${message(error)}` };
      }
    },
    async settle(input) {
      const { payment, requirements } = input;
      try {
        const { body } = await call("/settle", payment, requirements, settleTimeoutMs);
        if (body.success === true && typeof body.transaction === "string") return { outcome: "settled", transaction: body.transaction };
        const reason = typeof body.errorReason === "string" ? body.errorReason : "the facilitator could not settle";
        // A refusal may follow an earlier settlement of the same authorization: the chain decides, when it can be read.
        if (publicClient) {
          const o = await authorizationOutcome(publicClient, {
            asset: requirements.asset,
            payer: input.authorization.from,
            nonce: input.authorization.nonce,
            payTo: requirements.payTo,
            amount: BigInt(input.authorization.value),
          }).catch(() => undefined);
          if (o?.state === "paid") return { outcome: "settled", transaction: o.transaction };
          if (o === undefined) return { outcome: "unknown", reason: `${reason}; the chain cannot be read` };
        }
        return { outcome: "failed", reason };
      } catch (error) {
        return { outcome: "unknown", reason: `the facilitator did not answer: ${message(error)}` };
      }
    },
    async outcome(query) {
      if (!publicClient) return undefined;
      return authorizationOutcome(publicClient, query).catch(() => undefined);
    },
  };
}

/** What a facilitator's `GET /supported` lists. */
export interface FacilitatorSupported {
  kinds: Array<{ x402Version: number; scheme: string; network: string; extra?: Record<string, unknown> }>;
}

/** Reads a facilitator's `GET /supported`. */
export async function facilitatorSupported(url: string, doFetch: typeof fetch = fetch): Promise<FacilitatorSupported> {
  const res = await doFetch(`${url.replace(/\/+$/, "")}/supported`, { signal: AbortSignal.timeout(15_000) });
  if (!res.ok) throw new Error(`facilitator /supported answered ${res.status}`);
  const body = (await res.json()) as { kinds?: unknown };
  if (!Array.isArray(body.kinds)) throw new Error("facilitator /supported has no kinds");
  return body as FacilitatorSupported;
}
