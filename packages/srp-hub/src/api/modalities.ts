/**
 * The OpenAI surfaces beyond chat: `POST /v1/embeddings`, `/v1/images/generations`,
 * `/v1/audio/speech` and `/v1/audio/transcriptions`. Each is routed to instances that
 * declare the capability (`embeddings`, `images`, `speech`, `transcription`) and billed
 * by its own units: prompt tokens, images, characters of input, seconds of audio. The
 * worst case reserved at admission is exact for images and speech and an upper bound
 * for the rest (the input's bytes bound its tokens; a PCM WAV header, or the file's size
 * at 4 kbit/s, bounds its seconds).
 */
import { SrpError } from "@srp/core";
import {
  checkConsumerBody,
  EmbeddingsRequest,
  ImageGenerationRequest,
  SpeechRequest,
  TranscriptionJobRequest,
  type Capability,
  type Done,
  type Job,
  type JobApi,
  type Usage,
} from "@srp/core/schema";
import { wavSeconds } from "@srp/core/metering";

type TSchema = Parameters<typeof checkConsumerBody>[0];
import { errorResponse, readJsonObject, readMultipartForm } from "./http.js";
import type { PaidResource } from "../payments/x402-policy.js";
import { preferences, serve, type Plan, type ConsumerApiContext, type SrpUsageExtension, type Surface } from "./serve.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Most characters one speech request may synthesize. */
const MAX_SPEECH_CHARACTERS = 4096;
/** Tokens added to every byte-bounded input (templates, special tokens). */
const INPUT_OVERHEAD_TOKENS = 64;

const invalid = (message: string) => new SrpError("api.invalid_body", message);

function resource(description: string, example: Json): (url: string) => PaidResource {
  return (url) => ({ url, description, mimeType: "application/json", method: "POST", example });
}

/**
 * The usage object of a JSON answer: the upstream's, its counts replaced by the billed usage's
 * (SRP-ATT-019: embeddings' `prompt_tokens` and `total_tokens`, images' `input_tokens`,
 * transcriptions' `seconds`), extended by the cost and the receipt id.
 */
function withCost(response: Json | undefined, api: JobApi, usage: Usage, ext: SrpUsageExtension): Json {
  const body = response ?? {};
  const upstream: Json = isObject(body.usage) ? { ...body.usage } : {};
  if (api === "embeddings") Object.assign(upstream, { prompt_tokens: usage.promptTokens, total_tokens: usage.promptTokens });
  if (api === "images.generations" && (upstream.input_tokens !== undefined || usage.promptTokens > 0)) {
    upstream.input_tokens = usage.promptTokens;
    if (upstream.total_tokens !== undefined)
      upstream.total_tokens = usage.promptTokens + (typeof upstream.output_tokens === "number" ? upstream.output_tokens : 0);
  }
  if (api === "audio.transcriptions" && (upstream.type === "duration" || usage.seconds !== undefined))
    Object.assign(upstream, { type: "duration", seconds: usage.seconds ?? 0 });
  return { ...body, usage: { ...upstream, ...ext } };
}

const jsonAnswer = (job: Job, done: Done, ext: SrpUsageExtension, headers: Record<string, string>) =>
  Response.json(withCost(done.response, job.api, done.usage, ext), { headers });

/** What every modality plan shares: the model, preferences, one capability, and the job body without `srp`. */
function basePlan(
  body: Json,
  api: JobApi,
  capability: Capability,
  schema: TSchema,
): Pick<Plan, "model" | "stream" | "prefs" | "capabilities" | "job"> | SrpError {
  const problem = checkConsumerBody(schema, body);
  if (problem) return invalid(problem);
  const prefs = preferences(body);
  if (prefs instanceof SrpError) return prefs;
  const forwarded: Json = { ...body };
  delete forwarded.srp;
  delete forwarded.provider;
  return { model: body.model as string, stream: false, prefs, capabilities: [capability], job: () => ({ api, body: forwarded }) };
}

