/**
 * The pure rules of async jobs (`spec/v1/jobs.md#async-jobs`, `offer.md`): reading the hub's
 * `srp.async_jobs` announcement, what an async instance may declare (SRP-OFF-019) and the safe
 * JSON Schema subset of its `io` (SRP-OFF-020), cutting a result stream into `result` frames
 * (SRP-JOB-042) and checking a `done` manifest against the bytes received (SRP-JOB-043).
 * Node and hub both use them; no I/O here.
 */
import { Value } from "@sinclair/typebox/value";
import { canonicalize } from "./canonical.js";
import { utf8 } from "./encoding.js";
import { ASYNC_JOB_LIMITS, AsyncJobsAnnouncement, ResultManifest } from "./schema/async-jobs.js";
import { ASYNC_APIS } from "./schema/jobs.js";
import type { Result } from "./schema/jobs.js";
import type { Instance } from "./schema/offer.js";

/** A job API whose jobs are async (SRP-JOB-039). */
export type AsyncApi = (typeof ASYNC_APIS)[number];

/** The capability an instance needs for each async API. */
export const ASYNC_CAPABILITY = { videos: "video", runs: "run" } as const satisfies Record<AsyncApi, string>;

/** Whether a job API is async (`videos`, `runs`). */
export function isAsyncApi(api: string): api is AsyncApi {
  return (ASYNC_APIS as readonly string[]).includes(api);
}

/**
 * The hub's async-job announcement in a `welcome` (SRP-JOB-039), or undefined when the
 * welcome carries none or an ill-formed one (a node then treats the hub as not taking
 * async jobs).
 */
export function asyncJobsOf(welcome: { ext?: Record<string, unknown> }): AsyncJobsAnnouncement | undefined {
  const value = welcome.ext?.[ASYNC_JOB_LIMITS.extKey];
  if (!Value.Check(AsyncJobsAnnouncement, value)) return undefined;
  return value.maxResultBytes >= value.partBytes ? value : undefined;
}

/** The `welcome.ext` member that announces async jobs with the given (or the reference) limits. */
export function asyncJobsExt(limits: Partial<AsyncJobsAnnouncement> = {}): Record<string, AsyncJobsAnnouncement> {
  return {
    [ASYNC_JOB_LIMITS.extKey]: {
      partBytes: limits.partBytes ?? ASYNC_JOB_LIMITS.defaultPartBytes,
      maxResultBytes: limits.maxResultBytes ?? ASYNC_JOB_LIMITS.defaultMaxResultBytes,
      resumeWindowMs: limits.resumeWindowMs ?? ASYNC_JOB_LIMITS.defaultResumeWindowMs,
    },
  };
}

/** Whether an instance is async: it has the capability `video` or `run`. */
export function isAsyncInstance(instance: Pick<Instance, "capabilities">): boolean {
  return instance.capabilities.some((c) => c === "video" || c === "run");
}

/**
 * What is wrong with an instance under SRP-OFF-019 and SRP-OFF-020, or undefined: `video`
 * and `run` stand alone (no other capability with them), `run` carries `io`, `io` appears
 * only with one of them, and `io` keeps to the safe subset and its size.
 */
export function asyncInstanceProblem(instance: Pick<Instance, "capabilities" | "io">): string | undefined {
  const asyncCaps = instance.capabilities.filter((c) => c === "video" || c === "run");
  if (asyncCaps.length === 0) return instance.io === undefined ? undefined : "io is declared by an instance without video or run";
  if (instance.capabilities.length > 1)
    return `${asyncCaps[0]} stands alone: the instance also declares ${instance.capabilities.join(", ")}`;
  if (asyncCaps[0] === "run" && instance.io === undefined) return "an instance with run declares no io";
  return instance.io === undefined ? undefined : ioSchemaProblem(instance.io);
}

/** The JSON Schema keywords an instance's `io` may use (SRP-OFF-020). */
export const IO_SCHEMA_KEYWORDS: ReadonlySet<string> = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "prefixItems",
  "enum",
  "const",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "uniqueItems",
  "anyOf",
  "oneOf",
  "allOf",
  "not",
  "$defs",
  "$ref",
  "title",
  "description",
  "default",
  "examples",
  "format",
  "contentMediaType",
  "contentEncoding",
  "deprecated",
  "x-order",
]);

