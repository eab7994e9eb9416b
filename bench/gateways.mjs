// The gateway phase's two paths to the simulator, started the way their users start them,
// each program in its own process (`Command`, bench/ipc.mjs), loopback only:
//
//  - the Portkey gateway (`@portkey-ai/gateway`, a bench-only devDependency): its Node
//    server entry with `--port=N --headless`, routing to the simulator as the `openai`
//    provider with a custom host (`x-portkey-provider` + `x-portkey-custom-host` headers);
//  - SRP as a user runs it: `srp-hub serve` on a SQLite data directory (billing on), a
//    consumer account funded with `srp-hub ledger deposit`, a node account whose key
//    `srp-provider setup` binds, and `srp-provider start --foreground` serving the
//    simulator with `--max-concurrency` raised;
//  - SRP on several processes: `srp-hub serve --workers N` on a throwaway PostgreSQL
//    server (bench/postgres.mjs) and Redis server (bench/redis.mjs), with several nodes
//    (docs/deployment.md), and what /proc tells about which worker holds which node.
//
// Each start returns what the load generator needs (base URL, headers) and a `stop`. The
// temporary directory is removed when the phase ends or the orchestrator exits.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, Helper } from "./ipc.mjs";
import { startPostgres } from "./postgres.mjs";
import { freePort } from "../scripts/postgres.mjs";

const file = (rel) => fileURLToPath(new URL(rel, import.meta.url));
const HUB_CLI = file("../packages/srp-hub/dist/cli.js");
const PROVIDER_CLI = file("../packages/srp-provider/dist/cli.js");
const PORTKEY = file("../node_modules/@portkey-ai/gateway/build/start-server.js");
const LOOPBACK = new URL("./loopback.mjs", import.meta.url).href;
const WORKER_IDS = new URL("./worker-ids.mjs", import.meta.url).href;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A temporary directory removed by `remove()` or, at the latest, when this process exits. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(os.tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  process.once("exit", remove);
  return { dir, remove };
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

// ---------------------------------------------------------------------------
// SRP on several processes, and where its nodes and requests land (Linux /proc)

/** The TCP sockets of /proc/net/tcp or tcp6 text (pure): local and remote port, state (`01` established), inode. */
export function parseProcNetTcp(text) {
  const out = [];
  for (const line of text.trim().split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const port = (address) => Number.parseInt(address.slice(address.lastIndexOf(":") + 1), 16);
    out.push({ local: port(f[1]), remote: port(f[2]), state: f[3], inode: Number(f[9]) });
  }
  return out;
}

/** The established TCP sockets on this machine (this network namespace); empty where there is no /proc. */
function tcpSockets() {
  const out = [];
  for (const name of ["tcp", "tcp6"]) {
    try {
      out.push(...parseProcNetTcp(readFileSync(`/proc/net/${name}`, "utf8")).filter((s) => s.state === "01"));
    } catch {
      /* no such table */
    }
  }
  return out;
}

/** The socket inodes process `pid` holds open. */
function socketInodes(pid) {
  const out = new Set();
  let fds = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** The process ids whose parent is `pid` (from /proc/<pid>/stat of every process). */
export function childPids(pid) {
  const out = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(name));
    } catch {
      /* ended meanwhile */
    }
  }
  return out;
}

/**
 * Which of `workerPids` holds the connection that process `clientPid` opened to `port` on
 * this machine, or undefined (not connected yet, or no /proc). A node's WebSocket session
 * is such a connection: node:cluster hands each accepted connection to one worker.
 */
export function connectionOwner(clientPid, port, workerPids) {
  const sockets = tcpSockets();
  const mine = socketInodes(clientPid);
  const clientPorts = new Set(sockets.filter((s) => s.remote === port && mine.has(s.inode)).map((s) => s.local));
  const serverInodes = new Set(sockets.filter((s) => s.local === port && clientPorts.has(s.remote)).map((s) => s.inode));
  if (serverInodes.size === 0) return undefined;
  return workerPids.find((w) => [...socketInodes(w)].some((inode) => serverInodes.has(inode)));
}

