/**
 * Three `srp-hub serve` processes as one hub, as an operator runs them (docs/deployment.md):
 * real child processes sharing one data directory (one hub identity), a real PostgreSQL
 * (the ledger) and a real Redis (the directory), behind a real HAProxy that balances both
 * the consumers' requests and the nodes' WebSocket sessions. Nodes are in-process
 * providers and one `srp-provider` CLI node, all connecting through HAProxy; consumers use
 * the official `openai` SDK through HAProxy. Scenarios, in order, each followed by
 * `srp-hub ledger verify`: requests spread over the processes; one process killed
 * (SIGKILL) under load; that process restarted; and `srp-hub serve --workers 2`.
 *
 * Money is checked in the database itself: every answered request has one receipt and one
 * settlement, and the consumer's balance, holds and charges add up to the deposit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { DEFAULT_DISCOUNT_TIERS, splitCharge } from "@srp/hub/ledger";
import { big, openPostgres, SqlLedgerBook, type SqlDriver } from "@srp/hub/storage";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";
import { BACKEND, skipWithoutHaproxy, startHaproxy, type TestHaproxy } from "./support/haproxy.js";
import { createDatabase, freePort, startPostgres, type TestPostgres } from "./support/postgres.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";
import { killOnExit, sleep, stopChild } from "./support/servers.js";

const HUB_CLI = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
const PROVIDER_CLI = new URL("../packages/srp-provider/dist/cli.js", import.meta.url).pathname;
const MODEL = "sim-llama-3-8b";
const PRICE = { input: "100000", output: "300000" };
const ADMIN_TOKEN = "srpadm_cluster_processes_test_token";
const DEPOSIT = 5_000_000n;

/** One JSON line a hub process wrote on stderr. */
interface HubEvent {
  event: string;
  t: string;
  [key: string]: unknown;
}

/** A running `srp-hub serve` child process and what it said. */
interface HubProcess {
  child: ChildProcess;
  port: number;
  events: HubEvent[];
  stderr: string;
  /** The ledger's holder id of this process (its reservations), from `hub.listening`. */
  ledgerProcess: string | undefined;
}

/** How one consumer request ended. */
interface Outcome {
  startedAt: number;
  endedAt: number;
  stream: boolean;
  ok: boolean;
  receiptId?: string | null;
  text?: string;
  error?: string;
  /** The usage the consumer was shown (with the hub's `cost`, `receipt_id`, `receipt_error`). */
  usage?: unknown;
}

const children = new Set<ChildProcess>();

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ["SRP_HUB_DB", "SRP_HUB_ACCOUNTS", "SRP_ADMIN_TOKEN", "SRP_REDIS_URL", "SRP_ACCOUNT_KEY"]) delete env[name];
  return env;
}

