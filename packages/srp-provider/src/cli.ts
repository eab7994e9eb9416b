/**
 * `srp-provider`: set up and run an SRP provider node.
 *
 *   srp-provider setup --hub URL [--account-key KEY] [--dir DIR] [--price-input N] [--price-output N]
 *                      [--backend-url URL]... [--run-model [URL=]NAME]... [--video-model [URL=]NAME]...
 *                      [--openai-key K] [--anthropic-key K --anthropic-model M]...
 *   srp-provider start [--foreground] [--dir DIR]
 *   srp-provider stop | status | logs [-n 50] [--dir DIR]
 *   srp-provider connect [--account-key KEY] [--identity FILE] [--hub-id ID] [--once] <hub-url>
 *   srp-provider keygen [--identity FILE]
  srp-provider claim --rpc URL [--key HEX] [--dir DIR]   (claims the node account's earnings on-chain;
                     the key, also SRP_WALLET_KEY, pays the gas; the voucher pays the bound payout wallet)
 *   srp-provider claim --rpc URL [--key HEX] [--dir DIR]
 *
 * `setup` finds the local model servers running here (Ollama 11434, LM Studio 1234,
 * vLLM 8000, llama.cpp 8080; a Cog server on 5000 for `runs` jobs; at `--backend-url` and
 * `SRP_BACKEND_URL` URLs also Cog and OpenAI Videos API servers) through their own APIs,
 * creates the node identity, seals the account key (and any forwarded API keys) in the
 * node's key store, writes
 * `provider.json`, then binds the node to the account with a real handshake and prints
 * the hub's latency. `start` runs the node in the background (pid and log files in the
 * node directory); `--foreground` keeps it attached. The account key may also come from
 * `SRP_ACCOUNT_KEY`. Logs are JSON lines.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync, writeFileSync, readSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { fetchDiscovery } from "@srp/core";
import type { Price } from "@srp/core/schema";
import { loadOrCreateIdentity, runCli, UsageError } from "@srp/core/node";
import { connectToHub } from "./connection.js";
import { createProvider } from "./provider.js";
import { FileReceiptStore } from "./receipt-store.js";
import {
  describeInstance,
  parseAsyncModelFlag,
  parseCapabilitiesFlag,
  planAsyncInstances,
  type AsyncSupplySettings,
  parsePriceFlag,
  planForwardedInstances,
  planInstances,
  unmatchedFlags,
  type SupplySettings,
} from "./supply.js";
import {
  detectBackend,
  detectBackends,
  detectAsyncBackends,
  instancesFromConfig,
  refreshIo,
  nodeKeyStore,
  nodePaths,
  readNodeConfig,
  writeNodeConfig,
  type InstanceFileConfig,
  type NodeConfig,
} from "./node-config.js";

const USAGE = `usage:
  srp-provider setup --hub URL [--account-key KEY] [--dir DIR] [--price-input UNITS] [--price-output UNITS]
                     [--price-cached-input U] [--price-cache-write U] [--price-image U] [--price-character U] [--price-second U]
                     [--price MODEL=IN:OUT[,image=U,...]]... [--capabilities MODEL=chat,stream,tools]...
                     [--max-concurrency N] [--no-probe]
                     [--backend-url URL]... [--no-detect] [--run-model [URL=]NAME]... [--video-model [URL=]NAME]...
                     [--openai-key KEY --openai-model M]...
                     [--anthropic-key KEY --anthropic-model M]... [--gemini-key KEY --gemini-model M]...
  srp-provider start [--foreground] [--dir DIR]
  srp-provider stop [--dir DIR]
  srp-provider status [--dir DIR]
  srp-provider logs [-n LINES] [--dir DIR]
  srp-provider connect [--account-key KEY] [--identity FILE] [--hub-id ID] [--once] <hub-url>
  srp-provider keygen [--identity FILE]

Prices are USDC atomic units (1e-6 USD) per 1M tokens (per 1M images, characters or seconds
for image, character and second). MODEL in --price and --capabilities is the server's own
name, the canonical id, or any alias. --max-concurrency defaults by server kind: vLLM 16,
llama.cpp its slot count (1 if it does not say), Ollama 2, LM Studio 1, other OpenAI-compatible
servers 4, forwarded keys 8, Cog 1, Videos API servers 2.

Async jobs: a Cog server (port 5000, or a --backend-url) becomes one run instance named by
--run-model (Cog's /openapi.json names no model), priced second=1000000000,run=10000000000
($0.001 a second, $0.01 a run); a --backend-url answering GET /v1/videos with a list is a
Videos API server, offering each --video-model as a video instance priced
second=50000000000,run=0 ($0.05 a second). --price NAME=second=U,run=U changes either.
SRP_BACKEND_URL (comma-separated) adds --backend-url URLs.`;
const DEFAULT_DIR = ".srp-data/provider";
const DEFAULT_IDENTITY = `${DEFAULT_DIR}/node.key`;
const ACCOUNT_KEY_NAME = "hub-account";

const log = (event: string, detail: object = {}) =>
  process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), event, ...detail })}\n`);
const say = (text: string) => process.stdout.write(`${text}\n`);

function priceArg(value: string, flag: string): string {
  if (!/^(0|[1-9][0-9]{0,30})$/.test(value)) throw new UsageError(`${flag} takes atomic units per 1M tokens, e.g. 200000 for $0.20`);
  return value;
}

async function setup(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      hub: { type: "string" },
      "account-key": { type: "string" },
      dir: { type: "string", default: DEFAULT_DIR },
      "price-input": { type: "string", default: "100000" },
      "price-output": { type: "string", default: "300000" },
      "price-cached-input": { type: "string" },
      "price-cache-write": { type: "string" },
      "price-image": { type: "string" },
      "price-character": { type: "string" },
      "price-second": { type: "string" },
      price: { type: "string", multiple: true, default: [] },
      capabilities: { type: "string", multiple: true, default: [] },
      "max-concurrency": { type: "string" },
      "no-probe": { type: "boolean", default: false },
      "backend-url": { type: "string", multiple: true, default: [] },
      "no-detect": { type: "boolean", default: false },
      "run-model": { type: "string", multiple: true, default: [] },
      "video-model": { type: "string", multiple: true, default: [] },
      "openai-key": { type: "string" },
      "openai-model": { type: "string", multiple: true, default: [] },
      "anthropic-key": { type: "string" },
      "anthropic-model": { type: "string", multiple: true, default: [] },
      "gemini-key": { type: "string" },
      "gemini-model": { type: "string", multiple: true, default: [] },
    },
    strict: true,
  });
  if (!values.hub) throw new UsageError("--hub URL is required");
  const accountKey = values["account-key"] ?? process.env.SRP_ACCOUNT_KEY;
  if (!accountKey) throw new UsageError("an account key is needed: --account-key KEY or SRP_ACCOUNT_KEY");
  const dir = resolve(values.dir);
  const price: Price = {
    input: priceArg(values["price-input"], "--price-input"),
    output: priceArg(values["price-output"], "--price-output"),
  };
  for (const [flag, key] of [
    ["price-cached-input", "cachedInput"],
    ["price-cache-write", "cacheWrite"],
    ["price-image", "image"],
    ["price-character", "character"],
    ["price-second", "second"],
  ] as const) {
    const v = values[flag];
    if (v !== undefined) price[key] = priceArg(v, `--${flag}`);
  }
  const maxConcurrency = values["max-concurrency"] === undefined ? undefined : Number(values["max-concurrency"]);
  if (maxConcurrency !== undefined && (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 1024))
    throw new UsageError("--max-concurrency is an integer from 1 to 1024");
  let settings: SupplySettings;
  let asyncSettings: AsyncSupplySettings;
  try {
    settings = {
      defaultPrice: price,
      prices: values.price.map(parsePriceFlag),
      capabilities: values.capabilities.map(parseCapabilitiesFlag),
      ...(maxConcurrency === undefined ? {} : { maxConcurrency }),
    };
    asyncSettings = {
      runModels: values["run-model"].map((f) => parseAsyncModelFlag(f, "--run-model")),
      videoModels: values["video-model"].map((f) => parseAsyncModelFlag(f, "--video-model")),
      prices: settings.prices ?? [],
      ...(maxConcurrency === undefined ? {} : { maxConcurrency }),
    };
  } catch (e) {
    throw new UsageError((e as Error).message, { cause: e });
  }
  const probe = !values["no-probe"];

  const paths = nodePaths(dir);
  const { identity, created } = loadOrCreateIdentity(paths.identity);
  say(`node id      ${identity.id}${created ? " (new)" : ""}`);
  const keys = nodeKeyStore(dir, identity);
  keys.set(ACCOUNT_KEY_NAME, accountKey);

  const extraUrls = [
    ...values["backend-url"],
    ...(process.env.SRP_BACKEND_URL ?? "")
      .split(",")
      .map((u) => u.trim())
      .filter(Boolean),
  ];
  const [wellKnown, extraFound, asyncFound] = await Promise.all([
    values["no-detect"] ? [] : detectBackends([], 1500, probe),
    Promise.all(extraUrls.map((u) => detectBackend(u, undefined, 1500, probe))),
    detectAsyncBackends(extraUrls, { wellKnown: !values["no-detect"] }),
  ]);
  const extra = extraFound.filter((b) => b !== undefined);
  const asyncRoots = [...asyncFound.cog.map((c) => c.baseUrl), ...asyncFound.videos.map((v) => v.baseUrl.replace(/\/v1$/, ""))];
  const unknown = extraUrls.filter(
    (u, i) =>
      !extraFound[i] &&
      !extra.some((b) => b.baseUrl.startsWith(u.replace(/\/+$/, "").replace(/\/v1$/, ""))) &&
      !asyncRoots.includes(u.replace(/\/+$/, "").replace(/\/v1$/, "")),
  );
  for (const u of unknown) say(`backend      nothing OpenAI-compatible, Cog or Videos API answers at ${u}`);
  const seen = new Set<string>();
  const found = [...wellKnown, ...extra].filter((b) => (seen.has(b.baseUrl) ? false : (seen.add(b.baseUrl), true)));
  const instances: InstanceFileConfig[] = [];
  for (const b of found) {
    say(
      `backend      ${b.kind} at ${b.baseUrl}: ${b.models.map((m) => m.id + (m.digest ? ` (${m.digest.slice(0, 12)})` : "")).join(", ") || "no models"}`,
    );
    const planned = planInstances([b], settings);
    for (const i of planned) say(`model        ${describeInstance(i)}`);
    instances.push(...planned);
  }
  for (const c of asyncFound.cog)
    say(
      `backend      cog at ${c.baseUrl}: ${c.title === undefined ? "untitled" : JSON.stringify(c.title)}${c.health ? ` (health ${c.health})` : ""}`,
    );
  for (const v of asyncFound.videos) say(`backend      videos at ${v.baseUrl}`);
  const planned = planAsyncInstances(asyncFound, asyncSettings);
  for (const note of planned.notes) say(`note         ${note}`);
  for (const i of planned.instances) say(`model        ${describeInstance(i)}`);
  instances.push(...planned.instances);
  const asyncModels = new Set(planned.instances.map((i) => i.model));
  for (const name of unmatchedFlags(found, settings))
    if (!asyncModels.has(name)) say(`warning      ${name} (in --price or --capabilities) names no model found`);
  for (const kind of ["openai", "anthropic", "gemini"] as const) {
    const key = values[`${kind}-key`];
    const models = values[`${kind}-model`];
    if (!key && models.length === 0) continue;
    if (!key || models.length === 0) throw new UsageError(`--${kind}-key and at least one --${kind}-model go together`);
    keys.set(kind, key);
    instances.push(...planForwardedInstances(kind, models, settings));
    say(`backend      ${kind} (forwarded key, sealed in the key store): ${models.join(", ")}`);
  }
  if (instances.length === 0)
    throw new Error(
      "found no local model server (Ollama 11434, LM Studio 1234, vLLM 8000, llama.cpp 8080, Cog 5000 with --run-model, a --backend-url) and no forwarded key was given",
    );

  const t0 = performance.now();
  const doc = await fetchDiscovery(values.hub);
  const discoveryMs = performance.now() - t0;
  const t1 = performance.now();
  const conn = connectToHub({
    hub: values.hub,
    identity,
    account: { kind: "api_key", key: accountKey },
    reconnect: false,
    expectedHubId: doc.hubId,
    agent: "srp-provider/0.1.0 (setup)",
  });
  const welcome = await conn.ready();
  const handshakeMs = performance.now() - t1;
  await conn.close();
  const config: NodeConfig = { hub: values.hub, hubId: doc.hubId, accountKeyName: ACCOUNT_KEY_NAME, instances };
  writeNodeConfig(dir, config);
  say(`hub          ${values.hub} (id ${doc.hubId})`);
  say(`account      ${welcome.accountId} (bound with a signed handshake)`);
  say(`latency      discovery ${Math.round(discoveryMs * 10) / 10} ms, handshake ${Math.round(handshakeMs * 10) / 10} ms`);
  say(`config       ${paths.config} (${instances.length} instance${instances.length === 1 ? "" : "s"})`);
  say(`next         srp-provider start${values.dir === DEFAULT_DIR ? "" : ` --dir ${values.dir}`}`);
}

function readPid(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(nodePaths(dir).pid, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { foreground: { type: "boolean", default: false }, dir: { type: "string", default: DEFAULT_DIR } },
    strict: true,
  });
  const dir = resolve(values.dir);
  const paths = nodePaths(dir);
  if (!existsSync(paths.config)) throw new UsageError(`no ${paths.config}; run srp-provider setup first`);
  const running = readPid(dir);
  if (running !== undefined && running !== process.pid) throw new Error(`the node already runs (pid ${running}); srp-provider stop first`);
  if (!values.foreground) {
    const out = openSync(paths.log, "a", 0o600);
    const child = spawn(process.execPath, [process.argv[1]!, "start", "--foreground", "--dir", dir], {
      detached: true,
      stdio: ["ignore", out, out],
    });
    closeSync(out);
    writeFileSync(paths.pid, `${child.pid}\n`, { mode: 0o600 });
    child.unref();
    say(`srp-provider started in the background (pid ${child.pid}); logs: ${paths.log}`);
    return;
  }
  writeFileSync(paths.pid, `${process.pid}\n`, { mode: 0o600 });
  const config = readNodeConfig(dir);
  const { identity } = loadOrCreateIdentity(paths.identity);
  const keys = nodeKeyStore(dir, identity);
  const accountKey = keys.get(config.accountKeyName);
  if (!accountKey) throw new Error(`no sealed account key named ${config.accountKeyName}; run setup again`);
  const instances = instancesFromConfig(config, keys);
  // A Cog model may have been replaced since setup: offer what it declares now (SRP-OFF-021).
  for (const r of await refreshIo(instances))
    if (r.outcome !== "same") log(r.outcome === "updated" ? "io.updated" : "io.unreachable", { ...r });
  const provider = createProvider({
    hub: config.hub,
    identity,
    account: accountKey,
    instances,
    receipts: new FileReceiptStore(paths.receipts),
    agent: "srp-provider/0.1.0",
    ...(config.hubId ? { expectedHubId: config.hubId } : {}),
  });
  const writeStatus = () => {
    const s = provider.stats();
    const status = {
      pid: process.pid,
      nodeId: provider.nodeId,
      hub: config.hub,
      connection: provider.connection.state,
      updatedAt: new Date().toISOString(),
      ...s,
    };
    writeFileSync(paths.status, `${JSON.stringify(status, null, 2)}\n`, { mode: 0o600 });
  };
  // After a job, the status file is rewritten within a second, not after every job (a busy
  // node ends hundreds of jobs a second, and each rewrite is a synchronous truncate and write).
  let statusTimer: ReturnType<typeof setTimeout> | undefined;
  const writeStatusSoon = () => {
    statusTimer ??= setTimeout(() => {
      statusTimer = undefined;
      writeStatus();
    }, 1000);
    statusTimer.unref();
  };
  log("node.start", { nodeId: identity.id, hub: config.hub, instances: config.instances.length });
  provider.on("welcome", (w) => {
    log("session.open", { sessionId: w.sessionId, accountId: w.accountId });
    writeStatus();
  });
  provider.on("offer.result", (r) => log(r.accepted ? "offer.accepted" : "offer.refused", r));
  provider.on("job.end", (o) => {
    log("job.end", o);
    writeStatusSoon();
  });
  provider.on("warning", (w) => log("warning", w));
  provider.on("statement", ({ statement, agreed, problem }) => {
    // A disputed statement is logged as a warning too (above); this line is the record.
    log(agreed ? "statement.agreed" : "statement.DISPUTED", {
      statementId: statement.statementId,
      earned: statement.earned,
      balance: statement.balance,
      lastSeq: statement.receipts.lastSeq,
      ...(problem ? { problem } : {}),
    });
    writeStatus();
  });
  provider.on("disconnected", (d) => {
    log("session.closed", d);
    writeStatus();
  });
  const timer = setInterval(writeStatus, 5000);
  timer.unref();
  provider.on("stopped", ({ error }) => {
    clearInterval(timer);
    clearTimeout(statusTimer);
    writeStatus();
    rmSync(paths.pid, { force: true });
    if (error) {
      log("node.stopped", { code: (error as { code?: string }).code, message: error.message });
      process.exit(2);
    }
    process.exit(0);
  });
  const stop = () => {
    log("node.stopping");
    void provider.close();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

async function stop(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { dir: { type: "string", default: DEFAULT_DIR } }, strict: true });
  const dir = resolve(values.dir);
  const pid = readPid(dir);
  if (pid === undefined) {
    say("srp-provider is not running");
    return;
  }
  process.kill(pid, "SIGTERM");
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    try {
      process.kill(pid, 0);
      await new Promise((r) => setTimeout(r, 50));
    } catch {
      rmSync(nodePaths(dir).pid, { force: true });
      say(`srp-provider stopped (pid ${pid})`);
      return;
    }
  }
  throw new Error(`pid ${pid} did not stop within 10 s`);
}

function status(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { dir: { type: "string", default: DEFAULT_DIR } }, strict: true });
  const dir = resolve(values.dir);
  const pid = readPid(dir);
  let detail: Record<string, unknown> = {};
  try {
    detail = JSON.parse(readFileSync(nodePaths(dir).status, "utf8")) as Record<string, unknown>;
  } catch {
    /* never started */
  }
  process.stdout.write(
    `${JSON.stringify({ running: pid !== undefined, ...(pid === undefined ? {} : { pid }), ...detail, ...(pid === undefined ? { connection: "stopped" } : {}) }, null, 2)}\n`,
  );
}

