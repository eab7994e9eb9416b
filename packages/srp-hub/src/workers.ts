/**
 * `srp-hub serve --workers N`: one hub on every core of a machine. The primary process
 * forks N workers (`node:cluster`) that share the listening port; each worker is a hub
 * process of one cluster (Redis, PostgreSQL, direct links; docs/deployment.md). The
 * primary replaces a worker that dies, passes SIGINT / SIGTERM on, and exits once every
 * worker has stopped.
 */
import cluster, { type Worker } from "node:cluster";

/** How the primary reports what happens to its workers. */
export type WorkerLog = (event: string, detail: object) => void;

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

/** Runs `count` workers of `serve` with `args` until SIGINT or SIGTERM; resolves once every worker has stopped. */
export function superviseWorkers(count: number, args: readonly string[], log: WorkerLog): Promise<void> {
  cluster.setupPrimary({ args: ["serve", ...workerArgs(args)] });
  let stopping = false;
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
    log("hub.stopping", { workers: Object.keys(cluster.workers ?? {}).length });
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
  return new Promise((resolve) => {
    cluster.on("exit", () => {
      if (stopping && Object.keys(cluster.workers ?? {}).length === 0) resolve();
    });
  });
}
