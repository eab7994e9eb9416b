// A throwaway PostgreSQL server for the bench (the plain-.mjs counterpart of
// test/support/postgres.ts): `initdb` into a fresh temporary directory and `pg_ctl start`
// on a free 127.0.0.1 port, with PostgreSQL's durable defaults stated explicitly
// (fsync, synchronous_commit and full_page_writes on), unlike the test server.
//
// PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user
// (created if missing) through `runuser`, or `su` where there is no `runuser`.
//
// The server is always stopped: by `stop()`; when the process that started it exits, is
// interrupted (SIGINT, SIGTERM, SIGHUP) or loses its IPC channel; and, should that process
// be killed outright (SIGKILL leaves no hook to run), by a small detached guard process
// (this same file, run as `node bench/postgres.mjs --guard OWNER_PID DIR`) that stops the
// server and removes its directory as soon as the owner is gone. bench/ledger.mjs guards
// its SQLite directory the same way.
import { execFile, spawn } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * `initdb` and `pg_ctl` from one directory: the first on PATH that has both, else the
 * newest `/usr/lib/postgresql/<version>/bin`. Returns a reason string when there are none.
 */
export function findBinaries() {
  const fromPath = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  let versions = [];
  try {
    versions = readdirSync("/usr/lib/postgresql")
      .filter((v) => /^[0-9.]+$/.test(v))
      .sort((a, b) => Number(b.split(".")[0]) - Number(a.split(".")[0]) || Number(b.split(".")[1] ?? 0) - Number(a.split(".")[1] ?? 0));
  } catch {
    // No Debian-style installation.
  }
  for (const dir of [...fromPath, ...versions.map((v) => `/usr/lib/postgresql/${v}/bin`)]) {
    const initdb = join(dir, "initdb");
    const pgCtl = join(dir, "pg_ctl");
    if (executable(initdb) && executable(pgCtl)) return { initdb, pgCtl };
  }
  return { missing: "PostgreSQL server binaries (initdb, pg_ctl) are neither on PATH nor in /usr/lib/postgresql/*/bin (Debian/Ubuntu: apt-get install postgresql)" };
}

function exec(file, args, cwd) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

const quote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

/** How to run the server's commands: as ourselves, or as `postgres` when we are root. */
async function getRunner() {
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
      ? (file, args, cwd) => exec(viaRunuser, ["-u", "postgres", "--", file, ...args], cwd)
      : (file, args, cwd) => exec("su", ["postgres", "-s", "/bin/sh", "-c", [file, ...args].map(quote).join(" ")], cwd),
  };
}

function freePort() {
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

/** Whether a process is running (a zombie counts as gone). */
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return error?.code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

function postmasterPid(dir) {
  try {
    const pid = Number(readFileSync(join(dir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Synchronous last resort: immediate shutdown (SIGQUIT) of the postmaster of `dir`, a
 * short wait for it to go, then the directory is removed. Safe to call twice.
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

function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on("exit", killLeftovers);
  // A bench helper exits when the orchestrator's IPC channel closes; stop the server first.
  process.on("disconnect", killLeftovers);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    const onSignal = () => {
      killLeftovers();
      // Then end the way the signal would have, unless someone else handles it.
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/**
 * Starts a detached guard that removes `dir` (a directory under the system's temp dir
 * named `srp-bench-*`), after stopping the PostgreSQL server in it if there is one, as
 * soon as this process is gone, however it ended. The guard exits by itself once `dir`
 * has been removed.
 */
export function guardDir(dir) {
  const child = spawn(process.execPath, [SELF, "--guard", String(process.pid), dir], { detached: true, stdio: "ignore" });
  child.unref();
}

/** The server's settings that decide durability, as passed on its command line. */
export const DURABLE_SETTINGS = { fsync: "on", synchronous_commit: "on", full_page_writes: "on" };

/**
 * Starts a throwaway PostgreSQL server. Resolves to `{ url, adminUrl, pid, dir, stop() }`
 * (`url` names database `srp_bench`), or `{ skipped: reason }` when the binaries are missing.
 */
export async function startPostgres() {
  const bin = findBinaries();
  if (bin.missing) return { skipped: bin.missing };
  const as = await getRunner();
  const dir = await mkdtemp(join(tmpdir(), "srp-bench-pg-"));
  const data = join(dir, "data");
  hookExit();
  running.add(dir);
  guardDir(dir);
  const stopNow = async () => {
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
    if (as.uid >= 0) await chown(dir, as.uid, as.gid);
    // --no-sync only skips syncing initdb's own files (a throwaway cluster); every commit
    // the bench measures is flushed by the server's own settings below.
    await as.run(bin.initdb, ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"], dir);
    const durable = Object.entries(DURABLE_SETTINGS)
      .map(([k, v]) => `-c ${k}=${v}`)
      .join(" ");
    let port = 0;
    // A port found free may be taken before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${quote(dir)} ${durable}`;
      try {
        // -l: the server must not inherit our pipes, or pg_ctl's output would never end.
        await as.run(bin.pgCtl, ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "30", "-o", options, "start"], dir);
        break;
      } catch (error) {
        if (attempt >= 3) throw new Error(`${error?.message ?? error}\n${serverLog(dir)}`);
      }
    }
    const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query('CREATE DATABASE "srp_bench"');
    } finally {
      await client.end();
    }
    return { url: `postgres://postgres@127.0.0.1:${port}/srp_bench`, adminUrl, pid: postmasterPid(dir), dir, stop: stopNow };
  } catch (error) {
    await stopNow();
    throw error;
  }
}

function serverLog(dir) {
  try {
    return readFileSync(join(dir, "server.log"), "utf8");
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------------------
// The guard: `node bench/postgres.mjs --guard OWNER_PID DIR`. Polls; when the owner is gone
// it stops the server and removes DIR; when DIR is gone (a normal stop) it just exits.

if (process.argv[1] === SELF && process.argv[2] === "--guard") {
  const owner = Number(process.argv[3]);
  const dir = process.argv[4];
  if (!(owner > 0) || !dir || !dir.startsWith(join(tmpdir(), "srp-bench-"))) process.exit(2);
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
