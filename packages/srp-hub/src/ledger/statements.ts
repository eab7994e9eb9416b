/**
 * Statements on the hub's side: signed statements of what each node earned per period
 * (SRP-SET-004..007), and the disputes nodes send back (SRP-SET-011). The statement's
 * numbers come from the receipt book; this module holds the pure arithmetic and the
 * {@link StatementBook} a store implements.
 */
import type { Dispute, Statement } from "@srp/core/schema";

/** What a statement covers, as the store reads it in one transaction. */
export interface StatementFacts {
  /** End of the previous statement's period (the node's first statement starts at its first receipt, or `to`). */
  from: number;
  to: number;
  /** The node's recorded position at `to`. */
  lastSeq: number;
  totals: Statement["totals"];
  /** Receipts countersigned in the period: lowest seq and how many the hub holds in [firstSeq, lastSeq]. */
  firstSeq: number;
  count: number;
  /** Provider shares credited for those receipts. */
  earned: bigint;
  /** Paid out for the node during the period (no payouts exist yet: 0). */
  paid: bigint;
  /** The previous statement's balance (0 for the first). */
  previousBalance: bigint;
}

/** The unsigned body of a statement from its facts (SRP-SET-005, SRP-SET-006). */
export function statementBody(
  statementId: string,
  nodeId: string,
  accountId: string,
  f: StatementFacts,
  issuedAt: number,
): Omit<Statement, "sig" | "hubId"> {
  return {
    v: 1,
    statementId,
    nodeId,
    accountId,
    period: { from: f.from, to: f.to },
    receipts: { count: f.count, firstSeq: f.count === 0 ? 0 : f.firstSeq, lastSeq: f.lastSeq },
    totals: f.totals,
    earned: f.earned.toString(),
    paid: f.paid.toString(),
    balance: (f.previousBalance + f.earned - f.paid).toString(),
    issuedAt,
  };
}

/** Where statements and disputes are kept. `SqlStore` implements it. */
export interface StatementBook {
  /**
   * Issues the next statement for a node: the period runs from the end of its previous
   * statement to `now`; `sign` turns the body into the signed statement, which is stored
   * before it is returned. Returns undefined when the node had no receipts in the period
   * and `force` is not set.
   */
  issueStatement(
    nodeId: string,
    accountId: string,
    sign: (body: Omit<Statement, "sig" | "hubId">) => Statement,
    now?: number,
    force?: boolean,
  ): Promise<Statement | undefined>;
  /** A node's statements, oldest first. */
  statementsOf(nodeId: string, last?: number): Promise<Statement[]>;
  /** Records a node's dispute for the operator and the account owner. */
  recordDispute(nodeId: string, accountId: string, dispute: Dispute): Promise<void>;
  /** Disputes recorded, newest first. */
  disputes(limit?: number): Promise<Array<{ nodeId: string; accountId: string; receivedAt: number; dispute: Dispute }>>;
}

/** Whether a receipt book also keeps statements. */
export function isStatementBook(value: unknown): value is StatementBook {
  const v = value as Partial<StatementBook> | null;
  return typeof v === "object" && v !== null && typeof v.issueStatement === "function" && typeof v.recordDispute === "function";
}
