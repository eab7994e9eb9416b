/**
 * The simulator's HTTP routing: a flavour's metadata endpoints first (`flavors.ts`), then a
 * table from method and path to the handler that serves it (`chat.ts`, `completions.ts`,
 * `responses.ts`, `modalities.ts`, the Cog-like run mode of `predictions.ts`, the model
 * listings), then the video mode's paths (`videos.ts`), and OpenAI's 404 for anything else.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sha256Hex } from "@srp/core";
import { errorBody, sendJson } from "./http.js";
import { flavorServes, flavorTakesBody, serveFlavorMetadata, type SimulatorFlavor } from "./flavors.js";
import { serveChat, type ChatRequest } from "./chat.js";
import { serveCompletions } from "./completions.js";
import { serveResponses } from "./responses.js";
import { MODALITIES, serveModality, serveTranscription } from "./modalities.js";
import type { SimulatorContext, SimulatorModel } from "./context.js";
import { createVideoService } from "./videos.js";
import { predictionRoutes } from "./predictions.js";

type Json = Record<string, unknown>;

/** Serves one request whose route matched. */
type Route = (req: IncomingMessage, res: ServerResponse) => void;

/** Reads the whole request body, then calls `then` with it. */
function readBody(req: IncomingMessage, then: (raw: Buffer) => void): void {
  const parts: Buffer[] = [];
  req.on("data", (c: Buffer) => parts.push(c));
  req.on("end", () => then(Buffer.concat(parts)));
}

/** A route taking a JSON object body (OpenAI's 400 for anything else); a handler's failure drops the connection. */
function jsonRoute(serve: (res: ServerResponse, body: Json) => Promise<void> | undefined): Route {
  return (req, res) =>
    readBody(req, (raw) => {
      let body: Json;
      try {
        body = JSON.parse(raw.toString("utf8")) as Json;
        if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an object");
      } catch {
        return sendJson(res, 400, errorBody("We could not parse the JSON body of your request.", "invalid_request_error", null));
      }
      serve(res, body)?.catch(() => res.destroy());
    });
}

/** OpenAI's `GET /v1/models`. */
function modelList(models: readonly SimulatorModel[], created: number) {
  return { object: "list", data: models.map((m) => ({ id: m.id, object: "model", created, owned_by: "srp-simulator" })) };
}

/** Ollama's `GET /api/tags`. */
function ollamaTags(models: readonly SimulatorModel[], created: number) {
  return {
    models: models.map((m) => ({
      name: m.id,
      model: m.id,
      modified_at: new Date(created * 1000).toISOString(),
      size: 4_661_224_676,
      digest: sha256Hex(`srp-simulator/${m.id}`),
      details: {
        parent_model: "",
        format: "gguf",
        family: "simulator",
        families: ["simulator"],
        parameter_size: "8B",
        quantization_level: "Q4_0",
      },
    })),
  };
}

/** The routes by `METHOD /path`; a flavoured simulator lists its models through its flavour's endpoints only. */
function routeTable(ctx: SimulatorContext, created: number): Map<string, Route> {
  const routes = new Map<string, Route>();
  if (!ctx.flavor) {
    routes.set("GET /v1/models", (_req, res) => sendJson(res, 200, modelList(ctx.models, created)));
    routes.set("GET /api/tags", (_req, res) => sendJson(res, 200, ollamaTags(ctx.models, created)));
  }
  routes.set(
    "POST /v1/chat/completions",
    jsonRoute((res, body) => serveChat(ctx, res, body as ChatRequest)),
  );
  if (flavorServes(ctx.flavor, "/v1/completions"))
    routes.set(
      "POST /v1/completions",
      jsonRoute((res, body) => serveCompletions(ctx, res, body)),
    );
  if (flavorServes(ctx.flavor, "/v1/responses"))
    routes.set(
      "POST /v1/responses",
      jsonRoute((res, body) => serveResponses(ctx, res, body)),
    );
  for (const [path, serve] of Object.entries(MODALITIES))
    routes.set(
      `POST ${path}`,
      jsonRoute((res, body) => void serveModality(ctx, res, serve, body)),
    );
  routes.set("POST /v1/audio/transcriptions", (req, res) =>
    readBody(req, (raw) => void serveTranscription(ctx, res, raw, String(req.headers["content-type"] ?? "")).catch(() => res.destroy())),
  );
  for (const [key, serve] of Object.entries(predictionRoutes(ctx, ctx.runs)))
    routes.set(key, (req, res) => serve(res, () => new Promise((resolve) => readBody(req, resolve))));
  return routes;
}

/** Serves a flavour's own metadata endpoint (true), or leaves the request to the route table (false). */
function serveFlavor(
  flavor: SimulatorFlavor,
  ctx: SimulatorContext,
  slots: number,
  created: number,
  req: IncomingMessage,
  res: ServerResponse,
  url: string,
): boolean {
  if (!flavorTakesBody(flavor, req.method, url)) return serveFlavorMetadata(flavor, ctx.models, slots, created, req, res, url);
  readBody(req, (raw) => {
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      return sendJson(res, 400, { error: "invalid JSON" });
    }
    serveFlavorMetadata(flavor, ctx.models, slots, created, req, res, url, body);
  });
  return true;
}

/**
 * The simulator's request handler. `slots` is what a `llamacpp` flavour reports; `created`
 * the models' creation time (Unix seconds).
 */
export function createRouter(ctx: SimulatorContext, slots: number, created: number): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = routeTable(ctx, created);
  const videos = createVideoService(ctx, ctx.videos);
  return (req, res) => {
    const url = (req.url ?? "/").split("?")[0]!;
    if (ctx.flavor && serveFlavor(ctx.flavor, ctx, slots, created, req, res, url)) return;
    const route = routes.get(`${req.method} ${url}`);
    if (route) return route(req, res);
    const body = () => new Promise<Buffer>((resolve) => readBody(req, resolve));
    if (videos(req, res, new URL(req.url ?? "/", "http://simulator"), body)) return;
    sendJson(res, 404, errorBody(`Unknown request URL: ${req.method} ${url}.`, "invalid_request_error", "unknown_url"));
  };
}
