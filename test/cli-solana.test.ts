/**
 * `srp-hub serve` taking x402 payments on Solana, run as a user runs it: the hub is a real
 * child process (packages/srp-hub/dist/cli.js) given the EVM flags (the local ganache chain
 * served over HTTP) and the Solana flags, the fee payer's key in `SRP_SOLANA_FEE_PAYER`. It
 * reaches the test's LiteSVM only through the JSON-RPC stand-in (support/solana.ts), so the
 * production adapter `rpcSvmChain` verifies, co-signs and settles. The official `@x402/fetch`
 * + `@x402/svm` client pays a chat completion with Solana USDC: 200, a successful
 * PAYMENT-RESPONSE on the Solana network, the treasury up by exactly the amount, and
 * `srp-hub ledger verify` clean. A malformed fee payer key is a usage error. Then `rpcSvmChain`
 * alone over the stand-in: each kind of refusal the rail acts on arrives as that kind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import {
  appendTransactionMessageInstruction,
  createTransactionMessage,
  getBase58Decoder,
  getSignatureFromTransaction,
  getTransactionEncoder,
  pipe,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
  type Blockhash,
} from "@solana/kit";
import { getTransferCheckedInstruction, TOKEN_PROGRAM_ADDRESS } from "@solana-program/token";
import { generateIdentity } from "@srp/core";
import { decodePaymentRequired, decodeSettlementResponse } from "@srp/core/x402";
import { rpcSvmChain } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";
import { startChain, type TestChain } from "./support/chain.js";
import { DEVNET, solanaWorld, type SolanaWorld } from "./support/solana.js";

const CLI = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
const MODEL = "sim-llama-3-8b";
const PRICE = { input: "1000000", output: "3000000" };
const body = { model: MODEL, messages: [{ role: "user", content: "Paid from Solana, through the CLI." }], max_tokens: 8 };

let chain: TestChain;
let sol: SolanaWorld;
let sim: Simulator;
const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  chain = await startChain({ serve: true });
  sol = await solanaWorld();
  sim = await startSimulator();
}, 60_000);
afterAll(async () => {
  await sim?.close();
  await sol?.close();
  await chain?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `serve`'s EVM x402 flags for the local chain (treasury accounts[8], settler accounts[1]). */
const evmFlags = () => [
  "--chain-rpc",
  chain.rpcUrl!,
  "--chain-id",
  String(chain.chainId),
  "--usdc",
  chain.usdc.address,
  "--treasury",
  chain.accounts[8]!.address,
  "--settler-key",
  chain.privateKeys[1]!,
];

/** `serve`'s Solana flags for the test cluster (the fee payer's key goes in the environment). */
const solanaFlags = () => [
  "--solana-rpc",
  sol.rpcUrl,
  "--solana-network",
  DEVNET,
  "--solana-mint",
  sol.mint,
  "--solana-treasury",
  sol.treasury.address,
  // The test's requests cost far less than the default minimum ($0.01) at which Solana is offered.
  "--solana-min-amount",
  "0",
];

/** The child's environment: ours, without any Solana key of our own, plus `extra`. */
const envWith = (extra: Record<string, string>) => {
  const env = { ...process.env };
  delete env.SRP_SOLANA_FEE_PAYER;
  return { ...env, ...extra };
};

/** Runs the CLI to its exit (without blocking this process: the RPC stand-ins live here). */
const run = (args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });

/** The token balance of the Solana treasury's associated token account. */
const solTreasury = async () => sol.tokenBalance(await sol.ata(sol.treasury.address)) ?? 0n;

