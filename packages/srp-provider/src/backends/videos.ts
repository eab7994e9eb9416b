/**
 * A backend for `videos` jobs (SRP-JOB-051): a client of OpenAI's Videos API shape on any
 * server that speaks it (OpenAI itself with a key, or the simulator's video mode). It creates
 * the video, polls it until it ends (relaying `progress`), then downloads its content as the
 * artifact `video`. The usage is the video's seconds and one run.
 */
import type { BackendKind } from "@srp/core/schema";
import { BackendError, classifyUpstreamStatus, type AsyncCallOptions, type AsyncResult, type Backend, type BackendModel } from "./types.js";

/** Options of {@link videosBackend}. */
export interface VideosBackendOptions {
  /** Base URL of the API, ending in `/v1` (e.g. `https://api.openai.com/v1`). */
  baseUrl: string;
  /** Bearer key, if the server wants one. */
  apiKey?: string;
  /** Kind reported in offers; default `openai-compatible`. */
  kind?: BackendKind;
  /** How often to retrieve the video while it renders, in ms; default 2000 (SRP-JOB-051: at least every 2 s). */
  pollMs?: number;
}

type Json = Record<string, unknown>;

/** Backend error codes of a failed video that mean the consumer's input was refused. */
const REFUSED = /moderation|policy|invalid|refused|safety|content/i;

/** The `job_error` code for a video that ended `failed` with this error (SRP-JOB-051). */
export function failedVideoCode(error: unknown): "job.invalid_request" | "job.upstream_error" {
  const code = typeof error === "object" && error !== null ? String((error as Json).code ?? "") : "";
  return REFUSED.test(code) ? "job.invalid_request" : "job.upstream_error";
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", stop, { once: true });
  });

/**
 * A backend serving `videos` jobs from an OpenAI-shaped Videos API.
 *
 * @example
 * const backend = videosBackend({ baseUrl: sim.baseUrl, pollMs: 200 });
 */
export function videosBackend(options: VideosBackendOptions): Backend {
  const base = options.baseUrl.replace(/\/+$/, "");
  const pollMs = Math.min(options.pollMs ?? 2000, 2000);
  const headers = (json: boolean): Record<string, string> => ({
    ...(json ? { "content-type": "application/json" } : {}),
    ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
  });
  const call = async (method: string, path: string, signal: AbortSignal, body?: Json): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: headers(body !== undefined),
        signal,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw new BackendError("job.upstream_error", `video backend unreachable: ${(error as Error).message}`, undefined, { cause: error });
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      throw new BackendError(
        classifyUpstreamStatus(res.status, text),
        `video backend answered ${res.status}: ${text.slice(0, 300)}`,
        res.status,
      );
    }
    return res;
  };
  const json = async (res: Response): Promise<Json> => {
    const v = (await res.json().catch(() => undefined)) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v))
      throw new BackendError("job.upstream_error", "video backend answered no JSON object");
    return v as Json;
  };

  const runAsync = async (request: Json, opts: AsyncCallOptions): Promise<AsyncResult> => {
    const { signal } = opts;
    let video = await json(await call("POST", "/videos", signal, request));
    const id = video.id;
    if (typeof id !== "string" || !/^[A-Za-z0-9_-]{1,200}$/.test(id))
      throw new BackendError("job.upstream_error", "the created video has no usable id");
    const remove = () => void call("DELETE", `/videos/${id}`, AbortSignal.timeout(10_000)).catch(() => undefined);
    signal.addEventListener("abort", remove, { once: true }); // SRP-JOB-051: a cancelled job deletes its video
    try {
      for (;;) {
        if (typeof video.progress === "number") opts.onProgress(Math.min(99, Math.max(0, Math.floor(video.progress))));
        if (video.status === "completed") break;
        if (video.status === "failed") {
          const error = video.error as Json | null | undefined;
          throw new BackendError(failedVideoCode(error), `the video failed: ${String(error?.message ?? error?.code ?? "no reason given")}`);
        }
        if (video.status !== "queued" && video.status !== "in_progress")
          throw new BackendError("job.upstream_error", `the video has an unknown status ${String(video.status)}`);
        await sleep(pollMs, signal);
        video = await json(await call("GET", `/videos/${id}`, signal));
      }
      const content = await call("GET", `/videos/${id}/content?variant=video`, signal);
      const bytes = new Uint8Array(await content.arrayBuffer());
      const seconds = Number(video.seconds);
      if (!Number.isFinite(seconds) || seconds < 0) throw new BackendError("job.upstream_error", "the completed video states no seconds");
      return {
        artifacts: [{ name: "video", contentType: content.headers.get("content-type")?.split(";")[0]?.trim() || "video/mp4", bytes }],
        video: { seconds: String(Math.ceil(seconds)), size: String(video.size ?? request.size ?? "720x1280") },
        output: null,
        usage: { promptTokens: 0, completionTokens: 0, seconds: Math.ceil(seconds), runs: 1, measured: true },
      };
    } finally {
      signal.removeEventListener("abort", remove);
    }
  };

  return {
    kind: options.kind ?? "openai-compatible",
    label: `videos at ${base}`,
    asyncApi: "videos",
    async listModels(signal?: AbortSignal): Promise<BackendModel[]> {
      const res = await call("GET", "/models", signal ?? AbortSignal.timeout(10_000));
      const data = (await json(res)).data;
      return Array.isArray(data) ? data.filter((m): m is { id: string } => typeof m?.id === "string").map((m) => ({ id: m.id })) : [];
    },
    async chat() {
      throw new BackendError("job.unsupported_api", "a videos backend serves no chat");
    },
    runAsync,
    async probe(signal) {
      await call("GET", "/videos?limit=1", signal);
    },
  };
}
