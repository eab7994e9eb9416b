/**
 * Reasoning kept across translations, end to end over real sockets: the official
 * `@anthropic-ai/sdk` against a hub (SQLite ledger) whose chat instances are the model
 * simulator in reasoning mode, dressed as vLLM (`delta.reasoning_content`) and as Ollama
 * (`delta.reasoning`): thinking blocks arrive before the text, and the reasoning is billed as
 * output, charged exactly the countersigned receipt's cost (never refused as implausible);
 * and the official `openai` package against an instance forwarding an Anthropic key to the
 * Anthropic simulator with thinking: the reasoning arrives as `reasoning_content`.
 */
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity, verifyReceipt } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { createHub, SqliteStore, type Hub } from "@srp/hub";
import { anthropicBackend, createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { countTokens, startAnthropicSimulator, startSimulator, type AnthropicSimulator, type Simulator } from "@srp/provider/simulator";

const VLLM = "sim-reasoner-vllm";
const OLLAMA = "sim-reasoner-ollama";
const ALWAYS = "sim-reasoner-always";
const CLAUDE = "claude-sim-1";
const PRICE = { input: "1000000", output: "3000000" };
const SIGNUP = 100_000_000n;

let store: SqliteStore;
let hub: Hub;
let url: string;
let consumer: { id: string; key: string };
const sims: { close(): Promise<void> }[] = [];
const providers: Provider[] = [];
let vllm: Simulator;
let ollama: Simulator;
let claude: AnthropicSimulator;
let always: Simulator;

async function node(instances: Parameters<typeof createProvider>[0]["instances"]): Promise<void> {
  const account = await store.createAccount({ name: `provider-${providers.length}` });
  const { key } = await store.createApiKey(account.id);
  const p = createProvider({ hub: url, identity: generateIdentity(), account: key, reconnect: false, instances });
  providers.push(p);
  await p.ready();
}

beforeAll(async () => {
  store = new SqliteStore(":memory:", { signupCredits: SIGNUP });
  hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, drainTimeoutMs: 2000, reconnectAfterMs: 100 });
  ({ url } = await hub.listen({ port: 0 }));
  vllm = await startSimulator({ flavor: "vllm", models: [{ id: VLLM }] });
  ollama = await startSimulator({ flavor: "ollama", models: [{ id: OLLAMA }] });
  always = await startSimulator({ models: [{ id: ALWAYS }], reasoning: "high" });
  claude = await startAnthropicSimulator();
  sims.push(vllm, ollama, always, claude);
  const caps = { capabilities: ["chat" as const, "stream" as const] };
  await node([{ backend: openAICompatibleBackend({ baseUrl: vllm.baseUrl }), model: VLLM, price: PRICE, ...caps }]);
  await node([{ backend: openAICompatibleBackend({ baseUrl: ollama.baseUrl }), model: OLLAMA, price: PRICE, ...caps }]);
  await node([{ backend: openAICompatibleBackend({ baseUrl: always.baseUrl }), model: ALWAYS, price: PRICE, ...caps }]);
  await node([{ backend: anthropicBackend({ apiKey: "sk-ant-sim", baseUrl: claude.url }), model: CLAUDE, price: PRICE, ...caps }]);
  const account = await store.createAccount({ name: "consumer" });
  consumer = { id: account.id, key: (await store.createApiKey(account.id)).key };
});

afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await hub?.close();
  await Promise.all(sims.map((s) => s.close()));
  expect(await store.verify()).toEqual([]);
  await store.close();
});

type SrpUsage = { cost_units: string; receipt_id: string | null; measured: boolean; receipt_error?: string };

