/**
 * The hub's side of attestation: checking a node's receipt against the job it answers
 * (SRP-ATT-009 and SRP-ATT-010, in the spec's order; plausibility of its usage against
 * what the job admitted and what the hub relayed, SRP-ATT-015), and a book that keeps every
 * countersigned receipt and each node's recorded position.
 */
import type { PayoutTerms } from "./ledger/payout-terms.js";
import {
  addToTotals,
  formatAmount,
  INITIAL_POSITION,
  parseAmount,
  receiptCost,
  SrpError,
  totalsEqual,
  verifyDetached,
  omitFields,
  type ReceiptPosition,
} from "@srp/core";
import type { Done, Job, Receipt } from "@srp/core/schema";
import { checkUsagePlausibility, type RelayedOutput, type UsageBounds } from "@srp/core/metering";

/** A countersigned receipt with who paid and who earned. */
export interface StoredReceipt {
  receipt: Receipt;
  /** The consumer account billed for the job (absent for jobs with no consumer, e.g. late ones). */
  consumerAccountId?: string;
  /** The account the serving node is bound to. */
  providerAccountId: string;
  /** The consumer's reservation this receipt settles, when the hub keeps a ledger. */
  reservationId?: string;
  /** Payout adjustments for the serving provider (bounty, anti-flapping); none when absent. */
  terms?: PayoutTerms;
  /** What the provider was credited for this receipt, as a ledger-backed book reports it. */
  payout?: { credited: bigint; bounty: bigint; reduction: bigint };
}

/**
 * Where a hub keeps receipts and per-node positions. Every method is asynchronous, so a
 * book can live in any database; `record` of a ledger-backed book also settles the job's
 * reservation in the same transaction and reports what moved.
 */
export interface ReceiptBook {
  /** The recorded position of a node (initial if none). */
  position(nodeId: string): Promise<ReceiptPosition>;
  /** Forgets a cached position: another process of the hub records the node's receipts now (read from storage next time). */
  forgetPosition?(nodeId: string): void;
  /** Stores a countersigned receipt and makes it the node's position. */
  record(entry: StoredReceipt): Promise<unknown>;
  /** A stored receipt by job id. */
  get(jobId: string): Promise<StoredReceipt | undefined>;
  /** Records receipt numbers `from..to` of a node as missing, for reconciliation (SRP-ATT-010). */
  recordGap(nodeId: string, from: number, to: number): Promise<void>;
  /** The missing ranges recorded for a node. */
  gaps(nodeId: string): Promise<{ from: number; to: number }[]>;
}

