/**
 * What every hub-mode check shares: the context, discovery, and opening sessions as a
 * node bound to the account under test.
 */
import { createAuth, generateIdentity, type Identity } from "@srp/core";
import type { Hello } from "@srp/core/schema";
import type { Tracker } from "../runner.js";
import type { SchemaValidator } from "../schema.js";
import { ensure, skip } from "./verdict.js";
import { UpgradeRefusedError, WirePeer } from "./wire.js";

/** What hub-mode checks get. */
export interface HubContext {
  /** The hub's base URL. */
  baseUrl: string;
  /** An API key of an account on the hub under test, for nodes to bind to (and, in job checks, to act as a consumer). */
  accountKey: string | undefined;
  /**
   * A private key (`0x` + 64 hex digits) of a wallet holding the hub's x402 token, to pay one
   * request (`hub.x402.pay_once`); without it that check is skipped.
   */
  x402PayerKey?: string | undefined;
  validator: SchemaValidator;
  tracker: Tracker;
}

/** The members of a discovery document the checks use. */
export interface DiscoveryLike {
  hubId: string;
  provider: { url: string; maxFrameBytes: number };
  consumer?: { baseUrl: string; surfaces: string[] };
  payments?: string[];
}

/** Fetches and validates the hub's discovery document. */
export async function discovery(ctx: HubContext): Promise<DiscoveryLike> {
  const url = new URL("/.well-known/srp.json", ctx.baseUrl);
  const res = await fetch(url);
  ensure(res.ok, `GET ${url} answered ${res.status}`);
  const doc: unknown = await res.json();
  const problem = ctx.validator.checkDef("Discovery", doc);
  ensure(!problem, `discovery document does not match schema.json: ${problem}`);
  return doc as DiscoveryLike;
}

/** The longest the harness waits in all for a hub's rate limits on one connection (SRP-SEC-018). */
const RATE_LIMIT_PATIENCE_MS = 30_000;

/**
 * Opens a provider WebSocket as a well-behaved node would: an upgrade refused with 429
 * (the hub's per-address limits, which a whole suite run of failed handshakes can reach)
 * is retried after its `Retry-After`, for at most {@link RATE_LIMIT_PATIENCE_MS} in all.
 */
async function upgradeWithPatience(url: string, ctx: HubContext): Promise<WirePeer> {
  const giveUp = Date.now() + RATE_LIMIT_PATIENCE_MS;
  for (;;) {
    try {
      return await WirePeer.connect(url, ctx.validator);
    } catch (e) {
      if (!(e instanceof UpgradeRefusedError) || e.status !== 429) throw e;
      const wait = Math.max(1000, e.retryAfterMs ?? 1000);
      if (Date.now() + wait > giveUp)
        throw new Error(`${e.message}, still after waiting for the hub's rate limit for ${RATE_LIMIT_PATIENCE_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Opens a provider WebSocket and reads the hub's hello. */
export async function connect(ctx: HubContext): Promise<{ peer: WirePeer; hello: Hello; doc: DiscoveryLike }> {
  const doc = await discovery(ctx);
  const peer = ctx.tracker.track(await upgradeWithPatience(doc.provider.url, ctx));
  const hello = (await peer.expect("hello")) as unknown as Hello;
  return { peer, hello, doc };
}

/** The account key, or a skip when the run has none. */
export function needKey(ctx: HubContext): string {
  if (!ctx.accountKey) skip("needs --account-key (an API key of an account on the hub under test)");
  return ctx.accountKey;
}

/** Connects and completes a handshake as `identity`; returns the open peer and its welcome. */
export async function openSession(ctx: HubContext, identity: Identity = generateIdentity()) {
  const key = needKey(ctx);
  const { peer, hello, doc } = await connect(ctx);
  peer.send(createAuth({ identity, hello, account: { kind: "api_key", key } }));
  const welcome = await peer.expect("welcome");
  return { peer, welcome, hello, doc, identity };
}

/** Asserts that a valid session is still open and usable. */
export async function stillServing(peer: WirePeer, what = "an unrelated session"): Promise<void> {
  peer.send({ type: "heartbeat", ts: Date.now(), load: [] });
  const closed = await peer.closedWithin(300);
  ensure(!closed, `${what} was closed (${closed?.code} ${closed?.reason})`);
}