async function receiptOf(id: string): Promise<Receipt> {
  const res = await fetch(`${url}/v1/receipts/${id}`, { headers: { authorization: `Bearer ${consumer.key}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { receipt: Receipt }).receipt;
}

/** The receipt is countersigned (not refused as implausible), bills `outputTokens` as output, and the consumer was charged exactly its cost. */
async function expectBilled(usage: SrpUsage, outputTokens: number, spentBefore: bigint): Promise<void> {
  expect(usage.receipt_error).toBeUndefined();
  expect(usage.receipt_id).toEqual(expect.any(String));
  const receipt = await receiptOf(usage.receipt_id!);
  expect(receipt.hubSig).toEqual(expect.any(String));
  expect(verifyReceipt(receipt, { hubId: hub.id })).toEqual([]);
  expect(receipt.usage.completionTokens).toBe(outputTokens);
  expect(usage.cost_units).toBe(receipt.cost);
  expect((await store.summary(consumer.id)).spent - spentBefore).toBe(BigInt(receipt.cost));
}

const spent = async () => (await store.summary(consumer.id)).spent;

describe("Messages consumer, chat instance that reasons (SRP-CON-076..078, SRP-ATT-025)", () => {
  const anthropic = () => new Anthropic({ baseURL: url, apiKey: consumer.key, maxRetries: 0 });
  const thinking = { type: "enabled" as const, budget_tokens: 1024 };

  for (const [label, model, member, tokens] of [
    ["vLLM flavour (reasoning_content)", VLLM, "reasoning_content", 8],
    ["Ollama flavour (reasoning)", OLLAMA, "reasoning", 8],
  ] as const) {
    it(`${label}, streamed: thinking_delta events in a thinking block before the text; billed incl. the reasoning`, async () => {
      const before = await spent();
      const stream = anthropic().messages.stream({
        model,
        max_tokens: 1100,
        thinking,
        messages: [{ role: "user", content: "Why is the sky blue?" }],
      });
      const kinds: string[] = [];
      let thought = "";
      let usage: unknown;
      stream.on("streamEvent", (e) => {
        if (e.type === "message_delta") usage = e.usage; // the SDK's snapshot keeps only Anthropic's members
        if (e.type === "content_block_delta") kinds.push(e.delta.type);
        if (e.type === "content_block_delta" && e.delta.type === "thinking_delta") thought += e.delta.thinking;
      });
      const msg = await stream.finalMessage();
      expect(msg.content.map((b) => b.type)).toEqual(["thinking", "text"]);
      const block = msg.content[0] as Anthropic.ThinkingBlock;
      expect(block.thinking).toBe(thought);
      expect(countTokens(thought)).toBe(tokens);
      expect(block.signature).toBe("");
      expect(kinds[0]).toBe("thinking_delta");
      expect(kinds.indexOf("signature_delta")).toBeLessThan(kinds.indexOf("text_delta"));
      // The hub sent the effort for a 1024-token budget, in the member the server reads.
      const seen = (model === VLLM ? vllm : ollama).requests.at(-1)!;
      expect(seen.reasoning_effort).toBe("low");
      expect(msg.usage.output_tokens).toBe(1100);
      await expectBilled(usage as SrpUsage, 1100, before);
      void member;
    });
  }

  it("non-streamed: the thinking block comes first; billed incl. the reasoning", async () => {
    const before = await spent();
    const { data: msg } = await anthropic()
      .messages.create({ model: OLLAMA, max_tokens: 1100, thinking, messages: [{ role: "user", content: "Why?" }] })
      .withResponse();
    expect(msg.content.map((b) => b.type)).toEqual(["thinking", "text"]);
    expect(countTokens((msg.content[0] as Anthropic.ThinkingBlock).thinking)).toBe(8);
    await expectBilled(msg.usage as unknown as SrpUsage, 1100, before);
  });

  it("a consumer that did not ask for thinking is still shown the reasoning it is billed for, and the receipt stays plausible (SRP-CON-078)", async () => {
    // 32 tokens of reasoning and 1 of text: only the measured reasoning makes 33 output tokens plausible.
    for (const stream of [false, true]) {
      const before = await spent();
      const body = { model: ALWAYS, max_tokens: 33, messages: [{ role: "user" as const, content: "Hi" }] };
      let usage: unknown;
      const msg = stream
        ? await anthropic()
            .messages.stream(body)
            .on("streamEvent", (e) => {
              if (e.type === "message_delta") usage = e.usage;
            })
            .finalMessage()
        : await anthropic().messages.create(body);
      expect(msg.content.map((b) => b.type)).toEqual(["thinking", "text"]);
      expect(countTokens((msg.content[0] as Anthropic.ThinkingBlock).thinking)).toBe(32);
      expect(msg.usage.output_tokens).toBe(33);
      expect(always.requests.at(-1)).not.toHaveProperty("reasoning_effort");
      await expectBilled((usage ?? msg.usage) as SrpUsage, 33, before);
    }
  });
});

describe("chat consumer, instance forwarding an Anthropic key (SRP-CON-080)", () => {
  const openai = () => new OpenAI({ baseURL: `${url}/v1`, apiKey: consumer.key, maxRetries: 0 });

  it("reasoning_effort becomes thinking; the thinking streams back as reasoning_content, and is billed", async () => {
    const before = await spent();
    const stream = await openai().chat.completions.create({
      model: CLAUDE,
      max_tokens: 2048,
      reasoning_effort: "low",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "Why?" }],
    });
    let reasoning = "";
    let content = "";
    let usage: (OpenAI.CompletionUsage & SrpUsage) | undefined;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      if (delta?.reasoning_content) {
        expect(content).toBe(""); // reasoning first
        reasoning += delta.reasoning_content;
      }
      if (delta?.content) content += delta.content;
      if (chunk.usage) usage = chunk.usage as OpenAI.CompletionUsage & SrpUsage;
    }
    expect(claude.requests.at(-1)).toMatchObject({ thinking: { type: "enabled", budget_tokens: 1024 } });
    expect(countTokens(reasoning)).toBe(16);
    expect(content.length).toBeGreaterThan(0);
    await expectBilled(usage!, 2048, before);

    const whole = await openai().chat.completions.create({
      model: CLAUDE,
      max_tokens: 2048,
      reasoning_effort: "medium",
      messages: [{ role: "user", content: "Why?" }],
    });
    expect(claude.requests.at(-1)).toMatchObject({ thinking: { type: "enabled", budget_tokens: 2047 } });
    expect(countTokens((whole.choices[0]!.message as { reasoning_content?: string }).reasoning_content!)).toBe(16);
  });
});
