/** The hub discovery document served at `/.well-known/srp.json`. */
import { Type, type Static } from "@sinclair/typebox";
import { FRAME_LIMITS } from "./handshake.js";
import { PublicKey, SCHEMA_LIMITS, Version } from "./primitives.js";

const Url = Type.String({ minLength: 1, maxLength: 2048, pattern: "^(https?|wss?)://" });

/**
 * `/.well-known/srp.json`: how to reach a hub and what it speaks. `consumer` is optional;
 * when present it carries `baseUrl` and `surfaces` (SRP-TR-015).
 */
export const Discovery = Type.Object(
  {
    protocol: Type.Literal("srp"),
    versions: Type.Array(Version, { minItems: 1, maxItems: SCHEMA_LIMITS.maxVersions, uniqueItems: true }),
    hubId: PublicKey,
    provider: Type.Object(
      {
        url: Url,
        maxFrameBytes: Type.Integer({ minimum: FRAME_LIMITS.min, maximum: FRAME_LIMITS.max }),
      },
      // Open at every level: readers ignore members they do not understand (SRP-TR-009, SRP-TR-015).
      { additionalProperties: true },
    ),
    consumer: Type.Optional(
      Type.Object(
        {
          baseUrl: Url,
          surfaces: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32, uniqueItems: true }),
          /** The OpenAPI 3.1 document of the consumer API. */
          openapi: Type.Optional(Url),
        },
        { additionalProperties: true },
      ),
    ),
    payments: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16, uniqueItems: true }),
    software: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: true, title: "Discovery" },
);
/** `/.well-known/srp.json`. */
export type Discovery = Static<typeof Discovery>;

/** Path of the discovery document. */
export const DISCOVERY_PATH = "/.well-known/srp.json";
