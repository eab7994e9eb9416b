/**
 * x402 beyond chat completions: the official `@x402/fetch` client pays an Anthropic
 * Messages request and a whole batch (one payment of the items' summed worst cases) on a
 * real EVM (ganache), and what the batch does not use stays with the wallet's account as
 * prepaid balance. The books and the treasury's on-chain balance agree after each test.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { decodePaymentRequired, decodeSettlementResponse } from "@srp/core";
import { MODEL, officialFetch, usePayNets, walletAccount } from "./support/paynet.js";

const nets = usePayNets("srp-x402-surfaces-");
let chain: ReturnType<typeof nets.chain>;
beforeAll(() => {
  chain = nets.chain();
});

describe("x402 on other surfaces", () => {
  it("pays an Anthropic Messages request with the official client", async () => {
    const net = await nets.start();
    const body = { model: MODEL, max_tokens: 8, messages: [{ role: "user", content: "Paid Messages request." }] };
    const unpaid = await fetch(`${net.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(unpaid.status).toBe(402);
    expect(decodePaymentRequired(unpaid.headers.get("payment-required")!).resource.url).toBe(`${net.url}/v1/messages`);
    const payer = chain.accounts[3]!;
    const res = await officialFetch(chain, payer)(`${net.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    const msg = (await res.json()) as { type: string; usage: { cost_units: string } };
    expect(msg.type).toBe("message");
    expect(decodeSettlementResponse(res.headers.get("payment-response")!).success).toBe(true);
    const summary = await net.store.summary(await walletAccount(net, payer.address));
    expect(summary.spent).toBe(BigInt(msg.usage.cost_units));
  });

  it("pays a whole batch with one payment; the unused part is the wallet's prepaid balance", async () => {
    const net = await nets.start();
    const requests = Array.from({ length: 5 }, (_, i) => ({ custom_id: `q${i}`, url: "/v1/chat/completions", body: { model: MODEL, max_tokens: 8, messages: [{ role: "user", content: `batch item ${i}` }] } }));
    const unpaid = await fetch(`${net.url}/v1/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ requests }) });
    expect(unpaid.status).toBe(402);
    const required = decodePaymentRequired(unpaid.headers.get("payment-required")!);
    const amount = BigInt(required.accepts[0]!.amount);
    const payer = chain.accounts[4]!;
    const before = await chain.usdcBalance(payer.address);
    const res = await officialFetch(chain, payer)(`${net.url}/v1/batch`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ requests }) });
    expect(res.status).toBe(202);
    expect(decodeSettlementResponse(res.headers.get("payment-response")!).success).toBe(true);
    expect(await chain.usdcBalance(payer.address)).toBe(before - amount);
    const { id } = (await res.json()) as { id: string };
    // A batch paid with x402 is read by its id (the wallet has no API key).
    let view: { status: string; charged_units: string; reserved_units: string; counts: { completed: number } } | undefined;
    for (let i = 0; i < 200; i++) {
      view = (await (await fetch(`${net.url}/v1/jobs/${id}`)).json()) as typeof view;
      if (view!.status === "completed" || view!.status === "failed") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(view!.status).toBe("completed");
    expect(view!.counts.completed).toBe(5);
    expect(BigInt(view!.reserved_units)).toBe(amount);
    const summary = await net.store.summary(await walletAccount(net, payer.address));
    expect(summary.spent).toBe(BigInt(view!.charged_units));
    expect(summary.balance).toBe(amount - BigInt(view!.charged_units));
    expect(summary.held).toBe(0n);
  });
});
