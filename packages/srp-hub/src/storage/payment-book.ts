/**
 * {@link PaymentBook} on any {@link SqlDriver}: the `x402_payments` row of an
 * authorization is its durable lock (unique by network, asset, payer and nonce, so one
 * authorization can never buy two requests, even across hub processes or a restart),
 * and every movement of money it causes is a ledger posting in the same transaction as
 * the state change.
 */
import { LocalError } from "@srp/core";
import { newId } from "../accounts.js";
import { ledgerId, post, userAccount } from "../ledger/ledger.js";
import { prepaidOf } from "../ledger/policy.js";
import { debtRepaymentPosting, debtRepayments, x402CreditPosting, x402Reversal, x402ReversalPosting } from "../ledger/postings.js";
import {
  FAILED_PAYMENT_RETENTION_MS,
  type NewPayment,
  type PaymentBook,
  type PaymentRecord,
  type PaymentState,
  type SettleMode,
} from "../payments/book.js";
import { sweepInBatches } from "./wallet-book.js";
import { big, int, newestFirst, text, type PageCursor, type SqlDriver, type SqlExecutor, type SqlRow } from "./sql.js";

function record(r: SqlRow): PaymentRecord {
  return {
    id: String(r.id),
    network: String(r.network),
    asset: String(r.asset),
    payer: String(r.payer),
    nonce: String(r.nonce),
    amount: big(r.amount),
    validBefore: int(r.valid_before),
    accountId: String(r.account_id),
    mode: String(r.mode) as SettleMode,
    state: String(r.state) as PaymentState,
    credited: int(r.credited) === 1,
    served: int(r.served) === 1,
    txHash: text(r.tx_hash),
    error: text(r.error),
    resource: text(r.resource),
    payload: String(r.payload),
    createdAt: int(r.created_at),
    updatedAt: int(r.updated_at),
  };
}

/** Thrown inside a transaction to roll it back when a concurrent writer won a race (never leaves this module). */
class LostRaceError extends LocalError {
  override readonly name = "LostRaceError";
}

/**
 * A payment's asset, payer or nonce as the book keys it: lowercase on EVM networks (hex,
 * where case means nothing), as given elsewhere (Solana's base58, where case is the value).
 */
export function lockValue(network: string, value: string): string {
  return network.startsWith("eip155:") ? value.toLowerCase() : value;
}

/** A wallet address as the book keys it: an EVM address lowercase, any other (base58) as given. */
export function walletKey(address: string): string {
  return /^0x[0-9a-fA-F]{40}$/.test(address) ? address.toLowerCase() : address;
}

/** The x402 payment storage of a `SqlStore`. */
export class SqlPaymentBook implements PaymentBook {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;

  /** @param ready resolves once the store's migrations have run. */
  constructor(db: SqlDriver, ready: Promise<void>) {
    this.#db = db;
    this.#ready = ready;
  }

