// `npm run bench`: the relay's performance figures, measured side by side in one run
// against the model simulator (not a model) at full speed, on loopback only.
//
//  1. added latency of hub + provider over a direct call to the simulator (p50, p99),
//     for a small non-stream request and for the first content token of a stream
//  2. requests/s through one hub process
//  3. chunks/s relayed on one long stream
//  4. hub memory per idle, authenticated provider connection at 1,000 connections
//  5. routing decision time at 10 / 1,000 / 10,000 / 100,000 instances
//  6. jobs/s the hub's ledger alone settles (reserve + record a countersigned receipt),
//     on SQLite and on a throwaway PostgreSQL server, both durable
//  7. prefix affinity: the share of cached prompt tokens of Claude-Code-shaped sessions
//     through instances of the prefix-caching simulator, stickiness on vs off
//  8. side by side with the gateway a user would pick instead: the Portkey gateway and SRP
//     (hub + node started by their CLIs, billing on SQLite) on the same simulator
//
// The hub runs in its own process; the load generator, the simulator and the providers
// run in other processes (bench/*.mjs helpers), so CPU and memory figures are the hub's.
// Targets are reported as PASS / MISS; a MISS does not fail the run (exit code 0 unless
// the bench itself breaks). See bench/README.md.
import { generateKeyPairSync, sign as nativeSign, verify as nativeVerify } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import {
  cryptoBackend,
  countersignReceipt,
  createReceipt,
  generateIdentity,
  INITIAL_POSITION,
  omitFields,
  signingBytes,
  verifyDetached,
} from "@srp/core";
import { PROVIDER_PATH } from "@srp/hub";
import {
  CLOSED_BREAKER,
  eligible,
  healthScore,
  instanceKey,
  MemoryRoutingStore,
  NO_THROUGHPUT,
  pick,
  recordHealth,
  Router,
} from "@srp/hub/routing";
import { summarizeProfileFile } from "./cpu-profile.mjs";
import { crossedLinks, startPortkey, startSrpCli, startSrpCluster, tempDir } from "./gateways.mjs";
import { Helper, killAllNow, stopAll } from "./ipc.mjs";

// ---------------------------------------------------------------------------
// Settings (environment variables override; see README)

