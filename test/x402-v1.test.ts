/**
 * x402 version 1 beside version 2 (SRP-PAY-027): older clients read the 402's JSON body
 * (`x402Version: 1`, `accepts` with `maxAmountRequired` and a named network), pay with an
 * `X-PAYMENT` header and read `X-PAYMENT-RESPONSE`. The chain here has id 84532, which
 * version 1 names `base-sepolia`. The paying client is the official `@x402/fetch` with its
 * version-1 scheme (`ExactEvmSchemeV1` of `@x402/evm`), given a fetch that hides the
 * version-2 `PAYMENT-REQUIRED` header as a client that only knows version 1 never reads
 * it: the client then takes its version-1 path end to end. The books balance and the
 * treasury's on-chain balance matches them after every test (support/paynet.ts).
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { PrivateKeyAccount } from "viem";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/client";
import {
  decodePaymentRequired,
  decodeSettlementResponse,
  encodeX402Header,
  paymentRequiredV1Of,
  type PaymentRequirementsV1,
} from "@srp/core/x402";
import { authorizationNonce, signTransferAuthorization } from "@srp/core/chain";
import { MODEL, quote, usePayNets, walletAccount, type PayNet } from "./support/paynet.js";

/** The chain id version 1 calls `base-sepolia`. */
const BASE_SEPOLIA = 84532;
/** Its version-1 name, as the client registers it (the client's type knows only CAIP-2 ids). */
const V1_NETWORK = "base-sepolia" as `${string}:${string}`;
const body = { model: MODEL, messages: [{ role: "user", content: "Pay per call, the old way." }], max_tokens: 16 };
const nets = usePayNets("srp-x402-v1-", { chainId: BASE_SEPOLIA });
let chain: ReturnType<typeof nets.chain>;
beforeAll(() => {
  chain = nets.chain();
});

/** A fetch as a version-1-only client sees the hub: the version-2 header of a 402 is not there. */
const v1Only: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  if (res.status !== 402) return res;
  const headers = new Headers(res.headers);
  headers.delete("payment-required");
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
};

/** The official client, paying with its version-1 scheme on `base-sepolia`. */
function officialV1(payer: PrivateKeyAccount): typeof fetch {
  return wrapFetchWithPaymentFromConfig(v1Only, {
    schemes: [{ network: V1_NETWORK, client: new ExactEvmSchemeV1(payer), x402Version: 1 }],
    spendControls: { allowedAssets: true, maxAmountPerPayment: false },
  });
}

