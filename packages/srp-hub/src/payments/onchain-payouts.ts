/**
 * Paying providers on-chain through the SrpSettlement contract. The hub issues EIP-712
 * vouchers carrying each payee's running total (the contract pays the difference since the
 * last claim, plus the protocol's 10 % alongside), moves the money into the contract from
 * its treasury, and either submits one batch for many providers (`srp-hub payouts run`) or
 * hands a provider its voucher to claim itself (`srp-provider claim`).
 */
import { parseEventLogs, type LocalAccount } from "viem";
import { signPayout, srpSettlementAbi } from "@srp/core/chain";
import { ledgerId } from "../ledger/ledger.js";
import type { PayoutRecord, SqlPayoutBook } from "../storage/payout-book.js";
import { EIP3009_ABI, isRevert, type ChainReader, type ChainWriter } from "./authorization-settlers.js";

/** What on-chain payouts need. */
export interface OnchainPayoutsOptions {
  /** Reads the chain. */
  publicClient: ChainReader;
  /** The treasury: moves payout money into the contract and submits batches (pays their gas). */
  treasury: ChainWriter;
  /** The hub key the contract accepts vouchers from (its `signer`). */
  signer: LocalAccount;
  /** The SrpSettlement contract. */
  settlement: `0x${string}`;
  /** The token it pays in (USDC). */
  token: `0x${string}`;
  chainId: number;
  /** The payout book (a `SqlStore`'s `payouts`). */
  book: SqlPayoutBook;
  /** The wallet an account is paid to (its payout wallet, else its sign-in wallet); undefined: not paid on-chain. */
  payee(accountId: string): Promise<string | undefined>;
  /** Smallest amount worth a voucher, atomic units; default 1. */
  minimum?: bigint;
}

/** A voucher as a provider claims it. */
export interface PayoutVoucherView {
  payee: string;
  total: string;
  amount: string;
  fee: string;
  signature: string;
  settlement: string;
  chain_id: number;
  token: string;
  funded_tx: string | null;
}

/** What a batch run did. */
export interface PayoutRun {
  /** Vouchers issued now. */
  issued: PayoutRecord[];
  /** The transaction that moved their money (and any earlier unfunded vouchers') into the contract. */
  fundingTx: string | null;
  /** The claimBatch transaction. */
  batchTx: string | null;
  /** Paid per payee by the batch, from the contract's `Claimed` events. */
  paid: Array<{ payee: string; total: bigint; provider: bigint; protocol: bigint }>;
}

/**
 * What on-chain payouts did (the hub's `payout` event): a voucher `issued` to an account
 * (`amount` its provider's share, `fee` the protocol's), vouchers' money `funded` into the
 * contract (`amount` with the fees), or a batch `claimed` by the hub (`amount` the providers'
 * shares the contract paid). A provider's own claim happens on-chain, not here.
 */
export type PayoutEvent =
  | { kind: "issued"; accountId: string; payee: string; amount: bigint; fee: bigint }
  | { kind: "funded"; vouchers: number; amount: bigint; transaction: string }
  | { kind: "claimed"; vouchers: number; amount: bigint; transaction: string };

/** On-chain payouts of a hub. */
export class OnchainPayouts {
  readonly #o: OnchainPayoutsOptions;
  readonly #listeners = new Set<(event: PayoutEvent) => void>();

  constructor(options: OnchainPayoutsOptions) {
    this.#o = options;
  }

