/**
 * Prepaid balances from the chain. `POST /v1/futures/deposit` is an x402 resource whose
 * price is the amount asked: paid (and settled before the answer), it becomes prepaid
 * balance of the paying wallet's account, which earns the prepaid discount tiers on that
 * account's requests. `POST /v1/futures/refund` pays the account's unused prepaid balance
 * back on-chain from the hub's treasury, to a wallet of the account that signed for it: an
 * EVM wallet on the EVM network, a Solana payer on Solana (SRP-PAY-033).
 */
import { formatUsdc, SrpError } from "@srp/core";
import { decodeSettlementResponse, paymentHeaderOf } from "@srp/core/x402";
import { recoverMessageAddress } from "viem";
import type { AccountStore } from "../accounts.js";
import { RefundPendingError } from "../ledger/errors.js";
import type { LedgerBooks } from "../ledger/ledger.js";
import type { PaymentRail } from "../payments/rail.js";
import type { X402Payments } from "../payments/x402-flow.js";
import { EIP3009_ABI, isRevert, type ChainReader, type ChainWriter } from "../payments/authorization-settlers.js";
import type { PaidResource } from "../payments/x402-policy.js";
import type { WalletBook } from "../storage/wallet-book.js";
import { money } from "./account.js";
import { errorResponse, fail, readJsonObject } from "./http.js";
import { walletKey } from "../storage/payment-book.js";
import { pickSolanaRail, readSolanaSignedBody, verifySolanaMessage } from "./solana-proof.js";

/** Path of the deposit resource. */
export const DEPOSIT_PATH = "/v1/futures/deposit";

/** Smallest and largest deposit, atomic units (1e-6 USDC .. 1,000,000 USDC). */
export const DEPOSIT_LIMITS = { min: 1n, max: 1_000_000_000_000n } as const;

/** What the futures routes need from their hub. */
export interface FuturesApiContext {
  /** The hub id refund messages must name. */
  hubId: string;
  accounts: AccountStore;
  /** x402 payments; absent when the hub takes none (then deposits are 404). */
  payments: X402Payments | undefined;
  /** The ledger's books; absent when the hub bills nobody. */
  books: LedgerBooks | undefined;
  /** Refund nonces; absent when storage keeps no wallets. */
  wallets: WalletBook | undefined;
  /** The treasury's wallet client, which pays refunds; absent: refunds are `payment.unavailable`. */
  treasury: ChainWriter | undefined;
  /** Reads the chain (the settler's client): waits for refund transfers; absent: refunds are `payment.unavailable`. */
  chain: ChainReader | undefined;
  /** The token refunds are paid in (the x402 asset). */
  asset: string | undefined;
  /** The hub's public base URL for a request (no trailing slash). */
  baseUrl(request: Request): string;
  /** Largest request body accepted. */
  maxBodyBytes: number;
  /** Resolves when the ledger has reconciled at start. */
  ledgerReady: Promise<void>;
  /** Reports a storage (or chain) failure an answer cannot carry. */
  storageError(what: string, error: unknown): void;
  /** How long a refund waits for its transfer's receipt; default 60 s. */
  refundTimeoutMs?: number;
  /** When each Solana address was last refunded (a refund costs the hub's fee payer a fee: at most one per interval). */
  recentSolanaRefunds?: Map<string, number>;
}

/** The least time between two Solana refunds to one address (each costs the hub's fee payer a transaction fee). */
export const SOLANA_REFUND_INTERVAL_MS = 10 * 60_000;

/** The deposit endpoint as an x402 resource (its `bazaar` discovery entry). */
export function depositResource(url: string): PaidResource {
  return {
    url,
    description:
      "A deposit of prepaid balance to the paying wallet's account: the amount asked (atomic USDC units), settled before the answer. Prepaid balance pays for requests at the prepaid discount tiers and is refundable (POST /v1/futures/refund).",
    mimeType: "application/json",
    method: "POST",
    example: { amount: "10000000" },
  };
}

const AMOUNT = /^[1-9][0-9]{0,12}$/;

