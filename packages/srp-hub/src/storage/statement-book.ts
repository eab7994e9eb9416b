/**
 * The statements and disputes of a `SqlStore` (SRP-SET-004..011): each statement covers
 * exactly the node's receipts no earlier statement covered (each receipt is marked with
 * the statement that covers it), so no receipt is ever counted twice or left out,
 * whatever the clocks say. The arithmetic is `statementBody` in `ledger/statements.ts`.
 */
import { INITIAL_POSITION } from "@srp/core";
import type { Dispute, ReceiptTotals, Statement } from "@srp/core/schema";
import { ledgerId } from "../ledger/ledger.js";
import { statementBody, type StatementBook, type StatementFacts } from "../ledger/statements.js";
import { big, int, type SqlDriver, type SqlExecutor } from "./sql.js";

/** What marking a node's uncovered receipts found: how many, the lowest seq, the earliest time and the provider shares. */
interface Marked {
  count: number;
  firstSeq: number;
  firstAt: number;
  earned: bigint;
}

/** Marks the node's receipts no statement covers yet as covered by `statementId`; counts exactly what was marked. */
async function markReceipts(tx: SqlExecutor, statementId: string, nodeId: string, now: number): Promise<Marked> {
  const rows = await tx.all(
    "UPDATE receipts SET statement_id = ? WHERE node_id = ? AND statement_id IS NULL RETURNING seq, provider_share, created_at",
    [statementId, nodeId],
  );
  const marked: Marked = { count: rows.length, firstSeq: 0, firstAt: now, earned: 0n };
  for (const m of rows) {
    const seq = int(m.seq);
    if (marked.firstSeq === 0 || seq < marked.firstSeq) marked.firstSeq = seq;
    marked.earned += m.provider_share === null ? 0n : big(m.provider_share);
    marked.firstAt = Math.min(marked.firstAt, int(m.created_at));
  }
  return marked;
}

/** The facts of the statement that covers `marked`: its period after the previous statement, the node's position, the receipts held in the range. */
async function statementFacts(tx: SqlExecutor, nodeId: string, marked: Marked, now: number): Promise<StatementFacts> {
  const prev = (
    await tx.all("SELECT period_to, balance FROM statements WHERE node_id = ? ORDER BY period_to DESC, issued_at DESC LIMIT 1", [nodeId])
  )[0];
  const pos = (await tx.all("SELECT last_seq, totals FROM node_positions WHERE node_id = ?", [nodeId]))[0];
  const lastSeq = pos ? int(pos.last_seq) : 0;
  const held =
    marked.count === 0
      ? 0
      : int(
          (
            await tx.all("SELECT COUNT(*) AS n FROM receipts WHERE node_id = ? AND seq >= ? AND seq <= ?", [
              nodeId,
              marked.firstSeq,
              lastSeq,
            ])
          )[0]!.n,
        );
  const from = prev ? int(prev.period_to) : marked.firstAt;
  return {
    from,
    to: Math.max(now, from),
    lastSeq,
    totals: pos ? (JSON.parse(String(pos.totals)) as ReceiptTotals) : INITIAL_POSITION.totals,
    firstSeq: marked.firstSeq,
    count: held,
    earned: marked.earned,
    paid: 0n,
    previousBalance: prev ? big(prev.balance) : 0n,
  };
}

/** Statements to nodes and their disputes, on one SQL database. */
export class SqlStatementBook implements StatementBook {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;

  /** @param ready resolves once the store's migrations have run. */
  constructor(db: SqlDriver, ready: Promise<void>) {
    this.#db = db;
    this.#ready = ready;
  }

  /**
   * Issues a node's next statement. It covers exactly the node's receipts no earlier
   * statement covered (each receipt is marked with the statement that covers it), so no
   * receipt is ever counted twice or left out, whatever the clocks say.
   */
  async issueStatement(
    nodeId: string,
    accountId: string,
    sign: (body: Omit<Statement, "sig" | "hubId">) => Statement,
    now = Date.now(),
    force = false,
  ): Promise<Statement | undefined> {
    await this.#ready;
    return this.#db.transaction(async (tx) => {
      // One issuance per node at a time, and no receipt of the node lands meanwhile (PostgreSQL: the position's row lock).
      if (this.#db.dialect === "postgres") await tx.all("SELECT node_id FROM node_positions WHERE node_id = ? FOR UPDATE", [nodeId]);
      const statementId = ledgerId("stmt");
      const marked = await markReceipts(tx, statementId, nodeId, now);
      if (marked.count === 0 && !force) return undefined;
      const f = await statementFacts(tx, nodeId, marked, now);
      const body = statementBody(statementId, nodeId, accountId, f, f.to);
      const statement = sign(body);
      await tx.run(
        "INSERT INTO statements (id, node_id, account_id, period_from, period_to, first_seq, last_seq, receipt_count, earned, paid, balance, body, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
          statementId,
          nodeId,
          accountId,
          f.from,
          f.to,
          body.receipts.firstSeq,
          f.lastSeq,
          f.count,
          BigInt(body.earned),
          0n,
          BigInt(body.balance),
          JSON.stringify(statement),
          f.to,
        ],
      );
      return statement;
    });
  }

  /** A node's statements, oldest first; only the `last` newest when given (read newest first, bounded, in SQL). */
  async statementsOf(nodeId: string, last?: number): Promise<Statement[]> {
    await this.#ready;
    const rows =
      last === undefined
        ? await this.#db.all("SELECT body FROM statements WHERE node_id = ? ORDER BY period_to, issued_at", [nodeId])
        : (
            await this.#db.all("SELECT body FROM statements WHERE node_id = ? ORDER BY period_to DESC, issued_at DESC LIMIT ?", [
              nodeId,
              Math.max(0, Math.floor(last)),
            ])
          ).reverse();
    return rows.map((r) => JSON.parse(String(r.body)) as Statement);
  }

  /** Records a node's dispute for the operator and the account owner. */
  async recordDispute(nodeId: string, accountId: string, dispute: Dispute): Promise<void> {
    await this.#ready;
    await this.#db.run(
      "INSERT INTO disputes (id, node_id, account_id, kind, statement_id, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      [ledgerId("disp"), nodeId, accountId, dispute.kind, dispute.statementId ?? null, JSON.stringify(dispute), Date.now()],
    );
  }

  /** Disputes recorded, newest first. */
  async disputes(limit = 100): Promise<Array<{ nodeId: string; accountId: string; receivedAt: number; dispute: Dispute }>> {
    await this.#ready;
    const rows = await this.#db.all(
      "SELECT node_id, account_id, body, received_at FROM disputes ORDER BY received_at DESC, id DESC LIMIT ?",
      [Math.max(1, Math.min(limit, 1000))],
    );
    return rows.map((r) => ({
      nodeId: String(r.node_id),
      accountId: String(r.account_id),
      receivedAt: int(r.received_at),
      dispute: JSON.parse(String(r.body)) as Dispute,
    }));
  }
}
