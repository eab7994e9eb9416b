import { describe, expect, it } from "vitest";
import { checkAuth, createAuth, createHello, verifyHello } from "./handshake.js";
import { identityFromSeed } from "./identity.js";

const hub = identityFromSeed(new Uint8Array(32).fill(1));
const node = identityFromSeed(new Uint8Array(32).fill(2));
const now = 1_767_225_600_000;
const account = { kind: "api_key", key: "srp_test_key_0001" } as const;

describe("hello", () => {
  it("verifies when fresh and signed by its hub", () => {
    expect(verifyHello(createHello({ identity: hub, now }), { now, expectedHubId: hub.id })).toBeUndefined();
  });

  it("fails on a tampered field, a stale timestamp or an unexpected hub", () => {
    const hello = createHello({ identity: hub, now });
    expect(verifyHello({ ...hello, versions: [1, 2] }, { now })?.code).toBe("auth.bad_signature");
    expect(verifyHello(hello, { now: now + 61_000 })?.code).toBe("auth.stale_timestamp");
    expect(verifyHello(hello, { now, expectedHubId: node.id })?.code).toBe("auth.wrong_hub");
  });
});

describe("auth", () => {
  const nonce = createHello({ identity: hub, now }).nonce;
  const hello = createHello({ identity: hub, now, nonce });
  const ctx = { hubId: hub.id, nonce, now };

  it("is accepted when it echoes this session's nonce, is fresh and signed", () => {
    const auth = createAuth({ identity: node, hello, account, now });
    expect(auth.version).toBe(1);
    expect(checkAuth(auth, ctx)).toBeUndefined();
  });

  it("chooses the highest common version", () => {
    const auth = createAuth({ identity: node, hello: { ...hello, versions: [1, 2, 3] }, account, versions: [1, 2], now });
    expect(auth.version).toBe(2);
    expect(() => createAuth({ identity: node, hello: { ...hello, versions: [5] }, account, now })).toThrow(/no common version/);
  });

  it("names each failure", () => {
    const auth = createAuth({ identity: node, hello, account, now });
    expect(checkAuth({ ...auth, sig: createAuth({ identity: hub, hello, account, now }).sig }, ctx)?.code).toBe("auth.bad_signature");
    expect(checkAuth({ ...auth, account: { kind: "api_key", key: "srp_other_key_01" } }, ctx)?.code).toBe("auth.bad_signature");
    expect(checkAuth(auth, { ...ctx, now: now - 120_000 })?.code).toBe("auth.stale_timestamp");
    expect(checkAuth(auth, { ...ctx, hubId: node.id })?.code).toBe("auth.wrong_hub");
    const other = createHello({ identity: hub, now });
    expect(checkAuth(auth, { ...ctx, nonce: other.nonce })?.code).toBe("auth.nonce_mismatch");
    expect(checkAuth(auth, { ...ctx, nonce: other.nonce, isKnownNonce: (n) => n === nonce })?.code).toBe("auth.replayed_nonce");
  });

  it("checks the addressed hub and nonce before the clock, and the clock before the signature", () => {
    const auth = { ...createAuth({ identity: node, hello, account, now: now - 600_000 }), sig: "A".repeat(86) };
    expect(checkAuth(auth, ctx)?.code).toBe("auth.stale_timestamp");
    expect(checkAuth(auth, { ...ctx, nonce: "B".repeat(43) })?.code).toBe("auth.nonce_mismatch");
  });
});
