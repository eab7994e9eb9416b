/**
 * `@srp/client` paying with x402 from a viem account, end to end on a real EVM: an
 * in-process ganache chain with TestUSDC (EIP-3009), a hub on a SQLite ledger that settles
 * with `transferWithAuthorization` (and pays refunds from its treasury wallet), and one
 * provider on the model simulator. The client pays chat completions whole and streamed,
 * keeps to its limits, retries a pending settlement with the same payment, deposits,
 * signs in, reads its balance and has its prepaid balance refunded. The books balance
 * after every test, and the treasury's on-chain balance equals what the ledger says came in.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { PrivateKeyAccount } from "viem";
import { X402_HEADERS, type PaymentRequired } from "@srp/core/x402";
import { createClient, SrpApiError, type X402Account, type X402PaymentInfo } from "@srp/client";
import type { HubX402Options } from "@srp/hub";
import { MODEL, quote as quoteAt, usePayNets, walletAccount, type PayNet as Net } from "./support/paynet.js";

const body = { model: MODEL, messages: [{ role: "user" as const, content: "Pay per call, please." }], max_tokens: 16 };
const nets = usePayNets("srp-client-x402-");
let chain: ReturnType<typeof nets.chain>;
beforeAll(() => {
  chain = nets.chain();
});

interface PayNet extends Net {
  /** Settlements still to answer "unknown" although they went through (a time-out on the way back). */
  pending: { settlements: number };
}

async function startPayNet(x402: Partial<HubX402Options> = {}): Promise<PayNet> {
  const pending = { settlements: 0 };
  const net = await nets.start({
    x402,
    settler: (inner) => ({
      ...inner,
      async settle(input) {
        const result = await inner.settle(input);
        if (pending.settlements > 0 && result.outcome === "settled") {
          pending.settlements--;
          return { outcome: "unknown", reason: "simulated time-out" };
        }
        return result;
      },
    }),
  });
  return Object.assign(net, { pending });
}

/** The 402 of a request sent without payment: its `PAYMENT-REQUIRED` document (nothing is locked or signed). */
const quote = (net: PayNet, b: Record<string, unknown> = body): Promise<PaymentRequired> => quoteAt(net, "/v1/chat/completions", b);

/** A viem account whose typed-data signatures are counted. */
function counted(account: PrivateKeyAccount): { account: X402Account; signed: () => number } {
  let n = 0;
  return {
    account: {
      address: account.address,
      signMessage: (args) => account.signMessage(args),
      signTypedData: ((args: Parameters<PrivateKeyAccount["signTypedData"]>[0]) => {
        n++;
        return account.signTypedData(args);
      }) as X402Account["signTypedData"],
    },
    signed: () => n,
  };
}

/** A `fetch` that records every request's method, path and `PAYMENT-SIGNATURE`, and every answer's status. */
function recording(): { fetch: typeof fetch; calls: Array<{ method: string; path: string; payment: string | null; status?: number }> } {
  const calls: Array<{ method: string; path: string; payment: string | null; status?: number }> = [];
  const recorder: typeof fetch = async (input, init) => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    const headers = new Headers(init?.headers);
    const call: (typeof calls)[number] = {
      method: init?.method ?? "GET",
      path: url.pathname,
      payment: headers.get(X402_HEADERS.signature),
    };
    calls.push(call);
    const res = await fetch(input, init);
    call.status = res.status;
    return res;
  };
  return { fetch: recorder, calls };
}