describe("srp-hub serve with the Solana flags", () => {
  it("takes a Solana USDC payment from the official client through rpcSvmChain; the books verify", async () => {
    const data = tempDir("srp-cli-solana-");
    const key = "srp_cli_solana_provider_key_0001";
    const child = spawn(
      process.execPath,
      [CLI, "serve", "--port", "0", "--data-dir", data, "--account", `acct_node:${key}`, ...evmFlags(), ...solanaFlags()],
      {
        env: envWith({ SRP_SOLANA_FEE_PAYER: JSON.stringify([...sol.feePayerSecret]) }),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    let node: Provider | undefined;
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`serve exited ${code}: ${err}`)));
      });
      node = createProvider({
        hub: url,
        identity: generateIdentity(),
        account: key,
        reconnect: false,
        instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE }],
      });
      await node.ready();

      const post = (fetcher: typeof fetch) =>
        fetcher(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      const quoted = await post(fetch);
      expect(quoted.status).toBe(402);
      const offer = decodePaymentRequired(quoted.headers.get("payment-required")!).accepts.find((a) => a.network === DEVNET);
      expect(offer).toMatchObject({ asset: sol.mint, payTo: sol.treasury.address, extra: { feePayer: sol.feePayer.address } });
      const amount = BigInt(offer!.amount);

      const treasuryBefore = await solTreasury();
      const payerAta = await sol.ata(sol.payer.address);
      const payerBefore = sol.tokenBalance(payerAta)!;
      const pay = wrapFetchWithPaymentFromConfig(fetch, {
        schemes: [{ network: DEVNET, client: new ExactSvmScheme(sol.payer, { rpcUrl: sol.rpcUrl }) }],
        spendControls: { allowedAssets: true, maxAmountPerPayment: false },
      });
      const res = await post(pay);
      expect(res.status, err).toBe(200);
      await res.arrayBuffer();
      const settled = decodeSettlementResponse(res.headers.get("payment-response")!);
      expect(settled).toMatchObject({ success: true, network: DEVNET, payer: sol.payer.address });
      // The transaction id the hub reports is the one on the VM, and it succeeded there.
      const status = await rpcSvmChain({ url: sol.rpcUrl }).signatureStatus(settled.transaction);
      expect(status).toEqual({ confirmed: true, err: null });
      expect(await solTreasury()).toBe(treasuryBefore + amount);
      expect(sol.tokenBalance(payerAta)).toBe(payerBefore - amount);
    } finally {
      await node?.close();
      child.kill("SIGTERM");
      await exited;
    }
    const verify = await run(["ledger", "verify", "--data-dir", data], envWith({}));
    expect({ status: verify.status, stderr: verify.stderr }).toEqual({ status: 0, stderr: "" });
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });
  });

  it("refuses bad Solana flags with a usage error (exit 64) before serving", async () => {
    const keyFile = join(tempDir("srp-cli-solana-key-"), "fee-payer.json");
    writeFileSync(keyFile, JSON.stringify([...sol.feePayerSecret.subarray(0, 32)]));
    const base58 = getBase58Decoder().decode(sol.feePayerSecret);
    const cases: Array<{ args: string[]; env: Record<string, string>; says: string }> = [
      {
        args: [...evmFlags(), ...solanaFlags()],
        env: { SRP_SOLANA_FEE_PAYER: JSON.stringify([...sol.feePayerSecret.subarray(0, 32)]) },
        says: "SRP_SOLANA_FEE_PAYER holds 32 bytes; a Solana key pair is 64",
      },
      {
        args: [...evmFlags(), ...solanaFlags(), "--solana-fee-payer-key", keyFile],
        env: {},
        says: `--solana-fee-payer-key (the file ${keyFile}) holds 32 bytes`,
      },
      { args: [...solanaFlags()], env: { SRP_SOLANA_FEE_PAYER: base58 }, says: "--solana-rpc needs the EVM x402 flags too" },
      {
        args: [...evmFlags(), "--solana-rpc", sol.rpcUrl, "--solana-network", DEVNET, "--solana-treasury", sol.treasury.address],
        env: { SRP_SOLANA_FEE_PAYER: base58 },
        says: `--solana-mint is required on ${DEVNET}`,
      },
      { args: [...evmFlags(), ...solanaFlags()], env: {}, says: "Solana x402 needs the fee payer's key" },
    ];
    for (const c of cases) {
      const data = tempDir("srp-cli-solana-bad-");
      const r = await run(["serve", "--port", "0", "--data-dir", data, ...c.args], envWith(c.env));
      expect({ status: r.status, says: r.stderr.includes(c.says) }, r.stderr).toEqual({ status: 64, says: true });
      expect(r.stderr).toContain("--solana-rpc URL --solana-treasury OWNER");
    }
  });
});