/** Checks an embeddings body and plans it: billed by prompt tokens, bounded by the input's bytes. */
export function planEmbeddings(body: Json): Plan | SrpError {
  const base = basePlan(body, "embeddings", "embeddings", EmbeddingsRequest);
  if (base instanceof SrpError) return base;
  const input = body.input;
  const bound = Buffer.byteLength(JSON.stringify(input)) + INPUT_OVERHEAD_TOKENS * (Array.isArray(input) ? input.length : 1);
  return { ...base, contextTokens: 0, bound: { promptTokens: bound, completionTokens: 0 }, respond: jsonAnswer };
}

/** Checks an image generation body and plans it: billed per image (and prompt token, where the backend counts them). */
export function planImages(body: Json): Plan | SrpError {
  const base = basePlan(body, "images.generations", "images", ImageGenerationRequest);
  if (base instanceof SrpError) return base;
  const n = typeof body.n === "number" ? body.n : 1;
  if (body.stream === true) return invalid("streamed image generation is not supported by this hub");
  return {
    ...base,
    contextTokens: 0,
    bound: { promptTokens: Buffer.byteLength(body.prompt as string) + INPUT_OVERHEAD_TOKENS, completionTokens: 0, images: n },
    respond: jsonAnswer,
  };
}

/** Checks a speech body and plans it: billed per character of `input`, exactly known at admission. */
export function planSpeech(body: Json): Plan | SrpError {
  const base = basePlan(body, "audio.speech", "speech", SpeechRequest);
  if (base instanceof SrpError) return base;
  const characters = [...(body.input as string)].length;
  if (characters > MAX_SPEECH_CHARACTERS) return invalid(`\`input\` is at most ${MAX_SPEECH_CHARACTERS} characters`);
  if (body.stream_format !== undefined && body.stream_format !== "audio")
    return invalid("only `stream_format: audio` is supported by this hub");
  return {
    ...base,
    contextTokens: 0,
    bound: { promptTokens: 0, completionTokens: 0, characters },
    respond(_job, done, ext, headers) {
      const audio = done.response ?? {};
      if (audio.object !== "srp.audio" || typeof audio.data !== "string")
        return errorResponse(new SrpError("job.upstream_error", "the provider answered speech without audio"));
      // The audio as the backend made it; what it cost travels in headers.
      return new Response(Buffer.from(audio.data, "base64"), {
        // The characters billed (the receipt's: SRP-ATT-019), not merely those asked for.
        headers: {
          ...headers,
          "content-type": typeof audio.content_type === "string" ? audio.content_type : "application/octet-stream",
          "x-srp-cost": ext.cost,
          "x-srp-cost-units": ext.cost_units,
          "x-srp-characters": String(done.usage.characters ?? 0),
        },
      });
    },
  };
}

/** Bytes a second of compressed audio takes at least, for the bound: 4 kbit/s (below Opus's and AMR's lowest speech rates). */
const MIN_AUDIO_BYTES_PER_SECOND = 500;

/** Whole seconds an audio file can last at most: exact for PCM WAV (its header), else its size at 4 kbit/s. */
export function audioSecondsBound(audio: Uint8Array): number {
  return secondsBoundOf(audio.length, wavSeconds(audio));
}

/**
 * The seconds bound of an audio file of `bytes` bytes whose duration is `seconds` when known
 * (a PCM WAV header's), else its size at 4 kbit/s; one second more for rounding. Admission
 * ({@link audioSecondsBound}) and `POST /v1/estimate` (which takes the duration or the size) share it.
 */
export function secondsBoundOf(bytes: number, seconds: number | undefined): number {
  return Math.ceil(seconds ?? bytes / MIN_AUDIO_BYTES_PER_SECOND) + 1;
}

/**
 * Reads a transcription's multipart form into a job body: the file as `{filename,
 * content_type, data}` with its bytes in base64, every other field as a string (or an
 * array, for `name[]` fields).
 */