const env = (name, fallback) => {
  const v = process.env[name];
  const n = v === undefined || v === "" ? NaN : Number(v);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
};
const CFG = {
  samples: env("BENCH_SAMPLES", 500),
  warmup: env("BENCH_WARMUP", 50),
  latencyBudgetMs: env("BENCH_LATENCY_BUDGET_MS", 15_000),
  concurrency: env("BENCH_CONCURRENCY", 64),
  rpsMs: env("BENCH_RPS_MS", 5_000),
  rpsWarmupMs: env("BENCH_RPS_WARMUP_MS", 1_000),
  providerProcs: env("BENCH_PROVIDER_PROCS", 2),
  providersPerProc: env("BENCH_PROVIDERS_PER_PROC", 2),
  streamTokens: env("BENCH_STREAM_TOKENS", 20_000),
  streamRuns: env("BENCH_STREAM_RUNS", 3),
  connections: env("BENCH_CONNECTIONS", 1_000),
  handshakeWindow: env("BENCH_HANDSHAKE_WINDOW", 8),
  routingMs: env("BENCH_ROUTING_MS", 300),
  limitMs: env("BENCH_LIMIT_MS", 300_000),
  ledgerMs: env("BENCH_LEDGER_MS", 5_000),
  ledgerWarmupMs: env("BENCH_LEDGER_WARMUP_MS", 1_000),
  ledgerMaxJobs: env("BENCH_LEDGER_MAX_JOBS", 40_000),
  ledgerBudgetMs: env("BENCH_LEDGER_BUDGET_MS", 90_000),
  affinitySessions: env("BENCH_AFFINITY_SESSIONS", 8),
  affinityTurns: env("BENCH_AFFINITY_TURNS", 12),
  affinityInstances: env("BENCH_AFFINITY_INSTANCES", 4),
  gatewayConcurrency: env("BENCH_GATEWAY_CONCURRENCY", 50),
  gatewayNodeConcurrency: env("BENCH_GATEWAY_NODE_CONCURRENCY", 256),
  gatewayProfileMs: env("BENCH_GATEWAY_PROFILE_MS", 3_000),
  gatewayWarmMs: env("BENCH_GATEWAY_WARM_MS", 3_000),
  profileTop: env("BENCH_PROFILE_TOP", 5),
  keysFloodRequests: env("BENCH_KEYS_FLOOD_REQUESTS", 2000),
  keysFloodConcurrency: env("BENCH_KEYS_FLOOD_CONCURRENCY", 200),
  gatewayWorkers: env("BENCH_GATEWAY_WORKERS", 2),
  gatewayClusterNodes: env("BENCH_GATEWAY_CLUSTER_NODES", 2),
  gatewayClusterBudgetMs: env("BENCH_GATEWAY_CLUSTER_BUDGET_MS", 120_000),
};
const JSON_OUT = process.argv.includes("--json");
const PHASES = ["routing", "floor", "latency", "throughput", "stream", "gateway", "memory", "ledger", "affinity", "keys"];
const onlyArg = process.argv.find((a) => a.startsWith("--only="));
const ONLY = new Set(onlyArg ? onlyArg.slice("--only=".length).split(",") : PHASES);
for (const p of ONLY) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p}; phases: ${PHASES.join(", ")}`);
// BENCH_CPU_PROF=dir writes a V8 CPU profile of each hub and provider process into dir
// (open the .cpuprofile files in Chrome DevTools or VS Code).
const PROF_ARGV = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
const HUB_ARGV = ["--expose-gc", ...PROF_ARGV];
const KEY = "srp_bench_consumer_key_000001";
const MODEL = "sim-llama-3-8b";
const TARGETS = { addedP50Ms: 1, rps: 2000, bytesPerConn: 50 * 1024, vsPortkeyAddedP50: 1.25, vsPortkeyRps: 1.0, clusterCpu: 1.2 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

// ---------------------------------------------------------------------------
// Small statistics and formatting

function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}
const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");
const signed = (n, digits = 2) => (Number.isFinite(n) ? `${n >= 0 ? "+" : ""}${n.toFixed(digits)}` : "n/a");
const mark = (ok) => (ok === undefined ? "info" : ok ? "PASS" : "MISS");

/** Mean time of `fn` in µs: warm up, then loop for at least `ms` and `minIters` calls. */
function timeit(fn, ms = CFG.routingMs, minIters = 20) {
  const warmEnd = performance.now() + Math.min(100, ms / 3);
  while (performance.now() < warmEnd) fn();
  let iters = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms || iters < minIters) {
    fn();
    iters++;
    if ((iters & 7) === 0 || iters < minIters) t = performance.now();
  }
  t = performance.now();
  return { meanUs: ((t - t0) * 1000) / iters, iters };
}

/** CPU time of a process in ms from /proc (Linux; USER_HZ is 100 there), or NaN elsewhere; a list of pids sums theirs. */
function procCpuMs(pid) {
  if (Array.isArray(pid)) return pid.reduce((sum, p) => sum + procCpuMs(p), 0);
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 10 ms ticks
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------------------
// 5. Routing decision time (in this process; pure functions and the Router class)

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DAY = 24 * 3600_000;

/** Routing state like a hub accumulates it: health windows of up to 14 days, some throughput samples, a few parked breakers. */
function syntheticState(rng, now) {
  let window = [];
  const days = Math.floor(rng() * 14);
  for (let d = days; d >= 0; d--) {
    window = recordHealth(window, now - d * DAY, {
      success: Math.floor(rng() * 200),
      failure: rng() < 0.2 ? Math.floor(rng() * 5) : 0,
      onlineMs: Math.floor(rng() * DAY),
    });
  }
  const parked = rng() < 0.02;
  return {
    window,
    breaker: parked ? { failures: [], parkedUntil: now + 10_000, probing: false, needsProbe: true } : CLOSED_BREAKER,
    throughput: rng() < 0.7 ? { tokensPerSecond: 10 + rng() * 90, samples: 3 + Math.floor(rng() * 50) } : NO_THROUGHPUT,
    firstSeen: now - Math.floor(rng() * 10 * DAY),
    latency: rng() < 0.7 ? { ms: 20 + rng() * 400, samples: 1 + Math.floor(rng() * 50) } : { ms: 0, samples: 0 },
  };
}

function benchRouting() {
  const out = [];
  for (const n of [10, 1_000, 10_000, 100_000]) {
    const rng = mulberry32(42 + n);
    const now = Date.now();
    const instances = [];
    for (let i = 0; i < n; i++) {
      const nodeId = `node${String(i).padStart(39, "0")}`;
      const instance = {
        instanceId: `${MODEL}.0`,
        model: MODEL,
        tier: "gpu",
        backend: { kind: "openai-compatible" },
        price: { input: String(50_000 + Math.floor(rng() * 100_000)), output: String(150_000 + Math.floor(rng() * 300_000)) },
        maxConcurrency: 4,
        tokensPerSecond: 30,
        contextLength: rng() < 0.9 ? 8192 : 32_768,
        capabilities: rng() < 0.5 ? ["chat", "stream"] : ["chat", "stream", "tools"],
      };
      instances.push({ nodeId, instance, state: syntheticState(rng, now), active: Math.floor(rng() * 4) });
    }
    // The pure policy over CandidateView arrays built the way Router#view builds them.
    const views = instances.map(({ nodeId, instance, state, active }) => ({
      key: instanceKey(nodeId, instance.instanceId),
      model: instance.model,
      capabilities: instance.capabilities,
      contextLength: instance.contextLength,
      price: instance.price,
      active,
      capacity: instance.maxConcurrency,
      breaker: state.breaker,
      health: healthScore(state.window, now),
      throughput: state.throughput,
      firstSeen: state.firstSeen,
    }));
    const needs = { model: MODEL, capabilities: ["chat", "stream"], contextTokens: 400, exclude: new Set() };
    const random = mulberry32(7);
    let picked = 0;
    const policy = timeit(() => {
      const e = eligible(views, needs, now);
      if (Array.isArray(e) && pick(e, now, random)) picked++;
    });
    // The live Router: sessions reduced to what routing reads of them.
    const router = new Router(new MemoryRoutingStore(), {}, mulberry32(9));
    const sessions = [];
    for (const { nodeId, instance, state, active } of instances) {
      const session = {
        state: "open",
        nodeId,
        instances: new Map([[instance.instanceId, instance]]),
        active: new Map(active ? [[instance.instanceId, active]] : []),
        reportedCapacity: new Map(),
      };
      router.sync(session, now);
      sessions.push(session);
      const key = instanceKey(nodeId, instance.instanceId);
      router.store.update(key, now, () => state);
      router.stateChanged(key, now); // written past the Router: its candidate index reads the state again
    }
    let routed = 0;
    const route = timeit(() => {
      const r = router.route({ ...needs, exclude: new Set() }, "load", now);
      if ("key" in r) routed++;
    });
    // A billed request: the relay's reservation check (`within`) is asked per instance drawn.
    const within = (v) => BigInt(v.price.input) <= 1_000_000n;
    const billed = timeit(() => {
      const r = router.route({ ...needs, exclude: new Set(), within }, "load", now);
      if ("key" in r) routed++;
    });
    // Preference sorts and `model: "auto"` (cheapest), each from its own partitioned index.
    const sorted = {};
    for (const sort of ["price", "throughput", "latency"]) {
      sorted[sort] = timeit(() => {
        const r = router.route({ ...needs, exclude: new Set() }, sort, now);
        if ("key" in r) routed++;
      }).meanUs;
    }
    sorted.auto = timeit(() => {
      const r = router.route({ ...needs, model: "auto", exclude: new Set() }, "load", now);
      if ("key" in r) routed++;
    }).meanUs;
    // The free listings (GET /v1/models, /v1/pricing, x402 discovery) read the per-model summaries;
    // a full view of every instance (what they built per request before) for comparison, at 100k once.
    const listing = timeit(() => router.summaries(now));
    const t0 = performance.now();
    if (n >= 100_000) router.catalog(now);
    const fullViewMs = performance.now() - t0;
    // Saturated: every slot taken, the "busy" answer (what a request waiting in the queue is told).
    for (const session of sessions) {
      session.active.set(`${MODEL}.0`, session.instances.get(`${MODEL}.0`).maxConcurrency);
      router.loadChanged(session, `${MODEL}.0`);
    }
    let busy = 0;
    const saturated = timeit(() => {
      const r = router.route({ ...needs, exclude: new Set() }, "load", now);
      if (r.reason === "busy") busy++;
    });
    out.push({
      instances: n,
      sorted,
      busyUs: saturated.meanUs,
      listingUs: listing.meanUs,
      fullViewMs: n >= 100_000 ? fullViewMs : undefined,
      policyUs: policy.meanUs,
      policyIters: policy.iters,
      routeUs: route.meanUs,
      routeIters: route.iters,
      billedUs: billed.meanUs,
      decided: picked > 0 && routed > 0 && busy > 0,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Diagnostics: the per-request signature work on the relay path

function benchCrypto() {
  const node = generateIdentity();
  const hubId = generateIdentity();
  const receipt = createReceipt(
    {
      jobId: "job_AAAAAAAAAAAAAAAAAAAAAA",
      hubId: hubId.id,
      instanceId: `${MODEL}.0`,
      model: MODEL,
      requestHash: "0".repeat(64),
      responseHash: "1".repeat(64),
      usage: { promptTokens: 12, completionTokens: 16, measured: true },
      price: { input: "100000", output: "300000" },
      startedAt: Date.now() - 5,
      finishedAt: Date.now(),
    },
    INITIAL_POSITION,
    node,
  );
  const body = omitFields(receipt, "nodeSig", "hubSig");
  const ms = 400;
  const verify = timeit(() => verifyDetached("receiptNode", body, receipt.nodeSig, receipt.nodeId), ms, 5);
  const countersign = timeit(() => countersignReceipt(receipt, hubId), ms, 5);
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const bytes = signingBytes("receiptNode", body);
  const sig = nativeSign(null, bytes, privateKey);
  const nSign = timeit(() => nativeSign(null, bytes, privateKey), ms / 2, 50);
  const nVerify = timeit(() => nativeVerify(null, bytes, publicKey, sig), ms / 2, 50);
  return {
    backend: cryptoBackend().name,
    verifyUs: verify.meanUs,
    countersignUs: countersign.meanUs,
    nativeSignUs: nSign.meanUs,
    nativeVerifyUs: nVerify.meanUs,
  };
}

// ---------------------------------------------------------------------------
// The network phases

async function startRelayNet() {
  const sim = new Helper("simulator", "./sim.mjs");
  const { baseUrl: simBaseUrl } = await sim.call("start", { defaultMaxTokens: 16 });
  const hub = new Helper("hub", "./hub.mjs", HUB_ARGV);
  const { url: hubUrl } = await hub.call("start", { key: KEY });
  const wsUrl = `${hubUrl.replace(/^http/, "ws")}${PROVIDER_PATH}`;
  const provs = [];
  for (let i = 0; i < CFG.providerProcs; i++) provs.push(new Helper(`providers #${i + 1}`, "./providers.mjs", PROF_ARGV));
  await Promise.all(
    provs.map((p) =>
      p.call("start", { hub: wsUrl, key: KEY, simBaseUrl, model: MODEL, count: CFG.providersPerProc, maxConcurrency: CFG.concurrency }),
    ),
  );
  const stats = await hub.call("stats");
  const loadgen = new Helper("load generator", "./loadgen.mjs");
  return { sim, hub, provs, loadgen, simBaseUrl, hubUrl, stats };
}

async function benchLatency(net, hubUrl = net.hubUrl) {
  const cpu = () => ({ hub: procCpuMs(net.hub.pid), providers: net.provs.reduce((s, p) => s + procCpuMs(p.pid), 0) });
  const cpu0 = cpu();
  const r = await net.loadgen.call(
    "latency",
    { hubUrl, simBaseUrl: net.simBaseUrl, key: KEY, model: MODEL, samples: CFG.samples, warmup: CFG.warmup, budgetMs: CFG.latencyBudgetMs },
    CFG.latencyBudgetMs + 60_000,
  );
  const summary = (direct, relayed) => {
    const d50 = percentile(direct, 50);
    const d99 = percentile(direct, 99);
    const r50 = percentile(relayed, 50);
    const r99 = percentile(relayed, 99);
    return {
      n: Math.min(direct.length, relayed.length),
      direct: { p50: d50, p99: d99 },
      relayed: { p50: r50, p99: r99 },
      added: { p50: r50 - d50, p99: r99 - d99 },
    };
  };
  const cpu1 = cpu();
  // Each round, warm-up included, relays one non-stream and one stream request.
  const relayed = 2 * (r.rounds + r.warmup);
  const cpuMsPerRelayed = { hub: (cpu1.hub - cpu0.hub) / relayed, providers: (cpu1.providers - cpu0.providers) / relayed };
  return {
    total: summary(r.directTotal, r.relayedTotal),
    ttft: summary(r.directTtft, r.relayedTtft),
    rounds: r.rounds,
    warmup: r.warmup,
    errors: r.errors,
    firstError: r.firstError,
    cpuMsPerRelayed,
  };
}

