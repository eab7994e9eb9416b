/** Jobs and streaming: `job`, `cancel` (hub); `chunk`, `done`, `job_error` (node). */
import { Type, type Static } from "@sinclair/typebox";
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
  ].map((k) => Type.Literal(k)),
  { title: "JobApi" },
);

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