export async function readTranscriptionForm(request: Request, maxBytes: number): Promise<Json | SrpError> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\b/i.test(type))
    return new SrpError("api.unsupported_media_type", "a transcription is sent as multipart/form-data");
  const form = await readMultipartForm(request, maxBytes);
  if (form instanceof SrpError) return form;
  const body: Json = Object.create(null) as Json;
  for (const [key, value] of form.entries()) {
    if (typeof value === "string") {
      const name = key.endsWith("[]") ? key.slice(0, -2) : key;
      const seen = body[name];
      if (name === "file" || (seen !== undefined && !Array.isArray(seen)) || (key.endsWith("[]") === false && seen !== undefined))
        return invalid(`field ${name} is given twice, or both as a value and as a list`);
      if (key.endsWith("[]")) ((body[name] ??= []) as unknown[]).push(value);
      else body[name] = value;
    } else if (key === "file" && body.file === undefined) {
      const data = new Uint8Array(await value.arrayBuffer());
      body.file = {
        filename: value.name || "audio",
        content_type: value.type || "application/octet-stream",
        data: Buffer.from(data).toString("base64"),
        bytes: data.length,
        seconds_bound: audioSecondsBound(data),
      };
    } else return invalid(`field ${key} must not be a file`);
  }
  return body;
}

/** Checks a transcription body (read from its form) and plans it: billed per second of audio. */
export function planTranscription(body: Json): Plan | SrpError {
  const base = basePlan(body, "audio.transcriptions", "transcription", TranscriptionJobRequest);
  if (base instanceof SrpError) return base;
  const file = body.file as Json;
  const format = body.response_format ?? "json";
  if (body.stream === "true" || body.stream === true) return invalid("streamed transcription is not supported by this hub");
  const seconds = file.seconds_bound as number;
  const { bytes: _bytes, seconds_bound: _bound, ...wireFile } = file;
  // A text answer is asked for as JSON (which carries the measured duration) and returned as text.
  const sent: Json = { ...body, file: wireFile, ...(format === "text" ? { response_format: "json" } : {}) };
  delete sent.srp;
  delete sent.provider;
  return {
    ...base,
    job: () => ({ api: "audio.transcriptions", body: sent }),
    contextTokens: 0,
    bound: { promptTokens: 0, completionTokens: 0, seconds },
    respond(job, done, ext, headers) {
      if (format !== "text") return jsonAnswer(job, done, ext, headers);
      const text = typeof done.response?.text === "string" ? done.response.text : "";
      return new Response(`${text}\n`, {
        headers: { ...headers, "content-type": "text/plain; charset=utf-8", "x-srp-cost": ext.cost, "x-srp-cost-units": ext.cost_units },
      });
    },
  };
}

const surface = (plan: (body: Json) => Plan | SrpError, description: string, example: Json): Surface => ({
  resource: resource(description, example),
  error: errorResponse,
  read: readJsonObject,
  plan,
});

/** The modality surfaces by path. */
export const MODALITY_SURFACES: Readonly<Record<string, Surface>> = {
  "/v1/embeddings": surface(planEmbeddings, "Embeddings relayed to an SRP provider (OpenAI wire format), billed per prompt token.", {
    model: "nomic-embed-text",
    input: "Hello",
  }),
  "/v1/images/generations": surface(planImages, "Image generation relayed to an SRP provider (OpenAI wire format), billed per image.", {
    model: "sdxl",
    prompt: "a lighthouse",
    n: 1,
  }),
  "/v1/audio/speech": surface(planSpeech, "Speech synthesis relayed to an SRP provider (OpenAI wire format), billed per character.", {
    model: "kokoro",
    input: "Hello",
    voice: "alloy",
    response_format: "wav",
  }),
  "/v1/audio/transcriptions": {
    ...surface(planTranscription, "Transcription relayed to an SRP provider (OpenAI wire format, multipart), billed per second of audio.", {
      model: "whisper-1",
    }),
    read: readTranscriptionForm,
  },
};

/** `POST` on a modality path. */
export function postModality(request: Request, ctx: ConsumerApiContext, path: string): Promise<Response> {
  return serve(request, ctx, MODALITY_SURFACES[path]!);
}