describe("@srp/client pays x402 with a viem account", () => {
  it("pays a chat completion: the quoted amount moves on-chain, the usage is billed, the receipt verifies", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const quoted = BigInt((await quote(net)).accepts[0]!.amount);
    const payments: X402PaymentInfo[] = [];
    const client = createClient({
      hub: net.url,
      x402: { account: payer, assets: [chain.usdc.address], onPayment: (p) => payments.push(p) },
    });

    const completion = await client.chat.create(body);
    expect(completion.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(BigInt(completion.usage.cost_units)).toBeGreaterThan(0n);
    expect(completion.receiptId).toBe(completion.usage.receipt_id);
    // The payment: exactly what was quoted, settled on-chain by the payer.
    expect(completion.payment?.requirements).toMatchObject({
      scheme: "exact",
      network: `eip155:${chain.chainId}`,
      amount: quoted.toString(),
      asset: chain.usdc.address,
      payTo: net.treasury,
    });
    expect(completion.payment?.response).toMatchObject({
      success: true,
      network: `eip155:${chain.chainId}`,
      payer: payer.address.toLowerCase(),
    });
    const tx = await chain.publicClient.getTransactionReceipt({ hash: completion.payment!.response!.transaction as `0x${string}` });
    expect(tx.status).toBe("success");
    expect(payments).toEqual([completion.payment]);
    expect(await chain.usdcBalance(payer.address)).toBe(before - quoted);
    expect(await chain.usdcBalance(net.treasury)).toBe(quoted);
    // The books: the wallet's account was credited the payment and charged the receipt's cost.
    const charge = BigInt(completion.usage.cost_units);
    expect(await net.store.summary(await walletAccount(net, payer.address))).toMatchObject({
      balance: quoted - charge,
      spent: charge,
      requests: 1,
    });

    // The receipt verifies against the hub key (the client signs the wallet in to read it).
    const { receipt, check } = await client.receipt(completion.usage.receipt_id!);
    expect(check).toEqual({ valid: true, problems: [] });
    expect(receipt.hubId).toBe(net.hub.id);
    expect(receipt.cost).toBe(completion.usage.cost_units);
  });

  it("pays a streamed completion and tells the payment on the stream", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const quoted = BigInt((await quote(net, { ...body, stream: true })).accepts[0]!.amount);
    const client = createClient({ hub: net.url, x402: { account: payer, assets: [chain.usdc.address] } });

    const stream = client.chat.stream(body);
    expect(stream.payment).toBeUndefined();
    let text = "";
    let cost: string | undefined;
    for await (const chunk of stream) {
      // Known before the first chunk.
      expect(stream.payment?.response?.success).toBe(true);
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) cost = chunk.usage.cost_units;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(BigInt(cost!)).toBeGreaterThan(0n);
    expect(stream.payment?.requirements.amount).toBe(quoted.toString());
    expect(await chain.usdcBalance(payer.address)).toBe(before - quoted);
    expect(await chain.usdcBalance(net.treasury)).toBe(quoted);
  });

  it("refuses to pay more than maxAmount: nothing is signed and nothing moves", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const quoted = BigInt((await quote(net)).accepts[0]!.amount);
    const { account, signed } = counted(payer);
    const client = createClient({ hub: net.url, x402: { account, assets: [chain.usdc.address], maxAmount: quoted - 1n } });

    const refused = client.chat.create(body);
    await expect(refused).rejects.toBeInstanceOf(SrpApiError);
    await expect(refused).rejects.toMatchObject({
      status: 402,
      code: "payment.required",
      message: expect.stringContaining(`maxAmount ${quoted - 1n}`),
    });
    // A stream is refused the same way.
    const stream = (async () => {
      for await (const _ of client.chat.stream(body)) void _;
    })();
    await expect(stream).rejects.toMatchObject({ code: "payment.required" });
    expect(signed()).toBe(0);
    expect(await chain.usdcBalance(payer.address)).toBe(before);
    expect(await chain.usdcBalance(net.treasury)).toBe(0n);
    expect(await net.store.findByWallet(payer.address)).toBeUndefined();

    // At exactly the quote it pays.
    const exact = createClient({ hub: net.url, x402: { account: payer, assets: [chain.usdc.address], maxAmount: quoted } });
    expect((await exact.chat.create(body)).payment?.response?.success).toBe(true);
  });

  it("refuses an asset not among its assets, and a network not among its networks", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const { account, signed } = counted(payer);
    const otherToken = chain.settlement; // any other contract: not the token the client trusts
    const wrongAsset = createClient({ hub: net.url, x402: { account, assets: [otherToken] } });
    await expect(wrongAsset.chat.create(body)).rejects.toMatchObject({
      status: 402,
      code: "payment.required",
      message: expect.stringContaining(`asset ${chain.usdc.address} is not among the allowed assets`),
    });
    const wrongNetwork = createClient({ hub: net.url, x402: { account, networks: ["eip155:8453"] } });
    await expect(wrongNetwork.chat.create(body)).rejects.toMatchObject({
      code: "payment.required",
      message: expect.stringContaining(`network eip155:${chain.chainId} is not among the allowed networks`),
    });
    expect(signed()).toBe(0);
    expect(await chain.usdcBalance(payer.address)).toBe(before);
    expect(await chain.usdcBalance(net.treasury)).toBe(0n);
  });

  it("retries a pending settlement with the same PAYMENT-SIGNATURE and is charged once", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const quoted = BigInt((await quote(net)).accepts[0]!.amount);
    const { account, signed } = counted(payer);
    const { fetch: recorder, calls } = recording();
    const client = createClient({ hub: net.url, fetch: recorder, x402: { account, assets: [chain.usdc.address] } });
    // The first settlement goes through on-chain, but the hub does not learn it in time.
    net.pending.settlements = 1;

    const completion = await client.chat.create(body);
    expect(completion.payment?.response?.success).toBe(true);
    const paid = calls.filter((c) => c.path === "/v1/chat/completions");
    expect(paid.map((c) => c.status)).toEqual([402, 503, 200]);
    expect(paid[0]!.payment).toBeNull();
    expect(paid[1]!.payment).not.toBeNull();
    expect(paid[2]!.payment).toBe(paid[1]!.payment);
    expect(signed()).toBe(1);
    expect(net.pending.settlements).toBe(0);
    // Charged once.
    expect(await chain.usdcBalance(payer.address)).toBe(before - quoted);
    expect(await chain.usdcBalance(net.treasury)).toBe(quoted);
    const charge = BigInt(completion.usage.cost_units);
    expect(await net.store.summary(await walletAccount(net, payer.address))).toMatchObject({ balance: quoted - charge, requests: 1 });
  });

  it("has no wallet helpers without a wallet", async () => {
    const client = createClient({ hub: "http://127.0.0.1:9" });
    await expect(client.x402.deposit(1n)).rejects.toBeInstanceOf(TypeError);
    await expect(client.x402.signIn()).rejects.toBeInstanceOf(TypeError);
    await expect(client.x402.refund()).rejects.toBeInstanceOf(TypeError);
  });
});

