/**
 * Refunds to Solana payers, on Solana (SRP-PAY-033): a payer pays for a request with Solana
 * USDC through the official `@x402/fetch` + `@x402/svm` client (an in-process LiteSVM, the
 * devnet id), then asks `POST /v1/futures/refund` for the rest with the refund message signed
 * by its Ed25519 key. The remainder leaves the books and is transferred from the treasury's
 * token account to the payer's, signed by the treasury owner's key with the hub's fee payer
 * paying the fee. After every test the books verify and the treasuries on both chains hold
 * what the ledger says came in (support/paynet.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { getBase58Decoder, signBytes, type KeyPairSigner } from "@solana/kit";
import { refundMessage } from "@srp/core";
import { liteSvmChain, rpcSvmChain, svmRail, type SvmChain } from "@srp/hub";
import { MODEL, refusal, usePayNets, walletAccount, type PayNet } from "./support/paynet.js";
import { DEVNET, solanaWorld, type SolanaWorld } from "./support/solana.js";

const chat = { model: MODEL, messages: [{ role: "user", content: "Paid from Solana, refunded there." }], max_tokens: 16 };
const nets = usePayNets("srp-sol-refund-");
let sol: SolanaWorld;
beforeAll(async () => {
  nets.chain();
  sol = await solanaWorld();
});
afterAll(async () => {
  await sol?.close();
});

const solTreasury = async () => sol.tokenBalance(await sol.ata(sol.treasury.address)) ?? 0n;
const solPayer = async () => sol.tokenBalance(await sol.ata(sol.payer.address)) ?? 0n;

/** A hub offering Solana beside the EVM chain; with the treasury owner's key unless `treasurySigner` is false. */
async function start(options: { treasurySigner?: boolean; chain?: (inner: SvmChain) => SvmChain } = {}): Promise<PayNet> {
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
          ...(options.treasurySigner === false ? {} : { treasurySigner: sol.treasury }),
          chain: options.chain ? options.chain(chain) : chain,
          confirmTimeoutMs: 2_000,
          pollIntervalMs: 20,
        }),
      ],
    },
    elsewhere: async () => (await solTreasury()) - before,
  });
}

/** Pays one chat request from Solana with the official client; the payer's account and what is left in it. */
async function payOnce(net: PayNet): Promise<{ accountId: string; left: bigint }> {
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
  const accountId = await walletAccount(net, sol.payer.address);
  const left = (await net.store.summary(accountId)).balance;
  expect(left).toBeGreaterThan(0n);
  return { accountId, left };
}

async function nonce(net: PayNet): Promise<string> {
  const res = await fetch(`${net.url}/v1/auth/nonce`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { nonce: string }).nonce;
}

/** A Solana refund body: the message signed by `signer` (default the payer), naming `address` (default the signer's). */
async function refundBody(
  net: PayNet,
  accountId: string,
  options: { signer?: KeyPairSigner; address?: string; nonce?: string } = {},
): Promise<{ message: string; signature: string; address: string }> {
  const signer = options.signer ?? sol.payer;
  const message = refundMessage(net.hub.id, accountId, options.nonce ?? (await nonce(net)));
  const signature = getBase58Decoder().decode(await signBytes(signer.keyPair.privateKey, new TextEncoder().encode(message)));
  return { message, signature, address: options.address ?? signer.address };
}

