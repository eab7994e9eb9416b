// The gateway phase's two paths to the simulator, started the way their users start them,
// each program in its own process (`Command`, bench/ipc.mjs), loopback only:
//
//  - the Portkey gateway (`@portkey-ai/gateway`, a bench-only devDependency): its Node
//    server entry with `--port=N --headless`, routing to the simulator as the `openai`
//    provider with a custom host (`x-portkey-provider` + `x-portkey-custom-host` headers);
//  - SRP as a user runs it: `srp-hub serve` on a SQLite data directory (billing on), a
//    consumer account funded with `srp-hub ledger deposit`, a node account whose key
//    `srp-provider setup` binds, and `srp-provider start --foreground` serving the
//    simulator with `--max-concurrency` raised.
//
// Each start returns what the load generator needs (base URL, headers) and a `stop`. The
// temporary directory is removed when the phase ends or the orchestrator exits.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "./ipc.mjs";

const file = (rel) => fileURLToPath(new URL(rel, import.meta.url));
const HUB_CLI = file("../packages/srp-hub/dist/cli.js");
const PROVIDER_CLI = file("../packages/srp-provider/dist/cli.js");
const PORTKEY = file("../node_modules/@portkey-ai/gateway/build/start-server.js");
const LOOPBACK = new URL("./loopback.mjs", import.meta.url).href;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A temporary directory removed by `remove()` or, at the latest, when this process exits. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(os.tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  process.once("exit", remove);
  return { dir, remove };
}

/** A port free on 127.0.0.1 now (for a program that takes a port but cannot be given 0). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** Runs a short CLI command to completion (bounded; killed if this process exits first); resolves with its stdout. */
function run(script, args, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [script, ...args], { timeout: timeoutMs, maxBuffer: 4 << 20 }, (error, stdout, stderr) => {
      running.delete(child);
      if (!error) return resolve(stdout);
      const failed = new Error(`${script.split("/").slice(-3).join("/")} ${args[0]} ${args[1] ?? ""} failed: ${error.message}\n${stderr}`);
      failed.stdout = stdout;
      reject(failed);
    });
    running.add(child);
  });
}

/** Polls `probe` until it returns a truthy value; throws after `timeoutMs`, or at once if `proc` exited. */
async function until(what, probe, proc, timeoutMs = 20_000) {
  const end = performance.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (error) {
      last = error;
    }
    if (!proc.running) throw new Error(`${proc.name} exited before ${what}:\n${proc.tail()}`);
    if (performance.now() > end) throw new Error(`${what} did not happen within ${timeoutMs} ms (${last ?? "no answer"}):\n${proc.tail()}`);
    await sleep(100);
  }
}

/**
 * The Portkey gateway in its own process, routing to the simulator (`simBaseUrl` ends in
 * `/v1`). Resolves with `{ url, headers, pid, stop }`; requests go to
 * `${url}/v1/chat/completions` with `headers`.
 */
export async function startPortkey({ simBaseUrl }) {
  const t = tempDir("srp-bench-portkey-");
  const port = await freePort();
  const proc = new Command("Portkey gateway", [PORTKEY, `--port=${port}`, "--headless"], {
    log: join(t.dir, "portkey.log"),
    preload: [LOOPBACK],
    env: { BENCH_GUARD_REMOVE_DIR: t.dir },
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await proc.stop();
    t.remove();
  };
  try {
    await until("the Portkey gateway answered GET /", async () => (await fetch(`${url}/`)).ok, proc);
    return {
      url,
      pid: proc.pid,
      // Portkey's own headers: the provider, and where that provider is (the simulator's OpenAI base URL).
      headers: { "x-portkey-provider": "openai", "x-portkey-custom-host": simBaseUrl, authorization: "Bearer sk-bench-unused" },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * SRP as a user runs it, by the CLIs: a hub on a SQLite data directory with billing, a
 * funded consumer account, and one node serving the simulator with `nodeConcurrency` jobs at
 * once. Resolves with `{ url, headers, hubPid, nodePid, model, verify, stop }` once the hub
 * lists `model`; `verify()` stops both and runs `srp-hub ledger verify`. `hubFlags` and
 * `nodeFlags` are Node flags for the two processes (e.g. `--cpu-prof`); `sqliteSync`
 * (`"normal"`) runs the hub with `--db sqlite:...?synchronous=normal`.
 */
export async function startSrpCli({
  simBaseUrl,
  model,
  nodeConcurrency,
  deposit = 100_000_000n,
  hubFlags = [],
  nodeFlags = [],
  sqliteSync,
}) {
  const t = tempDir("srp-bench-gateway-");
  const hubDir = join(t.dir, "hub");
  const nodeDir = join(t.dir, "provider");
  const hubCli = async (...args) => JSON.parse(await run(HUB_CLI, [...args, "--data-dir", hubDir]));
  const procs = [];
  const stopProcs = async () => {
    for (const p of procs.reverse()) await p.stop();
  };
  const stop = async () => {
    await stopProcs();
    t.remove();
  };
  try {
    const consumer = await hubCli("accounts", "create", "--name", "bench consumer");
    const node = await hubCli("accounts", "create", "--name", "bench node");
    await hubCli("ledger", "deposit", consumer.account.id, String(deposit), "--ref", "bench-gateway");
    const db = sqliteSync ? ["--db", `sqlite:${join(hubDir, "hub.sqlite")}?synchronous=${sqliteSync}`] : [];
    const hub = new Command("srp-hub serve", [HUB_CLI, "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", hubDir, ...db], {
      log: join(t.dir, "hub.log"),
      env: { BENCH_GUARD_REMOVE_DIR: t.dir },
      nodeFlags: hubFlags,
    });
    procs.push(hub);
    const [, url] = await hub.waitFor(/srp-hub listening on (\S+)/);
    const simRoot = simBaseUrl.replace(/\/v1$/, "");
    await run(PROVIDER_CLI, [
      "setup",
      "--hub",
      url,
      "--account-key",
      node.apiKey,
      "--dir",
      nodeDir,
      "--backend-url",
      simRoot,
      "--no-detect",
      "--no-probe",
      "--max-concurrency",
      String(nodeConcurrency),
    ]);
    const provider = new Command("srp-provider start", [PROVIDER_CLI, "start", "--foreground", "--dir", nodeDir], {
      log: join(t.dir, "provider.log"),
      env: { BENCH_GUARD_REMOVE_DIR: t.dir },
      nodeFlags,
    });
    procs.push(provider);
    const headers = { authorization: `Bearer ${consumer.apiKey}` };
    await until(
      `the hub listed ${model}`,
      async () => {
        const r = await fetch(`${url}/v1/models`, { headers });
        return r.ok && (await r.json()).data?.some((m) => m.id === model);
      },
      provider,
    );
    return {
      url,
      headers,
      hubPid: hub.pid,
      nodePid: provider.pid,
      consumer: consumer.account.id,
      /** Stops the node and the hub, then `srp-hub ledger verify` on their database. */
      async verify() {
        await stopProcs();
        try {
          return await hubCli("ledger", "verify");
        } catch (error) {
          try {
            return JSON.parse(error.stdout); // exit 1: { ok: false, problems }
          } catch {
            return { ok: false, problems: [String(error.message ?? error)] };
          }
        }
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
