/**
 * The OpenAI Responses surface and legacy completions with the official `openai` package:
 * translated to chat completions for an OpenAI-compatible provider (the model simulator),
 * and served natively by a provider whose backend runs the Responses API (the vLLM-flavoured
 * simulator); stored responses continued by `previous_response_id`; billed = shown.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity, verifyReceipt } from "@srp/core";
import { checkConsumerBody, CompletionObject, ResponseObject, type Receipt } from "@srp/core/schema";
import { createHub, SqliteStore } from "@srp/hub";
import { createProvider, openAICompatibleBackend } from "@srp/provider";
import { startSimulator } from "@srp/provider/simulator";
import { KEY, MODEL, startNet, type Net } from "./helpers.js";

const NATIVE = "sim-vllm-native";
const THINKER = "sim-reasoner";

const weatherTool: OpenAI.Responses.FunctionTool = {
  type: "function",
  name: "get_weather",
  description: "The weather in a city",
  strict: true,
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, unit: { type: "string", enum: ["c", "f"] } },
    required: ["city", "unit"],
    additionalProperties: false,
  },
};

type SrpUsage = { cost: string; cost_units: string; receipt_id: string | null; measured: boolean };

let net: Net;
let openai: OpenAI;

beforeAll(async () => {
  net = await startNet();
  const sim = await net.sim();
  await net.addProvider(sim, { capabilities: ["chat", "stream", "tools", "vision", "json_mode"] });
  const vllm = await net.sim({ flavor: "vllm", models: [{ id: NATIVE }] });
  await net.addProvider(vllm, {
    model: NATIVE,
    backend: openAICompatibleBackend({ baseUrl: vllm.baseUrl, kind: "vllm" }),
    capabilities: ["chat", "stream", "tools"],
  });
  const thinker = await net.sim({ reasoning: true, models: [{ id: THINKER }] });
  await net.addProvider(thinker, { model: THINKER, capabilities: ["chat", "stream", "reasoning"] });
  openai = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await net.close();
});

async function receiptOf(id: string): Promise<Receipt> {
  const res = await fetch(`${net.url}/v1/receipts/${id}`, { headers: { authorization: `Bearer ${KEY}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { receipt: Receipt }).receipt;
}

/** The raw SSE events of a streamed request: `event:` name and parsed `data:`. */
async function rawEvents(body: Record<string, unknown>): Promise<{ event: string; data: Record<string, unknown> }[]> {
  const res = await fetch(`${net.url}/v1/responses`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ ...body, stream: true }),
  });
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const text = await res.text();
  return text
    .trim()
    .split("\n\n")
    .map((frame) => {
      const event = /^event: (.*)$/m.exec(frame)?.[1] ?? "";
      const data = JSON.parse(/^data: (.*)$/m.exec(frame)![1]!) as Record<string, unknown>;
      return { event, data };
    });
}