async function benchThroughput(net) {
  const pids = { hub: net.hub.pid, providers: net.provs.map((p) => p.pid), simulator: net.sim.pid, loadgen: net.loadgen.pid };
  const snapshot = () => ({
    hub: procCpuMs(pids.hub),
    providers: pids.providers.reduce((s, pid) => s + procCpuMs(pid), 0),
    simulator: procCpuMs(pids.simulator),
    loadgen: procCpuMs(pids.loadgen),
  });
  let startCpu;
  let endCpu;
  let hubStart;
  let hubEnd;
  net.loadgen.on("measure.start", () => {
    startCpu = snapshot();
    hubStart = net.hub.call("cpu");
  });
  net.loadgen.on("measure.end", () => {
    endCpu = snapshot();
    hubEnd = net.hub.call("cpu");
  });
  const r = await net.loadgen.call(
    "throughput",
    { hubUrl: net.hubUrl, key: KEY, model: MODEL, concurrency: CFG.concurrency, durationMs: CFG.rpsMs, warmupMs: CFG.rpsWarmupMs },
    CFG.rpsMs + CFG.rpsWarmupMs + 60_000,
  );
  const [h0, h1] = await Promise.all([hubStart, hubEnd]);
  const hubCpuMs = (h1.user + h1.system - h0.user - h0.system) / 1000;
  const wallMs = h1.wall - h0.wall;
  const cpuShare = {};
  for (const k of Object.keys(startCpu)) cpuShare[k] = (endCpu[k] - startCpu[k]) / wallMs;
  cpuShare.hub = hubCpuMs / wallMs; // the hub's own account (process.cpuUsage) is finer than /proc ticks
  return {
    rps: (r.ok * 1000) / r.elapsedMs,
    ok: r.ok,
    errors: r.errors,
    firstError: r.firstError,
    statuses: r.statuses,
    p50: percentile(r.latencies, 50),
    p99: percentile(r.latencies, 99),
    hubCpuMsPerRequest: r.ok > 0 ? hubCpuMs / r.ok : NaN,
    hubCores: hubCpuMs / wallMs,
    cpuShare,
    instances: CFG.providerProcs * CFG.providersPerProc,
  };
}

/**
 * This machine's floor: the same load against the simulator directly and through two
 * do-nothing node:http proxies in series (bench/null-proxy.mjs), which have the relay's
 * process layout and none of its work.
 */
async function benchFloor(net) {
  const simUrl = net.simBaseUrl.replace(/\/v1$/, "");
  const inner = new Helper("null proxy #2", "./null-proxy.mjs");
  const { url: innerUrl } = await inner.call("start", { target: simUrl });
  const outer = new Helper("null proxy #1", "./null-proxy.mjs");
  const { url: outerUrl } = await outer.call("start", { target: innerUrl });
  const latency = await benchLatency(net, outerUrl);
  const load = (hubUrl) =>
    net.loadgen.call(
      "throughput",
      { hubUrl, key: "-", model: MODEL, concurrency: CFG.concurrency, durationMs: CFG.rpsMs, warmupMs: CFG.rpsWarmupMs },
      CFG.rpsMs + CFG.rpsWarmupMs + 60_000,
    );
  const direct = await load(simUrl);
  const proxied = await load(outerUrl);
  await outer.stop();
  await inner.stop();
  const rps = (r) => (r.ok * 1000) / r.elapsedMs;
  return {
    latency,
    directRps: rps(direct),
    proxiedRps: rps(proxied),
    errors: direct.errors + proxied.errors + latency.errors,
    firstError: direct.firstError ?? proxied.firstError ?? latency.firstError,
  };
}

const firstLine = (error) => String(error?.message ?? error).split("\n")[0];
/** How long the N-process hub's idle CPU is sampled before its loaded run. */
const CLUSTER_IDLE_MS = 2_000;

/** Figure 8's N-process SRP (bench/gateways.mjs `startSrpCluster`), or `{ skipped: why }` if it cannot start within its budget. */
async function startGatewayCluster(simBaseUrl) {
  const workers = Math.floor(CFG.gatewayWorkers);
  if (workers < 2) return { skipped: `BENCH_GATEWAY_WORKERS is ${CFG.gatewayWorkers}` };
  try {
    return await startSrpCluster({
      simBaseUrl,
      model: MODEL,
      nodeConcurrency: CFG.gatewayNodeConcurrency,
      workers,
      nodes: Math.max(1, Math.floor(CFG.gatewayClusterNodes)),
      timeoutMs: CFG.gatewayClusterBudgetMs,
    });
  } catch (error) {
    return { skipped: firstLine(error) };
  }
}

/**
 * Figure 8's N-process SRP under load like the other paths (`load`), with the hub's CPU
 * summed over its processes (the workers and the primary that hands them connections),
 * which worker holds each node's session, and how many answered requests crossed a direct
 * link (admitted by one worker, served by a node on another); then the books verified.
 * `{ skipped: why }` if the run fails; its processes are stopped either way.
 */
async function loadGatewayCluster(cluster, load, simPid) {
  try {
    const workers = cluster.workerPids();
    // What the processes spend with no request at all (heartbeats, the Redis bus, write-behind), to read the figure below against.
    const hubPids = [cluster.hubPid, ...workers];
    const idle0 = procCpuMs(hubPids);
    await sleep(CLUSTER_IDLE_MS);
    const idleMsPerSecond = ((procCpuMs(hubPids) - idle0) * 1000) / CLUSTER_IDLE_MS;
    const r = await load(cluster.url, cluster.headers, {
      hub: [cluster.hubPid, ...workers],
      primary: cluster.hubPid,
      node: cluster.nodePids,
      simulator: simPid,
    });
    const placement = cluster.placement();
    const { rows, workerOfHolder } = await cluster.admissions(r.window.from, r.window.to);
    const links = crossedLinks(rows, workerOfHolder, placement);
    const ledgerVerify = await cluster.verify();
    const nodes = [...placement].map(([nodeId, worker]) => ({ nodeId, worker }));
    return { workers, nodes, load: r, links, ledgerVerify, idleMsPerSecond };
  } catch (error) {
    return { skipped: `the loaded run failed: ${firstLine(error)}` };
  } finally {
    await cluster.stop();
  }
}

/**
 * Loads each of `targets` (`{ name, url }`, the chat completions URL) for
 * `gatewayWarmMs` at `gatewayConcurrency` connections, one after the other, and discards
 * the figures: V8 compiles the hot code of a fresh process over its first few thousand
 * requests, and the phase compares processes in their steady state.
 */
async function warmGateways(loadgen, targets) {
  if (CFG.gatewayWarmMs <= 0) return;
  for (const t of targets) {
    await loadgen.call(
      "throughput",
      {
        hubUrl: t.url.replace(/\/(v1\/)?chat\/completions$/, ""),
        headers: t.headers,
        model: MODEL,
        concurrency: CFG.gatewayConcurrency,
        durationMs: CFG.gatewayWarmMs,
        warmupMs: 0,
      },
      CFG.gatewayWarmMs + 60_000,
    );
  }
}

/**
 * Figure 8: the Portkey gateway and SRP as a user runs it (bench/gateways.mjs), against one
 * simulator process: added latency over a direct call (sequential, keep-alive, non-stream,
 * the three paths interleaved round by round) and answered requests/s at
 * `gatewayConcurrency` connections, with each path's CPU per request from /proc.
 */