/**
 * `POST /v1/futures/deposit` with `{ amount: "<atomic units>" }` (1 .. 10^12), no API key.
 * Without `PAYMENT-SIGNATURE`: 402 quoting exactly `amount`. With it: the payment is
 * verified and settled first, credited to the payer's wallet account as prepaid balance,
 * and the answer (with `PAYMENT-RESPONSE`) is `{ object: "srp.deposit", account_id,
 * address, amount, balance, prepaid, discount_bps, transaction }`, amounts as
 * `{ units, usd }`.
 */
export async function postDeposit(request: Request, ctx: FuturesApiContext): Promise<Response> {
  const payments = ctx.payments;
  const books = ctx.books;
  if (!payments || !books) return fail("api.not_found", "this hub takes no x402 deposits");
  const body = await readJsonObject(request, ctx.maxBodyBytes);
  if (body instanceof SrpError) return errorResponse(body);
  const amount = typeof body.amount === "string" && AMOUNT.test(body.amount) ? BigInt(body.amount) : undefined;
  if (amount === undefined || amount < DEPOSIT_LIMITS.min || amount > DEPOSIT_LIMITS.max) {
    return fail("api.invalid_body", `\`amount\` is a decimal string of atomic USDC units, ${DEPOSIT_LIMITS.min} to ${DEPOSIT_LIMITS.max}`);
  }
  const resource = depositResource(`${ctx.baseUrl(request)}${DEPOSIT_PATH}`);
  const header = paymentHeaderOf(request.headers);
  if (header === undefined) {
    return payments.required(
      amount,
      resource,
      new SrpError("payment.required", `a deposit of ${formatUsdc(amount)} USD (${amount} units): pay it with x402 (PAYMENT-SIGNATURE)`),
    );
  }
  let paymentResponse: string;
  let responseHeader: string;
  let accountId: string;
  let payer: string;
  let debtRepaid = 0n;
  try {
    await ctx.ledgerReady;
    // A deposit always settles before it is answered: the money is on-chain before it is balance.
    // A wallet blocked by a debt may deposit: the deposit repays the debt first.
    const admitted = await payments.admit(header, amount, resource.url, { mode: "before", debtorMayPay: true });
    if (admitted instanceof SrpError)
      return admitted.httpStatus === 402 ? payments.required(amount, resource, admitted) : errorResponse(admitted);
    // The admission credited the payment to the wallet's account already.
    paymentResponse = await admitted.finish(true);
    responseHeader = admitted.responseHeader;
    accountId = admitted.accountId;
    debtRepaid = await payments.repayDebts(accountId);
    payer = walletKey(admitted.payment.payer); // an EVM address lowercase, a Solana one as given
  } catch (error) {
    ctx.storageError("x402 deposit", error);
    return fail("payment.unavailable", "the hub cannot take payments now; retry shortly");
  }
  const headers = { [responseHeader]: paymentResponse, "Access-Control-Expose-Headers": responseHeader };
  let transaction: string | null = null;
  try {
    transaction = decodeSettlementResponse(paymentResponse).transaction || null;
  } catch {
    // the header is ours; a transaction unknown after a reconciliation stays null
  }
  let s: Awaited<ReturnType<typeof books.summary>> | undefined;
  try {
    s = await books.summary(accountId);
  } catch (error) {
    // The deposit is made; only the summary could not be read.
    ctx.storageError("deposit summary", error);
  }
  return Response.json(
    {
      object: "srp.deposit",
      account_id: accountId,
      address: payer,
      amount: money(amount),
      debt_repaid: money(debtRepaid),
      balance: s ? money(s.balance) : null,
      prepaid: s ? money(s.prepaid) : null,
      discount_bps: s ? s.discountBps : null,
      transaction,
    },
    { headers },
  );
}

