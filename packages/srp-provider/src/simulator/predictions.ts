/**
 * The simulator's generic run mode, **not a model**: a stand-in for a Cog server (the HTTP
 * server inside a packaged model). `GET /openapi.json` describes the model's `Input`
 * (`prompt`: string of at most 1000 characters; `steps`: integer 1..50, default 4) and
 * `Output` (a URI); `POST /predictions {"input"}` answers synchronously after the run time
 * with `{status: "succeeded", output, metrics: {predict_time}}`, the output a PNG of
 * deterministic noise as a `data:` URL (larger than 4 KiB, so a node must send it as an
 * artifact, SRP-JOB-044); an input outside the schema gets Cog's 422 `{detail: [...]}`.
 * Faults: `status` (that HTTP status), `hang` (never answers).
 */
import type { ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import { noisePng } from "./modalities.js";
import { sendJson } from "./http.js";
import { sleep, type RunMode, type SimulatorContext } from "./context.js";

type Json = Record<string, unknown>;

/** The model's input schema, as Cog writes it into `/openapi.json`. */
export const RUN_INPUT_SCHEMA = {
  title: "Input",
  type: "object",
  properties: {
    prompt: { title: "Prompt", type: "string", maxLength: 1000, description: "What to draw", "x-order": 0 },
    steps: { title: "Steps", type: "integer", minimum: 1, maximum: 50, default: 4, description: "Denoising steps", "x-order": 1 },
  },
  required: ["prompt"],
} as const;

/** The model's output schema. */
export const RUN_OUTPUT_SCHEMA = { title: "Output", type: "string", format: "uri" } as const;

/** The OpenAPI document a Cog server serves for this model. */
function openApi(): Json {
  return {
    openapi: "3.0.2",
    info: { title: "Cog (SRP simulator)", version: "0.1.0" },
    paths: {
      "/predictions": {
        post: {
          summary: "Predict",
          requestBody: { content: { "application/json": { schema: { $ref: "#/components/schemas/PredictionRequest" } } } },
          responses: { "200": { content: { "application/json": { schema: { $ref: "#/components/schemas/PredictionResponse" } } } } },
        },
      },
    },
    components: {
      schemas: {
        Input: RUN_INPUT_SCHEMA,
        Output: RUN_OUTPUT_SCHEMA,
        PredictionRequest: { type: "object", properties: { input: { $ref: "#/components/schemas/Input" } } },
        PredictionResponse: { type: "object", properties: { output: { $ref: "#/components/schemas/Output" } } },
      },
    },
  };
}

/** Cog's 422 detail entries for an input outside the schema; empty when it fits. */
function inputProblems(input: unknown): Array<{ loc: string[]; msg: string; type: string }> {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    return [{ loc: ["body", "input"], msg: "value is not a valid dict", type: "type_error.dict" }];
  const i = input as Json;
  const out: Array<{ loc: string[]; msg: string; type: string }> = [];
  if (typeof i.prompt !== "string") out.push({ loc: ["body", "input", "prompt"], msg: "field required", type: "value_error.missing" });
  else if (i.prompt.length > 1000)
    out.push({
      loc: ["body", "input", "prompt"],
      msg: "ensure this value has at most 1000 characters",
      type: "value_error.any_str.max_length",
    });
  if (i.steps !== undefined && (!Number.isSafeInteger(i.steps) || (i.steps as number) < 1 || (i.steps as number) > 50))
    out.push({ loc: ["body", "input", "steps"], msg: "ensure this value is an integer from 1 to 50", type: "value_error.number" });
  for (const k of Object.keys(i))
    if (k !== "prompt" && k !== "steps")
      out.push({ loc: ["body", "input", k], msg: "extra fields not permitted", type: "value_error.extra" });
  return out;
}

/** Serves one `POST /predictions` body. */
async function predict(ctx: SimulatorContext, mode: RunMode, res: ServerResponse, raw: Buffer): Promise<void> {
  let body: Json;
  try {
    body = JSON.parse(raw.toString("utf8")) as Json;
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an object");
  } catch {
    return sendJson(res, 422, { detail: [{ loc: ["body"], msg: "value is not a valid dict", type: "type_error.dict" }] });
  }
  ctx.record(body);
  const problems = inputProblems(body.input);
  if (problems.length) return sendJson(res, 422, { detail: problems });
  const fault = ctx.takeFault();
  if (fault?.kind === "hang") return;
  if (fault?.kind === "status") return sendJson(res, fault.status ?? 500, { detail: "the simulator failed (status fault)" });
  const input: Json = { steps: 4, ...(body.input as Json) };
  const started = new Date();
  if (mode.runMs > 0) await sleep(mode.runMs);
  const completed = new Date();
  const png = noisePng(`${String(input.prompt)}/${String(input.steps)}`, 64, 64);
  sendJson(res, 200, {
    id: randomBytes(10).toString("hex"),
    input,
    output: `data:image/png;base64,${png.toString("base64")}`,
    logs: `simulated ${String(input.steps)} steps\n`,
    error: null,
    status: "succeeded",
    created_at: started.toISOString(),
    started_at: started.toISOString(),
    completed_at: completed.toISOString(),
    metrics: { predict_time: (completed.getTime() - started.getTime()) / 1000 },
  });
}

/** The run mode's routes by `METHOD /path`. */
export function predictionRoutes(
  ctx: SimulatorContext,
  mode: RunMode,
): Record<string, (res: ServerResponse, body: () => Promise<Buffer>) => void> {
  return {
    "GET /openapi.json": (res) => sendJson(res, 200, openApi()),
    "GET /health-check": (res) => sendJson(res, 200, { status: "READY", setup: { status: "succeeded" } }),
    "POST /predictions": (res, body) =>
      void body()
        .then((raw) => predict(ctx, mode, res, raw))
        .catch(() => res.destroy()),
  };
}