describe("Responses translated to chat completions", () => {
  it("answers responses.create with a Response object, usage, cost and a receipt", async () => {
    const { data: r, response } = await openai.responses
      .create({ model: MODEL, instructions: "Be brief.", input: "Hello there", max_output_tokens: 20, metadata: { run: "1" } })
      .withResponse();
    expect(r.object).toBe("response");
    expect(r.id).toMatch(/^resp_/);
    expect(r.model).toBe(MODEL);
    expect(r.status).toBe("incomplete");
    expect(r.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(r.instructions).toBe("Be brief.");
    expect(r.metadata).toEqual({ run: "1" });
    expect(r.max_output_tokens).toBe(20);
    expect(r.output).toHaveLength(1);
    const msg = r.output[0] as OpenAI.Responses.ResponseOutputMessage;
    expect(msg.type).toBe("message");
    expect(msg.id).toMatch(/^msg_/);
    expect(msg.content[0]!.type).toBe("output_text");
    expect(r.output_text.length).toBeGreaterThan(0);
    // The answer matches the ResponseObject schema of openapi.json.
    expect(checkConsumerBody(ResponseObject, r)).toBeUndefined();
    expect(r.usage!.output_tokens).toBe(20);
    expect(r.usage!.input_tokens).toBeGreaterThan(0);
    expect(r.usage!.total_tokens).toBe(r.usage!.input_tokens + 20);
    expect(r.usage!.input_tokens_details).toEqual({ cached_tokens: expect.any(Number) });
    expect(r.usage!.output_tokens_details).toEqual({ reasoning_tokens: 0 });
    const ext = r.usage as unknown as SrpUsage;
    const receipt = await receiptOf(response.headers.get("x-srp-receipt")!);
    expect(ext.receipt_id).toBe(receipt.jobId);
    expect(ext.cost_units).toBe(receipt.cost);
    expect(verifyReceipt(receipt, { hubId: net.hub.id })).toEqual([]);
    expect(receipt.usage.completionTokens).toBe(20);
    // The simulator got a chat body: instructions as the system message, the limit as max_completion_tokens.
    const seen = net.sims[0]!.requests.at(-1)!;
    expect(seen.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hello there" },
    ]);
    expect(seen.max_completion_tokens).toBe(20);
    expect(seen.store).toBeUndefined();
  });

  it("streams exactly the event sequence the SDK accumulates, numbered, ending in response.completed with the cost", async () => {
    const body = { model: MODEL, input: "Stream please", max_output_tokens: 12 };
    const events = await rawEvents(body);
    const types = events.map((e) => e.data.type);
    expect(events.every((e) => e.event === e.data.type)).toBe(true);
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    expect(types.slice(0, 4)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
    ]);
    expect(types.filter((t) => t === "response.output_text.delta").length).toBeGreaterThan(1);
    expect(types.slice(-4)).toEqual([
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.incomplete",
    ]);
    const last = events.at(-1)!.data.response as OpenAI.Responses.Response;
    expect(last.status).toBe("incomplete");
    const ext = last.usage as unknown as SrpUsage;
    expect((await receiptOf(ext.receipt_id!)).cost).toBe(ext.cost_units);

    // The SDK's own accumulation agrees with a non-streamed answer to the same request.
    const whole = await openai.responses.create(body);
    const stream = openai.responses.stream(body);
    const deltas: string[] = [];
    stream.on("response.output_text.delta", (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(whole.output_text);
    expect(deltas.join("")).toBe(whole.output_text);
    expect(final.usage!.output_tokens).toBe(12);
    // responses.create({stream: true}) yields the same typed events.
    const iter = await openai.responses.create({ ...body, stream: true });
    const seen: string[] = [];
    for await (const e of iter) seen.push(e.type);
    expect(seen).toEqual(types);
  });

  it("runs a two-turn tool loop, by previous_response_id and by resending the items, streamed and not", async () => {
    for (const streamed of [false, true]) {
      const ask = (params: Omit<OpenAI.Responses.ResponseCreateParamsNonStreaming, "stream">) =>
        streamed ? openai.responses.stream(params).finalResponse() : openai.responses.create(params);
      const params = { model: MODEL, tools: [weatherTool], max_output_tokens: 64 };
      const first = await ask({ ...params, input: "Weather in Paris?" });
      expect(first.status).toBe("completed");
      const call = first.output.find((i) => i.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
      expect(call.name).toBe("get_weather");
      expect(call.id).toMatch(/^fc_/);
      expect(JSON.parse(call.arguments)).toEqual({ city: "example city", unit: "c" });
      const output = { type: "function_call_output" as const, call_id: call.call_id, output: "18 degrees and sunny" };

      // Continued by id: only the new item is sent.
      const second = await ask({ ...params, previous_response_id: first.id, input: [output] });
      expect(second.previous_response_id).toBe(first.id);
      expect(second.output_text).toBe("The tool returned: 18 degrees and sunny");
      const seen = net.sims[0]!.requests.at(-1)! as { messages: Record<string, unknown>[]; tools: unknown[] };
      expect(seen.messages).toEqual([
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: call.call_id, type: "function", function: { name: "get_weather", arguments: call.arguments } }],
        },
        { role: "tool", tool_call_id: call.call_id, content: "18 degrees and sunny" },
      ]);
      expect(seen.tools).toEqual([
        {
          type: "function",
          function: { name: "get_weather", description: "The weather in a city", parameters: weatherTool.parameters, strict: true },
        },
      ]);

      // Resent items (store: false, as Codex does): the same conversation.
      const resent = await ask({
        ...params,
        store: false,
        input: [{ role: "user", content: "Weather in Paris?" }, ...first.output, output] as OpenAI.Responses.ResponseInput,
      });
      expect(resent.output_text).toBe("The tool returned: 18 degrees and sunny");
      expect(net.sims[0]!.requests.at(-1)!.messages).toEqual(seen.messages);
    }
  });

  it("streams a tool call as function_call_arguments events", async () => {
    const events = await rawEvents({ model: MODEL, input: "Weather?", tools: [weatherTool] });
    const types = events.map((e) => e.data.type);
    expect(types).toContain("response.function_call_arguments.delta");
    const added = events.find((e) => e.data.type === "response.output_item.added")!.data;
    expect(added.item).toMatchObject({ type: "function_call", status: "in_progress", name: "get_weather", arguments: "" });
    const done = events.find((e) => e.data.type === "response.function_call_arguments.done")!.data;
    expect(JSON.parse(done.arguments as string)).toEqual({ city: "example city", unit: "c" });
    expect(types.slice(-3)).toEqual(["response.function_call_arguments.done", "response.output_item.done", "response.completed"]);
  });

  it("maps text.format json_schema to response_format and reasoning.effort to reasoning_effort", async () => {
    const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"], additionalProperties: false };
    await openai.responses.create({
      model: MODEL,
      input: "JSON please",
      max_output_tokens: 8,
      reasoning: { effort: "low" },
      text: { format: { type: "json_schema", name: "answer", schema, strict: true } },
    });
    const seen = net.sims[0]!.requests.at(-1)!;
    expect(seen.response_format).toEqual({ type: "json_schema", json_schema: { name: "answer", schema, strict: true } });
    expect(seen.reasoning_effort).toBe("low");
  });

  it("answers an unknown previous_response_id with 404 before any reservation, and untranslatable members with a 400 naming them", async () => {
    const missing = await openai.responses
      .create({ model: MODEL, input: "x", previous_response_id: "resp_doesnotexist" })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as InstanceType<typeof OpenAI.APIError>).code).toBe("api.not_found");
    const hosted = await openai.responses
      .create({ model: MODEL, input: "x", tools: [{ type: "file_search", vector_store_ids: ["vs_1"] }] })
      .catch((e: unknown) => e);
    expect(hosted).toBeInstanceOf(OpenAI.BadRequestError);
    expect(String((hosted as Error).message)).toMatch(/tools\[0\].*file_search.*Responses API itself/);
    const bg = await openai.responses.create({ model: MODEL, input: "x", background: true }).catch((e: unknown) => e);
    expect(String((bg as Error).message)).toMatch(/`background`/);
  });

  it("accepts what Codex sends: developer messages, namespace and web_search tools, include, prompt_cache_key, reasoning items", async () => {
    const body = {
      model: MODEL,
      stream: true,
      store: false,
      include: ["reasoning.encrypted_content"],
      prompt_cache_key: "session-1",
      client_metadata: { thread_id: "t" },
      reasoning: { summary: "auto" },
      tool_choice: "auto",
      parallel_tool_calls: true,
      tools: [
        {
          type: "function",
          name: "exec_command",
          strict: false,
          parameters: { type: "object", properties: { cmd: { type: "string" } }, required: ["cmd"] },
        },
        {
          type: "namespace",
          name: "multi_agent_v1",
          description: "agents",
          tools: [{ type: "function", name: "close_agent", strict: false, parameters: { type: "object", properties: {} } }],
        },
        { type: "web_search", external_web_access: true },
      ],
      input: [
        { type: "message", id: "msg_1", role: "developer", content: [{ type: "input_text", text: "You are Codex." }] },
        { type: "message", id: "msg_2", role: "user", content: [{ type: "input_text", text: "What does answer.txt say?" }] },
        { type: "reasoning", id: "rs_1", summary: [{ type: "summary_text", text: "Read it." }], content: null, encrypted_content: "ENC1" },
        {
          type: "function_call",
          status: "completed",
          id: "fc_1",
          name: "exec_command",
          arguments: '{"cmd":"cat answer.txt"}',
          call_id: "call_1",
        },
        { type: "function_call_output", id: "fco_1", call_id: "call_1", output: "forty-two" },
      ],
    };
    const events = await rawEvents(body);
    expect(events.at(-1)!.data.type).toBe("response.completed");
    const seen = net.sims[0]!.requests.at(-1)! as { messages: unknown[]; tools: { function: { name: string } }[] };
    expect(seen.messages).toEqual([
      { role: "system", content: "You are Codex." },
      { role: "user", content: "What does answer.txt say?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: "exec_command", arguments: '{"cmd":"cat answer.txt"}' } }],
      },
      { role: "tool", tool_call_id: "call_1", content: "forty-two" },
    ]);
    expect(seen.tools.map((t) => t.function.name)).toEqual(["exec_command", "close_agent"]);
    const text = events
      .filter((e) => e.data.type === "response.output_text.delta")
      .map((e) => e.data.delta)
      .join("");
    expect(text).toBe("The tool returned: forty-two");
  });
});

