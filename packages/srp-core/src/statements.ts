/**
 * Settlement statements: the hub's signed account of what a node earned in a period,
 * and the node's comparison of the hub's totals with its own receipts.
 */
import type { Identity } from "./identity.js";
import { totalsEqual, type ReceiptPosition } from "./receipts.js";
import type { Statement } from "./schema/settlement.js";
import { omitFields, signDetached, verifyDetached } from "./signing.js";

/** Hub side: signs a statement. */
export function signStatement(body: Omit<Statement, "sig" | "hubId">, hub: Identity): Statement {
  const unsigned: Omit<Statement, "sig"> = { ...body, hubId: hub.id };
  return { ...unsigned, sig: signDetached("statement", unsigned, hub) };
}

/** Whether a statement's signature verifies with its hub id. */
export function verifyStatement(statement: Statement): boolean {
  return verifyDetached("statement", omitFields(statement, "sig"), statement.sig, statement.hubId);
}

/**
 * Node side: compares the hub's view of the node's receipts (from `welcome` or a
 * statement) with the node's own. Returns a description of the mismatch, or `undefined`
 * when they agree.
 */
export function compareReceiptPositions(hub: ReceiptPosition, node: ReceiptPosition): string | undefined {
  if (hub.lastSeq === node.lastSeq && totalsEqual(hub.totals, node.totals)) return undefined;
  if (hub.lastSeq < node.lastSeq)
    return `hub has receipts up to seq ${hub.lastSeq}, node issued up to ${node.lastSeq}: ${node.lastSeq - hub.lastSeq} receipt(s) missing at the hub`;
  if (hub.lastSeq > node.lastSeq) return `hub claims receipts up to seq ${hub.lastSeq}, node issued only up to ${node.lastSeq}`;
  return `same last seq ${hub.lastSeq} but totals differ: hub ${JSON.stringify(hub.totals)}, node ${JSON.stringify(node.totals)}`;
}
