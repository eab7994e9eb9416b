/**
 * `POST /v1/payouts/voucher`: a provider account's voucher for the settlement contract, to
 * claim its earnings on-chain itself (`srp-provider claim`). A new voucher covers what the
 * account can be paid now and is funded at once; with nothing new to pay, the newest earlier
 * voucher is returned (it still pays whatever has not been claimed).
 */
import { SrpError } from "@srp/core";
import type { AccountStore } from "../accounts.js";
import type { OnchainPayouts } from "../payments/onchain-payouts.js";
import { authenticate, errorResponse, fail } from "./http.js";

/** What the payout route needs. */
export interface PayoutApiContext {
  accounts: AccountStore;
  payouts: OnchainPayouts | undefined;
  storageError(what: string, error: unknown): void;
}

/** `POST /v1/payouts/voucher`. */
export async function postPayoutVoucher(request: Request, ctx: PayoutApiContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  if (!ctx.payouts) return fail("payment.unavailable", "this hub does not pay out on-chain");
  try {
    const voucher = await ctx.payouts.voucher(account.id);
    if (!voucher) return fail("api.not_found", "nothing to pay out: no earnings beyond prepaid money, or no payout wallet bound");
    return Response.json({ object: "srp.payout_voucher", account_id: account.id, ...voucher });
  } catch (error) {
    ctx.storageError("payout voucher", error);
    return fail("payment.unavailable", "the payout could not be funded now; retry shortly");
  }
}