  /** Calls `listener` with each {@link PayoutEvent} (a hub passed these payouts reports them); returns the function that stops it. */
  watch(listener: (event: PayoutEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #report(event: PayoutEvent): void {
    for (const l of this.#listeners) l(event);
  }

  /** The voucher view a provider claims with. */
  view(r: PayoutRecord): PayoutVoucherView {
    return {
      payee: r.payee,
      total: r.total.toString(),
      amount: r.amount.toString(),
      fee: r.fee.toString(),
      signature: r.signature,
      settlement: r.settlement,
      chain_id: r.chainId,
      token: this.#o.token,
      funded_tx: r.fundedTx,
    };
  }

  async #issue(accountId: string): Promise<PayoutRecord | undefined> {
    const payee = await this.#o.payee(accountId);
    if (!payee) return undefined;
    const issued = await this.#o.book.issue(
      {
        accountId,
        payee,
        settlement: this.#o.settlement,
        chainId: this.#o.chainId,
        sign: (p, total) =>
          signPayout(this.#o.signer, { chainId: this.#o.chainId, settlement: this.#o.settlement, payee: p as `0x${string}`, total }),
      },
      this.#o.minimum ?? 1n,
    );
    if (issued) this.#report({ kind: "issued", accountId, payee: issued.payee, amount: issued.amount, fee: issued.fee });
    return issued;
  }

  /**
   * Moves the money of every unfunded voucher into the contract in one transfer. The
   * vouchers are claimed in the database first, so two fundings never move the same money:
   * a transfer refused before it was sent gives them back; one whose fate is unknown (sent,
   * no receipt) keeps them claimed as `pending:…` for the operator to check on-chain.
   */
  fund(): Promise<string | null> {
    const run = this.#funding.then(() => this.#fund());
    this.#funding = run.catch(() => undefined);
    return run;
  }

  #funding: Promise<unknown> = Promise.resolve();

  async #fund(): Promise<string | null> {
    const marker = `pending:${ledgerId("fund")}`;
    const due = await this.#o.book.claimUnfunded(this.#o.settlement, marker);
    if (due.length === 0) return null;
    const sum = due.reduce((s, r) => s + r.amount + r.fee, 0n);
    let hash: `0x${string}`;
    try {
      hash = await this.#o.treasury.writeContract({
        address: this.#o.token,
        abi: EIP3009_ABI,
        functionName: "transfer",
        args: [this.#o.settlement, sum],
        chain: this.#o.treasury.chain ?? null,
      });
    } catch (error) {
      // Refused by the chain: nothing was sent. Anything else may have been sent: the claim stays, never a second transfer.
      if (isRevert(error)) await this.#o.book.releaseClaim(marker);
      throw error;
    }
    const receipt = await this.#o.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") {
      await this.#o.book.releaseClaim(marker);
      throw new Error(`funding transfer ${hash} reverted`);
    }
    await this.#o.book.markFunded(marker, hash);
    this.#report({ kind: "funded", vouchers: due.length, amount: sum, transaction: hash });
    return hash;
  }

  /**
   * A voucher for an account to claim itself: a new one for what it can be paid now, funded
   * at once, else its newest earlier one (which still pays whatever it has not claimed).
   */
  async voucher(accountId: string): Promise<PayoutVoucherView | undefined> {
    const issued = await this.#issue(accountId);
    if (issued) {
      const tx = await this.fund();
      return this.view({ ...issued, fundedTx: tx ?? issued.fundedTx });
    }
    const latest = await this.#o.book.latest(accountId, this.#o.settlement);
    const newest = latest.at(-1);
    return newest ? this.view(newest) : undefined;
  }

  /** Pays every provider owed at least the minimum in one batch transaction. */
  async run(): Promise<PayoutRun> {
    const issued: PayoutRecord[] = [];
    for (const accountId of await this.#o.book.candidates(this.#o.minimum ?? 1n)) {
      const r = await this.#issue(accountId);
      if (r) issued.push(r);
    }
    const fundingTx = await this.fund();
    if (issued.length === 0) return { issued, fundingTx, batchTx: null, paid: [] };
    // The newest voucher of each payee pays everything it is owed.
    const newest = new Map<string, PayoutRecord>();
    for (const r of issued) if ((newest.get(r.payee)?.total ?? -1n) < r.total) newest.set(r.payee, r);
    const list = [...newest.values()];
    const hash = await this.#o.treasury.writeContract({
      address: this.#o.settlement,
      abi: srpSettlementAbi,
      functionName: "claimBatch",
      args: [list.map((r) => r.payee as `0x${string}`), list.map((r) => r.total), list.map((r) => r.signature as `0x${string}`)],
      chain: this.#o.treasury.chain ?? null,
    });
    const receipt = await this.#o.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`claimBatch ${hash} reverted`);
    await this.#o.book.markClaimed(
      issued.map((r) => r.id),
      hash,
    );
    const paid = parseEventLogs({ abi: srpSettlementAbi, eventName: "Claimed", logs: receipt.logs }).map((l) => ({
      payee: l.args.payee.toLowerCase(),
      total: l.args.total,
      provider: l.args.providerAmount,
      protocol: l.args.protocolAmount,
    }));
    this.#report({ kind: "claimed", vouchers: list.length, amount: paid.reduce((s, p) => s + p.provider, 0n), transaction: hash });
    return { issued, fundingTx, batchTx: hash, paid };
  }
}