/** A signed transfer of `amount` from the payer to the treasury, its fees paid by the fee payer: wire bytes and id. */
async function transfer(amount: bigint, blockhash = sol.svm.latestBlockhash()) {
  const ix = getTransferCheckedInstruction({
    source: await sol.ata(sol.payer.address),
    mint: sol.mint,
    destination: await sol.ata(sol.treasury.address),
    authority: sol.payer,
    amount,
    decimals: 6,
  });
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(sol.feePayer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: blockhash as Blockhash, lastValidBlockHeight: 150n }, m),
    (m) => appendTransactionMessageInstruction(ix, m),
  );
  const tx = await signTransactionMessageWithSigners(message);
  return { wire: new Uint8Array(getTransactionEncoder().encode(tx)), signature: getSignatureFromTransaction(tx) as string };
}

describe("rpcSvmChain over a JSON-RPC endpoint", () => {
  it("reads accounts, and reports a refused transfer, a landed one, a replay and an expired blockhash as the rail's kinds", async () => {
    const rpc = rpcSvmChain({ url: sol.rpcUrl });
    expect(await rpc.getAccount(sol.stranger.address)).toBeNull();
    expect(await rpc.getAccount(await sol.ata(sol.treasury.address))).toMatchObject({
      owner: TOKEN_PROGRAM_ADDRESS,
    });

    const tooMuch = await transfer(sol.tokenBalance(await sol.ata(sol.payer.address))! + 1n);
    // The simulation's kind is the next test's.
    expect(await rpc.simulate(tooMuch.wire)).toMatchObject({ ok: false });
    expect(await rpc.send(tooMuch.wire)).toMatchObject({ ok: false, kind: "insufficient_funds" });
    expect(await rpc.signatureStatus(tooMuch.signature)).toBeNull();

    const good = await transfer(7n);
    const before = await solTreasury();
    expect(await rpc.simulate(good.wire)).toEqual({ ok: true });
    expect(await rpc.send(good.wire)).toEqual({ ok: true });
    expect(await rpc.signatureStatus(good.signature)).toEqual({ confirmed: true, err: null });
    expect(await solTreasury()).toBe(before + 7n);
    expect(await rpc.send(good.wire)).toMatchObject({ ok: false, kind: "already_processed" });
    expect(await solTreasury()).toBe(before + 7n);

    const old = sol.svm.latestBlockhash();
    const late = await transfer(5n, old);
    expect(await rpc.isBlockhashValid(old)).toBe(true);
    sol.svm.expireBlockhash();
    expect(await rpc.isBlockhashValid(old)).toBe(false);
    expect(await rpc.send(late.wire)).toMatchObject({ ok: false, kind: "blockhash_not_found" });
    expect(await rpc.signatureStatus(late.signature)).toBeNull();
    expect(await solTreasury()).toBe(before + 7n);
  });

  // Known defect, for the owner of payments/svm-chain.ts: kit hands the error's numbers over
  // as bigints (`{ InstructionError: [0n, { Custom: 1n }] }`), and svmTxErrorKind compares
  // `Custom` with the number 1, so a simulated shortfall is "failed". Flip to `it` once fixed.
  it("reports a simulated token shortfall as insufficient_funds", async () => {
    const rpc = rpcSvmChain({ url: sol.rpcUrl });
    const tooMuch = await transfer(sol.tokenBalance(await sol.ata(sol.payer.address))! + 1n);
    expect(await rpc.simulate(tooMuch.wire)).toMatchObject({ ok: false, kind: "insufficient_funds" });
  });
});