function logs(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: { n: { type: "string", short: "n", default: "50" }, dir: { type: "string", default: DEFAULT_DIR } },
    strict: true,
  });
  const file = nodePaths(resolve(values.dir)).log;
  if (!existsSync(file)) return;
  const size = statSync(file).size;
  const from = Math.max(0, size - 1024 * 1024);
  const fd = openSync(file, "r");
  const buf = Buffer.alloc(size - from);
  readSync(fd, buf, 0, buf.length, from);
  closeSync(fd);
  const lines = buf.toString("utf8").split("\n").filter(Boolean);
  process.stdout.write(`${lines.slice(-Math.max(1, Number(values.n))).join("\n")}\n`);
}

async function connect(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "account-key": { type: "string" },
      identity: { type: "string", default: DEFAULT_IDENTITY },
      "hub-id": { type: "string" },
      once: { type: "boolean", default: false },
    },
  });
  const hub = positionals.at(-1);
  if (!hub) throw new UsageError("the hub URL is the last argument");
  const key = values["account-key"] ?? process.env.SRP_ACCOUNT_KEY;
  if (!key) throw new UsageError("an account key is needed: --account-key KEY or SRP_ACCOUNT_KEY");
  const { identity, created } = loadOrCreateIdentity(values.identity);
  log("node.identity", { nodeId: identity.id, created });
  const conn = connectToHub({
    hub,
    identity,
    account: { kind: "api_key", key },
    agent: "srp-provider/0.1.0",
    ...(values["hub-id"] ? { expectedHubId: values["hub-id"] } : {}),
    ...(values.once ? { reconnect: false as const } : {}),
  });
  conn.on("welcome", (w) =>
    log("session.open", { sessionId: w.sessionId, accountId: w.accountId, version: w.version, replaced: w.replaced }),
  );
  conn.on("disconnected", (d) => log("session.closed", d));
  conn.on("protocolError", (e) => log("protocol.error", e));
  conn.on("stopped", ({ error }) => {
    if (error) {
      log("node.stopped", { code: error.code, message: error.message });
      process.stderr.write(`srp-provider: stopped: ${error.code}: ${error.message}\n`);
      process.exit(2);
    }
    process.exit(0);
  });
  const stopNode = () => void conn.close();
  process.once("SIGINT", stopNode);
  process.once("SIGTERM", stopNode);
}

