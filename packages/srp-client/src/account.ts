/**
 * The client's account and wallet: the balance (`GET /v1/account`), wallet sign-in for an
 * API key (`GET /v1/auth/nonce`, `POST /v1/auth/wallet`), deposits paid with x402
 * (`POST /v1/futures/deposit`) and refunds signed by the wallet (`POST /v1/futures/refund`).
 */
import { refundMessage } from "@srp/core";
import type { Payer } from "./payment.js";
import type { HubTransport } from "./transport.js";
import type { AccountBalance, WalletSession, X402Client, X402Deposit, X402Refund } from "./types.js";
import { signInMessage, type X402Options, type X402Policy } from "./wallet-signing.js";

/** The account side of a client. */
export interface ClientAccount {
  /** The account's money. */
  balance(): Promise<AccountBalance>;
  /** Gets a key for a call that needs one: a client with a wallet and no key signs in (once, however many ask). */
  ensureKey(): Promise<void>;
  /** Deposits, sign-in and refunds with the wallet. */
  x402: X402Client;
}

/** The wallet, or the `TypeError` a client without one throws. */
function needWallet(wallet: X402Options | undefined): X402Options {
  if (!wallet) throw new TypeError("this client has no wallet: pass `x402: { account }` to createClient");
  return wallet;
}

/** The account side of a client of `hub`; `limits` are the wallet's networks and assets, which deposits keep to. */
export function createAccount(hub: HubTransport, payer: Payer, wallet: X402Options | undefined, limits: X402Policy): ClientAccount {
  let session: WalletSession | undefined;
  let signingIn: Promise<WalletSession> | undefined;

  const nonce = async (signal?: AbortSignal): Promise<string> =>
    (await hub.getJson<{ nonce: string }>("/v1/auth/nonce", { "cache-control": "no-store" }, signal)).nonce;

  const signIn = async (init: { signal?: AbortSignal } = {}): Promise<WalletSession> => {
    const { account } = needWallet(wallet);
    const [id, fresh] = await Promise.all([payer.chainId(init.signal), nonce(init.signal)]);
    const message = await signInMessage({ hub: hub.base, address: account.address, chainId: id, nonce: fresh });
    const signature = await account.signMessage({ message });
    const s = await hub.postJson<WalletSession>("/v1/auth/wallet", { message, signature }, init.signal);
    session = s;
    hub.useKey(s.api_key);
    return s;
  };

  const ensureKey = async (): Promise<void> => {
    if (hub.hasKey() || !wallet) return;
    await (signingIn ??= signIn().finally(() => {
      signingIn = undefined;
    }));
  };

  const balance = async (): Promise<AccountBalance> => {
    await ensureKey();
    return hub.getJson<AccountBalance>("/v1/account", hub.auth());
  };

  async function deposit(amount: bigint, init: { signal?: AbortSignal } = {}): Promise<X402Deposit> {
    needWallet(wallet);
    if (typeof amount !== "bigint" || amount <= 0n) throw new RangeError("a deposit is a positive bigint of atomic USDC units");
    const { res, payment } = await payer.post(
      "/v1/futures/deposit",
      JSON.stringify({ amount: amount.toString() }),
      init.signal,
      { ...limits, amount },
      false,
    );
    const body = (await res.json()) as X402Deposit;
    return { ...body, ...(payment ? { payment } : {}) };
  }

  async function refund(init: { signal?: AbortSignal } = {}): Promise<X402Refund> {
    const { account } = needWallet(wallet);
    const accountId = session?.account_id ?? (hub.hasKey() ? (await balance()).id : (await signIn(init)).account_id);
    const [d, fresh] = await Promise.all([hub.discovery(), nonce(init.signal)]);
    const message = refundMessage(d.hubId, accountId, fresh);
    const signature = await account.signMessage({ message });
    return hub.postJson<X402Refund>("/v1/futures/refund", { message, signature }, init.signal);
  }

  return { balance, ensureKey, x402: { deposit, signIn, refund } };
}