/** Runs a CLI to completion; resolves with its exit code and output. */
function run(cli: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `srp-hub` and parses its JSON answer; throws on a non-zero exit. */
async function hubCli(args: string[]): Promise<Record<string, unknown>> {
  const r = await run(HUB_CLI, args);
  if (r.code !== 0) throw new Error(`srp-hub ${args.join(" ")} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Polls `read` until it returns a value; throws after `ms`. */
async function until<T>(what: string, ms: number, read: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

/** Spawns a long-running CLI child that is killed when the test process ends. */
function spawnChild(args: string[]): ChildProcess {
  const child = spawn(process.execPath, args, { env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  killOnExit(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Starts `srp-hub serve` with `args` on `port`; resolves once it listens. */
async function serveHub(port: number, args: string[]): Promise<HubProcess> {
  const child = spawnChild([HUB_CLI, "serve", "--port", String(port), "--host", "127.0.0.1", ...args]);
  const hub: HubProcess = { child, port, events: [], stderr: "", ledgerProcess: undefined };
  let partial = "";
  child.stderr!.on("data", (d: Buffer) => {
    hub.stderr += d.toString();
    partial += d.toString();
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      try {
        const e = JSON.parse(line) as HubEvent;
        hub.events.push(e);
        if (e.event === "hub.listening" && typeof e.ledgerProcess === "string") hub.ledgerProcess = e.ledgerProcess;
      } catch {
        // not one of the hub's JSON lines
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("listening on")) resolve();
    });
    child.once("exit", (code, signal) => reject(new Error(`srp-hub serve exited (${code ?? signal}) before listening:\n${hub.stderr}`)));
  });
  return hub;
}

/** The node ids with a session open on `hub` now, by its `session.open` / `session.close` lines. */
function openNodes(hub: HubProcess, since = 0): Set<string> {
  const open = new Map<string, string>();
  for (const e of hub.events) {
    if (Date.parse(e.t) < since) continue;
    if (e.event === "session.open") open.set(String(e.sessionId), String(e.nodeId));
    if (e.event === "session.close") open.delete(String(e.sessionId));
  }
  return new Set(open.values());
}

const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

/** One chat completion through the SDK, streamed or not; never throws. */
async function chat(sdk: OpenAI, stream: boolean, maxTokens = 12): Promise<Outcome> {
  const startedAt = Date.now();
  try {
    const messages = [{ role: "user" as const, content: "tell me about spare relays" }];
    if (!stream) {
      const r = await sdk.chat.completions.create({ model: MODEL, messages, max_tokens: maxTokens });
      const receiptId = (r.usage as unknown as { receipt_id?: string | null } | undefined)?.receipt_id;
      if (receiptId === undefined) return { startedAt, endedAt: Date.now(), stream, ok: false, error: "no usage in the answer" };
      return { startedAt, endedAt: Date.now(), stream, ok: true, receiptId, text: r.choices[0]?.message.content ?? "", usage: r.usage };
    }
    const s = await sdk.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let receiptId: string | null | undefined;
    let finished = false;
    let usage: unknown;
    for await (const c of s) {
      text += c.choices[0]?.delta?.content ?? "";
      if (c.choices[0]?.finish_reason) finished = true;
      if (c.usage) {
        receiptId = (c.usage as unknown as { receipt_id?: string | null }).receipt_id;
        usage = c.usage;
      }
    }
    // A stream cut short without an error event is a failure too, as the consumer sees it.
    if (!finished || receiptId === undefined)
      return { startedAt, endedAt: Date.now(), stream, ok: false, text, error: "stream ended early" };
    return { startedAt, endedAt: Date.now(), stream, ok: true, receiptId, text, usage };
  } catch (error) {
    const e = error as { status?: number; message?: string };
    return { startedAt, endedAt: Date.now(), stream, ok: false, error: `${e.status ?? "-"} ${e.message ?? String(error)}` };
  }
}

/** What the database says about one consumer's money. */
interface Books {
  receipts: { jobId: string; nodeId: string; cost: bigint; reservationId: string | null }[];
  settles: { ref: string; jobId: string; charge: bigint; discountBps: number }[];
  reservations: { id: string; state: string; holder: string; amount: bigint; charged: bigint | null; jobId: string | null }[];
  balance: bigint;
  held: bigint;
  /** What came in: the deposit and the signup credit. */
  credited: bigint;
}

async function books(db: SqlDriver, account: string): Promise<Books> {
  const receipts = (
    await db.all("SELECT job_id, node_id, cost, reservation_id FROM receipts WHERE consumer_account_id = ?", [account])
  ).map((r) => ({
    jobId: String(r.job_id),
    nodeId: String(r.node_id),
    cost: BigInt(String(r.cost)),
    reservationId: r.reservation_id === null ? null : String(r.reservation_id),
  }));
  const settles = (await db.all("SELECT ref, memo FROM ledger_transactions WHERE kind = 'settle' AND account_id = ?", [account])).map(
    (r) => {
      const memo = JSON.parse(String(r.memo)) as { jobId: string; charge: string; discountBps: number };
      return { ref: String(r.ref), jobId: memo.jobId, charge: BigInt(memo.charge), discountBps: memo.discountBps };
    },
  );
  const reservations = (
    await db.all("SELECT id, state, holder, amount, charged, job_id FROM reservations WHERE account_id = ?", [account])
  ).map((r) => ({
    id: String(r.id),
    state: String(r.state),
    holder: String(r.holder),
    amount: big(r.amount),
    charged: r.charged === null ? null : big(r.charged),
    jobId: r.job_id === null ? null : String(r.job_id),
  }));
  const balanceOf = async (id: string) => big((await db.all("SELECT balance FROM ledger_accounts WHERE id = ?", [id]))[0]?.balance ?? 0);
  const [credit] = await db.all(
    "SELECT COALESCE(SUM(e.amount), 0) AS credited FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx_id WHERE e.account_id = ? AND t.kind IN ('deposit', 'signup_credit')",
    [`user:${account}`],
  );
  return {
    receipts,
    settles,
    reservations,
    balance: await balanceOf(`user:${account}`),
    held: await balanceOf(`hold:${account}`),
    credited: big(credit?.credited ?? 0),
  };
}

/**
 * The money checks of one consumer (nothing lost, nothing billed twice): each answered
 * request's receipt exists once and was settled once, at its cost after the discount; no
 * settlement without a receipt; balance + holds + charges = what came in. Receipts beyond
 * the answered requests' are at most `inDoubt`: the requests whose answer did not say
 * what was billed (cut by a kill).
 */
function checkBooks(b: Books, answered: readonly Outcome[], inDoubt: number, deposit: bigint): void {
  expect(b.credited - deposit, "the signup credit").toBeGreaterThanOrEqual(0n);
  const receiptIds = b.receipts.map((r) => r.jobId);
  expect(new Set(receiptIds).size).toBe(receiptIds.length);
  for (const o of answered) {
    expect(o.receiptId, `an answered request without a receipt: ${JSON.stringify(o)}`).toEqual(expect.any(String));
    expect(receiptIds.filter((id) => id === o.receiptId)).toHaveLength(1);
  }
  expect(new Set(answered.map((o) => o.receiptId)).size).toBe(answered.length);
  expect(receiptIds.length - answered.length).toBeGreaterThanOrEqual(0);
  expect(receiptIds.length - answered.length).toBeLessThanOrEqual(inDoubt);
  // One settlement per receipt, on its reservation, and none without a receipt.
  const settledJobs = b.settles.map((s) => s.jobId);
  expect(new Set(settledJobs).size).toBe(settledJobs.length);
  expect(new Set(b.settles.map((s) => s.ref)).size).toBe(b.settles.length);
  expect([...settledJobs].sort()).toEqual([...receiptIds].sort());
  const reservations = new Map(b.reservations.map((r) => [r.id, r]));
  let charged = 0n;
  for (const r of b.receipts) {
    const settle = b.settles.find((s) => s.jobId === r.jobId)!;
    expect(settle.ref).toBe(r.reservationId);
    const reservation = reservations.get(settle.ref)!;
    expect(reservation.state).toBe("settled");
    expect(settle.charge).toBe(splitCharge(r.cost, reservation.amount, settle.discountBps).charge);
    expect(reservation.charged).toBe(settle.charge);
    charged += settle.charge;
  }
  const open = b.reservations.filter((r) => r.state === "open").reduce((n, r) => n + r.amount, 0n);
  expect(b.held).toBe(open);
  expect(b.balance + b.held + charged).toBe(b.credited);
}

async function verifyLedger(args: string[]): Promise<void> {
  const r = await run(HUB_CLI, ["ledger", "verify", ...args]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ ok: true });
}

/** The pids of `pid`'s child processes (Linux /proc). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** One counter column of `show stat` per server of the hubs' backend (`req_tot`: HTTP requests sent to it). */
function serverCounters(csv: string, column: string): Record<string, number> {
  const lines = csv.split("\n").filter((l) => l.trim() !== "");
  const header = (lines.shift() ?? "").replace(/^#\s*/, "").split(",");
  const [px, sv, col] = ["pxname", "svname", column].map((name) => header.indexOf(name));
  const out: Record<string, number> = {};
  for (const cells of lines.map((l) => l.split(","))) {
    if (cells[px!] === BACKEND && cells[sv!] !== "BACKEND") out[cells[sv!]!] = Number(cells[col!] || 0);
  }
  return out;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(skipWithoutRedis() || skipWithoutHaproxy())("three srp-hub processes behind HAProxy, on PostgreSQL and Redis", () => {
  let pg: TestPostgres;
  let redis: TestRedis;
  let sim: Simulator;
  let haproxy: TestHaproxy;
  let db: SqlDriver;
  let dataDir: string;
  let nodeDir: string;
  let consumer: { id: string; key: string };
  const hubs: HubProcess[] = [];
  const providers: Provider[] = [];
  let cliNode: ChildProcess | undefined;
  let cliNodeLog = "";
  let hubArgs: string[];
  const dirArgs = () => ["--db", pg.url, "--data-dir", dataDir];
  const sdk = () => new OpenAI({ baseURL: `${haproxy.url}/v1`, apiKey: consumer.key, maxRetries: 0, timeout: 20_000 });

  beforeAll(async () => {
    [pg, redis, sim] = await Promise.all([startPostgres(), startRedis(), startSimulator({ tokensPerSecond: 200 })]);
    dataDir = mkdtempSync(join(tmpdir(), "srp-cluster-processes-"));
    nodeDir = join(dataDir, "cli-node");
    db = openPostgres(pg.url);
    const c = (await hubCli(["accounts", "create", "--id", "acct_consumer", "--name", "consumer", ...dirArgs()])) as { apiKey: string };
    const p = (await hubCli(["accounts", "create", "--id", "acct_nodes", "--name", "nodes", ...dirArgs()])) as { apiKey: string };
    consumer = { id: "acct_consumer", key: c.apiKey };
    await hubCli(["ledger", "deposit", consumer.id, String(DEPOSIT), "--ref", "cluster-processes", ...dirArgs()]);
    hubArgs = ["--redis", redis.url, "--admin-token", ADMIN_TOKEN, ...dirArgs()];
    // The first process creates the identity; the others load it.
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    hubs.push(await serveHub(ports[0]!, hubArgs));
    hubs.push(...(await Promise.all([serveHub(ports[1]!, hubArgs), serveHub(ports[2]!, hubArgs)])));
    haproxy = await startHaproxy({ backends: ports, checkIntervalMs: 100 });
    await haproxy.waitUntilUp();

    // Three in-process nodes and one CLI node, each opening its session through HAProxy.
    for (let i = 0; i < 3; i++) {
      const provider = createProvider({
        hub: haproxy.url,
        identity: generateIdentity(),
        account: p.apiKey,
        reconnect: { initialDelayMs: 500, maxDelayMs: 1000 },
        instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 6 }],
      });
      providers.push(provider);
      await provider.ready();
    }
    const setup = await run(PROVIDER_CLI, [
      "setup",
      "--hub",
      haproxy.url,
      "--account-key",
      p.apiKey,
      "--dir",
      nodeDir,
      "--backend-url",
      sim.baseUrl.replace(/\/v1$/, ""),
      "--no-detect",
      "--no-probe",
      "--max-concurrency",
      "6",
    ]);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    cliNode = spawnChild([PROVIDER_CLI, "start", "--foreground", "--dir", nodeDir]);
    cliNode.stdout!.on("data", (d: Buffer) => (cliNodeLog = (cliNodeLog + d.toString()).slice(-20_000)));
    cliNode.stderr!.on("data", (d: Buffer) => (cliNodeLog = (cliNodeLog + d.toString()).slice(-20_000)));
    await until("four nodes with a session on some process", 20_000, () =>
      hubs.reduce((n, h) => n + openNodes(h).size, 0) === 4 ? true : undefined,
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(providers.map((p) => p.close().catch(() => {})));
    for (const c of [...children]) await stopChild(c, "SIGKILL");
    await haproxy?.stop();
    await db?.close();
    await Promise.all([pg?.stop(), redis?.stop(), sim?.close()]);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Every answered request so far (all scenarios). */
  const answered: Outcome[] = [];
  /** How many requests so far ended without saying what was billed (failed, or cut from their settlement by the kill). */
  let inDoubt = 0;

  it("spreads nodes and requests over the processes, each answered request billed once", async () => {
    const holding = hubs.filter((h) => openNodes(h).size > 0);
    expect(holding.length, JSON.stringify(hubs.map((h) => [...openNodes(h)]))).toBeGreaterThanOrEqual(2);
    // Every process lists all four nodes' model: the directory told it of the others'.
    for (const h of hubs) {
      await until(`process on ${h.port} to know every node`, 10_000, async () => {
        const r = await fetch(`http://127.0.0.1:${h.port}/v1/models`, { headers: { authorization: `Bearer ${consumer.key}` } });
        const body = (await r.json()) as { data: { id: string }[] };
        return body.data.some((m) => m.id === MODEL) ? true : undefined;
      });
    }
    const client = sdk();
    const outcomes: Outcome[] = [];
    const before = serverCounters(await haproxy.admin("show stat"), "req_tot");
    // 24 requests, 4 at a time, half streamed: HAProxy deals them round-robin over the processes.
    for (let round = 0; round < 6; round++)
      outcomes.push(...(await Promise.all([0, 1, 2, 3].map((i) => chat(client, (round + i) % 2 === 0)))));
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(outcomes.every((o) => (o.text ?? "").length > 0)).toBe(true);
    answered.push(...outcomes);
    // Each process admitted some of them (HAProxy's count of requests per server).
    const after = serverCounters(await haproxy.admin("show stat"), "req_tot");
    for (const server of ["h0", "h1", "h2"]) expect(after[server]! - before[server]!, server).toBeGreaterThanOrEqual(6);
    const b = await books(db, consumer.id);
    checkBooks(b, answered, inDoubt, DEPOSIT);
    // Some requests were admitted by one process (it holds the reservation) and served by a node connected to another (over their link).
    const processOfNode = new Map(hubs.flatMap((h) => [...openNodes(h)].map((nodeId) => [nodeId, h.ledgerProcess] as const)));
    const holderOf = new Map(b.reservations.map((r) => [r.id, r.holder]));
    const crossed = b.receipts.filter((r) => holderOf.get(r.reservationId ?? "") !== processOfNode.get(r.nodeId));
    expect(crossed.length).toBeGreaterThan(0);
    await verifyLedger(dirArgs());
  }, 60_000);

  it("keeps serving when one process is killed under load; its nodes move; nothing is billed twice", async () => {
    const victimIndex = hubs.findIndex((h) => openNodes(h).size > 0);
    const victim = hubs[victimIndex]!;
    const moved = [...openNodes(victim)];
    expect(victim.ledgerProcess).toEqual(expect.any(String));
    const client = sdk();
    const outcomes: Outcome[] = [];
    let stop = false;
    const loop = async (i: number) => {
      for (let n = 0; !stop; n++) outcomes.push(await chat(client, (i + n) % 4 !== 0, 24));
    };
    const load = Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(loop));
    await until("some requests answered under load", 20_000, () => (outcomes.filter((o) => o.ok).length >= 16 ? true : undefined));

    const killedAt = Date.now();
    await stopChild(victim.child, "SIGKILL");
    const downAt = await until("HAProxy to mark the killed process down", 10_000, async () =>
      (await haproxy.states())[`h${victimIndex}`]?.startsWith("DOWN") ? Date.now() : undefined,
    );
    // Its nodes reconnect to the other processes by themselves.
    const others = hubs.filter((h) => h !== victim);
    await until("the killed process's nodes to reopen their sessions elsewhere", 20_000, () =>
      moved.every((nodeId) => others.some((h) => openNodes(h, killedAt).has(nodeId))) ? true : undefined,
    );
    const movedAt = Date.now();
    // Load goes on for a while with every node back.
    await until("requests answered after the nodes moved", 20_000, () =>
      outcomes.filter((o) => o.ok && o.startedAt > movedAt).length >= 24 ? true : undefined,
    );
    stop = true;
    await load;

    const failed = outcomes.filter((o) => !o.ok);
    console.log(
      `kill under load: ${outcomes.length} requests, ${failed.length} failed (all started before ${downAt - killedAt} ms after the kill):`,
      JSON.stringify(
        failed.map((o) => ({
          stream: o.stream,
          startedMsAfterKill: o.startedAt - killedAt,
          endedMsAfterKill: o.endedAt - killedAt,
          error: o.error,
        })),
      ),
    );
    // Only requests in flight at the kill fail, each with an error the consumer sees; every request started once HAProxy took the process out succeeds.
    for (const o of failed) expect(o.startedAt).toBeLessThan(downAt);
    expect(outcomes.filter((o) => o.startedAt >= downAt && !o.ok)).toEqual([]);
    // The other processes never stopped serving: requests were answered between the kill and HAProxy marking it down, or right after.
    expect(outcomes.filter((o) => o.ok && o.endedAt > killedAt && o.endedAt < movedAt).length).toBeGreaterThan(0);
    // A request admitted by a live process whose node sat on the killed one may have been answered in full while its
    // settlement (recorded over there) never came back: the answer then says nothing was billed (`receipt_id` null, cost 0).
    const unconfirmed = outcomes.filter((o) => o.ok && o.receiptId === null);
    for (const o of unconfirmed) {
      expect(o.startedAt).toBeLessThan(downAt);
      expect(o.endedAt).toBeGreaterThan(killedAt);
      expect(o.usage).toMatchObject({ cost_units: "0", receipt_id: null });
    }
    answered.push(...outcomes.filter((o) => o.ok && o.receiptId !== null));
    inDoubt += failed.length + unconfirmed.length;
    // Nothing billed twice, nothing lost: a failed request was billed only if its receipt was recorded.
    const b = await books(db, consumer.id);
    checkBooks(b, answered, inDoubt, DEPOSIT);
    // What is still held is held by the killed process alone, until the others' reconcile releases it (60 s after its last heartbeat).
    const open = b.reservations.filter((r) => r.state === "open");
    for (const r of open) expect(r.holder).toBe(victim.ledgerProcess);
    console.log(
      `kill under load: the killed process held ${moved.length} node(s); ${open.length} reservation(s) left open by it;`,
      `${unconfirmed.length} answer(s) without a confirmed settlement;`,
      `${b.receipts.length - answered.length} receipt(s) recorded for requests whose answer did not say so`,
    );
    await verifyLedger(dirArgs());

    // The reconcile the live processes run every 15 s, one minute later: it releases exactly the dead process's holds.
    const ledger = new SqlLedgerBook(db, Promise.resolve(), { signupCredits: 0n, discountTiers: DEFAULT_DISCOUNT_TIERS });
    const released = await ledger.reconcile({ now: Date.now() + 61_000 });
    expect(released.sort()).toEqual(open.map((r) => r.id).sort());
    const after = await books(db, consumer.id);
    expect(after.held).toBe(0n);
    checkBooks(after, answered, inDoubt, DEPOSIT);
    await verifyLedger(dirArgs());
  }, 90_000);

  it("serves again once the killed process restarts on its port", async () => {
    const victimIndex = hubs.findIndex((h) => !alive(h.child));
    expect(victimIndex).toBeGreaterThanOrEqual(0);
    const restarted = await serveHub(hubs[victimIndex]!.port, hubArgs);
    hubs[victimIndex] = restarted;
    await haproxy.waitUntilUp([victimIndex]);
    // Directly on its port: it learnt every node from the directory and routes to them over the links.
    const direct = new OpenAI({ baseURL: `http://127.0.0.1:${restarted.port}/v1`, apiKey: consumer.key, maxRetries: 0, timeout: 20_000 });
    await until("the restarted process to know the nodes", 10_000, async () => {
      const r = await fetch(`http://127.0.0.1:${restarted.port}/v1/models`, { headers: { authorization: `Bearer ${consumer.key}` } });
      return ((await r.json()) as { data: { id: string }[] }).data.some((m) => m.id === MODEL) ? true : undefined;
    });
    const outcomes = [...(await Promise.all([0, 1, 2, 3].map((i) => chat(direct, i % 2 === 0))))];
    // And through HAProxy, which deals requests to all three again.
    outcomes.push(...(await Promise.all([0, 1, 2, 3, 4, 5].map((i) => chat(sdk(), i % 2 === 0)))));
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    answered.push(...outcomes);
    expect(Object.values(await haproxy.states())).toEqual(["UP", "UP", "UP"]);
    const b = await books(db, consumer.id);
    checkBooks(b, answered, inDoubt, DEPOSIT);
    // Over the three scenarios every node served, the CLI node included.
    expect(new Set(b.receipts.map((r) => r.nodeId)).size).toBe(4);
    await verifyLedger(dirArgs());
  }, 60_000);

  it("srp-hub serve --workers 2 shares one port, serves two nodes, and stops with its workers on SIGTERM", async () => {
    const url = await createDatabase(pg.url, "srp_workers");
    const dir = mkdtempSync(join(tmpdir(), "srp-cluster-workers-"));
    const workerDb = openPostgres(url);
    try {
      const args = ["--db", url, "--data-dir", dir];
      const c = (await hubCli(["accounts", "create", "--id", "acct_w", ...args])) as { apiKey: string };
      const n = (await hubCli(["accounts", "create", "--id", "acct_wn", ...args])) as { apiKey: string };
      await hubCli(["ledger", "deposit", "acct_w", String(DEPOSIT), "--ref", "workers", ...args]);
      const port = await freePort();
      const primary = spawnChild([
        HUB_CLI,
        "serve",
        "--port",
        String(port),
        "--host",
        "127.0.0.1",
        "--workers",
        "2",
        "--redis",
        redis.url,
        ...args,
      ]);
      let out = "";
      let err = "";
      primary.stdout!.on("data", (d: Buffer) => (out += d.toString()));
      primary.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      await until("both workers to listen", 30_000, () => {
        if (!alive(primary)) throw new Error(`srp-hub serve --workers 2 exited:\n${out}\n${err}`);
        return (out.match(/srp-hub listening on/g) ?? []).length === 2 ? true : undefined;
      });
      const workers = childPids(primary.pid!);
      expect(workers).toHaveLength(2);
      const nodes = [0, 1].map(() =>
        createProvider({
          hub: `http://127.0.0.1:${port}`,
          identity: generateIdentity(),
          account: n.apiKey,
          reconnect: { initialDelayMs: 500, maxDelayMs: 1000 },
          instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 4 }],
        }),
      );
      try {
        await Promise.all(nodes.map((n) => n.ready()));
        const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: c.apiKey, maxRetries: 0, timeout: 20_000 });
        const outcomes: Outcome[] = [];
        for (let round = 0; round < 3; round++) outcomes.push(...(await Promise.all([0, 1, 2, 3].map((i) => chat(client, i % 2 === 0)))));
        expect(outcomes.filter((o) => !o.ok)).toEqual([]);
        const b = await books(workerDb, "acct_w");
        checkBooks(b, outcomes, 0, DEPOSIT);
        // Both workers admitted requests (each holds the reservations it made).
        const ledgerProcesses = [...err.matchAll(/"event":"hub.listening".*"ledgerProcess":"([^"]+)"/g)].map((m) => m[1]);
        expect(new Set(b.reservations.map((r) => r.holder))).toEqual(new Set(ledgerProcesses));
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
      const exited = once(primary, "exit");
      primary.kill("SIGTERM");
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
      await until("no worker left", 5000, () => (workers.every((pid) => !running(pid)) ? true : undefined));
      await verifyLedger(args);
    } finally {
      await workerDb.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
