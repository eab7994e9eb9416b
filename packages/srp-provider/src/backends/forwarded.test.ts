import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity, identityFromSeed, randomBytes } from "@srp/core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { anthropicBackend } from "./anthropic.js";
import { openAIBackend } from "./forwarded.js";
import { geminiBackend } from "./gemini.js";
import { deriveKeyStoreKey, KeyStore, KeyStoreError, openSecret, sealSecret } from "./keystore.js";
import { BackendError, type Backend, type ChatResult } from "./types.js";

type Json = Record<string, unknown>;

interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: Json | undefined;
}

/** What the simulator does for the next `POST /v1/messages`. */
type Behavior =
  | { kind: "reply"; message: Json }
  | { kind: "http_error"; status: number; type: string; message: string }
  | { kind: "stream_error"; type: string; message: string; afterText?: string };

/**
 * An Anthropic Messages API simulator (not Anthropic): a local `node:http` server that
 * imitates the wire format of `POST /v1/messages` (JSON, and SSE streams with the real
 * event sequence message_start, content_block_start/delta/stop, ping, message_delta,
 * message_stop, error) and `GET /v1/models`, and records every request it gets.
 */
class AnthropicSimulator {
  readonly requests: Recorded[] = [];
  behavior: Behavior = { kind: "reply", message: textMessage("Hello from the simulator.") };
  #server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }

