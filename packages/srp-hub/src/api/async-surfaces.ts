/**
 * The async consumer surfaces (consumer.md "Async jobs"): `POST /v1/videos` in OpenAI's
 * Videos API shape (JSON or multipart form) and `POST /v1/runs` (`{ model, input }` for any
 * model a node offers under its declared `io`). Each plans a `videos` or `runs` job billed by
 * runs and seconds: a video by the seconds asked for, a run by its `max_seconds`; admission
 * reserves that worst case and the receipt settles it. The job's end is kept on the plan
 * ({@link AsyncPlan.outcome}) for the runner (`async-jobs.ts`) to store; nothing of it reaches
 * the consumer before its receipt is countersigned (SRP-JOB-050).
 */
import { SrpError, type AsyncApi } from "@srp/core";
import {
  ASYNC_REQUEST_LIMITS,
  checkConsumerBody,
  RunCreateRequest,
  VideoCreateRequest,
  type AsyncJobObject,
  type Done,
  type Job,
} from "@srp/core/schema";
import type { PaidResource } from "../payments/x402-policy.js";
import { errorResponse, readJsonObject, readMultipartForm } from "./http.js";
import { publicUrlProblem } from "./webhooks.js";
import { preferences, type ConsumerApiContext, type Plan, type SrpUsageExtension, type Surface } from "./serve.js";

type Json = Record<string, unknown>;
const invalid = (message: string) => new SrpError("api.invalid_body", message);

/** Where videos and runs are created. */
export const VIDEOS_PATH = "/v1/videos";
/** Where runs are created. */
export const RUNS_PATH = "/v1/runs";

/** A video's seconds when the request names none, and its size (OpenAI's defaults). */
export const VIDEO_DEFAULTS = Object.freeze({ seconds: "4", size: "720x1280" });

/** How an async job ended on its node: its countersigned `done`, the billed usage members and its result stream. */
export interface AsyncOutcome {
  job: Job;
  done: Done;
  ext: SrpUsageExtension;
  result: Uint8Array;
}

/** A planned async request. */
export interface AsyncPlan extends Plan {
  /** The job object it makes (`video`, `srp.run`). */
  object: AsyncJobObject["object"];
  api: AsyncApi;
  /** The most run time billed (a run's `max_seconds`, a video's seconds). */
  seconds: number;
  /** Where the finished job is posted, if anywhere. */
  webhookUrl: string | undefined;
  /** Members of the job object taken from the request (a video's prompt, seconds and size). */
  shown: Partial<AsyncJobObject>;
  /** Set when the job has ended with a countersigned `done` (by `respond`). */
  outcome?: AsyncOutcome;
}

/** Whether a plan is an async one. */
export function isAsyncPlan(plan: Plan): plan is AsyncPlan {
  return "object" in plan && "api" in plan && "shown" in plan;
}

