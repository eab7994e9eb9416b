/**
 * A backend for `runs` jobs (SRP-JOB-052): a client of a Cog server, the HTTP server inside a
 * packaged model. It reads the model's declared input and output from `GET /openapi.json`
 * (SRP-OFF-021), refuses inputs that would make the model fetch a URL, runs one
 * `POST /predictions`, and turns the output's files into artifacts (SRP-JOB-044). The pure
 * parts (`cogIo`, `urlInInput`, `outputArtifacts`) are exported for tests.
 */
import { canonicalize, fromBase64, IO_SCHEMA_KEYWORDS, utf8 } from "@srp/core";
import { ASYNC_JOB_LIMITS, type InstanceIo } from "@srp/core/schema";
import {
  BackendError,
  classifyUpstreamStatus,
  type AsyncArtifact,
  type AsyncCallOptions,
  type AsyncResult,
  type Backend,
} from "./types.js";

/** Options of {@link cogBackend}. */
export interface CogBackendOptions {
  /** Root URL of the Cog server (where `/predictions` lives). */
  baseUrl: string;
  /** Let string inputs be `http(s)` URLs (the model would fetch them); default false (SRP-JOB-052). */
  allowUrls?: boolean;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Schema keywords whose value is a map of names to schemas. */
const MAPS = new Set(["properties", "$defs"]);
/** Schema keywords whose value is one schema or a list of schemas. */
const SUBSCHEMAS = new Set(["additionalProperties", "items", "not", "prefixItems", "anyOf", "oneOf", "allOf"]);

/** A schema kept to the `io` subset (SRP-OFF-020): other keywords (Cog's `pattern`...) dropped, `#/components/schemas/X` refs made `#/$defs/X`. */
function subset(schema: unknown, refs: Set<string>): unknown {
  if (Array.isArray(schema)) return schema.map((s) => subset(s, refs));
  if (!isObject(schema)) return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (!IO_SCHEMA_KEYWORDS.has(k)) continue;
    if (k === "$ref" && typeof v === "string") {
      const name = /^#\/components\/schemas\/(.+)$/.exec(v)?.[1];
      if (!name) continue;
      refs.add(name);
      out.$ref = `#/$defs/${name}`;
    } else if (MAPS.has(k) && isObject(v)) out[k] = Object.fromEntries(Object.entries(v).map(([n, s]) => [n, subset(s, refs)]));
    else if (SUBSCHEMAS.has(k)) out[k] = subset(v, refs);
    else out[k] = v;
  }
  return out;
}

/** One schema of a Cog OpenAPI document as an `io` document: the schema in the subset, the components it refers to under `$defs`. */
function ioDocument(components: Json, name: string): Json {
  const refs = new Set<string>();
  const root = subset(components[name], refs) as Json;
  const defs: Json = {};
  for (let added = true; added; ) {
    added = false;
    for (const r of [...refs]) {
      if (r in defs || !isObject(components[r])) continue;
      defs[r] = subset(components[r], refs);
      added = true;
    }
  }
  return Object.keys(defs).length ? { ...root, $defs: defs } : root;
}

/**
 * The `io` of a Cog model from its `/openapi.json` (SRP-OFF-021): `components.schemas.Input`
 * and `.Output`, references resolved into `$defs`, keywords outside the subset dropped.
 * Undefined when the document has no `Input`.
 */
export function cogIo(openapi: unknown): InstanceIo | undefined {
  const components =
    isObject(openapi) && isObject(openapi.components) && isObject(openapi.components.schemas) ? openapi.components.schemas : undefined;
  if (!components || !isObject(components.Input)) return undefined;
  return { input: ioDocument(components, "Input"), output: isObject(components.Output) ? ioDocument(components, "Output") : {} };
}

/** The path of the first string of `input` that is an `http:` or `https:` URL (SRP-JOB-052), or undefined. */
export function urlInInput(input: unknown, path = ""): string | undefined {
  if (typeof input === "string") return /^\s*https?:/i.test(input) ? path || "/" : undefined;
  if (Array.isArray(input)) {
    for (const [i, v] of input.entries()) {
      const hit = urlInInput(v, `${path}/${i}`);
      if (hit) return hit;
    }
  } else if (isObject(input)) {
    for (const [k, v] of Object.entries(input)) {
      const hit = urlInInput(v, `${path}/${k}`);
      if (hit) return hit;
    }
  }
  return undefined;
}

/** File name extensions of the media types a model commonly writes. */
const EXTENSIONS: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/gif": "gif",
  "audio/wav": "wav",
  "audio/mpeg": "mp3",
  "video/mp4": "mp4",
  "application/json": "json",
  "text/plain": "txt",
};

