/**
 * What every provider-mode check shares: the context, launching the provider under test
 * against a fresh harness hub, and the hub's half of the handshake.
 */
import { createHello, INITIAL_POSITION, omitFields, signDetached, verifyDetached, type ReceiptPosition } from "@srp/core";
import type { Hello } from "@srp/core/schema";
import { FakeHub, launch } from "./fake-hub.js";
import type { Tracker } from "../runner.js";
import type { SchemaValidator } from "../schema.js";
import { fail } from "./verdict.js";

/** What provider-mode checks get. */
export interface ProviderContext {
  /** The command that starts the provider under test; the hub URL is appended. */
  command: string;
  validator: SchemaValidator;
  tracker: Tracker;
  /** How long to wait for the provider to connect (default 10 s). */
  connectTimeoutMs?: number;
}

/** Starts a harness hub and launches the provider against it. */
export async function setup(ctx: ProviderContext) {
  const hub = new FakeHub(ctx.validator);
  await hub.start();
  const proc = launch(ctx.command, hub.baseUrl);
  ctx.tracker.cleanups.push(
    () => hub.stop(),
    () => proc.stop(),
  );
  const accept = async (what = "the provider to connect") => {
    const peer = await hub.accept(ctx.connectTimeoutMs ?? 10_000);
    if (!peer) fail(`timed out waiting for ${what}; provider output:\n${proc.output().slice(-1500)}`);
    ctx.tracker.track(peer);
    return peer;
  };
  return { hub, proc, accept };
}

/** A hello from the harness hub, with overrides, signed by `signer`. */
export function hello(hub: FakeHub, overrides: Partial<Hello> = {}, signer = hub.identity): Hello {
  const base = createHello({ identity: hub.identity, maxFrameBytes: 1_048_576 });
  const body = omitFields({ ...base, ...overrides }, "sig");
  return { ...body, sig: signDetached("hello", body, signer) } as Hello;
}

/** Checks an auth answering `sent`; returns what is wrong, or undefined. */
export function authProblem(auth: Record<string, unknown>, sent: Hello): string | undefined {
  if (auth.type !== "auth") return `expected auth, got ${String(auth.type)}`;
  if (auth.nonce !== sent.nonce) return `auth.nonce ${String(auth.nonce)} does not echo this session's nonce ${sent.nonce}`;
  if (auth.hubId !== sent.hubId) return "auth.hubId is not the hello's hubId";
  if (auth.version !== 1) return `auth.version is ${String(auth.version)}; the only common version is 1`;
  if (typeof auth.ts !== "number" || Math.abs(auth.ts - Date.now()) > 60_000) return "auth.ts is not within 60 s of the harness clock";
  if (
    typeof auth.sig !== "string" ||
    typeof auth.nodeId !== "string" ||
    !verifyDetached("auth", omitFields(auth, "sig"), auth.sig, auth.nodeId)
  ) {
    return "auth signature does not verify with auth.nodeId";
  }
  return undefined;
}

/** The limits the harness hub announces in welcome. */
export const WELCOME_LIMITS = { maxFrameBytes: 1_048_576, maxInstances: 64, maxConcurrentJobs: 16 } as const;

/** The harness hub's welcome for `auth`, announcing the node's recorded receipt position. */
export function welcome(auth: Record<string, unknown>, heartbeatIntervalMs = 15_000, receipts: ReceiptPosition = INITIAL_POSITION) {
  return {
    type: "welcome",
    version: 1,
    sessionId: "sess_conformance",
    nodeId: auth.nodeId,
    accountId: "acct_conformance",
    heartbeatIntervalMs,
    limits: WELCOME_LIMITS,
    replaced: false,
    receipts,
  };
}

/** Launches the provider, sends hello and waits for its auth (which must answer that hello); returns the session parts. */
export async function untilAuth(ctx: ProviderContext) {
  const s = await setup(ctx);
  const peer = await s.accept();
  const h = hello(s.hub);
  peer.send(h);
  const auth = await peer.expect("auth");
  const problem = authProblem(auth, h);
  if (problem) fail(problem);
  return { ...s, peer, auth, hello: h };
}

/** Launches the provider and completes a handshake with it. */
export async function openSession(ctx: ProviderContext, heartbeatIntervalMs?: number) {
  const s = await untilAuth(ctx);
  s.peer.send(welcome(s.auth, heartbeatIntervalMs));
  return s;
}
