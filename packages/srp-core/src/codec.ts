/**
 * Frame codec: `decode` turns one WebSocket frame into a validated message or a coded
 * `SrpError`; `encode` validates and serializes a message. Each failure has its own
 * code: oversized (`frame.too_large`), binary (`frame.binary`), not a UTF-8 JSON object,
 * duplicate member names or nesting deeper than 128 levels (`frame.malformed`), unknown `type` (`frame.unknown_type`), schema violation
 * (`frame.invalid`), no common version (`version.unsupported`).
 */
import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { SrpError } from "./errors.js";
import { JSON_DEPTH_LIMITS, scanJson, type ScanJsonResult } from "./json-scan.js";
import { FRAME_LIMITS } from "./schema/handshake.js";
import { EXT_KEY_MAX_LENGTH, extKeyProblem } from "./schema/primitives.js";
import { isMessageType, MESSAGES, type MessageType, type SrpMessage } from "./schema/registry.js";

/** The protocol version this library implements. */
export const PROTOCOL_VERSION = 1;

/** The versions this library can speak. */
export const SUPPORTED_VERSIONS: readonly number[] = Object.freeze([PROTOCOL_VERSION]);

/**
 * The hard cap on a frame a receiver buffers (SRP-FRM-015): twice its `maxFrameBytes`. A
 * frame up to the cap reaches {@link decode}, which answers anything over the limit with
 * `frame.too_large`; a larger one may be dropped by the WebSocket layer (close 1009)
 * without an `error` message. Use it as the WebSocket library's largest message size
 * (`ws`: `maxPayload`).
 *
 * @example
 * new WebSocketServer({ noServer: true, maxPayload: frameHardCap(4_194_304), skipUTF8Validation: true });
 */
export function frameHardCap(maxFrameBytes: number): number {
  return 2 * maxFrameBytes;
}

/** Options for {@link decode}. */
export interface DecodeOptions {
  /** Largest accepted frame in bytes (UTF-8). Default: `FRAME_LIMITS.default` (4 MiB). */
  maxFrameBytes?: number;
  /** Whether the transport delivered the frame as binary. Binary frames are rejected. */
  binary?: boolean;
  /** Versions the receiver speaks, for `hello`, `auth` and `welcome`. Default: {@link SUPPORTED_VERSIONS}. */
  versions?: readonly number[];
}

/** Outcome of {@link decode}. */
export type DecodeResult = { ok: true; message: SrpMessage } | { ok: false; error: SrpError };

const checkers = new Map<MessageType, TypeCheck<TSchema>>();

function checker(type: MessageType): TypeCheck<TSchema> {
  let c = checkers.get(type);
  if (!c) {
    c = TypeCompiler.Compile(MESSAGES[type].schema as TSchema);
    checkers.set(type, c);
  }
  return c;
}

const encoder = new TextEncoder();

function utf8Length(text: string, limit: number): number {
  // Every UTF-16 code unit encodes to 1..3 bytes: skip the exact count when it cannot matter.
  if (text.length > limit) return text.length;
  if (text.length * 3 <= limit) return text.length;
  return encoder.encode(text).length;
}

/**
 * Checks a value against the schema of its `type`.
 * Returns `undefined` when valid, otherwise the `SrpError` that `decode` would return.
 */
export function validateMessage(value: unknown): SrpError | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return new SrpError("frame.malformed", "frame is not a JSON object");
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string") return new SrpError("frame.invalid", "message has no string member `type`");
  if (!isMessageType(type)) {
    return new SrpError("frame.unknown_type", `unknown message type ${JSON.stringify(type.slice(0, 64))}`, {
      details: { type: type.slice(0, 64) },
    });
  }
  const c = checker(type);
  if (!c.Check(value)) {
    const first = c.Errors(value).First();
    const path = first?.path || "/";
    return new SrpError("frame.invalid", `${type}: ${path}: ${first?.message ?? "does not match schema"}`, {
      details: { type, path, schema: MESSAGES[type].name },
    });
  }
  const longKey = extKeyProblem(value);
  if (longKey !== undefined) {
    return new SrpError(
      "frame.invalid",
      `${type}: /ext: key ${JSON.stringify(longKey.slice(0, 80))} is longer than ${EXT_KEY_MAX_LENGTH} characters`,
      {
        details: { type, path: "/ext", schema: MESSAGES[type].name },
      },
    );
  }
  return undefined;
}