/** The fields of a refund message (`refundMessage(hubId, accountId, nonce)`). */
const REFUND_MESSAGE = /^SRP refund\nhub: (\S+)\naccount: (\S+)\nnonce: ([A-Za-z0-9]{8,64})$/;
const SIGNATURE = /^0x(?:[0-9a-fA-F]{128}|[0-9a-fA-F]{130})$/;
/**
 * `POST /v1/futures/refund` with `{ message, signature }`: `message` is
 * `refundMessage(hubId, accountId, nonce)` with a nonce from `GET /v1/auth/nonce`, signed
 * (EIP-191) by a wallet bound to the account. The account's unused prepaid balance (less card
 * money still refundable to cards, SRP-BIL-021) leaves the books and is transferred on-chain from the treasury to that wallet. Answers
 * `{ object: "srp.refund", account_id, address, amount, transaction }` (`transaction`
 * null when there was nothing to refund). Errors: 503 `payment.unavailable` (no treasury,
 * or the transfer failed: the amount is credited back), 409 `billing.refund_pending`
 * (an x402 credit is not settled yet), 403 `auth.bad_account_proof` (not signed by a
 * wallet of the account), 401 `auth.replayed_nonce`, 401 `auth.wrong_hub`.
 *
 * A Solana payer's refund (SRP-PAY-033) is `{ message, signature, address, network? }`: the
 * same message, `signature` the base58 Ed25519 signature of its UTF-8 bytes by `address`, the
 * base58 address the account's x402 payments came from; it is paid back on Solana
 * ({@link PaymentRail.refunds}). A signature that does not start with `0x` is a Solana one.
 */
export async function postFuturesRefund(request: Request, ctx: FuturesApiContext): Promise<Response> {
  const books = ctx.books;
  const wallets = ctx.wallets;
  if (!books || !wallets) return fail("api.not_found", "this hub keeps no prepaid balances to refund");
  const body = await readJsonObject(request, ctx.maxBodyBytes);
  if (!(body instanceof SrpError) && typeof body.signature === "string" && !body.signature.startsWith("0x"))
    return solanaRefund(body, ctx, books, wallets);
  const { treasury, chain, asset } = ctx;
  if (!treasury || !chain || !asset)
    return fail("payment.unavailable", "this hub has no treasury wallet (and chain client) to pay refunds on-chain");
  if (body instanceof SrpError) return errorResponse(body);
  if (typeof body.message !== "string" || typeof body.signature !== "string" || !SIGNATURE.test(body.signature)) {
    return fail("api.invalid_body", "the body is `{ message, signature }`: the refund text and its 0x-prefixed EIP-191 signature");
  }
  const m = REFUND_MESSAGE.exec(body.message);
  if (!m) return fail("api.invalid_body", "`message` is `SRP refund\\nhub: <hubId>\\naccount: <accountId>\\nnonce: <nonce>`");
  const [, hubId, accountId, nonce] = m as unknown as [string, string, string, string];
  if (hubId !== ctx.hubId) return fail("auth.wrong_hub", `the refund is addressed to hub ${hubId}, not this one`);
  let signer: `0x${string}`;
  try {
    signer = await recoverMessageAddress({ message: body.message, signature: body.signature as `0x${string}` });
  } catch {
    return fail("auth.bad_account_proof", "the signature does not recover to a wallet");
  }
  const address = signer.toLowerCase();
  const taken = await takeRefund(ctx, books, wallets, { accountId, nonce, address });
  if (taken instanceof Response) return taken;
  const amount = taken;
  const answer = (transaction: string | null) =>
    Response.json({ object: "srp.refund", account_id: accountId, address, amount: money(amount), transaction });
  if (amount === 0n) return answer(null);

  // The books have let the money go; now the chain. A transfer that surely did not happen is credited back.
  const creditBack = (why: string) => creditRefundBack(ctx, books, { accountId, nonce, address, amount }, why);
  let hash: `0x${string}`;
  try {
    hash = await treasury.writeContract({
      address: asset as `0x${string}`,
      abi: EIP3009_ABI,
      functionName: "transfer",
      args: [signer, amount],
      chain: treasury.chain ?? null,
    });
  } catch (error) {
    if (isRevert(error)) return creditBack(`the transfer was refused: ${short(error)}`);
    // Not a refusal by the chain (a time-out, a dropped connection): it may have been sent, so it is not credited back.
    ctx.storageError(`refund ${nonce} of ${amount} units to ${address}: the transfer may have been sent`, error);
    return errorResponse(
      new SrpError(
        "payment.settlement_pending",
        "the refund transfer may have been sent; its outcome is not known, and the hub's operator reconciles it",
      ),
    );
  }
  let status: "success" | "reverted";
  try {
    status = (await chain.waitForTransactionReceipt({ hash, timeout: ctx.refundTimeoutMs ?? 60_000 })).status;
  } catch (error) {
    // Sent, outcome unknown: crediting back could pay twice. The operator reconciles it by its hash.
    ctx.storageError(`refund ${nonce} of ${amount} units to ${address}: transfer ${hash} has an unknown outcome`, error);
    return errorResponse(
      new SrpError(
        "payment.settlement_pending",
        `the refund transfer ${hash} was sent but its outcome is not known yet; the hub's operator reconciles it`,
        { details: { transaction: hash } },
      ),
    );
  }
  if (status !== "success") return creditBack(`transfer ${hash} reverted`);
  return answer(hash);
}