  get last(): Recorded {
    return this.requests.at(-1)!;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = "";
    for await (const piece of req) raw += String(piece);
    const path = req.url ?? "";
    this.requests.push({ method: req.method ?? "", path, headers: req.headers, body: raw ? (JSON.parse(raw) as Json) : undefined });
    if (req.headers["x-api-key"] !== "sk-ant-test") return this.#error(res, 401, "authentication_error", "invalid x-api-key");
    if (req.method === "GET" && path.startsWith("/v1/models")) {
      const after = new URL(path, "http://x").searchParams.get("after_id");
      const page = after === null ? ["claude-a", "claude-b"] : ["claude-c"];
      res.writeHead(200, { "content-type": "application/json" });
      return void res.end(
        JSON.stringify({
          data: page.map((id) => ({ type: "model", id, display_name: id.toUpperCase(), created_at: "2025-01-01T00:00:00Z" })),
          has_more: after === null,
          first_id: page[0],
          last_id: page.at(-1),
        }),
      );
    }
    if (req.method !== "POST" || path !== "/v1/messages") return this.#error(res, 404, "not_found_error", "no such route");
    const b = this.behavior;
    if (b.kind === "http_error") return this.#error(res, b.status, b.type, b.message);
    const stream = this.last.body?.stream === true;
    if (b.kind === "stream_error") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (b.afterText !== undefined) {
        sse(res, "message_start", { type: "message_start", message: { ...textMessage(""), content: [], stop_reason: null } });
        sse(res, "content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
        sse(res, "content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: b.afterText } });
      }
      sse(res, "error", { type: "error", error: { type: b.type, message: b.message } });
      return void res.end();
    }
    const message = b.message;
    if (!stream) {
      res.writeHead(200, { "content-type": "application/json", "request-id": "req_sim" });
      return void res.end(JSON.stringify(message));
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const usage = message.usage as Json;
    sse(res, "message_start", {
      type: "message_start",
      message: { ...message, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } },
    });
    (message.content as Json[]).forEach((block, index) => {
      if (block.type === "text") {
        sse(res, "content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } });
        if (index === 0) sse(res, "ping", { type: "ping" });
        for (const piece of split(block.text as string, 5))
          sse(res, "content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: piece } });
      } else if (block.type === "tool_use") {
        sse(res, "content_block_start", {
          type: "content_block_start",
          index,
          content_block: { type: "tool_use", id: block.id, name: block.name, input: {} },
        });
        const json = JSON.stringify(block.input);
        sse(res, "content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: "" } });
        if (json !== "{}")
          for (const piece of split(json, 7))
            sse(res, "content_block_delta", {
              type: "content_block_delta",
              index,
              delta: { type: "input_json_delta", partial_json: piece },
            });
      }
      sse(res, "content_block_stop", { type: "content_block_stop", index });
    });
    sse(res, "message_delta", {
      type: "message_delta",
      delta: { stop_reason: message.stop_reason, stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    });
    sse(res, "message_stop", { type: "message_stop" });
    res.end();
  }

  #error(res: ServerResponse, status: number, type: string, message: string): void {
    res.writeHead(status, { "content-type": "application/json", "request-id": "req_err" });
    res.end(JSON.stringify({ type: "error", error: { type, message } }));
  }
}

function sse(res: ServerResponse, event: string, data: Json): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function split(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function textMessage(text: string, usage: Json = { input_tokens: 12, output_tokens: 7 }): Json {
  return {
    id: "msg_sim_1",
    type: "message",
    role: "assistant",
    model: "claude-sim-1",
    content: [{ type: "text", text }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage,
  };
}

function toolMessage(): Json {
  return {
    id: "msg_sim_2",
    type: "message",
    role: "assistant",
    model: "claude-sim-1",
    content: [
      { type: "text", text: "Let me check." },
      { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "Paris", unit: "c" } },
      { type: "tool_use", id: "toolu_02", name: "get_time", input: {} },
    ],
    stop_reason: "tool_use",
    stop_sequence: null,
    usage: { input_tokens: 40, output_tokens: 25 },
  };
}

const signal = () => AbortSignal.timeout(10_000);

async function response(backend: Backend, request: Json): Promise<Json> {
  const result = await backend.chat({ ...request, stream: false }, { signal: signal() });
  expect(result.kind).toBe("response");
  return (result as Extract<ChatResult, { kind: "response" }>).body;
}

async function chunks(backend: Backend, request: Json): Promise<Json[]> {
  const result = await backend.chat({ ...request, stream: true, stream_options: { include_usage: true } }, { signal: signal() });
  expect(result.kind).toBe("stream");
  const out: Json[] = [];
  for await (const c of (result as Extract<ChatResult, { kind: "stream" }>).chunks) out.push(c);
  return out;
}

async function backendError(p: Promise<unknown>): Promise<BackendError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BackendError);
  return error as BackendError;
}

const deltas = (cs: Json[]) => cs.filter((c) => (c.choices as unknown[]).length > 0).map((c) => (c.choices as Json[])[0]!);

describe("anthropicBackend against the Anthropic Messages simulator", () => {
  const sim = new AnthropicSimulator();
  let backend: Backend;
  beforeAll(async () => {
    await sim.start();
    backend = anthropicBackend({ apiKey: "sk-ant-test", baseUrl: sim.url });
  });
  afterAll(() => sim.stop());
  afterEach(() => {
    sim.behavior = { kind: "reply", message: textMessage("Hello from the simulator.") };
  });

  it("reports its kind and a label without the key", () => {
    expect(backend.kind).toBe("anthropic");
    expect(backend.label).toBe(`anthropic at ${sim.url}`);
    expect(backend.label).not.toContain("sk-ant");
  });

  it("translates a text request and its response (non-stream)", async () => {
    sim.behavior = {
      kind: "reply",
      message: textMessage("Bonjour!", {
        input_tokens: 10,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 5,
        output_tokens: 3,
      }),
    };
    const body = await response(backend, {
      model: "claude-sim-1",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: "Hello" },
        { role: "assistant", content: "Hi! How can I help?" },
        { role: "user", content: [{ type: "text", text: "Say hello" }] },
      ],
      temperature: 0.2,
      top_p: 0.9,
      stop: "END",
    });
    const req = sim.last;
    expect(req.method).toBe("POST");
    expect(req.path).toBe("/v1/messages");
    expect(req.headers["x-api-key"]).toBe("sk-ant-test");
    expect(req.headers["anthropic-version"]).toBe("2023-06-01");
    expect(req.headers.authorization).toBeUndefined();
    expect(req.body).toEqual({
      model: "claude-sim-1",
      max_tokens: 4096,
      system: "Be brief.\n\nAnswer in French.",
      messages: [
        { role: "user", content: [{ type: "text", text: "Hello" }] },
        { role: "assistant", content: [{ type: "text", text: "Hi! How can I help?" }] },
        { role: "user", content: [{ type: "text", text: "Say hello" }] },
      ],
      temperature: 0.2,
      top_p: 0.9,
      stop_sequences: ["END"],
    });
    expect(body).toMatchObject({
      id: "msg_sim_1",
      object: "chat.completion",
      model: "claude-sim-1",
      choices: [{ index: 0, message: { role: "assistant", content: "Bonjour!" }, finish_reason: "stop" }],
      usage: {
        prompt_tokens: 115,
        completion_tokens: 3,
        total_tokens: 118,
        prompt_tokens_details: { cached_tokens: 100, cache_write_tokens: 5 },
      },
    });
    expect(typeof body.created).toBe("number");
  });

  it("maps max_completion_tokens / max_tokens, stop arrays and stop reasons", async () => {
    sim.behavior = { kind: "reply", message: { ...textMessage("cut"), stop_reason: "max_tokens" } };
    const body = await response(backend, {
      model: "m",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 50,
      max_completion_tokens: 20,
      stop: ["a", "b"],
    });
    expect(sim.last.body).toMatchObject({ max_tokens: 20, stop_sequences: ["a", "b"] });
    expect((body.choices as Json[])[0]!.finish_reason).toBe("length");
    await response(backend, { model: "m", messages: [{ role: "user", content: "x" }], max_tokens: 33 });
    expect(sim.last.body).toMatchObject({ max_tokens: 33 });
    expect(sim.last.body).not.toHaveProperty("stop_sequences");
    sim.behavior = { kind: "reply", message: { ...textMessage("x"), stop_reason: "stop_sequence", stop_sequence: "a" } };
    const stopped = await response(backend, { model: "m", messages: [{ role: "user", content: "x" }] });
    expect((stopped.choices as Json[])[0]!.finish_reason).toBe("stop");
  });

  it("streams text as OpenAI chunks: role first, content, finish_reason, then usage", async () => {
    sim.behavior = {
      kind: "reply",
      message: textMessage("Streaming works nicely.", { input_tokens: 9, cache_read_input_tokens: 4, output_tokens: 6 }),
    };
    const cs = await chunks(backend, { model: "claude-sim-1", messages: [{ role: "user", content: "Stream please" }] });
    expect(sim.last.body).toMatchObject({ stream: true });
    expect(sim.last.headers.accept).toBe("text/event-stream");
    for (const c of cs) expect(c).toMatchObject({ id: "msg_sim_1", object: "chat.completion.chunk", model: "claude-sim-1" });
    const ds = deltas(cs);
    expect(ds[0]).toEqual({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null });
    expect(ds.map((d) => (d.delta as Json).content ?? "").join("")).toBe("Streaming works nicely.");
    expect(ds.length).toBeGreaterThan(3);
    expect(ds.at(-1)).toMatchObject({ delta: {}, finish_reason: "stop" });
    expect(ds.slice(0, -1).every((d) => d.finish_reason === null)).toBe(true);
    const last = cs.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({
      prompt_tokens: 13,
      completion_tokens: 6,
      total_tokens: 19,
      prompt_tokens_details: { cached_tokens: 4, cache_write_tokens: 0 },
    });
  });

  it("translates tools and tool_choice, and returns tool_calls (non-stream)", async () => {
    sim.behavior = { kind: "reply", message: toolMessage() };
    const tools = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
      { type: "function", function: { name: "get_time" } },
    ];
    const body = await response(backend, {
      model: "m",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools,
      tool_choice: "required",
    });
    expect(sim.last.body).toMatchObject({
      tools: [
        {
          name: "get_weather",
          description: "Weather for a city",
          input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
        { name: "get_time", input_schema: { type: "object", properties: {} } },
      ],
      tool_choice: { type: "any" },
    });
    expect(body.choices).toEqual([
      {
        index: 0,
        logprobs: null,
        finish_reason: "tool_calls",
        message: {
          role: "assistant",
          content: "Let me check.",
          refusal: null,
          tool_calls: [
            {
              id: "toolu_01",
              type: "function",
              function: { name: "get_weather", arguments: JSON.stringify({ city: "Paris", unit: "c" }) },
            },
            { id: "toolu_02", type: "function", function: { name: "get_time", arguments: "{}" } },
          ],
        },
      },
    ]);

    const choices: [unknown, unknown][] = [
      ["auto", { type: "auto" }],
      ["none", { type: "none" }],
      [
        { type: "function", function: { name: "get_time" } },
        { type: "tool", name: "get_time" },
      ],
    ];
    for (const [choice, expected] of choices) {
      await response(backend, { model: "m", messages: [{ role: "user", content: "x" }], tools, tool_choice: choice });
      expect(sim.last.body!.tool_choice).toEqual(expected);
    }
    await response(backend, { model: "m", messages: [{ role: "user", content: "x" }], tools, parallel_tool_calls: false });
    expect(sim.last.body!.tool_choice).toEqual({ type: "auto", disable_parallel_tool_use: true });
    await response(backend, { model: "m", messages: [{ role: "user", content: "x" }] });
    expect(sim.last.body).not.toHaveProperty("tools");
    expect(sim.last.body).not.toHaveProperty("tool_choice");
  });

  it("streams tool calls as tool_calls deltas that assemble into the arguments", async () => {
    sim.behavior = { kind: "reply", message: toolMessage() };
    const cs = await chunks(backend, {
      model: "m",
      messages: [{ role: "user", content: "Weather?" }],
      tools: [{ type: "function", function: { name: "get_weather" } }],
    });
    const ds = deltas(cs);
    const calls = new Map<number, { id?: unknown; type?: unknown; name?: unknown; args: string }>();
    let text = "";
    for (const d of ds) {
      const delta = d.delta as Json;
      if (typeof delta.content === "string") text += delta.content;
      for (const tc of (delta.tool_calls as Json[] | undefined) ?? []) {
        const index = tc.index as number;
        const fn = (tc.function ?? {}) as Json;
        const call = calls.get(index) ?? { args: "" };
        if (tc.id !== undefined) Object.assign(call, { id: tc.id, type: tc.type, name: fn.name });
        call.args += (fn.arguments as string | undefined) ?? "";
        calls.set(index, call);
      }
    }
    expect(text).toBe("Let me check.");
    expect([...calls.entries()]).toEqual([
      [0, { id: "toolu_01", type: "function", name: "get_weather", args: JSON.stringify({ city: "Paris", unit: "c" }) }],
      [1, { id: "toolu_02", type: "function", name: "get_time", args: "{}" }],
    ]);
    expect(ds.at(-1)!.finish_reason).toBe("tool_calls");
    expect(cs.at(-1)!.usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 25, total_tokens: 65 });
  });

  it("sends the tool round trip back: tool_use blocks and one merged user turn of tool_result blocks", async () => {
    await response(backend, {
      model: "m",
      messages: [
        { role: "user", content: "Weather and time in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "toolu_01", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            { id: "call.abc/2", type: "function", function: { name: "get_time", arguments: "" } },
          ],
        },
        { role: "tool", tool_call_id: "toolu_01", content: "18C, sunny" },
        { role: "tool", tool_call_id: "call.abc/2", content: [{ type: "text", text: "14:05" }] },
        { role: "user", content: "Thanks, summarize." },
      ],
    });
    expect(sim.last.body!.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "Weather and time in Paris?" }] },
      {
        role: "assistant",
        content: [
          { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "call_abc_2", name: "get_time", input: {} },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_01", content: "18C, sunny" },
          { type: "tool_result", tool_use_id: "call_abc_2", content: "14:05" },
          { type: "text", text: "Thanks, summarize." },
        ],
      },
    ]);
  });

  it("translates image parts: data URLs to base64 sources, http(s) URLs to url sources", async () => {
    await response(backend, {
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?" },
            { type: "image_url", image_url: { url: "data:image/PNG;base64,iVBORw0KGgo=", detail: "low" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
          ],
        },
      ],
    });
    expect(sim.last.body!.messages).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "What is in these?" },
          { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
          { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
        ],
      },
    ]);
  });

  it("rejects what Anthropic cannot take as job.invalid_request, without calling it", async () => {
    const before = sim.requests.length;
    const bad: Json[] = [
      { model: "m", messages: [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "", format: "wav" } }] }] },
      { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "ftp://x/y.png" } }] }] },
      { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png,rawbytes" } }] }] },
      {
        model: "m",
        messages: [{ role: "assistant", tool_calls: [{ id: "t", type: "function", function: { name: "f", arguments: "{oops" } }] }],
      },
      { model: "m", messages: [{ role: "user", content: "x" }], n: 2 },
      { model: "m", messages: [{ role: "user", content: "x" }], tools: [{ type: "web_search" }] },
      { messages: [{ role: "user", content: "x" }] },
    ];
    for (const request of bad) expect((await backendError(backend.chat(request, { signal: signal() }))).code).toBe("job.invalid_request");
    expect(sim.requests.length).toBe(before);
  });

  it("classifies HTTP errors: 400 invalid_request, prompt too long, 429 rate limited, 529 overloaded, 401", async () => {
    const cases: [number, string, string, string][] = [
      [400, "invalid_request_error", "messages: text content blocks must be non-empty", "job.invalid_request"],
      [400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum", "job.context_length_exceeded"],
      [429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", "job.upstream_rate_limited"],
      [529, "overloaded_error", "Overloaded", "job.upstream_error"],
      [500, "api_error", "Internal server error", "job.upstream_error"],
    ];
    for (const [status, type, message, code] of cases) {
      sim.behavior = { kind: "http_error", status, type, message };
      for (const stream of [false, true]) {
        const error = await backendError(
          backend.chat({ model: "m", messages: [{ role: "user", content: "x" }], stream }, { signal: signal() }),
        );
        expect(error.code).toBe(code);
        expect(error.upstreamStatus).toBe(status);
        expect(error.message).toContain(message);
        expect(error.message).toContain("req_err");
      }
    }
    const badKey = anthropicBackend({ apiKey: "sk-ant-wrong", baseUrl: sim.url });
    const error = await backendError(badKey.chat({ model: "m", messages: [{ role: "user", content: "x" }] }, { signal: signal() }));
    expect(error.code).toBe("job.upstream_error");
    expect(error.upstreamStatus).toBe(401);
    expect(error.message).not.toContain("sk-ant-wrong");
  });

  it("turns a stream error event before content into a retryable upstream error, with no chunk relayed", async () => {
    sim.behavior = { kind: "stream_error", type: "overloaded_error", message: "Overloaded" };
    const result = await backend.chat({ model: "m", messages: [{ role: "user", content: "x" }], stream: true }, { signal: signal() });
    expect(result.kind).toBe("stream");
    const got: Json[] = [];
    const error = await backendError(
      (async () => {
        for await (const c of (result as Extract<ChatResult, { kind: "stream" }>).chunks) got.push(c);
      })(),
    );
    expect(got).toEqual([]);
    expect(error.code).toBe("job.upstream_error");
    expect(error.message).toContain("overloaded_error");

    sim.behavior = { kind: "stream_error", type: "rate_limit_error", message: "slow down" };
    const limited = await backend.chat({ model: "m", messages: [{ role: "user", content: "x" }], stream: true }, { signal: signal() });
    const limitedError = await backendError(
      (async () => {
        for await (const _ of (limited as Extract<ChatResult, { kind: "stream" }>).chunks) void _;
      })(),
    );
    expect(limitedError.code).toBe("job.upstream_rate_limited");
  });

  it("fails a stream that breaks after content (error event mid-stream)", async () => {
    sim.behavior = { kind: "stream_error", type: "api_error", message: "boom", afterText: "partial" };
    const result = await backend.chat({ model: "m", messages: [{ role: "user", content: "x" }], stream: true }, { signal: signal() });
    const got: Json[] = [];
    const error = await backendError(
      (async () => {
        for await (const c of (result as Extract<ChatResult, { kind: "stream" }>).chunks) got.push(c);
      })(),
    );
    expect(deltas(got).map((d) => d.delta)).toEqual([{ role: "assistant", content: "" }, { content: "partial" }]);
    expect(error.code).toBe("job.upstream_error");
    expect(error.message).toContain("after content");
  });

  it("lists models from GET /v1/models, following pages", async () => {
    const models = await backend.listModels();
    expect(models).toEqual([{ id: "claude-a" }, { id: "claude-b" }, { id: "claude-c" }]);
    const paths = sim.requests.filter((r) => r.method === "GET").map((r) => r.path);
    expect(paths.at(-2)).toBe("/v1/models?limit=1000");
    expect(paths.at(-1)).toBe("/v1/models?limit=1000&after_id=claude-b");
    expect(sim.last.headers["x-api-key"]).toBe("sk-ant-test");
    expect(sim.last.headers["anthropic-version"]).toBe("2023-06-01");
  });

  it("passes the abort signal through to the upstream request", async () => {
    const controller = new AbortController();
    controller.abort(new Error("cancelled by test"));
    await expect(
      backend.chat({ model: "m", messages: [{ role: "user", content: "x" }], stream: true }, { signal: controller.signal }),
    ).rejects.toThrow("cancelled by test");
  });

  it("reports an unreachable server as job.upstream_error", async () => {
    const down = anthropicBackend({ apiKey: "sk-ant-test", baseUrl: "http://127.0.0.1:1" });
    expect((await backendError(down.chat({ model: "m", messages: [{ role: "user", content: "x" }] }, { signal: signal() }))).code).toBe(
      "job.upstream_error",
    );
  });
});

