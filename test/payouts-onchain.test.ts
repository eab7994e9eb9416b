/**
 * Provider earnings paid on-chain through the SrpSettlement contract: consumers pay the hub
 * by x402 (real USDC moves to the treasury on an in-process ganache chain), a provider node
 * serves them and earns, then the hub pays out in one batch transaction and the provider
 * claims a later voucher itself. The 90 / 10 split shows in the contract's events and in the
 * balances, replays pay nothing, and the treasury's on-chain balance always equals what the
 * ledger says the hub holds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEventLogs } from "viem";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm";
import { generateIdentity } from "@srp/core";
import { protocolShare, srpSettlementAbi } from "@srp/core/chain";
import { createHub, directSettler, OnchainPayouts, SqliteStore, type Hub, type PayoutEvent } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";
import { spawn } from "node:child_process";
import { serveRpc, startChain, type TestChain } from "./support/chain.js";

const MODEL = "sim-llama-3-8b";
const PRICE = { input: "1000000", output: "3000000" };

let chain: TestChain;
let store: SqliteStore;
let hub: Hub;
let url: string;
let sim: Simulator;
let provider: Provider;
let providerKey: string;
let providerAccount: string;
let payouts: OnchainPayouts;
/** The hub's `payout` events. */
const payoutEvents: PayoutEvent[] = [];
const dir = mkdtempSync(join(tmpdir(), "srp-payouts-"));

beforeAll(async () => {
  chain = await startChain();
  store = new SqliteStore(join(dir, "hub.sqlite"), { signupCredits: 0n });
  const treasury = chain.walletFor(chain.accounts[5]!);
  payouts = new OnchainPayouts({
    publicClient: chain.publicClient,
    treasury,
    signer: chain.hubSigner,
    settlement: chain.settlement,
    token: chain.usdc.address,
    chainId: chain.chainId,
    book: store.payouts,
    // The provider account is paid to its wallet (accounts[6]).
    payee: async (accountId) => (accountId === providerAccount ? chain.accounts[6]!.address : undefined),
  });
  hub = createHub({
    identity: generateIdentity(),
    accounts: store,
    storage: store,
    drainTimeoutMs: 2000,
    onchainPayouts: payouts,
    metrics: {},
    x402: {
      chainId: chain.chainId,
      asset: { address: chain.usdc.address, name: chain.usdc.name, version: chain.usdc.version },
      payTo: chain.accounts[5]!.address,
      settler: directSettler({ publicClient: chain.publicClient, walletClient: chain.walletFor(chain.hubSigner) }),
    },
  });
  hub.on("payout", (e) => payoutEvents.push(e));
  ({ url } = await hub.listen({ port: 0 }));
  sim = await startSimulator();
  const owner = await store.createAccount({ name: "provider" });
  providerAccount = owner.id;
  providerKey = (await store.createApiKey(owner.id)).key;
  provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: providerKey,
    reconnect: false,
    instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 8 }],
  });
  await provider.ready();
}, 60_000);

afterAll(async () => {
  await provider?.close();
  await hub?.close();
  await sim?.close();
  await store?.close();
  await chain?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Pays `n` chat completions by x402 from accounts[3]. */
async function servePaid(n: number): Promise<void> {
  const pay = wrapFetchWithPaymentFromConfig(fetch, {
    schemes: [{ network: "eip155:*", client: new ExactEvmScheme(chain.accounts[3]!) }],
    spendControls: { allowedAssets: [{ network: `eip155:${chain.chainId}`, asset: chain.usdc.address }] },
  });
  for (let i = 0; i < n; i++) {
    const res = await pay(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: `Question ${i}` }], max_tokens: 24 }),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  }
}

/** The books balance and the treasury holds exactly what the ledger says came in and did not go out. */
async function booksMatchChain(): Promise<void> {
  expect(await store.verify()).toEqual([]);
  expect(await chain.usdcBalance(chain.accounts[5]!.address)).toBe(-(await store.ledgerBalance("external")));
}