  #lockRow(tx: SqlExecutor, id: string): Promise<SqlRow[]> {
    return tx.all(`SELECT * FROM x402_payments WHERE id = ?${this.#db.dialect === "postgres" ? " FOR UPDATE" : ""}`, [id]);
  }

  async walletAccount(address: string): Promise<string> {
    await this.#ready;
    const wallet = walletKey(address);
    for (let attempt = 0; attempt < 3; attempt++) {
      const found = await this.#db.all("SELECT account_id FROM wallets WHERE address = ?", [wallet]);
      if (found[0]) return String(found[0].account_id);
      try {
        return await this.#db.transaction(async (tx) => {
          const id = newId("acct");
          const now = Date.now();
          await tx.run("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)", [id, wallet, now]);
          // A concurrent first payment from the same wallet may have bound it: then this account is rolled back.
          if (
            (await tx.run("INSERT INTO wallets (address, account_id, created_at) VALUES (?, ?, ?) ON CONFLICT (address) DO NOTHING", [
              wallet,
              id,
              now,
            ])) === 0
          )
            throw new LostRaceError("another payment bound this wallet first");
          return id;
        });
      } catch (error) {
        if (!(error instanceof LostRaceError) && !/unique|constraint/i.test(String((error as Error).message))) throw error;
      }
    }
    throw new Error(`could not create the account of wallet ${wallet}`);
  }

  async lock(p: NewPayment): Promise<{ locked: boolean; record: PaymentRecord }> {
    await this.#ready;
    const id = ledgerId("pay");
    const now = Date.now();
    const inserted = await this.#db.run(
      `INSERT INTO x402_payments (id, network, asset, payer, nonce, amount, valid_before, account_id, mode, state, resource, payload, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'locked', ?, ?, ?, ?) ON CONFLICT (network, asset, payer, nonce) DO NOTHING`,
      [
        id,
        p.network,
        lockValue(p.network, p.asset),
        lockValue(p.network, p.payer),
        lockValue(p.network, p.nonce),
        p.amount,
        p.validBefore,
        p.accountId,
        p.mode,
        p.resource,
        p.payload,
        now,
        now,
      ],
    );
    const rows = await this.#db.all("SELECT * FROM x402_payments WHERE network = ? AND asset = ? AND payer = ? AND nonce = ?", [
      p.network,
      lockValue(p.network, p.asset),
      lockValue(p.network, p.payer),
      lockValue(p.network, p.nonce),
    ]);
    return { locked: inserted === 1, record: record(rows[0]!) };
  }

  async get(id: string): Promise<PaymentRecord | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM x402_payments WHERE id = ?", [id]);
    return rows[0] ? record(rows[0]) : undefined;
  }

  /** Posts the credit of a payment inside `tx` (once, by its idempotency key). */
  async #credit(tx: SqlExecutor, p: PaymentRecord, now: number): Promise<void> {
    if (p.credited) return;
    const facts = {
      id: p.id,
      accountId: p.accountId,
      amount: p.amount,
      memo: { network: p.network, asset: p.asset, payer: p.payer, nonce: p.nonce, mode: p.mode },
    };
    const posted = await post(tx, x402CreditPosting(facts), { now, dialect: this.#db.dialect });
    // Paid-in money is prepaid balance: refundable, and it counts toward the discount tiers.
    if (posted) await tx.run("UPDATE ledger_accounts SET funded = funded + ? WHERE id = ?", [p.amount, userAccount(p.accountId)]);
    await tx.run("UPDATE x402_payments SET credited = 1, updated_at = ? WHERE id = ?", [now, p.id]);
  }

  async credit(id: string): Promise<void> {
    await this.#ready;
    await this.#db.transaction(async (tx) => {
      const row = (await this.#lockRow(tx, id))[0];
      if (!row) throw new Error(`no payment ${id}`);
      const p = record(row);
      if (p.state === "failed") throw new Error(`payment ${id} failed; it cannot be credited`);
      await this.#credit(tx, p, Date.now());
    });
  }

  async settled(id: string, txHash: string | null): Promise<void> {
    await this.#ready;
    await this.#db.transaction(async (tx) => {
      const row = (await this.#lockRow(tx, id))[0];
      if (!row) throw new Error(`no payment ${id}`);
      const p = record(row);
      if (p.state === "settled") return;
      const now = Date.now();
      await this.#credit(tx, p, now);
      await tx.run(
        "UPDATE x402_payments SET state = 'settled', tx_hash = COALESCE(?, tx_hash), error = NULL, updated_at = ? WHERE id = ?",
        [txHash, now, id],
      );
    });
  }

  async unknown(id: string, error: string): Promise<void> {
    await this.#ready;
    await this.#db.run(
      "UPDATE x402_payments SET state = 'unknown', error = ?, updated_at = ? WHERE id = ? AND state IN ('locked', 'unknown')",
      [error.slice(0, 1000), Date.now(), id],
    );
  }

  async failed(id: string, error: string): Promise<bigint> {
    await this.#ready;
    return this.#db.transaction(async (tx) => {
      const row = (await this.#lockRow(tx, id))[0];
      if (!row) throw new Error(`no payment ${id}`);
      const p = record(row);
      if (p.state === "failed" || p.state === "settled") return 0n;
      const now = Date.now();
      let debt = 0n;
      if (p.credited) {
        // The credit was given before the money arrived (settle after serving): take back what
        // is left of the prepaid balance (spendable and funded), at most the payment.
        const user = userAccount(p.accountId);
        const bal = await tx.all(
          `SELECT balance, funded FROM ledger_accounts WHERE id = ?${this.#db.dialect === "postgres" ? " FOR UPDATE" : ""}`,
          [user],
        );
        const split = x402Reversal(p.amount, bal[0] ? big(bal[0].balance) : 0n, bal[0] ? big(bal[0].funded) : 0n);
        const back = split.back;
        debt = split.debt;
        await post(tx, x402ReversalPosting(p, split, error), { now, dialect: this.#db.dialect });
        await tx.run("UPDATE ledger_accounts SET funded = funded - ? WHERE id = ?", [back, user]);
        if (debt > 0n)
          await tx.run(
            "INSERT INTO wallet_debts (payment_id, account_id, amount, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING",
            [p.id, p.accountId, debt, now],
          );
      }
      await tx.run("UPDATE x402_payments SET state = 'failed', error = ?, updated_at = ? WHERE id = ?", [error.slice(0, 1000), now, id]);
      return debt;
    });
  }

  async claimService(id: string): Promise<boolean> {
    await this.#ready;
    return (
      (await this.#db.run("UPDATE x402_payments SET served = 1, updated_at = ? WHERE id = ? AND served = 0 AND state <> 'failed'", [
        Date.now(),
        id,
      ])) === 1
    );
  }

  async unfinished(olderThanMs: number, now = Date.now()): Promise<PaymentRecord[]> {
    await this.#ready;
    const rows = await this.#db.all(
      "SELECT * FROM x402_payments WHERE state IN ('locked', 'unknown') AND updated_at <= ? ORDER BY updated_at LIMIT 500",
      [now - olderThanMs],
    );
    return rows.map(record);
  }

  async debtOf(accountId: string): Promise<bigint> {
    await this.#ready;
    const rows = await this.#db.all(
      "SELECT COALESCE(SUM(amount - repaid), 0) AS d FROM wallet_debts WHERE account_id = ? AND cleared_at IS NULL",
      [accountId],
    );
    return big(rows[0]?.d ?? 0);
  }

  async indebtedAccounts(): Promise<string[]> {
    await this.#ready;
    return (await this.#db.all("SELECT DISTINCT account_id FROM wallet_debts WHERE cleared_at IS NULL")).map((r) => String(r.account_id));
  }

  async repayDebts(accountId: string): Promise<bigint> {
    await this.#ready;
    return this.#db.transaction((tx) => repayDebtsIn(tx, this.#db.dialect, accountId));
  }

  async page(limit: number, before?: PageCursor): Promise<PaymentRecord[]> {
    await this.#ready;
    return (await newestFirst(this.#db, "x402_payments", limit, before)).map(record);
  }

  async sweep(now = Date.now()): Promise<number> {
    await this.#ready;
    return sweepInBatches(
      this.#db,
      "DELETE FROM x402_payments WHERE id IN (SELECT id FROM x402_payments WHERE state = 'failed' AND updated_at <= ? AND credited = 0 AND served = 0 LIMIT ?)",
      [now - FAILED_PAYMENT_RETENTION_MS],
    );
  }
}

/**
 * Repays an account's debts from its prepaid balance (spendable and funded), oldest first,
 * inside the caller's transaction: the platform, which carried them, gets the money back
 * (ledger kind `debt_repayment`). Refunds call it first, so a wallet never takes money out
 * while it owes. Returns the amount repaid.
 */
export async function repayDebtsIn(tx: SqlExecutor, dialect: "sqlite" | "postgres", accountId: string, now = Date.now()): Promise<bigint> {
  const user = userAccount(accountId);
  const lock = dialect === "postgres" ? " FOR UPDATE" : "";
  const acct = (await tx.all(`SELECT balance, funded FROM ledger_accounts WHERE id = ?${lock}`, [user]))[0];
  const debts = await tx.all(
    `SELECT payment_id, amount, repaid FROM wallet_debts WHERE account_id = ? AND cleared_at IS NULL ORDER BY created_at, payment_id${lock}`,
    [accountId],
  );
  if (!acct || debts.length === 0) return 0n;
  // Only prepaid money (spendable and funded) repays a debt.
  const open = debts.map((d) => ({ paymentId: String(d.payment_id), owed: big(d.amount) - big(d.repaid) }));
  const { total, payments } = debtRepayments(prepaidOf(big(acct.balance), big(acct.funded)), open);
  for (const r of payments) {
    await tx.run(
      `UPDATE wallet_debts SET repaid = repaid + ?${r.cleared ? ", cleared_at = ?" : ""} WHERE payment_id = ?`,
      r.cleared ? [r.pay, now, r.paymentId] : [r.pay, r.paymentId],
    );
  }
  if (total === 0n) return 0n;
  await post(
    tx,
    debtRepaymentPosting(
      accountId,
      total,
      open.map((d) => d.paymentId),
      ledgerId("repay"),
    ),
    { now, dialect },
  );
  await tx.run("UPDATE ledger_accounts SET funded = funded - ? WHERE id = ?", [total, user]);
  return total;
}