function keygen(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { identity: { type: "string", default: DEFAULT_IDENTITY } } });
  const { identity, created } = loadOrCreateIdentity(values.identity);
  process.stdout.write(`${identity.id}\n`);
  if (!created) process.stderr.write(`srp-provider: ${values.identity} already existed; kept it\n`);
}

/** `srp-provider claim`: asks the hub for the account's payout voucher and claims it from the settlement contract. */
async function claim(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { rpc: { type: "string" }, key: { type: "string" }, dir: { type: "string", default: DEFAULT_DIR } },
    strict: true,
  });
  if (!values.rpc) throw new UsageError("claim needs --rpc URL (a JSON-RPC endpoint of the settlement contract's chain)");
  const key = values.key ?? process.env.SRP_WALLET_KEY;
  if (key === undefined || !/^0x[0-9a-fA-F]{64}$/.test(key))
    throw new UsageError("claim needs --key (or SRP_WALLET_KEY): a 0x-prefixed 32-byte private key that pays the gas");
  const dir = resolve(values.dir);
  const paths = nodePaths(dir);
  if (!existsSync(paths.config)) throw new UsageError(`no ${paths.config}; run srp-provider setup first`);
  const config = readNodeConfig(dir);
  const { identity } = loadOrCreateIdentity(paths.identity);
  const accountKey = nodeKeyStore(dir, identity).get(config.accountKeyName);
  if (!accountKey) throw new Error(`no sealed account key named ${config.accountKeyName}; run setup again`);
  const res = await fetch(`${config.hub.replace(/\/+$/, "")}/v1/payouts/voucher`, {
    method: "POST",
    headers: { authorization: `Bearer ${accountKey}` },
  });
  const body = (await res.json()) as {
    error?: { code: string; message: string };
    payee: `0x${string}`;
    total: string;
    signature: `0x${string}`;
    settlement: `0x${string}`;
    chain_id: number;
  };
  if (!res.ok) throw new Error(`the hub refused a voucher (${res.status} ${body.error?.code ?? ""}): ${body.error?.message ?? ""}`);
  const { createPublicClient, createWalletClient, defineChain, http, parseEventLogs } = await import("viem");
  const { privateKeyToAccount } = await import("viem/accounts");
  const { srpSettlementAbi } = await import("@srp/core/chain");
  const chain = defineChain({
    id: body.chain_id,
    name: `eip155:${body.chain_id}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [values.rpc] } },
  });
  const transport = http(values.rpc);
  const wallet = createWalletClient({ account: privateKeyToAccount(key as `0x${string}`), chain, transport });
  const publicClient = createPublicClient({ chain, transport });
  const hash = await wallet.writeContract({
    address: body.settlement,
    abi: srpSettlementAbi,
    functionName: "claim",
    args: [body.payee, BigInt(body.total), body.signature],
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`claim ${hash} reverted`);
  const claimed = parseEventLogs({ abi: srpSettlementAbi, eventName: "Claimed", logs: receipt.logs })[0];
  const provider = claimed?.args.providerAmount ?? 0n;
  const protocol = claimed?.args.protocolAmount ?? 0n;
  process.stdout.write(
    `${JSON.stringify({ transaction: hash, payee: body.payee, total: body.total, provider: provider.toString(), protocol: protocol.toString(), note: provider === 0n ? "nothing new to claim: this voucher was claimed before" : undefined }, null, 2)}\n`,
  );
}

runCli("srp-provider", USAGE, { setup, start, stop, status, logs, connect, keygen, claim });
