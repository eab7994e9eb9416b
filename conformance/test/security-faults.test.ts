// The security, wallet and payment-limit checks (hub-security.ts, and hub.x402.insufficient_funds)
// against a real @srp/hub behind a relay (fixtures/faulty-hub.ts): each check passes through
// the unchanged relay and fails against a fault that breaks exactly the rule it checks.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { directSettler, SqliteStore, type HubOptions } from "@srp/hub";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChain, type TestChain } from "../../test/support/chain.js";
import { runAgainstFault as run } from "./fixtures/faulty-hub.js";

const statuses = (results: Record<string, [string, string]>) => Object.fromEntries(Object.entries(results).map(([id, [s]]) => [id, s]));

describe("security checks against faulty hubs", () => {
  const WIRE = [
    "hub.security.signature_before_account",
    "hub.security.key_not_echoed",
    "hub.security.frame_limit_first",
    "hub.security.message_headroom",
    "hub.security.failed_handshakes",
    "hub.security.pending_handshakes",
  ];

  it("the unchanged relay passes every wire security check (and hub.offer.ack, which cites SRP-SEC-013)", async () => {
    const results = await run("none", [...WIRE, "hub.offer.ack"]);
    expect(Object.entries(results).filter(([, [s]]) => s !== "pass")).toEqual([]);
    expect(Object.keys(results).sort()).toEqual([...WIRE, "hub.offer.ack"].sort());
  }, 60_000);

  const FAULTS: Array<[string, string, RegExp]> = [
    ["hub.security.signature_before_account", "account_before_signature", /auth\.unknown_account/],
    ["hub.security.key_not_echoed", "echoes_key", /repeats the key/],
    ["hub.security.frame_limit_first", "parses_before_limit", /frame\.malformed/],
    ["hub.security.message_headroom", "low_message_limit", /10000 heartbeats/],
    ["hub.security.failed_handshakes", "checks_auth_when_limited", /auth\.bad_signature.*SRP-SEC-018/],
    ["hub.security.failed_handshakes", "limit_closes_sessions", /SRP-SEC-021/],
    ["hub.security.failed_handshakes", "upgrade_refusal_opaque", /status 503, not 429, no Retry-After/],
    ["hub.security.pending_handshakes", "upgrade_refusal_opaque", /status 503, not 429/],
  ];
  for (const [check, fault, why] of FAULTS) {
    it(`${check} fails against the fault ${fault}`, async () => {
      const results = await run(fault, [check]);
      expect(results[check]?.[0]).toBe("fail");
      expect(results[check]?.[1]).toMatch(why);
    }, 60_000);
  }

  it("hub.security.pending_handshakes passes against the hub-wide cap alone (SRP-SEC-025), and is skipped when the hub caps nothing", async () => {
    const capped = await run("none", ["hub.security.pending_handshakes"], {
      limits: { unauthenticatedConnections: false, unauthenticatedConnectionsTotal: 4 },
    });
    expect(capped["hub.security.pending_handshakes"]).toEqual(["pass", ""]);
    const open = await run("none", ["hub.security.pending_handshakes", "hub.security.failed_handshakes"], {
      limits: { unauthenticatedConnections: false, unauthenticatedConnectionsTotal: false, connections: false, handshakeFailures: false },
    });
    expect(statuses(open)).toEqual({ "hub.security.pending_handshakes": "skipped", "hub.security.failed_handshakes": "skipped" });
  }, 60_000);
});

