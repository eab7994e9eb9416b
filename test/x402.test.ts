/**
 * x402 pay-per-call end to end on a real EVM: an in-process ganache chain with TestUSDC
 * (EIP-3009) deployed from the contracts compiled by solc, a hub on a SQLite ledger that
 * settles with `transferWithAuthorization` through viem, one provider node on the model
 * simulator, and the official `@x402/fetch` + `@x402/evm` client as the paying consumer.
 * Every bad payment gets its own code, the books balance after every test, and the
 * treasury's on-chain balance equals what the ledger says came in.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { PrivateKeyAccount } from "viem";
import {
  decodePaymentRequired,
  decodeSettlementResponse,
  exactEvmPayload,
  type PaymentPayload,
  type PaymentRequired,
  type PaymentRequirements,
} from "@srp/core/x402";
import { signTransferAuthorization, testUsdcAbi } from "@srp/core/chain";
import { directSettler, EIP3009_ABI, facilitatorSettler, facilitatorSupported, SqliteStore, type HubX402Options } from "@srp/hub";
import {
  MODEL,
  officialFetch as official,
  payHeader,
  quote as quoteAt,
  refusal,
  usePayNets,
  walletAccount,
  type PayNet as Net,
  type Tamper,
} from "./support/paynet.js";

const body = { model: MODEL, messages: [{ role: "user", content: "Pay per call, please." }], max_tokens: 16 };
const nets = usePayNets("srp-x402-");
let chain: ReturnType<typeof nets.chain>;
beforeAll(() => {
  chain = nets.chain();
});

interface PayNet extends Net {
  /** Hook run inside the settler before it settles (tests make settlement fail or time out). */
  beforeSettle: { fn?: (() => Promise<void>) | undefined; unknown?: boolean };
}

async function startPayNet(x402: Partial<HubX402Options> = {}): Promise<PayNet> {
  const beforeSettle: PayNet["beforeSettle"] = {};
  const net = await nets.start({
    x402,
    settler: (inner) => ({
      ...inner,
      async settle(input) {
        await beforeSettle.fn?.();
        const result = await inner.settle(input);
        // A settlement that went through but whose answer was lost (a time-out on the way back).
        if (beforeSettle.unknown && result.outcome === "settled") return { outcome: "unknown", reason: "simulated time-out" };
        return result;
      },
    }),
  });
  return Object.assign(net, { beforeSettle });
}