function scanError(problem: Exclude<ScanJsonResult, { ok: true }>): SrpError {
  if (problem.problem === "depth") {
    return new SrpError("frame.malformed", `frame nests objects and arrays deeper than ${problem.limit} levels`, {
      details: { limit: problem.limit },
    });
  }
  const name = problem.name.slice(0, 64);
  return new SrpError("frame.malformed", `frame has duplicate member name ${JSON.stringify(name)} in one object`, { details: { name } });
}

function versionError(message: SrpMessage, versions: readonly number[]): SrpError | undefined {
  if (message.type === "hello") {
    if (!message.versions.some((v) => versions.includes(v))) {
      return new SrpError(
        "version.unsupported",
        `hub offers versions [${message.versions.join(", ")}], this side speaks [${versions.join(", ")}]`,
        {
          details: { offered: message.versions, supported: versions },
        },
      );
    }
  } else if (message.type === "auth" || message.type === "welcome") {
    if (!versions.includes(message.version)) {
      return new SrpError("version.unsupported", `version ${message.version} is not supported; supported: [${versions.join(", ")}]`, {
        details: { requested: message.version, supported: versions },
      });
    }
  }
  return undefined;
}

/**
 * Decodes one frame.
 *
 * @example
 * const r = decode('{"type":"goodbye","reason":"maintenance"}');
 * if (r.ok) console.log(r.message.type); // "goodbye"
 * else console.log(r.error.code);
 */
export function decode(frame: string | Uint8Array, options: DecodeOptions = {}): DecodeResult {
  const max = options.maxFrameBytes ?? FRAME_LIMITS.default;
  if (options.binary) return { ok: false, error: new SrpError("frame.binary") };
  const size = typeof frame === "string" ? utf8Length(frame, max) : frame.byteLength;
  if (size > max) {
    return {
      ok: false,
      error: new SrpError("frame.too_large", `frame of ${size} bytes exceeds the limit of ${max}`, { details: { size, limit: max } }),
    };
  }
  let text: string;
  if (typeof frame === "string") {
    text = frame;
  } else {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(frame);
    } catch {
      return { ok: false, error: new SrpError("frame.malformed", "frame is not valid UTF-8") };
    }
  }
  const scanned = scanJson(text, { maxDepth: JSON_DEPTH_LIMITS.frame, duplicates: true });
  if (!scanned.ok) return { ok: false, error: scanError(scanned) };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return { ok: false, error: new SrpError("frame.malformed", `frame is not JSON: ${(cause as Error).message}`) };
  }
  const invalid = validateMessage(value);
  if (invalid) return { ok: false, error: invalid };
  const message = value as SrpMessage;
  const unsupported = versionError(message, options.versions ?? SUPPORTED_VERSIONS);
  if (unsupported) return { ok: false, error: unsupported };
  return { ok: true, message };
}

/**
 * Validates and serializes a message for sending.
 * @throws SrpError with code `frame.invalid` (or `frame.unknown_type`) when the message does not match its schema.
 */
export function encode(message: SrpMessage): string {
  const invalid = validateMessage(message);
  if (invalid) throw invalid;
  return JSON.stringify(message);
}

/** Builds the `error` message for an `SrpError`, ready to `encode`. */
export function errorMessage(error: SrpError): SrpMessage {
  const msg: SrpMessage = { type: "error", code: error.code, message: error.message.slice(0, 2048), retryable: error.retryable };
  if (error.jobId !== undefined) msg.jobId = error.jobId;
  return msg;
}