async function benchGateway() {
  let portkeyVersion;
  try {
    portkeyVersion = JSON.parse(readFileSync(new URL("../node_modules/@portkey-ai/gateway/package.json", import.meta.url), "utf8")).version;
  } catch {
    return { skipped: "@portkey-ai/gateway is not installed (a root devDependency: npm install)" };
  }
  const sim = new Helper("simulator (gateway)", "./sim.mjs");
  const { baseUrl: simBaseUrl } = await sim.call("start", { defaultMaxTokens: 16 });
  const loadgen = new Helper("load generator (gateway)", "./loadgen.mjs");
  const portkey = await startPortkey({ simBaseUrl });
  const srp = await startSrpCli({ simBaseUrl, model: MODEL, nodeConcurrency: CFG.gatewayNodeConcurrency });
  // SRP on N processes (PostgreSQL + Redis): started within its own budget; if it cannot
  // start, its rows say why and the rest of the phase goes on.
  const cluster = await startGatewayCluster(simBaseUrl);
  const chat = (base) => `${base}/v1/chat/completions`;
  const targets = [
    { name: "direct", url: `${simBaseUrl}/chat/completions`, headers: {} },
    { name: "portkey", url: chat(portkey.url), headers: portkey.headers },
    { name: "srp", url: chat(srp.url), headers: srp.headers },
    ...(cluster.skipped ? [] : [{ name: "cluster", url: chat(cluster.url), headers: cluster.headers }]),
  ];
  // Every path is warmed the same way before anything is measured: a gateway runs for days,
  // so its figures are those of code V8 has already optimized, not of its first requests.
  await warmGateways(loadgen, targets);
  const c = await loadgen.call(
    "compare",
    { targets, model: MODEL, samples: CFG.samples, warmup: CFG.warmup, budgetMs: CFG.latencyBudgetMs },
    CFG.latencyBudgetMs + 60_000,
  );
  const p = (name, q) => percentile(c.totals[name], q);
  const latency = (name) => ({
    p50: p(name, 50),
    p99: p(name, 99),
    added: { p50: p(name, 50) - p("direct", 50), p99: p(name, 99) - p("direct", 99) },
  });
  // Requests/s per path; CPU of the path's own processes over the window, from /proc (a
  // list of pids sums theirs); the window's wall-clock bounds, for the receipts it recorded.
  let window;
  loadgen.on("measure.start", () => window?.start());
  loadgen.on("measure.end", () => window?.end());
  const load = async (base, headers, pids) => {
    const cpu = () => Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, procCpuMs(pid)]));
    let cpu0;
    let cpu1;
    let from;
    let to;
    window = { start: () => ((cpu0 = cpu()), (from = Date.now())), end: () => ((cpu1 = cpu()), (to = Date.now())) };
    const r = await loadgen.call(
      "throughput",
      { hubUrl: base, headers, model: MODEL, concurrency: CFG.gatewayConcurrency, durationMs: CFG.rpsMs, warmupMs: CFG.rpsWarmupMs },
      CFG.rpsMs + CFG.rpsWarmupMs + 60_000,
    );
    window = undefined;
    return {
      rps: (r.ok * 1000) / r.elapsedMs,
      ok: r.ok,
      errors: r.errors,
      firstError: r.firstError,
      p50: percentile(r.latencies, 50),
      p99: percentile(r.latencies, 99),
      cpuMsPerRequest: Object.fromEntries(Object.keys(pids).map((name) => [name, r.ok > 0 ? (cpu1[name] - cpu0[name]) / r.ok : NaN])),
      window: { from, to },
    };
  };
  const direct = await load(simBaseUrl.replace(/\/v1$/, ""), {}, { simulator: sim.pid });
  const portkeyLoad = await load(portkey.url, portkey.headers, { portkey: portkey.pid, simulator: sim.pid });
  const srpLoad = await load(srp.url, srp.headers, { hub: srp.hubPid, node: srp.nodePid, simulator: sim.pid });
  const clusterRow = cluster.skipped ? cluster : await loadGatewayCluster(cluster, load, sim.pid);
  await portkey.stop();
  const verify = await srp.verify();
  await srp.stop();
  // Where the hub's and the node's CPU goes: a second SRP pair under V8's profiler, loaded
  // the same way for a shorter window (the profiler slows them, so the figures above come
  // from the unprofiled pair), with self time summed by stage over the measured window.
  let profile;
  if (CFG.gatewayProfileMs > 0) {
    const t = tempDir("srp-bench-profile-");
    const flags = (who) => ["--cpu-prof", `--cpu-prof-dir=${join(t.dir, who)}`];
    const profiled = await startSrpCli({
      simBaseUrl,
      model: MODEL,
      nodeConcurrency: CFG.gatewayNodeConcurrency,
      hubFlags: flags("hub"),
      nodeFlags: flags("node"),
    });
    const usNow = () => Number(process.hrtime.bigint() / 1000n);
    let from;
    let to;
    window = { start: () => (from = usNow()), end: () => (to = usNow()) };
    const r = await loadgen.call(
      "throughput",
      {
        hubUrl: profiled.url,
        headers: profiled.headers,
        model: MODEL,
        concurrency: CFG.gatewayConcurrency,
        durationMs: CFG.gatewayProfileMs,
        warmupMs: CFG.rpsWarmupMs + CFG.gatewayWarmMs,
      },
      CFG.gatewayProfileMs + CFG.rpsWarmupMs + CFG.gatewayWarmMs + 60_000,
    );
    window = undefined;
    await profiled.stop(); // the processes write their profiles as they exit
    const read = (who) => {
      const files = readdirSync(join(t.dir, who)).filter((f) => f.endsWith(".cpuprofile"));
      return files.length === 1 ? summarizeProfileFile(join(t.dir, who, files[0]), { topN: CFG.profileTop, from, to }) : undefined;
    };
    profile = { ok: r.ok, hub: read("hub"), node: read("node") };
    t.remove();
  }
  await loadgen.stop();
  await sim.stop();
  const portkeyLat = latency("portkey");
  const srpLat = latency("srp");
  return {
    portkeyVersion,
    rounds: c.rounds,
    warmup: c.warmup,
    errors: c.errors + direct.errors + portkeyLoad.errors + srpLoad.errors + (clusterRow.load?.errors ?? 0),
    firstError: c.firstError ?? direct.firstError ?? portkeyLoad.firstError ?? srpLoad.firstError ?? clusterRow.load?.firstError,
    direct: { p50: p("direct", 50), p99: p("direct", 99), load: direct },
    portkey: { ...portkeyLat, load: portkeyLoad },
    srp: { ...srpLat, load: srpLoad, ledgerVerify: verify, profile },
    cluster: clusterRow.skipped
      ? clusterRow
      : {
          ...latency("cluster"),
          ...clusterRow,
          cpuRatio: clusterRow.load.cpuMsPerRequest.hub / srpLoad.cpuMsPerRequest.hub,
        },
    ratio: {
      addedP50: portkeyLat.added.p50 > 0 ? srpLat.added.p50 / portkeyLat.added.p50 : NaN,
      rps: portkeyLoad.rps > 0 ? srpLoad.rps / portkeyLoad.rps : NaN,
    },
  };
}

async function benchStream(net) {
  const runs = [];
  const direct = await net.loadgen.call(
    "stream",
    { url: `${net.simBaseUrl}/chat/completions`, model: MODEL, maxTokens: CFG.streamTokens },
    120_000,
  );
  for (let i = 0; i < CFG.streamRuns; i++) {
    runs.push(
      await net.loadgen.call(
        "stream",
        { url: `${net.hubUrl}/v1/chat/completions`, key: KEY, model: MODEL, maxTokens: CFG.streamTokens },
        120_000,
      ),
    );
  }
  const rate = (s) => (s.status === 200 && !s.error && s.streamMs > 0 ? (s.events * 1000) / s.streamMs : NaN);
  const rates = runs
    .map(rate)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  return {
    direct: { chunksPerSecond: rate(direct), events: direct.events, ms: direct.streamMs },
    relayed: {
      chunksPerSecond: rates.length ? rates[Math.floor(rates.length / 2)] : NaN,
      runs: runs.map((s) => ({
        chunksPerSecond: rate(s),
        events: s.events,
        ms: s.streamMs,
        status: s.status,
        error: s.error,
        completionTokens: s.completionTokens,
      })),
    },
  };
}