describe("wallet sign-in and nonce limit checks against faulty hubs (SQLite storage)", () => {
  const stores: SqliteStore[] = [];
  afterAll(() => stores.splice(0).forEach((s) => s.close()));
  /** Storage that signs wallets in: wallet accounts, nonces and API keys. */
  const storage = (): Partial<HubOptions> => {
    const store = new SqliteStore(":memory:");
    stores.push(store);
    return { accounts: store, storage: store };
  };

  it("the unchanged relay passes hub.wallet.sign_in and hub.security.nonce_limit", async () => {
    const results = await run("none", ["hub.wallet.sign_in", "hub.security.nonce_limit"], storage());
    expect(results).toEqual({ "hub.wallet.sign_in": ["pass", ""], "hub.security.nonce_limit": ["pass", ""] });
  }, 60_000);

  it("hub.wallet.sign_in fails against a hub that signs in a message for another domain", async () => {
    const results = await run("wallet_domain_unchecked", ["hub.wallet.sign_in"], storage());
    expect(results["hub.wallet.sign_in"]?.[0]).toBe("fail");
    expect(results["hub.wallet.sign_in"]?.[1]).toMatch(/another domain: answered 200/);
  }, 60_000);

  it("hub.security.nonce_limit fails against a hub whose 429 has no Retry-After, and is skipped when nonces are not limited", async () => {
    const results = await run("rate_limit_no_retry_after", ["hub.security.nonce_limit"], storage());
    expect(results["hub.security.nonce_limit"]?.[0]).toBe("fail");
    expect(results["hub.security.nonce_limit"]?.[1]).toMatch(/no Retry-After header/);
    const unlimited = await run("none", ["hub.security.nonce_limit"], { ...storage(), limits: { nonces: false } });
    expect(unlimited["hub.security.nonce_limit"]?.[0]).toBe("skipped");
  }, 60_000);

  it("skips the wallet checks on a hub without wallet storage", async () => {
    const results = await run("none", ["hub.wallet.sign_in", "hub.security.nonce_limit"]);
    expect(statuses(results)).toEqual({ "hub.wallet.sign_in": "skipped", "hub.security.nonce_limit": "skipped" });
  }, 30_000);
});

describe("x402 limit and funds checks against faulty hubs on a local chain", () => {
  let chain: TestChain;
  const dir = mkdtempSync(join(tmpdir(), "srp-conf-sec-"));
  const stores: SqliteStore[] = [];
  beforeAll(async () => {
    chain = await startChain();
  }, 60_000);
  afterAll(async () => {
    for (const s of stores.splice(0)) s.close();
    await chain?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Options of a hub taking x402 payments (settling `settle` serving) to a treasury of its own. */
  const x402 = (settle: "before" | "after" = "before"): Partial<HubOptions> => {
    const store = new SqliteStore(join(dir, `hub-${stores.length}.db`));
    stores.push(store);
    return {
      storage: store,
      x402: {
        chainId: chain.chainId,
        asset: { address: chain.usdc.address, name: chain.usdc.name, version: chain.usdc.version },
        payTo: chain.accounts[9]!.address,
        settler: directSettler({
          publicClient: chain.publicClient,
          walletClient: chain.walletFor(chain.hubSigner),
          confirmTimeoutMs: 10_000,
        }),
        settle,
      },
    };
  };

  it("the unchanged relay passes hub.x402.insufficient_funds and hub.security.payment_limit", async () => {
    const results = await run("none", ["hub.x402.insufficient_funds", "hub.security.payment_limit"], x402());
    expect(results).toEqual({ "hub.x402.insufficient_funds": ["pass", ""], "hub.security.payment_limit": ["pass", ""] });
  }, 60_000);

  it("hub.x402.insufficient_funds fails against a hub that skips the on-chain checks", async () => {
    for (const settle of ["before", "after"] as const) {
      const results = await run("skips_chain_checks", ["hub.x402.insufficient_funds"], x402(settle));
      expect(results["hub.x402.insufficient_funds"]?.[0]).toBe("fail");
    }
  }, 60_000);

  it("hub.security.payment_limit fails against a hub that verifies payments over the limit, and against one that limits keyed requests", async () => {
    const verifies = await run("payment_limit_after_verify", ["hub.security.payment_limit"], x402());
    expect(verifies["hub.security.payment_limit"]?.[0]).toBe("fail");
    expect(verifies["hub.security.payment_limit"]?.[1]).toMatch(/forged payment over the limit.*SRP-SEC-020.*status 402/);
    const keyed = await run("limits_keyed_requests", ["hub.security.payment_limit"], x402());
    expect(keyed["hub.security.payment_limit"]?.[0]).toBe("fail");
    expect(keyed["hub.security.payment_limit"]?.[1]).toMatch(/SRP-SEC-021/);
  }, 60_000);
});