/** Keywords whose value is a map of names to schemas. */
const SCHEMA_MAPS = new Set(["properties", "$defs"]);
/** Keywords whose value is one schema. */
const ONE_SCHEMA = new Set(["additionalProperties", "items", "not"]);
/** Keywords whose value is a non-empty list of schemas. */
const SCHEMA_LISTS = new Set(["prefixItems", "anyOf", "oneOf", "allOf"]);
/** Keywords whose value is a number. */
const NUMBERS = new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"]);
/** Keywords whose value is a non-negative integer. */
const COUNTS = new Set(["minLength", "maxLength", "minItems", "maxItems"]);
/** The JSON Schema type names. */
const TYPES = new Set(["null", "boolean", "object", "array", "number", "integer", "string"]);
/** The deepest nesting of schemas an `io` may have. */
const MAX_SCHEMA_DEPTH = 32;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** What is wrong with one schema (a boolean or an object) at `path`, walking its subschemas. */
function schemaProblem(schema: unknown, path: string, depth: number, root: Record<string, unknown>): string | undefined {
  if (typeof schema === "boolean") return undefined;
  if (!isObject(schema)) return `${path} is not a schema`;
  if (depth > MAX_SCHEMA_DEPTH) return `${path} nests deeper than ${MAX_SCHEMA_DEPTH} schemas`;
  for (const [k, v] of Object.entries(schema)) {
    const at = `${path}/${k}`;
    if (!IO_SCHEMA_KEYWORDS.has(k)) return `${at}: the keyword ${k} is outside the allowed subset (SRP-OFF-020)`;
    let problem: string | undefined;
    if (SCHEMA_MAPS.has(k)) {
      if (!isObject(v)) return `${at} is not an object`;
      for (const [name, sub] of Object.entries(v)) {
        problem = schemaProblem(sub, `${at}/${name}`, depth + 1, root);
        if (problem) return problem;
      }
    } else if (ONE_SCHEMA.has(k)) problem = schemaProblem(v, at, depth + 1, root);
    else if (SCHEMA_LISTS.has(k)) {
      if (!Array.isArray(v) || v.length === 0) return `${at} is not a non-empty list of schemas`;
      for (const [i, sub] of v.entries()) {
        problem = schemaProblem(sub, `${at}/${i}`, depth + 1, root);
        if (problem) return problem;
      }
    } else if (NUMBERS.has(k)) {
      if (typeof v !== "number" || !Number.isFinite(v) || (k === "multipleOf" && v <= 0)) return `${at} is not a valid number`;
    } else if (COUNTS.has(k)) {
      if (!Number.isSafeInteger(v) || (v as number) < 0) return `${at} is not a non-negative integer`;
    } else if (k === "type") {
      const names = Array.isArray(v) ? v : [v];
      if (names.length === 0 || names.some((t) => typeof t !== "string" || !TYPES.has(t))) return `${at} names no JSON Schema type`;
    } else if (k === "required") {
      if (!Array.isArray(v) || v.some((n) => typeof n !== "string")) return `${at} is not a list of names`;
    } else if (k === "enum") {
      if (!Array.isArray(v) || v.length === 0) return `${at} is not a non-empty list`;
    } else if (k === "$ref") problem = refProblem(v, at, root);
    if (problem) return problem;
  }
  return undefined;
}

/** What is wrong with a `$ref`: it must be a local JSON pointer (`#/...`) that resolves in its document. */
function refProblem(ref: unknown, at: string, root: Record<string, unknown>): string | undefined {
  if (typeof ref !== "string" || !(ref === "#" || ref.startsWith("#/"))) return `${at}: only local references (#/...) are allowed`;
  let node: unknown = root;
  for (const raw of ref.split("/").slice(1)) {
    const token = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (!isObject(node) || !Object.prototype.hasOwnProperty.call(node, token)) return `${at}: ${ref} does not resolve`;
    node = node[token];
  }
  return undefined;
}

/**
 * What is wrong with an instance's `io` under SRP-OFF-020, or undefined: both members are
 * schemas of the allowed keywords only, every `$ref` is local and resolves, and the
 * canonical JSON of `io` is at most 16 384 bytes.
 */
