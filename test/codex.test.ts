/**
 * The real Codex CLI against a hub: `codex exec` as a child process, configured with the
 * `config.toml` the hub's README prints (a custom model provider on the Responses API),
 * a billed hub on a SQLite ledger and an OpenAI-compatible provider (the model simulator)
 * behind it, so every Responses request is translated to chat completions and back. The
 * simulated model calls Codex's shell tool (`exec_command`) with one command, Codex runs
 * it in a temporary workspace and sends the result back, and the model answers from it.
 *
 * Codex is not a dependency of this project; `.ci/run` installs it on the side and names
 * its launcher in `SRP_CODEX_CLI`. Without it these tests are skipped locally, and fail
 * in CI.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyReceipt } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { AGENT_CREDITS, shownUsage, startAgentNet, type AgentNet } from "./support/agent-net.js";

const cli = process.env.SRP_CODEX_CLI;
const README = join(dirname(fileURLToPath(import.meta.url)), "../packages/srp-hub/README.md");
/** The command the simulated model asks Codex to run, and the effect it has. */
const COMMAND = "tr a-z A-Z < answer.txt | tee shout.txt";

/** The `config.toml` the README prints, pointed at `baseUrl` instead of the example hub. */
function readmeCodexConfig(baseUrl: string): string {
  const readme = readFileSync(README, "utf8");
  const block = [...readme.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes("[model_providers.srp]"));
  if (!block) throw new Error("the hub's README has no Codex config.toml snippet");
  const example = block.match(/^base_url = "([^"]+)"$/m)?.[1];
  if (!example) throw new Error("the README's Codex snippet has no base_url");
  return block.replace(example, `${baseUrl}/v1`);
}

interface CodexRun {
  code: number | null;
  events: Record<string, unknown>[];
  err: string;
}

let home: string;

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "srp-codex-"));
});

afterAll(() => {
  rmSync(home, { recursive: true, force: true });
});

/** Runs `codex exec --json` in a fresh workspace holding `answer.txt`, with `net`'s key. */
function codex(net: AgentNet, key: string, prompt: string, name: string, extra: string[] = []): Promise<CodexRun & { workspace: string }> {
  const codexHome = join(home, name, "codex-home");
  const workspace = join(home, name, "workspace");
  mkdirSync(codexHome, { recursive: true });
  mkdirSync(workspace, { recursive: true });
  writeFileSync(join(codexHome, "config.toml"), readmeCodexConfig(net.url));
  writeFileSync(join(workspace, "answer.txt"), "forty-two\n");
  const args = [
    "exec",
    "--json",
    "--strict-config", // every key of the README's snippet is one this Codex knows
    "--skip-git-repo-check",
    // No bubblewrap sandbox (it needs user namespaces a CI runner may lack): the only
    // command run is the simulator's scripted one, in a temporary workspace.
    "--sandbox",
    "danger-full-access",
    "-c",
    "analytics.enabled=false",
    "-c",
    "check_for_update_on_startup=false",
    ...extra,
    "-C",
    workspace,
    prompt,
  ];
  const [command, argv] = cli!.endsWith(".js") ? [process.execPath, [cli!, ...args]] : [cli!, args];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      cwd: workspace,
      env: { PATH: process.env.PATH ?? "", HOME: join(home, name), CODEX_HOME: codexHome, SRP_API_KEY: key },
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
      const events = out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, events, err, workspace });
    });
  });
}