/**
 * Of the answered requests in `rows` (`{ holder, nodeId, n }`: the worker that admitted
 * them, by its ledger holder id, and the node that served them), how many were served by a
 * node whose session another worker holds, i.e. crossed a direct link between processes
 * (pure). `workerOfHolder` and `workerOfNode` map holder ids and node ids to worker pids;
 * rows either map misses are counted as `unknown`.
 */
export function crossedLinks(rows, workerOfHolder, workerOfNode) {
  let total = 0;
  let crossed = 0;
  let unknown = 0;
  for (const { holder, nodeId, n } of rows) {
    total += n;
    const admitted = workerOfHolder.get(holder);
    const served = workerOfNode.get(nodeId);
    if (admitted === undefined || served === undefined) unknown += n;
    else if (admitted !== served) crossed += n;
  }
  return { total, crossed, unknown };
}

/** Rejects after `ms` with `what` in the message unless `promise` settles first; `late` gets a value that came too late. */
function bounded(promise, ms, what, late = () => {}) {
  let timer;
  let timedOut = false;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`${what} took longer than ${Math.round(ms / 1000)} s`));
    }, ms);
  });
  promise.then(
    (v) => timedOut && late(v),
    () => {},
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * SRP on several hub processes, by the CLIs: a throwaway PostgreSQL server (durable
 * settings) and Redis server, a funded consumer account and a node account created with
 * `srp-hub` against PostgreSQL, `srp-hub serve --workers <workers> --redis … --db
 * postgres://…` on one port, and `nodes` nodes (`srp-provider setup` + `start`, each serving
 * the simulator with `nodeConcurrency` jobs at once). Every step is bounded by `timeoutMs`
 * in all; on failure everything started is stopped and the error says why. Resolves once
 * every node is announced in the hub's live directory (Redis) and the hub lists `model`,
 * with `{ url, headers, hubPid, nodePids, workerPids(), placement(), admissions(from, to),
 * verify, stop }`: `placement()` maps node ids to the worker pid holding their session,
 * `admissions` counts the receipts recorded between two wall-clock times (ms) by admitting
 * worker (pid) and node.
 */
export async function startSrpCluster({
  simBaseUrl,
  model,
  nodeConcurrency,
  workers = 2,
  nodes = 2,
  deposit = 100_000_000n,
  hubFlags = [],
  timeoutMs = 120_000,
}) {
  const deadline = performance.now() + timeoutMs;
  const left = (cap) => {
    const ms = deadline - performance.now();
    if (ms <= 0) throw new Error(`starting the ${workers}-process hub took longer than ${Math.round(timeoutMs / 1000)} s`);
    return Math.min(cap, ms);
  };
  const t = tempDir("srp-bench-cluster-");
  const hubDir = join(t.dir, "hub");
  const idsFile = join(t.dir, "worker-ids");
  const procs = [];
  let pg;
  let redis;
  const stopProcs = async () => {
    for (const p of procs.reverse()) await p.stop();
    procs.length = 0;
  };
  const stop = async () => {
    await stopProcs();
    await redis?.stop();
    await pg?.stop();
    t.remove();
  };
  try {
    pg = await bounded(startPostgres(), left(60_000), "starting PostgreSQL", (late) => late.stop?.());
    if (pg.skipped) throw new Error(`no PostgreSQL: ${pg.skipped}`);
    redis = new Helper("redis (gateway)", "./redis.mjs");
    const r = await redis.call("start", {}, left(20_000));
    if (r.skipped) throw new Error(r.skipped);
    const dbArgs = ["--db", pg.url, "--data-dir", hubDir];
    const hubCli = async (args, ms) => JSON.parse(await run(HUB_CLI, [...args, ...dbArgs], ms));
    const consumer = await hubCli(["accounts", "create", "--name", "bench consumer"], left(60_000));
    const node = await hubCli(["accounts", "create", "--name", "bench node"], left(60_000));
    await hubCli(["ledger", "deposit", consumer.account.id, String(deposit), "--ref", "bench-gateway-cluster"], left(60_000));
    const port = await freePort();
    const hubArgs = ["serve", "--port", String(port), "--host", "127.0.0.1", "--workers", String(workers), "--redis", r.url, ...dbArgs];
    const hub = new Command(`srp-hub serve --workers ${workers}`, [HUB_CLI, ...hubArgs], {
      log: join(t.dir, "hub.log"),
      env: { BENCH_GUARD_REMOVE_DIR: t.dir, BENCH_WORKER_IDS: idsFile },
      preload: [WORKER_IDS],
      nodeFlags: hubFlags,
    });
    procs.push(hub);
    const log = () => readFileSync(hub.log, "utf8");
    await until(`${workers} workers listening`, () => (log().match(/srp-hub listening on/g) ?? []).length >= workers, hub, left(60_000));
    const hubId = /\(hub id (\S+)\)/.exec(log())?.[1];
    const url = `http://127.0.0.1:${port}`;
    const simRoot = simBaseUrl.replace(/\/v1$/, "");
    const nodeProcs = [];
    for (let i = 0; i < nodes; i++) {
      const dir = join(t.dir, `provider-${i}`);
      const setupArgs = ["setup", "--hub", url, "--account-key", node.apiKey, "--dir", dir, "--backend-url", simRoot];
      const setup = await run(
        PROVIDER_CLI,
        [...setupArgs, "--no-detect", "--no-probe", "--max-concurrency", String(nodeConcurrency)],
        left(60_000),
      );
      const nodeId = /node id\s+(\S+)/.exec(setup)?.[1];
      const provider = new Command(`srp-provider start (node ${i + 1})`, [PROVIDER_CLI, "start", "--foreground", "--dir", dir], {
        log: join(t.dir, `provider-${i}.log`),
        env: { BENCH_GUARD_REMOVE_DIR: t.dir },
      });
      procs.push(provider);
      nodeProcs.push({ nodeId, proc: provider });
    }
    const workerPids = () => childPids(hub.pid);
    const placement = () => new Map(nodeProcs.map(({ nodeId, proc }) => [nodeId, connectionOwner(proc.pid, port, workerPids())]));
    const headers = { authorization: `Bearer ${consumer.apiKey}` };
    // Ready once every node is in the live directory (so every worker routes to it) and the hub lists the model.
    await until(
      `all ${nodes} nodes announced in Redis`,
      async () => (await redis.call("command", { args: ["HLEN", `srp:${hubId}:nodes`] })) >= nodes,
      hub,
      left(30_000),
    );
    await until(
      `the hub listed ${model}`,
      async () => {
        const res = await fetch(`${url}/v1/models`, { headers });
        return res.ok && (await res.json()).data?.some((m) => m.id === model);
      },
      hub,
      left(20_000),
    );
    const workerOfHolder = () => {
      const map = new Map();
      try {
        for (const line of readFileSync(idsFile, "utf8").trim().split("\n")) {
          const [pid, holder] = line.split(" ");
          map.set(holder, Number(pid));
        }
      } catch {
        /* no worker noted its id */
      }
      return map;
    };
    return {
      url,
      headers,
      hubPid: hub.pid,
      nodePids: nodeProcs.map(({ proc }) => proc.pid),
      workerPids,
      placement,
      /** Receipts recorded in [from, to] (wall-clock ms), by the worker (pid) that admitted them and the node that served them. */
      async admissions(from, to) {
        const { default: pgLib } = await import("pg");
        const client = new pgLib.Client({ connectionString: pg.url });
        await client.connect();
        try {
          const { rows } = await client.query(
            `SELECT r.holder, c.node_id, count(*)::int AS n FROM receipts c JOIN reservations r ON r.id = c.reservation_id
              WHERE c.created_at BETWEEN $1 AND $2 GROUP BY r.holder, c.node_id`,
            [from, to],
          );
          return { rows: rows.map((x) => ({ holder: x.holder, nodeId: x.node_id, n: x.n })), workerOfHolder: workerOfHolder() };
        } finally {
          await client.end();
        }
      },
      /** Stops the nodes and the hub, then `srp-hub ledger verify` on PostgreSQL. */
      async verify() {
        await stopProcs();
        try {
          return await hubCli(["ledger", "verify"], 60_000);
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
