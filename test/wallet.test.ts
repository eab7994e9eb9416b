/**
 * Wallets end to end on a real EVM (in-process ganache with TestUSDC) and a real hub on a
 * SQLite ledger: Sign-In with Ethereum (EIP-4361) gives the wallet's account an API key,
 * the same account its x402 payments credit and a wallet-bound node earns for; nodes bind
 * payout wallets; `POST /v1/futures/deposit` turns an x402 payment into prepaid balance
 * (with the prepaid discount), and `POST /v1/futures/refund` pays it back on-chain from
 * the treasury. After every test the books balance and the treasury's on-chain USDC equals
 * what the ledger says came in from outside.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { request as httpRequest } from "node:http";
import type { PrivateKeyAccount } from "viem";
import { createSiweMessage } from "viem/siwe";
import { generateIdentity, nodeBindingText, payoutWalletMessage, refundMessage } from "@srp/core";
import { decodePaymentRequired, decodeSettlementResponse, type PaymentRequired } from "@srp/core/x402";
import type { ChainWriter, HubX402Options } from "@srp/hub";
import { discounted } from "@srp/hub/ledger";
import { createProvider, openAICompatibleBackend } from "@srp/provider";
import { MODEL, PRICE, payHeader, refusal, usePayNets, type PayNet, type PayNetOptions } from "./support/paynet.js";

const chat = { model: MODEL, messages: [{ role: "user", content: "Hello from a wallet." }], max_tokens: 16 };
const nets = usePayNets("srp-wallet-");
let chain: ReturnType<typeof nets.chain>;
beforeAll(() => {
  chain = nets.chain();
});

interface Net extends PayNet {
  /** Makes the treasury's next transfers fail before they are sent: `"revert"` as the chain refusing them, `"timeout"` as an RPC that stops answering. */
  transfers: { fail: false | "revert" | "timeout" };
}

async function startNet(
  options: { treasury?: boolean; x402?: Partial<HubX402Options>; settler?: PayNetOptions["settler"] } = {},
): Promise<Net> {
  const transfers: Net["transfers"] = { fail: false };
  const net = await nets.start({
    ...(options.x402 ? { x402: options.x402 } : {}),
    ...(options.settler ? { settler: options.settler } : {}),
    treasury:
      options.treasury === false
        ? false
        : (wallet) => ({
            chain: wallet.chain,
            writeContract: ((args: never) =>
              transfers.fail === "revert"
                ? Promise.reject(new Error("simulated: execution reverted: ERC20: transfer amount exceeds balance"))
                : transfers.fail === "timeout"
                  ? Promise.reject(new Error("simulated: the request took too long to respond"))
                  : wallet.writeContract(args)) as ChainWriter["writeContract"],
          }),
  });
  return Object.assign(net, { transfers });
}

