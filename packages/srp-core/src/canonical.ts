/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the byte string every SRP signature is
 * computed over. Object members are sorted by the UTF-16 code units of their names,
 * numbers are serialized as ECMAScript's `Number.prototype.toString` does, strings use
 * the minimal JSON escapes, and there is no whitespace.
 */
import { LocalError } from "./local-error.js";

/**
 * Thrown when a value has no canonical JSON form (non-finite number, bigint, lone
 * surrogate, cycle...). A local error: a peer that receives such content reports it
 * with its own wire code (`frame.invalid`, `job.upstream_error`).
 *
 * @example
 * try {
 *   canonicalize({ n: Number.NaN });
 * } catch (error) {
 *   if (error instanceof CanonicalizationError) console.log(error.shortMessage); // "number NaN has no JSON form"
 * }
 */
export class CanonicalizationError extends LocalError {
  override readonly name = "CanonicalizationError";
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function serializeString(s: string): string {
  // JSON.stringify (ES2019+) emits exactly the escapes RFC 8785 section 3.2.2.2 requires
  // for well-formed strings: \" \\ \b \f \n \r \t, \u00XX (lowercase) for other controls.
  // It writes a lone surrogate as \udXXX, so only text with that sequence needs the check.
  const out = JSON.stringify(s);
  if (out.includes("\\ud") && LONE_SURROGATE.test(s)) throw new CanonicalizationError("string contains a lone surrogate");
  return out;
}

function serialize(value: unknown, stack: object[]): string {
  switch (typeof value) {
    case "string":
      return serializeString(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new CanonicalizationError(`number ${value} has no JSON form`);
      return Object.is(value, -0) ? "0" : String(value);
    case "object": {
      if (value === null) return "null";
      if (stack.includes(value)) throw new CanonicalizationError("cyclic structure");
      stack.push(value);
      let out: string;
      if (Array.isArray(value)) {
        out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          const v: unknown = value[i];
          out += v === undefined ? "null" : serialize(v, stack);
        }
        out += "]";
      } else {
        const record = value as Record<string, unknown>;
        // Default sort order is by UTF-16 code units, as RFC 8785 section 3.2.3 asks.
        const keys = Object.keys(record).sort();
        out = "{";
        let first = true;
        for (const k of keys) {
          const v = record[k];
          if (v === undefined) continue;
          out += first ? serializeString(k) : `,${serializeString(k)}`;
          out += `:${serialize(v, stack)}`;
          first = false;
        }
        out += "}";
      }
      stack.pop();
      return out;
    }
    default:
      throw new CanonicalizationError(`a ${typeof value} has no JSON form`);
  }
}

/**
 * Canonical JSON text of a JSON value (RFC 8785). Object members whose value is
 * `undefined` are omitted, as `JSON.stringify` does.
 *
 * @example
 * canonicalize({ b: 1, a: [true, null, "x"] }); // '{"a":[true,null,"x"],"b":1}'
 */
export function canonicalize(value: unknown): string {
  return serialize(value, []);
}
