/**
 * The Anthropic Messages surface with the official `@anthropic-ai/sdk`: translated to
 * chat completions for an OpenAI-compatible provider (the model simulator), and served
 * natively by a provider forwarding an Anthropic key (the Anthropic simulator); plus the
 * official `openai` package reaching the Anthropic-backed instance.
 */
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyReceipt } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { anthropicBackend, createProvider } from "@srp/provider";
import { generateIdentity } from "@srp/core";
import { startAnthropicSimulator, type AnthropicSimulator } from "@srp/provider/simulator";
import { KEY, MODEL, startNet, type Net } from "./helpers.js";

const CLAUDE = "claude-sim-1";

const weatherTool = {
  name: "get_weather",
  description: "The weather in a city",
  input_schema: {
    type: "object" as const,
    properties: { city: { type: "string" }, unit: { type: "string", enum: ["c", "f"] } },
    required: ["city", "unit"],
  },
};

let net: Net;
let claudeSim: AnthropicSimulator;
let anthropic: Anthropic;

beforeAll(async () => {
  net = await startNet();
  const sim = await net.sim();
  await net.addProvider(sim, { capabilities: ["chat", "stream", "tools", "vision"] });
  claudeSim = await startAnthropicSimulator();
  const p = createProvider({
    hub: net.url,
    identity: generateIdentity(),
    account: KEY,
    reconnect: false,
    instances: [
      {
        backend: anthropicBackend({ apiKey: "sk-ant-sim", baseUrl: claudeSim.url }),
        model: CLAUDE,
        price: { input: "3000000", output: "15000000" },
        capabilities: ["chat", "stream", "tools"],
      },
    ],
  });
  net.providers.push(p);
  await p.ready();
  anthropic = new Anthropic({ baseURL: net.url, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await net.close();
  await claudeSim.close();
});

async function receiptOf(id: string): Promise<Receipt> {
  const res = await fetch(`${net.url}/v1/receipts/${id}`, { headers: { authorization: `Bearer ${KEY}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { receipt: Receipt }).receipt;
}

type SrpUsage = { cost: string; cost_units: string; receipt_id: string | null; measured: boolean };

describe("Anthropic Messages translated to an OpenAI-compatible provider", () => {
  it("answers a non-streamed request in Anthropic's format, with usage, cost and a receipt", async () => {
    const { data: msg, response } = await anthropic.messages
      .create({ model: MODEL, max_tokens: 20, system: "Be brief.", messages: [{ role: "user", content: "Hello there" }] })
      .withResponse();
    expect(msg.type).toBe("message");
    expect(msg.role).toBe("assistant");
    expect(msg.model).toBe(MODEL);
    expect(msg.id).toMatch(/^msg_/);
    expect(msg.content).toHaveLength(1);
    expect(msg.content[0]!.type).toBe("text");
    expect((msg.content[0] as Anthropic.TextBlock).text.length).toBeGreaterThan(0);
    expect(msg.stop_reason).toBe("max_tokens");
    expect(msg.usage.input_tokens).toBeGreaterThan(0);
    expect(msg.usage.output_tokens).toBe(20);
    const ext = msg.usage as unknown as SrpUsage;
    const receipt = await receiptOf(response.headers.get("x-srp-receipt")!);
    expect(ext.receipt_id).toBe(receipt.jobId);
    expect(ext.cost_units).toBe(receipt.cost);
    expect(receipt.usage.completionTokens).toBe(20);
    expect(verifyReceipt(receipt, { hubId: net.hub.id })).toEqual([]);
    // The simulator got the system prompt as a chat system message.
    const seen = net.sims[0]!.requests.at(-1)!;
    expect((seen.messages as { role: string }[])[0]).toEqual({ role: "system", content: "Be brief." });
  });

  it("streams the real event sequence and the SDK assembles the same message", async () => {
    const body = { model: MODEL, max_tokens: 12, messages: [{ role: "user" as const, content: "Stream please" }] };
    const whole = await anthropic.messages.create(body);
    const stream = anthropic.messages.stream(body);
    const types: string[] = [];
    let delta: Anthropic.MessageDeltaEvent | undefined;
    stream.on("streamEvent", (e) => {
      types.push(e.type);
      if (e.type === "message_delta") delta = e;
    });
    const final = await stream.finalMessage();
    expect(types[0]).toBe("message_start");
    expect(types[1]).toBe("content_block_start");
    expect(types.filter((t) => t === "content_block_delta").length).toBeGreaterThan(1);
    expect(types.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    expect((final.content[0] as Anthropic.TextBlock).text).toBe((whole.content[0] as Anthropic.TextBlock).text);
    expect(final.stop_reason).toBe("max_tokens");
    expect(final.usage.output_tokens).toBe(12);
    expect(final.usage.input_tokens).toBe(whole.usage.input_tokens);
    // The cost rides on message_delta's usage (the SDK's snapshot keeps only Anthropic's own counters).
    const ext = delta!.usage as unknown as SrpUsage;
    expect(ext.measured).toBe(true);
    const receipt = await receiptOf(ext.receipt_id!);
    expect(receipt.cost).toBe(ext.cost_units);
  });

  it("runs a multi-step tool-use loop like Claude Code's, streamed and not", async () => {
    for (const streamed of [false, true]) {
      const messages: Anthropic.MessageParam[] = [
        { role: "user", content: [{ type: "text", text: "Weather in Paris?", cache_control: { type: "ephemeral" } }] },
      ];
      const params = {
        model: MODEL,
        max_tokens: 64,
        system: [{ type: "text" as const, text: "You are a coding agent.", cache_control: { type: "ephemeral" as const } }],
        tools: [weatherTool],
        metadata: { user_id: "user_123" },
      };
      const first = streamed
        ? await anthropic.messages.stream({ ...params, messages }).finalMessage()
        : await anthropic.messages.create({ ...params, messages });
      expect(first.stop_reason).toBe("tool_use");
      const call = first.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock;
      expect(call.name).toBe("get_weather");
      expect(call.input).toEqual({ city: "example city", unit: "c" });
      messages.push({ role: "assistant", content: first.content });
      messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "18 degrees and sunny" }] });
      const second = streamed
        ? await anthropic.messages.stream({ ...params, messages }).finalMessage()
        : await anthropic.messages.create({ ...params, messages });
      expect(second.stop_reason).toBe("end_turn");
      expect((second.content[0] as Anthropic.TextBlock).text).toBe("The tool returned: 18 degrees and sunny");
      // What the OpenAI-compatible provider saw: the assistant's tool call and the tool's answer.
      const seen = net.sims[0]!.requests.at(-1)! as { messages: Record<string, unknown>[]; tools: unknown[]; user?: string };
      expect(seen.messages.at(-2)).toMatchObject({
        role: "assistant",
        tool_calls: [{ id: call.id, type: "function", function: { name: "get_weather", arguments: JSON.stringify(call.input) } }],
      });
      expect(seen.messages.at(-1)).toEqual({ role: "tool", tool_call_id: call.id, content: "18 degrees and sunny" });
      expect(seen.tools).toEqual([
        { type: "function", function: { name: "get_weather", description: "The weather in a city", parameters: weatherTool.input_schema } },
      ]);
      expect(seen.user).toBe("user_123");
    }
  });

  it("ends a stream that fails after content with an error event, never a clean message_stop", async () => {
    const sim = net.sims[0]!;
    sim.setFault({ kind: "drop_mid_stream", afterTokens: 3 }, 1);
    const raw = await fetch(`${net.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, max_tokens: 20, stream: true, messages: [{ role: "user", content: "fail me" }] }),
    });
    const text = await raw.text();
    expect(text).toContain("event: content_block_delta");
    expect(text).not.toContain("message_stop");
    expect(text.trimEnd().split("\n\n").at(-1)).toMatch(
      /^event: error\ndata: \{"type":"error","error":\{"type":"api_error",.*"code":"job.stream_interrupted"\}\}$/,
    );
    sim.setFault({ kind: "drop_mid_stream", afterTokens: 3 }, 1);
    const failed = await anthropic.messages
      .stream({ model: MODEL, max_tokens: 20, messages: [{ role: "user", content: "fail me" }] })
      .finalMessage()
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(Anthropic.APIError);
  });

  it("lists the catalog as an Anthropic models page too", async () => {
    const page = await anthropic.models.list();
    const ids = page.data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining([MODEL, CLAUDE]));
    const m = page.data.find((x) => x.id === MODEL)!;
    expect(m.type).toBe("model");
    expect(m.display_name).toBe(MODEL);
    expect(Number.isNaN(Date.parse(m.created_at))).toBe(false);
  });

  it("counts tokens for free", async () => {
    const r = await anthropic.messages.countTokens({ model: MODEL, messages: [{ role: "user", content: "How many tokens is this?" }] });
    expect(r.input_tokens).toBeGreaterThan(0);
  });

  it("answers errors in Anthropic's shape, which the SDK turns into its error classes", async () => {
    const bad = new Anthropic({ baseURL: net.url, apiKey: "srp_wrong_key_000000000000", maxRetries: 0 });
    const auth = await bad.messages
      .create({ model: MODEL, max_tokens: 5, messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(auth).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((auth as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: "error",
      error: { type: "authentication_error", code: "api.unauthorized" },
    });
    const unknown = await anthropic.messages
      .create({ model: "no-such-model", max_tokens: 5, messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(Anthropic.NotFoundError);
    const res = await fetch(`${net.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "x" }] }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error", code: "api.invalid_body" } });
    const server = await anthropic.messages
      .create({
        model: MODEL,
        max_tokens: 5,
        messages: [
          { role: "user", content: [{ type: "document", source: { type: "base64", media_type: "application/pdf", data: "JVBERi0=" } }] },
        ],
      })
      .catch((e: unknown) => e);
    expect(server).toBeInstanceOf(Anthropic.BadRequestError);
  });
});

describe("Anthropic Messages served natively by a forwarded Anthropic key", () => {
  it("passes the body and the event stream through unchanged, with cost added to usage", async () => {
    const before = claudeSim.requests.length;
    const params = {
      model: CLAUDE,
      max_tokens: 30,
      system: "Native.",
      messages: [{ role: "user" as const, content: "Hi Claude" }],
      top_k: 5,
    };
    const msg = await anthropic.messages.create(params);
    expect(claudeSim.requests.length).toBe(before + 1);
    expect(claudeSim.requests.at(-1)).toMatchObject({ system: "Native.", top_k: 5, max_tokens: 30 });
    expect(msg.id).toMatch(/^msg_sim/);
    const receipt = await receiptOf((msg.usage as unknown as SrpUsage).receipt_id!);
    expect(receipt.usage).toMatchObject({
      promptTokens: msg.usage.input_tokens,
      completionTokens: msg.usage.output_tokens,
      measured: true,
    });
    expect((msg.usage as unknown as SrpUsage).cost_units).toBe(receipt.cost);

    const types: string[] = [];
    let delta: Anthropic.MessageDeltaEvent | undefined;
    const stream = anthropic.messages.stream(params);
    stream.on("streamEvent", (e) => {
      types.push(e.type);
      if (e.type === "message_delta") delta = e;
    });
    const final = await stream.finalMessage();
    expect(final.content).toEqual(msg.content);
    expect(final.usage.output_tokens).toBe(msg.usage.output_tokens);
    expect(types.at(-1)).toBe("message_stop");
    const ext = delta!.usage as unknown as SrpUsage;
    expect((await receiptOf(ext.receipt_id!)).cost).toBe(ext.cost_units);
    // On the wire: event names, a ping after message_start (the SDK skips pings), and the end.
    const raw = await fetch(`${net.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ ...params, stream: true }),
    });
    expect(raw.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const text = await raw.text();
    expect(text.startsWith("event: message_start\ndata: ")).toBe(true);
    expect(text.indexOf("event: ping\n")).toBeGreaterThan(0);
    expect(text.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n')).toBe(true);
  });

  it("sends what only the Messages API has (server tools, PDFs) to native instances only, and refuses it where there are none", async () => {
    const webSearch = { type: "web_search_20250305", name: "web_search", max_uses: 2 } as unknown as Anthropic.ToolUnion;
    const native = await anthropic.messages.create({
      model: CLAUDE,
      max_tokens: 20,
      tools: [webSearch],
      messages: [{ role: "user", content: "search" }],
    });
    expect(native.type).toBe("message");
    expect((claudeSim.requests.at(-1)!.tools as unknown[])[0]).toEqual({ type: "web_search_20250305", name: "web_search", max_uses: 2 });
    const refused = await anthropic.messages
      .create({ model: MODEL, max_tokens: 20, tools: [webSearch], messages: [{ role: "user", content: "search" }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect(String((refused as Error).message)).toMatch(/only an instance that runs the Messages API itself/);
  });

  it("forwards the request's anthropic-beta features to a native instance's upstream", async () => {
    await anthropic.messages.create(
      { model: CLAUDE, max_tokens: 5, messages: [{ role: "user", content: "beta" }] },
      { headers: { "anthropic-beta": "context-1m-2025-08-07, fine-grained-tool-streaming-2025-05-14,not valid!" } },
    );
    expect(claudeSim.headers.at(-1)!["anthropic-beta"]).toBe("context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14");
    await anthropic.messages.create({ model: CLAUDE, max_tokens: 5, messages: [{ role: "user", content: "no beta" }] });
    expect(claudeSim.headers.at(-1)!["anthropic-beta"]).toBeUndefined();
  });

  it("drops the unsigned thinking blocks of translated answers from a native request's history, keeps signed ones (SRP-CON-079)", async () => {
    const thinking = { type: "enabled" as const, budget_tokens: 1024 };
    const signed = await anthropic.messages.create({
      model: CLAUDE,
      max_tokens: 1100,
      thinking,
      messages: [{ role: "user", content: "First?" }],
    });
    expect(signed.content[0]).toMatchObject({ type: "thinking" });
    expect((signed.content[0] as Anthropic.ThinkingBlock).signature).not.toBe("");
    // A translated answer (SRP-CON-076) carries thinking with an empty signature, which Anthropic refuses.
    const messages: Anthropic.MessageParam[] = [
      { role: "user", content: "Earlier?" },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "Translated thought.", signature: "" },
          { type: "text", text: "Earlier answer." },
        ],
      },
      { role: "user", content: "First?" },
      { role: "assistant", content: signed.content },
      { role: "user", content: "And now?" },
    ];
    const direct = await fetch(`${claudeSim.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": "sk-ant-sim", "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: CLAUDE, max_tokens: 1100, thinking, messages }),
    });
    expect(direct.status).toBe(400);
    for (const stream of [false, true]) {
      const before = claudeSim.requests.length;
      const msg = stream
        ? await anthropic.messages.stream({ model: CLAUDE, max_tokens: 1100, thinking, messages }).finalMessage()
        : await anthropic.messages.create({ model: CLAUDE, max_tokens: 1100, thinking, messages });
      expect(msg.content.map((b) => b.type)).toEqual(["thinking", "text"]);
      expect(claudeSim.requests.length).toBe(before + 1);
      const sent = claudeSim.requests.at(-1)!.messages as Anthropic.MessageParam[];
      expect(sent).toHaveLength(5);
      expect(sent[1]!.content).toEqual([{ type: "text", text: "Earlier answer." }]);
      expect(sent[3]!.content).toEqual(JSON.parse(JSON.stringify(signed.content)));
      expect(JSON.stringify(sent)).not.toContain("Translated thought.");
    }
  });

  it("runs a native tool-use loop", async () => {
    const messages: Anthropic.MessageParam[] = [{ role: "user", content: "Weather?" }];
    const first = await anthropic.messages.stream({ model: CLAUDE, max_tokens: 50, tools: [weatherTool], messages }).finalMessage();
    expect(first.stop_reason).toBe("tool_use");
    const call = first.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock;
    expect(call.input).toEqual({ city: "example city", unit: "c" });
    messages.push(
      { role: "assistant", content: first.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "rain" }] },
    );
    const second = await anthropic.messages.create({ model: CLAUDE, max_tokens: 50, tools: [weatherTool], messages });
    expect(second.content).toEqual([{ type: "text", text: "The tool returned: rain" }]);
  });

  it("is reachable from the official openai package too (translated on the node)", async () => {
    const openai = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const r = await openai.chat.completions.create({ model: CLAUDE, max_tokens: 10, messages: [{ role: "user", content: "Hello" }] });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(r.choices[0]!.finish_reason).toBe("length");
    const sent = claudeSim.requests.at(-1)!;
    expect(sent).toMatchObject({ model: CLAUDE, max_tokens: 10, messages: [{ role: "user", content: [{ type: "text", text: "Hello" }] }] });
    const stream = await openai.chat.completions.create({
      model: CLAUDE,
      max_tokens: 10,
      stream: true,
      messages: [{ role: "user", content: "Hello" }],
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? "";
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(r.choices[0]!.message.content);
    expect(usage?.completion_tokens).toBe(r.usage?.completion_tokens);
  });
});
