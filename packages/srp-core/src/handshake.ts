/**
 * The v1 handshake as pure functions. The hub opens with a signed `hello` carrying a
 * fresh nonce; the node answers with a signed `auth` that echoes the nonce and binds its
 * key to the hub's key and an account; the hub checks it and answers `welcome` or an
 * `error` followed by a close. Transport (WebSocket) and account look-up live in the hub
 * and provider packages; what is signed and what is checked, in which order, lives here.
 */
import { SUPPORTED_VERSIONS } from "./codec.js";
import { randomNonce } from "./encoding.js";
import { SrpError } from "./errors.js";
import type { Identity } from "./identity.js";
import { FRAME_LIMITS, type Auth, type Hello } from "./schema/handshake.js";
import type { AccountBinding } from "./schema/handshake.js";
import { omitFields, signDetached, verifyDetached } from "./signing.js";

/** Timing rules of the handshake. */
export const HANDSHAKE_TIMING = {
  /** A signed handshake timestamp must be within this many milliseconds of the receiver's clock. */
  freshnessWindowMs: 60_000,
  /** The hub closes a connection that has not authenticated within this time. */
  handshakeTimeoutMs: 10_000,
} as const;

/** Parameters of {@link createHello}. */
export interface CreateHelloParameters {
  /** The hub's identity. */
  identity: Identity;
  /** Versions offered; default: every version this library speaks. */
  versions?: readonly number[];
  /** Frame limit announced; default 4 MiB. */
  maxFrameBytes?: number;
  /** Clock; default `Date.now()`. */
  now?: number;
  /** Nonce; default a fresh random one. Pass one only in tests and examples. */
  nonce?: string;
}

/** Builds and signs the hub's `hello`. */
export function createHello(p: CreateHelloParameters): Hello {
  const body: Omit<Hello, "sig"> = {
    type: "hello",
    versions: [...(p.versions ?? SUPPORTED_VERSIONS)],
    hubId: p.identity.id,
    nonce: p.nonce ?? randomNonce(),
    ts: p.now ?? Date.now(),
    limits: { maxFrameBytes: p.maxFrameBytes ?? FRAME_LIMITS.default },
  };
  return { ...body, sig: signDetached("hello", body, p.identity) };
}

function freshness(ts: number, now: number, windowMs: number): SrpError | undefined {
  const skew = ts - now;
  if (Math.abs(skew) > windowMs) {
    return new SrpError(
      "auth.stale_timestamp",
      `timestamp is ${Math.round(skew / 1000)} s from this side's clock; the window is ${windowMs / 1000} s`,
      {
        details: { ts, now, windowMs },
      },
    );
  }
  return undefined;
}

/** Options of {@link verifyHello}. */
export interface VerifyHelloOptions {
  /** Clock; default `Date.now()`. */
  now?: number;
  /** The hub id the node expects (from its configuration or the discovery document). */
  expectedHubId?: string;
  /** Freshness window; default 60 s. */
  windowMs?: number;
}

/**
 * Node side: checks a decoded `hello`: the pinned hub id (`auth.wrong_hub`), freshness
 * (`auth.stale_timestamp`) and the hub's signature (`auth.bad_signature`).
 * Returns `undefined` when the hello is acceptable.
 */
export function verifyHello(hello: Hello, options: VerifyHelloOptions = {}): SrpError | undefined {
  if (options.expectedHubId !== undefined && hello.hubId !== options.expectedHubId) {
    return new SrpError("auth.wrong_hub", `hub id ${hello.hubId} is not the expected ${options.expectedHubId}`);
  }
  const stale = freshness(hello.ts, options.now ?? Date.now(), options.windowMs ?? HANDSHAKE_TIMING.freshnessWindowMs);
  if (stale) return stale;
  if (!verifyDetached("hello", omitFields(hello, "sig"), hello.sig, hello.hubId)) {
    return new SrpError("auth.bad_signature", "hello signature does not verify with the hub id");
  }
  return undefined;
}

/** Parameters of {@link createAuth}. */
export interface CreateAuthParameters {
  /** The node's identity. */
  identity: Identity;
  /** The hub's hello being answered. */
  hello: Hello;
  /** The account the node binds to. */
  account: AccountBinding;
  /** Versions the node speaks; the highest one the hub also offers is chosen. */
  versions?: readonly number[];
  /** Software name and version, for the hub's logs. */
  agent?: string;
  /** Clock; default `Date.now()`. */
  now?: number;
}

/**
 * Node side: builds and signs the `auth` answering `hello`.
 * @throws SrpError `version.unsupported` when there is no common version.
 */
export function createAuth(p: CreateAuthParameters): Auth {
  const mine = p.versions ?? SUPPORTED_VERSIONS;
  const common = p.hello.versions.filter((v) => mine.includes(v));
  if (common.length === 0) throw new SrpError("version.unsupported", `no common version: hub offers [${p.hello.versions.join(", ")}]`);
  const body: Omit<Auth, "sig"> = {
    type: "auth",
    version: Math.max(...common),
    nodeId: p.identity.id,
    hubId: p.hello.hubId,
    nonce: p.hello.nonce,
    ts: p.now ?? Date.now(),
    account: p.account,
    ...(p.agent === undefined ? {} : { agent: p.agent }),
  };
  return { ...body, sig: signDetached("auth", body, p.identity) };
}

/** What the hub knows when it checks an `auth`. */
export interface CheckAuthContext {
  /** The hub's own id. */
  hubId: string;
  /** The nonce this hub sent in this session's hello. */
  nonce: string;
  /** Whether a nonce was issued to, or consumed by, an earlier session. */
  isKnownNonce?: (nonce: string) => boolean;
  /** Clock; default `Date.now()`. */
  now?: number;
  /** Freshness window; default 60 s. */
  windowMs?: number;
}

/**
 * Hub side: checks a decoded `auth`, in the order the spec fixes: addressed hub
 * (`auth.wrong_hub`), nonce (`auth.replayed_nonce` when it belongs to an earlier session,
 * else `auth.nonce_mismatch`), freshness (`auth.stale_timestamp`), signature
 * (`auth.bad_signature`). The account binding is checked afterwards by the hub's account store.
 * Returns `undefined` when the auth is acceptable.
 */
export function checkAuth(auth: Auth, ctx: CheckAuthContext): SrpError | undefined {
  if (auth.hubId !== ctx.hubId) return new SrpError("auth.wrong_hub", "auth is addressed to another hub");
  if (auth.nonce !== ctx.nonce) {
    return ctx.isKnownNonce?.(auth.nonce)
      ? new SrpError("auth.replayed_nonce", "nonce belongs to an earlier session")
      : new SrpError("auth.nonce_mismatch", "nonce was not issued for this session");
  }
  const stale = freshness(auth.ts, ctx.now ?? Date.now(), ctx.windowMs ?? HANDSHAKE_TIMING.freshnessWindowMs);
  if (stale) return stale;
  if (!verifyDetached("auth", omitFields(auth, "sig"), auth.sig, auth.nodeId)) {
    return new SrpError("auth.bad_signature", "auth signature does not verify with the node id");
  }
  return undefined;
}

/**
 * The text a wallet signs with EIP-191 (`personal_sign`) to bind a node to the wallet's
 * account. It names the node only, so one signature serves every hub.
 */
export function nodeBindingText(nodeId: string): string {
  return `SRP-v1/node-binding\nnode: ${nodeId}`;
}