/** Who a refund is for: the account, the nonce it consumes, and the wallet paid back. */
interface RefundParty {
  accountId: string;
  nonce: string;
  /** The wallet as the books key it (an EVM address lowercase, a Solana one as given). */
  address: string;
  /**
   * The Solana network the refund is paid on, recorded in its postings' memos: the Solana money
   * the hub holds counts it as gone (SRP-PAY-034). Absent on the EVM network.
   */
  network?: string;
}

/**
 * The part of a refund after its signature: the signer must be a wallet of the account;
 * then `ready` (a check that must pass before anything is consumed, or the answer refusing
 * the refund), the nonce is consumed and the refundable prepaid balance leaves the books.
 * The amount taken, or the answer to give.
 */
async function takeRefund(
  ctx: FuturesApiContext,
  books: LedgerBooks,
  wallets: WalletBook,
  { accountId, nonce, address, network }: RefundParty,
  ready?: () => Promise<Response | undefined>,
): Promise<bigint | Response> {
  try {
    const owner = await ctx.accounts.findByWallet(address);
    if (owner?.id !== accountId)
      return fail("auth.bad_account_proof", `the refund is signed by ${address}, which is not a wallet of account ${accountId}`);
    const refused = await ready?.();
    if (refused) return refused;
    if (!(await wallets.consumeNonce(nonce)))
      return fail("auth.replayed_nonce", "the nonce is unknown, expired or already used; get a fresh one from GET /v1/auth/nonce");
    await ctx.ledgerReady;
    return await books.refund(accountId, nonce, network === undefined ? undefined : { network, to: address });
  } catch (error) {
    if (error instanceof RefundPendingError) {
      return fail("billing.refund_pending", "a payment credited to this account has not settled on-chain yet; refund after it settles");
    }
    ctx.storageError("refund", error);
    return fail("billing.unavailable", "the ledger cannot refund now; retry shortly");
  }
}

/** Credits back a refund whose transfer surely did not happen, and answers 503 `payment.unavailable`. */
async function creditRefundBack(
  ctx: FuturesApiContext,
  books: LedgerBooks,
  { accountId, nonce, address, network, amount }: RefundParty & { amount: bigint },
  why: string,
): Promise<Response> {
  try {
    await books.deposit(accountId, amount, `refund-failed:${nonce}`, {
      reason: why.slice(0, 200),
      to: address,
      ...(network === undefined ? {} : { network }),
    });
  } catch (error) {
    ctx.storageError(`credit back the failed refund ${nonce} of ${amount} units to ${accountId}`, error);
  }
  return fail("payment.unavailable", `the refund could not be paid on-chain (${why}); the amount is back in the account's prepaid balance`);
}

/**
 * A Solana payer's refund (SRP-PAY-033): `{ message, signature, address, network? }`, the
 * signature verified as Ed25519 over the message's UTF-8 bytes with `address` as the public
 * key; the account is the one `address` is bound to by its x402 payments. The refund leaves
 * the books, then the rail transfers it from the treasury's token account to the payer's
 * associated token account, which must exist (checked before anything is consumed).
 */
