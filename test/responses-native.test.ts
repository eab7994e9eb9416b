/**
 * Native Responses jobs with real hubs, nodes and simulators: a conversation continued by
 * `previous_response_id` that would make a job larger than the hub's frame limit is refused
 * with 413 (and the serving node's session, with other consumers' jobs, survives); the relay
 * never sends a job frame over a session's limit; a forwarded OpenAI key's reasoning model is
 * asked for encrypted reasoning and gets no reasoning item it could not resolve; a local
 * Responses server (vLLM) gets Codex's tools flattened and no hosted web search.
 */
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { SrpError } from "@srp/core";
import { relay } from "../packages/srp-hub/src/relay.js";
import { openAICompatibleBackend } from "@srp/provider";
import { KEY, MODEL, startNet, type Net } from "./helpers.js";

let net: Net | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const post = (body: unknown) =>
  fetch(`${net!.url}/v1/responses`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("job size", () => {
  it("refuses a continued conversation over the body limit with 413 before admission, and the node stays connected", async () => {
    net = await startNet({ maxFrameBytes: 1_048_576 });
    const sim = await net.sim({ models: [{ id: MODEL, contextLength: 4_000_000 }] });
    const p = await net.addProvider(sim, { contextLength: 4_000_000 });
    const disconnects: unknown[] = [];
    p.on("disconnected", (d: unknown) => disconnects.push(d));
    const big = "word ".repeat(120_000); // 600 kB: one turn fits, two do not
    const r1 = await post({ model: MODEL, input: big, max_output_tokens: 4 });
    expect(r1.status).toBe(200);
    const first = (await r1.json()) as { id: string };
    const served = sim.requests.length;
    const r2 = await post({ model: MODEL, input: big, previous_response_id: first.id, max_output_tokens: 4 });
    expect(r2.status).toBe(413);
    expect(((await r2.json()) as { error: { code: string } }).error.code).toBe("api.body_too_large");
    expect(sim.requests.length).toBe(served); // never sent
    const r3 = await post({ model: MODEL, input: "still there?", previous_response_id: first.id, max_output_tokens: 4, stream: true });
    expect(r3.status).toBe(200);
    expect(await r3.text()).toMatch(/event: response\.(completed|incomplete)\n/);
    expect(disconnects).toEqual([]);
    expect(net.hub.sessions()).toHaveLength(1);
  });

  it("the relay refuses a job whose frame would exceed the session's limit instead of sending it", async () => {
    net = await startNet({ maxFrameBytes: 1_048_576 });
    const sim = await net.sim({ models: [{ id: MODEL, contextLength: 4_000_000 }] });
    const p = await net.addProvider(sim, { contextLength: 4_000_000 });
    const disconnects: unknown[] = [];
    p.on("disconnected", (d: unknown) => disconnects.push(d));
    const body = { messages: [{ role: "user", content: "x".repeat(1_100_000) }], max_tokens: 4 };
    const cancelled: string[] = [];
    const err = await relay(
      { router: net.hub.router, cancel: (_live, jobId) => cancelled.push(jobId) },
      {
        prepare: () => ({ api: "chat.completions", body }),
        stream: false,
        needs: { model: MODEL, capabilities: ["chat"], contextTokens: 10 },
        deadline: Date.now() + 10_000,
        signal: new AbortController().signal,
      },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SrpError);
    expect((err as SrpError).code).toBe("api.body_too_large");
    expect(sim.requests).toHaveLength(0);
    // The session is intact: a request of ordinary size is served on it.
    const ok = await post({ model: MODEL, input: "hello", max_output_tokens: 4 });
    expect(ok.status).toBe(200);
    expect(disconnects).toEqual([]);
  });
});

describe("native jobs by backend", () => {
  it("asks a forwarded OpenAI reasoning model for encrypted reasoning and drops reasoning items it could not resolve", async () => {
    net = await startNet();
    const THINKER = "sim-thinker";
    const OAI = "o-sim";
    const thinker = await net.sim({ reasoning: true, models: [{ id: THINKER }] });
    await net.addProvider(thinker, { model: THINKER, capabilities: ["chat", "stream", "reasoning"] });
    const oai = await net.sim({ models: [{ id: OAI }] });
    await net.addProvider(oai, {
      model: OAI,
      backend: openAICompatibleBackend({ baseUrl: oai.baseUrl, kind: "openai" }),
      capabilities: ["chat", "stream", "reasoning"],
    });
    const openai = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: KEY, maxRetries: 0 });
    // A translated turn: its reasoning item is the hub's own (`rs_…`, no encrypted content).
    const first = await openai.responses.create({
      model: THINKER,
      input: "Think first",
      max_output_tokens: 40,
      reasoning: { effort: "low" },
    });
    const hubReasoning = first.output.find((o) => o.type === "reasoning");
    expect(hubReasoning?.id).toMatch(/^rs_/);
    const kept = { type: "reasoning", id: "rs_kept", summary: [], encrypted_content: "gAAAAB-opaque" };
    const unresolvable = { type: "reasoning", id: "rs_gone", summary: [] };
    const second = await post({
      model: OAI,
      previous_response_id: first.id,
      include: ["reasoning.encrypted_content", "message.output_text.logprobs"],
      input: [kept, unresolvable, { role: "user", content: "And now?" }],
      max_output_tokens: 8,
    });
    expect(second.status).toBe(200);
    const sent = oai.requests.at(-1)! as {
      include: string[];
      input: { type: string; id?: string; encrypted_content?: string }[];
      store: boolean;
    };
    expect(sent.store).toBe(false);
    expect(sent.include).toEqual(["reasoning.encrypted_content", "message.output_text.logprobs"]);
    const reasoning = sent.input.filter((i) => i.type === "reasoning");
    expect(reasoning).toEqual([kept]);
    expect(sent.input.map((i) => i.id)).toContain(first.output.find((o) => o.type === "message")!.id);
    // Without an include of its own, the consumer's request still gets it.
    await post({ model: OAI, input: "Hi", max_output_tokens: 4 });
    expect((oai.requests.at(-1) as { include: unknown }).include).toEqual(["reasoning.encrypted_content"]);
  });

  it("sends a local Responses server (vLLM) Codex's namespace tools flattened, no web_search and no OpenAI-only members", async () => {
    net = await startNet();
    const NATIVE = "sim-vllm-native";
    const vllm = await net.sim({ flavor: "vllm", models: [{ id: NATIVE }] });
    await net.addProvider(vllm, {
      model: NATIVE,
      backend: openAICompatibleBackend({ baseUrl: vllm.baseUrl, kind: "vllm" }),
      capabilities: ["chat", "stream", "tools"],
    });
    const readFile = {
      type: "function",
      name: "read_file",
      description: "Reads a file",
      strict: false,
      parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
    };
    const shell = {
      type: "function",
      name: "shell",
      description: "Runs a command",
      strict: false,
      parameters: { type: "object", properties: { cmd: { type: "string" } }, required: ["cmd"] },
    };
    const codex = {
      model: NATIVE,
      instructions: "You are Codex.",
      input: [{ type: "message", role: "user", content: [{ type: "input_text", text: "Read README.md" }] }],
      tools: [
        { type: "namespace", name: "mcp__fs", description: "Files", tools: [readFile] },
        { type: "web_search", external_web_access: false },
        shell,
      ],
      tool_choice: "auto",
      parallel_tool_calls: false,
      reasoning: { effort: "medium", summary: "auto" },
      store: false,
      stream: true,
      include: ["reasoning.encrypted_content"],
      prompt_cache_key: "0199-session",
      client_metadata: { originator: "codex_cli_rs" },
    };
    const res = await post(codex);
    expect(res.status).toBe(200);
    const events = (await res.text())
      .split("\n\n")
      .filter((f) => f.includes("data: "))
      .map((f) => JSON.parse(/^data: (.*)$/m.exec(f)![1]!) as { type: string; item?: { type: string; name?: string; namespace?: string } });
    const sent = vllm.requests.at(-1)!;
    expect(sent.tools).toEqual([readFile, shell]);
    for (const member of ["include", "prompt_cache_key", "client_metadata"]) expect(sent).not.toHaveProperty(member);
    expect(sent.store).toBe(false);
    // The call to the flattened function comes back with its namespace, as the consumer declared it.
    const call = events.find((e) => e.type === "response.output_item.done" && e.item?.type === "function_call")!.item!;
    expect(call).toMatchObject({ name: "read_file", namespace: "mcp__fs" });
  });
});
