/** `npm start`'s script as a real child process: it comes up, streams, and the printed snippets work. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { expect, it } from "vitest";
import OpenAI from "openai";
import { startSimulator } from "@srp/provider/simulator";

/** Runs `npm start`'s script with `args` in a fresh data directory until it says it is up; returns its output so far. */
async function started(args: string[], env: Record<string, string>): Promise<{ child: ChildProcess; out: string; data: string }> {
  const data = mkdtempSync(join(tmpdir(), "srp-start-"));
  const child = spawn(process.execPath, [new URL("../scripts/start.mjs", import.meta.url).pathname, ...args], {
    env: { ...process.env, PORT: "0", SRP_DATA_DIR: data, SRP_SIMULATOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("Ctrl-C stops it.")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`start exited ${code}: ${out}`)));
    });
  } catch (error) {
    rmSync(data, { recursive: true, force: true });
    throw error;
  }
  return { child, out, data };
}

/** Stops the script with Ctrl-C (it must exit 0) and removes its data. */
async function stopped(run: { child: ChildProcess; data: string }): Promise<void> {
  try {
    if (run.child.exitCode === null) {
      const exited = new Promise<number | null>((resolve) => run.child.once("exit", resolve));
      run.child.kill("SIGINT");
      expect(await exited).toBe(0);
    }
  } finally {
    if (run.child.exitCode === null) run.child.kill("SIGKILL");
    rmSync(run.data, { recursive: true, force: true });
  }
}

