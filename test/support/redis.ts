/**
 * A real, throwaway Redis server for tests: `redis-server` as a child process on a free
 * loopback port, its files in a fresh temporary directory, ready once it answers PING.
 * Nothing is persisted unless asked (`appendonly: true` keeps an append-only file, flushed
 * on every write, so that a restarted server finds its keys again). `down()` and `up()` stop
 * and start the same server on the same port, for the "Redis restarted" scenarios.
 *
 * The binary must be installed (CI installs Debian's `redis-server` package, see .ci/run):
 * {@link skipWithoutRedis} skips a local run without it, and fails in CI.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./postgres.js";
import { exited, findBinary, killOnExit, skipWithout, sleep, stopChild } from "./servers.js";

/** A running test server. */
export interface TestRedis {
  /** `redis://127.0.0.1:<port>`. */
  url: string;
  /** Its port, the same after `up()`. */
  port: number;
  /** The temporary directory holding the server's log and, with `appendonly`, its data. */
  dir: string;
  /** Stops the server (SIGTERM by default; SIGKILL for a crash) and keeps its directory and port for `up()`. */
  down(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port; resolves once it answers PING. */
  up(): Promise<void>;
  /** `down()` then `up()`. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server for good and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** How to start a test server. */
export interface StartRedisOptions {
  /** Keep an append-only file (`appendfsync always`), so keys survive `restart()`; off by default. */
  appendonly?: boolean;
}

/** Where `redis-server` is: on PATH, else in /usr/bin or /usr/local/bin; undefined when missing. */
export function findRedisServer(): string | undefined {
  return findBinary("redis-server", ["/usr/bin", "/usr/local/bin"]);
}

/**
 * Whether the Redis tests are to be skipped: true when `redis-server` is missing on a local
 * run; throws when it is missing in CI (`CI` set), so CI never skips them silently. Use as
 * `describe.skipIf(skipWithoutRedis())(...)`.
 */
export function skipWithoutRedis(): boolean {
  return skipWithout("redis-server", findRedisServer(), "Debian/Ubuntu: apt-get install redis-server");
}

/** Starts a throwaway Redis server; throws when the binary is missing or the server does not answer. */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const binary = findRedisServer();
  if (binary === undefined) throw new Error("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)");
  const dir = mkdtempSync(join(tmpdir(), "srp-redis-"));
  let port = 0;
  let child: ChildProcess | undefined;
  const launch = async () => {
    const started = spawn(binary, serverArgs(port, dir, options), { cwd: dir, stdio: "ignore" });
    child = started;
    killOnExit(started);
    await waitForPing(port, started, dir);
  };
  const down = async (signal: NodeJS.Signals = "SIGTERM") => {
    const c = child;
    child = undefined;
    if (c) await stopChild(c, signal);
  };
  const up = async () => {
    if (child && !exited(child)) return;
    // The port was ours a moment ago; another process may have taken it meanwhile (rare): retry briefly.
    for (let attempt = 1; ; attempt++) {
      try {
        return await launch();
      } catch (error) {
        await down("SIGKILL");
        if (attempt >= 20) throw error;
        await sleep(100);
      }
    }
  };
  // A first port found free may be taken before the server binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      await down("SIGKILL");
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  let stopped = false;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    down,
    up,
    async restart(signal) {
      await down(signal);
      await up();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await down("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The server's command line: loopback only, no RDB snapshots, the append-only file only when asked (pure). */
export function serverArgs(port: number, dir: string, options: StartRedisOptions = {}): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--logfile",
    join(dir, "redis.log"),
    "--daemonize",
    "no",
    "--save",
    "",
    ...(options.appendonly ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]),
  ];
}

/** Resolves once the server on `port` answers PING; rejects, with its log, if it exits first or takes over 10 s. */
async function waitForPing(port: number, child: ChildProcess, dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited(child)) break;
    if (await pings(port)) return;
    await sleep(20);
  }
  throw new Error(`redis-server on port ${port} did not answer PING\n${readLog(dir)}`);
}

/** Whether a server on `port` answers PING with PONG. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (data) => {
      reply += data.toString("latin1");
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
  });
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, "redis.log"), "utf8");
  } catch {
    return "";
  }
}
