// The ext key rule (SRP-FRM-011, SRP-FRM-019) as the codec and schema.json apply it, and the
// canonical form of numbers (SRP-FRM-020, SRP-FRM-021).
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { canonicalize } from "./canonical.js";
import { decode } from "./codec.js";
import { buildJsonSchema } from "./schema/json-schema.js";

const ajv = new Ajv2020({ strict: false, allErrors: false });
ajv.addSchema(buildJsonSchema());
const bySchema = (message: unknown) => ajv.validate("https://srp.dev/spec/v1/schema.json#/$defs/Goodbye", message);
const goodbye = (ext: unknown) => ({ type: "goodbye", reason: "bye", ext });

const GOOD = [{ "acme.region": "eu" }, { "anthropic.beta": ["x"], "acme-corp.v2_x.y": null }, { [`acme.${"k".repeat(59)}`]: 1 }, {}];
const BAD = [
  { "Acme.region": 1 },
  { region: 1 },
  { "acme.x ": 1 },
  { "acme.x\n": 1 },
  { [`acme.${"k".repeat(60)}`]: 1 },
  Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`acme.k${i}`, i])),
  ["acme.x"],
  "acme.x",
];

describe("ext keys (SRP-FRM-019)", () => {
  it("accepts well-formed keys with any values, in the codec and in schema.json", () => {
    for (const ext of GOOD) {
      expect(decode(JSON.stringify(goodbye(ext))).ok).toBe(true);
      expect(bySchema(goodbye(ext))).toBe(true);
    }
  });

  it("rejects a key off the pattern, over 64 characters, more than 32 keys, or an ext that is not an object, with frame.invalid; schema.json agrees", () => {
    for (const ext of BAD) {
      const r = decode(JSON.stringify(goodbye(ext)));
      expect(r.ok ? "accepted" : r.error.code).toBe("frame.invalid");
      expect(bySchema(goodbye(ext))).toBe(false);
    }
  });

  it("states the whole rule in schema.json", () => {
    const ext = (buildJsonSchema().$defs as Record<string, { properties: Record<string, unknown> }>).Goodbye!.properties.ext as Record<
      string,
      unknown
    >;
    expect(ext).toMatchObject({
      type: "object",
      additionalProperties: false,
      propertyNames: { maxLength: 64 },
      maxProperties: 32,
      patternProperties: { "^[a-z0-9-]+\\.[A-Za-z0-9_.-]+$": {} },
    });
  });
});

describe("canonical numbers (SRP-FRM-020, SRP-FRM-021)", () => {
  const canon = (text: string) => canonicalize(JSON.parse(text));
  it("writes numbers as ECMAScript Number::toString does", () => {
    expect(
      [
        "0.1",
        "4.50",
        "1.0",
        "-0",
        "1e21",
        "1e20",
        "1e-7",
        "0.000001",
        "5e-324",
        "1.7976931348623157e308",
        "333333333.33333329",
        "-1.5E-10",
      ].map(canon),
    ).toEqual([
      "0.1",
      "4.5",
      "1",
      "0",
      "1e+21",
      "100000000000000000000",
      "1e-7",
      "0.000001",
      "5e-324",
      "1.7976931348623157e+308",
      "333333333.3333333",
      "-1.5e-10",
    ]);
  });

  it("hashes an integer above 2^53 as the binary64 value JSON.parse gives it", () => {
    expect(canon("9007199254740993")).toBe("9007199254740992");
    expect(canon("123456789012345678901")).toBe("123456789012345680000");
    expect(canon('{"seed":9007199254740993}')).toBe(canon('{"seed":9007199254740992}'));
  });

  it("sorts members by UTF-16 code units at every depth", () => {
    expect(canon('{"b":{"\\ud83d\\ude00":1,"\ufb33":2,"\u20ac":3},"a":[1.0,{"\u00e9":0.5,"e":-0}],"\\r":"CR","1":"one"}')).toBe(
      '{"\\r":"CR","1":"one","a":[1,{"e":0,"\u00e9":0.5}],"b":{"\u20ac":3,"\ud83d\ude00":1,"\ufb33":2}}',
    );
  });
});
