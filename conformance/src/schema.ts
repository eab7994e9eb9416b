/**
 * Validation of every received message against the published `spec/v1/schema.json`,
 * with Ajv (JSON Schema 2020-12): an implementation is held to the schema file, not to
 * the reference library's TypeBox definitions.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";

const CANDIDATES = ["../schema/v1.json", "../../spec/v1/schema.json"];

function loadSchema(): Record<string, unknown> {
  for (const rel of CANDIDATES) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  }
  throw new Error("spec/v1/schema.json not found next to the conformance suite");
}

/** Validates wire messages and named `$defs` against schema.json. */
export class SchemaValidator {
  readonly #byType = new Map<string, ValidateFunction>();
  readonly #byDef = new Map<string, ValidateFunction>();
  readonly #ajv: Ajv2020;
  readonly #types: Record<string, string>;

  constructor(schema: Record<string, unknown> = loadSchema()) {
    this.#ajv = new Ajv2020({ strict: false, allErrors: false });
    this.#ajv.addSchema(schema);
    this.#types = schema["x-srp-types"] as Record<string, string>;
  }

  #get(def: string): ValidateFunction {
    let v = this.#byDef.get(def);
    if (!v) {
      v = this.#ajv.getSchema(`https://srp.dev/spec/v1/schema.json#/$defs/${def}`);
      if (!v) throw new Error(`schema.json has no $defs/${def}`);
      this.#byDef.set(def, v);
    }
    return v;
  }

  /** Validates a value against `$defs/<def>`; returns an error description or undefined. */
  checkDef(def: string, value: unknown): string | undefined {
    const v = this.#get(def);
    if (v(value)) return undefined;
    const e = v.errors?.[0];
    return `${def}${e?.instancePath ?? ""}: ${e?.message ?? "invalid"}`;
  }

  /** Validates a wire message by its `type`; returns an error description or undefined. */
  checkMessage(value: unknown): string | undefined {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return "message is not a JSON object";
    const type = (value as { type?: unknown }).type;
    if (typeof type !== "string") return "message has no string type";
    const ref = this.#types[type];
    if (!ref) return `type ${JSON.stringify(type)} is not defined by schema.json`;
    let v = this.#byType.get(type);
    if (!v) {
      v = this.#get(ref.replace("#/$defs/", ""));
      this.#byType.set(type, v);
    }
    return this.checkDef(ref.replace("#/$defs/", ""), value);
  }
}
