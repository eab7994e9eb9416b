/**
 * Servers of async jobs (`spec/v1/jobs.md#async-jobs`), found through their own APIs:
 *
 * - a **Cog** server (the HTTP server inside a packaged model; well-known port 5000):
 *   `GET /openapi.json` with a `POST /predictions` path and `components.schemas.Input`, whose
 *   `Input` and `Output` become the instance's `io` (SRP-OFF-021); `GET /health-check` says
 *   whether the model's setup failed. Cog titles every document `"Cog"`, so the model's name
 *   comes from the operator (`--run-model`) unless the document's title names the model.
 * - a server of **OpenAI's Videos API**: `GET /v1/videos?limit=1` answers a list object
 *   (`{"object": "list", "data": [...]}`, every entry a `video`). Neither that list nor
 *   `/v1/models` says which models make videos, so the models come from the operator
 *   (`--video-model`).
 *
 * The parsers are pure; {@link detectCog} and {@link detectVideos} only fetch.
 */
import { ioSchemaProblem } from "@srp/core";
import type { InstanceIo } from "@srp/core/schema";
import { cogIo } from "../backends/cog.js";
import { isRecord } from "./types.js";
import { getJson } from "./fetch-json.js";

/** A Cog server and the model it serves. */
export interface DetectedCog {
  kind: "cog";
  /** Root URL (where `/predictions` lives). */
  baseUrl: string;
  /** The OpenAPI document's `info.title` (Cog's own is `"Cog"`). */
  title?: string;
  /** The model's name when the document's title names it ({@link cogModelName}). */
  model?: string;
  /** The declared input and output, in the `io` subset (SRP-OFF-020). */
  io: InstanceIo;
  /** Why the hub would refuse this `io` (SRP-OFF-020: over 16 KiB, too deep...), when it would. */
  ioProblem?: string;
  /** `GET /health-check`'s `status` (`READY`, `STARTING`, `BUSY`, `SETUP_FAILED`, `DEFUNCT`), when it answered. */
  health?: string;
}

/** A server of OpenAI's Videos API. */
export interface DetectedVideos {
  kind: "videos";
  /** Base URL ending in `/v1` (what `videosBackend` takes). */
  baseUrl: string;
  /** Models named by the videos it listed (a hint only: a server lists its past videos). */
  seenModels: string[];
}

/** Cog health states in which the model cannot run. */
const DEAD = new Set(["SETUP_FAILED", "DEFUNCT"]);

/** Whether a Cog `/health-check` status says the model cannot run (its setup failed, or the server is defunct). */
export const cogUnhealthy = (health: string | undefined): boolean => health !== undefined && DEAD.has(health);

/**
 * The Cog model of an `/openapi.json` answer: its `io` (from `components.schemas.Input` and
 * `.Output`) and title; undefined unless the document has a `/predictions` path and an
 * `Input` schema (a FastAPI app such as vLLM serves `/openapi.json` too, without them).
 */
export function parseCogOpenApi(body: unknown): { title?: string; io: InstanceIo } | undefined {
  if (!isRecord(body) || !isRecord(body.paths) || !isRecord(body.paths["/predictions"])) return undefined;
  const io = cogIo(body);
  if (!io) return undefined;
  const title = isRecord(body.info) && typeof body.info.title === "string" ? body.info.title.trim() : undefined;
  return title ? { title, io } : { io };
}

/** The `status` of a Cog `/health-check` answer. */
export function parseCogHealth(body: unknown): string | undefined {
  return isRecord(body) && typeof body.status === "string" ? body.status : undefined;
}

/**
 * The model name an OpenAPI title gives: undefined for Cog's own title (`Cog`, or anything
 * starting with the word Cog, which names the server, not the model) and for an empty one;
 * otherwise the title in lower case with runs of other characters than letters, digits,
 * `.`, `_` and `-` made one `-` (`"Real-ESRGAN x4"` is `real-esrgan-x4`).
 */
export function cogModelName(title: string | undefined): string | undefined {
  if (!title || /^cog\b/i.test(title.trim())) return undefined;
  const name = title
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, 128);
  return name || undefined;
}

/** Whether a body is a Videos API list (`object: "list"`, `data` an array of `video` objects); the models its videos name. */
export function parseVideoList(body: unknown): { seenModels: string[] } | undefined {
  if (!isRecord(body) || body.object !== "list" || !Array.isArray(body.data)) return undefined;
  if (!body.data.every((v) => isRecord(v) && v.object === "video")) return undefined;
  const models = body.data.map((v) => (v as Record<string, unknown>).model).filter((m): m is string => typeof m === "string");
  return { seenModels: [...new Set(models)] };
}

/** The root of a server URL: no trailing `/`, no `/v1`. */
export const serverRoot = (url: string): string => url.replace(/\/+$/, "").replace(/\/v1$/, "");

/** Asks the server at `url` whether it is a Cog server; its model's `io`, title and health. */
export async function detectCog(url: string, timeoutMs = 1500): Promise<DetectedCog | undefined> {
  const root = serverRoot(url);
  const doc = parseCogOpenApi(await getJson(`${root}/openapi.json`, timeoutMs));
  if (!doc) return undefined;
  const found: DetectedCog = { kind: "cog", baseUrl: root, io: doc.io };
  if (doc.title !== undefined) found.title = doc.title;
  const model = cogModelName(doc.title);
  if (model) found.model = model;
  const problem = ioSchemaProblem(doc.io);
  if (problem) found.ioProblem = problem;
  const health = parseCogHealth(await getJson(`${root}/health-check`, timeoutMs));
  if (health) found.health = health;
  return found;
}

/** Asks the server at `url` whether it serves OpenAI's Videos API (`GET /v1/videos?limit=1` answers a list). */
export async function detectVideos(url: string, timeoutMs = 1500): Promise<DetectedVideos | undefined> {
  const root = serverRoot(url);
  const list = parseVideoList(await getJson(`${root}/v1/videos?limit=1`, timeoutMs));
  return list ? { kind: "videos", baseUrl: `${root}/v1`, seenModels: list.seenModels } : undefined;
}
