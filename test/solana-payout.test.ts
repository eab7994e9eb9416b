/**
 * Provider payouts on Solana (SRP-PAY-034): a Solana payer pays (official `@x402/fetch` +
 * `@x402/svm` client, an in-process LiteSVM) for requests the provider node serves; the
 * provider account then takes its payable earnings on Solana with `POST /v1/payouts/solana`,
 * its API key and the payout message signed by a Solana address's key. The earnings leave the
 * books in the same `payout` movement a voucher makes (so an EVM voucher does not pay them
 * again), then move from the treasury's token account to the address's. After every test the
 * books verify and the treasuries on both chains hold what the ledger says (support/paynet.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { generateKeyPairSigner, getBase58Decoder, signBytes, type KeyPairSigner } from "@solana/kit";
import { refundMessage } from "@srp/core";
import { liteSvmChain, OnchainPayouts, solanaPayoutMessage, svmRail, type SvmChain } from "@srp/hub";
import { MODEL, refusal, usePayNets, walletAccount, type PayNet } from "./support/paynet.js";
import { DEVNET, solanaWorld, type SolanaWorld } from "./support/solana.js";

const chat = { model: MODEL, messages: [{ role: "user", content: "Paid from Solana, paid out there." }], max_tokens: 16 };
const nets = usePayNets("srp-sol-payout-");
let sol: SolanaWorld;
beforeAll(async () => {
  nets.chain();
  sol = await solanaWorld();
});
afterAll(async () => {
  await sol?.close();
});

const solTreasury = async () => sol.tokenBalance(await sol.ata(sol.treasury.address)) ?? 0n;
const solBalance = async (owner: KeyPairSigner) => sol.tokenBalance(await sol.ata(owner.address)) ?? 0n;

/** A hub offering Solana beside the EVM chain, with the treasury owner's key. */
async function start(options: { chain?: (inner: SvmChain) => SvmChain } = {}): Promise<PayNet> {
  const before = await solTreasury();
  const chain = liteSvmChain(sol.svm);
  return nets.start({
    x402: {
      rails: [
        svmRail({
          minAmount: 0n,
          network: DEVNET,
          mint: sol.mint,
          decimals: 6,
          payTo: sol.treasury.address,
          feePayer: sol.feePayerSecret,
          treasurySigner: sol.treasury,
          chain: options.chain ? options.chain(chain) : chain,
          confirmTimeoutMs: 2_000,
          pollIntervalMs: 20,
        }),
      ],
    },
    elsewhere: async () => (await solTreasury()) - before,
  });
}

/** Waits until the provider account's payable earnings differ from `from`; returns them. */
async function payableAfter(net: PayNet, from: bigint): Promise<bigint> {
  for (let i = 0; i < 200; i++) {
    const p = await net.store.payouts.payable(net.owner.id);
    if (p !== from) return p;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("the provider's earnings did not change");
}

/** One chat request paid from Solana with the official client, served by the net's provider; the provider's payable earnings after it. */
async function paySolana(net: PayNet): Promise<bigint> {
  const before = await net.store.payouts.payable(net.owner.id);
  const pay = wrapFetchWithPaymentFromConfig(fetch, {
    schemes: [{ network: DEVNET, client: new ExactSvmScheme(sol.payer, { rpcUrl: sol.rpcUrl }) }],
    spendControls: { allowedAssets: true, maxAmountPerPayment: false },
  });
  const res = await pay(`${net.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(chat),
  });
  expect(res.status).toBe(200);
  await res.json();
  return payableAfter(net, before);
}

/** One chat request paid with a consumer's API key (signup credits: no money from outside), served by the provider. */
async function payWithKey(net: PayNet, key: string): Promise<bigint> {
  const before = await net.store.payouts.payable(net.owner.id);
  const res = await fetch(`${net.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(chat),
  });
  expect(res.status).toBe(200);
  await res.json();
  return payableAfter(net, before);
}

async function nonce(net: PayNet): Promise<string> {
  const res = await fetch(`${net.url}/v1/auth/nonce`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { nonce: string }).nonce;
}

/** A payout body: the message for `accountId` (default the provider's) signed by `signer`, naming `address` (default the signer's). */
async function payoutBody(
  net: PayNet,
  signer: KeyPairSigner,
  options: { address?: string; accountId?: string } = {},
): Promise<{ message: string; signature: string; address: string }> {
  const message = solanaPayoutMessage(net.hub.id, options.accountId ?? net.owner.id, await nonce(net));
  const signature = getBase58Decoder().decode(await signBytes(signer.keyPair.privateKey, new TextEncoder().encode(message)));
  return { message, signature, address: options.address ?? signer.address };
}

const payout = (net: PayNet, body: unknown, key: string | null = net.owner.key) =>
  fetch(`${net.url}/v1/payouts/solana`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });

