/**
 * The seam between a provider node and the thing that actually runs a model: a local
 * model server, or a forwarded API key. Every backend speaks OpenAI chat completions to
 * the node (translating where its own API differs), so the node relays one format.
 */
import { LocalError, type ErrorCode, type LocalErrorOptions } from "@srp/core";
import type { BackendKind, InstanceIo, JobApi, Usage } from "@srp/core/schema";

/** A model a backend reports. */
export interface BackendModel {
  /** Model id as the backend names it. */
  id: string;
  /** Content digest, where the backend reports one (Ollama does). */
  digest?: string;
  /** Context length, where the backend reports one. */
  contextLength?: number;
}

/** Options of one backend call. */
export interface ChatCallOptions {
  /** Aborts the upstream request (SRP `cancel`, deadline, session loss). */
  signal: AbortSignal;
  /** The job's extension members (`ext`), e.g. `anthropic.beta`: the beta features a Messages request asked for. */
  ext?: Readonly<Record<string, unknown>>;
}

/**
 * A backend's answer: a stream of objects in the API's wire format (`chat.completion.chunk`
 * objects, or Anthropic stream events), or one whole answer (a `chat.completion`, an
 * Anthropic Message, an embeddings list, an images response, a transcription; speech as
 * `{object: "srp.audio", content_type, data}` with the audio bytes in base64).
 */
export type ChatResult =
  | { kind: "stream"; chunks: AsyncIterable<Record<string, unknown>> }
  | { kind: "response"; body: Record<string, unknown> };

/** A consumer API other than chat completions that a backend may serve itself. */
export type BackendApi = Exclude<JobApi, "chat.completions">;

/** Something that runs OpenAI-format chat completions. */
export interface Backend {
  /** What kind of backend this is (reported in offers). */
  readonly kind: BackendKind;
  /** A label for logs, never containing a secret (e.g. `ollama at http://127.0.0.1:11434`). */
  readonly label: string;
  /**
   * Whether streams report usage in every chunk (vLLM's `continuous_usage_stats`), so a
   * job cancelled because its consumer left can still be billed for what it delivered.
   */
  readonly continuousUsage?: boolean;
  /** The models it serves. */
  listModels(signal?: AbortSignal): Promise<BackendModel[]>;
  /**
   * Runs one chat completion. `request.stream` says which kind of result is wanted; for
   * streams the backend is asked for usage in the last chunk. Throws {@link BackendError}.
   */
  chat(request: Record<string, unknown>, options: ChatCallOptions): Promise<ChatResult>;
  /** The other consumer APIs it serves through {@link Backend.run} (an Anthropic key serves `messages` natively). */
  readonly apis?: readonly BackendApi[];
  /**
   * Runs one request of another API, in that API's own wire format (`messages` streams
   * when `request.stream` is true; the others answer whole). Throws {@link BackendError}.
   */
  run?(api: BackendApi, request: Record<string, unknown>, options: ChatCallOptions): Promise<ChatResult>;
  /**
   * The async API it serves (`videos` or `runs`, `spec/v1/jobs.md#async-jobs`): its instances
   * take those jobs through {@link Backend.runAsync} and nothing else (no chat).
   */
  readonly asyncApi?: "videos" | "runs";
  /** Runs one async job to its end, reporting progress. Throws {@link BackendError}. */
  runAsync?(request: Record<string, unknown>, options: AsyncCallOptions): Promise<AsyncResult>;
  /** The declared input and output of a `runs` backend (SRP-OFF-021), read from the backend. */
  io?(signal?: AbortSignal): Promise<InstanceIo>;
  /** Answers a `probe` without a chat call (an async backend's health check); throws {@link BackendError} when unhealthy. */
  probe?(signal: AbortSignal): Promise<void>;
}

/** Options of one async backend call (`videos`, `runs`). */
export interface AsyncCallOptions extends ChatCallOptions {
  /** Called when the backend reports how far the job has come (0..100; the node keeps the largest). */
  onProgress(progress: number): void;
}

/** One file of an async job's result. */
export interface AsyncArtifact {
  /** Its name in the `srp.result` manifest (`video`, `out-0.png`, `output.json`...). */
  name: string;
  /** Its media type. */
  contentType: string;
  /** Its bytes. */
  bytes: Uint8Array;
}

/** What an async backend produced: the files in stream order, a video's details, a run's JSON output, the usage. */
export interface AsyncResult {
  artifacts: AsyncArtifact[];
  /** A `videos` job's delivered seconds and size. */
  video?: { seconds: string; size: string };
  /** A `runs` job's output, files replaced by `srp-artifact:<name>` (SRP-JOB-044); null for a video. */
  output: unknown;
  usage: Usage;
}

/**
 * A backend failure, already classified with an SRP job error code. It stays inside the
 * node: the node reports `code` and the message in a `job_error` (spec/v1/jobs.md), and
 * the wire error is built there.
 *
 * @example
 * throw new BackendError("job.upstream_error", "backend unreachable: ECONNREFUSED", undefined, { cause: error });
 */
export class BackendError extends LocalError {
  override readonly name = "BackendError";
  constructor(
    /** The SRP code the node reports in `job_error`. */
    readonly code: Extract<ErrorCode, `job.${string}`>,
    message: string,
    /** The backend's HTTP status, when it answered. */
    readonly upstreamStatus?: number,
    options?: LocalErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Classifies a backend's HTTP error status (and error text) as an SRP job error code:
 * consumer-caused failures are neutral for health (SRP-JOB-014).
 */
export function classifyUpstreamStatus(status: number, text: string): Extract<ErrorCode, `job.${string}`> {
  if (/context[ _-]?length|context window|too many tokens|maximum context/i.test(text) && status < 500)
    return "job.context_length_exceeded";
  if (status === 400 || status === 413 || status === 422) return "job.invalid_request";
  if (status === 429) return "job.upstream_rate_limited";
  if (status === 408 || status === 504) return "job.upstream_timeout";
  return "job.upstream_error";
}
