/**
 * A real HAProxy in front of several hub processes, for the cluster tests: `haproxy -db`
 * (foreground) as a child process with a generated configuration in a fresh temporary
 * directory. One HTTP frontend on a free loopback port balances requests round-robin over
 * the backends, and WebSocket upgrades too (a provider session on `/srp/v1/provider` is a
 * tunnel that may stay open for an hour). Backends are health-checked with `GET` on a path
 * every hub serves (the discovery document by default); a refused connection is retried on
 * another backend. It appends `X-Forwarded-For`, which a hub reads with `trustProxy`.
 *
 * The runtime API (a Unix socket in the directory, admin level) reports and changes the
 * backends' states while the proxy runs: {@link TestHaproxy.states}, {@link TestHaproxy.setState}.
 *
 * The binary must be installed (CI installs Debian's `haproxy` package, see .ci/run):
 * {@link skipWithoutHaproxy} skips a local run without it, and fails in CI.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./postgres.js";
import { exited, findBinary, killOnExit, skipWithout, sleep, stopChild } from "./servers.js";

/** The name of the backend section in the generated configuration; its servers are `h0`, `h1`, .... */
export const BACKEND = "hubs";

/** A path every hub answers `GET` on with 200: the discovery document (spec/v1/discovery.md). */
export const DEFAULT_HEALTH_PATH = "/.well-known/srp.json";

/** What a backend's server state can be set to through the runtime API. */
export type ServerState = "ready" | "drain" | "maint";

