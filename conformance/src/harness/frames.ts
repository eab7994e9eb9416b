/**
 * Frames the harness builds to break one wire rule (invalid UTF-8, a size, nesting depth,
 * duplicate member names, a message of the wrong role, `ext` keys), and scans of the frames
 * a peer sent (reserved `ext` keys, frames over a limit). Both modes use them.
 */
import { JOB_TRACE_EXT, validateMessage } from "@srp/core";
import { ASYNC_JOB_LIMITS } from "@srp/core/schema";
import type { WirePeer } from "./wire.js";

const utf8 = new TextEncoder();

/** A goodbye whose `reason` holds bytes that are not UTF-8 (a lone continuation byte, then an overlong "/"). */
export function badUtf8Frame(): Uint8Array {
  const head = utf8.encode('{"type":"goodbye","reason":"');
  const tail = utf8.encode('"}');
  return new Uint8Array([...head, 0x80, 0xc0, 0xaf, ...tail]);
}

/** A goodbye of `bytes` bytes (ASCII). */
export function goodbyeOfSize(bytes: number): string {
  const head = '{"type":"goodbye","reason":"';
  const tail = '"}';
  return head + "x".repeat(bytes - head.length - tail.length) + tail;
}

/** A goodbye whose `ext` value nests arrays `levels` deep (the frame itself is `levels + 2` deep). */
export function deepFrame(levels: number): string {
  return `{"type":"goodbye","reason":"deep","ext":{"conformance.deep":${"[".repeat(levels)}${"]".repeat(levels)}}}`;
}

/** Repeats the first occurrence of `member` (`"name":value`) in JSON text, so the object has the name twice. */
export function withDuplicate(json: string, member: string): string {
  const i = json.indexOf(member);
  if (i < 0) throw new Error(`${member} is not in the frame`);
  return `${json.slice(0, i)}${member},${json.slice(i)}`;
}

/** A `job` that matches its schema: a message only hubs send. */
export function schemaValidJob(): Record<string, unknown> {
  const job = {
    type: "job",
    jobId: "job_conformance_wrong_role",
    instanceId: "conf-wrong-role",
    model: "conformance-wrong-role",
    api: "chat.completions",
    stream: false,
    request: { model: "conformance-wrong-role", messages: [{ role: "user", content: "hi" }] },
    deadline: Date.now() + 60_000,
    quote: { input: "1", output: "1" },
  };
  const problem = validateMessage(job);
  if (problem) throw new Error(`harness bug: the wrong-role job does not match its schema: ${problem.message}`);
  return job;
}

/** `ext` objects that break the key rule of SRP-FRM-011, by what is wrong with them. */
export const BAD_EXTS: ReadonlyArray<[string, unknown]> = [
  ["a key with an upper-case namespace", { "Conformance.note": 1 }],
  ["a key without a namespace", { note: 1 }],
  ["a key ending in a line feed (ECMAScript $)", { "conformance.note\n": 1 }],
  ["a key of 65 characters", { [`conformance.${"k".repeat(53)}`]: 1 }],
  ["33 keys", Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`conformance.k${i}`, i]))],
  ["an ext that is an array", ["conformance.note"]],
];

/** `ext` keys a receiver must accept and ignore: well-formed, unknown, with values of every JSON kind. */
export const UNKNOWN_EXT = {
  "conformance.note": { nested: [1, "two", null] },
  "acme-corp.v2_x.y": null,
  [`conformance.${"k".repeat(52)}`]: 3,
};

/** The `ext` keys this specification defines in its namespace `srp` (SRP-VER-004): a job's trace context (SRP-JOB-037) and the async-job announcement (SRP-JOB-039). */
const SPEC_EXT_KEYS: ReadonlySet<string> = new Set([...Object.values(JOB_TRACE_EXT), ASYNC_JOB_LIMITS.extKey]);

/** Every `ext` key of received messages that is in the reserved namespace `srp` and not defined by the specification. */
export function reservedExtKeys(peer: WirePeer): string[] {
  return peer.received.flatMap((r) =>
    Object.keys((r.message?.ext as Record<string, unknown> | undefined) ?? {}).filter((k) => k.startsWith("srp.") && !SPEC_EXT_KEYS.has(k)),
  );
}

/** Received frames larger than `limit` UTF-8 bytes. */
export function oversizeFrames(peer: WirePeer, limit: number): string[] {
  return peer.received
    .filter((r) => utf8.encode(r.raw).length > limit)
    .map((r) => `${String(r.message?.type ?? "?")} of ${utf8.encode(r.raw).length} bytes`);
}