const refund = (net: PayNet, body: unknown) =>
  fetch(`${net.url}/v1/futures/refund`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

interface RefundAnswer {
  object: string;
  account_id: string;
  address: string;
  amount: { units: string };
  transaction: string | null;
}

describe("refunds to Solana payers, on Solana", () => {
  it("pays a Solana payer's remainder back to its token account; a replay, another key's signature and an empty refund are refused or pay nothing", async () => {
    const net = await start();
    const { accountId, left } = await payOnce(net);
    const payerBefore = await solPayer();
    const treasuryBefore = await solTreasury();

    // Signed by another key (naming the payer, or itself), or for an account that is not the signer's.
    expect(
      await refusal(await refund(net, await refundBody(net, accountId, { signer: sol.stranger, address: sol.payer.address }))),
    ).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    expect(await refusal(await refund(net, await refundBody(net, accountId, { signer: sol.stranger })))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    expect(await refusal(await refund(net, await refundBody(net, net.owner.id)))).toEqual({ status: 403, code: "auth.bad_account_proof" });
    // A nonce the hub never issued; a malformed body.
    expect(await refusal(await refund(net, await refundBody(net, accountId, { nonce: "NeverIssuedByThisHub123" })))).toEqual({
      status: 401,
      code: "auth.replayed_nonce",
    });
    const good = await refundBody(net, accountId);
    expect(await refusal(await refund(net, { message: good.message, signature: good.signature }))).toEqual({
      status: 400,
      code: "api.invalid_body",
    });
    expect(await refusal(await refund(net, { ...good, network: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp" }))).toEqual({
      status: 400,
      code: "api.invalid_body",
    });
    expect(await solTreasury()).toBe(treasuryBefore);

    const res = await refund(net, { ...good, network: DEVNET });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as RefundAnswer;
    expect(answer).toMatchObject({
      object: "srp.refund",
      account_id: accountId,
      address: sol.payer.address,
      amount: { units: left.toString() },
    });
    expect(answer.transaction).toMatch(/^[1-9A-HJ-NP-Za-km-z]{64,88}$/);
    expect((await liteSvmChain(sol.svm).signatureStatus(answer.transaction!))?.err).toBeNull();
    // On-chain the payer has exactly the remainder back; in the books the account is empty.
    expect(await solPayer()).toBe(payerBefore + left);
    expect(await solTreasury()).toBe(treasuryBefore - left);
    expect(await net.store.summary(accountId)).toMatchObject({ balance: 0n, prepaid: 0n, refunded: left });
    expect(await net.store.verify()).toEqual([]);

    // The signed refund cannot be replayed; a fresh one has nothing left to refund.
    expect(await refusal(await refund(net, good))).toEqual({ status: 401, code: "auth.replayed_nonce" });
    const empty = await refund(net, await refundBody(net, accountId));
    expect(empty.status).toBe(200);
    expect(await empty.json()).toMatchObject({ amount: { units: "0" }, transaction: null });
    expect(await solPayer()).toBe(payerBefore + left);
  });

  it("refuses, before anything moves, a payer without a token account, and keeps the nonce for the retry", async () => {
    const net = await start();
    const { accountId, left } = await payOnce(net);
    const payerAta = await sol.ata(sol.payer.address);
    const held = await solPayer();
    sol.svm.setAccount({
      address: payerAta,
      data: new Uint8Array(),
      executable: false,
      lamports: 0n,
      programAddress: "11111111111111111111111111111111",
    } as never);
    expect(sol.tokenBalance(payerAta)).toBeNull();
    const body = await refundBody(net, accountId);
    const res = await refund(net, body);
    expect(res.status).toBe(400);
    const error = ((await res.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe("api.invalid_body");
    expect(error.message).toContain("no token account");
    expect((await net.store.summary(accountId)).balance).toBe(left);
    // Once the token account exists, the same signed refund pays.
    await sol.setTokenBalance(sol.payer.address, held);
    const paid = await refund(net, body);
    expect(paid.status).toBe(200);
    expect(await solPayer()).toBe(held + left);
  });

  it("credits the refund back when the transfer surely failed, and never when its outcome is unknown", async () => {
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
    const { accountId, left } = await payOnce(net);
    // The treasury's token account cannot cover it: the chain refuses the transfer, and the amount is back in the books.
    const treasuryHeld = await solTreasury();
    await sol.setTokenBalance(sol.treasury.address, 0n);
    expect(await refusal(await refund(net, await refundBody(net, accountId)))).toEqual({ status: 503, code: "payment.unavailable" });
    await sol.setTokenBalance(sol.treasury.address, treasuryHeld);
    expect(await net.store.summary(accountId)).toMatchObject({ balance: left, prepaid: left });
    expect(await net.store.verify()).toEqual([]);

    // The transfer may have been sent (the RPC stopped answering): pending, not credited back.
    sendThrows = true;
    const res = await refund(net, await refundBody(net, accountId));
    expect(await refusal(res)).toEqual({ status: 503, code: "payment.settlement_pending" });
    sendThrows = false;
    expect((await net.store.summary(accountId)).prepaid).toBe(0n);
    // (Here it was never sent, so the treasury still holds it; on a real cluster the operator reconciles it by its transaction.)
    await net.store.deposit(accountId, left, "operator: refund transfer never sent");
  });

  it("refuses a second refund to one address within the interval while money is left (each costs the fee payer a fee)", async () => {
    const net = await start();
    const { accountId } = await payOnce(net);
    const first = await refund(net, await refundBody(net, accountId));
    expect(first.status).toBe(200);
    // Paid again, then refunded again at once: 429 with Retry-After, nothing moved, the nonce kept.
    const { left } = await payOnce(net);
    const body = await refundBody(net, accountId);
    const again = await refund(net, body);
    expect(again.status).toBe(429);
    expect(Number(again.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("api.rate_limited");
    expect((await net.store.summary(accountId)).balance).toBe(left);
  });

  it("pays the refund through the JSON-RPC adapter (rpcSvmChain) too", async () => {
    const net = await start({ chain: () => rpcSvmChain({ url: sol.rpcUrl }) });
    const { accountId, left } = await payOnce(net);
    const payerBefore = await solPayer();
    const res = await refund(net, await refundBody(net, accountId));
    expect(res.status).toBe(200);
    const answer = (await res.json()) as RefundAnswer;
    expect(answer.amount.units).toBe(left.toString());
    expect((await rpcSvmChain({ url: sol.rpcUrl }).signatureStatus(answer.transaction!))?.err).toBeNull();
    expect(await solPayer()).toBe(payerBefore + left);
    expect((await net.store.summary(accountId)).balance).toBe(0n);
  });

  it("answers 503 payment.unavailable for a Solana refund when the hub has no Solana treasury key; EVM refunds are untouched", async () => {
    const net = await start({ treasurySigner: false });
    const { accountId, left } = await payOnce(net);
    expect(await refusal(await refund(net, await refundBody(net, accountId)))).toEqual({ status: 503, code: "payment.unavailable" });
    expect((await net.store.summary(accountId)).balance).toBe(left);
    // A 0x signature still takes the EVM path (here: signed by no wallet of the account).
    const message = refundMessage(net.hub.id, accountId, await nonce(net));
    expect(await refusal(await refund(net, { message, signature: `0x${"11".repeat(65)}` }))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
  });
});