/** A reference image URL a node may be sent: a `data:` image, or `https:` on a public host (the backend fetches it). */
function referenceProblem(url: string): string | undefined {
  if (/^data:image\/[a-z0-9.+-]+;base64,/i.test(url)) return undefined;
  if (!/^https:\/\//i.test(url)) return "input_reference.image_url is a data:image/...;base64 URL or an https: URL";
  return publicUrlProblem(url, "input_reference.image_url");
}

/** The webhook URL of a body, checked by the hub's rule, or the refusal. */
function webhookOf(body: Json, ctx: ConsumerApiContext): string | undefined | SrpError {
  const url = body.webhook_url;
  if (url === undefined) return undefined;
  const problem = typeof url === "string" ? ctx.asyncJobs?.webhookProblem(url) : "webhook_url is a string";
  return problem ? invalid(problem) : (url as string);
}

/** The plan shared by videos and runs: billed runs:1 and `seconds` at most; the job's end kept on the plan. */
function asyncPlan(
  base: Pick<AsyncPlan, "model" | "prefs" | "object" | "api" | "seconds" | "webhookUrl" | "shown">,
  capability: "video" | "run",
  body: Json,
): AsyncPlan {
  const plan: AsyncPlan = {
    ...base,
    stream: false,
    capabilities: [capability],
    contextTokens: 0,
    bound: { promptTokens: 0, completionTokens: 0, seconds: base.seconds, runs: 1 },
    job: () => ({ api: base.api, body }),
    respond(job, done, ext, headers, _accountId, result) {
      // Nothing of a job whose receipt was not countersigned and stored reaches the consumer (SRP-JOB-050): it failed, unbilled.
      if (ext.receipt_id === null)
        return errorResponse(
          new SrpError(
            "job.upstream_error",
            `the node's receipt was not countersigned${ext.receipt_error ? ` (${ext.receipt_error})` : ""}; its result is not delivered and nothing is billed`,
          ),
          headers,
        );
      plan.outcome = { job, done, ext, result: result ?? new Uint8Array(0) };
      return new Response(null, { status: 204, headers });
    },
  };
  return plan;
}

/** Checks a `POST /v1/videos` body and plans its `videos` job (SRP-JOB-039: prompt, model, seconds, size, input_reference). */
export function planVideo(body: Json, ctx: ConsumerApiContext): AsyncPlan | SrpError {
  const problem = checkConsumerBody(VideoCreateRequest, body);
  if (problem) return invalid(problem);
  const prefs = preferences(body);
  if (prefs instanceof SrpError) return prefs;
  const seconds = (body.seconds as string | undefined) ?? VIDEO_DEFAULTS.seconds;
  if (Number(seconds) > ASYNC_REQUEST_LIMITS.maxVideoSeconds)
    return invalid(`seconds is at most ${ASYNC_REQUEST_LIMITS.maxVideoSeconds} on this hub`);
  const size = (body.size as string | undefined) ?? VIDEO_DEFAULTS.size;
  const reference = body.input_reference as { image_url: string } | undefined;
  const refProblem = reference ? referenceProblem(reference.image_url) : undefined;
  if (refProblem) return invalid(refProblem);
  const webhookUrl = webhookOf(body, ctx);
  if (webhookUrl instanceof SrpError) return webhookUrl;
  const model = body.model as string;
  const prompt = body.prompt as string;
  const job: Json = { prompt, model, seconds, size, ...(reference ? { input_reference: { image_url: reference.image_url } } : {}) };
  return asyncPlan(
    {
      model,
      prefs,
      object: "video",
      api: "videos",
      seconds: Number(seconds),
      webhookUrl,
      shown: { prompt, seconds, size, remixed_from_video_id: null },
    },
    "video",
    job,
  );
}

/** Checks a `POST /v1/runs` body and plans its `runs` job: `{ model, input }`, billed up to `max_seconds` of run time. */
export function planRun(body: Json, ctx: ConsumerApiContext): AsyncPlan | SrpError {
  const problem = checkConsumerBody(RunCreateRequest, body);
  if (problem) return invalid(problem);
  const prefs = preferences(body);
  if (prefs instanceof SrpError) return prefs;
  const webhookUrl = webhookOf(body, ctx);
  if (webhookUrl instanceof SrpError) return webhookUrl;
  const model = body.model as string;
  const seconds = (body.max_seconds as number | undefined) ?? ASYNC_REQUEST_LIMITS.defaultRunSeconds;
  return asyncPlan({ model, prefs, object: "srp.run", api: "runs", seconds, webhookUrl, shown: {} }, "run", {
    model,
    input: body.input as Json,
  });
}

/**
 * Reads a `POST /v1/videos` body: JSON, or a multipart form (the official OpenAI client's
 * shape) whose fields are strings and whose `input_reference` file becomes a `data:` URL.
 */
export async function readVideoBody(request: Request, maxBytes: number): Promise<Json | SrpError> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\b/i.test(type)) return readJsonObject(request, maxBytes);
  const form = await readMultipartForm(request, maxBytes);
  if (form instanceof SrpError) return form;
  const body: Json = Object.create(null) as Json;
  for (const [key, value] of form.entries()) {
    if (body[key] !== undefined) return invalid(`field ${key} is given twice`);
    if (typeof value === "string") body[key] = value;
    else if (key === "input_reference") {
      const data = Buffer.from(await value.arrayBuffer()).toString("base64");
      body.input_reference = { image_url: `data:${value.type || "image/png"};base64,${data}` };
    } else return invalid(`field ${key} must not be a file`);
  }
  return body;
}

const resource =
  (description: string, example: Json) =>
  (url: string): PaidResource => ({ url, description, mimeType: "application/json", method: "POST", example });

/** `POST /v1/videos`. */
export const videosSurface: Surface = {
  async: true,
  resource: resource(
    "Video generation (OpenAI Videos API shape) run asynchronously on an SRP provider, billed per run and per second of video; poll GET /v1/jobs/{id}.",
    { model: "sora-2", prompt: "a lighthouse at dusk", seconds: "4", size: "720x1280" },
  ),
  error: errorResponse,
  read: readVideoBody,
  plan: (body, ctx) => planVideo(body, ctx),
};

/** `POST /v1/runs`. */
export const runsSurface: Surface = {
  async: true,
  resource: resource(
    "Run any model a provider offers under its declared input schema, asynchronously; billed per run and per second of run time; poll GET /v1/jobs/{id}.",
    { model: "upscaler", input: { image: "data:image/png;base64,...", scale: 2 } },
  ),
  error: errorResponse,
  read: readJsonObject,
  plan: (body, ctx) => planRun(body, ctx),
};