const post = (net: PayNet, headers: Record<string, string> = {}, path = "/v1/chat/completions", b: unknown = body) =>
  fetch(`${net.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(b) });

/** The version-1 offer of a request: the 402's body. */
async function quoteV1(net: PayNet, path = "/v1/chat/completions", b: unknown = body): Promise<PaymentRequirementsV1> {
  const res = await post(net, {}, path, b);
  expect(res.status).toBe(402);
  const doc = paymentRequiredV1Of(await res.json());
  expect(doc.accepts).toHaveLength(1);
  return doc.accepts[0]!;
}

/** An `X-PAYMENT` header built by hand for a version-1 offer (`network` overrides the one offered). */
async function xPayment(payer: PrivateKeyAccount, offer: PaymentRequirementsV1, network = offer.network): Promise<string> {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const authorization = {
    from: payer.address,
    to: offer.payTo as `0x${string}`,
    value: BigInt(offer.maxAmountRequired),
    validAfter: 0n,
    validBefore: now + BigInt(offer.maxTimeoutSeconds),
    nonce: authorizationNonce(),
  };
  const token = { name: chain.usdc.name, version: chain.usdc.version, chainId: chain.chainId, address: chain.usdc.address };
  const signature = await signTransferAuthorization(payer, token, authorization);
  return encodeX402Header({
    x402Version: 1,
    scheme: "exact",
    network,
    payload: {
      signature,
      authorization: {
        ...authorization,
        value: String(authorization.value),
        validAfter: "0",
        validBefore: String(authorization.validBefore),
      },
    },
  });
}

describe("x402 version 1 beside version 2", () => {
  it("offers both versions in one 402: the PAYMENT-REQUIRED header (version 2) and the JSON body (version 1), for the same amount", async () => {
    const net = await nets.start();
    const res = await post(net);
    expect(res.status).toBe(402);
    const v2 = decodePaymentRequired(res.headers.get("payment-required")!);
    const json = (await res.json()) as { error: { code: string } };
    expect(json.error.code).toBe("payment.required");
    const v1 = paymentRequiredV1Of(json);
    expect(v1.accepts).toEqual([
      {
        scheme: "exact",
        network: "base-sepolia",
        maxAmountRequired: v2.accepts[0]!.amount,
        resource: `${net.url}/v1/chat/completions`,
        description: expect.any(String),
        mimeType: "application/json",
        outputSchema: { input: expect.objectContaining({ type: "http", method: "POST", discoverable: true }), output: { type: "json" } },
        payTo: net.treasury,
        maxTimeoutSeconds: 300,
        asset: chain.usdc.address,
        extra: { name: "USD Coin", version: "2" },
      },
    ]);
    expect(res.headers.get("access-control-expose-headers")).toContain("X-PAYMENT-RESPONSE");
  });

  it("publishes discovery under both names, /.well-known/x402 and /.well-known/x402.json: every paid resource with its bazaar extension, and both versions", async () => {
    const net = await nets.start();
    type Doc = {
      x402Versions: number[];
      resources: Array<{
        resource: string;
        method: string;
        accepts: Array<Record<string, unknown>>;
        extensions: { bazaar: { info: unknown } };
      }>;
    };
    const plain = (await (await fetch(`${net.url}/.well-known/x402`)).json()) as Doc;
    const named = await fetch(`${net.url}/.well-known/x402.json`);
    expect(named.status).toBe(200);
    expect(named.headers.get("content-type")).toContain("application/json");
    expect(await named.json()).toEqual(plain);
    expect(plain.x402Versions).toEqual([2, 1]);
    const paths = plain.resources.map((r) => new URL(r.resource).pathname);
    expect(paths).toEqual([
      "/v1/chat/completions",
      "/v1/completions",
      "/v1/messages",
      "/v1/responses",
      "/v1/embeddings",
      "/v1/images/generations",
      "/v1/audio/speech",
      "/v1/audio/transcriptions",
      "/v1/batch",
      "/v1/videos",
      "/v1/runs",
      "/v1/futures/deposit",
    ]);
    for (const r of plain.resources) {
      expect(r.method).toBe("POST");
      expect(r.extensions.bazaar.info).toBeDefined();
      expect(r.accepts[0]).toMatchObject({ scheme: "exact", network: `eip155:${BASE_SEPOLIA}`, payTo: net.treasury });
    }
    // Each resource answers an unpaid request with a 402 (the bazaar extension rides on every one).
    const messages = await post(net, {}, "/v1/messages", { ...body, max_tokens: 16 });
    expect(messages.status).toBe(402);
    expect(decodePaymentRequired(messages.headers.get("payment-required")!).extensions?.bazaar).toBeDefined();
  });

  it("is paid by the official client's version-1 path (X-PAYMENT), answered with X-PAYMENT-RESPONSE; the money moves exactly once", async () => {
    const net = await nets.start();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const offer = await quoteV1(net);
    const res = await officialV1(payer)(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("payment-response")).toBeNull();
    const settled = decodeSettlementResponse(res.headers.get("x-payment-response")!);
    expect(settled).toMatchObject({ success: true, network: "base-sepolia", payer: payer.address.toLowerCase() });
    const tx = await chain.publicClient.getTransactionReceipt({ hash: settled.transaction as `0x${string}` });
    expect(tx.status).toBe("success");
    const completion = (await res.json()) as { usage: { cost_units: string } };
    const amount = BigInt(offer.maxAmountRequired);
    const charge = BigInt(completion.usage.cost_units);
    expect(await chain.usdcBalance(payer.address)).toBe(before - amount);
    expect(await chain.usdcBalance(net.treasury)).toBe(amount);
    expect(await net.store.summary(await walletAccount(net, payer.address))).toMatchObject({
      balance: amount - charge,
      held: 0n,
      spent: charge,
      requests: 1,
    });
  });

  it("lets one authorization buy one request whatever the version: an X-PAYMENT sent again is refused, and nothing moves twice", async () => {
    const net = await nets.start();
    const payer = chain.accounts[4]!;
    const header = await xPayment(payer, await quoteV1(net));
    const first = await post(net, { "X-PAYMENT": header });
    expect(first.status).toBe(200);
    expect(decodeSettlementResponse(first.headers.get("x-payment-response")!).success).toBe(true);
    const again = await post(net, { "X-PAYMENT": header });
    expect(again.status).toBe(402);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("payment.replayed");
    // The refusal carries a fresh offer in both versions.
    expect(again.headers.get("payment-required")).not.toBeNull();
  });

  it("refuses a version-1 payment on another network (payment.wrong_network), and a garbled X-PAYMENT (400 payment.invalid), moving nothing", async () => {
    const net = await nets.start();
    const payer = chain.accounts[4]!;
    const before = await chain.usdcBalance(payer.address);
    const offer = await quoteV1(net);
    const wrong = await post(net, { "X-PAYMENT": await xPayment(payer, offer, "base") });
    expect(wrong.status).toBe(402);
    const wrongBody = (await wrong.json()) as { error: { code: string; message: string } };
    expect(wrongBody.error.code).toBe("payment.wrong_network");
    expect(wrongBody.error.message).toContain("base-sepolia");
    const garbled = await post(net, { "X-PAYMENT": "not-base64!" });
    expect(garbled.status).toBe(400);
    expect(((await garbled.json()) as { error: { code: string } }).error.code).toBe("payment.invalid");
    expect(await chain.usdcBalance(payer.address)).toBe(before);
  });

  it("takes a version-1 deposit: settled before it is answered, credited once to the paying wallet's account", async () => {
    const net = await nets.start();
    const payer = chain.accounts[3]!;
    const res = await officialV1(payer)(`${net.url}/v1/futures/deposit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ amount: "2000000" }),
    });
    expect(res.status).toBe(200);
    expect(decodeSettlementResponse(res.headers.get("x-payment-response")!)).toMatchObject({ success: true, network: "base-sepolia" });
    expect(await chain.usdcBalance(net.treasury)).toBe(2_000_000n);
    expect((await net.store.summary(await walletAccount(net, payer.address))).balance).toBe(2_000_000n);
  });

  it("still serves version-2 clients first: the official client with both versions registered pays with PAYMENT-SIGNATURE", async () => {
    const net = await nets.start();
    const payer = chain.accounts[3]!;
    const both = wrapFetchWithPaymentFromConfig(fetch, {
      schemes: [
        { network: "eip155:*", client: new ExactEvmScheme(payer) },
        { network: V1_NETWORK, client: new ExactEvmSchemeV1(payer), x402Version: 1 },
      ],
      spendControls: { allowedAssets: true, maxAmountPerPayment: false },
    });
    const res = await both(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-payment-response")).toBeNull();
    expect(decodeSettlementResponse(res.headers.get("payment-response")!)).toMatchObject({
      success: true,
      network: `eip155:${BASE_SEPOLIA}`,
    });
    expect((await quote(net, "/v1/chat/completions", body)).accepts[0]!.network).toBe(`eip155:${BASE_SEPOLIA}`);
  });
});
