/** `npm start`'s script as a real child process: it comes up, streams, and the printed snippets work. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { expect, it } from "vitest";
import OpenAI from "openai";

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
    const r = await new OpenAI({ baseURL, apiKey, maxRetries: 0 }).chat.completions.create({ model, messages: [{ role: "user", content: "Hello!" }] });
    expect(r.choices[0]!.message.content).toBeTruthy();
    const curl = /curl -N (\S+)/.exec(out)![1]!;
    expect(curl).toBe(`${baseURL}/chat/completions`);
    expect(out).toMatch(/consumer  Anthropic Messages \(POST \/v1\/messages\): HTTP 200, a text block of \d+ tokens, stop_reason (end_turn|max_tokens), cost \$0\.0000\d+/);
    const anthropicUrl = /new Anthropic\(\{ baseURL: "([^"]+)"/.exec(out)![1]!;
    const m = await new Anthropic({ baseURL: anthropicUrl, apiKey, maxRetries: 0 }).messages.create({ model, max_tokens: 16, messages: [{ role: "user", content: "Hello!" }] });
    expect(m.content[0]!.type).toBe("text");
  } finally {
    await stopped(run);
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
    const code = (await (await fetch(rpc, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getCode", params: [settlement, "latest"] }) })).json()) as { result: string };
    expect(code.result.length).toBeGreaterThan(100);
  } finally {
    await stopped(run);
  }
});