describe("on-chain payouts", () => {
  it("pays every owed provider 90 % and the protocol 10 % in one batch; a second run pays nothing", async () => {
    await servePaid(3);
    const earned = (await store.summary(providerAccount)).earned;
    expect(earned).toBeGreaterThan(0n);
    expect(await store.payouts.payable(providerAccount)).toBe(earned);
    const payee = chain.accounts[6]!.address;
    const payeeBefore = await chain.usdcBalance(payee);
    const protocolBefore = await chain.usdcBalance(chain.protocol.address);

    const run = await payouts.run();
    expect(run.batchTx).not.toBeNull();
    expect(payoutEvents.map((e) => [e.kind, e.amount])).toEqual([
      ["issued", earned],
      ["funded", earned + protocolShare(earned)],
      ["claimed", earned],
    ]);
    const metrics = await hub.metrics!.scrape();
    expect(metrics).toContain('srp_payouts_total{kind="claimed"} 1');
    expect(metrics).toContain(`srp_payout_amount_units_total{kind="issued"} ${earned}`);
    expect(run.paid).toEqual([{ payee: payee.toLowerCase(), total: earned, provider: earned, protocol: protocolShare(earned) }]);
    // The split on-chain: provider : protocol = 90 : 10, exactly as the contract's rule says.
    expect(await chain.usdcBalance(payee)).toBe(payeeBefore + earned);
    expect(await chain.usdcBalance(chain.protocol.address)).toBe(protocolBefore + protocolShare(earned));
    expect(await chain.usdcBalance(chain.settlement)).toBe(0n);
    // In the books the earnings left the provider's balance, and the protocol's share the platform's.
    expect(await store.payouts.payable(providerAccount)).toBe(0n);
    expect((await store.summary(providerAccount)).balance).toBe(0n);
    await booksMatchChain();

    const again = await payouts.run();
    expect(again).toMatchObject({ issued: [], batchTx: null, paid: [] });
    expect(await chain.usdcBalance(payee)).toBe(payeeBefore + earned);
  });

  it("hands a provider its voucher to claim itself; claiming twice pays once", async () => {
    const paidBefore = await chain.publicClient.readContract({
      address: chain.settlement,
      abi: srpSettlementAbi,
      functionName: "paid",
      args: [chain.accounts[6]!.address],
    });
    await servePaid(2);
    const owed = await store.payouts.payable(providerAccount);
    expect(owed).toBeGreaterThan(0n);
    const res = await fetch(`${url}/v1/payouts/voucher`, { method: "POST", headers: { authorization: `Bearer ${providerKey}` } });
    expect(res.status).toBe(200);
    const v = (await res.json()) as {
      payee: `0x${string}`;
      total: string;
      amount: string;
      fee: string;
      signature: `0x${string}`;
      settlement: `0x${string}`;
      funded_tx: string | null;
    };
    expect(BigInt(v.amount)).toBe(owed);
    expect(BigInt(v.total)).toBe(paidBefore + owed);
    expect(v.funded_tx).not.toBeNull();
    // The hub reported the voucher and its funding (`srp_payouts_total` and `srp_payout_amount_units_total` count these).
    expect(payoutEvents.slice(-2)).toEqual([
      { kind: "issued", accountId: providerAccount, payee: v.payee, amount: owed, fee: BigInt(v.fee) },
      { kind: "funded", vouchers: 1, amount: owed + BigInt(v.fee), transaction: v.funded_tx },
    ]);
    await booksMatchChain();

    // The provider claims with its own wallet (it pays the gas).
    const wallet = chain.walletFor(chain.accounts[6]!);
    const before = await chain.usdcBalance(v.payee);
    const claim = async () => {
      const hash = await wallet.writeContract({
        address: v.settlement,
        abi: srpSettlementAbi,
        functionName: "claim",
        args: [v.payee, BigInt(v.total), v.signature],
      });
      const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
      expect(receipt.status).toBe("success");
      return parseEventLogs({ abi: srpSettlementAbi, eventName: "Claimed", logs: receipt.logs });
    };
    const first = await claim();
    expect(first.map((l) => [l.args.providerAmount, l.args.protocolAmount])).toEqual([[owed, BigInt(v.fee)]]);
    expect(BigInt(v.fee)).toBe(protocolShare(BigInt(v.total)) - protocolShare(paidBefore));
    expect(await chain.usdcBalance(v.payee)).toBe(before + owed);
    // A replay pays nothing.
    const second = await claim();
    expect(second.every((l) => l.args.providerAmount === 0n)).toBe(true);
    expect(await chain.usdcBalance(v.payee)).toBe(before + owed);
    // With nothing new owed, the hub hands back the newest voucher.
    const again = (await (
      await fetch(`${url}/v1/payouts/voucher`, { method: "POST", headers: { authorization: `Bearer ${providerKey}` } })
    ).json()) as { total: string };
    expect(again.total).toBe(v.total);
    await booksMatchChain();
  });

  it("`srp-hub payouts run` submits the batch from the command line and prints the transactions and amounts", async () => {
    await servePaid(2);
    const owed = await store.payouts.payable(providerAccount);
    expect(owed).toBeGreaterThan(0n);
    // The provider's own wallet is its payee for the command (the in-test resolver is the hub's; the CLI reads the database).
    await store.addWallet(providerAccount, chain.accounts[6]!.address);
    const rpc = await serveRpc(chain.provider);
    try {
      const cli = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
      const treasuryKey = chain.privateKeys[5]!;
      const args = [
        cli,
        "payouts",
        "run",
        "--db",
        `sqlite:${join(dir, "hub.sqlite")}`,
        "--rpc",
        rpc.url,
        "--chain-id",
        String(chain.chainId),
        "--settlement",
        chain.settlement,
        "--token",
        chain.usdc.address,
        "--key",
        treasuryKey,
        "--signer-key",
        chain.privateKeys[1]!,
      ];
      const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      expect({ code, err }).toEqual({ code: 0, err: "" });
      const printed = JSON.parse(out) as {
        batchTx: string;
        fundingTx: string;
        paid: Array<{ payee: string; provider: { units: string }; protocol: { units: string } }>;
      };
      expect(printed.batchTx).toMatch(/^0x[0-9a-f]{64}$/);
      const receipt = await chain.publicClient.getTransactionReceipt({ hash: printed.batchTx as `0x${string}` });
      expect(receipt.status).toBe("success");
      expect(printed.paid).toHaveLength(1);
      expect(BigInt(printed.paid[0]!.provider.units)).toBe(owed);
      expect(await store.payouts.payable(providerAccount)).toBe(0n);
      await booksMatchChain();
    } finally {
      await rpc.close();
    }
  });

  it("`srp-provider claim` fetches the node account's voucher and claims it, printing the transaction and the 90 / 10 amounts", async () => {
    await servePaid(2);
    const owed = await store.payouts.payable(providerAccount);
    expect(owed).toBeGreaterThan(0n);
    const node = mkdtempSync(join(tmpdir(), "srp-claim-node-"));
    const rpc = await serveRpc(chain.provider);
    const run = (...args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const cliPath = new URL("../packages/srp-provider/dist/cli.js", import.meta.url).pathname;
        const child = spawn(process.execPath, [cliPath, ...args], {
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, SRP_ACCOUNT_KEY: providerKey },
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        child.on("close", (code) => resolve({ code, out, err }));
      });
    try {
      const setup = await run("setup", "--hub", url, "--dir", node, "--no-detect", "--backend-url", sim.baseUrl.replace(/\/v1$/, ""));
      expect({ code: setup.code, err: setup.err }).toEqual({ code: 0, err: "" });
      const payee = chain.accounts[6]!.address;
      const before = await chain.usdcBalance(payee);
      const claimed = await run("claim", "--rpc", rpc.url, "--dir", node, "--key", chain.privateKeys[7]!);
      expect({ code: claimed.code, err: claimed.err }).toEqual({ code: 0, err: "" });
      const printed = JSON.parse(claimed.out) as { transaction: string; provider: string; protocol: string; total: string };
      expect(BigInt(printed.provider)).toBe(owed);
      expect(BigInt(printed.protocol)).toBe(protocolShare(BigInt(printed.total)) - protocolShare(BigInt(printed.total) - owed));
      expect(await chain.usdcBalance(payee)).toBe(before + owed);
      const receipt = await chain.publicClient.getTransactionReceipt({ hash: printed.transaction as `0x${string}` });
      expect(receipt.status).toBe("success");
      await booksMatchChain();
    } finally {
      await rpc.close();
      rmSync(node, { recursive: true, force: true });
    }
  });

  it("`srp-hub serve` takes x402 payments on the chain its flags name, and the official client pays it", async () => {
    // Its own treasury (accounts[8]): this hub's ledger is another one than the shared store's.
    const rpc = await serveRpc(chain.provider);
    const data = mkdtempSync(join(tmpdir(), "srp-serve-x402-"));
    const cli = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
    const key = "srp_serve_x402_provider_key_0001";
    const child = spawn(
      process.execPath,
      [
        cli,
        "serve",
        "--port",
        "0",
        "--data-dir",
        data,
        "--account",
        `acct_node:${key}`,
        "--chain-rpc",
        rpc.url,
        "--chain-id",
        String(chain.chainId),
        "--usdc",
        chain.usdc.address,
        "--treasury-key",
        chain.privateKeys[8]!,
        "--settler-key",
        chain.privateKeys[1]!,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let node: Provider | undefined;
    try {
      let out = "";
      const served = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once("exit", (code) => reject(new Error(`serve exited ${code}`)));
      });
      node = createProvider({
        hub: served,
        identity: generateIdentity(),
        account: key,
        reconnect: false,
        instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE }],
      });
      await node.ready();
      const wellKnown = (await (await fetch(`${served}/.well-known/x402`)).json()) as {
        resources: Array<{ accepts: Array<{ payTo: string; asset: string }> }>;
      };
      expect(wellKnown.resources[0]!.accepts[0]).toMatchObject({ payTo: chain.accounts[8]!.address, asset: chain.usdc.address });
      const treasuryBefore = await chain.usdcBalance(chain.accounts[8]!.address);
      const pay = wrapFetchWithPaymentFromConfig(fetch, {
        schemes: [{ network: "eip155:*", client: new ExactEvmScheme(chain.accounts[4]!) }],
        spendControls: { allowedAssets: [{ network: `eip155:${chain.chainId}`, asset: chain.usdc.address }] },
      });
      const res = await pay(`${served}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 }),
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      expect(await chain.usdcBalance(chain.accounts[8]!.address)).toBeGreaterThan(treasuryBefore);
    } finally {
      await node?.close();
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      await rpc.close();
      rmSync(data, { recursive: true, force: true });
    }
  });

  it("funds concurrent voucher requests once: the contract receives exactly what the vouchers pay", async () => {
    expect(await chain.usdcBalance(chain.settlement)).toBe(0n);
    await servePaid(2);
    const owed = await store.payouts.payable(providerAccount);
    const [a, b] = await Promise.all([payouts.voucher(providerAccount), payouts.voucher(providerAccount), payouts.fund()]);
    // One voucher was issued (the other call got the same newest one), and its money moved in once.
    expect(a!.total).toBe(b!.total);
    expect(BigInt(a!.amount)).toBe(owed);
    expect(await chain.usdcBalance(chain.settlement)).toBe(owed + BigInt(a!.fee));
    expect(await payouts.fund()).toBeNull();
    await booksMatchChain();
  });
});