async function solanaRefund(
  body: Record<string, unknown>,
  ctx: FuturesApiContext,
  books: LedgerBooks,
  wallets: WalletBook,
): Promise<Response> {
  const shape =
    "a Solana refund is `{ message, signature, address, network? }`: the refund text, its base58 Ed25519 signature, the base58 address that signed it, and optionally the CAIP-2 network it was paid on";
  const signed = readSolanaSignedBody(body, shape, `${shape} (a signature of 64 bytes, an address of 32)`);
  if (signed instanceof Response) return signed;
  const { message, address, network, proof } = signed;
  const rail = pickSolanaRail(ctx.payments?.rails ?? [], network, "refunds");
  if (rail instanceof Response) return rail;
  const refunds = rail.refunds;
  if (!refunds) return fail("payment.unavailable", `this hub has no treasury key to pay refunds on ${rail.network}`);

  const m = REFUND_MESSAGE.exec(message);
  if (!m) return fail("api.invalid_body", "`message` is `SRP refund\\nhub: <hubId>\\naccount: <accountId>\\nnonce: <nonce>`");
  const [, hubId, accountId, nonce] = m as unknown as [string, string, string, string];
  if (hubId !== ctx.hubId) return fail("auth.wrong_hub", `the refund is addressed to hub ${hubId}, not this one`);
  if (!verifySolanaMessage(message, proof))
    return fail("auth.bad_account_proof", `the signature is not ${address}'s signature of the message`);

  const party: RefundParty = { accountId, nonce, address: walletKey(address), network: rail.network };
  // The payer must be able to receive the token before anything is consumed: then it can fix that and ask again.
  const receivable = async (): Promise<Response | undefined> => {
    let why: string | undefined;
    try {
      why = await refunds.receivable(address);
    } catch (error) {
      ctx.storageError(`refund ${nonce}: read ${address}'s token account on ${rail.network}`, error);
      return fail("payment.unavailable", `the chain (${rail.network}) cannot be read now; retry shortly`);
    }
    return why === undefined ? undefined : fail("api.invalid_body", `the refund cannot be paid: ${why}`);
  };
  // A deposit-and-refund loop would spend the fee payer's SOL for free: one refund per address per interval.
  const last = ctx.recentSolanaRefunds?.get(party.address);
  // Only for the address's own account: a stranger naming another account id learns nothing of its balance.
  const own = async () => (await ctx.accounts.findByWallet(party.address).catch(() => undefined))?.id === accountId;
  if (last !== undefined && Date.now() - last < SOLANA_REFUND_INTERVAL_MS && (await own())) {
    const waitMs = SOLANA_REFUND_INTERVAL_MS - (Date.now() - last);
    const open = await books.summary(accountId).then(
      (s) => s.balance,
      () => 1n,
    );
    if (open > 0n)
      return fail("api.rate_limited", `${party.address} was refunded on Solana a moment ago; retry in ${Math.ceil(waitMs / 1000)} s`, {
        "retry-after": String(Math.ceil(waitMs / 1000)),
      });
  }
  const taken = await takeRefund(ctx, books, wallets, party, receivable);
  if (taken instanceof Response) return taken;
  const amount = taken;

  const answer = (transaction: string | null) =>
    Response.json({ object: "srp.refund", account_id: accountId, address: party.address, amount: money(amount), transaction });
  if (amount === 0n) return answer(null);

  // The books have let the money go; now the chain. A transfer that surely did not happen is credited back.
  const paid = await refunds.pay(address, amount, nonce);
  // A transfer that went out (or may have) counts against the interval; one that surely did not, does not.
  if (paid.outcome !== "failed" && ctx.recentSolanaRefunds) {
    ctx.recentSolanaRefunds.set(party.address, Date.now());
    if (ctx.recentSolanaRefunds.size > 10_000) ctx.recentSolanaRefunds.delete(ctx.recentSolanaRefunds.keys().next().value as string);
  }
  if (paid.outcome === "paid") return answer(paid.transaction);
  if (paid.outcome === "failed") return creditRefundBack(ctx, books, { ...party, amount }, paid.reason);
  // May have been sent: crediting back could pay twice. The operator reconciles it by its transaction.
  ctx.storageError(
    `refund ${nonce} of ${amount} units to ${address} on ${rail.network}: ${paid.transaction ? `transaction ${paid.transaction}` : "the transfer"} has an unknown outcome`,
    new Error(paid.reason),
  );
  return errorResponse(
    new SrpError(
      "payment.settlement_pending",
      `the refund transfer${paid.transaction ? ` ${paid.transaction}` : ""} may have been sent but its outcome is not known yet; the hub's operator reconciles it`,
      paid.transaction ? { details: { transaction: paid.transaction } } : undefined,
    ),
  );
}

function short(error: unknown): string {
  const e = error as { shortMessage?: unknown; message?: unknown };
  return String(e?.shortMessage ?? e?.message ?? error).slice(0, 200);
}
