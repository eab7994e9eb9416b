/**
 * Jobs and streaming: `job`, `cancel`, `resume` (hub); `chunk`, `done`, `job_error`,
 * `progress`, `result` (node). The last three belong to async jobs only (SRP-JOB-040).
 */
import { Type, type Static } from "@sinclair/typebox";
import { ASYNC_JOB_LIMITS } from "./async-jobs.js";
import { Receipt } from "./attestation.js";
import { ErrorCodeString, Id, message, ModelId, Price, Text, Timestamp, Usage } from "./primitives.js";

/** The consumer API a job's request body belongs to. */
export const JobApi = Type.Union(
  [
    "chat.completions",
    "messages",
    "responses",
    "completions",
    "embeddings",
    "images.generations",
    "audio.speech",
    "audio.transcriptions",
    "videos",
    "runs",
  ].map((k) => Type.Literal(k)),
  { title: "JobApi" },
);

/** The async APIs (SRP-JOB-039): jobs whose result travels in `result` frames and may be resumed. */
export const ASYNC_APIS = ["videos", "runs"] as const;

/** The consumer API a job's request body belongs to. */
export type JobApi = Static<typeof JobApi>;

/** A JSON object passed through untouched (a request body, a stream chunk, a response body). */
export const JsonObject = Type.Record(Type.String(), Type.Unknown(), { title: "JsonObject" });

/** Hub -> node: run one request on one instance. */
export const Job = message(
  "job",
  {
    jobId: Id,
    instanceId: Id,
    model: ModelId,
    api: JobApi,
    stream: Type.Boolean(),
    request: JsonObject,
    deadline: Timestamp,
    quote: Price,
  },
  "A consumer request for one instance: the body untouched, whether to stream, the deadline and the quoted price.",
);
/** Hub -> node: run one request on one instance. */
export type Job = Static<typeof Job>;

/** Node -> hub: one piece of a job's output, in order. */
export const Chunk = message(
  "chunk",
  { jobId: Id, seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), data: JsonObject },
  "One ordered piece of output in the job's API wire format (for chat completions, a chat.completion.chunk object).",
);
/** Node -> hub: one piece of a job's output. */
export type Chunk = Static<typeof Chunk>;

/** Node -> hub: the job finished; usage and the node-signed receipt. */
export const Done = message(
  "done",
  {
    jobId: Id,
    chunks: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    usage: Usage,
    response: Type.Optional(JsonObject),
    receipt: Receipt,
  },
  "Successful end of a job: number of chunks sent, measured usage, the full response for non-streamed jobs, and the node-signed receipt.",
);
/** Node -> hub: the job finished. */
export type Done = Static<typeof Done>;

/** Node -> hub: the job failed. */
export const JobError = message(
  "job_error",
  {
    jobId: Id,
    code: ErrorCodeString,
    message: Text,
    retryable: Type.Boolean(),
    upstreamStatus: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
    chunks: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  },
  "Failed end of a job: coded reason, whether another instance may succeed, the backend's HTTP status, and how many chunks were sent before the failure.",
);
/** Node -> hub: the job failed. */
export type JobError = Static<typeof JobError>;

/** Why the hub cancels a job. */
export const CancelReason = Type.Union(
  ["consumer_gone", "deadline", "shutdown", "superseded"].map((k) => Type.Literal(k)),
  { title: "CancelReason" },
);

/** Hub -> node: stop a job and free its slot. */
export const Cancel = message(
  "cancel",
  { jobId: Id, reason: CancelReason, message: Type.Optional(Text) },
  "Stop work on a job (consumer went away, deadline passed, hub shutting down) and free its slot.",
);
/** Hub -> node: stop a job. */
export type Cancel = Static<typeof Cancel>;

/** Node -> hub: how far an async job has come (SRP-JOB-041). */
export const Progress = message(
  "progress",
  { jobId: Id, progress: Type.Integer({ minimum: 0, maximum: 100 }), message: Type.Optional(Text) },
  "How far an async job has come, in percent; informational, never decreasing within a job.",
);
/** Node -> hub: how far an async job has come. */
export type Progress = Static<typeof Progress>;

/** Base64 (RFC 4648 section 4, padded) of 1 to `ASYNC_JOB_LIMITS.maxPartBytes` bytes. */
export const Base64Part = Type.String({
  minLength: 4,
  maxLength: 4 * Math.ceil(ASYNC_JOB_LIMITS.maxPartBytes / 3),
  pattern: "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
  title: "Base64Part",
});

/** Node -> hub: one contiguous byte range of an async job's result stream (SRP-JOB-042). */
export const Result = message(
  "result",
  { jobId: Id, offset: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), data: Base64Part },
  "One contiguous part of an async job's result stream: its offset in the stream and its bytes in base64 (at most the announced partBytes).",
);
/** Node -> hub: one byte range of an async job's result. */
export type Result = Static<typeof Result>;

/** Hub -> node: go on with an async job kept across a reconnect, from byte `received` (SRP-JOB-046). */
export const Resume = message(
  "resume",
  { jobId: Id, received: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) },
  "Resumes an async job of an earlier session on this one: the node sends the rest of its result stream from byte received, then the job's end.",
);
/** Hub -> node: go on with an async job kept across a reconnect. */
export type Resume = Static<typeof Resume>;
