/** Settlement: `statement` (hub), `dispute` (node). */
import { Type, type Static } from "@sinclair/typebox";
import { Amount, Id, message, PublicKey, ReceiptTotals, Signature, Text, Timestamp } from "./primitives.js";

/**
 * A signed settlement statement for one node and one period. `totals` and `lastSeq`
 * are the hub's view of the node's running receipt totals at the end of the period, so a
 * node can compare them with its own receipts.
 */
export const Statement = Type.Object(
  {
    v: Type.Literal(1),
    statementId: Id,
    hubId: PublicKey,
    nodeId: PublicKey,
    accountId: Id,
    period: Type.Object({ from: Timestamp, to: Timestamp }, { additionalProperties: false }),
    receipts: Type.Object(
      {
        count: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
        firstSeq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
        lastSeq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
      },
      { additionalProperties: false },
    ),
    totals: ReceiptTotals,
    earned: Amount,
    paid: Amount,
    balance: Amount,
    issuedAt: Timestamp,
    sig: Signature,
  },
  { additionalProperties: false, title: "Statement" },
);
/** A signed settlement statement. */
export type Statement = Static<typeof Statement>;

/** Hub -> node: a settlement statement. */
export const StatementMessage = message("statement", { statement: Statement }, "A hub-signed settlement statement for a period.");
/** Hub -> node: a settlement statement. */
export type StatementMessage = Static<typeof StatementMessage>;

/** What the node disputes. */
export const DisputeKind = Type.Union(
  ["totals_mismatch", "missing_receipt", "bad_signature"].map((k) => Type.Literal(k)),
  { title: "DisputeKind" },
);

/** Node -> hub: the hub's totals disagree with the node's receipts. */
export const Dispute = message(
  "dispute",
  {
    kind: DisputeKind,
    statementId: Type.Optional(Id),
    hub: Type.Object(
      { lastSeq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), totals: ReceiptTotals },
      { additionalProperties: false },
    ),
    node: Type.Object(
      { lastSeq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), totals: ReceiptTotals },
      { additionalProperties: false },
    ),
    message: Text,
  },
  "A mismatch between the hub's view (welcome or statement) and the node's own receipts, reported loudly.",
);
/** Node -> hub: a dispute. */
export type Dispute = Static<typeof Dispute>;