it("starts a local network on the simulator, and the printed URL and key work with the OpenAI SDK", async () => {
  const run = await started([], {});
  try {
    const { out } = run;
    expect(out).toContain("SIMULATOR");
    expect(out).toMatch(/receipt job_\S+ verified against the hub key/);
    expect(out).toMatch(/ledger    acct_demo: balance \$[0-9.]+, spent \$0\.0000[0-9]+, earned/);
    expect(out).toMatch(/ledger    verify: every invariant holds/);
    const baseURL = /baseURL: "([^"]+)"/.exec(out)![1]!;
    const apiKey = /apiKey: "([^"]+)"/.exec(out)![1]!;
    const model = /model: "([^"]+)"/.exec(out)![1]!;
    const r = await new OpenAI({ baseURL, apiKey, maxRetries: 0 }).chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hello!" }],
    });
    expect(r.choices[0]!.message.content).toBeTruthy();
    const curl = /curl -N (\S+)/.exec(out)![1]!;
    expect(curl).toBe(`${baseURL}/chat/completions`);
    expect(out).toMatch(
      /consumer  Anthropic Messages \(POST \/v1\/messages\): HTTP 200, a text block of \d+ tokens, stop_reason (end_turn|max_tokens), cost \$0\.0000\d+/,
    );
    const anthropicUrl = /new Anthropic\(\{ baseURL: "([^"]+)"/.exec(out)![1]!;
    const m = await new Anthropic({ baseURL: anthropicUrl, apiKey, maxRetries: 0 }).messages.create({
      model,
      max_tokens: 16,
      messages: [{ role: "user", content: "Hello!" }],
    });
    expect(m.content[0]!.type).toBe("text");

    // Every surface the README lists works on this network: tools, vision, embeddings, images, speech, transcription, batches.
    const openai = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
    const tool = await openai.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [
        {
          type: "function",
          function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
        },
      ],
    });
    expect(tool.choices[0]!.message.tool_calls?.[0]).toMatchObject({ type: "function", function: { name: "get_weather" } });
    const seen = await openai.chat.completions.create({
      model,
      max_tokens: 8,
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] }],
    });
    expect(seen.choices[0]!.message.content).toBeTruthy();
    const served = (cap: string) => new RegExp(`Also served: ${cap} +POST (\\S+) +model "([^"]+)"`).exec(out)!;
    const embed = served("embeddings");
    expect(embed[1]).toBe("/v1/embeddings");
    expect((await openai.embeddings.create({ model: embed[2]!, input: ["one", "two"] })).data).toHaveLength(2);
    const image = await openai.images.generate({ model: served("images")[2]!, prompt: "a square", n: 1 });
    expect(image.data?.[0]?.b64_json).toBeTruthy();
    const speech = await openai.audio.speech.create({
      model: served("speech")[2]!,
      voice: "alloy",
      input: "Hello there.",
      response_format: "wav",
    });
    const wav = Buffer.from(await speech.arrayBuffer());
    expect(wav.subarray(0, 4).toString("latin1")).toBe("RIFF");
    const text = await openai.audio.transcriptions.create({
      model: served("transcription")[2]!,
      file: new File([wav], "hello.wav", { type: "audio/wav" }),
    });
    expect(text.text).toBeTruthy();
    expect(out).toContain("POST /v1/batch");
    const batch = await fetch(`${baseURL}/batch`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        requests: [
          { custom_id: "a", url: "/v1/chat/completions", body: { model, max_tokens: 4, messages: [{ role: "user", content: "hi" }] } },
          { custom_id: "b", url: "/v1/embeddings", body: { model: embed[2], input: "x" } },
        ],
      }),
    });
    expect(batch.status).toBe(202);

    // The printed async-job commands: a video and a run, each polled at GET /v1/jobs/{id} until completed.
    const printed = [
      ...out.matchAll(/curl -s (\S+) -H "authorization: Bearer (\S+)" -H "content-type: application\/json" \\\n\s+-d '([^']+)'/g),
    ];
    expect(printed.map((m) => new URL(m[1]!).pathname)).toEqual(["/v1/videos", "/v1/runs"]);
    for (const [, url, key, body = ""] of printed) {
      const created = await fetch(url!, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body,
      });
      expect(created.status).toBe(202);
      const { id } = (await created.json()) as { id: string };
      let status = "queued";
      for (let i = 0; i < 400 && status !== "completed" && status !== "failed"; i++) {
        await new Promise((r) => setTimeout(r, 50));
        status = (
          (await (await fetch(`${baseURL}/jobs/${id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as { status: string }
        ).status;
      }
      expect(status).toBe("completed");
    }
  } finally {
    await stopped(run);
  }
});

it("serves a detected local server's models under their canonical ids with the capabilities the server reports", async () => {
  const sim = await startSimulator({
    flavor: "ollama",
    models: [
      { id: "llama3.1:8b", tools: true, contextLength: 131072 },
      { id: "nomic-embed-text:latest", embedding: true, quantization: "F16" },
    ],
  });
  const run = await started([], { SRP_SIMULATOR: "0", SRP_BACKEND_URL: sim.url }).catch(async (e: unknown) => {
    await sim.close();
    throw e;
  });
  try {
    const { out } = run;
    expect(out).not.toContain("SIMULATOR");
    expect(out).toMatch(/provider  found ollama at http:\/\/127\.0\.0\.1:\d+\/v1 with 2 model\(s\)/);
    expect(out).toContain(
      "provider    llama3.1:8b -> llama-3.1-8b-instruct  Q4_K_M  context 131072  concurrency 2  chat,stream,tools,json_mode",
    );
    expect(/model: "([^"]+)"/.exec(out)![1]).toBe("llama-3.1-8b-instruct");
    const baseURL = /baseURL: "([^"]+)"/.exec(out)![1]!;
    const apiKey = /apiKey: "([^"]+)"/.exec(out)![1]!;
    const openai = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
    const tool = await openai.chat.completions.create({
      model: "llama3.1:8b",
      messages: [{ role: "user", content: "Weather?" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: {} } } }],
    });
    expect(tool.choices[0]!.finish_reason).toBe("tool_calls");
    expect(out).toMatch(/Also served: embeddings +POST \/v1\/embeddings +model "nomic-embed-text-v1\.5"/);
    expect((await openai.embeddings.create({ model: "nomic-embed-text", input: "x" })).data).toHaveLength(1);
  } finally {
    await stopped(run);
    await sim.close();
  }
});

it("with --chain, also takes an x402 payment from the official client and pays the provider out on-chain", async () => {
  const run = await started(["--chain"], { CHAIN_PORT: "0" });
  try {
    const { out } = run;
    expect(out).toMatch(/x402 +0x[0-9a-fA-F]{40} paid by x402 \(HTTP 200, transaction 0x[0-9a-f]{64}\)/);
    const payout = /payouts +0x[0-9a-f]{40} paid \$([0-9.]+) and the protocol \$([0-9.]+) on-chain/.exec(out);
    expect(payout).not.toBeNull();
    expect(Number(payout![1])).toBeGreaterThan(0);
    expect(out).toContain("ledger    verify after payouts: every invariant holds");
    // The printed RPC URL serves the chain the contracts are on.
    const rpc = /RPC +(http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    const settlement = /settlement +(0x[0-9a-fA-F]{40})/.exec(out)![1]!;
    const code = (await (
      await fetch(rpc, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getCode", params: [settlement, "latest"] }),
      })
    ).json()) as { result: string };
    expect(code.result.length).toBeGreaterThan(100);
  } finally {
    await stopped(run);
  }
});
