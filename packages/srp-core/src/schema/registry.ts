/**
 * The v1 message registry: every message schema by its `type`, its name in
 * `spec/v1/schema.json#/$defs`, and who may send it.
 */
import type { Static } from "@sinclair/typebox";
import { ReceiptMessage } from "./attestation.js";
import { ErrorMessage, Goodbye } from "./control.js";
import { Auth, Hello, Welcome } from "./handshake.js";
import { Cancel, Chunk, Done, Job, JobError, Progress, Result, Resume } from "./jobs.js";
import { Heartbeat, Probe, ProbeResult } from "./liveness.js";
import { Offer, OfferAck, Withdraw } from "./offer.js";
import { Dispute, StatementMessage } from "./settlement.js";

/** Who may send a message. */
export type Sender = "hub" | "node" | "either";

/** Every v1 message, by `type`: its schema, its `$defs` name, its sender and family. */
export const MESSAGES = {
  hello: { schema: Hello, name: "Hello", from: "hub", family: "handshake" },
  auth: { schema: Auth, name: "Auth", from: "node", family: "handshake" },
  welcome: { schema: Welcome, name: "Welcome", from: "hub", family: "handshake" },
  offer: { schema: Offer, name: "Offer", from: "node", family: "offer" },
  offer_ack: { schema: OfferAck, name: "OfferAck", from: "hub", family: "offer" },
  withdraw: { schema: Withdraw, name: "Withdraw", from: "node", family: "offer" },
  job: { schema: Job, name: "Job", from: "hub", family: "jobs" },
  chunk: { schema: Chunk, name: "Chunk", from: "node", family: "jobs" },
  done: { schema: Done, name: "Done", from: "node", family: "jobs" },
  job_error: { schema: JobError, name: "JobError", from: "node", family: "jobs" },
  cancel: { schema: Cancel, name: "Cancel", from: "hub", family: "jobs" },
  progress: { schema: Progress, name: "Progress", from: "node", family: "jobs" },
  result: { schema: Result, name: "Result", from: "node", family: "jobs" },
  resume: { schema: Resume, name: "Resume", from: "hub", family: "jobs" },
  heartbeat: { schema: Heartbeat, name: "Heartbeat", from: "node", family: "liveness" },
  probe: { schema: Probe, name: "Probe", from: "hub", family: "liveness" },
  probe_result: { schema: ProbeResult, name: "ProbeResult", from: "node", family: "liveness" },
  receipt: { schema: ReceiptMessage, name: "ReceiptMessage", from: "hub", family: "attestation" },
  statement: { schema: StatementMessage, name: "StatementMessage", from: "hub", family: "settlement" },
  dispute: { schema: Dispute, name: "Dispute", from: "node", family: "settlement" },
  error: { schema: ErrorMessage, name: "Error", from: "either", family: "control" },
  goodbye: { schema: Goodbye, name: "Goodbye", from: "either", family: "control" },
} as const satisfies Record<string, { schema: unknown; name: string; from: Sender; family: string }>;

/** A v1 message `type`. */
export type MessageType = keyof typeof MESSAGES;

/** The message with the given `type`. */
export type MessageOf<T extends MessageType> = Static<(typeof MESSAGES)[T]["schema"]>;

/** Any v1 message. */
export type SrpMessage = { [T in MessageType]: MessageOf<T> }[MessageType];

/** All message types, in registry order. */
export const MESSAGE_TYPES = Object.keys(MESSAGES) as MessageType[];

/** Whether a string is a v1 message type. */
export function isMessageType(type: string): type is MessageType {
  return Object.prototype.hasOwnProperty.call(MESSAGES, type);
}
