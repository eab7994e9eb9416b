/**
 * x402 on two networks at once (SRP-PAY-003, SRP-PAY-028): a hub offers its EVM network
 * (the in-process ganache chain) and Solana (an in-process LiteSVM, the devnet id) in one
 * 402, and the payer chooses. The paying client is the official `@x402/fetch` with the
 * official `@x402/svm` scheme (its RPC a local stand-in over the VM). The hub verifies,
 * co-signs as fee payer and settles on the VM before serving; one transaction buys one
 * request; the books balance and the treasury's holdings on both chains match what the
 * ledger says came in (support/paynet.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { decodePaymentRequired, decodeSettlementResponse, type PaymentRequired } from "@srp/core/x402";
import { liteSvmChain, svmRail } from "@srp/hub";
import { MODEL, quote, usePayNets, walletAccount, type PayNet } from "./support/paynet.js";
import { DEVNET, solanaWorld, type SolanaWorld } from "./support/solana.js";
import { payerOf } from "../packages/srp-hub/src/gate.js";

const body = { model: MODEL, messages: [{ role: "user", content: "Paid from Solana." }], max_tokens: 16 };
const nets = usePayNets("srp-x402-sol-");
let chain: ReturnType<typeof nets.chain>;
let sol: SolanaWorld;
beforeAll(async () => {
  chain = nets.chain();
  sol = await solanaWorld();
});
afterAll(async () => {
  await sol?.close();
});

/** The Solana treasury's token balance (its associated token account for the mint). */
const solTreasury = async () => sol.tokenBalance(await sol.ata(sol.treasury.address)) ?? 0n;

/** A hub offering the EVM chain and Solana; what the Solana treasury held before counts as outside the books. */
/** `minAmount` null: the rail's default minimum. */
async function start(minAmount: bigint | null = 0n): Promise<PayNet> {
  const before = await solTreasury();
  return nets.start({
    x402: {
      rails: [
        svmRail({
          ...(minAmount !== null ? { minAmount } : {}),
          network: DEVNET,
          mint: sol.mint,
          decimals: 6,
          payTo: sol.treasury.address,
          feePayer: sol.feePayerSecret,
          chain: liteSvmChain(sol.svm),
        }),
      ],
    },
    elsewhere: async () => (await solTreasury()) - before,
  });
}

/** The official client, able to pay on Solana only. */
const solanaFetch = () =>
  wrapFetchWithPaymentFromConfig(fetch, {
    schemes: [{ network: DEVNET, client: new ExactSvmScheme(sol.payer, { rpcUrl: sol.rpcUrl }) }],
    spendControls: { allowedAssets: true, maxAmountPerPayment: false },
  });