/** A running proxy. */
export interface TestHaproxy {
  /** `http://127.0.0.1:<port>`: the frontend. */
  url: string;
  /** The frontend's port. */
  port: number;
  /** The temporary directory holding `haproxy.cfg` and the runtime API's socket. */
  dir: string;
  /** Sends one command to the runtime API and resolves with its answer. */
  admin(command: string): Promise<string>;
  /** Each backend server's status as the health checks see it (`UP`, `DOWN`, `MAINT`, `UP 1/2`...), by server name. */
  states(): Promise<Record<string, string>>;
  /** Resolves once every server (or those of `servers`, by index) is `UP`; rejects after `timeoutMs` (10 s). */
  waitUntilUp(servers?: readonly number[], timeoutMs?: number): Promise<void>;
  /** Takes backend `index` out (`maint`), lets it finish (`drain`) or puts it back (`ready`). */
  setState(index: number, state: ServerState): Promise<void>;
  /** Points backend `index` at another port on 127.0.0.1 (a hub process restarted on a new port). */
  setPort(index: number, port: number): Promise<void>;
  /** Stops the proxy and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** How to start a proxy. */
export interface StartHaproxyOptions {
  /** The backends' ports on 127.0.0.1, in server order (`h0`, `h1`, ...). */
  backends: readonly number[];
  /** The path health checks `GET`; {@link DEFAULT_HEALTH_PATH} by default. */
  healthPath?: string;
  /** Milliseconds between health checks of a server; 100 by default (a dead backend is out after two). */
  checkIntervalMs?: number;
}

/** Where `haproxy` is: on PATH, else in /usr/sbin or /usr/local/sbin; undefined when missing. */
export function findHaproxy(): string | undefined {
  return findBinary("haproxy", ["/usr/sbin", "/usr/local/sbin"]);
}

/**
 * Whether the HAProxy tests are to be skipped: true when `haproxy` is missing on a local
 * run; throws when it is missing in CI. Use as `describe.skipIf(skipWithoutHaproxy())(...)`.
 */
export function skipWithoutHaproxy(): boolean {
  return skipWithout("haproxy", findHaproxy(), "Debian/Ubuntu: apt-get install haproxy");
}

/** What {@link haproxyConfig} writes. */
export interface HaproxyConfigInput {
  /** The frontend's port on 127.0.0.1. */
  port: number;
  /** The backends' ports on 127.0.0.1. */
  backends: readonly number[];
  /** The runtime API's Unix socket. */
  adminSocket: string;
  /** The path health checks `GET`. */
  healthPath: string;
  /** Milliseconds between health checks. */
  checkIntervalMs: number;
}

/**
 * The configuration (pure). HTTP mode with keep-alive on both sides, so each request is
 * balanced on its own; `timeout tunnel` governs an upgraded WebSocket once both sides have
 * switched protocols; `option redispatch` with `retries` sends a request whose connection
 * was refused (a killed process) to another server.
 */
export function haproxyConfig(c: HaproxyConfigInput): string {
  if (!/^\/[\x21-\x7e]*$/.test(c.healthPath)) throw new Error(`invalid health path ${c.healthPath}`);
  const servers = c.backends.map((port, i) => `  server h${i} 127.0.0.1:${port} check`);
  return [
    "global",
    `  stats socket ${c.adminSocket} mode 600 level admin`,
    "",
    "defaults",
    "  mode http",
    "  option http-keep-alive",
    "  option forwardfor",
    "  option redispatch",
    // A consumer who goes away mid-request: the hub must see it to cancel the job (SRP-JOB-017).
    "  option abortonclose",
    "  retries 3",
    "  timeout connect 2s",
    "  timeout client 120s",
    "  timeout server 120s",
    "  timeout http-request 30s",
    "  timeout http-keep-alive 30s",
    "  timeout tunnel 1h",
    "  timeout client-fin 5s",
    "",
    "frontend hub",
    `  bind 127.0.0.1:${c.port}`,
    `  default_backend ${BACKEND}`,
    "",
    `backend ${BACKEND}`,
    "  balance roundrobin",
    "  option httpchk",
    `  http-check send meth GET uri ${c.healthPath}`,
    "  http-check expect status 200",
    `  default-server inter ${c.checkIntervalMs} fastinter ${c.checkIntervalMs} downinter ${c.checkIntervalMs} rise 1 fall 2`,
    ...servers,
    "",
  ].join("\n");
}

/** Starts HAProxy in front of `backends`; resolves once the frontend accepts connections. */
export async function startHaproxy(options: StartHaproxyOptions): Promise<TestHaproxy> {
  const binary = findHaproxy();
  if (binary === undefined) throw new Error("haproxy is not installed (Debian/Ubuntu: apt-get install haproxy)");
  if (options.backends.length === 0) throw new Error("startHaproxy: no backends");
  const dir = mkdtempSync(join(tmpdir(), "srp-haproxy-"));
  const adminSocket = join(dir, "admin.sock");
  const configFile = join(dir, "haproxy.cfg");
  let child: ChildProcess | undefined;
  let port = 0;
  const kill = async () => {
    const c = child;
    child = undefined;
    if (c) await stopChild(c, "SIGTERM"); // SIGTERM is HAProxy's hard stop
  };
  // A port found free may be taken before HAProxy binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const config = haproxyConfig({
      port,
      backends: options.backends,
      adminSocket,
      healthPath: options.healthPath ?? DEFAULT_HEALTH_PATH,
      checkIntervalMs: options.checkIntervalMs ?? 100,
    });
    writeFileSync(configFile, config);
    const started = spawn(binary, ["-db", "-f", configFile], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    child = started;
    killOnExit(started);
    let stderr = "";
    started.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8192);
    });
    try {
      await waitForListen(port, started, () => stderr);
      break;
    } catch (error) {
      await kill();
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  const admin = (command: string) => runtimeCommand(adminSocket, command);
  const states = async () => serverStates(await admin("show stat"), BACKEND);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    admin,
    states,
    async waitUntilUp(servers, timeoutMs = 10_000) {
      const names = (servers ?? options.backends.map((_, i) => i)).map((i) => `h${i}`);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = await states();
        if (names.every((n) => now[n] === "UP")) return;
        if (Date.now() > deadline) throw new Error(`HAProxy backends not all UP: ${JSON.stringify(now)}`);
        await sleep(50);
      }
    },
    async setState(index, state) {
      expectEmpty(await admin(`set server ${BACKEND}/h${index} state ${state}`));
    },
    async setPort(index, backendPort) {
      // HAProxy answers this one with a sentence saying what changed.
      const answer = await admin(`set server ${BACKEND}/h${index} addr 127.0.0.1 port ${backendPort}`);
      if (!/changed|no need to change/i.test(answer)) throw new Error(`HAProxy refused the new port: ${answer.trim()}`);
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The status of each server of `backend` in `show stat` CSV output (pure): the header line
 * (`# pxname,svname,...,status,...`) names the columns.
 */
export function serverStates(csv: string, backend: string): Record<string, string> {
  const lines = csv.split("\n").filter((l) => l.trim() !== "");
  const header = (lines.shift() ?? "").replace(/^#\s*/, "").split(",");
  const px = header.indexOf("pxname");
  const sv = header.indexOf("svname");
  const status = header.indexOf("status");
  if (px < 0 || sv < 0 || status < 0) throw new Error(`unexpected show stat output: ${csv.slice(0, 200)}`);
  const out: Record<string, string> = {};
  for (const line of lines) {
    const cells = line.split(",");
    if (cells[px] === backend && cells[sv] !== "BACKEND") out[cells[sv] ?? ""] = cells[status] ?? "";
  }
  return out;
}

function expectEmpty(answer: string): void {
  if (answer.trim() !== "") throw new Error(`HAProxy runtime API: ${answer.trim()}`);
}

/** One command on the runtime API's socket: HAProxy answers and closes. */
async function runtimeCommand(socketPath: string, command: string): Promise<string> {
  // HAProxy may accept on its frontend a moment before its admin socket exists (seen under load): retry that for up to 2 s.
  for (let attempt = 0; ; attempt++) {
    try {
      return await runtimeCommandOnce(socketPath, command);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== "ENOENT" && code !== "ECONNREFUSED") || attempt >= 40) throw error;
      await sleep(50);
    }
  }
}

function runtimeCommandOnce(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = "";
    socket.setEncoding("utf8");
    socket.once("error", reject);
    socket.once("connect", () => socket.end(`${command}\n`));
    socket.on("data", (d: string) => {
      answer += d;
    });
    socket.once("close", () => resolve(answer));
  });
}

/** Resolves once the frontend accepts a TCP connection; rejects with HAProxy's stderr if it exits first or after 10 s. */
async function waitForListen(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited(child)) break;
    if (await accepts(port)) return;
    await sleep(20);
  }
  throw new Error(`haproxy did not listen on port ${port}\n${stderr()}`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
