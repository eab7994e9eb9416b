// @ts-check
// A throwaway PostgreSQL server, shared by the tests (test/support/postgres.ts) and the
// bench (bench/postgres.mjs): `initdb` into a fresh temporary directory and `pg_ctl start`
// on a free 127.0.0.1 port, with the settings the caller asks for (DURABLE_SETTINGS,
// PostgreSQL's durable defaults stated explicitly, for the bench; THROWAWAY_SETTINGS, no
// flushing at all, for the tests). Plain ESM so that the bench runs it with plain `node`;
// its types are in postgres.d.mts.
//
// PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user
// (created if missing) through `runuser`, or `su` where there is no `runuser`.
//
// The server is always stopped: by `stop()`; when the process that started it exits, is
// interrupted (SIGINT, SIGTERM, SIGHUP) or loses its IPC channel; and, should that process
// be killed outright (SIGKILL leaves no hook to run), by a small detached guard process
// (this same file, run as `node scripts/postgres.mjs --guard OWNER_PID DIR`) that stops the
// server and removes its directory as soon as the owner is gone. bench/ledger.mjs guards
// its SQLite directory the same way (`guardDir`).
import { execFile, spawn } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { chown, mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);

/** What every temporary directory this module creates, guards or removes is named: `<tmpdir>/srp-*`. */
const DIR_PREFIX = "srp-";

/** The server's settings that decide durability, PostgreSQL's defaults stated explicitly (the bench). */
export const DURABLE_SETTINGS = Object.freeze({ fsync: "on", synchronous_commit: "on", full_page_writes: "on" });

/** No flushing at all, for a server whose data may be lost (the tests). */
export const THROWAWAY_SETTINGS = Object.freeze({ fsync: "off", full_page_writes: "off", synchronous_commit: "off" });

/** @param {string} path */
function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Newest first, comparing every dotted component numerically.
 * @param {string} a
 * @param {string} b
 */