const json = { "content-type": "application/json" };
const postJson = (net: Net, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${net.url}${path}`, { method: "POST", headers: { ...json, ...headers }, body: JSON.stringify(body) });
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function nonce(net: Net): Promise<string> {
  const res = await fetch(`${net.url}/v1/auth/nonce`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { nonce: string }).nonce;
}

/** An EIP-4361 message for this hub, with overrides. */
function siwe(net: Net, who: PrivateKeyAccount, n: string, over: Partial<Parameters<typeof createSiweMessage>[0]> = {}): string {
  return createSiweMessage({
    address: who.address,
    chainId: chain.chainId,
    domain: new URL(net.url).host,
    nonce: n,
    uri: net.url,
    version: "1",
    issuedAt: new Date(),
    statement: "Sign in to the SRP hub.",
    ...over,
  });
}

interface Session {
  object: string;
  account_id: string;
  address: string;
  api_key: string;
  key_id: string;
}

async function signIn(net: Net, who: PrivateKeyAccount): Promise<Session> {
  const message = siwe(net, who, await nonce(net));
  const res = await postJson(net, "/v1/auth/wallet", { message, signature: await who.signMessage({ message }) });
  expect(res.status).toBe(200);
  return (await res.json()) as Session;
}

/** A `PAYMENT-SIGNATURE` for the first requirements of a 402, built by hand as a client would. */
const pay = (payer: PrivateKeyAccount, required: PaymentRequired): Promise<string> => payHeader(chain, payer, required);

/** Pays for a POST with x402: the 402, then the paid retry. */
async function paidPost(
  net: Net,
  path: string,
  body: unknown,
  payer: PrivateKeyAccount,
): Promise<{ quote: PaymentRequired; res: Response }> {
  const first = await postJson(net, path, body);
  expect(first.status).toBe(402);
  const quote = decodePaymentRequired(first.headers.get("payment-required")!);
  return { quote, res: await postJson(net, path, body, { "payment-signature": await pay(payer, quote) }) };
}

interface Deposit {
  object: string;
  account_id: string;
  address: string;
  amount: { units: string; usd: string };
  balance: { units: string };
  prepaid: { units: string };
  discount_bps: number;
  transaction: string;
}

async function deposit(net: Net, payer: PrivateKeyAccount, amount: bigint): Promise<Deposit> {
  const { res } = await paidPost(net, "/v1/futures/deposit", { amount: amount.toString() }, payer);
  expect(res.status).toBe(200);
  expect(decodeSettlementResponse(res.headers.get("payment-response")!).success).toBe(true);
  return (await res.json()) as Deposit;
}

async function refundBody(
  net: Net,
  signer: PrivateKeyAccount,
  accountId: string,
  n?: string,
): Promise<{ message: string; signature: string }> {
  const message = refundMessage(net.hub.id, accountId, n ?? (await nonce(net)));
  return { message, signature: await signer.signMessage({ message }) };
}

describe("sign in with a wallet (EIP-4361)", () => {
  it("issues a nonce, signs the wallet in with a new API key of its account, and a node bound by the wallet earns for that account", async () => {
    const net = await startNet();
    const res = await fetch(`${net.url}/v1/auth/nonce`);
    const issued = (await res.json()) as { nonce: string; expires_at: number };
    expect(issued.nonce).toMatch(/^[A-Za-z0-9]{16,}$/);
    expect(issued.expires_at - Date.now()).toBeGreaterThan(590_000);
    expect(issued.expires_at - Date.now()).toBeLessThanOrEqual(600_000);
    expect(await nonce(net)).not.toBe(issued.nonce);

    const who = chain.accounts[6]!;
    const session = await signIn(net, who);
    expect(session).toMatchObject({ object: "srp.wallet_session", address: who.address.toLowerCase() });
    expect(session.api_key).toMatch(/^srp_/);
    expect(session.key_id).toMatch(/^key_/);
    // The key works, for the wallet's account, which got no signup credits.
    const account = await fetch(`${net.url}/v1/account`, { headers: bearer(session.api_key) });
    expect(account.status).toBe(200);
    expect(await account.json()).toMatchObject({ id: session.account_id, balance: { units: "0" } });
    expect((await net.store.listApiKeys(session.account_id)).map((k) => k.label)).toEqual(["wallet sign-in"]);
    // Signing in again reaches the same account with another key.
    const again = await signIn(net, who);
    expect(again.account_id).toBe(session.account_id);
    expect(again.api_key).not.toBe(session.api_key);

    // The same account earns: the wallets table maps the wallet to it, so a node bound by the wallet (SRP-AUTH-007) serves under it.
    expect((await net.store.findByWallet(who.address))?.id).toBe(session.account_id);
    const identity = generateIdentity();
    const node = createProvider({
      hub: net.url,
      identity,
      account: { kind: "wallet", address: who.address, signature: await who.signMessage({ message: nodeBindingText(identity.id) }) },
      reconnect: false,
      instances: [{ backend: openAICompatibleBackend({ baseUrl: net.sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 2 }],
    });
    net.extra.push(node);
    await node.ready();
    expect(net.hub.sessions().find((s) => s.nodeId === identity.id)?.accountId).toBe(session.account_id);
    // With no payout wallet bound, the account is paid to its sign-in wallet.
    expect(await net.store.wallets.payoutWallet(session.account_id)).toBe(who.address.toLowerCase());

    // Discovery lists the new surfaces.
    const doc = (await (await fetch(`${net.url}/.well-known/srp.json`)).json()) as { consumer: { surfaces: string[] } };
    expect(doc.consumer.surfaces).toEqual(expect.arrayContaining(["srp.wallet", "srp.futures"]));
  });

  it("refuses a reused or unknown nonce (401), a wrong domain, chain, signer or validity window (403), and a malformed message (400)", async () => {
    const net = await startNet();
    const who = chain.accounts[6]!;
    const attempt = async (message: string, signer: PrivateKeyAccount = who) =>
      refusal(await postJson(net, "/v1/auth/wallet", { message, signature: await signer.signMessage({ message }) }));

    // A refused message leaves its nonce usable: every case below uses the same one until it succeeds.
    const n = await nonce(net);
    expect(await attempt(siwe(net, who, n, { domain: "evil.example.com" }))).toEqual({ status: 403, code: "auth.bad_account_proof" });
    expect(await attempt(siwe(net, who, n, { chainId: 1 }))).toEqual({ status: 403, code: "auth.bad_account_proof" });
    expect(await attempt(siwe(net, who, n), chain.accounts[7]!)).toEqual({ status: 403, code: "auth.bad_account_proof" });
    const past = new Date(Date.now() - 60_000);
    expect(await attempt(siwe(net, who, n, { issuedAt: new Date(Date.now() - 120_000), expirationTime: past }))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    expect(await attempt(siwe(net, who, n, { notBefore: new Date(Date.now() + 3_600_000) }))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    expect(await attempt("I am the owner of this wallet, trust me")).toEqual({ status: 400, code: "api.invalid_body" });
    expect(await refusal(await postJson(net, "/v1/auth/wallet", { message: siwe(net, who, n), signature: "0x1234" }))).toEqual({
      status: 400,
      code: "api.invalid_body",
    });
    // A nonce this hub never issued.
    expect(await attempt(siwe(net, who, "NeverIssuedByThisHub123"))).toEqual({ status: 401, code: "auth.replayed_nonce" });

    const message = siwe(net, who, n);
    const body = { message, signature: await who.signMessage({ message }) };
    expect((await postJson(net, "/v1/auth/wallet", body)).status).toBe(200);
    // The same signed message again: the nonce is used up.
    expect(await refusal(await postJson(net, "/v1/auth/wallet", body))).toEqual({ status: 401, code: "auth.replayed_nonce" });
    // Two concurrent uses of one fresh nonce: exactly one signs in.
    const m2 = siwe(net, who, await nonce(net));
    const b2 = { message: m2, signature: await who.signMessage({ message: m2 }) };
    const statuses = (await Promise.all([postJson(net, "/v1/auth/wallet", b2), postJson(net, "/v1/auth/wallet", b2)]))
      .map((r) => r.status)
      .sort();
    expect(statuses).toEqual([200, 401]);

    // Without a configured public URL, a Host header is the client's to choose: a message signed for another
    // site, replayed with that site's Host, is refused (only loopback hosts are trusted then).
    const phished = siwe(net, who, await nonce(net), { domain: "evil.example.com" });
    const spoofed = await new Promise<{ status: number; code: string }>((resolve, reject) => {
      const payload = JSON.stringify({ message: phished, signature: "0x" + "11".repeat(65) });
      const req = httpRequest(
        `${net.url}/v1/auth/wallet`,
        {
          method: "POST",
          headers: { host: "evil.example.com", "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        },
        (res) => {
          let raw = "";
          res.on("data", (d: Buffer) => (raw += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(raw) as { error: { code: string } }).error.code }));
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
    expect(spoofed).toEqual({ status: 403, code: "api.forbidden" });
  });

  it("signs in to the account the wallet already paid with by x402: its overpayment is that account's prepaid balance", async () => {
    const net = await startNet();
    const payer = chain.accounts[3]!;
    const { quote, res } = await paidPost(net, "/v1/chat/completions", chat, payer);
    expect(res.status).toBe(200);
    const charge = BigInt(((await res.json()) as { usage: { cost_units: string } }).usage.cost_units);
    const paid = BigInt(quote.accepts[0]!.amount);
    const payingAccount = (await net.store.findByWallet(payer.address))!.id;

    const session = await signIn(net, payer);
    expect(session.account_id).toBe(payingAccount);
    const account = (await (await fetch(`${net.url}/v1/account`, { headers: bearer(session.api_key) })).json()) as {
      prepaid: { units: string };
      spent: { units: string };
    };
    expect(account.prepaid.units).toBe((paid - charge).toString());
    expect(account.spent.units).toBe(charge.toString());
  });
});

describe("payout wallets", () => {
  it("binds a node's payout wallet for the node's account only, signed by that wallet", async () => {
    const net = await startNet();
    const payee = chain.accounts[6]!;
    const signature = await payee.signMessage({ message: payoutWalletMessage(net.nodeId) });
    const bind = (key: string, body: Record<string, unknown>) => postJson(net, "/v1/nodes/payout-wallet", body, bearer(key));

    const ok = await bind(net.owner.key, { node_id: net.nodeId, address: payee.address, signature });
    expect(ok.status).toBe(200);
    const bound = await ok.json();
    expect(bound).toMatchObject({
      object: "srp.payout_wallet",
      node_id: net.nodeId,
      account_id: net.owner.id,
      address: payee.address.toLowerCase(),
      signature,
    });
    const read = await fetch(`${net.url}/v1/nodes/payout-wallet?node_id=${net.nodeId}`, { headers: bearer(net.owner.key) });
    expect(await read.json()).toEqual(bound);
    expect(await net.store.wallets.payoutWallet(net.owner.id)).toBe(payee.address.toLowerCase());

    // Signed by another wallet than the one named.
    const forged = await chain.accounts[7]!.signMessage({ message: payoutWalletMessage(net.nodeId) });
    expect(await refusal(await bind(net.owner.key, { node_id: net.nodeId, address: payee.address, signature: forged }))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    // A signature for another node's text.
    const otherText = await payee.signMessage({ message: payoutWalletMessage(generateIdentity().id) });
    expect(await refusal(await bind(net.owner.key, { node_id: net.nodeId, address: payee.address, signature: otherText }))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    // Another account may neither bind nor read this node's wallet.
    const stranger = await net.store.createAccount({ name: "stranger" });
    const { key: strangerKey } = await net.store.createApiKey(stranger.id);
    const strangerSig = await chain.accounts[8]!.signMessage({ message: payoutWalletMessage(net.nodeId) });
    expect(
      await refusal(await bind(strangerKey, { node_id: net.nodeId, address: chain.accounts[8]!.address, signature: strangerSig })),
    ).toEqual({ status: 403, code: "api.forbidden" });
    expect(await refusal(await fetch(`${net.url}/v1/nodes/payout-wallet?node_id=${net.nodeId}`, { headers: bearer(strangerKey) }))).toEqual(
      { status: 404, code: "api.not_found" },
    );
    expect(await refusal(await bind("srp_not_a_key", { node_id: net.nodeId, address: payee.address, signature }))).toEqual({
      status: 401,
      code: "api.unauthorized",
    });
    expect(await net.store.wallets.payoutWallet(net.owner.id)).toBe(payee.address.toLowerCase());

    // A node that is not connected belongs to the account its receipts credit.
    const consumer = await net.store.createAccount({ name: "consumer" });
    const { key: consumerKey } = await net.store.createApiKey(consumer.id);
    expect((await postJson(net, "/v1/chat/completions", chat, bearer(consumerKey))).status).toBe(200);
    await net.provider.close();
    await expect.poll(() => net.hub.sessions().length).toBe(0);
    const rebind = await bind(net.owner.key, { node_id: net.nodeId, address: chain.accounts[8]!.address, signature: strangerSig });
    expect(rebind.status).toBe(200);
    expect(await net.store.wallets.payoutWallet(net.owner.id)).toBe(chain.accounts[8]!.address.toLowerCase());
    expect(
      await refusal(await bind(strangerKey, { node_id: net.nodeId, address: chain.accounts[8]!.address, signature: strangerSig })),
    ).toEqual({ status: 403, code: "api.forbidden" });
  });
});

describe("prepaid balances from the chain", () => {
  it("takes a $10 deposit by x402: prepaid 10,000,000 units at 500 bps, the treasury holds it, and the discount applies", async () => {
    const net = await startNet();
    const payer = chain.accounts[3]!;
    const amount = 10_000_000n;
    // The 402 quotes exactly the amount asked, for the deposit resource.
    const quote = await postJson(net, "/v1/futures/deposit", { amount: amount.toString() });
    expect(await refusal(quote.clone())).toEqual({ status: 402, code: "payment.required" });
    const doc = decodePaymentRequired(quote.headers.get("payment-required")!);
    expect(doc.accepts[0]).toMatchObject({ amount: "10000000", payTo: net.treasury, asset: chain.usdc.address });
    expect(doc.resource.url).toBe(`${net.url}/v1/futures/deposit`);
    for (const bad of [{ amount: "0" }, { amount: "1000000000001" }, { amount: 10 }, { amount: "1.5" }, {}]) {
      expect(await refusal(await postJson(net, "/v1/futures/deposit", bad))).toEqual({ status: 400, code: "api.invalid_body" });
    }
    // Discovery lists the deposit resource, priced at the amount asked.
    const wellKnown = (await (await fetch(`${net.url}/.well-known/x402`)).json()) as {
      resources: Array<{ resource: string; price: { kind: string } }>;
    };
    // Every metered resource first (chat completions leading), the deposit last.
    const listed = wellKnown.resources.map((r) => [r.resource, r.price.kind]);
    expect(listed[0]).toEqual([`${net.url}/v1/chat/completions`, "maximum_cost"]);
    expect(listed.at(-1)).toEqual([`${net.url}/v1/futures/deposit`, "amount"]);
    expect(listed.slice(0, -1).every(([, kind]) => kind === "maximum_cost")).toBe(true);

    const before = await chain.usdcBalance(payer.address);
    const made = await deposit(net, payer, amount);
    const accountId = (await net.store.findByWallet(payer.address))!.id;
    expect(made).toMatchObject({
      object: "srp.deposit",
      account_id: accountId,
      address: payer.address.toLowerCase(),
      amount: { units: "10000000", usd: "10.00" },
      balance: { units: "10000000" },
      prepaid: { units: "10000000" },
      discount_bps: 500,
    });
    expect((await chain.publicClient.getTransactionReceipt({ hash: made.transaction as `0x${string}` })).status).toBe("success");
    expect(await chain.usdcBalance(net.treasury)).toBe(amount);
    expect(await chain.usdcBalance(payer.address)).toBe(before - amount);
    expect(await net.store.discountOf(accountId)).toBe(500);

    // The account's requests get the tier's discount: charged 95 % of the receipt's cost, rounded up.
    const session = await signIn(net, payer);
    const res = await postJson(net, "/v1/chat/completions", chat, bearer(session.api_key));
    expect(res.status).toBe(200);
    const usage = ((await res.json()) as { usage: { cost_units: string; receipt_id: string } }).usage;
    const receipt = (await (await fetch(`${net.url}/v1/receipts/${usage.receipt_id}`, { headers: bearer(session.api_key) })).json()) as {
      receipt: { cost: string };
    };
    expect(BigInt(receipt.receipt.cost)).toBeGreaterThan(0n);
    expect(BigInt(usage.cost_units)).toBe(discounted(BigInt(receipt.receipt.cost), 500));
  });

  it("refunds the depositor on-chain, and only the depositor", async () => {
    const net = await startNet();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const made = await deposit(net, payer, 10_000_000n);
    const accountId = made.account_id;

    // Signed by a wallet of another account, or by no account's wallet.
    await signIn(net, chain.accounts[4]!);
    expect(await refusal(await postJson(net, "/v1/futures/refund", await refundBody(net, chain.accounts[4]!, accountId)))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    expect(await refusal(await postJson(net, "/v1/futures/refund", await refundBody(net, chain.accounts[9]!, accountId)))).toEqual({
      status: 403,
      code: "auth.bad_account_proof",
    });
    // Addressed to another hub, or with a nonce the hub never issued.
    const elsewhere = refundMessage(generateIdentity().id, accountId, await nonce(net));
    expect(
      await refusal(
        await postJson(net, "/v1/futures/refund", { message: elsewhere, signature: await payer.signMessage({ message: elsewhere }) }),
      ),
    ).toEqual({ status: 401, code: "auth.wrong_hub" });
    expect(
      await refusal(await postJson(net, "/v1/futures/refund", await refundBody(net, payer, accountId, "NeverIssuedByThisHub123"))),
    ).toEqual({ status: 401, code: "auth.replayed_nonce" });
    expect(
      await refusal(
        await postJson(net, "/v1/futures/refund", { message: "SRP refund, please", signature: await payer.signMessage({ message: "x" }) }),
      ),
    ).toEqual({ status: 400, code: "api.invalid_body" });
    expect(await chain.usdcBalance(net.treasury)).toBe(10_000_000n);

    const body = await refundBody(net, payer, accountId);
    const res = await postJson(net, "/v1/futures/refund", body);
    expect(res.status).toBe(200);
    const refund = (await res.json()) as {
      object: string;
      account_id: string;
      address: string;
      amount: { units: string };
      transaction: string;
    };
    expect(refund).toMatchObject({
      object: "srp.refund",
      account_id: accountId,
      address: payer.address.toLowerCase(),
      amount: { units: "10000000" },
    });
    expect((await chain.publicClient.getTransactionReceipt({ hash: refund.transaction as `0x${string}` })).status).toBe("success");
    // On-chain the payer has its money back; in the books the prepaid balance is refunded.
    expect(await chain.usdcBalance(payer.address)).toBe(before);
    expect(await chain.usdcBalance(net.treasury)).toBe(0n);
    expect(await net.store.summary(accountId)).toMatchObject({ balance: 0n, prepaid: 0n, refunded: 10_000_000n });
    expect(await net.store.ledgerBalance("external")).toBe(0n);
    // The signed refund cannot be replayed; a fresh one has nothing left to refund.
    expect(await refusal(await postJson(net, "/v1/futures/refund", body))).toEqual({ status: 401, code: "auth.replayed_nonce" });
    const empty = await postJson(net, "/v1/futures/refund", await refundBody(net, payer, accountId));
    expect(await empty.json()).toMatchObject({ amount: { units: "0" }, transaction: null });
  });

  it("never pays card money out on-chain: the refund is the prepaid money beyond the card money still refundable to cards", async () => {
    const net = await startNet();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const made = await deposit(net, payer, 10_000_000n);
    const accountId = made.account_id;
    // $5 by card (as a signed Checkout completion credits it): held by the card processor, not the treasury.
    const card = { id: "cdep_wallet_test", accountId, units: 5_000_000n, cents: 500n };
    expect(await net.store.cards.open(card)).toEqual({ ok: true });
    const session = {
      sessionId: "cs_test_wallet",
      accountId,
      depositId: card.id,
      amountTotal: 500,
      currency: "usd",
      mode: "payment",
      paymentStatus: "paid",
      paymentIntent: "pi_test_wallet",
    };
    expect((await net.store.cards.credit(session, "evt_test_wallet")).kind).toBe("credited");
    net.elsewhere = async () => 5_000_000n - (await net.store.cards.get(card.id))!.refunded;
    expect((await net.store.summary(accountId)).prepaid).toBe(15_000_000n);

    const res = await postJson(net, "/v1/futures/refund", await refundBody(net, payer, accountId));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ amount: { units: "10000000" } });
    expect(await chain.usdcBalance(payer.address)).toBe(before);
    expect(await chain.usdcBalance(net.treasury)).toBe(0n);
    // The card money stays, still refundable to the card; a second on-chain refund pays nothing.
    expect(await net.store.summary(accountId)).toMatchObject({ prepaid: 5_000_000n, refunded: 10_000_000n });
    expect((await net.store.cards.get(card.id))?.refunded).toBe(0n);
    const empty = await postJson(net, "/v1/futures/refund", await refundBody(net, payer, accountId));
    expect(await empty.json()).toMatchObject({ amount: { units: "0" }, transaction: null });
    // The ledger's own refund (admin API, CLI) likewise pays only what is beyond the card money.
    await net.store.deposit(accountId, 1_000_000n, "operator credit");
    expect(await net.store.refund(accountId, "admin-refund")).toBe(1_000_000n);
  });

  it("credits a refund back when the transfer fails, and refuses refunds without a treasury or while a payment is unsettled", async () => {
    const net = await startNet();
    const payer = chain.accounts[3]!;
    const made = await deposit(net, payer, 2_000_000n);
    net.transfers.fail = "revert";
    expect(await refusal(await postJson(net, "/v1/futures/refund", await refundBody(net, payer, made.account_id)))).toEqual({
      status: 503,
      code: "payment.unavailable",
    });
    expect(await net.store.summary(made.account_id)).toMatchObject({ balance: 2_000_000n, prepaid: 2_000_000n });
    expect(await chain.usdcBalance(net.treasury)).toBe(2_000_000n);
    net.transfers.fail = false;
    expect((await postJson(net, "/v1/futures/refund", await refundBody(net, payer, made.account_id))).status).toBe(200);
    expect(await chain.usdcBalance(net.treasury)).toBe(0n);
    // A transfer that may have been sent (the RPC stopped answering) is never credited back: that could pay twice.
    const again = await deposit(net, payer, 1_000_000n);
    net.transfers.fail = "timeout";
    expect(await refusal(await postJson(net, "/v1/futures/refund", await refundBody(net, payer, again.account_id)))).toEqual({
      status: 503,
      code: "payment.settlement_pending",
    });
    expect((await net.store.summary(again.account_id)).prepaid).toBe(0n);
    net.transfers.fail = false;
    // (Here it was never sent, so the treasury still holds it; on a real chain the operator reconciles it by the transfer.)
    await net.store.deposit(again.account_id, 1_000_000n, "operator: refund transfer never sent");
  });

  it("answers 503 payment.unavailable for a refund when the hub has no treasury wallet", async () => {
    const net = await startNet({ treasury: false });
    const payer = chain.accounts[3]!;
    const made = await deposit(net, payer, 1_000_000n);
    expect(await refusal(await postJson(net, "/v1/futures/refund", await refundBody(net, payer, made.account_id)))).toEqual({
      status: 503,
      code: "payment.unavailable",
    });
    expect((await net.store.summary(made.account_id)).prepaid).toBe(1_000_000n);
  });

  it("answers 409 billing.refund_pending while a payment credited before settling has an unknown outcome", async () => {
    // Settled on-chain, but the hub is told the outcome is unknown (a lost answer).
    const net = await startNet({
      x402: { settle: "after" },
      settler: (base) => ({
        ...base,
        async settle(input) {
          const result = await base.settle(input);
          return result.outcome === "settled" ? { outcome: "unknown", reason: "simulated time-out" } : result;
        },
      }),
    });
    const payer = chain.accounts[4]!;
    const { res } = await paidPost(net, "/v1/chat/completions", chat, payer);
    expect(res.status).toBe(200);
    const accountId = (await net.store.findByWallet(payer.address))!.id;
    expect(await refusal(await postJson(net, "/v1/futures/refund", await refundBody(net, payer, accountId)))).toEqual({
      status: 409,
      code: "billing.refund_pending",
    });
    // Nothing left the books or the treasury.
    expect((await net.store.summary(accountId)).refunded).toBe(0n);
  });
});
