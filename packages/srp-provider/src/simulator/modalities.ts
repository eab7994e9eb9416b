/**
 * The simulator's other modalities, in OpenAI's wire format and **not a model**:
 * embeddings (deterministic unit vectors, float or base64), image generation (small
 * solid-colour PNGs derived from the prompt), speech (a WAV or PCM tone, 20 ms per
 * character) and transcription (deterministic words, a duration read from a WAV header,
 * or estimated from the size of other audio). `serveModality` and `serveTranscription` put
 * them behind the simulator's request log, model check and faults.
 */
import type { ServerResponse } from "node:http";
import { crc32, deflateSync } from "node:zlib";
import { sha256Hex } from "@srp/core";
import { wavSeconds } from "@srp/core/metering";
import { errorBody, sendJson, sendUnknownModel } from "./http.js";
import { countTokens, generateTokens } from "./text.js";
import type { SimulatorContext, SimulatorFault } from "./context.js";

type Json = Record<string, unknown>;

const bad = (res: ServerResponse, message: string, param: string | null = null) =>
  sendJson(res, 400, errorBody(message, "invalid_request_error", null, param));

/** A deterministic unit vector for a text. */
function vector(text: string, dimensions: number): Float32Array {
  const out = new Float32Array(dimensions);
  let h = sha256Hex(text);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    if (i % 16 === 0 && i > 0) h = sha256Hex(h);
    const v = parseInt(h.slice((i % 16) * 4, (i % 16) * 4 + 4), 16) / 32768 - 1;
    out[i] = v;
    norm += v * v;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dimensions; i++) out[i]! *= scale;
  return out;
}

function embeddings(res: ServerResponse, body: Json): void {
  const input = body.input;
  const items: unknown[] =
    typeof input === "string"
      ? [input]
      : Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === "number")
        ? [input]
        : Array.isArray(input)
          ? input
          : [];
  if (items.length === 0 || items.length > 2048)
    return bad(res, "`input` is a string, an array of strings, or token arrays (at most 2048 items).", "input");
  const dimensions = body.dimensions === undefined ? 256 : body.dimensions;
  if (typeof dimensions !== "number" || !Number.isSafeInteger(dimensions) || dimensions < 1 || dimensions > 4096)
    return bad(res, "`dimensions` is an integer from 1 to 4096.", "dimensions");
  const base64 = body.encoding_format === "base64";
  let tokens = 0;
  const data = items.map((item, index) => {
    const text = typeof item === "string" ? item : JSON.stringify(item);
    tokens += typeof item === "string" ? countTokens(item) : Array.isArray(item) ? item.length : 0;
    const v = vector(text, dimensions);
    return {
      object: "embedding",
      index,
      embedding: base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") : Array.from(v),
    };
  });
  sendJson(res, 200, { object: "list", data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** A solid-colour RGB PNG of the given size, the colour derived from a seed. */
export function solidPng(seed: string, width: number, height: number): Buffer {
  const rgb = Buffer.from(sha256Hex(seed).slice(0, 6), "hex");
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x++) rgb.copy(row, 1 + x * 3);
  return rgbPng(width, height, Buffer.concat(Array.from({ length: height }, () => row)));
}

/** An RGB PNG of deterministic noise derived from a seed: it does not compress, so its size is about `width × height × 3` bytes. */
export function noisePng(seed: string, width: number, height: number): Buffer {
  const raw = Buffer.alloc(height * (1 + width * 3));
  let h = sha256Hex(seed);
  for (let i = 0; i < raw.length; i += 32) {
    Buffer.from(h, "hex").copy(raw, i);
    h = sha256Hex(h);
  }
  for (let y = 0; y < height; y++) raw[y * (1 + width * 3)] = 0; // filter type "none" on every row
  return rgbPng(width, height, raw);
}

/** A PNG of 8-bit RGB scanlines (`raw`: each row a filter byte then `width × 3` bytes). */
function rgbPng(width: number, height: number, raw: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function images(res: ServerResponse, body: Json): void {
  if (typeof body.prompt !== "string" || body.prompt === "") return bad(res, "`prompt` is required.", "prompt");
  const n = body.n === undefined || body.n === null ? 1 : body.n;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1 || n > 10) return bad(res, "`n` is an integer from 1 to 10.", "n");
  const size = typeof body.size === "string" && body.size !== "auto" ? body.size : "64x64";
  const m = /^([1-9][0-9]{0,3})x([1-9][0-9]{0,3})$/.exec(size);
  if (!m) return bad(res, "`size` is WIDTHxHEIGHT.", "size");
  // The simulator draws at most 64x64 pixels whatever the size asked: it is not a model.
  const w = Math.min(64, Number(m[1]));
  const h = Math.min(64, Number(m[2]));
  const url = body.response_format === "url";
  const data = Array.from({ length: n }, (_, i) => {
    const png = solidPng(`${body.prompt as string}#${i}`, w, h).toString("base64");
    return url ? { url: `data:image/png;base64,${png}`, revised_prompt: body.prompt } : { b64_json: png, revised_prompt: body.prompt };
  });
  sendJson(res, 200, { created: Math.floor(Date.now() / 1000), data });
}

const SAMPLE_RATE = 8000;
/** Seconds of audio a character takes. */
const SECONDS_PER_CHARACTER = 0.02;

/** 16-bit mono PCM of a tone lasting `seconds`. */
function tone(seconds: number): Buffer {
  const samples = Math.max(1, Math.round(seconds * SAMPLE_RATE));
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) pcm.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / SAMPLE_RATE) * 8000), i * 2);
  return pcm;
}