describe("OpenAI and Gemini forwarded keys", () => {
  const seen: Recorded[] = [];
  let server: Server;
  let url = "";
  beforeAll(async () => {
    // A minimal OpenAI-compatible endpoint that records what it is sent.
    server = createServer((req, res) => {
      let raw = "";
      req.on("data", (d: Buffer) => (raw += String(d)));
      req.on("end", () => {
        seen.push({
          method: req.method ?? "",
          path: req.url ?? "",
          headers: req.headers,
          body: raw ? (JSON.parse(raw) as Json) : undefined,
        });
        res.writeHead(200, { "content-type": "application/json" });
        if (req.url?.endsWith("/models"))
          return void res.end(JSON.stringify({ object: "list", data: [{ id: "models/gemini-2.5-flash", object: "model" }] }));
        res.end(
          JSON.stringify({
            id: "c1",
            object: "chat.completion",
            created: 1,
            model: "x",
            choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("gemini sends Authorization: Bearer to its base URL and reports kind gemini", async () => {
    const gemini = geminiBackend({ apiKey: "gem-key", baseUrl: `${url}/v1beta/openai/` });
    expect(gemini.kind).toBe("gemini");
    expect(gemini.label).not.toContain("gem-key");
    const body = await response(gemini, { model: "gemini-2.5-flash", messages: [{ role: "user", content: "hi" }] });
    expect(body.choices).toMatchObject([{ message: { content: "ok" } }]);
    expect(seen.at(-1)).toMatchObject({
      method: "POST",
      path: "/v1beta/openai/chat/completions",
      headers: { authorization: "Bearer gem-key" },
    });
    expect(await gemini.listModels()).toEqual([{ id: "gemini-2.5-flash" }]);
    expect(seen.at(-1)).toMatchObject({ method: "GET", path: "/v1beta/openai/models", headers: { authorization: "Bearer gem-key" } });
  });

  it("openai sends Authorization: Bearer to its base URL and reports kind openai", async () => {
    const openai = openAIBackend({ apiKey: "sk-openai", baseUrl: `${url}/v1`, headers: { "openai-organization": "org-1" } });
    expect(openai.kind).toBe("openai");
    await response(openai, { model: "gpt-x", messages: [{ role: "user", content: "hi" }] });
    expect(seen.at(-1)).toMatchObject({
      path: "/v1/chat/completions",
      headers: { authorization: "Bearer sk-openai", "openai-organization": "org-1" },
    });
  });

  it("default base URLs are Google's OpenAI-compatible endpoint and api.openai.com", async () => {
    const urls: string[] = [];
    const auth: (string | null)[] = [];
    const fake: typeof fetch = async (input, init) => {
      urls.push(String(input));
      auth.push(new Headers(init?.headers).get("authorization"));
      return new Response(JSON.stringify({ data: [] }), { status: 200, headers: { "content-type": "application/json" } });
    };
    await geminiBackend({ apiKey: "g", fetch: fake }).listModels();
    await openAIBackend({ apiKey: "o", fetch: fake }).listModels();
    await anthropicBackend({ apiKey: "a", fetch: fake }).listModels();
    expect(urls).toEqual([
      "https://generativelanguage.googleapis.com/v1beta/openai/models",
      "https://api.openai.com/v1/models",
      "https://api.anthropic.com/v1/models?limit=1000",
    ]);
    expect(auth).toEqual(["Bearer g", "Bearer o", null]);
  });

  it("refuses an empty key", () => {
    expect(() => geminiBackend({ apiKey: "" })).toThrow(TypeError);
    expect(() => openAIBackend({ apiKey: "" })).toThrow(TypeError);
    expect(() => anthropicBackend({ apiKey: "" })).toThrow(TypeError);
  });
});

describe("sealed secrets and the KeyStore", () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), "srp-keystore-"));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("sealSecret / openSecret round trip, with a fresh nonce each time", () => {
    const key = randomBytes(32);
    const a = sealSecret("sk-ant-secret ✓", key);
    const b = sealSecret("sk-ant-secret ✓", key);
    expect(a).toMatch(/^srpbox1\.[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(openSecret(a, key)).toBe("sk-ant-secret ✓");
    expect(() => openSecret(a, randomBytes(32))).toThrow(KeyStoreError);
    expect(() => openSecret("srpbox1.abc", key)).toThrow(KeyStoreError);
    expect(() => openSecret(a.replace("srpbox1", "srpbox2"), key)).toThrow(KeyStoreError);
    expect(() => sealSecret("x", randomBytes(16))).toThrow(TypeError);
  });

  it("derives a 32-byte store key from the identity, domain-separated and deterministic", () => {
    const id = identityFromSeed(new Uint8Array(32).fill(7));
    const k1 = deriveKeyStoreKey(id.secretKey);
    expect(k1.length).toBe(32);
    expect(deriveKeyStoreKey(identityFromSeed(new Uint8Array(32).fill(7)).secretKey)).toEqual(k1);
    expect(deriveKeyStoreKey(generateIdentity().secretKey)).not.toEqual(k1);
    expect(k1).not.toEqual(id.secretKey.subarray(0, 32));
  });

  it("round trips keys, lists names only, deletes, and keeps no plaintext in a 0600 file", () => {
    const dir = tempDir();
    const identity = generateIdentity();
    const store = new KeyStore({ dir, identity });
    expect(store.list()).toEqual([]);
    expect(store.get("anthropic")).toBeUndefined();
    store.set("anthropic", "sk-ant-api03-PLAINTEXT-SECRET");
    store.set("openai", "sk-proj-ANOTHER-PLAINTEXT");
    expect(store.get("anthropic")).toBe("sk-ant-api03-PLAINTEXT-SECRET");
    expect(store.list()).toEqual(["anthropic", "openai"]);
    store.set("anthropic", "sk-ant-api03-ROTATED");
    expect(new KeyStore({ dir, identity: identity.secretKey }).get("anthropic")).toBe("sk-ant-api03-ROTATED");

    const text = readFileSync(store.path, "utf8");
    expect(text).not.toContain("PLAINTEXT");
    expect(text).not.toContain("ROTATED");
    expect(text).not.toContain("sk-");
    expect(JSON.parse(text)).toMatchObject({
      version: 1,
      keys: { anthropic: expect.stringMatching(/^srpbox1\./), openai: expect.stringMatching(/^srpbox1\./) },
    });
    if (process.platform !== "win32") expect(statSync(store.path).mode & 0o777).toBe(0o600);

    expect(store.delete("openai")).toBe(true);
    expect(store.delete("openai")).toBe(false);
    expect(store.list()).toEqual(["anthropic"]);
    expect(() => store.set("bad name", "k")).toThrow(TypeError);
    expect(() => store.set("ok", "")).toThrow(TypeError);
  });

  it("detects a tampered ciphertext, swapped entries and a corrupted file", () => {
    const dir = tempDir();
    const store = new KeyStore({ dir, identity: generateIdentity() });
    store.set("a", "key-a");
    store.set("b", "key-b");
    const original = readFileSync(store.path, "utf8");
    const file = JSON.parse(original) as { version: 1; keys: Record<string, string> };

    const flipped = file.keys.a!.slice(0, -3) + (file.keys.a!.at(-3) === "A" ? "B" : "A") + file.keys.a!.slice(-2);
    writeFileSync(store.path, JSON.stringify({ ...file, keys: { ...file.keys, a: flipped } }));
    expect(() => store.get("a")).toThrow(KeyStoreError);
    expect(() => store.list()).toThrow(/"a"/);
    expect(store.get("b")).toBe("key-b");

    writeFileSync(store.path, JSON.stringify({ ...file, keys: { a: file.keys.b, b: file.keys.a } }));
    expect(() => store.get("a")).toThrow(/tampered/);

    writeFileSync(store.path, "{not json");
    expect(() => store.get("a")).toThrow(KeyStoreError);

    writeFileSync(store.path, original);
    expect(store.get("a")).toBe("key-a");
  });

  it("another identity cannot open the store, nor add keys to it", () => {
    const dir = tempDir();
    new KeyStore({ dir, identity: generateIdentity() }).set("anthropic", "sk-ant-mine");
    const other = new KeyStore({ dir, identity: generateIdentity() });
    expect(() => other.get("anthropic")).toThrow(/another node identity/);
    expect(() => other.list()).toThrow(KeyStoreError);
    expect(() => other.set("openai", "sk-other")).toThrow(KeyStoreError);
    expect(readFileSync(other.path, "utf8")).not.toContain("sk-other");
  });
});
