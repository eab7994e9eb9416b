/**
 * A node set up by the real `srp-provider` CLI against the vLLM-flavoured simulator offers
 * `responses` and `completions` (SRP-OFF-015, SRP-OFF-016) and serves them natively through
 * a real hub to the official OpenAI SDK: the simulator receives `/v1/responses` and
 * `/v1/completions` requests, not chat completions. A node whose server has neither
 * (llama.cpp: completions only) offers what it has.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import type { Simulator, SimulatorOptions } from "@srp/provider/simulator";
import { KEY, runProviderCli, startNet, until, type Net } from "./helpers.js";

let net: Net | undefined;
let dir: string | undefined;

afterEach(async () => {
  if (dir) await runProviderCli("stop", "--dir", dir);
  await net?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  net = undefined;
  dir = undefined;
});

interface FileInstance {
  model: string;
  capabilities: string[];
  backend: { kind: string; apis?: string[] };
}

async function setUp(options: SimulatorOptions): Promise<{ instances: FileInstance[]; sim: Simulator }> {
  net = await startNet();
  const sim = await net.sim(options);
  dir = mkdtempSync(join(tmpdir(), "srp-native-"));
  const setup = await runProviderCli("setup", "--hub", net.url, "--dir", dir, "--no-detect", "--backend-url", sim.url);
  expect(setup.stderr).toBe("");
  expect(setup.status).toBe(0);
  const instances = (JSON.parse(readFileSync(join(dir, "provider.json"), "utf8")) as { instances: FileInstance[] }).instances;
  const start = await runProviderCli("start", "--dir", dir);
  expect(start.status, `srp-provider start: ${start.stderr}`).toBe(0);
  await until(() => net!.hub.router.all().length === instances.length, 10_000, "the node to offer its instances");
  return { instances, sim };
}

const WEATHER = [
  {
    type: "function" as const,
    name: "get_weather",
    description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    strict: false,
  },
];

describe("nodes set up by the CLI take responses and completions jobs natively", () => {
  it("vLLM: setup records both; the hub sees them; the SDK's responses and completions reach /v1/responses and /v1/completions", async () => {
    const { instances, sim } = await setUp({
      flavor: "vllm",
      models: [{ id: "Qwen/Qwen2.5-Coder-7B-Instruct", tools: true, contextLength: 32768 }],
    });
    expect(instances).toHaveLength(1);
    expect(instances[0]!.capabilities).toEqual(expect.arrayContaining(["chat", "stream", "responses", "completions"]));
    expect(instances[0]!.backend).toMatchObject({ kind: "vllm", apis: ["responses", "completions"] });
    const offered = net!.hub.router.all()[0]!.instance;
    expect(offered.capabilities).toEqual(expect.arrayContaining(["responses", "completions"]));
    const model = instances[0]!.model;
    const openai = new OpenAI({ baseURL: `${net!.url}/v1`, apiKey: KEY, maxRetries: 0 });

    const text = await openai.completions.create({ model, prompt: "def fib(n):", max_tokens: 8 });
    expect(text).toMatchObject({ object: "text_completion", choices: [{ index: 0 }] });
    expect(text.choices[0]!.text.length).toBeGreaterThan(0);
    expect(text.usage).toMatchObject({ completion_tokens: 8 });
    expect(sim.requests.at(-1)).toMatchObject({ model: "Qwen/Qwen2.5-Coder-7B-Instruct", prompt: "def fib(n):" });
    let streamed = "";
    for await (const c of await openai.completions.create({ model, prompt: "def fib(n):", max_tokens: 8, stream: true }))
      streamed += c.choices[0]?.text ?? "";
    expect(streamed).toBe(text.choices[0]!.text);

    const r = await openai.responses.create({ model, input: "Say hello", max_output_tokens: 10 });
    expect(r.output_text.length).toBeGreaterThan(0);
    expect(r.usage).toMatchObject({ output_tokens: 10 });
    // Served natively: the simulator got a Responses request, not a chat completion.
    expect(sim.requests.at(-1)).toMatchObject({ input: "Say hello", max_output_tokens: 10 });
    expect(sim.requests.at(-1)).not.toHaveProperty("messages");

    const stream = openai.responses.stream({ model, input: "Weather in Paris?", tools: WEATHER });
    const kinds: string[] = [];
    stream.on("event", (e) => kinds.push(e.type));
    const final = await stream.finalResponse();
    expect(final.output[0]).toMatchObject({ type: "function_call", name: "get_weather", arguments: '{"city":"example city"}' });
    expect(kinds).toEqual(
      expect.arrayContaining([
        "response.created",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.completed",
      ]),
    );
    expect(sim.requests.at(-1)).toMatchObject({ input: "Weather in Paris?", stream: true });
  }, 60_000);

  it("llama.cpp: setup records completions only", async () => {
    const { instances } = await setUp({ flavor: "llamacpp", models: [{ id: "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf", tools: true }] });
    expect(instances[0]!.capabilities).toContain("completions");
    expect(instances[0]!.capabilities).not.toContain("responses");
    expect(instances[0]!.backend).toMatchObject({ kind: "llamacpp", apis: ["completions"] });
    const offered = net!.hub.router.all()[0]!.instance;
    expect(offered.capabilities).toContain("completions");
    expect(offered.capabilities).not.toContain("responses");
  }, 60_000);
});
