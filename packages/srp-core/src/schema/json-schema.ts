/**
 * Emits the v1 schemas as one JSON Schema (draft 2020-12) document, one `$defs` entry per
 * message plus the discovery document and the signed objects. This is what
 * `spec/v1/schema.json` contains; `npm run spec:check` fails when the file is stale.
 */
import { AsyncJobsAnnouncement, ResultManifest } from "./async-jobs.js";
import { Receipt } from "./attestation.js";
import { Discovery } from "./discovery.js";
import { Instance } from "./offer.js";
import { MESSAGES, MESSAGE_TYPES } from "./registry.js";
import { Statement } from "./settlement.js";

/** The `$id` of the v1 JSON Schema document. */
export const SCHEMA_ID = "https://srp.dev/spec/v1/schema.json";

/** A JSON Schema document (plain JSON data). */
export type JsonSchemaDocument = Record<string, unknown>;

function plain(schema: unknown): unknown {
  // JSON round trip drops TypeBox's symbol-keyed metadata, leaving plain JSON Schema.
  return JSON.parse(JSON.stringify(schema));
}

/** Builds the v1 JSON Schema document. */
export function buildJsonSchema(): JsonSchemaDocument {
  const defs: Record<string, unknown> = {};
  for (const type of MESSAGE_TYPES) defs[MESSAGES[type].name] = plain(MESSAGES[type].schema);
  defs.Receipt = plain(Receipt);
  defs.Statement = plain(Statement);
  defs.Instance = plain(Instance);
  defs.Discovery = plain(Discovery);
  defs.AsyncJobsAnnouncement = plain(AsyncJobsAnnouncement);
  defs.ResultManifest = plain(ResultManifest);
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: SCHEMA_ID,
    title: "SRP v1 wire messages",
    description:
      "Every message of the Spare Relay Protocol version 1. A frame is valid when it matches the $defs entry named by its type (see x-srp-types).",
    "x-srp-types": Object.fromEntries(MESSAGE_TYPES.map((t) => [t, `#/$defs/${MESSAGES[t].name}`])),
    oneOf: MESSAGE_TYPES.map((t) => ({ $ref: `#/$defs/${MESSAGES[t].name}` })),
    $defs: defs,
  };
}
