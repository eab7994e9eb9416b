/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the byte string every SRP signature is
 * computed over. Object members are sorted by the UTF-16 code units of their names,
 * numbers are serialized as ECMAScript's `Number.prototype.toString` does, strings use
 * the minimal JSON escapes, and there is no whitespace.
 */

/** Thrown when a value has no canonical JSON form (non-finite number, bigint, lone surrogate, cycle...). */
export class CanonicalizationError extends Error {
  override readonly name = "CanonicalizationError";
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function serializeString(s: string): string {
  if (LONE_SURROGATE.test(s)) throw new CanonicalizationError("string contains a lone surrogate");
  // JSON.stringify (ES2019+) emits exactly the escapes RFC 8785 section 3.2.2.2 requires
  // for well-formed strings: \" \\ \b \f \n \r \t, \u00XX (lowercase) for other controls.
  return JSON.stringify(s);
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
        out = `[${value.map((v) => (v === undefined ? "null" : serialize(v, stack))).join(",")}]`;
      } else {
        const record = value as Record<string, unknown>;
        const keys = Object.keys(record)
          .filter((k) => record[k] !== undefined)
          .sort();
        out = `{${keys.map((k) => `${serializeString(k)}:${serialize(record[k], stack)}`).join(",")}}`;
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
