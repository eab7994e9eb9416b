/**
 * The simulator's slow video mode, **not a model**: OpenAI's Videos API wire shape
 * (`POST /v1/videos`, `GET /v1/videos`, `GET /v1/videos/{id}`, `GET /v1/videos/{id}/content`,
 * `DELETE /v1/videos/{id}`) over an in-memory list of jobs. A video is `queued` when
 * created, `in_progress` with `progress` 0, 25, 50, 75 while its render time passes (and at
 * the first retrieve in any case, so a client always sees it in progress once), then
 * `completed`; its content is a minimal MP4 (`mp4.ts`) of the seconds asked for and of the
 * simulator's `videoBytes`. Faults: `video_failed` (the video ends `failed` with
 * `moderation_blocked`), `hang` (it never completes), `status` (create answers that status).
 * The create body is JSON or a multipart form (OpenAI's SDK always sends a form); an
 * `input_reference` is accepted and ignored.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import { errorBody, sendJson, sendUnknownModel } from "./http.js";
import { simulatedMp4 } from "./mp4.js";
import type { SimulatorContext, SimulatorFault, VideoMode } from "./context.js";

type Json = Record<string, unknown>;

/** OpenAI's `seconds` values. */
const SECONDS = ["4", "8", "12"];
/** OpenAI's `size` values. */
const SIZES = ["720x1280", "1280x720", "1024x1792", "1792x1024"];

/** One simulated video job. */
interface VideoJob {
  id: string;
  model: string;
  prompt: string;
  seconds: string;
  size: string;
  createdMs: number;
  fault: SimulatorFault | undefined;
  /** Whether a retrieve has shown it `in_progress`. */
  shownInProgress: boolean;
  content?: Buffer;
}

/** A video's status and progress at `now` (`hang`: never done; `video_failed`: failed at the first look). */
function stateAt(job: VideoJob, mode: VideoMode, now: number): { status: string; progress: number } {
  if (job.fault?.kind === "video_failed") return { status: "failed", progress: 0 };
  const elapsed = now - job.createdMs;
  if (job.fault?.kind === "hang") return { status: "in_progress", progress: 0 };
  if (elapsed >= mode.renderMs) return { status: "completed", progress: 100 };
  return { status: "in_progress", progress: Math.floor((elapsed / mode.renderMs) * 4) * 25 };
}

/** The OpenAI `video` object of a job at `now`. */
function videoObject(job: VideoJob, mode: VideoMode, now: number, status?: string): Json {
  const state = status === undefined ? stateAt(job, mode, now) : { status, progress: 0 };
  const completed = state.status === "completed";
  return {
    id: job.id,
    object: "video",
    status: state.status,
    progress: state.progress,
    created_at: Math.floor(job.createdMs / 1000),
    completed_at: completed ? Math.floor((job.createdMs + mode.renderMs) / 1000) : null,
    expires_at: completed ? Math.floor((job.createdMs + mode.renderMs) / 1000) + 3600 : null,
    error:
      state.status === "failed" ? { code: "moderation_blocked", message: "The simulator refused this prompt (video_failed fault)." } : null,
    model: job.model,
    prompt: job.prompt,
    remixed_from_video_id: null,
    seconds: job.seconds,
    size: job.size,
  };
}

/** A create body from JSON or a multipart form (a file part becomes a note of its size), or undefined. */
async function createBody(raw: Buffer, contentType: string): Promise<Json | undefined> {
  try {
    if (contentType.startsWith("multipart/form-data")) {
      const form = await new Request("http://simulator/", {
        method: "POST",
        headers: { "content-type": contentType },
        body: raw,
      }).formData();
      const fields: Json = {};
      form.forEach((v, k) => (fields[k] = typeof v === "string" ? v : `<file ${v.size} bytes>`));
      return fields;
    }
    const body = JSON.parse(raw.toString("utf8")) as unknown;
    return typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Json) : undefined;
  } catch {
    return undefined;
  }
}

const bad = (res: ServerResponse, message: string, param: string | null = null) =>
  sendJson(res, 400, errorBody(message, "invalid_request_error", "invalid_value", param));

