/**
 * On-chain payouts in the books. A payout takes a provider's withdrawable earnings (its
 * balance beyond prepaid money, at most what it earned and was not yet paid) and the
 * protocol's matching share out of the hub's books in one ledger posting (`payout`), and
 * records the hub-signed voucher that lets the settlement contract pay both. Vouchers carry
 * running totals per payee wallet, so the newest one pays everything owed so far.
 *
 * Earnings may instead be paid on Solana (SRP-PAY-034): the same `payout` posting and a
 * `payouts` row whose `settlement` is the Solana network's CAIP-2 id (`chain_id` 0, no
 * protocol share moved, `signature` the provider's proof of its address), so both paths
 * subtract it from what is payable. A Solana payout is at most the Solana money the hub holds:
 * settled Solana payments in, less Solana refunds and payouts out.
 */
import { protocolShare } from "@srp/core/chain";
import { EXTERNAL, ledgerId, PLATFORM, post, userAccount } from "../ledger/ledger.js";
import { prepaidOf } from "../ledger/policy.js";
import { big, int, newestFirst, text, type PageCursor, type SqlDriver, type SqlExecutor, type SqlRow } from "./sql.js";

/** A payout voucher as stored. */
export interface PayoutRecord {
  id: string;
  accountId: string;
  /** The wallet paid (lowercase). */
  payee: string;
  /** Paid to the provider by this voucher (beyond the previous one). */
  amount: bigint;
  /** Paid to the protocol alongside. */
  fee: bigint;
  /** The payee's running total: what the contract pays it in all, with this voucher. */
  total: bigint;
  /** The hub's EIP-712 signature over `Payout(payee, total)`. */
  signature: string;
  settlement: string;
  chainId: number;
  /** The transaction that moved the money into the settlement contract, once funded. */
  fundedTx: string | null;
  /** The batch transaction that claimed it, when the hub submitted it. */
  claimTx: string | null;
  createdAt: number;
}

function record(r: SqlRow): PayoutRecord {
  return {
    id: String(r.id),
    accountId: String(r.account_id),
    payee: String(r.payee),
    amount: big(r.amount),
    fee: big(r.fee),
    total: big(r.total),
    signature: String(r.signature),
    settlement: String(r.settlement),
    chainId: int(r.chain_id),
    fundedTx: text(r.funded_tx),
    claimTx: text(r.claim_tx),
    createdAt: int(r.created_at),
  };
}

/** Lists vouchers for the admin API (`GET /admin/v1/payouts`); a `SqlStore`'s `payouts` is one. */
export interface PayoutList {
  /** Vouchers of every account newest first (by creation, then id), at most `limit` (1..500), those strictly before `before` when given. */
  page(limit: number, before?: { createdAt: number; id: string }): Promise<PayoutRecord[]>;
}

/** What a voucher is for. */
export interface PayoutTarget {
  accountId: string;
  payee: string;
  settlement: string;
  chainId: number;
  /** Signs `Payout(payee, total)` for the settlement contract. */
  sign(payee: string, total: bigint): Promise<string>;
}

/** A payout on Solana, as {@link SolanaPayoutBook.takeSolana} asks for it. */
export interface SolanaPayoutTarget {
  accountId: string;
  /** The base58 address paid (as given: base58 is case-sensitive). */
  payee: string;
  /** The Solana network's CAIP-2 id. */
  network: string;
  /** The nonce of the provider's proof (the transfer's memo names it). */
  nonce: string;
  /** The provider's base58 Ed25519 signature of its payout message, kept as the row's `signature`. */
  proof: string;
}

/** What taking a Solana payout came to: the row and amount taken (0n: nothing to pay), or a refusal because the hub holds too little there. */
export type SolanaPayoutTake =
  | { taken: PayoutRecord | undefined; amount: bigint }
  | { refused: "insufficient"; payable: bigint; held: bigint };

/** Provider payouts on Solana (SRP-PAY-034); a `SqlStore`'s `payouts` is one. */
export interface SolanaPayoutBook {
  /** What the account can be paid now (on any network): {@link SqlPayoutBook.payable}. */
  payable(accountId: string): Promise<bigint>;
  /** The Solana money the hub holds on `network`: settled payments in, less refunds and payouts out there. */
  solanaHeld(network: string): Promise<bigint>;
  /**
   * Takes what the account can be paid now out of the books for a Solana transfer, in one
   * transaction with the check that the hub holds that much on the network: the `payout`
   * posting and its row (`funded_tx` `pending:<id>` until {@link paidSolana}).
   */
  takeSolana(target: SolanaPayoutTarget): Promise<SolanaPayoutTake>;
  /** Records the transfer that paid it (or, `pending`, the one whose outcome is unknown). */
  paidSolana(id: string, transaction: string, pending?: boolean): Promise<void>;
  /** Gives a payout whose transfer surely did not land back to the account: a reversing posting, and its row is removed. */
  reverseSolana(id: string, reason: string): Promise<boolean>;
}