function byVersionDescending(a, b) {
  const [x, y] = [a.split(".").map(Number), b.split(".").map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (y[i] ?? 0) - (x[i] ?? 0);
  return 0;
}

/**
 * `initdb` and `pg_ctl` from one directory: the first on PATH that has both, else the
 * newest `/usr/lib/postgresql/<version>/bin`. Returns `{ missing: reason }` when there are none.
 * @returns {{ initdb: string, pgCtl: string } | { missing: string }}
 */
export function findBinaries() {
  const fromPath = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  /** @type {string[]} */
  let versions = [];
  try {
    versions = readdirSync("/usr/lib/postgresql")
      .filter((v) => /^[0-9.]+$/.test(v))
      .sort(byVersionDescending);
  } catch {
    // No Debian-style installation.
  }
  for (const dir of [...fromPath, ...versions.map((v) => `/usr/lib/postgresql/${v}/bin`)]) {
    const initdb = join(dir, "initdb");
    const pgCtl = join(dir, "pg_ctl");
    if (executable(initdb) && executable(pgCtl)) return { initdb, pgCtl };
  }
  return {
    missing:
      "PostgreSQL server binaries (initdb, pg_ctl) were found neither on PATH nor in /usr/lib/postgresql/*/bin; " +
      "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql)",
  };
}

/**
 * @param {string} file
 * @param {string[]} args
 * @param {string} cwd
 * @returns {Promise<string>}
 */
function exec(file, args, cwd) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** @param {string} s */
const quote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * As which system user the server runs: ourselves, or `postgres` when we are root.
 * @typedef {{ uid: number, gid: number, run(file: string, args: string[], cwd: string): Promise<string> }} Runner
 */

/** @type {Promise<Runner> | undefined} */
let runner;

/**
 * How to run the server's commands; as root, as the `postgres` user (created if missing).
 * @returns {Promise<Runner>}
 */
function getRunner() {
  runner ??= (async () => {
    if (process.getuid?.() !== 0) return { uid: -1, gid: -1, run: exec };
    const id = async () => {
      const [uid, gid] = await Promise.all([exec("id", ["-u", "postgres"], "/"), exec("id", ["-g", "postgres"], "/")]);
      return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
    };
    let ids;
    try {
      ids = await id();
    } catch {
      await exec("useradd", ["-r", "-M", "-U", "-s", "/bin/sh", "postgres"], "/");
      ids = await id();
    }
    const viaRunuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].find(executable);
    return {
      ...ids,
      run: viaRunuser
        ? (/** @type {string} */ file, /** @type {string[]} */ args, /** @type {string} */ cwd) =>
            exec(viaRunuser, ["-u", "postgres", "--", file, ...args], cwd)
        : (/** @type {string} */ file, /** @type {string[]} */ args, /** @type {string} */ cwd) =>
            exec("su", ["postgres", "-s", "/bin/sh", "-c", [file, ...args].map(quote).join(" ")], cwd),
    };
  })();
  // A failed attempt (useradd refused...) is not remembered: the next server tries again.
  runner.catch(() => {
    runner = undefined;
  });
  return runner;
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (it may be taken before it is used).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Whether a process is running (a zombie counts as gone).
 * @param {number} pid
 */
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return /** @type {NodeJS.ErrnoException} */ (error)?.code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/**
 * The postmaster's pid from `DIR/data/postmaster.pid`, if the server is (or was) running.
 * @param {string} dir
 */
function postmasterPid(dir) {
  try {
    const pid = Number(readFileSync(join(dir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** @param {number} ms */
const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Synchronous last resort: immediate shutdown (SIGQUIT) of the postmaster of `dir`, a
 * short wait for it to go, then the directory is removed. Safe to call twice.
 * @param {string} dir
 */
export function killServerSync(dir) {
  const pid = postmasterPid(dir);
  if (pid !== undefined) {
    try {
      process.kill(pid, "SIGQUIT");
    } catch {
      // Already gone.
    }
    for (let waited = 0; waited < 5000 && alive(pid); waited += 20) sleepSync(20);
  }
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // Best effort; the directory is in the system's temp dir.
  }
}

/** Directories of servers this process started and has not stopped yet. */
const running = new Set();
let hooked = false;

function killLeftovers() {
  for (const dir of running) killServerSync(dir);
  running.clear();
}

/**
 * Stops leftover servers when the process exits, loses its IPC channel (a bench helper
 * exits when the orchestrator's channel closes) or is ended by SIGINT, SIGTERM (how vitest
 * ends its workers) or SIGHUP: after the cleanup the signal is raised again, unless someone
 * else handles it, so the process still ends the way it would have.
 */
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on("exit", killLeftovers);
  process.on("disconnect", killLeftovers);
  for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM", "SIGHUP"])) {
    const onSignal = () => {
      killLeftovers();
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/**
 * Whether `dir` is one of ours: directly in the system's temp dir and named `srp-*`.
 * @param {string} dir
 */
function isOurTempDir(dir) {
  return (
    resolve(dir) === dir && dirname(dir) === tmpdir() && basename(dir).startsWith(DIR_PREFIX) && basename(dir).length > DIR_PREFIX.length
  );
}

/**
 * Starts a detached guard that removes `dir` (a directory directly in the system's temp
 * dir, named `srp-*`), after stopping the PostgreSQL server in it if there is one, as soon
 * as this process is gone, however it ended. The guard exits by itself once `dir` has been
 * removed.
 * @param {string} dir
 */
export function guardDir(dir) {
  if (!isOurTempDir(dir)) throw new Error(`guardDir: ${dir} is not a directory ${join(tmpdir(), `${DIR_PREFIX}*`)}`);
  const child = spawn(process.execPath, [SELF, "--guard", String(process.pid), dir], { detached: true, stdio: "ignore" });
  child.unref();
}

/**
 * @param {string} dir
 */
function serverLog(dir) {
  try {
    return readFileSync(join(dir, "server.log"), "utf8");
  } catch {
    return "";
  }
}

/**
 * `-c name=value` options for the server's command line (pg_ctl hands them to a shell).
 * @param {Readonly<Record<string, string>>} settings
 */
function settingOptions(settings) {
  return Object.entries(settings)
    .map(([name, value]) => {
      if (!/^[a-z_][a-z0-9_.]*$/.test(name) || !/^[A-Za-z0-9_.:-]+$/.test(value))
        throw new Error(`invalid server setting ${name}=${value}`);
      return `-c ${name}=${value}`;
    })
    .join(" ");
}

/**
 * Starts a throwaway PostgreSQL server with an empty database. Resolves to
 * `{ url, adminUrl, pid, dir, stop(), down(), up() }`, or `{ skipped: reason }` when the server binaries
 * are missing; throws when the server does not start.
 * @param {import("./postgres.d.mts").StartPostgresOptions} [options]
 * @returns {Promise<import("./postgres.d.mts").StartedPostgres | { skipped: string }>}
 */
export async function startPostgres(options = {}) {
  const { settings = DURABLE_SETTINGS, database = "srp", prefix = "srp-pg-", guard = true } = options;
  if (!prefix.startsWith(DIR_PREFIX) || prefix.includes("/"))
    throw new Error(`startPostgres: prefix ${prefix} must start with ${DIR_PREFIX}`);
  const serverOptions = settingOptions(settings);
  const bin = findBinaries();
  if ("missing" in bin) return { skipped: bin.missing };
  const as = await getRunner();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const data = join(dir, "data");
  hookExit();
  running.add(dir);
  const stop = async () => {
    if (!running.has(dir)) return;
    try {
      if (postmasterPid(dir) !== undefined) await as.run(bin.pgCtl, ["-D", data, "-m", "immediate", "-w", "stop"], dir);
    } catch {
      // Fall through to the signal.
    } finally {
      running.delete(dir);
      killServerSync(dir);
    }
  };
  try {
    if (guard) guardDir(dir);
    if (as.uid >= 0) await chown(dir, as.uid, as.gid);
    // --no-sync only skips syncing initdb's own files (a throwaway cluster); every commit
    // after that is flushed, or not, by the server's own settings.
    await as.run(bin.initdb, ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"], dir);
    let port = 0;
    // -l: the server must not inherit our pipes, or pg_ctl's output would never end.
    const launch = () =>
      as.run(
        bin.pgCtl,
        [
          "-D",
          data,
          "-l",
          join(dir, "server.log"),
          "-w",
          "-t",
          "30",
          "-o",
          `-c listen_addresses=127.0.0.1 -p ${port} -k ${quote(dir)} ${serverOptions}`,
          "start",
        ],
        dir,
      );
    // A port found free may be taken before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await launch();
        break;
      } catch (error) {
        if (attempt >= 3) throw new Error(`${error instanceof Error ? error.message : String(error)}\n${serverLog(dir)}`);
      }
    }
    // Stops the server at once (as a crash would) and keeps its data directory and port for `up()`.
    const down = async () => {
      if (!running.has(dir) || postmasterPid(dir) === undefined) return;
      await as.run(bin.pgCtl, ["-D", data, "-m", "immediate", "-w", "stop"], dir);
    };
    // Starts the stopped server again on the same port and data directory (it recovers from its WAL).
    const up = async () => {
      if (!running.has(dir)) throw new Error("startPostgres: up() after stop()");
      if (postmasterPid(dir) !== undefined) return;
      // The port was ours a moment ago; another process may have taken it meanwhile (rare): retry briefly.
      for (let attempt = 1; ; attempt++) {
        try {
          return void (await launch());
        } catch (error) {
          if (attempt >= 20) throw new Error(`${error instanceof Error ? error.message : String(error)}\n${serverLog(dir)}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const url = await createDatabase(adminUrl, database);
    return { url, adminUrl, pid: postmasterPid(dir), dir, stop, down, up };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Creates database `name` on the server of `url` and returns the URL that reaches it.
 * @param {string} url
 * @param {string} name
 * @returns {Promise<string>}
 */
export async function createDatabase(url, name) {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid database name ${JSON.stringify(name)}`);
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const out = new URL(url);
  out.pathname = `/${name}`;
  return out.toString();
}

// ---------------------------------------------------------------------------
// The guard: `node scripts/postgres.mjs --guard OWNER_PID DIR`. Polls; when the owner is
// gone it stops the server and removes DIR; when DIR is gone (a normal stop) it just exits.

if (process.argv[1] === SELF && process.argv[2] === "--guard") {
  const owner = Number(process.argv[3]);
  const dir = process.argv[4] ?? "";
  if (!(owner > 0) || !isOurTempDir(dir)) process.exit(2);
  const timer = setInterval(() => {
    if (!existsSync(dir)) {
      clearInterval(timer);
      return;
    }
    if (!alive(owner)) {
      clearInterval(timer);
      killServerSync(dir);
    }
  }, 250);
}
