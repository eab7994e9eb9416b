/**
 * The commands the READMEs and `npm start` print, run as printed in a fresh clone of this
 * repository after `npm install`: each CLI through `npx`, the conformance list, and the
 * `curl`, OpenAI SDK, Anthropic SDK and `npx srp-hub ledger` snippets `npm start` prints,
 * then the CLIs again after `npm start`.
 *
 * A fresh clone costs a full `npm install` (a few minutes, from npm's cache), so this runs
 * in CI (`CI=true`, as `.ci/run` is) or with `SRP_FRESH_CLONE=1`, and is skipped otherwise.
 * It clones the committed HEAD: uncommitted changes are not in the clone.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const enabled = process.env.CI === "true" || process.env.CI === "1" || process.env.SRP_FRESH_CLONE === "1";
const repo = fileURLToPath(new URL("..", import.meta.url));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a shell command line in `cwd` as a user would type it, without throwing on a non-zero exit. */
function sh(line: string, cwd: string, timeoutMs = 120_000, env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      "sh",
      ["-c", line],
      { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The command lines a README prints in its `sh` blocks that start with `npx <name>`. */
function printed(markdown: string, name: string): string[] {
  return markdown
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l.startsWith(`npx ${name} `));
}

describe.skipIf(!enabled)("a fresh clone", () => {
  let dir = "";
  let clone = "";
  let start: ChildProcess | undefined;
  let out = "";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "srp-fresh-"));
    clone = join(dir, "srp");
    const cloned = await sh(`git clone --quiet --depth 1 "file://${repo}" "${clone}"`, dir);
    expect(cloned.code, cloned.stderr).toBe(0);
    // As the README's quick start: npm install, with npm's cache (no network beyond the registry here).
    const installed = await sh("npm install --no-audit --no-fund --prefer-offline", clone, 600_000);
    expect(installed.code, installed.stderr.slice(-4000)).toBe(0);
  }, 660_000);

  afterAll(async () => {
    const group = (signal: NodeJS.Signals) => {
      try {
        process.kill(-start!.pid!, signal);
      } catch {
        /* the group is gone */
      }
    };
    if (start && start.exitCode === null && start.signalCode === null) {
      // Ctrl-C reaches the whole process group (npm and the script it runs), as in a terminal.
      const exited = new Promise((r) => start!.once("exit", r));
      group("SIGINT");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      group("SIGKILL"); // whatever of the group is left
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it("runs each CLI through npx right after npm install", async () => {
    for (const [cli, expected] of [
      ["srp-hub", "srp-hub serve"],
      ["srp-provider", "srp-provider setup"],
      ["srp-conformance", "srp-conformance hub"],
    ] as const) {
      const r = await sh(`npx ${cli} --help`, clone);
      expect(r.code, `${cli}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(expected);
    }
    const list = await sh("npx srp-conformance hub --list", clone);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^hub\.discovery\tMUST\t/m);
    expect(list.stdout.split("\n").length).toBeGreaterThan(40);
  }, 120_000);

  it("runs the srp-hub account, key and ledger commands the hub README prints", async () => {
    const { readFileSync } = await import("node:fs");
    const readme = readFileSync(join(clone, "packages/srp-hub/README.md"), "utf8");
    const lines = printed(readme, "srp-hub");
    const data = join(dir, "hub-data");
    const create = lines.find((l) => l.startsWith("npx srp-hub accounts create"));
    expect(create).toBeDefined();
    const made = await sh(`${create} --data-dir ${data}`, clone);
    expect(made.code, made.stderr).toBe(0);
    const account = /acct_[A-Za-z0-9_-]+/.exec(made.stdout)?.[0];
    expect(account, made.stdout).toBeDefined();
    for (const template of lines.filter((l) => / (keys list|ledger show|ledger verify|ledger history) /.test(`${l} `))) {
      const line = `${template.replace(/acct_…/g, account!)} --data-dir ${data}`;
      const r = await sh(line, clone);
      expect(r.code, `${line}: ${r.stderr}`).toBe(0);
    }
  }, 120_000);

  it("serves npm start's network, and the snippets it prints work as printed", async () => {
    const data = join(dir, "start-data");
    start = spawn("npm", ["start"], {
      cwd: clone,
      detached: true,
      env: { ...process.env, PORT: "0", SRP_DATA_DIR: data, SRP_SIMULATOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    await new Promise<void>((resolve, reject) => {
      start!.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("Ctrl-C stops it.")) resolve();
      });
      start!.once("exit", (code) => reject(new Error(`npm start exited ${code}: ${out}`)));
    });

    // The curl command, as printed (three lines joined by backslash-newlines).
    const curl = /^ {2}curl -N [\s\S]*?\n(?=\n)/m.exec(out)?.[0];
    expect(curl).toBeDefined();
    const streamed = await sh(curl!, clone);
    expect(streamed.code, streamed.stderr).toBe(0);
    expect(streamed.stdout).toContain("data: [DONE]");
    expect(streamed.stdout).toMatch(/"usage":\{[^}]*"prompt_tokens":\d+/);

    // The OpenAI SDK snippet, as a module in the clone (openai is installed there).
    const openai = /^ {2}import OpenAI from "openai";\n[\s\S]*?console\.log\(.*\);\n/m.exec(out)?.[0];
    expect(openai).toBeDefined();
    writeFileSync(join(clone, "openai-snippet.mjs"), openai!);
    const ranOpenAI = await sh("node openai-snippet.mjs", clone);
    expect(ranOpenAI.code, ranOpenAI.stderr).toBe(0);
    expect(ranOpenAI.stdout).toMatch(/receipt_id: 'job_/);

    // The Anthropic SDK snippet, printing what it made.
    const anthropic = /^ {2}import Anthropic from "@anthropic-ai\/sdk";\n[\s\S]*?messages\.create\(.*\);\n/m.exec(out)?.[0];
    expect(anthropic).toBeDefined();
    writeFileSync(join(clone, "anthropic-snippet.mjs"), `${anthropic}console.log(JSON.stringify(m));\n`);
    const ranAnthropic = await sh("node anthropic-snippet.mjs", clone);
    expect(ranAnthropic.code, ranAnthropic.stderr).toBe(0);
    const message = JSON.parse(ranAnthropic.stdout) as { type: string; content: { type: string }[] };
    expect(message.type).toBe("message");
    expect(message.content[0]!.type).toBe("text");

    // The account curl and the ledger command, as printed.
    const account = /^ {2}(curl \S+\/v1\/account .*)$/m.exec(out)?.[1];
    expect(account).toBeDefined();
    const shown = await sh(account!, clone);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: "acct_demo" });
    const ledger = /^ {2}(npx srp-hub ledger show \S+ --data-dir \S+)/m.exec(out)?.[1];
    expect(ledger).toBeDefined();
    const books = await sh(ledger!, clone);
    expect(books.code, books.stderr).toBe(0);
    expect(books.stdout).toMatch(/balance/);

    // The CLIs still run after npm start (which built again).
    const help = await sh("npx srp-provider --help", clone);
    expect(help.code, help.stderr).toBe(0);
  }, 360_000);
});