const post = (net: PayNet, headers: Record<string, string> = {}) =>
  fetch(`${net.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

describe("x402 on EVM and Solana in one 402", () => {
  it("offers both networks for the same amount, the EVM one first, with Solana's fee payer; discovery lists both", async () => {
    const net = await start();
    const doc: PaymentRequired = await quote(net, "/v1/chat/completions", body);
    expect(doc.accepts.map((a) => a.network)).toEqual([`eip155:${chain.chainId}`, DEVNET]);
    const [evm, svm] = doc.accepts;
    expect(svm).toMatchObject({
      scheme: "exact",
      amount: evm!.amount,
      asset: sol.mint,
      payTo: sol.treasury.address,
      extra: { feePayer: sol.feePayer.address },
    });
    const wellKnown = (await (await fetch(`${net.url}/.well-known/x402`)).json()) as {
      resources: Array<{ accepts: Array<{ network: string }> }>;
    };
    expect(wellKnown.resources[0]!.accepts.map((a) => a.network)).toEqual([`eip155:${chain.chainId}`, DEVNET]);
  });

  it("is paid with Solana USDC by the official client: settled before serving, the amount moves once, the rest is prepaid balance", async () => {
    const net = await start();
    const payerAta = await sol.ata(sol.payer.address);
    const before = sol.tokenBalance(payerAta)!;
    const amount = BigInt((await quote(net, "/v1/chat/completions", body)).accepts[1]!.amount);
    const res = await solanaFetch()(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    const settled = decodeSettlementResponse(res.headers.get("payment-response")!);
    expect(settled).toMatchObject({ success: true, network: DEVNET, payer: sol.payer.address });
    expect(settled.transaction).toMatch(/^[1-9A-HJ-NP-Za-km-z]{64,88}$/);
    expect(sol.tokenBalance(payerAta)).toBe(before - amount);
    const completion = (await res.json()) as { usage: { cost_units: string } };
    const charge = BigInt(completion.usage.cost_units);
    // The payer's account is keyed by its base58 address, exactly as given.
    const account = await walletAccount(net, sol.payer.address);
    expect(await net.store.summary(account)).toMatchObject({ balance: amount - charge, held: 0n, spent: charge, requests: 1 });
  });

  it("lets one Solana transaction buy one request: the same PAYMENT-SIGNATURE again is refused and moves nothing", async () => {
    const net = await start();
    let header: string | undefined;
    const recording: typeof fetch = async (input, init) => {
      const h = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
      header ??= h.get("payment-signature") ?? undefined;
      return fetch(input, init);
    };
    const pay = wrapFetchWithPaymentFromConfig(recording, {
      schemes: [{ network: DEVNET, client: new ExactSvmScheme(sol.payer, { rpcUrl: sol.rpcUrl }) }],
      spendControls: { allowedAssets: true, maxAmountPerPayment: false },
    });
    const first = await pay(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(first.status).toBe(200);
    expect(header).toBeDefined();
    // The failed-payment limit counts a Solana payer by its base58 address, exactly as given.
    expect(await payerOf(header!)).toBe(sol.payer.address);
    const treasuryAfterFirst = await solTreasury();
    const again = await post(net, { "PAYMENT-SIGNATURE": header! });
    expect(again.status).toBe(402);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("payment.replayed");
    expect(decodePaymentRequired(again.headers.get("payment-required")!).accepts).toHaveLength(2);
    expect(await solTreasury()).toBe(treasuryAfterFirst);
  });

  it("offers Solana only from its minimum amount ($0.01 by default): a small request lists the EVM network alone, and a Solana payment for it is refused", async () => {
    const net = await start(null);
    const doc = await quote(net, "/v1/chat/completions", body);
    expect(BigInt(doc.accepts[0]!.amount)).toBeLessThan(10_000n);
    expect(doc.accepts.map((a) => a.network)).toEqual([`eip155:${chain.chainId}`]);
    const wellKnown = (await (await fetch(`${net.url}/.well-known/x402`)).json()) as {
      networks: Array<{ network: string; settlement: string; minAmount: string }>;
    };
    expect(wellKnown.networks).toEqual([
      { network: `eip155:${chain.chainId}`, settlement: "before", minAmount: "0" },
      { network: DEVNET, settlement: "before", minAmount: "10000" },
    ]);
    const offer = svmRail({
      network: DEVNET,
      mint: sol.mint,
      decimals: 6,
      payTo: sol.treasury.address,
      feePayer: sol.feePayerSecret,
      chain: liteSvmChain(sol.svm),
      minAmount: 0n,
    }).offer(BigInt(doc.accepts[0]!.amount));
    const header = Buffer.from(
      JSON.stringify({ x402Version: 2, resource: doc.resource, accepted: offer, payload: { transaction: "AA==" } }),
    ).toString("base64");
    const res = await post(net, { "PAYMENT-SIGNATURE": header });
    expect(res.status).toBe(402);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("payment.wrong_network");
  });

  it("takes only 6-decimal SPL Token mints", () => {
    const base = {
      network: DEVNET,
      mint: sol.mint,
      payTo: sol.treasury.address,
      feePayer: sol.feePayerSecret,
      chain: liteSvmChain(sol.svm),
    };
    expect(() => svmRail({ ...base, decimals: 9 })).toThrow(/6-decimal/);
    expect(() => svmRail({ ...base, decimals: 6, tokenProgram: "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb" })).toThrow(
      /SPL Token mints only/,
    );
  });

  it("refuses a payment on a network the hub does not offer with payment.wrong_network, naming both it does", async () => {
    const net = await start();
    const doc = await quote(net, "/v1/chat/completions", body);
    const elsewhere = { ...doc.accepts[1]!, network: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp" };
    const header = Buffer.from(
      JSON.stringify({ x402Version: 2, resource: doc.resource, accepted: elsewhere, payload: { transaction: "AA==" } }),
    ).toString("base64");
    const res = await post(net, { "PAYMENT-SIGNATURE": header });
    expect(res.status).toBe(402);
    const error = ((await res.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe("payment.wrong_network");
    expect(error.message).toContain(DEVNET);
    expect(error.message).toContain(`eip155:${chain.chainId}`);
  });
});
