/**
 * `POST /v1/payouts/solana` (SRP-PAY-034): a provider account takes its payable earnings (what
 * a voucher of `POST /v1/payouts/voucher` would cover) on Solana, as an SPL `TransferChecked`
 * from the Solana treasury to an address it proves is its own, at most the Solana money the hub
 * holds. The earnings leave the books first (the same `payout` movement a voucher makes, so
 * neither path pays them again), then the transfer; they are given back only when the transfer
 * surely did not land.
 */
import { SrpError } from "@srp/core";
import type { AccountStore } from "../accounts.js";
import type { PaymentRail } from "../payments/rail.js";
import type { SolanaPayoutBook } from "../storage/payout-book.js";
import type { WalletBook } from "../storage/wallet-book.js";
import { authenticate, errorResponse, fail, readJsonObject } from "./http.js";
import { money } from "./money.js";
import { pickSolanaRail, readSolanaSignedBody, SOLANA_PAYOUT_MESSAGE, verifySolanaMessage } from "./solana-proof.js";

/** Path of the Solana payout endpoint. */
export const SOLANA_PAYOUT_PATH = "/v1/payouts/solana";

/** What the Solana payout route needs. */
export interface SolanaPayoutApiContext {
  /** The hub id payout messages must name. */
  hubId: string;
  accounts: AccountStore;
  /** Payout books; absent when storage keeps none (then the route is 404). */
  payouts: SolanaPayoutBook | undefined;
  /** Nonces; absent when storage keeps no wallets (then the route is 404). */
  wallets: WalletBook | undefined;
  /** The hub's payment rails (the Solana ones pay). */
  rails(): readonly PaymentRail[];
  /** Resolves when the ledger has reconciled at start. */
  ledgerReady: Promise<void>;
  /** Largest request body accepted. */
  maxBodyBytes: number;
  /** Reports a storage (or chain) failure an answer cannot carry. */
  storageError(what: string, error: unknown): void;
}

/**
 * `POST /v1/payouts/solana` with the account's API key and `{ message, signature, address,
 * network? }`: `message` is `solanaPayoutMessage(hubId, accountId, nonce)` with a nonce from
 * `GET /v1/auth/nonce`, `signature` the base58 Ed25519 signature of its UTF-8 bytes by
 * `address`. Answers `{ object: "srp.solana_payout", account_id, address, network, amount,
 * transaction }` (`transaction` null when there was nothing to pay). Errors: 403
 * `auth.bad_account_proof` (not `address`'s signature, or another account's message), 401
 * `auth.wrong_hub`, 401 `auth.replayed_nonce`, 400 `api.invalid_body` (also: `address` has no
 * token account for the mint), 503 `payment.unavailable` (no Solana treasury key; the hub holds
 * less Solana money than the payable amount, nothing moved; or the transfer surely failed,
 * the earnings payable again), 503 `payment.settlement_pending` (the transfer's outcome is unknown).
 */