describe("Reasoning from a chat backend", () => {
  it("becomes a reasoning item (streamed as reasoning_text events), billed as output and countersigned", async () => {
    const r = await openai.responses.create({ model: THINKER, input: "Think first", max_output_tokens: 40, reasoning: { effort: "low" } });
    expect(r.output[0]!.type).toBe("reasoning");
    const reasoning = r.output[0] as OpenAI.Responses.ResponseReasoningItem;
    expect(reasoning.content![0]!.text.length).toBeGreaterThan(0);
    expect(r.usage!.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    const ext = r.usage as unknown as SrpUsage;
    expect(ext.receipt_id).not.toBeNull();
    expect((await receiptOf(ext.receipt_id!)).usage.completionTokens).toBe(r.usage!.output_tokens);

    const events = await rawEvents({ model: THINKER, input: "Think first", max_output_tokens: 40, reasoning: { effort: "low" } });
    const types = events.map((e) => e.data.type);
    expect(types).toContain("response.reasoning_text.delta");
    expect(types.indexOf("response.reasoning_text.done")).toBeLessThan(types.indexOf("response.output_text.delta"));
    const last = events.at(-1)!.data.response as OpenAI.Responses.Response;
    expect((last.usage as unknown as SrpUsage).receipt_id).not.toBeNull();
    expect(last.output.map((o) => o.type)).toEqual(["reasoning", "message"]);
  });
});

describe("Responses served natively", () => {
  it("sends a responses job with store false and the conversation expanded, and answers with the hub's id and billed usage", async () => {
    const vllm = net.sims[1]!;
    const first = await openai.responses.create({ model: NATIVE, input: "Native hello", max_output_tokens: 10 });
    expect(first.id).toMatch(/^resp_/);
    expect(first.model).toBe(NATIVE);
    expect((first as unknown as { store: boolean }).store).toBe(true);
    const sent = vllm.requests.at(-1)!;
    expect(sent.store).toBe(false);
    expect(sent.input).toBe("Native hello");
    const ext = first.usage as unknown as SrpUsage;
    const receipt = await receiptOf(ext.receipt_id!);
    expect(receipt.cost).toBe(ext.cost_units);
    expect(first.usage!.output_tokens).toBe(receipt.usage.completionTokens);

    const stream = openai.responses.stream({ model: NATIVE, input: "And again", previous_response_id: first.id, max_output_tokens: 10 });
    const final = await stream.finalResponse();
    expect(final.previous_response_id).toBe(first.id);
    const again = vllm.requests.at(-1)! as { input: { type: string; role?: string }[]; previous_response_id?: unknown };
    expect(again.previous_response_id).toBeUndefined();
    expect(again.input.map((i) => i.type)).toEqual(["message", ...first.output.map((o) => o.type), "message"]);
    const fext = final.usage as unknown as SrpUsage;
    expect((await receiptOf(fext.receipt_id!)).cost).toBe(fext.cost_units);
  });
});

describe("Legacy completions", () => {
  it("is served by instances with the completions capability, streamed and not, billed", async () => {
    const c = await openai.completions.create({ model: NATIVE, prompt: "def fib(n):", max_tokens: 8 });
    expect(c.object).toBe("text_completion");
    expect(checkConsumerBody(CompletionObject, c)).toBeUndefined();
    expect(c.choices[0]!.text.length).toBeGreaterThan(0);
    const ext = c.usage as unknown as SrpUsage;
    expect((await receiptOf(ext.receipt_id!)).cost).toBe(ext.cost_units);
    const stream = await openai.completions.create({ model: NATIVE, prompt: "def fib(n):", max_tokens: 8, stream: true });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(c.choices[0]!.text);
    const sext = usage as unknown as SrpUsage;
    expect((await receiptOf(sext.receipt_id!)).cost).toBe(sext.cost_units);
    expect(net.sims[1]!.requests.at(-1)!.max_tokens).toBe(8);
  });

  it("refuses a model with no completions instance with job.unknown_model", async () => {
    const err = await openai.completions.create({ model: MODEL, prompt: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("job.unknown_model");
    expect(String((err as Error).message)).toMatch(/legacy completions/);
  });

  it("lists responses for every chat model and completions where an instance has it", async () => {
    const models = (await openai.models.list()).data as unknown as { id: string; endpoints: string[] }[];
    expect(models.find((m) => m.id === MODEL)!.endpoints).toEqual(expect.arrayContaining(["chat.completions", "messages", "responses"]));
    expect(models.find((m) => m.id === MODEL)!.endpoints).not.toContain("completions");
    expect(models.find((m) => m.id === NATIVE)!.endpoints).toEqual(expect.arrayContaining(["responses", "completions"]));
  });
});

describe("Responses on a billing hub (SQLite ledger and store)", () => {
  it("charges exactly the cost the Response shows, streamed and not, and continues a stored conversation", async () => {
    const store = new SqliteStore(":memory:", { signupCredits: 1_000_000n });
    const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, drainTimeoutMs: 2000, reconnectAfterMs: 100 });
    const { url } = await hub.listen({ port: 0 });
    const sim = await startSimulator();
    const providerAccount = await store.createAccount({ name: "provider" });
    const provider = createProvider({
      hub: url,
      identity: generateIdentity(),
      account: (await store.createApiKey(providerAccount.id)).key,
      reconnect: false,
      instances: [
        { backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: { input: "1000000", output: "3000000" } },
      ],
    });
    try {
      await provider.ready();
      const consumer = await store.createAccount({ name: "consumer" });
      const { key } = await store.createApiKey(consumer.id);
      const sdk = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
      const spent = async () =>
        BigInt(
          (
            (await (await fetch(`${url}/v1/account`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
              spent: { units: string };
            }
          ).spent.units,
        );
      const s0 = await spent();
      const first = await sdk.responses.create({ model: MODEL, input: "What does it cost?", max_output_tokens: 8 });
      const c1 = BigInt((first.usage as unknown as SrpUsage).cost_units);
      expect(c1).toBeGreaterThan(0n);
      expect((await spent()) - s0).toBe(c1);
      const second = await sdk.responses
        .stream({ model: MODEL, input: "And streamed?", previous_response_id: first.id, max_output_tokens: 8 })
        .finalResponse();
      const c2 = BigInt((second.usage as unknown as SrpUsage).cost_units);
      expect((await spent()) - s0).toBe(c1 + c2);
      // The stored conversation reached the model: the first turn's input and output, then the new input.
      const seen = sim.requests.at(-1)!.messages as { role: string }[];
      expect(seen.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
      // Another account cannot continue it.
      const other = await store.createAccount({ name: "other" });
      const otherSdk = new OpenAI({ baseURL: `${url}/v1`, apiKey: (await store.createApiKey(other.id)).key, maxRetries: 0 });
      const refused = await otherSdk.responses
        .create({ model: MODEL, input: "x", previous_response_id: first.id })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.NotFoundError);
    } finally {
      await provider.close();
      await hub.close();
      await sim.close();
      await store.close();
    }
  });
});
