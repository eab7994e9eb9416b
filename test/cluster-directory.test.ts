/**
 * The hygiene and bounds of a hub's cluster directory (docs/deployment.md, "Several
 * processes"), each with real parts: a real `redis-server` under the directory, a process's
 * nodes left behind while Redis was unreachable removed once it is back, bursts of offers
 * coalesced into one write and one message per flush (never after a departure), dead
 * processes pruned a bounded number per heartbeat, concurrent catch-ups sharing their round
 * trips on the bus, `--link-host 0.0.0.0` refused without `--link-advertise`, and
 * `srp-hub serve --workers` killing a worker that will not stop. The `--link-host` case
 * runs `packages/srp-hub/dist/cli.js` (`npm run build -w @srp/hub`).
 */
import { spawn } from "node:child_process";
import cluster from "node:cluster";
import { EventEmitter, once } from "node:events";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { generateIdentity } from "@srp/core";
import { ClusterDirectory, PRUNE_PER_BEAT, type BusMessage, type DirectoryEvents } from "../packages/srp-hub/src/cluster/directory.js";
import { connectRedis, type RedisConnection } from "../packages/srp-hub/src/cluster/redis.js";
import type { NodeSnapshot } from "../packages/srp-hub/src/cluster/snapshot.js";
import { superviseWorkers } from "../packages/srp-hub/src/workers.js";
import { KEY, startNet, until, type Net } from "./helpers.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";

