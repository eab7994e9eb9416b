/**
 * Usage receipts: creation (node), countersignature (hub), and verification by anyone.
 * A node numbers its receipts per hub (`seq` 1, 2, 3 ...) and carries running totals, so
 * a receipt that goes missing shows up as a gap, and totals that do not add up show up
 * as a mismatch, on either side.
 */
import { cost as priceCost, formatAmount, parseAmount } from "./money.js";
import type { ErrorCode } from "./errors.js";
import type { Identity } from "./identity.js";
import type { Receipt } from "./schema/attestation.js";
import type { ReceiptTotals, Usage, Price } from "./schema/primitives.js";
import { omitFields, signDetached, verifyDetached } from "./signing.js";

/** Totals before the first receipt. */
export const ZERO_TOTALS: ReceiptTotals = Object.freeze({ receipts: 0, cost: "0", promptTokens: 0, completionTokens: 0 });

/** A node's receipt position with one hub: the last sequence number and the totals after it. */
export interface ReceiptPosition {
  /** Sequence number of the last receipt (0 before the first). */
  lastSeq: number;
  /** Running totals after that receipt. */
  totals: ReceiptTotals;
}

/** The position before any receipt. */
export const INITIAL_POSITION: ReceiptPosition = Object.freeze({ lastSeq: 0, totals: ZERO_TOTALS });

/** Totals after adding one receipt's usage and cost. */
export function addToTotals(totals: ReceiptTotals, usage: Usage, cost: bigint): ReceiptTotals {
  return {
    receipts: totals.receipts + 1,
    cost: formatAmount(parseAmount(totals.cost) + cost),
    promptTokens: totals.promptTokens + usage.promptTokens,
    completionTokens: totals.completionTokens + usage.completionTokens,
  };
}

/** Whether two totals are equal. */
export function totalsEqual(a: ReceiptTotals, b: ReceiptTotals): boolean {
  return a.receipts === b.receipts && a.cost === b.cost && a.promptTokens === b.promptTokens && a.completionTokens === b.completionTokens;
}

/**
 * What a receipt is billed at. Usage the backend did not measure is never billed as if it
 * were: an unmeasured receipt costs 0.
 */
export function receiptCost(usage: Usage, price: Price): bigint {
  return usage.measured ? priceCost(usage, price) : 0n;
}

/** The job facts a receipt attests, before numbering and signing. */
export interface ReceiptDraft {
  jobId: string;
  hubId: string;
  instanceId: string;
  model: string;
  requestHash: string;
  responseHash: string;
  usage: Usage;
  price: Price;
  startedAt: number;
  finishedAt: number;
}

/**
 * Node side: numbers, totals, prices and signs a receipt following `previous`.
 *
 * @example
 * const receipt = createReceipt(draft, INITIAL_POSITION, nodeIdentity);
 * receipt.seq; // 1
 */
export function createReceipt(draft: ReceiptDraft, previous: ReceiptPosition, identity: Identity): Receipt {
  const charge = receiptCost(draft.usage, draft.price);
  const body: Omit<Receipt, "nodeSig" | "hubSig"> = {
    v: 1,
    ...draft,
    nodeId: identity.id,
    cost: formatAmount(charge),
    seq: previous.lastSeq + 1,
    totals: addToTotals(previous.totals, draft.usage, charge),
  };
  return { ...body, nodeSig: signDetached("receiptNode", body, identity) };
}

/** Hub side: adds the hub's countersignature (over everything, the node signature included). */
export function countersignReceipt(receipt: Receipt, hub: Identity): Receipt {
  if (receipt.hubId !== hub.id) throw new TypeError("receipt names another hub");
  const body = omitFields(receipt, "hubSig");
  return { ...body, hubSig: signDetached("receiptHub", body, hub) };
}

/** One thing wrong with a receipt or a receipt sequence. */
export interface ReceiptProblem {
  /** Error-table code naming the problem. */
  code: Extract<ErrorCode, `receipt.${string}`>;
  /** What is wrong, for people. */
  message: string;
  /** Position in the list given to {@link verifyReceiptChain}. */
  index?: number;
  /** The receipt's job id. */
  jobId: string;
}