export function ioSchemaProblem(io: { input: unknown; output: unknown }): string | undefined {
  const size = utf8(canonicalize(io)).length;
  if (size > ASYNC_JOB_LIMITS.maxIoBytes) return `io is ${size} bytes of canonical JSON, more than ${ASYNC_JOB_LIMITS.maxIoBytes}`;
  for (const side of ["input", "output"] as const) {
    const schema = io[side];
    if (!isObject(schema)) return `io.${side} is not a schema object`;
    const problem = schemaProblem(schema, `/io/${side}`, 0, schema);
    if (problem) return problem;
  }
  return undefined;
}

/** Standard base64 (RFC 4648 section 4, padded) of bytes. */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The bytes of standard base64 text, or undefined when it is not padded standard base64. */
export function fromBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  try {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

/**
 * The `result` frames that carry `stream[from..]` of job `jobId` in parts of at most
 * `partBytes` bytes, with contiguous offsets starting at `from` (SRP-JOB-042).
 */
export function resultFrames(jobId: string, stream: Uint8Array, partBytes: number, from = 0): Result[] {
  if (!Number.isSafeInteger(partBytes) || partBytes < 1) throw new RangeError("partBytes must be a positive integer");
  if (!Number.isSafeInteger(from) || from < 0 || from > stream.length) throw new RangeError("from must lie within the stream");
  const frames: Result[] = [];
  for (let offset = from; offset < stream.length; offset += partBytes)
    frames.push({ type: "result", jobId, offset, data: toBase64(stream.subarray(offset, Math.min(offset + partBytes, stream.length))) });
  return frames;
}

/** One artifact's place in a result stream. */
export interface ArtifactRange {
  /** The artifact's name. */
  name: string;
  /** First byte of the artifact in the stream. */
  start: number;
  /** One past its last byte. */
  end: number;
}

/** Where each artifact of a manifest lies in the result stream: consecutive, in manifest order. */
export function artifactRanges(manifest: Pick<ResultManifest, "artifacts">): ArtifactRange[] {
  let at = 0;
  return manifest.artifacts.map((a) => {
    const r = { name: a.name, start: at, end: at + a.bytes };
    at = r.end;
    return r;
  });
}

/**
 * What is wrong with an async job's `done.response` (SRP-JOB-043), or undefined: it is a
 * `srp.result` manifest; artifact names are unique; their sizes sum to the bytes received;
 * each artifact's SHA-256 over its range (as `sha256Of` computes it over the stream)
 * equals its `sha256`; a `videos` job has an artifact `video` and `video` details; a
 * `runs` job's inline `output` is at most 65 536 bytes of canonical JSON (SRP-JOB-044).
 */
export function manifestProblem(
  api: AsyncApi,
  response: unknown,
  receivedBytes: number,
  sha256Of: (start: number, end: number) => string,
): string | undefined {
  if (!Value.Check(ResultManifest, response)) {
    const first = [...Value.Errors(ResultManifest, response)][0];
    return `done.response is not an srp.result manifest${first ? ` (${first.path || "/"}: ${first.message})` : ""}`;
  }
  const names = new Set<string>();
  for (const a of response.artifacts) {
    if (names.has(a.name)) return `the artifact name ${a.name} appears twice`;
    names.add(a.name);
  }
  const total = response.artifacts.reduce((s, a) => s + a.bytes, 0);
  if (total !== receivedBytes) return `the artifacts hold ${total} bytes but the result stream carried ${receivedBytes}`;
  const ranges = artifactRanges(response);
  for (const [i, r] of ranges.entries()) {
    const sha = sha256Of(r.start, r.end);
    if (sha !== response.artifacts[i]!.sha256)
      return `the artifact ${r.name} hashes to ${sha}, not its sha256 ${response.artifacts[i]!.sha256}`;
  }
  if (api === "videos") {
    if (!names.has("video")) return "a videos job's result has no artifact named video";
    if (response.video === undefined) return "a videos job's result has no video member";
    if (response.output !== null) return "a videos job's output is not null";
  } else {
    if (response.video !== undefined) return "a runs job's result has a video member";
    const size = utf8(canonicalize(response.output ?? null)).length;
    if (size > ASYNC_JOB_LIMITS.maxOutputBytes)
      return `the run's inline output is ${size} bytes of canonical JSON, more than ${ASYNC_JOB_LIMITS.maxOutputBytes}`;
  }
  return undefined;
}