const HUB_CLI = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
const STUBBORN_WORKER = new URL("./fixtures/stubborn-worker.mjs", import.meta.url).pathname;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** Waits until `check` resolves true, polling (for conditions that need I/O). */
async function untilAsync(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Events that record what the directory tells its process. */
function recorder(): DirectoryEvents & { errors: string[]; gone: string[] } {
  const errors: string[] = [];
  const gone: string[] = [];
  return {
    errors,
    gone,
    onNode: () => undefined,
    onLoad: () => undefined,
    onStates: () => undefined,
    stateOf: () => ({ window: [], throughput: { samples: 0 } }) as never,
    onGone: (_from, nodeId, sessionId) => void gone.push(`${nodeId}/${sessionId}`),
    onEvict: () => undefined,
    onPeers: () => undefined,
    onResync: () => undefined,
    onError: (what) => void errors.push(what),
    loadOf: () => undefined,
  };
}

function snapshot(processId: string, nodeId: string, sessionId: string, models: string[] = []): NodeSnapshot {
  return {
    process: processId,
    sessionId,
    nodeId,
    accountId: "acct",
    instances: models.map((model, i) => ({ instanceId: `i${i}`, model }) as never),
    active: {},
    capacity: {},
  };
}

describe.skipIf(skipWithoutRedis())("the cluster directory in Redis", () => {
  let redis: TestRedis;
  beforeAll(async () => {
    // An append-only file: a restarted server still holds what was written before (the ghost scenario needs it).
    redis = await startRedis({ appendonly: true });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** A hub id, its key prefix and a raw client to read its keys and listen to its bus. */
  async function hubKeys(): Promise<{ hubId: string; raw: Redis; bus: BusMessage[] }> {
    const hubId = `hub${Math.random().toString(36).slice(2, 10)}`;
    const raw = new Redis(redis.url, { keyPrefix: `srp:${hubId}:`, maxRetriesPerRequest: null });
    const sub = new Redis(redis.url, { maxRetriesPerRequest: null });
    const bus: BusMessage[] = [];
    sub.on("message", (_c: string, text: string) => bus.push(JSON.parse(text) as BusMessage));
    await sub.subscribe(`srp:${hubId}:bus`);
    cleanups.push(
      async () => raw.disconnect(),
      async () => sub.disconnect(),
    );
    return { hubId, raw, bus };
  }

  async function directory(
    hubId: string,
    processId: string,
    timings: Partial<{ heartbeatMs: number; deadAfterMs: number; resyncMs: number; loadFlushMs: number }> = {},
  ): Promise<{ dir: ClusterDirectory; events: ReturnType<typeof recorder>; conn: RedisConnection }> {
    const conn = connectRedis(redis.url, { keyPrefix: `srp:${hubId}:`, name: processId });
    const events = recorder();
    const dir = new ClusterDirectory({
      redis: conn,
      hubId,
      processId,
      linkUrl: `ws://127.0.0.1:1/${processId}`,
      events,
      timings: { heartbeatMs: 100, deadAfterMs: 600, resyncMs: 60_000, loadFlushMs: 20, ...timings },
    });
    await conn.ready();
    await dir.start();
    cleanups.push(
      () => conn.close(),
      () => dir.close(),
    );
    return { dir, events, conn };
  }

  it("removes, once Redis is back, a node this process released while Redis was unreachable, and says it is gone", async () => {
    const { hubId, raw, bus } = await hubKeys();
    const { dir, events } = await directory(hubId, "proc_a");
    await dir.claim(snapshot("proc_a", "node1", "s1"), Date.now());
    expect(await raw.hexists("nodes", "node1")).toBe(1);

    await redis.down();
    dir.release("node1", "s1");
    await until(() => events.errors.includes("release a node"), 5000, "the release to fail");
    await redis.up();
    // The restarted server kept the entry (append-only file); the process rejoins and removes it.
    await untilAsync(async () => (await raw.hexists("nodes", "node1")) === 0, 10_000, "the ghost entry to go");
    await until(() => bus.some((m) => m.t === "gone" && m.nodeId === "node1" && m.sessionId === "s1"), 5000, "a gone for it");
  });

  it("removes at resync an entry naming this process for a session it does not hold, and keeps the one it holds", async () => {
    const { hubId, raw, bus } = await hubKeys();
    const { dir } = await directory(hubId, "proc_a");
    await dir.claim(snapshot("proc_a", "held", "s2"), Date.now());
    // Left by an earlier failed release (written as this process would have).
    await raw.hset("nodes", "ghost", JSON.stringify({ snapshot: snapshot("proc_a", "ghost", "s0"), authAt: 1 }));
    await dir.resync();
    expect(await raw.hkeys("nodes")).toEqual(["held"]);
    await until(() => bus.some((m) => m.t === "gone" && m.nodeId === "ghost" && m.sessionId === "s0"), 5000, "a gone for the ghost");
    expect(bus.some((m) => m.t === "gone" && m.nodeId === "held")).toBe(false);
  });

  it("coalesces a burst of offers into one write and one message per flush interval, and publishes nothing for a node after its departure", async () => {
    const { hubId, raw, bus } = await hubKeys();
    // (No heartbeat meanwhile: it writes `links` with HSET too.)
    const { dir } = await directory(hubId, "proc_a", { loadFlushMs: 50, heartbeatMs: 60_000 });
    await dir.claim(snapshot("proc_a", "n", "s1", ["m0"]), Date.now());
    const stats = async () => Number(/cmdstat_hset:calls=(\d+)/.exec(await raw.info("commandstats"))?.[1] ?? 0);
    const before = await stats();
    const offers = 200;
    for (let i = 1; i <= offers; i++) dir.update(snapshot("proc_a", "n", "s1", [`m${i}`]));
    // The first offer goes at once (none was published in the last interval), the rest with the next flush.
    const updates = () => bus.filter((m): m is Extract<BusMessage, { t: "nodes" }> => m.t === "nodes");
    await until(() => updates().length === 2, 5000, "the flush");
    expect(updates().map((u) => u.nodes.map((n) => n.snapshot.instances[0]!.model))).toEqual([["m1"], [`m${offers}`]]);
    expect((await stats()) - before).toBe(2);
    const stored = JSON.parse((await raw.hget("nodes", "n"))!) as { snapshot: NodeSnapshot };
    expect(stored.snapshot.instances[0]!.model).toBe(`m${offers}`);

    // An offer and then the node's departure before the next flush: the departure is the last word.
    bus.length = 0;
    dir.update(snapshot("proc_a", "n", "s1", ["first"]));
    dir.update(snapshot("proc_a", "n", "s1", ["late"]));
    dir.release("n", "s1");
    // A later flush (it publishes this state change) has run.
    dir.stateChanged("n/i0");
    await until(() => bus.some((m) => m.t === "state"), 5000, "a later flush");
    // (The first of the two may have gone at once; nothing of the node follows its departure.)
    const after = bus.slice(bus.findIndex((m) => m.t === "gone")).map((m) => m.t);
    expect(after).toEqual(["gone", "state"]);
    expect(await raw.hexists("nodes", "n")).toBe(0);
  });

  it("prunes processes that died without closing, a bounded number per heartbeat, from procs and links", async () => {
    const { hubId, raw } = await hubKeys();
    const dead = 100;
    const m = raw.multi();
    for (let i = 0; i < dead; i++) m.zadd("procs", 1000 + i, `dead_${i}`).hset("links", `dead_${i}`, `ws://10.0.0.1:${i}/x`);
    await m.exec();
    // One heartbeat at start (the next is far away): at most PRUNE_PER_BEAT removed.
    await directory(hubId, "proc_a", { heartbeatMs: 60_000, deadAfterMs: 60_000 });
    expect(await raw.zcard("procs")).toBe(dead - PRUNE_PER_BEAT + 1);
    expect(await raw.hlen("links")).toBe(dead - PRUNE_PER_BEAT + 1);
    // A process beating often prunes the rest; the live processes stay.
    await directory(hubId, "proc_b", { heartbeatMs: 20, deadAfterMs: 60_000 });
    await untilAsync(async () => (await raw.zcard("procs")) === 2, 10_000, "every dead process to be pruned");
    expect((await raw.zrange("procs", 0, -1)).sort()).toEqual(["proc_a", "proc_b"]);
    expect(Object.keys(await raw.hgetall("links")).sort()).toEqual(["proc_a", "proc_b"]);
  });
});

describe.skipIf(skipWithoutRedis())("catching up with other processes", () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("shares one round trip on the bus among concurrent catalog reads, and sends none for an unknown model", async () => {
    const identity = generateIdentity();
    const FAST = { heartbeatMs: 100, deadAfterMs: 600, resyncMs: 1000, loadFlushMs: 10 };
    const nets: Net[] = [];
    for (let i = 0; i < 2; i++) nets.push(await startNet({ identity, cluster: { redisUrl: redis.url, timings: FAST } }));
    cleanups.push(async () => {
      for (const n of nets.reverse()) await n.close();
    });
    await Promise.all(nets.map((n) => n.hub.ready()));
    const [a] = nets as [Net, Net];
    const sub = new Redis(redis.url, { maxRetriesPerRequest: null });
    const pub = new Redis(redis.url, { maxRetriesPerRequest: null });
    cleanups.push(
      async () => sub.disconnect(),
      async () => pub.disconnect(),
    );
    const syncs: unknown[] = [];
    let markers = 0;
    sub.on("message", (_c: string, text: string) => {
      const t = (JSON.parse(text) as { t: string }).t;
      if (t === "sync") syncs.push(text);
      if (t === "marker") markers++;
    });
    await sub.subscribe(`srp:${identity.id}:bus`);

    const headers = { authorization: `Bearer ${KEY}` };
    // Redis busy for a moment (a script that runs 400 ms): the reads arrive while the first barrier is under way.
    const busy = pub.eval(
      "local t0 = redis.call('TIME') repeat local t = redis.call('TIME') until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 400000 return 1",
      0,
    );
    await new Promise((r) => setTimeout(r, 20));
    const reads = await Promise.all(Array.from({ length: 10 }, () => fetch(`${a.url}/v1/models`, { headers })));
    expect(reads.map((r) => r.status)).toEqual(Array(10).fill(200));
    await busy;
    // The barrier under way for the first read, the next one for every other: two messages, not ten.
    await until(() => syncs.length >= 1, 5000, "the barrier's message");
    await pub.publish(`srp:${identity.id}:bus`, JSON.stringify({ t: "marker" }));
    await until(() => markers === 1, 5000, "the marker");
    expect(syncs.length).toBeLessThanOrEqual(2);

    syncs.length = 0;
    const unknown = await Promise.all(
      Array.from({ length: 10 }, () =>
        fetch(`${a.url}/v1/chat/completions`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: JSON.stringify({ model: "nobody-serves-this", messages: [{ role: "user", content: "hi" }] }),
        }),
      ),
    );
    for (const r of unknown) expect(((await r.json()) as { error: { code: string } }).error.code).toBe("job.unknown_model");
    // A marker of our own: every message published before it has arrived once it has.
    await pub.publish(`srp:${identity.id}:bus`, JSON.stringify({ t: "marker" }));
    await until(() => markers === 2, 5000, "the marker");
    expect(syncs).toEqual([]);
  });
});

/** Whether a process runs. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("srp-hub serve", () => {
  /** Runs a command to its end. */
  async function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    return { code, out, err };
  }

  it("refuses --link-host 0.0.0.0 or :: without --link-advertise", async () => {
    const base = [HUB_CLI, "serve", "--redis", "redis://127.0.0.1:1", "--db", "postgres://127.0.0.1:1/none", "--port", "0"];
    for (const host of ["0.0.0.0", "::"]) {
      const r = await run([...base, "--link-host", host]);
      expect(r.code).toBe(64);
      expect(r.err).toContain("--link-advertise");
    }
  });

  it("--workers: kills the workers still running after the stop timeout, and reports an unclean stop", async () => {
    const signals = new EventEmitter();
    const events: string[] = [];
    const pids: number[] = [];
    cluster.on("message", (_w, m: { up?: number }) => void (m.up && pids.push(m.up)));
    const stopped = superviseWorkers(2, [], (event) => void events.push(event), { stopTimeoutMs: 300, exec: STUBBORN_WORKER, signals });
    cleanups.push(async () => pids.forEach((pid) => running(pid) && process.kill(pid, "SIGKILL")));
    await until(() => pids.length === 2, 20_000, "both workers");
    signals.emit("SIGTERM");
    expect(await stopped).toBe(false);
    expect(events).toEqual(["hub.stopping", "hub.workers_killed"]);
    await until(() => pids.every((pid) => !running(pid)), 5000, "no worker left");
  });
});