/** Options of {@link verifyReceipt}. */
export interface VerifyReceiptOptions {
  /** Fail receipts without a hub countersignature (default true). */
  requireHubSignature?: boolean;
  /** The hub id the receipt must name. */
  hubId?: string;
  /** The node id the receipt must name. */
  nodeId?: string;
}

/**
 * Checks one receipt on its own: node signature, hub countersignature, cost equal to
 * usage times price (rounded up), time order, expected hub and node. Returns every
 * problem found; an empty list means the receipt is valid.
 */
export function verifyReceipt(receipt: Receipt, options: VerifyReceiptOptions = {}): ReceiptProblem[] {
  const problems: ReceiptProblem[] = [];
  const add = (code: ReceiptProblem["code"], message: string) => problems.push({ code, message, jobId: receipt.jobId });
  if (!verifyDetached("receiptNode", omitFields(receipt, "nodeSig", "hubSig"), receipt.nodeSig, receipt.nodeId)) {
    add("receipt.bad_node_signature", "node signature does not verify with the receipt's node id");
  }
  if (receipt.hubSig === undefined) {
    if (options.requireHubSignature ?? true) add("receipt.missing_hub_signature", "receipt has no hub countersignature");
  } else if (!verifyDetached("receiptHub", omitFields(receipt, "hubSig"), receipt.hubSig, receipt.hubId)) {
    add("receipt.bad_hub_signature", "hub countersignature does not verify with the receipt's hub id");
  }
  let expected: bigint | undefined;
  try {
    expected = receiptCost(receipt.usage, receipt.price);
  } catch (e) {
    add("receipt.cost_mismatch", `usage cannot be priced: ${(e as Error).message}`);
  }
  if (expected !== undefined && formatAmount(expected) !== receipt.cost) {
    add("receipt.cost_mismatch", `cost is ${receipt.cost} but usage at the receipt's price costs ${expected}`);
  }
  if (receipt.finishedAt < receipt.startedAt) add("receipt.field_mismatch", "finishedAt is before startedAt");
  if (options.hubId !== undefined && receipt.hubId !== options.hubId)
    add("receipt.field_mismatch", `receipt names hub ${receipt.hubId}, expected ${options.hubId}`);
  if (options.nodeId !== undefined && receipt.nodeId !== options.nodeId)
    add("receipt.field_mismatch", `receipt names node ${receipt.nodeId}, expected ${options.nodeId}`);
  return problems;
}

/**
 * Checks an ordered run of receipts from one node to one hub: each receipt on its own
 * (see {@link verifyReceipt}), sequence numbers without gaps or repeats starting after
 * `start`, and running totals that equal the previous totals plus this receipt.
 */
export function verifyReceiptChain(
  receipts: readonly Receipt[],
  start: ReceiptPosition = INITIAL_POSITION,
  options: VerifyReceiptOptions = {},
): ReceiptProblem[] {
  const problems: ReceiptProblem[] = [];
  let position = start;
  const first = receipts[0];
  receipts.forEach((r, index) => {
    for (const p of verifyReceipt(r, {
      ...options,
      hubId: options.hubId ?? first?.hubId ?? r.hubId,
      nodeId: options.nodeId ?? first?.nodeId ?? r.nodeId,
    })) {
      problems.push({ ...p, index });
    }
    if (r.seq !== position.lastSeq + 1) {
      problems.push({
        code: "receipt.sequence_gap",
        message: `seq ${r.seq} follows ${position.lastSeq}; expected ${position.lastSeq + 1}`,
        index,
        jobId: r.jobId,
      });
    }
    let charge = 0n;
    try {
      charge = parseAmount(r.cost);
    } catch {
      // reported by verifyReceipt as a cost mismatch
    }
    const expected = addToTotals(position.totals, r.usage, charge);
    if (!totalsEqual(expected, r.totals)) {
      problems.push({
        code: "receipt.totals_mismatch",
        message: `totals ${JSON.stringify(r.totals)} differ from previous totals plus this receipt ${JSON.stringify(expected)}`,
        index,
        jobId: r.jobId,
      });
    }
    position = { lastSeq: r.seq, totals: r.totals };
  });
  return problems;
}