/** Whether a storage's payout book also pays on Solana (a `SqlStore`'s does). */
export function isSolanaPayoutBook(value: unknown): value is SolanaPayoutBook {
  const v = value as Partial<SolanaPayoutBook> | null | undefined;
  return typeof v?.takeSolana === "function" && typeof v.solanaHeld === "function" && typeof v.reverseSolana === "function";
}

/** The payouts of a `SqlStore`. */
export class SqlPayoutBook implements PayoutList, SolanaPayoutBook {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;

  /** @param ready resolves once the store's migrations have run. */
  constructor(db: SqlDriver, ready: Promise<void>) {
    this.#db = db;
    this.#ready = ready;
  }

  /** What an account can be paid now: earnings not yet paid out, at most its balance beyond prepaid money. */
  async payable(accountId: string): Promise<bigint> {
    await this.#ready;
    return this.#payable(this.#db, accountId);
  }

  /** Accounts that earned at least `minimum` not yet paid out. */
  async candidates(minimum: bigint): Promise<string[]> {
    await this.#ready;
    const rows = await this.#db.all(
      `SELECT r.provider_account_id AS account_id FROM receipts r
        GROUP BY r.provider_account_id
       HAVING SUM(r.provider_share) - COALESCE((SELECT SUM(p.amount) FROM payouts p WHERE p.account_id = r.provider_account_id), 0) >= ?
        ORDER BY r.provider_account_id`,
      [minimum],
    );
    return rows.map((r) => String(r.account_id));
  }

  /**
   * Issues a voucher for what the account can be paid now (when at least `minimum`): one
   * transaction posts the payout (provider's balance and the protocol's share out to the
   * chain) and stores the signed voucher. Undefined when there is too little to pay.
   */
  async issue(target: PayoutTarget, minimum = 1n): Promise<PayoutRecord | undefined> {
    await this.#ready;
    const payee = target.payee.toLowerCase();
    const settlement = target.settlement.toLowerCase();
    return this.#db.transaction(async (tx) => {
      const user = userAccount(target.accountId);
      // One payout of an account at a time (PostgreSQL: the row lock; SQLite: one writer).
      if (this.#db.dialect === "postgres") await tx.all("SELECT id FROM ledger_accounts WHERE id = ? FOR UPDATE", [user]);
      const amount = await this.#payable(tx, target.accountId);
      if (amount < minimum || amount === 0n) return undefined;
      const last = await tx.all("SELECT MAX(total) AS t FROM payouts WHERE settlement = ? AND payee = ?", [settlement, payee]);
      const previous = last[0] && last[0].t !== null ? big(last[0].t) : 0n;
      const total = previous + amount;
      const fee = protocolShare(total) - protocolShare(previous);
      const id = ledgerId("payout");
      const now = Date.now();
      await post(
        tx,
        {
          idempotencyKey: `payout:${id}`,
          kind: "payout",
          accountId: target.accountId,
          ref: id,
          memo: { payee, total: total.toString(), fee: fee.toString(), settlement, chainId: target.chainId },
          legs: [
            { account: user, amount: -amount },
            { account: PLATFORM, amount: -fee },
            { account: EXTERNAL, amount: amount + fee },
          ],
        },
        { now, dialect: this.#db.dialect },
      );
      const signature = await target.sign(payee, total);
      await tx.run(
        "INSERT INTO payouts (id, account_id, payee, amount, fee, total, signature, settlement, chain_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [id, target.accountId, payee, amount, fee, total, signature, settlement, target.chainId, now],
      );
      return {
        id,
        accountId: target.accountId,
        payee,
        amount,
        fee,
        total,
        signature,
        settlement,
        chainId: target.chainId,
        fundedTx: null,
        claimTx: null,
        createdAt: now,
      };
    });
  }

  async solanaHeld(network: string): Promise<bigint> {
    await this.#ready;
    return this.#solanaHeld(this.#db, network);
  }

  /** {@link solanaHeld} inside a transaction. */
  async #solanaHeld(tx: SqlExecutor, network: string): Promise<bigint> {
    const paidIn = await tx.all("SELECT COALESCE(SUM(amount), 0) AS s FROM x402_payments WHERE network = ? AND state = 'settled'", [
      network,
    ]);
    // Refunds paid on the network (their postings name it), less those credited back because the transfer failed. The
    // memo is matched as the text our JSON.stringify wrote (`"network":"<id>"`), never parsed: one memo that is not
    // valid JSON for the database (a NUL, a lone surrogate in a reason) cannot stop every payout. Inside a JSON string
    // value that text is escaped, so it cannot match by accident.
    const contains = this.#db.dialect === "postgres" ? "strpos(t.memo, ?) > 0" : "instr(t.memo, ?) > 0";
    const refunded = await tx.all(
      `SELECT COALESCE(SUM(e.amount), 0) AS s FROM ledger_transactions t JOIN ledger_entries e ON e.tx_id = t.id AND e.account_id = ?
        WHERE (t.kind = 'refund' OR (t.kind = 'deposit' AND t.idempotency_key LIKE 'deposit:refund-failed:%'))
          AND t.memo IS NOT NULL AND ${contains}`,
      [EXTERNAL, `"network":${JSON.stringify(network)}`],
    );
    const paidOut = await tx.all("SELECT COALESCE(SUM(amount + fee), 0) AS s FROM payouts WHERE settlement = ?", [network]);
    return big(paidIn[0]!.s) - big(refunded[0]!.s) - big(paidOut[0]!.s);
  }

  async takeSolana(target: SolanaPayoutTarget): Promise<SolanaPayoutTake> {
    await this.#ready;
    const { accountId, payee, network } = target;
    return this.#db.transaction(async (tx): Promise<SolanaPayoutTake> => {
      const user = userAccount(accountId);
      // One payout of an account at a time, and one movement of the hub's outside money at a
      // time, so that two payouts never both count the same Solana money (PostgreSQL: the row
      // locks, the account's first as `issue` takes it; SQLite: one writer).
      // In id order, as every posting locks them (no deadlock with a deposit into the same account).
      if (this.#db.dialect === "postgres")
        await tx.all("SELECT id FROM ledger_accounts WHERE id IN (?, ?) ORDER BY id FOR UPDATE", [user, EXTERNAL]);
      const amount = await this.#payable(tx, accountId);
      if (amount === 0n) return { taken: undefined, amount: 0n };
      const held = await this.#solanaHeld(tx, network);
      if (amount > held) return { refused: "insufficient", payable: amount, held };
      const last = await tx.all("SELECT MAX(total) AS t FROM payouts WHERE settlement = ? AND payee = ?", [network, payee]);
      const total = (last[0] && last[0].t !== null ? big(last[0].t) : 0n) + amount;
      const id = ledgerId("payout");
      const now = Date.now();
      // The same movement as a voucher's, without the protocol's share: it stays with the hub on Solana.
      await post(
        tx,
        {
          idempotencyKey: `payout:${id}`,
          kind: "payout",
          accountId,
          ref: id,
          memo: { payee, total: total.toString(), fee: "0", settlement: network, network, nonce: target.nonce },
          legs: [
            { account: user, amount: -amount },
            { account: EXTERNAL, amount },
          ],
        },
        { now, dialect: this.#db.dialect },
      );
      const pending = `pending:${id}`;
      await tx.run(
        "INSERT INTO payouts (id, account_id, payee, amount, fee, total, signature, settlement, chain_id, funded_tx, created_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, 0, ?, ?)",
        [id, accountId, payee, amount, total, target.proof, network, pending, now],
      );
      const taken: PayoutRecord = {
        id,
        accountId,
        payee,
        amount,
        fee: 0n,
        total,
        signature: target.proof,
        settlement: network,
        chainId: 0,
        fundedTx: pending,
        claimTx: null,
        createdAt: now,
      };
      return { taken, amount };
    });
  }

  async paidSolana(id: string, transaction: string, pending = false): Promise<void> {
    await this.#ready;
    if (pending) await this.#db.run("UPDATE payouts SET funded_tx = ? WHERE id = ?", [`pending:${transaction}`, id]);
    else await this.#db.run("UPDATE payouts SET funded_tx = ?, claim_tx = ? WHERE id = ?", [transaction, transaction, id]);
  }

  async reverseSolana(id: string, reason: string): Promise<boolean> {
    await this.#ready;
    return this.#db.transaction(async (tx) => {
      // Only a Solana payout whose transfer is not known to have landed: never an EVM voucher, never a paid transfer.
      const row = (
        await tx.all("SELECT * FROM payouts WHERE id = ? AND settlement LIKE 'solana:%' AND funded_tx LIKE 'pending:%'", [id])
      )[0];
      if (!row) return false;
      const r = record(row);
      await post(
        tx,
        {
          idempotencyKey: `payout_reversal:${id}`,
          kind: "payout_reversal",
          accountId: r.accountId,
          ref: id,
          memo: { reason: reason.slice(0, 200), payee: r.payee, settlement: r.settlement },
          legs: [
            { account: EXTERNAL, amount: -r.amount },
            { account: userAccount(r.accountId), amount: r.amount },
          ],
        },
        { dialect: this.#db.dialect },
      );
      // The earnings are payable again: the row no longer counts as paid out.
      await tx.run("DELETE FROM payouts WHERE id = ?", [id]);
      return true;
    });
  }

  /** {@link payable} inside a transaction. */
  async #payable(tx: Pick<SqlDriver, "all">, accountId: string): Promise<bigint> {
    const acct = await tx.all("SELECT balance, funded FROM ledger_accounts WHERE id = ?", [userAccount(accountId)]);
    if (!acct[0]) return 0n;
    const balance = big(acct[0].balance);
    const funded = big(acct[0].funded);
    const prepaid = prepaidOf(balance, funded);
    const earned = await tx.all("SELECT COALESCE(SUM(provider_share), 0) AS s FROM receipts WHERE provider_account_id = ?", [accountId]);
    const paid = await tx.all("SELECT COALESCE(SUM(amount), 0) AS s FROM payouts WHERE account_id = ?", [accountId]);
    const owed = big(earned[0]!.s) - big(paid[0]!.s);
    const free = balance - prepaid;
    const p = owed < free ? owed : free;
    return p > 0n ? p : 0n;
  }

  /**
   * Claims the vouchers whose money has not been moved into the contract yet, marking them
   * with `marker` so that no other funding (this process or another) moves it again.
   */
  async claimUnfunded(settlement: string, marker: string): Promise<PayoutRecord[]> {
    await this.#ready;
    await this.#db.run("UPDATE payouts SET funded_tx = ? WHERE settlement = ? AND funded_tx IS NULL", [marker, settlement.toLowerCase()]);
    return (await this.#db.all("SELECT * FROM payouts WHERE funded_tx = ? ORDER BY created_at, id", [marker])).map(record);
  }

  /** Records the transaction that funded the vouchers claimed with `marker`. */
  async markFunded(marker: string, txHash: string): Promise<void> {
    await this.#ready;
    await this.#db.run("UPDATE payouts SET funded_tx = ? WHERE funded_tx = ?", [txHash, marker]);
  }

  /** Gives claimed vouchers back to a later funding (the transfer was refused before it was sent). */
  async releaseClaim(marker: string): Promise<void> {
    await this.#ready;
    await this.#db.run("UPDATE payouts SET funded_tx = NULL WHERE funded_tx = ?", [marker]);
  }

  /** Records the batch transaction that claimed these vouchers. */
  async markClaimed(ids: readonly string[], txHash: string): Promise<void> {
    await this.#ready;
    for (const id of ids) await this.#db.run("UPDATE payouts SET claim_tx = ? WHERE id = ?", [txHash, id]);
  }

  /** The newest voucher of each payee of an account (the one that pays everything so far). */
  async latest(accountId: string, settlement: string): Promise<PayoutRecord[]> {
    await this.#ready;
    const rows = await this.#db.all(
      `SELECT p.* FROM payouts p WHERE p.account_id = ? AND p.settlement = ?
         AND p.total = (SELECT MAX(q.total) FROM payouts q WHERE q.settlement = p.settlement AND q.payee = p.payee) ORDER BY p.created_at`,
      [accountId, settlement.toLowerCase()],
    );
    return rows.map(record);
  }

  async page(limit: number, before?: PageCursor): Promise<PayoutRecord[]> {
    await this.#ready;
    return (await newestFirst(this.#db, "payouts", limit, before)).map(record);
  }

  /** An account's vouchers, newest first. */
  async list(accountId: string, limit = 100): Promise<PayoutRecord[]> {
    await this.#ready;
    return (
      await this.#db.all("SELECT * FROM payouts WHERE account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?", [
        accountId,
        Math.max(1, Math.min(limit, 1000)),
      ])
    ).map(record);
  }
}