async function receiptOf(net: AgentNet, id: string): Promise<Receipt> {
  const res = await fetch(`${net.url}/v1/receipts/${id}`, { headers: { authorization: `Bearer ${net.consumer.key}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { receipt: Receipt }).receipt;
}

it.runIf(process.env.CI)("CI has the Codex CLI (SRP_CODEX_CLI, installed by .ci/run)", () => {
  expect(cli, "SRP_CODEX_CLI must name the Codex CLI in CI").toBeTruthy();
});

describe.skipIf(!cli)("Codex CLI against a hub (skipped without SRP_CODEX_CLI)", () => {
  let net: AgentNet;

  beforeAll(async () => {
    net = await startAgentNet({ toolArguments: { exec_command: { cmd: COMMAND } } });
  });

  afterAll(async () => {
    await net?.close();
  });

  it("runs a shell command the model asked for, answers from its output, and every turn is billed as shown", async () => {
    const run = await codex(net, net.consumer.key, "Shout what answer.txt says and keep a copy in shout.txt.", "task");
    expect(run.code, run.err).toBe(0);

    // Codex ran the command the model called exec_command with, in the workspace.
    const commands = run.events
      .filter((e) => e.type === "item.completed" && (e.item as { type?: string }).type === "command_execution")
      .map((e) => e.item as { command: string; exit_code: number; aggregated_output: string });
    expect(commands).toHaveLength(1);
    expect(commands[0]!.command).toContain(COMMAND);
    expect(commands[0]).toMatchObject({ exit_code: 0, aggregated_output: "FORTY-TWO\n" });
    expect(readFileSync(join(run.workspace, "shout.txt"), "utf8")).toBe("FORTY-TWO\n");
    // The model answered from the command's output (the simulator echoes the tool result).
    const messages = run.events
      .filter((e) => e.type === "item.completed" && (e.item as { type?: string }).type === "agent_message")
      .map((e) => (e.item as { text: string }).text);
    expect(messages.at(-1)).toMatch(/^The tool returned: /);
    expect(messages.at(-1)).toContain("FORTY-TWO");

    // Two turns (the tool call, the answer), each a streamed Responses request through the hub.
    const turns = net.exchanges.filter((x) => x.method === "POST" && x.path === "/v1/responses");
    expect(turns).toHaveLength(2);
    expect(net.exchanges).toHaveLength(2); // nothing but /v1/responses
    let shownCost = 0n;
    let shownInput = 0;
    let shownOutput = 0;
    for (const t of turns) {
      expect(t.status).toBe(200);
      expect(t.contentType).toContain("text/event-stream");
      const usage = shownUsage(t);
      expect(usage).toMatchObject({ measured: true, receipt_id: expect.any(String) });
      const receipt = await receiptOf(net, usage!.receipt_id!);
      expect(verifyReceipt(receipt, { hubId: net.hub.id })).toEqual([]);
      expect(usage!.cost_units).toBe(receipt.cost);
      expect(usage!.input_tokens).toBe(receipt.usage.promptTokens);
      expect(usage!.output_tokens).toBe(receipt.usage.completionTokens);
      shownCost += BigInt(usage!.cost_units);
      shownInput += usage!.input_tokens;
      shownOutput += usage!.output_tokens;
    }
    // What Codex counted is what the hub billed.
    const completed = run.events.find((e) => e.type === "turn.completed") as
      | { usage: { input_tokens: number; output_tokens: number } }
      | undefined;
    expect(completed?.usage).toMatchObject({ input_tokens: shownInput, output_tokens: shownOutput });
    // The ledger charged exactly what was shown, and the books balance.
    const summary = await net.store.summary(net.consumer.id);
    expect(summary).toMatchObject({ spent: shownCost, balance: AGENT_CREDITS - shownCost, held: 0n, requests: 2 });
    expect(shownCost).toBeGreaterThan(0n);
    expect(await net.store.verify()).toEqual([]);
  }, 120_000);

  it("shows the hub's refusal when the account cannot pay, and charges nothing", async () => {
    const broke = await net.store.createAccount({ name: "broke" });
    const { key } = await net.store.createApiKey(broke.id);
    // Another request of this account holds all its money.
    const hold = await net.store.reserve(broke.id, AGENT_CREDITS);
    expect(hold.ok).toBe(true);
    const before = net.exchanges.length;
    const run = await codex(net, key, "Say hello.", "broke", [
      "-c",
      "model_providers.srp.request_max_retries=0",
      "-c",
      "model_providers.srp.stream_max_retries=0",
    ]);
    expect(run.code).toBe(1);
    const failed = run.events.find((e) => e.type === "turn.failed") as { error: { message: string } } | undefined;
    expect(failed?.error.message).toMatch(/402/);
    const refused = net.exchanges.slice(before);
    expect(refused.length).toBeGreaterThan(0);
    for (const x of refused) {
      expect(x.status).toBe(402);
      expect(JSON.parse(x.response)).toMatchObject({ error: { code: "billing.insufficient_credits" } });
    }
    expect(await net.store.summary(broke.id)).toMatchObject({ spent: 0n, held: AGENT_CREDITS, requests: 0 });
    if (hold.ok) await net.store.release(hold.reservationId, "test");
    expect(await net.store.summary(broke.id)).toMatchObject({ balance: AGENT_CREDITS, held: 0n });
    expect(await net.store.verify()).toEqual([]);
  }, 120_000);
});
