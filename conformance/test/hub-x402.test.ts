/**
 * The x402 checks (`hub.x402.*`) against @srp/hub taking x402 payments on a real EVM: an
 * in-process ganache chain with TestUSDC, a hub on SQLite settling with
 * `transferWithAuthorization` (directSettler), and the harness as the only provider node.
 * Every check passes, `hub.x402.pay_once` included with a funded ganache key, in both
 * settlement modes; against a hub without x402 every check is skipped.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity } from "@srp/core";
import { createHub, directSettler, MemoryAccountStore, SqliteStore, type Hub } from "@srp/hub";
import type { SettleMode } from "@srp/hub/payments";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChain, type TestChain } from "../../test/support/chain.js";
import { HUB_CHECKS, runHubSuite, type Report } from "../src/index.js";

const X402_CHECKS = HUB_CHECKS.map((c) => c.id).filter((id) => id.startsWith("hub.x402."));

/**
 * An HTTP proxy in front of a hub that rewrites the hub's own URLs to its own (the provider
 * WebSocket URL, ws://, is left alone, so nodes still dial the hub) and lets a test tamper
 * with each answer.
 */
async function startProxy(
  target: string,
  tamper: (status: number, text: string, headers: Headers) => void,
): Promise<{ url: string; close(): Promise<void> }> {
  let origin = "";
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === "string" && !["host", "connection", "content-length"].includes(k)) headers.set(k, v);
      const upstream = await fetch(`${target}${req.url ?? "/"}`, {
        method: req.method ?? "GET",
        headers,
        ...(chunks.length ? { body: new Uint8Array(Buffer.concat(chunks)) } : {}),
      });
      const out = new Headers(upstream.headers);
      for (const h of ["content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"]) out.delete(h);
      const text = (await upstream.text()).replaceAll(target, origin);
      tamper(upstream.status, text, out);
      res.writeHead(upstream.status, Object.fromEntries(out));
      res.end(text);
    })().catch(() => {
      res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const outcomes = (report: Report) =>
  report.results.map((r) => ({ id: r.id, status: r.status, ...(r.details === undefined ? {} : { details: r.details }) }));

describe("x402 checks against @srp/hub on a local chain", () => {
  let chain: TestChain;
  const dir = mkdtempSync(join(tmpdir(), "srp-conf-x402-"));
  const opened: Array<{ hub: Hub; store: SqliteStore }> = [];

  beforeAll(async () => {
    chain = await startChain();
  }, 60_000);
  afterAll(async () => {
    for (const { hub, store } of opened.splice(0)) {
      await hub.close();
      await store.close();
    }
    await chain?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A hub taking x402 payments to `treasury`, and an API key for the harness's node. */
  async function x402Hub(settle: SettleMode, treasury: `0x${string}`): Promise<{ url: string; key: string; store: SqliteStore }> {
    const store = new SqliteStore(join(dir, `hub-${opened.length}-${settle}.db`));
    const owner = await store.createAccount({ name: "conformance harness" });
    const { key } = await store.createApiKey(owner.id);
    const hub = createHub({
      identity: generateIdentity(),
      accounts: store,
      storage: store,
      admin: store,
      drainTimeoutMs: 1000,
      x402: {
        chainId: chain.chainId,
        asset: { address: chain.usdc.address, name: chain.usdc.name, version: chain.usdc.version },
        payTo: treasury,
        settler: directSettler({
          publicClient: chain.publicClient,
          walletClient: chain.walletFor(chain.hubSigner),
          confirmTimeoutMs: 10_000,
        }),
        settle,
      },
    });
    opened.push({ hub, store });
    const { url } = await hub.listen({ port: 0 });
    return { url, key, store };
  }

  for (const [settle, treasuryIndex] of [
    ["before", 5],
    ["after", 6],
  ] as const) {
    it(`passes every x402 check settling ${settle} serving, paying exactly one request with a funded key`, async () => {
      const payer = chain.accounts[3]!;
      const treasury = chain.accounts[treasuryIndex]!.address;
      const { url, key, store } = await x402Hub(settle, treasury);
      const payerBefore = await chain.usdcBalance(payer.address);
      const treasuryBefore = await chain.usdcBalance(treasury);

      const report = await runHubSuite({ url, accountKey: key, x402PayerKey: chain.privateKeys[3]!, only: new Set(X402_CHECKS) });
      expect(outcomes(report)).toEqual(X402_CHECKS.map((id) => ({ id, status: "pass" })));
      expect(report.ok).toBe(true);

      // One payment moved on-chain, from the payer to the treasury; the refused ones moved nothing.
      const paid = payerBefore - (await chain.usdcBalance(payer.address));
      expect(paid).toBeGreaterThan(0n);
      expect((await chain.usdcBalance(treasury)) - treasuryBefore).toBe(paid);
      expect(await store.verify()).toEqual([]);
    }, 30_000);
  }

  it("fails the refusal checks, and only those, of a hub whose 402 refusals carry no fresh PAYMENT-REQUIRED", async () => {
    const { url, key } = await x402Hub("before", chain.accounts[8]!.address);
    const proxy = await startProxy(url, (status, text, headers) => {
      if (status === 402 && !text.includes('"payment.required"')) headers.delete("payment-required");
    });
    try {
      const report = await runHubSuite({ url: proxy.url, accountKey: key, only: new Set(X402_CHECKS) });
      expect(Object.fromEntries(report.results.map((r) => [r.id, r.status]))).toEqual({
        "hub.x402.required": "pass",
        "hub.x402.malformed": "pass",
        "hub.x402.mismatch": "fail",
        "hub.x402.bad_signature": "fail",
        "hub.x402.expired": "fail",
        "hub.x402.insufficient_funds": "fail",
        // Chain 1337 has no version-1 name: the X-PAYMENT refusal (payment.wrong_network) carries no fresh PAYMENT-REQUIRED either.
        "hub.x402.version1": "fail",
        "hub.x402.well_known": "pass",
        "hub.x402.pay_once": "skipped",
      });
      expect(report.results.find((r) => r.id === "hub.x402.expired")?.details).toMatch(
        /payment\.expired carries no fresh PAYMENT-REQUIRED \(SRP-PAY-005\)/,
      );
    } finally {
      await proxy.close();
    }
  }, 30_000);

  it("skips hub.x402.pay_once without a payer key, and the refusal checks need no funds", async () => {
    const { url, key } = await x402Hub("before", chain.accounts[7]!.address);
    const report = await runHubSuite({ url, accountKey: key, only: new Set(X402_CHECKS) });
    expect(outcomes(report)).toEqual(
      X402_CHECKS.map((id) =>
        id === "hub.x402.pay_once" ? { id, status: "skipped", details: expect.stringMatching(/--x402-payer-key/) } : { id, status: "pass" },
      ),
    );
    expect(await chain.usdcBalance(chain.accounts[7]!.address)).toBe(0n);
  }, 30_000);
});

describe("x402 checks against a hub that takes no x402 payments", () => {
  let hub: Hub;
  let url: string;
  beforeAll(async () => {
    const accounts = new MemoryAccountStore();
    accounts.add({ id: "acct_conformance", apiKeys: ["srp_conformance_x402_key"] });
    hub = createHub({ identity: generateIdentity(), accounts });
    ({ url } = await hub.listen({ port: 0 }));
  });
  afterAll(() => hub.close());

  it("skips every x402 check, saying why", async () => {
    const report = await runHubSuite({
      url,
      accountKey: "srp_conformance_x402_key",
      x402PayerKey: `0x${"11".repeat(32)}`,
      only: new Set(X402_CHECKS),
    });
    expect(X402_CHECKS.length).toBe(9);
    expect(outcomes(report)).toEqual(
      X402_CHECKS.map((id) => ({ id, status: "skipped", details: expect.stringMatching(/do not include x402/) })),
    );
    expect(report.ok).toBe(true);
  });
});