async function benchMemory() {
  const hub = new Helper("hub (memory)", "./hub.mjs", HUB_ARGV);
  const { url } = await hub.call("start", { key: KEY });
  const wsUrl = `${url.replace(/^http/, "ws")}${PROVIDER_PATH}`;
  const idle = new Helper("idle nodes", "./idle-nodes.mjs");
  const warm = 10;
  const timeout = 300_000;
  // A few sessions first, so one-time costs (compiled schemas, ws internals) are in the baseline.
  const w = await idle.call("open", { hub: wsUrl, key: KEY, model: MODEL, count: warm, concurrency: CFG.handshakeWindow }, timeout);
  await sleep(300);
  const before = await hub.call("mem");
  const opened = await idle.call(
    "open",
    { hub: wsUrl, key: KEY, model: MODEL, count: CFG.connections, concurrency: CFG.handshakeWindow },
    timeout,
  );
  await sleep(500);
  const stats = await hub.call("stats");
  const after = await hub.call("mem");
  const n = opened.opened;
  const heapExt = (m) => m.heapUsed + m.external;
  await idle.stop();
  await hub.stop();
  return {
    connections: n,
    baselineSessions: w.opened,
    sessions: stats.sessions,
    failed: opened.failed + w.failed,
    firstError: opened.firstError ?? w.firstError,
    handshakesPerSecond: (n * 1000) / opened.elapsedMs,
    openMs: opened.elapsedMs,
    perConnHeapExt: n > 0 ? (heapExt(after) - heapExt(before)) / n : NaN,
    perConnHeap: n > 0 ? (after.heapUsed - before.heapUsed) / n : NaN,
    perConnExternal: n > 0 ? (after.external - before.external) / n : NaN,
    perConnRss: n > 0 ? (after.rss - before.rss) / n : NaN,
    before,
    after,
  };
}

/**
 * The ledger alone (bench/ledger.mjs, own process): `concurrency` jobs in flight, each
 * `reserve` + `record` of a countersigned receipt, on SQLite and then on a throwaway
 * PostgreSQL server the helper starts (bench/postgres.mjs), both with durable commits.
 */
/** Figure 7: prefix affinity on vs off (bench/affinity.mjs, its own process). */
async function benchAffinity() {
  const helper = new Helper("affinity", "./affinity.mjs");
  const config = {
    sessions: CFG.affinitySessions,
    turns: CFG.affinityTurns,
    instances: CFG.affinityInstances,
    slots: 4,
    systemBytes: 16 * 1024,
    toolsBytes: 4 * 1024,
    resultBytes: 2048,
  };
  const r = await helper.call("run", config, 120_000);
  await helper.stop();
  return r;
}

/** Figure 10: what metrics cost per request, and API keys' limits under a flood (bench/keys.mjs). */
async function benchKeys() {
  const helper = new Helper("keys", "./keys.mjs");
  try {
    return await helper.call("run", { requests: CFG.keysFloodRequests, concurrency: CFG.keysFloodConcurrency }, 180_000);
  } finally {
    await helper.stop();
  }
}

async function benchLedger() {
  const ledger = new Helper("ledger", "./ledger.mjs", PROF_ARGV);
  const out = {};
  // Each engine's call has a budget (the helper sizes its receipts to it: building them is
  // what a busy machine slows most) and a time-out well past it for the start and the end.
  const budgetMs = CFG.ledgerBudgetMs;
  const args = {
    concurrency: CFG.concurrency,
    durationMs: CFG.ledgerMs,
    warmupMs: CFG.ledgerWarmupMs,
    maxJobs: CFG.ledgerMaxJobs,
    budgetMs,
  };
  const timeout = budgetMs + 90_000;
  let helper = ledger;
  for (const engine of ["sqlite", "postgres"]) {
    log(
      `ledger on ${engine === "sqlite" ? "SQLite" : "PostgreSQL"}: ${CFG.concurrency} jobs in flight for ${CFG.ledgerMs / 1000} s after ${CFG.ledgerWarmupMs / 1000} s of warm-up (budget ${budgetMs / 1000} s)`,
    );
    try {
      out[engine] = await helper.call("run", { engine, ...args }, timeout);
    } catch (error) {
      // Still the other engine's figure and the rest of the bench: this one is reported as skipped.
      out[engine] = { engine, skipped: String(error?.message ?? error) };
      await helper.stop();
      helper = new Helper("ledger", "./ledger.mjs", PROF_ARGV);
    }
    if (out[engine].skipped) log(`the ${engine} figure is skipped: ${out[engine].skipped}`);
  }
  await helper.stop();
  return out;
}

// ---------------------------------------------------------------------------
// Report

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model?.trim() ?? "unknown",
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    memGiB: os.totalmem() / 2 ** 30,
    loadavg: os.loadavg(),
  };
}

