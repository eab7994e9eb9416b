/**
 * x402 beyond chat completions: the official `@x402/fetch` client pays an Anthropic
 * Messages request, a Responses request (its turn is not stored), a whole batch (one payment of the items' summed worst cases) and an async run on a
 * real EVM (ganache), and what the batch does not use stays with the wallet's account as
 * prepaid balance. The books and the treasury's on-chain balance agree after each test.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { decodePaymentRequired, decodeSettlementResponse } from "@srp/core/x402";
import { MODEL, officialFetch, payHeader, quote, usePayNets, walletAccount } from "./support/paynet.js";
import { generateIdentity } from "@srp/core";
import { cogBackend, createProvider } from "@srp/provider";

const nets = usePayNets("srp-x402-surfaces-");
let chain: ReturnType<typeof nets.chain>;
beforeAll(() => {
  chain = nets.chain();
});

describe("x402 on other surfaces", () => {
  it("pays an Anthropic Messages request with the official client", async () => {
    const net = await nets.start();
    const body = { model: MODEL, max_tokens: 8, messages: [{ role: "user", content: "Paid Messages request." }] };
    const unpaid = await fetch(`${net.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(unpaid.status).toBe(402);
    expect(decodePaymentRequired(unpaid.headers.get("payment-required")!).resource.url).toBe(`${net.url}/v1/messages`);
    const payer = chain.accounts[3]!;
    const res = await officialFetch(chain, payer)(`${net.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    const msg = (await res.json()) as { type: string; usage: { cost_units: string } };
    expect(msg.type).toBe("message");
    expect(decodeSettlementResponse(res.headers.get("payment-response")!).success).toBe(true);
    const summary = await net.store.summary(await walletAccount(net, payer.address));
    expect(summary.spent).toBe(BigInt(msg.usage.cost_units));
  });

  it("pays a Responses request, whose turn is not stored (an x402 payer could never continue it)", async () => {
    const net = await nets.start();
    const body = { model: MODEL, max_output_tokens: 8, input: "Paid Responses request." };
    const payer = chain.accounts[3]!;
    const res = await officialFetch(chain, payer)(`${net.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const answer = (await res.json()) as { id: string; object: string; status: string; store: boolean; usage: { cost_units: string } };
    expect(answer).toMatchObject({ object: "response", store: false });
    const account = await walletAccount(net, payer.address);
    expect((await net.store.summary(account)).spent).toBe(BigInt(answer.usage.cost_units));
    // Nothing kept, not even for the wallet's account once it has an API key.
    expect(await net.hub.responses.get(account, answer.id)).toBeUndefined();
    const { key } = await net.store.createApiKey(account);
    const read = await fetch(`${net.url}/v1/responses/${answer.id}`, { headers: { authorization: `Bearer ${key}` } });
    expect(read.status).toBe(404);
  });

  it("pays a whole batch with one payment; the unused part is the wallet's prepaid balance", async () => {
    const net = await nets.start();
    const requests = Array.from({ length: 5 }, (_, i) => ({
      custom_id: `q${i}`,
      url: "/v1/chat/completions",
      body: { model: MODEL, max_tokens: 8, messages: [{ role: "user", content: `batch item ${i}` }] },
    }));
    const unpaid = await fetch(`${net.url}/v1/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ requests }),
    });
    expect(unpaid.status).toBe(402);
    const required = decodePaymentRequired(unpaid.headers.get("payment-required")!);
    const amount = BigInt(required.accepts[0]!.amount);
    const payer = chain.accounts[4]!;
    const before = await chain.usdcBalance(payer.address);
    const res = await officialFetch(chain, payer)(`${net.url}/v1/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ requests }),
    });
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

  it("pays a run (an async job) with one payment settled before it is admitted; what it does not use is prepaid balance", async () => {
    const net = await nets.start({ x402: { settle: "after" } });
    const cog = cogBackend({ baseUrl: net.sim.url });
    const runner = createProvider({
      hub: net.url,
      identity: generateIdentity(),
      account: net.owner.key,
      reconnect: false,
      instances: [
        {
          backend: cog,
          model: "sim-upscaler",
          io: await cog.io!(),
          price: { input: "0", output: "0", second: "1000000000", run: "5000000000" },
        },
      ],
    });
    net.extra.push(runner);
    await runner.ready();
    const body = { model: "sim-upscaler", input: { prompt: "paid run" }, max_seconds: 60 };
    const unpaid = await fetch(`${net.url}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(unpaid.status).toBe(402);
    const amount = BigInt(decodePaymentRequired(unpaid.headers.get("payment-required")!).accepts[0]!.amount);
    // One run and 60 s at the instance's prices.
    expect(amount).toBe(5_000n + 60_000n);
    const payer = chain.accounts[4]!;
    const before = await chain.usdcBalance(payer.address);
    const res = await officialFetch(chain, payer)(`${net.url}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    // Settled before the job runs, whatever the hub's mode: the job runs on money that has arrived.
    expect(decodeSettlementResponse(res.headers.get("payment-response")!).success).toBe(true);
    expect(await chain.usdcBalance(payer.address)).toBe(before - amount);
    const { id } = (await res.json()) as { id: string };
    let view: { status: string; cost_units: string; reserved_units: string; artifacts: { url: string }[] } | undefined;
    for (let i = 0; i < 300; i++) {
      // A job paid with x402 is read by its id (the wallet has no API key).
      view = (await (await fetch(`${net.url}/v1/jobs/${id}`)).json()) as typeof view;
      if (view!.status === "completed" || view!.status === "failed") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(view!.status).toBe("completed");
    expect(BigInt(view!.reserved_units)).toBe(amount);
    expect((await fetch(view!.artifacts[0]!.url)).status).toBe(200);
    const summary = await net.store.summary(await walletAccount(net, payer.address));
    expect(summary.spent).toBe(BigInt(view!.cost_units));
    expect(summary.balance).toBe(amount - BigInt(view!.cost_units));
    expect(summary.held).toBe(0n);
  });

  it("a request paid to settle after serving waits for a slot only while its authorization can still settle (SRP-PAY-013)", async () => {
    const net = await nets.start({ x402: { settle: "after", minValiditySeconds: 61 } });
    // Every slot of the only instance (8) is held by paid requests the simulator never answers.
    const body = { model: MODEL, max_tokens: 8, messages: [{ role: "user", content: "paid while busy" }] };
    const required = await quote(net, "/v1/chat/completions", body);
    net.sim.setFault({ kind: "hang" }, 8);
    const ac = new AbortController();
    const holder = chain.accounts[4]!;
    const held: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++) {
      const paid = await payHeader(chain, holder, required);
      held.push(
        fetch(`${net.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "payment-signature": paid },
          body: JSON.stringify(body),
          signal: ac.signal,
        }).catch((e: unknown) => e),
      );
    }
    await vi.waitFor(() => expect(net.sim.requests.length).toBe(8), { timeout: 10_000, interval: 10 });
    // The authorization is valid for 63 s: 3 s before the hub must settle it. The consumer would wait 30 s.
    const payer = chain.accounts[3]!;
    const signature = await payHeader(chain, payer, required, { validBefore: BigInt(Math.floor(Date.now() / 1000) + 63) });
    const res = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "payment-signature": signature, "x-srp-queue-timeout-ms": "30000" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("job.no_capacity");
    // Not served: not settled, the authorization given up.
    expect(decodeSettlementResponse(res.headers.get("payment-response")!).success).toBe(false);
    expect(net.hub.waiting.size(MODEL)).toBe(0);
    ac.abort();
    await Promise.all(held);
    const wallet = await walletAccount(net, payer.address);
    await vi.waitFor(async () => expect(await net.store.summary(wallet)).toMatchObject({ held: 0n, spent: 0n }), {
      timeout: 5000,
      interval: 20,
    });
  });
});
