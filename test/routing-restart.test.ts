/**
 * Routing state survives a restart of a single SQLite hub: `srp-hub serve` runs as a real
 * child process, a provider node in this process serves jobs, and the hub is killed
 * (SIGKILL, after its write-behind wrote the jobs' outcomes) and later stopped (SIGTERM),
 * each time started again on the same data directory. The instance's first-seen time
 * (ramp-up; `/v1/models` shows it as `created`) and its 14-day health window carry on
 * from where they were instead of starting again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { int, openSqlite, type SqlDriver } from "@srp/hub/storage";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator } from "@srp/provider/simulator";
import { freePort } from "./support/postgres.js";

const CLI = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
const MODEL = "sim-llama-3-8b";
const PRICE = { input: "100000", output: "300000" };

const cleanups: (() => Promise<void> | void)[] = [];
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (error) {
      console.error("routing-restart clean-up:", error);
    }
  }
});

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, ms: number, read: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await pause(50);
  }
}

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.SRP_HUB_DB;
  delete env.SRP_HUB_ACCOUNTS;
  delete env.SRP_ADMIN_TOKEN;
  return env;
}

/** Starts `srp-hub serve` and resolves when it listens. */
async function serve(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, "serve", ...args], { stdio: ["ignore", "pipe", "pipe"], env: childEnv() });
  children.add(child);
  child.once("exit", () => children.delete(child));
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("listening on")) resolve();
    });
    child.once("exit", (code, signal) => reject(new Error(`srp-hub serve exited (${code ?? signal}) before listening:\n${err}`)));
  });
  return child;
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = once(child, "exit");
  child.kill(signal);
  await exited;
}

async function chat(url: string, key: string): Promise<void> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 8 }),
    signal: AbortSignal.timeout(15_000),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  await res.text();
}

/** The model's `created` in `/v1/models`: the first sighting of its earliest instance, in seconds. */
async function modelCreated(url: string): Promise<number | undefined> {
  const res = await fetch(`${url}/v1/models`);
  const body = (await res.json()) as { data: { id: string; created: number }[] };
  return body.data.find((m) => m.id === MODEL)?.created;
}

interface Row {
  firstSeen: number;
  successes: number;
}

/** The instance's row as the hub last wrote it. */
async function row(raw: SqlDriver): Promise<Row | undefined> {
  const [r] = await raw.all("SELECT first_seen, state FROM routing_state");
  if (!r) return undefined;
  const state = JSON.parse(String(r.state)) as { window: { success: number }[] };
  return { firstSeen: int(r.first_seen), successes: state.window.reduce((n, b) => n + b.success, 0) };
}

describe("routing state across restarts of srp-hub serve (SQLite)", () => {
  it("keeps the instance's first sighting and health window through a crash and a clean restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "srp-routing-restart-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const key = `srp_rr_consumer_${Math.random().toString(36).slice(2, 12)}`;
    const providerKey = `srp_rr_provider_${Math.random().toString(36).slice(2, 12)}`;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const args = ["--port", String(port), "--data-dir", dataDir, "--account", `acct_c:${key}`, "--account", `acct_p:${providerKey}`];

    let hub = await serve(args);
    const sim = await startSimulator({ tokensPerSecond: 2000 });
    cleanups.push(() => sim.close());
    const provider: Provider = createProvider({
      hub: url,
      identity: generateIdentity(),
      account: providerKey,
      reconnect: { initialDelayMs: 200, maxDelayMs: 500 },
      instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 4 }],
    });
    cleanups.push(() => provider.close());
    await provider.ready();
    for (let i = 0; i < 3; i++) await chat(url, key);
    const created = await modelCreated(url);
    expect(created).toBeGreaterThan(0);

    const raw = openSqlite(join(dataDir, "hub.sqlite"));
    cleanups.push(() => raw.close());
    // Written behind within about a second, without a restart.
    const written = await until("the three outcomes written", 10_000, async () => {
      const r = await row(raw);
      return r && r.successes === 3 ? r : undefined;
    });
    expect(Math.floor(written.firstSeen / 1000)).toBe(created);

    // A crash: nothing runs on the way out; the restarted hub reads what was written.
    await stop(hub, "SIGKILL");
    hub = await serve(args);
    await until("the provider back", 15_000, async () => ((await modelCreated(url)) === undefined ? undefined : true));
    expect(await modelCreated(url)).toBe(created);
    for (let i = 0; i < 2; i++) await chat(url, key);

    // A clean stop writes what is pending; the window carries on from three, not from zero.
    await stop(hub, "SIGTERM");
    expect(await row(raw)).toEqual({ firstSeen: written.firstSeen, successes: 5 });

    hub = await serve(args);
    await until("the provider back again", 15_000, async () => ((await modelCreated(url)) === undefined ? undefined : true));
    expect(await modelCreated(url)).toBe(created);
  }, 90_000);
});
