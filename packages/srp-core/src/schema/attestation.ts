/** Attestation: the usage receipt, signed by the node and countersigned by the hub. */
import { Type, type Static } from "@sinclair/typebox";
import { Amount, Hash, Id, message, ModelId, Price, PublicKey, ReceiptTotals, Signature, Timestamp, Usage } from "./primitives.js";

/**
 * A usage receipt: what one job cost and why, bound to the job, the hub, the node, the
 * request and response bytes, with the node's per-hub sequence number and running totals.
 * `nodeSig` covers every other member except `hubSig`; `hubSig` covers every member
 * except itself (so it countersigns the node's signature too).
 */
export const Receipt = Type.Object(
  {
    v: Type.Literal(1),
    jobId: Id,
    hubId: PublicKey,
    nodeId: PublicKey,
    instanceId: Id,
    model: ModelId,
    requestHash: Hash,
    responseHash: Hash,
    usage: Usage,
    price: Price,
    cost: Amount,
    startedAt: Timestamp,
    finishedAt: Timestamp,
    seq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    totals: ReceiptTotals,
    nodeSig: Signature,
    hubSig: Type.Optional(Signature),
  },
  { additionalProperties: false, title: "Receipt" },
);
/** A usage receipt. */
export type Receipt = Static<typeof Receipt>;

/** Hub -> node: the countersigned receipt of a finished job. */
export const ReceiptMessage = message(
  "receipt",
  { receipt: Receipt },
  "The hub's countersignature of a node receipt, returned so the node holds the complete receipt.",
);
/** Hub -> node: the countersigned receipt of a finished job. */
export type ReceiptMessage = Static<typeof ReceiptMessage>;
