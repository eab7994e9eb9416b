/**
 * Claude Code itself against a hub: the real CLI as a child process, `ANTHROPIC_BASE_URL`
 * pointed at the hub, an OpenAI-compatible provider (the model simulator) behind it. The
 * simulated model calls Claude Code's first tool, Claude Code runs it and sends the
 * result back, and the model answers from it: a whole tool-use loop, streamed, through
 * the Messages translation.
 *
 * Claude Code is not a dependency of this project (it is proprietary); `.ci/run` installs
 * it on the side and names its `cli.js` in `SRP_CLAUDE_CODE_CLI`. Without it this test is
 * skipped.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { KEY, MODEL, runProviderCli, startNet, until, type Net } from "./helpers.js";

const cli = process.env.SRP_CLAUDE_CODE_CLI;

let net: Net;
let home: string;
const jobs: { api: string; ok: boolean }[] = [];

beforeAll(async () => {
  if (!cli) return;
  net = await startNet();
  const sim = await net.sim({ models: [{ id: MODEL, contextLength: 200_000 }] });
  const p = await net.addProvider(sim, { contextLength: 200_000, capabilities: ["chat", "stream", "tools", "vision"] });
  p.on("job.end", (o) => jobs.push({ api: "chat.completions", ok: o.ok }));
  home = mkdtempSync(join(tmpdir(), "srp-claude-code-"));
});

afterAll(async () => {
  if (!cli) return;
  await net.close();
  rmSync(home, { recursive: true, force: true });
});

function claude(args: string[], model = MODEL): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli!, ...args], {
      cwd: home,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: home,
        ANTHROPIC_BASE_URL: net.url,
        ANTHROPIC_API_KEY: KEY,
        ANTHROPIC_MODEL: model,
        ANTHROPIC_SMALL_FAST_MODEL: model,
        ANTHROPIC_DEFAULT_HAIKU_MODEL: model,
        DISABLE_TELEMETRY: "1",
        DISABLE_AUTOUPDATER: "1",
        DISABLE_ERROR_REPORTING: "1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

it.skipIf(!cli)(
  "Claude Code runs a tool-use loop through the hub against an OpenAI-compatible provider",
  async () => {
    const { code, out, err } = await claude(["-p", "Say hello", "--max-turns", "3", "--output-format", "json"]);
    expect(err).toBe("");
    expect(code).toBe(0);
    const result = JSON.parse(out) as {
      type: string;
      subtype: string;
      is_error: boolean;
      num_turns: number;
      result: string;
      usage: { input_tokens: number; output_tokens: number };
    };
    expect(result).toMatchObject({ type: "result", subtype: "success", is_error: false });
    // Turn 1: the model called a tool; Claude Code ran it; turn 2: the model answered from its result.
    expect(result.num_turns).toBeGreaterThanOrEqual(2);
    expect(result.result).toMatch(/^The tool returned: /);
    expect(result.usage.input_tokens).toBeGreaterThan(0);
    expect(result.usage.output_tokens).toBeGreaterThan(0);
    expect(jobs.filter((j) => j.ok).length).toBeGreaterThanOrEqual(2);
    expect(jobs.every((j) => j.ok)).toBe(true);
  },
  120_000,
);

/**
 * The same loop through a node that `srp-provider setup` (the real CLI) configured
 * against an Ollama stand-in: setup reads the model's `tools` capability from Ollama's
 * `/api/show`, offers it under its canonical id, and Claude Code asks for it by its
 * Ollama tag.
 */
it.skipIf(!cli)(
  "Claude Code runs its tool loop through a node set up by srp-provider setup against Ollama",
  async () => {
    const run = runProviderCli;
    const ollama = await net.sim({ flavor: "ollama", models: [{ id: "qwen2.5-coder:7b", tools: true, contextLength: 200_000 }] });
    const dir = mkdtempSync(join(tmpdir(), "srp-claude-code-node-"));
    try {
      const setup = await run("setup", "--hub", net.url, "--dir", dir, "--no-detect", "--backend-url", ollama.url);
      expect(setup.status).toBe(0);
      expect(setup.stdout).toContain("qwen2.5-coder:7b -> qwen2.5-coder-7b-instruct");
      expect(setup.stdout).toMatch(/chat,stream,tools/);
      const before = net.hub.router.all().length;
      expect((await run("start", "--dir", dir)).status).toBe(0);
      await until(() => net.hub.router.all().length === before + 1, 10_000, "the node to offer its instance");
      const asked = ollama.requests.length;
      const { code, out, err } = await claude(["-p", "Say hello", "--max-turns", "3", "--output-format", "json"], "qwen2.5-coder:7b");
      expect(err).toBe("");
      expect(code).toBe(0);
      const result = JSON.parse(out) as { subtype: string; is_error: boolean; num_turns: number; result: string };
      expect(result).toMatchObject({ subtype: "success", is_error: false });
      expect(result.num_turns).toBeGreaterThanOrEqual(2);
      expect(result.result).toMatch(/^The tool returned: /);
      // The node sent Claude Code's requests, tools included, to Ollama under its own tag.
      const sent = ollama.requests.slice(asked) as { model?: string; tools?: unknown[] }[];
      expect(sent.some((r) => r.model === "qwen2.5-coder:7b" && Array.isArray(r.tools) && r.tools.length > 0)).toBe(true);
    } finally {
      await run("stop", "--dir", dir);
      rmSync(dir, { recursive: true, force: true });
    }
  },
  120_000,
);