/** Receipts in memory (no ledger: nothing is billed). */
export class MemoryReceiptBook implements ReceiptBook {
  readonly #positions = new Map<string, ReceiptPosition>();
  readonly #receipts = new Map<string, StoredReceipt>();
  readonly #gaps = new Map<string, { from: number; to: number }[]>();
  async position(nodeId: string): Promise<ReceiptPosition> {
    return this.#positions.get(nodeId) ?? INITIAL_POSITION;
  }
  async record(entry: StoredReceipt): Promise<undefined> {
    this.#receipts.set(entry.receipt.jobId, entry);
    this.#positions.set(entry.receipt.nodeId, { lastSeq: entry.receipt.seq, totals: entry.receipt.totals });
    return undefined;
  }
  async get(jobId: string): Promise<StoredReceipt | undefined> {
    return this.#receipts.get(jobId);
  }
  async recordGap(nodeId: string, from: number, to: number): Promise<void> {
    const list = this.#gaps.get(nodeId) ?? [];
    list.push({ from, to });
    this.#gaps.set(nodeId, list);
  }
  async gaps(nodeId: string): Promise<{ from: number; to: number }[]> {
    return [...(this.#gaps.get(nodeId) ?? [])];
  }
  /** Number of receipts held. */
  get size(): number {
    return this.#receipts.size;
  }
}

/** What the hub knows when a `done` arrives. */
export interface ReceiptCheckInput {
  job: Job;
  done: Done;
  nodeId: string;
  hubId: string;
  /** The request hash the hub computed when it sent the job. */
  requestHash: string;
  /** The response hash the hub computed itself (from the chunks, or from `done.response`). */
  responseHash: string;
  position: ReceiptPosition;
  /**
   * What the hub relayed of the job's output (SRP-ATT-016); when given, the usage must be
   * plausible for it and for `bounds` (SRP-ATT-015).
   */
  relayed?: RelayedOutput;
  /** What the job was admitted to use (absent members are unbounded). */
  bounds?: UsageBounds;
}

/** Result of {@link checkNodeReceipt}: whether to countersign, and the error to report. */
export interface ReceiptVerdict {
  countersign: boolean;
  error?: SrpError;
}

function sameUsage(a: Done["usage"], b: Done["usage"]): boolean {
  return (
    a.promptTokens === b.promptTokens &&
    a.completionTokens === b.completionTokens &&
    a.cachedTokens === b.cachedTokens &&
    a.reasoningTokens === b.reasoningTokens &&
    a.cacheWriteTokens === b.cacheWriteTokens &&
    a.images === b.images &&
    a.characters === b.characters &&
    a.seconds === b.seconds &&
    a.measured === b.measured
  );
}

const PRICE_FIELDS = ["input", "output", "cachedInput", "cacheWrite", "image", "character", "second"] as const;

/**
 * Checks a node's receipt in the order of SRP-ATT-009: node signature, cost, fields
 * (including both hashes), plausible usage (SRP-ATT-015), sequence, totals. A gap ahead (SRP-ATT-010) is reported and
 * still countersigned; a repeat or replay never is.
 */
export function checkNodeReceipt(input: ReceiptCheckInput): ReceiptVerdict {
  const { job, done, position } = input;
  const r = done.receipt;
  const reject = (code: ConstructorParameters<typeof SrpError>[0], message: string): ReceiptVerdict => ({
    countersign: false,
    error: new SrpError(code, message, { jobId: job.jobId }),
  });
  if (!verifyDetached("receiptNode", omitFields(r, "nodeSig", "hubSig"), r.nodeSig, r.nodeId) || r.nodeId !== input.nodeId) {
    return reject("receipt.bad_node_signature", "node signature does not verify with the session's node id");
  }
  let expected: bigint;
  try {
    expected = receiptCost(r.usage, r.price);
  } catch (e) {
    return reject("receipt.cost_mismatch", `usage cannot be priced: ${(e as Error).message}`);
  }
  if (formatAmount(expected) !== r.cost) return reject("receipt.cost_mismatch", `cost ${r.cost} differs from usage at price (${expected})`);
  const mismatch =
    r.hubSig !== undefined
      ? "hubSig (a node receipt carries none)"
      : r.jobId !== job.jobId
        ? "jobId"
        : r.instanceId !== job.instanceId
          ? "instanceId"
          : r.model !== job.model
            ? "model"
            : r.hubId !== input.hubId
              ? "hubId"
              : PRICE_FIELDS.some((f) => r.price[f] !== job.quote[f])
                ? "price"
                : !sameUsage(r.usage, done.usage)
                  ? "usage"
                  : r.startedAt > r.finishedAt
                    ? "startedAt"
                    : r.requestHash !== input.requestHash
                      ? "requestHash"
                      : r.responseHash !== input.responseHash
                        ? "responseHash"
                        : undefined;
  if (mismatch) return reject("receipt.field_mismatch", `receipt ${mismatch} does not describe job ${job.jobId}`);
  if (input.relayed) {
    const plausible = checkUsagePlausibility(r.usage, input.bounds ?? {}, input.relayed);
    if (!plausible.plausible)
      return reject(
        "receipt.implausible_usage",
        `usage of job ${job.jobId} is not plausible: ${plausible.reason}; not countersigned, not billed`,
      );
  }
  if (r.seq <= position.lastSeq) return reject("receipt.sequence_gap", `seq ${r.seq} repeats; the last recorded is ${position.lastSeq}`);
  const gap = r.seq > position.lastSeq + 1;
  if (!gap) {
    const totals = addToTotals(position.totals, r.usage, parseAmount(r.cost));
    if (!totalsEqual(totals, r.totals))
      return reject("receipt.totals_mismatch", "running totals differ from the recorded totals plus this receipt");
    return { countersign: true };
  }
  return {
    countersign: true,
    error: new SrpError(
      "receipt.sequence_gap",
      `seq ${r.seq} follows recorded ${position.lastSeq}; ${r.seq - position.lastSeq - 1} receipt(s) missing`,
      {
        jobId: job.jobId,
        details: { from: position.lastSeq + 1, to: r.seq - 1 },
      },
    ),
  };
}
