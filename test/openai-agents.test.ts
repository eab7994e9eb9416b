/**
 * The OpenAI Agents SDK (`@openai/agents`) against a hub: an agent with a function tool on
 * the Responses API model, through a billed hub on a SQLite ledger to an OpenAI-compatible
 * provider (the model simulator, translated to chat completions and back). The simulated
 * model calls the tool, the SDK runs it and sends its output back, and the model answers
 * from it; streamed and not. Set up as the hub's README shows it.
 */
import { Agent, OpenAIProvider, Runner, setTracingDisabled, tool } from "@openai/agents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyReceipt } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { AGENT_CREDITS, AGENT_MODEL, shownUsage, startAgentNet, type AgentNet } from "./support/agent-net.js";

let net: AgentNet;
let runner: Runner;
/** Cities the tool was called with, in order. */
const calls: string[] = [];

const weather = tool({
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true,
  execute: async (input: unknown) => {
    const { city } = input as { city: string };
    calls.push(city);
    return `Sunny in ${city}`;
  },
});
const agent = new Agent({ name: "weather", instructions: "Be brief.", model: AGENT_MODEL, tools: [weather] });

beforeAll(async () => {
  setTracingDisabled(true);
  net = await startAgentNet({ toolArguments: { get_weather: { city: "Paris" } } });
  runner = new Runner({
    modelProvider: new OpenAIProvider({ baseURL: `${net.url}/v1`, apiKey: net.consumer.key, useResponses: true }),
    tracingDisabled: true,
  });
});

afterAll(async () => {
  await net?.close();
});

async function receiptOf(id: string): Promise<Receipt> {
  const res = await fetch(`${net.url}/v1/receipts/${id}`, { headers: { authorization: `Bearer ${net.consumer.key}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { receipt: Receipt }).receipt;
}

/** Checks the Responses requests from `from` on: each answered 200 and billed what it showed. Returns their shown cost. */
async function billedAsShown(from: number, streamed: boolean): Promise<{ cost: bigint; input: number; output: number; turns: number }> {
  const turns = net.exchanges.slice(from).filter((x) => x.method === "POST" && x.path === "/v1/responses");
  let cost = 0n;
  let input = 0;
  let output = 0;
  for (const t of turns) {
    expect(t.status).toBe(200);
    expect(t.contentType).toContain(streamed ? "text/event-stream" : "application/json");
    const usage = shownUsage(t);
    expect(usage).toMatchObject({ measured: true, receipt_id: expect.any(String) });
    const receipt = await receiptOf(usage!.receipt_id!);
    expect(verifyReceipt(receipt, { hubId: net.hub.id })).toEqual([]);
    expect(usage!.cost_units).toBe(receipt.cost);
    cost += BigInt(usage!.cost_units);
    input += usage!.input_tokens;
    output += usage!.output_tokens;
  }
  return { cost, input, output, turns: turns.length };
}

describe("@openai/agents through the hub's Responses API", () => {
  it("runs the tool the model called and answers from its output (not streamed), billed as shown", async () => {
    const before = await net.store.summary(net.consumer.id);
    const from = net.exchanges.length;
    calls.length = 0;
    const result = await runner.run(agent, "What's the weather in Paris?");
    expect(calls).toEqual(["Paris"]);
    expect(result.finalOutput).toBe("The tool returned: Sunny in Paris");
    expect(result.lastResponseId).toMatch(/^resp_/);
    const billed = await billedAsShown(from, false);
    expect(billed.turns).toBe(2);
    // The SDK's own usage count is the billed one.
    expect(result.runContext.usage).toMatchObject({ requests: 2, inputTokens: billed.input, outputTokens: billed.output });
    const after = await net.store.summary(net.consumer.id);
    expect(after.spent - before.spent).toBe(billed.cost);
    expect(after).toMatchObject({ held: 0n, requests: before.requests + 2, balance: AGENT_CREDITS - after.spent });
    expect(await net.store.verify()).toEqual([]);
  }, 60_000);

  it("runs the same loop streamed: text deltas arrive and the tool runs once", async () => {
    const before = await net.store.summary(net.consumer.id);
    const from = net.exchanges.length;
    calls.length = 0;
    const stream = await runner.run(agent, "What's the weather in Paris?", { stream: true });
    let deltas = "";
    const seen = new Set<string>();
    for await (const event of stream) {
      seen.add(event.type);
      if (event.type === "raw_model_stream_event" && event.data.type === "output_text_delta") deltas += event.data.delta;
    }
    await stream.completed;
    expect(stream.error).toBeNull();
    expect(calls).toEqual(["Paris"]);
    expect(stream.finalOutput).toBe("The tool returned: Sunny in Paris");
    expect(deltas).toBe("The tool returned: Sunny in Paris");
    expect(seen).toContain("run_item_stream_event");
    const billed = await billedAsShown(from, true);
    expect(billed.turns).toBe(2);
    expect(stream.runContext.usage).toMatchObject({ requests: 2, inputTokens: billed.input, outputTokens: billed.output });
    const after = await net.store.summary(net.consumer.id);
    expect(after.spent - before.spent).toBe(billed.cost);
    expect(after).toMatchObject({ held: 0n, requests: before.requests + 2 });
    expect(await net.store.verify()).toEqual([]);
  }, 60_000);

  it("continues a conversation from the hub's stored response (previousResponseId)", async () => {
    const first = await runner.run(agent, "What's the weather in Paris?");
    const from = net.exchanges.length;
    const simFrom = net.sim.requests.length;
    calls.length = 0;
    const next = await runner.run(agent, "And tomorrow?", { previousResponseId: first.lastResponseId! });
    expect(calls).toEqual(["Paris"]);
    expect(next.finalOutput).toBe("The tool returned: Sunny in Paris");
    const sent = net.exchanges.slice(from).map((x) => JSON.parse(x.request) as { previous_response_id?: string; input: unknown });
    expect(sent).toHaveLength(2);
    expect(sent[0]!.previous_response_id).toBe(first.lastResponseId);
    // The SDK sent only the new items; the hub expanded the stored conversation for the model.
    const seen = net.sim.requests[simFrom] as { messages: { role: string; content?: unknown }[] };
    expect(seen.messages.filter((m) => m.role === "user").map((m) => m.content)).toEqual(["What's the weather in Paris?", "And tomorrow?"]);
    expect(seen.messages.some((m) => m.role === "tool" && m.content === "Sunny in Paris")).toBe(true);
    expect((await billedAsShown(from, false)).turns).toBe(2);
    expect(await net.store.verify()).toEqual([]);
  }, 60_000);
});