/** The video mode's handler: serves `/v1/videos...` and answers true, or leaves other paths (false). */
export function createVideoService(
  ctx: SimulatorContext,
  mode: VideoMode,
): (req: IncomingMessage, res: ServerResponse, url: URL, body: () => Promise<Buffer>) => boolean {
  const jobs = new Map<string, VideoJob>();
  const notFound = (res: ServerResponse, id: string) =>
    sendJson(res, 404, errorBody(`Video with id '${id}' not found.`, "invalid_request_error", "video_not_found", "video_id"));

  const create = async (res: ServerResponse, raw: Buffer, contentType: string) => {
    const body = await createBody(raw, contentType);
    if (!body)
      return sendJson(res, 400, errorBody("The body is neither a JSON object nor a multipart form.", "invalid_request_error", null));
    ctx.record(body);
    const model = body.model ?? mode.models[0];
    if (typeof body.prompt !== "string" || body.prompt === "") return bad(res, "`prompt` is required.", "prompt");
    if (typeof model !== "string" || !mode.models.includes(model)) return sendUnknownModel(res, model);
    const seconds = body.seconds ?? "4";
    if (typeof seconds !== "string" || !SECONDS.includes(seconds))
      return bad(res, `\`seconds\` is one of ${SECONDS.join(", ")}.`, "seconds");
    const size = body.size ?? "720x1280";
    if (typeof size !== "string" || !SIZES.includes(size)) return bad(res, `\`size\` is one of ${SIZES.join(", ")}.`, "size");
    const fault = ctx.takeFault();
    if (fault?.kind === "status")
      return sendJson(res, fault.status ?? 500, errorBody("The simulator failed (status fault).", "server_error", null));
    const job: VideoJob = {
      id: `video_${randomBytes(16).toString("hex")}`,
      model,
      prompt: body.prompt,
      seconds,
      size,
      createdMs: Date.now(),
      fault,
      shownInProgress: false,
    };
    jobs.set(job.id, job);
    sendJson(res, 200, videoObject(job, mode, job.createdMs, "queued"));
  };

  const list = (res: ServerResponse, url: URL) => {
    const order = url.searchParams.get("order") === "asc" ? "asc" : "desc";
    const limit = Math.min(100, Math.max(1, Number(url.searchParams.get("limit") ?? 20) || 20));
    let all = [...jobs.values()];
    if (order === "desc") all = all.reverse();
    const after = url.searchParams.get("after");
    if (after) all = all.slice(all.findIndex((j) => j.id === after) + 1);
    const now = Date.now();
    const data = all.slice(0, limit).map((j) => videoObject(j, mode, now));
    sendJson(res, 200, {
      object: "list",
      data,
      first_id: (data[0]?.id as string | undefined) ?? null,
      last_id: (data.at(-1)?.id as string | undefined) ?? null,
      has_more: all.length > limit,
    });
  };

  const content = (res: ServerResponse, job: VideoJob, url: URL) => {
    const variant = url.searchParams.get("variant") ?? "video";
    if (!["video", "thumbnail", "spritesheet"].includes(variant))
      return bad(res, "`variant` is video, thumbnail or spritesheet.", "variant");
    if (stateAt(job, mode, Date.now()).status !== "completed")
      return bad(res, "Video is not ready yet; retrieve it until its status is completed.");
    if (variant !== "video")
      return sendJson(res, 404, errorBody(`The simulator renders no ${variant}.`, "invalid_request_error", null, "variant"));
    job.content ??= simulatedMp4(job.id, Number(job.seconds), mode.bytes);
    res.writeHead(200, { "content-type": "video/mp4", "content-length": job.content.length, "x-srp-simulator": "1" });
    res.end(job.content);
  };

  /** The object a retrieve shows: `in_progress` at the first retrieve even when the render time has passed. */
  const retrieved = (job: VideoJob): Json => {
    const now = Date.now();
    const state = stateAt(job, mode, now);
    if (state.status === "in_progress") job.shownInProgress = true;
    if (state.status !== "completed" || job.shownInProgress) return videoObject(job, mode, now);
    job.shownInProgress = true;
    return { ...videoObject(job, mode, now), status: "in_progress", progress: 75, completed_at: null, expires_at: null };
  };

  return (req, res, url, body) => {
    const path = url.pathname;
    if (path !== "/v1/videos" && !path.startsWith("/v1/videos/")) return false;
    if (path === "/v1/videos") {
      if (req.method === "POST") void body().then((raw) => create(res, raw, String(req.headers["content-type"] ?? "")));
      else if (req.method === "GET") list(res, url);
      else sendJson(res, 405, errorBody(`${req.method} is not allowed here.`, "invalid_request_error", null));
      return true;
    }
    const [id, sub, extra] = path.slice("/v1/videos/".length).split("/");
    const job = jobs.get(id ?? "");
    if (extra !== undefined || (sub !== undefined && sub !== "content")) return false;
    if (!job) {
      notFound(res, id ?? "");
      return true;
    }
    if (sub === "content" && req.method === "GET") content(res, job, url);
    else if (sub === undefined && req.method === "GET") sendJson(res, 200, retrieved(job));
    else if (sub === undefined && req.method === "DELETE") {
      jobs.delete(job.id);
      sendJson(res, 200, { id: job.id, object: "video.deleted", deleted: true });
    } else sendJson(res, 405, errorBody(`${req.method} is not allowed here.`, "invalid_request_error", null));
    return true;
  };
}