/** A WAV file of 16-bit mono PCM at the simulator's sample rate. */
export function wav(pcm: Buffer): Buffer {
  const head = Buffer.alloc(44);
  head.write("RIFF", 0, "latin1");
  head.writeUInt32LE(36 + pcm.length, 4);
  head.write("WAVEfmt ", 8, "latin1");
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20); // PCM
  head.writeUInt16LE(1, 22); // mono
  head.writeUInt32LE(SAMPLE_RATE, 24);
  head.writeUInt32LE(SAMPLE_RATE * 2, 28);
  head.writeUInt16LE(2, 32);
  head.writeUInt16LE(16, 34);
  head.write("data", 36, "latin1");
  head.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([head, pcm]);
}

function speech(res: ServerResponse, body: Json): void {
  if (typeof body.input !== "string" || body.input === "") return bad(res, "`input` is required.", "input");
  if ([...body.input].length > 4096) return bad(res, "`input` is at most 4096 characters.", "input");
  if (typeof body.voice !== "string" && (typeof body.voice !== "object" || body.voice === null))
    return bad(res, "`voice` is required.", "voice");
  const format = body.response_format ?? "mp3";
  if (format !== "wav" && format !== "pcm") return bad(res, "The simulator synthesizes `wav` and `pcm` only.", "response_format");
  const pcm = tone([...body.input].length * SECONDS_PER_CHARACTER);
  const audio = format === "wav" ? wav(pcm) : pcm;
  res.writeHead(200, {
    "content-type": format === "wav" ? "audio/wav" : "audio/pcm",
    "content-length": audio.length,
    "x-srp-simulator": "1",
  });
  res.end(audio);
}

/** Seconds of a WAV file from its header, else an estimate from the size (16 kB a second). */
function durationOf(audio: Buffer): number {
  return wavSeconds(audio) ?? audio.length / 16_000;
}

/** Answers a transcription of `audio` with the form's other fields. */
export function transcribe(res: ServerResponse, audio: Buffer, fields: Json): void {
  const format = fields.response_format ?? "json";
  if (format !== "json" && format !== "text" && format !== "verbose_json")
    return bad(res, "The simulator answers `json`, `verbose_json` and `text`.", "response_format");
  const duration = Math.round(durationOf(audio) * 1000) / 1000;
  const words = Math.max(1, Math.ceil(duration * 2.5));
  const text = generateTokens(sha256Hex(audio), words).join("");
  const usage = { type: "duration", seconds: Math.ceil(duration) };
  if (format === "text") {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "x-srp-simulator": "1" });
    return void res.end(`${text}\n`);
  }
  if (format === "json") return sendJson(res, 200, { text, usage });
  sendJson(res, 200, {
    task: "transcribe",
    language: typeof fields.language === "string" ? fields.language : "english",
    duration,
    text,
    segments: [
      {
        id: 0,
        seek: 0,
        start: 0,
        end: duration,
        text,
        tokens: [],
        temperature: 0,
        avg_logprob: 0,
        compression_ratio: 1,
        no_speech_prob: 0,
      },
    ],
    usage,
  });
}

/** The JSON modality endpoints, by path. */
export const MODALITIES = {
  "/v1/embeddings": embeddings,
  "/v1/images/generations": images,
  "/v1/audio/speech": speech,
} as const;

const knownModel = (ctx: SimulatorContext, model: unknown) => typeof model === "string" && ctx.models.some((m) => m.id === model);

/** Answers a `status` or `hang` fault (true), or leaves the request to be served (false). */
function faulted(res: ServerResponse, f: SimulatorFault | undefined): boolean {
  if (f?.kind === "status")
    return (sendJson(res, f.status ?? 500, errorBody("The simulator was told to fail this request.", "server_error", null)), true);
  return f?.kind === "hang";
}

/** Serves one request of a JSON modality endpoint (`serve`, one of {@link MODALITIES}). */
export function serveModality(
  ctx: SimulatorContext,
  res: ServerResponse,
  serve: (res: ServerResponse, body: Json) => void,
  body: Json,
): void {
  ctx.record(body);
  if (!knownModel(ctx, body.model)) return sendUnknownModel(res, body.model);
  if (faulted(res, ctx.takeFault())) return;
  return serve(res, body);
}

/** Serves one `POST /v1/audio/transcriptions` (a multipart form with the audio `file`). */
export async function serveTranscription(ctx: SimulatorContext, res: ServerResponse, raw: Buffer, contentType: string): Promise<void> {
  let form: FormData;
  try {
    form = await new Request("http://simulator/", { method: "POST", headers: { "content-type": contentType }, body: raw }).formData();
  } catch {
    return sendJson(res, 400, errorBody("The request is not a multipart form.", "invalid_request_error", null));
  }
  const fields: Record<string, unknown> = {};
  form.forEach((v, k) => (fields[k] = typeof v === "string" ? v : `<file ${v.size} bytes>`));
  ctx.record(fields);
  const file = form.get("file");
  if (!knownModel(ctx, fields.model)) return sendUnknownModel(res, fields.model);
  if (file === null || typeof file === "string")
    return sendJson(res, 400, errorBody("`file` is required.", "invalid_request_error", null, "file"));
  if (faulted(res, ctx.takeFault())) return;
  transcribe(res, Buffer.from(await file.arrayBuffer()), fields);
}