/** Rows of [#, figure, measured, target, mark]; a row of [#, text] is a detail line that spans the table. */
function table(rows) {
  const head = ["#", "Figure", "Measured", "Target", ""];
  const full = rows.filter((r) => r.length > 2);
  const widths = head.map((h, i) => Math.max(h.length, ...full.map((r) => String(r[i] ?? "").length)));
  const line = (r) =>
    (r.length > 2 ? r.map((c, i) => String(c ?? "").padEnd(widths[i])).join("  ") : `${String(r[0]).padEnd(widths[0])}  ${r[1]}`).trimEnd();
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function report(res) {
  const m = res.machine;
  const rows = [];
  const F = res.floor;
  if (F) {
    rows.push([
      "0",
      "Floor: two do-nothing node:http proxies in series, added latency p50",
      `${signed(F.latency.total.added.p50)} ms`,
      "-",
      mark(),
    ]);
    rows.push(["0", "Floor: the same, added time to first token p50", `${signed(F.latency.ttft.added.p50)} ms`, "-", mark()]);
    rows.push(["0", "Floor: requests/s through the two proxies", `${int(F.proxiedRps)} req/s`, "-", mark()]);
    rows.push(["0", "Floor: requests/s calling the simulator directly", `${int(F.directRps)} req/s`, "-", mark()]);
    rows.push(["", "  (the relay's process layout with none of its work: no auth, routing, WebSocket frames, JSON or receipts)"]);
  }
  const L = res.latency;
  if (L) {
    const detail = (s) =>
      `(direct ${fmt(s.direct.p50)}/${fmt(s.direct.p99)}, relayed ${fmt(s.relayed.p50)}/${fmt(s.relayed.p99)} ms p50/p99, n=${s.n})`;
    rows.push([
      "1a",
      "Added latency, small non-stream request, p50",
      `${signed(L.total.added.p50)} ms`,
      "<= 1 ms",
      mark(L.total.added.p50 <= TARGETS.addedP50Ms),
    ]);
    rows.push(["1a", "Added latency, small non-stream request, p99", `${signed(L.total.added.p99)} ms`, "-", mark()]);
    rows.push(["", `  ${detail(L.total)}`]);
    rows.push([
      "1b",
      "Added latency, stream time to first token, p50",
      `${signed(L.ttft.added.p50)} ms`,
      "<= 1 ms",
      mark(L.ttft.added.p50 <= TARGETS.addedP50Ms),
    ]);
    rows.push(["1b", "Added latency, stream time to first token, p99", `${signed(L.ttft.added.p99)} ms`, "-", mark()]);
    rows.push(["", `  ${detail(L.ttft)}`]);
    rows.push([
      "",
      `  (CPU per relayed request, one at a time: hub ${fmt(L.cpuMsPerRelayed.hub)} ms, provider ${fmt(L.cpuMsPerRelayed.providers)} ms)`,
    ]);
  }
  const T = res.throughput;
  if (T) {
    rows.push([
      "2",
      `Requests/s through one hub (${CFG.concurrency} in flight, ${T.instances} instances)`,
      `${int(T.rps)} req/s`,
      ">= 2,000 req/s",
      mark(T.rps >= TARGETS.rps),
    ]);
    rows.push([
      "",
      `  (${int(T.ok)} ok, ${int(T.errors)} errors; latency p50 ${fmt(T.p50, 1)} / p99 ${fmt(T.p99, 1)} ms; hub CPU ${fmt(T.hubCpuMsPerRequest, 3)} ms/request, hub at ${fmt(T.hubCores * 100, 0)}% of one core)`,
    ]);
    const share = Object.entries(T.cpuShare)
      .map(([k, v]) => `${k} ${fmt(v * 100, 0)}%`)
      .join(", ");
    rows.push(["", `  (CPU during the window, % of one core: ${share}; ${m.cpus} cores in all)`]);
  }
  const S = res.stream;
  if (S) {
    rows.push([
      "3",
      `Chunks/s relayed on one stream (max_tokens ${int(CFG.streamTokens)})`,
      `${int(S.relayed.chunksPerSecond)} chunks/s`,
      "-",
      mark(),
    ]);
    rows.push([
      "",
      `  (median of ${S.relayed.runs.length} runs: ${S.relayed.runs.map((r) => int(r.chunksPerSecond)).join(" / ")}; direct from the simulator ${int(S.direct.chunksPerSecond)} chunks/s; ${int(S.relayed.runs[0]?.events)} events per stream)`,
    ]);
  }
  const M = res.memory;
  if (M) {
    rows.push([
      "4",
      `Hub memory per idle provider connection, heap+external (${int(M.connections)} conns)`,
      `${fmt(M.perConnHeapExt / 1024, 1)} KB`,
      "<= 50 KB",
      mark(M.perConnHeapExt <= TARGETS.bytesPerConn),
    ]);
    rows.push([
      "4",
      "Hub memory per idle provider connection, RSS",
      `${fmt(M.perConnRss / 1024, 1)} KB`,
      "<= 50 KB",
      mark(M.perConnRss <= TARGETS.bytesPerConn),
    ]);
    rows.push([
      "",
      `  (heap ${fmt(M.perConnHeap / 1024, 1)} KB + external ${fmt(M.perConnExternal / 1024, 1)} KB; ${int(M.sessions)} sessions open; handshakes ${fmt(M.handshakesPerSecond, 1)}/s; ${M.failed} failed)`,
    ]);
  }
  for (const r of res.routing ?? []) {
    rows.push(["5", `Routing decision, ${int(r.instances)} instances: eligible()+pick()`, `${fmt(r.policyUs, 1)} µs`, "-", mark()]);
    const indexed = r.instances >= 100_000 ? ["<= 20 µs", mark(r.routeUs <= 20)] : ["-", mark()];
    rows.push(["5", `Routing decision, ${int(r.instances)} instances: Router.route()`, `${fmt(r.routeUs, 1)} µs`, ...indexed]);
    rows.push(["5", `  same, with a reservation check (within), as a billed request`, `${fmt(r.billedUs, 1)} µs`, "-", mark()]);
    if (r.sorted) {
      const s = r.sorted;
      rows.push([
        "5",
        `  sorted by price / throughput / latency; model "auto"`,
        `${fmt(s.price, 1)} / ${fmt(s.throughput, 1)} / ${fmt(s.latency, 1)}; ${fmt(s.auto, 1)} µs`,
        ...(r.instances >= 100_000 ? ["<= 20 µs each", mark(Math.max(s.price, s.throughput, s.latency, s.auto) <= 20)] : ["-", mark()]),
      ]);
    }
    if (r.busyUs !== undefined) rows.push(["5", `  every slot taken: the "busy" answer`, `${fmt(r.busyUs, 1)} µs`, "-", mark()]);
    if (r.listingUs !== undefined) {
      const full = r.fullViewMs === undefined ? "" : ` (a view of every instance: ${fmt(r.fullViewMs, 1)} ms)`;
      rows.push([
        "5",
        `  GET /v1/models, /v1/pricing: the model catalog (Router.summaries)${full}`,
        `${fmt(r.listingUs, 1)} µs`,
        "-",
        mark(),
      ]);
    }
  }
  const G = res.ledger;
  if (G) {
    const relayRps = T?.rps;
    const compare = Number.isFinite(relayRps) && relayRps > 0;
    for (const [engine, name] of [
      ["sqlite", "SQLite"],
      ["postgres", "PostgreSQL"],
    ]) {
      const g = G[engine];
      if (!g) continue;
      const figure = `Settled jobs/s, ledger on ${name} (${CFG.concurrency} in flight)`;
      if (g.skipped) {
        rows.push(["6", figure, "skipped", "-", mark()]);
        rows.push(["", `  (${g.skipped})`]);
        continue;
      }
      rows.push([
        "6",
        figure,
        `${int(g.jobsPerSecond)} jobs/s`,
        compare ? ">= relay req/s" : "-",
        compare ? mark(g.jobsPerSecond >= relayRps) : mark(),
      ]);
      const verified =
        g.verify.length === 0 && g.consistent
          ? "verify ok"
          : `verify FAILED: ${g.verify.map((p) => p.check).join("; ") || "settled count or held money wrong"}`;
      rows.push([
        "",
        `  (reserve+record p50 ${fmt(g.p50, 1)} / p99 ${fmt(g.p99, 1)} ms: reserve p50 ${fmt(g.reserve.p50, 1)}, record p50 ${fmt(g.record.p50, 1)} ms; ${int(g.settled)} settled in ${fmt(g.elapsedMs / 1000, 1)} s, per second ${g.perSecond.map(int).join(" / ")}; ${verified})`,
      ]);
      const s = g.settings;
      const durable =
        engine === "sqlite"
          ? `WAL, synchronous=${s.synchronous}`
          : `PostgreSQL ${String(s.server_version).split(" ")[0]}, fsync=${s.fsync}, synchronous_commit=${s.synchronous_commit}, full_page_writes=${s.full_page_writes}, wal_sync_method=${s.wal_sync_method}; pool of 10`;
      const server = Number.isFinite(g.cpu.serverCores)
        ? `, server ${fmt(g.cpu.serverMsPerJob)} ms (${fmt(g.cpu.serverCores * 100, 0)}% of a core)`
        : "";
      rows.push([
        "",
        `  (durable: ${durable}; fdatasync of a 4 KB append p50 ${fmt(g.fsync.p50)} ms; CPU per job: ledger process ${fmt(g.cpu.helperMsPerJob)} ms (${fmt(g.cpu.helperCores * 100, 0)}% of a core)${server})`,
      ]);
      if (compare) {
        const hubCpu = Number.isFinite(T.hubCpuMsPerRequest)
          ? `; the hub's process would spend ${fmt(g.cpu.helperMsPerJob)} ms of CPU per request on these calls besides its ${fmt(T.hubCpuMsPerRequest)} ms`
          : "";
        rows.push([
          "",
          `  (the ledger alone settles ${fmt(g.jobsPerSecond / relayRps)}× the relay's ${int(relayRps)} req/s measured in this run${hubCpu})`,
        ]);
      }
    }
  }
  const K = res.keys;
  if (K) {
    const m = K.metrics;
    const diffs = m.rounds.map((r) => r.on - r.off).sort((a, b) => a - b);
    const median = diffs[Math.floor(diffs.length / 2)];
    rows.push([
      "10",
      "Metrics on (/metrics, the request event): CPU added per request, median of rounds",
      `${fmt(median, 1)} µs`,
      "-",
      mark(),
    ]);
    rows.push([
      "",
      `  (one process: hub + node + simulator + client, ${int(m.requests)} sequential chat completions each way in ${m.rounds.length} interleaved rounds; CPU µs per request off ${fmt(m.offUs, 0)}, on ${fmt(m.onUs, 0)}; per-round differences ${diffs.map((d) => fmt(d, 0)).join(" / ")} µs, whose spread is this machine's noise; a scrape: ${m.scrapeStatus}, ${int(m.scrapeBytes)} bytes)`,
    ]);
    const R = K.rate;
    // A token bucket holds a minute's worth and refills continuously: over the flood it may admit that much more.
    const allowed = R.rpm + Math.floor((R.rpm * R.elapsedMs) / 60_000);
    rows.push([
      "10",
      `Key limited to ${R.rpm} requests/min under a flood: admitted`,
      `${int(R.admitted)}`,
      `<= ${int(allowed)}`,
      mark(R.admitted <= allowed),
    ]);
    rows.push([
      "",
      `  (${int(K.config.requests)} requests, ${int(K.config.concurrency)} at once, over ${fmt(R.elapsedMs / 1000, 1)} s: ${int(R.refused)} refused with 429 at ${int(R.refusalsPerSecond)}/s, refusal p50/p99 ${fmt(R.refusalP50Ms, 1)}/${fmt(R.refusalP99Ms, 1)} ms; the limit allows ${R.rpm} at once plus ${R.rpm} a minute refilled; statuses ${JSON.stringify(R.statuses)})`,
    ]);
    const B = K.budget;
    rows.push([
      "10",
      `Key with a budget of ${B.budgetRequests} worst cases under a flood: spent / budget`,
      `${fmt((Number(B.charged) / Number(B.cap)) * 100, 1)} %`,
      "<= 100 %",
      mark(BigInt(B.charged) <= BigInt(B.cap)),
    ]);
    rows.push([
      "",
      `  (${int(B.admitted)} admitted, ${int(B.refused)} refused with 402 at ${int(B.refusalsPerSecond)}/s, refusal p50/p99 ${fmt(B.refusalP50Ms, 1)}/${fmt(B.refusalP99Ms, 1)} ms; charged ${B.charged} of ${B.cap} units (worst case ${B.worst}); ledger verify: ${K.ledgerProblems === 0 ? "ok" : `${K.ledgerProblems} problems`})`,
    ]);
  }
  const A = res.affinity;
  if (A) {
    const c = A.config;
    rows.push([
      "7",
      `Cached prompt tokens, Claude-Code-shaped sessions, stickiness on`,
      `${fmt(A.on.share * 100, 1)} %`,
      "> off",
      mark(A.on.share > A.off.share),
    ]);
    rows.push(["7", `Cached prompt tokens, the same sessions, stickiness off`, `${fmt(A.off.share * 100, 1)} %`, "-", mark()]);
    rows.push([
      "",
      `  (${c.sessions} concurrent sessions × ${c.turns} turns through one hub and ${c.instances} instances of the prefix-caching simulator; system ~${int(c.systemBytes / 1024)} KB + tools ~${int(c.toolsBytes / 1024)} KB;`,
    ]);
    rows.push([
      "",
      `   cached / prompt tokens from the billed usage: on ${int(A.on.cached)} / ${int(A.on.prompt)}, off ${int(A.off.cached)} / ${int(A.off.prompt)}; ${fmt(A.on.ms / 1000, 1)} s and ${fmt(A.off.ms / 1000, 1)} s)`,
    ]);
  }
  const W = res.gateway?.skipped ? undefined : res.gateway;
  if (res.gateway?.skipped)
    rows.push(["8", "Side by side with the Portkey gateway", "skipped", "-", mark()], ["", `  (${res.gateway.skipped})`]);
  if (W) {
    const pk = `Portkey gateway ${W.portkeyVersion} (one hop)`;
    const srp = "SRP hub + node by their CLIs (two hops, billing on SQLite)";
    const x = (n) => (Number.isFinite(n) ? `${fmt(n)}×` : "n/a");
    const cpu = (l) =>
      Object.entries(l.cpuMsPerRequest)
        .map(([k, v]) => `${k} ${fmt(v, 3)}`)
        .join(", ");
    rows.push(["8", `${pk}: added latency p50`, `${signed(W.portkey.added.p50)} ms`, "-", mark()]);
    rows.push(["8", `${pk}: added latency p99`, `${signed(W.portkey.added.p99)} ms`, "-", mark()]);
    rows.push(["8", `${srp}: added latency p50`, `${signed(W.srp.added.p50)} ms`, "-", mark()]);
    rows.push(["8", `${srp}: added latency p99`, `${signed(W.srp.added.p99)} ms`, "-", mark()]);
    rows.push([
      "8",
      "SRP / Portkey, added latency p50",
      x(W.ratio.addedP50),
      `<= ${fmt(TARGETS.vsPortkeyAddedP50)}×`,
      Number.isFinite(W.ratio.addedP50) ? mark(W.ratio.addedP50 <= TARGETS.vsPortkeyAddedP50) : mark(),
    ]);
    rows.push([
      "",
      `  (sequential, keep-alive, non-stream, interleaved: direct ${fmt(W.direct.p50)}/${fmt(W.direct.p99)}, Portkey ${fmt(W.portkey.p50)}/${fmt(W.portkey.p99)}, SRP ${fmt(W.srp.p50)}/${fmt(W.srp.p99)} ms p50/p99, n=${W.rounds})`,
    ]);
    const n = CFG.gatewayConcurrency;
    rows.push(["8", `${pk}: answered requests/s (${n} connections)`, `${int(W.portkey.load.rps)} req/s`, "-", mark()]);
    rows.push(["8", `${srp}: answered requests/s (${n} connections)`, `${int(W.srp.load.rps)} req/s`, "-", mark()]);
    rows.push([
      "8",
      "SRP / Portkey, answered requests/s (one hub process)",
      x(W.ratio.rps),
      `>= ${fmt(TARGETS.vsPortkeyRps)}×`,
      Number.isFinite(W.ratio.rps) ? mark(W.ratio.rps >= TARGETS.vsPortkeyRps) : mark(),
    ]);
    rows.push([
      "",
      `  (simulator directly ${int(W.direct.load.rps)} req/s; latency p50/p99 under load: Portkey ${fmt(W.portkey.load.p50, 1)}/${fmt(W.portkey.load.p99, 1)}, SRP ${fmt(W.srp.load.p50, 1)}/${fmt(W.srp.load.p99, 1)} ms)`,
    ]);
    rows.push(["", `  (CPU ms per request under load: Portkey path ${cpu(W.portkey.load)}; SRP path ${cpu(W.srp.load)})`]);
    const P = W.srp.profile;
    for (const who of ["hub", "node"]) {
      const prof = P?.[who];
      const perReq = W.srp.load.cpuMsPerRequest[who];
      if (!prof || !(prof.busyMs > 0)) continue;
      // Shares of the main thread's busy time in the profile, applied to the CPU per request measured without the profiler.
      const share = (ms) => ms / prof.busyMs;
      const stages = prof.stages
        .filter((st) => share(st.ms) >= 0.02)
        .map((st) => `${st.stage} ${fmt(100 * share(st.ms), 0)}% (${fmt(share(st.ms) * perReq * 1000, 0)} µs)`)
        .join(", ");
      rows.push([
        "",
        `  (SRP ${who} CPU per request ${fmt(perReq, 3)} ms, by stage from a V8 profile of ${int(P.ok)} requests: ${stages})`,
      ]);
      rows.push(["", `  (  ${who} top self time: ${prof.top.map((f) => `${f.name} ${fmt(100 * share(f.ms), 1)}%`).join("; ")})`]);
    }
    const v = W.srp.ledgerVerify;
    rows.push([
      "",
      `  (SRP: node --max-concurrency ${CFG.gatewayNodeConcurrency}; srp-hub ledger verify after the run: ${v?.ok ? "ok" : `FAILED ${JSON.stringify(v?.problems ?? v)}`})`,
    ]);
    rows.push(...gatewayClusterRows(W));
  }
  const lines = [];
  lines.push("");
  lines.push("SRP relay benchmark (simulator at full speed: tokensPerSecond 0, latency 0; loopback 127.0.0.1)");
  lines.push(
    `machine: ${m.cpus} × ${m.cpuModel}, ${fmt(m.memGiB, 1)} GiB, ${m.platform}, node ${m.node}; load average at start ${m.loadavg.map((x) => fmt(x)).join(" ")}`,
  );
  lines.push("");
  lines.push(table(rows));
  const C = res.crypto;
  if (C) {
    lines.push("");
    lines.push("diagnostics: Ed25519 work on the relay path (per relayed request the hub verifies the node's receipt and countersigns it;");
    lines.push("             the provider signs the receipt and verifies the countersignature)");
    lines.push(
      `  @srp/core (${C.backend ?? "active backend"}): verify node receipt ${fmt(C.verifyUs / 1000)} ms, countersign ${fmt(C.countersignUs / 1000)} ms  ->  hub ${fmt((C.verifyUs + C.countersignUs) / 1000)} ms/request`,
    );
    lines.push(`  node:crypto Ed25519 on the same bytes: sign ${fmt(C.nativeSignUs, 0)} µs, verify ${fmt(C.nativeVerifyUs, 0)} µs`);
    if (T && Number.isFinite(T.hubCpuMsPerRequest)) {
      lines.push(
        `  receipt signatures are ~${fmt((100 * (C.verifyUs + C.countersignUs)) / 1000 / T.hubCpuMsPerRequest, 0)}% of the hub's measured CPU per request`,
      );
    }
  }
  const problems = [];
  if (L?.errors) problems.push(`latency phase: ${L.errors} failed calls (first: ${L.firstError})`);
  if (F?.errors) problems.push(`floor phase: ${F.errors} failed calls (first: ${F.firstError})`);
  if (T?.errors) problems.push(`throughput phase: ${T.errors} failed requests (first: ${T.firstError})`);
  for (const r of S?.relayed.runs ?? []) if (r.status !== 200 || r.error) problems.push(`stream run: status ${r.status} ${r.error ?? ""}`);
  if (M?.failed) problems.push(`memory phase: ${M.failed} sessions failed to open (first: ${M.firstError})`);
  for (const g of Object.values(res.ledger ?? {})) {
    if (g.skipped) problems.push(`ledger phase: the ${g.engine === "postgres" ? "PostgreSQL" : g.engine} figure was skipped: ${g.skipped}`);
    else if (g.verify.length > 0 || !g.consistent)
      problems.push(
        `ledger phase (${g.engine}): the books do not verify: ${JSON.stringify(g.verify)}; ${g.requestsSettled} settled of ${g.jobsRun} jobs run`,
      );
    if (g.receiptsRanOut)
      problems.push(
        `ledger phase (${g.engine}): the pre-built receipts ran out after ${fmt(g.elapsedMs / 1000, 1)} s (${g.budgetBound ? `the ${fmt(g.budgetMs / 1000, 0)} s budget (BENCH_LEDGER_BUDGET_MS) bounded their building on this busy machine` : `BENCH_LEDGER_MAX_JOBS ${CFG.ledgerMaxJobs}`}); the figure is over that shorter window`,
      );
  }
  if (W?.errors) problems.push(`gateway phase: ${W.errors} failed calls (first: ${W.firstError})`);
  if (W && W.rounds < CFG.samples)
    problems.push(`gateway phase: ${W.rounds} of ${CFG.samples} latency rounds fit in the ${CFG.latencyBudgetMs / 1000} s budget`);
  for (const [mode, a] of Object.entries(res.affinity ?? {}))
    if (a?.errors) problems.push(`affinity phase (stickiness ${mode}): ${a.errors} failed requests (first: ${a.firstError})`);
  if (L && L.rounds < CFG.samples)
    problems.push(
      `latency phase: ${L.rounds} of ${CFG.samples} samples fit in the ${CFG.latencyBudgetMs / 1000} s budget (BENCH_LATENCY_BUDGET_MS)`,
    );
  if (problems.length) {
    lines.push("");
    lines.push("notes:");
    for (const p of problems) lines.push(`  - ${p}`);
  }
  lines.push("");
  lines.push(`bench took ${fmt(res.seconds, 1)} s; targets are goals, a MISS does not fail the run.`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------

/** Figure 8's rows for SRP on N hub processes (from the gateway phase's result). */
function gatewayClusterRows(W) {
  const K = W.cluster;
  const label = (n) => `SRP, ${n} processes (PostgreSQL + Redis)`;
  if (!K || K.skipped)
    return [
      ["8", label(Math.floor(CFG.gatewayWorkers)), "skipped", "-", mark()],
      ["", `  (${K?.skipped ?? "not run"})`],
    ];
  const name = label(K.workers.length);
  const cpu = K.load.cpuMsPerRequest;
  const ok = Number.isFinite(K.cpuRatio);
  const share = K.links.total > 0 ? `${fmt((100 * K.links.crossed) / K.links.total, 0)} %` : "n/a";
  const unknown = K.links.unknown > 0 ? `, ${int(K.links.unknown)} not attributable` : "";
  const where = K.nodes.map((n, i) => `node ${i + 1} on ${n.worker ? `worker ${K.workers.indexOf(n.worker) + 1}` : "an unknown worker"}`);
  const v = K.ledgerVerify;
  return [
    ["8", `${name}: added latency p50`, `${signed(K.added.p50)} ms`, "-", mark()],
    ["8", `${name}: added latency p99`, `${signed(K.added.p99)} ms`, "-", mark()],
    ["8", `${name}: answered requests/s (${CFG.gatewayConcurrency} connections)`, `${int(K.load.rps)} req/s`, "-", mark()],
    [
      "8",
      `SRP hub CPU per request, ${K.workers.length} processes / one process`,
      ok ? `${fmt(K.cpuRatio)}×` : "n/a",
      `<= ${fmt(TARGETS.clusterCpu)}×`,
      ok ? mark(K.cpuRatio <= TARGETS.clusterCpu) : mark(),
    ],
    [
      "",
      `  (hub CPU ms per request under load: ${fmt(cpu.hub, 3)} summed over ${K.workers.length} workers and the primary (primary ${fmt(cpu.primary, 3)}), one process ${fmt(W.srp.load.cpuMsPerRequest.hub, 3)}; idle, without requests, the ${K.workers.length + 1} processes use ${fmt(K.idleMsPerSecond, 0)} ms/s; nodes ${fmt(cpu.node, 3)} summed over ${K.nodes.length}; simulator ${fmt(cpu.simulator, 3)})`,
    ],
    [
      "",
      `  (sequential p50/p99 ${fmt(K.p50)}/${fmt(K.p99)} ms; under load ${fmt(K.load.p50, 1)}/${fmt(K.load.p99, 1)} ms; ${where.join(", ")}; crossed a link: ${int(K.links.crossed)} of ${int(K.links.total)} receipts in the loaded window (${share}${unknown}); srp-hub ledger verify: ${v?.ok ? "ok" : `FAILED ${JSON.stringify(v?.problems ?? v)}`})`,
    ],
  ];
}

async function main() {
  const started = performance.now();
  const res = { machine: machine(), config: CFG };
  if (ONLY.has("routing")) {
    log("routing decision time (in process)");
    res.routing = benchRouting();
  }
  if (ONLY.has("latency") || ONLY.has("throughput")) {
    log("signature cost (in process)");
    res.crypto = benchCrypto();
  }
  if (ONLY.has("floor") || ONLY.has("latency") || ONLY.has("throughput") || ONLY.has("stream")) {
    log("starting simulator, hub and providers (separate processes)");
    const net = await startRelayNet();
    const expected = CFG.providerProcs * CFG.providersPerProc;
    if (net.stats.instances !== expected) throw new Error(`expected ${expected} instances online, the hub has ${net.stats.instances}`);
    if (ONLY.has("floor")) {
      log("this machine's floor: the simulator directly and through two do-nothing node:http proxies in series");
      res.floor = await benchFloor(net);
    }
    if (ONLY.has("latency")) {
      log(
        `added latency: up to ${CFG.samples} interleaved rounds after ${CFG.warmup} warm-up rounds (budget ${CFG.latencyBudgetMs / 1000} s)`,
      );
      res.latency = await benchLatency(net);
    }
    if (ONLY.has("throughput")) {
      log(`requests/s: ${CFG.concurrency} in flight for ${CFG.rpsMs / 1000} s after ${CFG.rpsWarmupMs / 1000} s of warm-up`);
      res.throughput = await benchThroughput(net);
    }
    if (ONLY.has("stream")) {
      log(`chunks/s: ${CFG.streamRuns} streams of ${CFG.streamTokens} tokens`);
      res.stream = await benchStream(net);
    }
    await net.loadgen.stop();
    for (const p of net.provs) await p.stop();
    await net.hub.stop();
    await net.sim.stop();
  }
  if (ONLY.has("gateway")) {
    log(
      `side by side: the Portkey gateway and SRP by its CLIs on one simulator (latency, then ${CFG.gatewayConcurrency} connections for ${CFG.rpsMs / 1000} s each)`,
    );
    res.gateway = await benchGateway();
  }
  if (ONLY.has("memory")) {
    log(`memory: ${CFG.connections} idle provider sessions on a fresh hub process`);
    res.memory = await benchMemory();
  }
  if (ONLY.has("ledger")) {
    res.ledger = await benchLedger();
  }
  if (ONLY.has("keys")) {
    log(
      `operating: metrics off and on, then ${CFG.keysFloodRequests} requests at ${CFG.keysFloodConcurrency} at once on a rate-limited key and on a budgeted key`,
    );
    res.keys = await benchKeys();
  }
  if (ONLY.has("affinity")) {
    log(`prefix affinity: ${CFG.affinitySessions} Claude-Code-shaped sessions × ${CFG.affinityTurns} turns, stickiness off then on`);
    res.affinity = await benchAffinity();
  }
  res.seconds = (performance.now() - started) / 1000;

  console.log(report(res));
  if (JSON_OUT) console.log(JSON.stringify(res, null, 2));
}

const watchdog = setTimeout(() => {
  log(`the bench exceeded its ${CFG.limitMs / 1000} s limit (BENCH_LIMIT_MS); stopping`);
  killAllNow();
  process.exit(2);
}, CFG.limitMs);
watchdog.unref();
process.on("exit", killAllNow);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    killAllNow();
    process.exit(130);
  });
}

try {
  await main();
} catch (error) {
  log(`failed: ${error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  clearTimeout(watchdog);
}