/**
 * A run's output with its files taken out (SRP-JOB-044): every base64 `data:` URL longer
 * than 4 096 characters becomes the artifact `out-<n>.<ext>` and the string
 * `srp-artifact:<name>`; then an output whose canonical JSON is over 65 536 bytes becomes
 * the artifact `output.json` and the string `srp-artifact:output.json`.
 */
export function outputArtifacts(output: unknown): { output: unknown; artifacts: AsyncArtifact[] } {
  const artifacts: AsyncArtifact[] = [];
  const walk = (v: unknown): unknown => {
    if (typeof v === "string" && v.length > ASYNC_JOB_LIMITS.maxInlineDataUrl) {
      const m = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)(?:;[^,;]*)*;base64,(.*)$/is.exec(v);
      const bytes = m ? fromBase64(m[2]!) : undefined;
      if (m && bytes) {
        const type = m[1]!.toLowerCase();
        const name = `out-${artifacts.length}.${EXTENSIONS[type] ?? "bin"}`;
        artifacts.push({ name, contentType: type, bytes });
        return `srp-artifact:${name}`;
      }
      return v;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  const inline = walk(output ?? null);
  const text = canonicalize(inline);
  if (utf8(text).length <= ASYNC_JOB_LIMITS.maxOutputBytes) return { output: inline, artifacts };
  artifacts.push({ name: "output.json", contentType: "application/json", bytes: utf8(text) });
  return { output: "srp-artifact:output.json", artifacts };
}

/**
 * A backend serving `runs` jobs from a Cog server.
 *
 * @example
 * const backend = cogBackend({ baseUrl: "http://127.0.0.1:5000" });
 * const io = await backend.io!(); // the instance's declared input and output
 */
export function cogBackend(options: CogBackendOptions): Backend {
  const base = options.baseUrl.replace(/\/+$/, "");
  const get = async (path: string, signal: AbortSignal): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, { signal });
    } catch (error) {
      throw new BackendError("job.upstream_error", `Cog server unreachable: ${(error as Error).message}`, undefined, { cause: error });
    }
    if (!res.ok) throw new BackendError("job.upstream_error", `Cog server answered ${res.status} to GET ${path}`, res.status);
    return res;
  };

  const runAsync = async (request: Json, opts: AsyncCallOptions): Promise<AsyncResult> => {
    const input = request.input;
    if (!isObject(input)) throw new BackendError("job.invalid_request", "a runs job's request has no input object");
    const url = options.allowUrls ? undefined : urlInInput(input);
    if (url) throw new BackendError("job.invalid_request", `input ${url} is a URL; this node does not let its model fetch URLs`);
    opts.onProgress(0);
    const started = Date.now();
    let res: Response;
    try {
      res = await fetch(`${base}/predictions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input }),
        signal: opts.signal,
      });
    } catch (error) {
      if (opts.signal.aborted) throw opts.signal.reason;
      throw new BackendError("job.upstream_error", `Cog server unreachable: ${(error as Error).message}`, undefined, { cause: error });
    }
    const text = await res.text();
    if (!res.ok)
      throw new BackendError(classifyUpstreamStatus(res.status, text), `Cog answered ${res.status}: ${text.slice(0, 300)}`, res.status);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new BackendError("job.upstream_error", "Cog answered no JSON");
    }
    if (!isObject(body)) throw new BackendError("job.upstream_error", "Cog answered no JSON object");
    if (body.status !== "succeeded")
      throw new BackendError(
        "job.upstream_error",
        `the prediction ended ${String(body.status)}: ${String(body.error ?? "")}`.slice(0, 500),
      );
    const metrics = isObject(body.metrics) ? body.metrics : {};
    const reported =
      typeof metrics.predict_time === "number" && Number.isFinite(metrics.predict_time) && metrics.predict_time >= 0
        ? metrics.predict_time
        : undefined;
    const seconds = Math.ceil(reported ?? (Date.now() - started) / 1000);
    const { output, artifacts } = outputArtifacts(body.output);
    return { artifacts, output, usage: { promptTokens: 0, completionTokens: 0, seconds, runs: 1, measured: true } };
  };

  return {
    kind: "other",
    label: `Cog at ${base}`,
    asyncApi: "runs",
    async listModels() {
      return [];
    },
    async chat() {
      throw new BackendError("job.unsupported_api", "a Cog backend serves no chat");
    },
    runAsync,
    async io(signal) {
      const io = cogIo(await (await get("/openapi.json", signal ?? AbortSignal.timeout(10_000))).json());
      if (!io) throw new BackendError("job.upstream_error", "the Cog server's /openapi.json declares no Input schema");
      return io;
    },
    async probe(signal) {
      await get("/health-check", signal);
    },
  };
}