interface PayoutAnswer {
  object: string;
  account_id: string;
  address: string;
  network: string;
  amount: { units: string };
  transaction: string | null;
}

/** A Solana address of the provider's, with an (empty) token account for the mint. */
async function providerWallet(): Promise<KeyPairSigner> {
  const wallet = await generateKeyPairSigner();
  await sol.setTokenBalance(wallet.address, 0n);
  return wallet;
}

describe("provider payouts on Solana", () => {
  it("pays the provider's payable earnings to its Solana address, once; a voucher does not pay them again; bad proofs and replays are refused", async () => {
    const net = await start();
    const payable = await paySolana(net);
    expect(payable).toBeGreaterThan(0n);
    const wallet = await providerWallet();
    const treasuryBefore = await solTreasury();

    // Signed by another key; a message naming another account; no API key.
    expect(await refusal(await payout(net, await payoutBody(net, sol.stranger, { address: wallet.address })))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    const payer = await walletAccount(net, sol.payer.address);
    expect(await refusal(await payout(net, await payoutBody(net, wallet, { accountId: payer })))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    expect(await refusal(await payout(net, await payoutBody(net, wallet), null))).toEqual({ status: 401, code: "api.unauthorized" });
    expect(await solTreasury()).toBe(treasuryBefore);
    expect(await net.store.payouts.payable(net.owner.id)).toBe(payable);

    const body = await payoutBody(net, wallet);
    const res = await payout(net, body);
    expect(res.status).toBe(200);
    const answer = (await res.json()) as PayoutAnswer;
    expect(answer).toMatchObject({
      object: "srp.solana_payout",
      account_id: net.owner.id,
      address: wallet.address,
      network: DEVNET,
      amount: { units: payable.toString() },
    });
    expect(answer.transaction).toMatch(/^[1-9A-HJ-NP-Za-km-z]{64,88}$/);
    expect((await liteSvmChain(sol.svm).signatureStatus(answer.transaction!))?.err).toBeNull();
    // On-chain: exactly the payable amount moved from the treasury to the provider's token account.
    expect(await solBalance(wallet)).toBe(payable);
    expect(await solTreasury()).toBe(treasuryBefore - payable);
    expect(await net.store.payouts.payable(net.owner.id)).toBe(0n);
    expect(await net.store.verify()).toEqual([]);
    const [row] = await net.store.payouts.list(net.owner.id);
    expect(row).toMatchObject({ payee: wallet.address, amount: payable, fee: 0n, settlement: DEVNET, fundedTx: answer.transaction });

    // The same signed body cannot be replayed; a fresh one has nothing new to pay.
    expect(await refusal(await payout(net, body))).toEqual({ status: 401, code: "auth.replayed_nonce" });
    const again = await payout(net, await payoutBody(net, wallet));
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ amount: { units: "0" }, transaction: null });
    expect(await solBalance(wallet)).toBe(payable);

    // An EVM voucher does not cover the earnings paid on Solana.
    const chain = nets.chain();
    const vouchers = new OnchainPayouts({
      publicClient: chain.publicClient,
      treasury: chain.walletFor(chain.accounts[5]!),
      signer: chain.hubSigner,
      settlement: chain.settlement,
      token: chain.usdc.address,
      chainId: chain.chainId,
      book: net.store.payouts,
      payee: async () => chain.accounts[6]!.address,
    });
    expect(await vouchers.voucher(net.owner.id)).toBeUndefined();
    // New earnings are payable, and only they.
    const consumer = await net.store.createAccount({ name: "consumer" });
    const { key } = await net.store.createApiKey(consumer.id);
    const earned = (await net.store.summary(net.owner.id)).earned;
    const now = await payWithKey(net, key);
    const fresh = (await net.store.summary(net.owner.id)).earned - earned;
    expect(fresh).toBeGreaterThan(0n);
    expect(now).toBe(fresh);
  });

  it("refuses, with nothing moved, a payout larger than the Solana money the hub holds", async () => {
    const net = await start();
    await paySolana(net);
    // What the payer did not spend goes back to it on Solana: it no longer counts as held there.
    const paidIn = await net.store.payouts.solanaHeld(DEVNET);
    const payer = await walletAccount(net, sol.payer.address);
    const left = (await net.store.summary(payer)).balance;
    const message = refundMessage(net.hub.id, payer, await nonce(net));
    const signature = getBase58Decoder().decode(await signBytes(sol.payer.keyPair.privateKey, new TextEncoder().encode(message)));
    const refunded = await fetch(`${net.url}/v1/futures/refund`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message, signature, address: sol.payer.address }),
    });
    expect(refunded.status).toBe(200);
    const held = await net.store.payouts.solanaHeld(DEVNET);
    expect(held).toBe(paidIn - left);
    expect(held).toBeGreaterThan(0n);
    // Earnings paid for without Solana money (a consumer's signup credits) until they exceed it.
    const consumer = await net.store.createAccount({ name: "consumer" });
    const { key } = await net.store.createApiKey(consumer.id);
    let payable = await net.store.payouts.payable(net.owner.id);
    for (let i = 0; i < 40 && payable <= held; i++) payable = await payWithKey(net, key);
    expect(payable).toBeGreaterThan(held);

    const wallet = await providerWallet();
    const treasuryBefore = await solTreasury();
    const body = await payoutBody(net, wallet);
    expect(await refusal(await payout(net, body))).toEqual({ status: 503, code: "payment.unavailable" });
    expect(await solTreasury()).toBe(treasuryBefore);
    expect(await solBalance(wallet)).toBe(0n);
    expect(await net.store.payouts.payable(net.owner.id)).toBe(payable);
    expect(await net.store.payouts.solanaHeld(DEVNET)).toBe(held);
    expect(await net.store.payouts.list(net.owner.id)).toEqual([]);
  });

  it("gives the earnings back when the transfer surely failed, and keeps them out when its outcome is unknown", async () => {
    let sendThrows = false;
    const net = await start({
      chain: (inner) => ({
        ...inner,
        async send(wire) {
          if (sendThrows) throw new Error("the RPC stopped answering");
          return inner.send(wire);
        },
      }),
    });
    const payable = await paySolana(net);
    const wallet = await providerWallet();
    // The treasury's token account cannot cover it: the chain refuses the transfer, and the earnings are payable again.
    const treasuryHeld = await solTreasury();
    await sol.setTokenBalance(sol.treasury.address, 0n);
    expect(await refusal(await payout(net, await payoutBody(net, wallet)))).toEqual({ status: 503, code: "payment.unavailable" });
    await sol.setTokenBalance(sol.treasury.address, treasuryHeld);
    expect(await net.store.payouts.payable(net.owner.id)).toBe(payable);
    expect(await net.store.payouts.list(net.owner.id)).toEqual([]);
    expect(await net.store.verify()).toEqual([]);

    // The transfer may have been sent: pending, the earnings stay out of the books.
    sendThrows = true;
    expect(await refusal(await payout(net, await payoutBody(net, wallet)))).toEqual({ status: 503, code: "payment.settlement_pending" });
    sendThrows = false;
    expect(await net.store.payouts.payable(net.owner.id)).toBe(0n);
    const [row] = await net.store.payouts.list(net.owner.id);
    expect(row?.fundedTx).toMatch(/^pending:/);
    // (Here it was never sent, so the treasury still holds it; on a real cluster the operator reconciles it by its transaction.)
    expect(await net.store.payouts.reverseSolana(row!.id, "operator: payout transfer never sent")).toBe(true);
    expect(await net.store.payouts.payable(net.owner.id)).toBe(payable);
  });
});
