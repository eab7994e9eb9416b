/**
 * `srp-hub serve --workers N`: one hub on every core of a machine. The primary process
 * forks N workers (`node:cluster`) that share the listening port; each worker is a hub
 * process of one cluster (Redis, PostgreSQL, direct links; docs/deployment.md). The
 * primary replaces a worker that dies, passes SIGINT / SIGTERM on, and exits once every
 * worker has stopped; a worker still running {@link STOP_TIMEOUT_MS} later (past its own
 * drain) is killed, and the primary then exits non-zero.
 */
import cluster, { type Worker } from "node:cluster";

/** How the primary reports what happens to its workers. */
export type WorkerLog = (event: string, detail: object) => void;

/** How long the primary waits for its workers to stop after passing a signal on: their drain (30 s) and 10 s more. */
export const STOP_TIMEOUT_MS = 40_000;

/** How long a worker that died waits before it is replaced (doubling while workers keep dying quickly, up to 10 s). */
export function respawnDelay(recentDeaths: number): number {
  return Math.min(10_000, 250 * 2 ** Math.max(0, recentDeaths - 1));
}

/** The arguments a worker runs `serve` with: the primary's, without `--workers` (pure). */
export function workerArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--workers") i++;
    else if (!a.startsWith("--workers=")) out.push(a);
  }
  return out;
}

/** How the primary runs its workers (tests change them). */
export interface SuperviseOptions {
  /** How long after passing a signal on the workers still running are killed (ms); {@link STOP_TIMEOUT_MS} by default. */
  stopTimeoutMs?: number;
  /** The script the workers run; this process's own (`srp-hub`) by default. */
  exec?: string;
  /** Where SIGINT and SIGTERM arrive; `process` by default. */
  signals?: Pick<NodeJS.EventEmitter, "once">;
}

/**
 * Runs `count` workers of `serve` with `args` until SIGINT or SIGTERM; resolves once every
 * worker has stopped: true when each stopped by itself, false when some were still running
 * `stopTimeoutMs` after the signal and were killed (SIGKILL).
 */
export function superviseWorkers(count: number, args: readonly string[], log: WorkerLog, o: SuperviseOptions = {}): Promise<boolean> {
  const stopTimeoutMs = o.stopTimeoutMs ?? STOP_TIMEOUT_MS;
  cluster.setupPrimary({ args: ["serve", ...workerArgs(args)], ...(o.exec ? { exec: o.exec } : {}) });
  let stopping = false;
  let killed = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  let finish!: (clean: boolean) => void;
  const stopped = new Promise<boolean>((resolve) => (finish = resolve));
  const running = () => Object.keys(cluster.workers ?? {}).length;
  const whenAllStopped = () => {
    if (!stopping || running() > 0) return;
    clearTimeout(killTimer);
    finish(!killed);
  };
  cluster.on("exit", whenAllStopped);
  const deaths: number[] = [];
  const fork = (): Worker => {
    const worker = cluster.fork({ SRP_HUB_WORKER: "1" });
    worker.on("exit", (code, signal) => {
      if (stopping) return;
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && now - deaths[0]! > 60_000) deaths.shift();
      const delay = respawnDelay(deaths.length);
      log("worker.exit", { pid: worker.process.pid, code, signal, respawnInMs: delay });
      setTimeout(() => !stopping && fork(), delay).unref();
    });
    return worker;
  };
  for (let i = 0; i < count; i++) fork();
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log("hub.stopping", { workers: running() });
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    killTimer = setTimeout(() => {
      const left = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      if (left.length === 0) return;
      killed = true;
      log("hub.workers_killed", { pids: left.map((w) => w.process.pid), afterMs: stopTimeoutMs });
      for (const w of left) w.process.kill("SIGKILL");
    }, stopTimeoutMs);
    // No worker running (all died and wait to be replaced): nothing to wait for.
    whenAllStopped();
  };
  const signals = o.signals ?? process;
  signals.once("SIGINT", () => stop("SIGINT"));
  signals.once("SIGTERM", () => stop("SIGTERM"));
  return stopped;
}