describe("@srp/client wallet accounts: deposit, sign-in, balance, refund", () => {
  it("deposits, signs in, spends the prepaid balance with the key, and has the rest refunded on-chain", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[4]!;
    const before = await chain.usdcBalance(payer.address);
    const deposit = 5_000_000n; // above the default maxAmount: a deposit pays exactly what it asks
    const payments: X402PaymentInfo[] = [];
    const client = createClient({
      hub: net.url,
      x402: { account: payer, assets: [chain.usdc.address], onPayment: (p) => payments.push(p) },
    });

    const made = await client.x402.deposit(deposit);
    expect(made).toMatchObject({
      object: "srp.deposit",
      address: payer.address.toLowerCase(),
      amount: { units: "5000000" },
      prepaid: { units: "5000000" },
    });
    expect(made.payment?.requirements.amount).toBe("5000000");
    expect(made.payment?.response?.success).toBe(true);
    expect(made.transaction).toBe(made.payment!.response!.transaction);
    expect(payments).toHaveLength(1);
    expect(await chain.usdcBalance(payer.address)).toBe(before - deposit);
    expect(await chain.usdcBalance(net.treasury)).toBe(deposit);

    const session = await client.x402.signIn();
    expect(session).toMatchObject({ object: "srp.wallet_session", account_id: made.account_id, address: payer.address.toLowerCase() });
    expect(session.api_key.length).toBeGreaterThan(0);
    expect(await walletAccount(net, payer.address)).toBe(session.account_id);

    const balance = await client.balance();
    expect(balance).toMatchObject({
      object: "srp.account",
      id: session.account_id,
      balance: { units: "5000000" },
      prepaid: { units: "5000000" },
    });

    // With the key, a request is billed to the prepaid balance: no payment, nothing moves on-chain.
    const completion = await client.chat.create(body);
    expect(completion.payment).toBeUndefined();
    const charge = BigInt(completion.usage.cost_units);
    expect(charge).toBeGreaterThan(0n);
    expect((await client.receipt(completion.usage.receipt_id!)).check.valid).toBe(true);
    expect(await chain.usdcBalance(payer.address)).toBe(before - deposit);
    expect((await client.balance()).prepaid.units).toBe((deposit - charge).toString());

    // The refund: the unused prepaid balance back to the wallet, on-chain.
    const refund = await client.x402.refund();
    expect(refund).toMatchObject({
      object: "srp.refund",
      account_id: session.account_id,
      address: payer.address.toLowerCase(),
      amount: { units: (deposit - charge).toString() },
    });
    expect(refund.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await chain.usdcBalance(payer.address)).toBe(before - charge);
    expect(await chain.usdcBalance(net.treasury)).toBe(charge);
    const after = await client.balance();
    expect(after.prepaid.units).toBe("0");
    expect(after.refunded.units).toBe((deposit - charge).toString());
    expect(payments).toHaveLength(1);
  });

  it("pays with the wallet when the signed-in account cannot cover a request", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const client = createClient({ hub: net.url, x402: { account: payer, assets: [chain.usdc.address] } });
    const session = await client.x402.signIn();
    expect((await client.balance()).balance.units).toBe("0");

    const completion = await client.chat.create(body);
    const quoted = BigInt(completion.payment!.requirements.amount);
    expect(completion.payment?.response?.success).toBe(true);
    expect(await chain.usdcBalance(payer.address)).toBe(before - quoted);
    // The payment credited the same account the key is of.
    expect((await client.balance()).balance.units).toBe((quoted - BigInt(completion.usage.cost_units)).toString());
    expect(await walletAccount(net, payer.address)).toBe(session.account_id);
  });
});