export async function postSolanaPayout(request: Request, ctx: SolanaPayoutApiContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  const { payouts, wallets } = ctx;
  if (!payouts || !wallets) return fail("api.not_found", "this hub keeps no payout books");
  const body = await readJsonObject(request, ctx.maxBodyBytes);
  if (body instanceof SrpError) return errorResponse(body);
  const shape =
    "a Solana payout is `{ message, signature, address, network? }`: the payout text, its base58 Ed25519 signature (64 bytes), the base58 address (32 bytes) that signed it and is paid, and optionally the CAIP-2 network to pay on";
  const signed = readSolanaSignedBody(body, shape);
  if (signed instanceof Response) return signed;
  const { message, address, network, proof } = signed;
  const m = SOLANA_PAYOUT_MESSAGE.exec(message);
  if (!m) return fail("api.invalid_body", "`message` is `SRP payout\\nhub: <hubId>\\naccount: <accountId>\\nnonce: <nonce>`");
  const [, hubId, accountId, nonce] = m as unknown as [string, string, string, string];
  if (hubId !== ctx.hubId) return fail("auth.wrong_hub", `the payout is addressed to hub ${hubId}, not this one`);
  if (accountId !== account.id)
    return fail("auth.bad_account_proof", `the message names account ${accountId}, not the API key's account ${account.id}`);
  if (!verifySolanaMessage(message, proof))
    return fail("auth.bad_account_proof", `the signature is not ${address}'s signature of the message`);
  const rail = pickSolanaRail(ctx.rails(), network, "payouts");
  if (rail instanceof Response) return rail;
  const transfers = rail.refunds;
  if (!transfers) return fail("payment.unavailable", `this hub has no treasury key to pay out on ${rail.network}`);
  const short = (payable: bigint, held: bigint) =>
    fail(
      "payment.unavailable",
      `the hub holds ${held} units on ${rail.network}, less than the ${payable} units payable: take them with a voucher (POST /v1/payouts/voucher) or retry once more Solana money has come in`,
    );

  // Everything that can be checked before the nonce is consumed: then the provider can fix it and ask again.
  try {
    const why = await transfers.receivable(address);
    if (why !== undefined) return fail("api.invalid_body", `the payout cannot be paid: ${why}`);
  } catch (error) {
    ctx.storageError(`payout ${nonce}: read ${address}'s token account on ${rail.network}`, error);
    return fail("payment.unavailable", `the chain (${rail.network}) cannot be read now; retry shortly`);
  }
  let taken: Awaited<ReturnType<SolanaPayoutBook["takeSolana"]>>;
  try {
    await ctx.ledgerReady;
    const [payable, held] = await Promise.all([payouts.payable(account.id), payouts.solanaHeld(rail.network)]);
    if (payable > held) return short(payable, held);
    if (!(await wallets.consumeNonce(nonce)))
      return fail("auth.replayed_nonce", "the nonce is unknown, expired or already used; get a fresh one from GET /v1/auth/nonce");
    // The books let the earnings go, checking again under their lock that the hub holds them on Solana.
    taken = await payouts.takeSolana({ accountId: account.id, payee: address, network: rail.network, nonce, proof: signed.signature });
  } catch (error) {
    ctx.storageError("solana payout", error);
    return fail("billing.unavailable", "the ledger cannot pay out now; retry shortly");
  }
  if ("refused" in taken) return short(taken.payable, taken.held);
  const answer = (transaction: string | null) =>
    Response.json({
      object: "srp.solana_payout",
      account_id: account.id,
      address,
      network: rail.network,
      amount: money(taken.amount),
      transaction,
    });
  const row = taken.taken;
  if (!row) return answer(null);

  // Now the chain. A transfer that surely did not happen gives the earnings back.
  const paid = await transfers.pay(address, row.amount, nonce, "payout");
  if (paid.outcome === "paid") {
    try {
      await payouts.paidSolana(row.id, paid.transaction);
    } catch (error) {
      // The money moved and the books already say so; only the transaction's id is not recorded.
      ctx.storageError(`payout ${row.id}: record its transaction ${paid.transaction}`, error);
    }
    return answer(paid.transaction);
  }
  if (paid.outcome === "failed") {
    let back = "the earnings are payable again";
    try {
      await payouts.reverseSolana(row.id, paid.reason);
    } catch (error) {
      ctx.storageError(`give back the failed payout ${row.id} of ${row.amount} units to ${account.id}`, error);
      back = "the hub's operator gives the earnings back";
    }
    return fail("payment.unavailable", `the payout could not be paid on-chain (${paid.reason}); ${back}`);
  }
  // May have been sent: giving it back could pay twice. The operator reconciles it by its transaction.
  ctx.storageError(
    `payout ${row.id} (${nonce}) of ${row.amount} units to ${address} on ${rail.network}: ${paid.transaction ? `transaction ${paid.transaction}` : "the transfer"} has an unknown outcome`,
    new Error(paid.reason),
  );
  if (paid.transaction) {
    try {
      await payouts.paidSolana(row.id, paid.transaction, true);
    } catch (error) {
      ctx.storageError(`payout ${row.id}: record its pending transaction ${paid.transaction}`, error);
    }
  }
  return errorResponse(
    new SrpError(
      "payment.settlement_pending",
      `the payout transfer${paid.transaction ? ` ${paid.transaction}` : ""} may have been sent but its outcome is not known yet; the hub's operator reconciles it`,
      paid.transaction ? { details: { transaction: paid.transaction } } : undefined,
    ),
  );
}
