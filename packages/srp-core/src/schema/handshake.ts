/** Handshake and authentication: `hello` (hub), `auth` (node), `welcome` (hub). */
import { Type, type Static } from "@sinclair/typebox";
import {
  EvmAddress,
  Id,
  message,
  Nonce,
  PublicKey,
  ReceiptTotals,
  SCHEMA_LIMITS,
  Signature,
  Text,
  Timestamp,
  Version,
} from "./primitives.js";

/** Frame size limits within which hubs choose their announced limit. */
export const FRAME_LIMITS = {
  /** Smallest `maxFrameBytes` a hub may announce (1 MiB). */
  min: 1_048_576,
  /** Largest `maxFrameBytes` a hub may announce (16 MiB). */
  max: 16_777_216,
  /** What the reference hub announces by default (4 MiB). */
  default: 4_194_304,
} as const;

/** Limits a hub announces in `hello`; they bind both directions. */
export const HelloLimits = Type.Object(
  { maxFrameBytes: Type.Integer({ minimum: FRAME_LIMITS.min, maximum: FRAME_LIMITS.max }) },
  { additionalProperties: false, title: "HelloLimits" },
);

/** Hub -> node, first frame of every session. */
export const Hello = message(
  "hello",
  {
    versions: Type.Array(Version, { minItems: 1, maxItems: SCHEMA_LIMITS.maxVersions, uniqueItems: true }),
    hubId: PublicKey,
    nonce: Nonce,
    ts: Timestamp,
    limits: HelloLimits,
    sig: Signature,
  },
  "Hub greeting: supported versions, hub identity, a fresh nonce for this session, limits; signed by the hub.",
);
/** Hub -> node, first frame of every session. */
export type Hello = Static<typeof Hello>;

/** Binds a node to a hub account by that account's API key. */
export const ApiKeyBinding = Type.Object(
  {
    kind: Type.Literal("api_key"),
    key: Type.String({ minLength: 8, maxLength: SCHEMA_LIMITS.apiKeyMaxLength, pattern: "^[\\x21-\\x7e]+$" }),
  },
  { additionalProperties: false, title: "ApiKeyBinding" },
);

/** Binds a node to the account of a wallet by an EIP-191 signature over the node binding text. */
export const WalletBinding = Type.Object(
  {
    kind: Type.Literal("wallet"),
    address: EvmAddress,
    signature: Type.String({ pattern: "^0x[0-9a-fA-F]{130}$" }),
  },
  { additionalProperties: false, title: "WalletBinding" },
);

/** How a node proves which account it belongs to. */
export const AccountBinding = Type.Union([ApiKeyBinding, WalletBinding], { title: "AccountBinding" });
/** How a node proves which account it belongs to. */
export type AccountBinding = Static<typeof AccountBinding>;

/** Node -> hub, answer to `hello`. */
export const Auth = message(
  "auth",
  {
    version: Version,
    nodeId: PublicKey,
    hubId: PublicKey,
    nonce: Nonce,
    ts: Timestamp,
    account: AccountBinding,
    agent: Type.Optional(Type.String({ maxLength: 128 })),
    sig: Signature,
  },
  "Node authentication: chosen version, node identity, the hub's nonce echoed, account binding; signed by the node.",
);
/** Node -> hub, answer to `hello`. */
export type Auth = Static<typeof Auth>;

/** Limits that apply for the rest of the session. */
export const SessionLimits = Type.Object(
  {
    maxFrameBytes: Type.Integer({ minimum: FRAME_LIMITS.min, maximum: FRAME_LIMITS.max }),
    maxInstances: Type.Integer({ minimum: 1, maximum: SCHEMA_LIMITS.maxInstances }),
    maxConcurrentJobs: Type.Integer({ minimum: 1, maximum: 65535 }),
  },
  { additionalProperties: false, title: "SessionLimits" },
);

/** Hub -> node, the handshake succeeded. */
export const Welcome = message(
  "welcome",
  {
    version: Version,
    sessionId: Id,
    nodeId: PublicKey,
    accountId: Id,
    heartbeatIntervalMs: Type.Integer({ minimum: 1000, maximum: 300_000 }),
    limits: SessionLimits,
    replaced: Type.Boolean(),
    receipts: Type.Object(
      { lastSeq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), totals: ReceiptTotals },
      { additionalProperties: false },
    ),
    message: Type.Optional(Text),
  },
  "Session established: session id, account, heartbeat interval, limits, and the hub's view of the node's receipt totals.",
);
/** Hub -> node, the handshake succeeded. */
export type Welcome = Static<typeof Welcome>;
