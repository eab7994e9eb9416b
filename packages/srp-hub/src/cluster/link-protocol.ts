/**
 * The messages hub processes of one hub exchange over their direct links (docs/deployment.md):
 * the process that admitted a consumer request sends the job to the process holding the
 * node's session, which sends the job's events back, in order, on the same link. Pure:
 * message shapes, their JSON form (atomic amounts as decimal strings) and the link's
 * credential, an HMAC made with a key derived from the hub's identity that every process
 * of the hub holds.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Cancel, Chunk, Done, Job, JobError, Receipt } from "@srp/core/schema";
import type { UsageBounds } from "@srp/core/metering";
import type { MeterSpec } from "../api/meters.js";
import type { RoutingRecord } from "../routing/router.js";
import type { NodeSnapshot } from "./snapshot.js";

/** Who pays for a forwarded job: the consumer account and its reservation (settled by the receipt). */
export interface JobOwner {
  accountId: string;
  reservationId?: string;
}

/** A job for a node connected to the receiving process. */
export interface ForwardJob {
  t: "job";
  nodeId: string;
  job: Job;
  requestHash: string;
  owner?: JobOwner;
  bounds?: UsageBounds;
  meter?: MeterSpec;
}

/** The sender gave up on a job; `failed`: its instance is charged a failure (a missed deadline). */
export interface ForwardCancel {
  t: "cancel";
  jobId: string;
  reason: Cancel["reason"];
  failed?: boolean;
}

/** A routing observation of an instance, for the process that keeps its routing state. */
export type ForwardRecord = RoutingRecord;

/** What a forwarded job's settlement came to: the charge of the reservation it settled, if any. */
export interface SettledOnLink {
  t: "settled";
  jobId: string;
  /** False when the receipt could not be stored. */
  ok: boolean;
  reservationId?: string;
  /** Atomic units, decimal. */
  charge?: string;
}

/**
 * A job the receiving process could not start: its node is not connected there (`gone`),
 * every slot is taken, or the node re-offered the instance since the sender's snapshot.
 * `snapshot` is the node's current one, when it is connected.
 */
export interface RefusedOnLink {
  t: "refused";
  jobId: string;
  reason: string;
  gone?: boolean;
  snapshot?: NodeSnapshot;
}

/** Events of a forwarded job, in order. */
export type JobEventOnLink =
  | { t: "chunk"; chunk: Chunk }
  | { t: "done"; done: Done; receipt?: Receipt; rejected?: { code: string; message: string }; settles: boolean }
  | SettledOnLink
  | RefusedOnLink
  | { t: "error"; error: JobError }
  | { t: "lost"; jobId: string; reason: string };

/** Any message on a link. */
export type LinkMessage = ForwardJob | ForwardCancel | ForwardRecord | JobEventOnLink;

const KINDS: ReadonlySet<string> = new Set([
  "job",
  "cancel",
  "outcome",
  "latency",
  "throughput",
  "chunk",
  "done",
  "settled",
  "refused",
  "error",
  "lost",
]);

/** The JSON text of a message. */
export function encodeLink(message: LinkMessage): string {
  return JSON.stringify(message);
}

/** A message from its JSON text; undefined when it is not one (a peer holds the hub's key, so this guards against bugs, not strangers). */
export function decodeLink(text: string): LinkMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const t = (value as { t?: unknown }).t;
  return typeof t === "string" && KINDS.has(t) ? (value as LinkMessage) : undefined;
}

/** The job id a job event is about. */
export function jobIdOf(e: JobEventOnLink): string {
  switch (e.t) {
    case "chunk":
      return e.chunk.jobId;
    case "done":
      return e.done.jobId;
    case "error":
      return e.error.jobId;
    default:
      return e.jobId;
  }
}

/** The key processes of one hub authenticate their links with: derived from the hub's secret key, so only they hold it. */
export function linkKey(secretKey: Uint8Array): Buffer {
  return createHash("sha256").update("SRP cluster link key\n").update(secretKey.subarray(0, 32)).digest();
}

/** How long a link credential is accepted after it was made. */
export const LINK_TOKEN_TTL_MS = 60_000;

/**
 * A credential for opening a link from process `from` to process `to` at `now`:
 * `<from>.<to>.<ms>.<nonce>.<hmac>`. Naming the target keeps a credential seen on the wire
 * from opening a link to any other process; the target remembers nonces it accepted.
 */
export function linkToken(key: Buffer, from: string, to: string, nonce: string, now: number): string {
  const body = `${from}.${to}.${now}.${nonce}`;
  return `${body}.${createHmac("sha256", key).update(body).digest("base64url")}`;
}

/** The sending process and nonce of a valid, fresh credential made for process `self`; undefined otherwise. */
export function checkLinkToken(key: Buffer, token: string, now: number, self: string): { processId: string; nonce: string } | undefined {
  const parts = token.split(".");
  if (parts.length !== 5) return undefined;
  const [from, to, at, nonce, mac] = parts as [string, string, string, string, string];
  const when = Number(at);
  if (to !== self || !Number.isSafeInteger(when) || Math.abs(now - when) > LINK_TOKEN_TTL_MS) return undefined;
  const expected = createHmac("sha256", key).update(`${from}.${to}.${at}.${nonce}`).digest();
  const given = Buffer.from(mac, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  return { processId: from, nonce };
}

/** Whether a process id can name a process in link credentials (pure): base64url characters and `_`, 1 to 64. */
export function validProcessId(id: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(id);
}