const post = (net: PayNet, headers: Record<string, string> = {}, b: Record<string, unknown> = body) =>
  fetch(`${net.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(b),
  });
const quote = (net: PayNet, b: Record<string, unknown> = body): Promise<PaymentRequired> => quoteAt(net, "/v1/chat/completions", b);
const pay = (payer: PrivateKeyAccount, required: PaymentRequired, t: Tamper = {}) => payHeader(chain, payer, required, t);
const officialFetch = (payer: PrivateKeyAccount) => official(chain, payer);

describe("x402 with the official client", () => {
  it("answers 402 with PAYMENT-REQUIRED quoting the request's maximum cost, payable to the treasury in the test token", async () => {
    const net = await startPayNet();
    const doc = await quote(net);
    expect(doc.x402Version).toBe(2);
    expect(doc.resource.url).toBe(`${net.url}/v1/chat/completions`);
    const estimate = (await (
      await fetch(`${net.url}/v1/estimate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    ).json()) as {
      maximum: { units: string };
    };
    expect(doc.accepts).toEqual([
      {
        scheme: "exact",
        network: `eip155:${chain.chainId}`,
        amount: estimate.maximum.units,
        asset: chain.usdc.address,
        payTo: net.treasury,
        maxTimeoutSeconds: 300,
        extra: { name: "USD Coin", version: "2" },
      },
    ]);
    const bazaar = doc.extensions?.bazaar as { info: { input: Record<string, unknown> }; schema: Record<string, unknown> };
    expect(bazaar.info.input).toMatchObject({ type: "http", method: "POST", bodyType: "json" });
    expect(bazaar.schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    // Discovery lists the resource and the hub's settlement mode.
    const wellKnown = (await (await fetch(`${net.url}/.well-known/x402`)).json()) as {
      resources: Array<{ resource: string; price: { models: Array<{ model: string }> } }>;
      settlement: string;
    };
    expect(wellKnown.settlement).toBe("before");
    // Chain 1337 has no x402 version-1 name: version 2 only, and no version-1 members in the 402's body.
    expect((wellKnown as unknown as { x402Versions: number[] }).x402Versions).toEqual([2]);
    const unpaid = (await (await post(net)).json()) as Record<string, unknown>;
    expect([unpaid.x402Version, unpaid.accepts]).toEqual([undefined, undefined]);
    expect(wellKnown.resources[0]!.resource).toBe(`${net.url}/v1/chat/completions`);
    expect(wellKnown.resources[0]!.price.models.map((m) => m.model)).toEqual([MODEL]);
    const srp = (await (await fetch(`${net.url}/.well-known/srp.json`)).json()) as { payments: string[] };
    expect(srp.payments).toContain("x402");
  });

  it("is paid by @x402/fetch for a chat completion; the overpayment is the wallet's prepaid balance", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const doc = await quote(net);
    const amount = BigInt(doc.accepts[0]!.amount);

    const res = await officialFetch(payer)(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    const completion = (await res.json()) as {
      choices: Array<{ message: { content: string } }>;
      usage: { cost_units: string; receipt_id: string };
    };
    expect(completion.choices[0]!.message.content.length).toBeGreaterThan(0);
    const settled = decodeSettlementResponse(res.headers.get("payment-response")!);
    expect(settled).toMatchObject({ success: true, network: `eip155:${chain.chainId}`, payer: payer.address.toLowerCase() });
    const receipt = await chain.publicClient.getTransactionReceipt({ hash: settled.transaction as `0x${string}` });
    expect(receipt.status).toBe("success");

    // On-chain: exactly the authorized amount moved from the payer to the treasury.
    expect(await chain.usdcBalance(payer.address)).toBe(before - amount);
    expect(await chain.usdcBalance(net.treasury)).toBe(amount);
    // In the books: the wallet's account was credited the payment and charged the receipt's cost; the rest is prepaid balance.
    const charge = BigInt(completion.usage.cost_units);
    expect(charge).toBeGreaterThan(0n);
    const account = await walletAccount(net, payer.address);
    const summary = await net.store.summary(account);
    expect(summary).toMatchObject({ balance: amount - charge, held: 0n, prepaid: amount - charge, spent: charge, requests: 1 });
  });

  it("streams a paid completion with PAYMENT-RESPONSE on the stream's headers", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const res = await officialFetch(payer)(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(decodeSettlementResponse(res.headers.get("payment-response")!).success).toBe(true);
    const text = await res.text();
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  it("settles after serving when the operator chooses so, and only served requests move money", async () => {
    const net = await startPayNet({ settle: "after" });
    const payer = chain.accounts[3]!;
    const before = await chain.usdcBalance(payer.address);
    const res = await officialFetch(payer)(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    const settled = decodeSettlementResponse(res.headers.get("payment-response")!);
    expect(settled.success).toBe(true);
    const amount = before - (await chain.usdcBalance(payer.address));
    expect(amount).toBeGreaterThan(0n);
    // A paid request for a model nobody serves is refused before payment: no 402 is even issued.
    const unknown = await post(net, {}, { ...body, model: "no-such-model" });
    expect(unknown.status).toBe(404);
  });
});

describe("bad payments", () => {
  it("refuses each bad payment with its own code and moves nothing", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const doc = await quote(net);
    const now = BigInt(Math.floor(Date.now() / 1000));
    const payerBefore = await chain.usdcBalance(payer.address);
    const cases: Array<[string, Tamper | string, number, string]> = [
      ["malformed header", "%%%not-base64%%%", 400, "payment.invalid"],
      ["expired", { validBefore: now - 10n }, 402, "payment.expired"],
      ["expiring before the request can settle", { validBefore: now + 5n }, 402, "payment.expired"],
      ["not yet valid", { validAfter: now + 3600n }, 402, "payment.not_yet_valid"],
      ["wrong amount", { value: BigInt(doc.accepts[0]!.amount) - 1n }, 402, "payment.wrong_amount"],
      ["wrong payTo", { to: chain.accounts[9]!.address }, 402, "payment.wrong_recipient"],
      ["wrong network", { accepted: { network: "eip155:1" } }, 402, "payment.wrong_network"],
      ["tampered accepted", { accepted: { amount: "1" }, value: 1n }, 402, "payment.requirements_mismatch"],
      ["signed by someone else", { signer: chain.accounts[4]! }, 402, "payment.bad_signature"],
    ];
    for (const [name, t, status, code] of cases) {
      const header = typeof t === "string" ? t : await pay(payer, doc, t);
      const res = await post(net, { "payment-signature": header });
      expect({ name, ...(await refusal(res)) }).toEqual({ name, status, code });
    }
    // Insufficient funds: a wallet without tokens.
    const poor = chain.accounts[8]!;
    expect(await chain.usdcBalance(poor.address)).toBe(0n);
    const res = await post(net, { "payment-signature": await pay(poor, doc) });
    expect(await refusal(res)).toEqual({ status: 402, code: "payment.insufficient_funds" });
    // Nothing moved on-chain, nobody was charged, and the hub still serves paid requests.
    expect(await chain.usdcBalance(payer.address)).toBe(payerBefore);
    expect(await chain.usdcBalance(net.treasury)).toBe(0n);
    const ok = await post(net, { "payment-signature": await pay(payer, doc) });
    expect(ok.status).toBe(200);
  });

  it("lets one authorization buy one request: a reused signature is refused, and of two concurrent copies exactly one is served", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const doc = await quote(net);
    const amount = BigInt(doc.accepts[0]!.amount);
    const header = await pay(payer, doc);
    expect((await post(net, { "payment-signature": header })).status).toBe(200);
    expect(await refusal(await post(net, { "payment-signature": header }))).toEqual({ status: 402, code: "payment.replayed" });

    const twin = await pay(payer, doc);
    const [a, b] = await Promise.all([post(net, { "payment-signature": twin }), post(net, { "payment-signature": twin })]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 402]);
    const refused = a.status === 402 ? a : b;
    expect((await refusal(refused)).code).toBe("payment.replayed");
    // Two authorizations, two transfers: never three.
    expect(await chain.usdcBalance(net.treasury)).toBe(2n * amount);
    // The lock is durable: another store on the same database file finds the authorization locked.
    expect(await net.store.payments.unfinished(0)).toEqual([]); // nothing is left unfinished
    const other = new SqliteStore(net.file);
    try {
      const json = JSON.parse(Buffer.from(twin, "base64").toString("utf8")) as { payload: { authorization: { nonce: string } } };
      const relock = await other.payments.lock({
        network: `eip155:${chain.chainId}`,
        asset: chain.usdc.address,
        payer: payer.address,
        nonce: json.payload.authorization.nonce,
        amount,
        validBefore: 0,
        accountId: await walletAccount(net, payer.address),
        mode: "before",
        resource: null,
        payload: "{}",
      });
      expect(relock.locked).toBe(false);
      expect(relock.record).toMatchObject({ state: "settled", served: true });
    } finally {
      await other.close();
    }
  });

  it("refuses a settlement that fails on-chain before serving, and nothing is lost", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[4]!;
    const doc = await quote(net);
    // Between verification and settlement the payer moves all its tokens away: the transfer reverts.
    net.beforeSettle.fn = async () => {
      const balance = await chain.usdcBalance(payer.address);
      const wallet = chain.walletFor(payer);
      const hash = await wallet.writeContract({
        address: chain.usdc.address,
        abi: testUsdcAbi,
        functionName: "transfer",
        args: [chain.accounts[9]!.address, balance],
      });
      await chain.publicClient.waitForTransactionReceipt({ hash });
    };
    const res = await post(net, { "payment-signature": await pay(payer, doc) });
    expect(await refusal(res)).toEqual({ status: 402, code: "payment.settlement_failed" });
    expect(await chain.usdcBalance(net.treasury)).toBe(0n);
    const account = await walletAccount(net, payer.address);
    expect((await net.store.summary(account)).balance).toBe(0n);
  });

  it("turns a failed settlement after serving into the wallet's debt, which blocks the wallet", async () => {
    const net = await startPayNet({ settle: "after" });
    const payer = chain.accounts[4]!;
    const doc = await quote(net);
    net.beforeSettle.fn = async () => {
      const balance = await chain.usdcBalance(payer.address);
      if (balance === 0n) return;
      const hash = await chain.walletFor(payer).writeContract({
        address: chain.usdc.address,
        abi: testUsdcAbi,
        functionName: "transfer",
        args: [chain.accounts[9]!.address, balance],
      });
      await chain.publicClient.waitForTransactionReceipt({ hash });
    };
    const events: string[] = [];
    net.hub.on("payment", (e) => events.push(e.kind));
    const res = await post(net, { "payment-signature": await pay(payer, doc) });
    // The request was served; the header says the settlement failed.
    expect(res.status).toBe(200);
    const completion = (await res.json()) as { usage: { cost_units: string } };
    const settled = decodeSettlementResponse(res.headers.get("payment-response")!);
    expect(settled.success).toBe(false);
    expect(events).toContain("debt");
    const account = await walletAccount(net, payer.address);
    // The unspent credit was taken back; what was spent is the debt, carried by the platform.
    const debt = await net.store.payments.debtOf(account);
    expect(debt).toBe(BigInt(completion.usage.cost_units));
    expect((await net.store.summary(account)).balance).toBe(0n);
    // The wallet is blocked until the debt is settled, even with a good payment.
    net.beforeSettle.fn = undefined;
    const blocked = await post(net, { "payment-signature": await pay(payer, doc) });
    expect(await refusal(blocked)).toEqual({ status: 403, code: "payment.wallet_blocked" });
    // An API key of the same account spends nothing either while it owes.
    const { key } = await net.store.createApiKey(account);
    expect(await refusal(await post(net, { authorization: `Bearer ${key}` }))).toEqual({ status: 403, code: "payment.wallet_blocked" });

    // The wallet gets its tokens back and deposits: the deposit repays the debt first, which unblocks it.
    const sink = chain.walletFor(chain.accounts[9]!);
    const back = await sink.writeContract({
      address: chain.usdc.address,
      abi: testUsdcAbi,
      functionName: "transfer",
      args: [payer.address, 5_000_000n],
    });
    await chain.publicClient.waitForTransactionReceipt({ hash: back });
    const depositBody = { amount: "1000000" };
    const quoted = await fetch(`${net.url}/v1/futures/deposit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(depositBody),
    });
    expect(quoted.status).toBe(402);
    const depositDoc = decodePaymentRequired(quoted.headers.get("payment-required")!);
    const deposited = await fetch(`${net.url}/v1/futures/deposit`, {
      method: "POST",
      headers: { "content-type": "application/json", "payment-signature": await pay(payer, depositDoc) },
      body: JSON.stringify(depositBody),
    });
    expect(deposited.status).toBe(200);
    const receipt = (await deposited.json()) as { debt_repaid: { units: string }; balance: { units: string } };
    expect(BigInt(receipt.debt_repaid.units)).toBe(debt);
    expect(BigInt(receipt.balance.units)).toBe(1_000_000n - debt);
    expect(await net.store.payments.debtOf(account)).toBe(0n);
    const served = await post(net, { "payment-signature": await pay(payer, doc) });
    expect(served.status).toBe(200);
    expect((await post(net, { authorization: `Bearer ${key}` })).status).toBe(200);
  });

  it("is not fooled by a payer who spends its own nonce elsewhere: that is no payment, and the served request becomes a debt", async () => {
    const net = await startPayNet({ settle: "after" });
    const payer = chain.accounts[4]!;
    const doc = await quote(net);
    const header = await pay(payer, doc);
    const { nonce } = exactEvmPayload(JSON.parse(Buffer.from(header, "base64").toString("utf8")) as PaymentPayload).authorization;
    // While the request is served, the payer uses the same nonce for an authorization that pays itself nothing.
    net.beforeSettle.fn = async () => {
      const now = BigInt(Math.floor(Date.now() / 1000));
      const self = {
        from: payer.address,
        to: payer.address,
        value: 0n,
        validAfter: 0n,
        validBefore: now + 600n,
        nonce: nonce as `0x${string}`,
      };
      const token = { name: chain.usdc.name, version: chain.usdc.version, chainId: chain.chainId, address: chain.usdc.address };
      const signature = await signTransferAuthorization(payer, token, self);
      const hash = await chain.walletFor(payer).writeContract({
        address: chain.usdc.address,
        abi: EIP3009_ABI,
        functionName: "transferWithAuthorization",
        args: [self.from, self.to, self.value, self.validAfter, self.validBefore, self.nonce, signature],
      });
      await chain.publicClient.waitForTransactionReceipt({ hash });
    };
    const res = await post(net, { "payment-signature": header });
    expect(res.status).toBe(200);
    const completion = (await res.json()) as { usage: { cost_units: string } };
    expect(decodeSettlementResponse(res.headers.get("payment-response")!).success).toBe(false);
    // Nothing reached the treasury, nothing stays credited, and what was served is the wallet's debt.
    expect(await chain.usdcBalance(net.treasury)).toBe(0n);
    const account = await walletAccount(net, payer.address);
    expect(await net.store.payments.debtOf(account)).toBe(BigInt(completion.usage.cost_units));
    expect((await net.store.summary(account)).balance).toBe(0n);
    // Reconciliation does not turn it into a settlement either.
    expect(await net.hub.payments!.reconcile(Date.now() + 60 * 60 * 1000)).toBe(0);
    expect(await net.store.payments.debtOf(account)).toBe(BigInt(completion.usage.cost_units));
  });

  it("never turns a settlement time-out into a second charge: the same payment retried is reconciled on-chain and served once", async () => {
    const net = await startPayNet();
    const payer = chain.accounts[3]!;
    const doc = await quote(net);
    const amount = BigInt(doc.accepts[0]!.amount);
    const before = await chain.usdcBalance(payer.address);
    net.beforeSettle.unknown = true;
    const header = await pay(payer, doc);
    const first = await post(net, { "payment-signature": header });
    expect(first.status).toBe(503);
    expect(((await first.json()) as { error: { code: string } }).error.code).toBe("payment.settlement_pending");
    // The money did move; the hub did not know. A retry with the same signature is served, not charged again.
    net.beforeSettle.unknown = false;
    const retry = await post(net, { "payment-signature": header });
    expect(retry.status).toBe(200);
    expect(await chain.usdcBalance(payer.address)).toBe(before - amount);
    expect(await chain.usdcBalance(net.treasury)).toBe(amount);
    // And it buys one request only.
    expect((await refusal(await post(net, { "payment-signature": header }))).code).toBe("payment.replayed");
  });
});

describe("through a facilitator", () => {
  it("verifies and settles over a facilitator's HTTP API (/supported, /verify, /settle), and maps its refusals to codes", async () => {
    // A small facilitator of our own in front of the chain, speaking the x402 facilitator HTTP API.
    const chainSettler = directSettler({
      publicClient: chain.publicClient,
      walletClient: chain.walletFor(chain.hubSigner),
      confirmTimeoutMs: 10_000,
    });
    const calls: string[] = [];
    const server = createServer((req, res) => {
      let raw = "";
      req.on("data", (d: Buffer) => (raw += d.toString()));
      req.on("end", () => {
        void (async () => {
          calls.push(req.url ?? "");
          const reply = (body: unknown) => {
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify(body));
          };
          if (req.url === "/supported") return reply({ kinds: [{ x402Version: 2, scheme: "exact", network: `eip155:${chain.chainId}` }] });
          const { paymentPayload, paymentRequirements } = JSON.parse(raw) as {
            paymentPayload: PaymentPayload;
            paymentRequirements: PaymentRequirements;
          };
          const ev = exactEvmPayload(paymentPayload);
          const input = {
            payment: paymentPayload,
            requirements: paymentRequirements,
            authorization: ev.authorization,
            signature: ev.signature as `0x${string}`,
          };
          if (req.url === "/verify") {
            const pre = await chainSettler.preflight(input);
            return reply(
              pre.ok
                ? { isValid: true, payer: ev.authorization.from }
                : {
                    isValid: false,
                    invalidReason:
                      pre.code === "payment.insufficient_funds"
                        ? "insufficient_funds"
                        : "invalid_exact_evm_payload_authorization_nonce_used",
                    payer: ev.authorization.from,
                  },
            );
          }
          const result = await chainSettler.settle(input);
          return reply(
            result.outcome === "settled"
              ? { success: true, transaction: result.transaction, network: paymentRequirements.network, payer: ev.authorization.from }
              : { success: false, errorReason: result.reason, transaction: "", network: paymentRequirements.network },
          );
        })();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const facilitator = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect((await facilitatorSupported(facilitator)).kinds[0]).toMatchObject({ scheme: "exact", network: `eip155:${chain.chainId}` });
      const net = await startPayNet({ settler: facilitatorSettler({ url: facilitator, publicClient: chain.publicClient }) });
      const payer = chain.accounts[3]!;
      const doc = await quote(net);
      const ok = await post(net, { "payment-signature": await pay(payer, doc) });
      expect(ok.status).toBe(200);
      expect(decodeSettlementResponse(ok.headers.get("payment-response")!).success).toBe(true);
      expect(await chain.usdcBalance(net.treasury)).toBe(BigInt(doc.accepts[0]!.amount));
      expect(calls).toEqual(["/supported", "/verify", "/settle"]);
      // The facilitator's refusal reason becomes the hub's code.
      const poor = await post(net, { "payment-signature": await pay(chain.accounts[8]!, doc) });
      expect(await refusal(poor)).toEqual({ status: 402, code: "payment.insufficient_funds" });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
