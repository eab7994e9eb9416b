/**
 * A real, throwaway PostgreSQL server for tests: `initdb` into a fresh temporary
 * directory, `pg_ctl start` on a free loopback port, and a `srp_test` database. The
 * server binaries must be installed (CI installs the `postgresql` package); without them
 * this throws rather than letting the tests skip.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user
 * (created if missing) through `runuser`, or `su` where there is no `runuser`.
 */
import { execFile } from "node:child_process";
import { constants, accessSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import pg from "pg";

/** A running test server. */
export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/srp_test`. */
  url: string;
  /** Stops the server at once and removes its files. */
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  pgCtl: string;
}

/** As which system user the server runs: ourselves, or `postgres` when we are root. */
interface Runner {
  uid: number;
  gid: number;
  run(file: string, args: string[], cwd: string): Promise<string>;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `initdb` and `pg_ctl` from one directory: the first on PATH that has both, else the newest `/usr/lib/postgresql/<version>/bin`. */
function findBinaries(): Binaries {
  const fromPath = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  let versions: string[] = [];
  try {
    const byVersion = (a: string, b: string) => {
      const [x, y] = [a.split(".").map(Number), b.split(".").map(Number)];
      for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (y[i] ?? 0) - (x[i] ?? 0);
      return 0;
    };
    versions = readdirSync("/usr/lib/postgresql").filter((v) => /^[0-9.]+$/.test(v)).sort(byVersion);
  } catch {
    // No Debian-style installation.
  }
  const dirs = [...fromPath, ...versions.map((v) => `/usr/lib/postgresql/${v}/bin`)];
  for (const dir of dirs) {
    const initdb = join(dir, "initdb");
    const pgCtl = join(dir, "pg_ctl");
    if (executable(initdb) && executable(pgCtl)) return { initdb, pgCtl };
  }
  throw new Error(
    "PostgreSQL server binaries (initdb, pg_ctl) were found neither on PATH nor in /usr/lib/postgresql/*/bin; " +
      "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql) to run the PostgreSQL tests",
  );
}

function exec(file: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

let runner: Promise<Runner> | undefined;

/** How to run the server's commands; as root, as the `postgres` user (created if missing). */
function getRunner(): Promise<Runner> {
  runner ??= (async (): Promise<Runner> => {
    if (process.getuid?.() !== 0) {
      return { uid: -1, gid: -1, run: exec };
    }
    const id = async () => {
      const [uid, gid] = await Promise.all([exec("id", ["-u", "postgres"], "/"), exec("id", ["-g", "postgres"], "/")]);
      return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
    };
    let ids: { uid: number; gid: number };
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
  })();
  return runner;
}

function freePort(): Promise<number> {
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

/** Data directories of servers still running, stopped by the exit hook if a test run ends without `stop()`. */
const running = new Set<string>();
let hooked = false;

/** Best effort on exit: an immediate shutdown (SIGQUIT) of the postmaster named in `postmaster.pid`. */
function killLeftovers(): void {
  for (const data of running) {
    try {
      const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      if (pid > 0) process.kill(pid, "SIGQUIT");
    } catch {
      // Already gone.
    }
    try {
      rmSync(join(data, ".."), { recursive: true, force: true });
    } catch {
      // The server may still be writing; the directory is in the system's temp dir.
    }
  }
  running.clear();
}

/**
 * Stops leftover servers when the process exits, also by SIGTERM (how vitest ends its
 * workers), SIGINT or SIGHUP: after the cleanup the signal is raised again so the
 * process still ends the way it would have.
 */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", killLeftovers);
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
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

/** Starts a throwaway PostgreSQL server with an empty `srp_test` database. */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = findBinaries();
  const as = await getRunner();
  const dir = await mkdtemp(join(tmpdir(), "srp-pg-"));
  const data = join(dir, "data");
  hookExit();
  try {
    if (as.uid >= 0) await chown(dir, as.uid, as.gid);
    await as.run(bin.initdb, ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"], dir);
    let port = 0;
    // A port found free may be taken before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${quote(dir)} -c fsync=off -c full_page_writes=off -c synchronous_commit=off`;
      running.add(data);
      try {
        // -l: the server must not inherit our pipes, or pg_ctl's output would never end.
        await as.run(bin.pgCtl, ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "30", "-o", options, "start"], dir);
        break;
      } catch (error) {
        running.delete(data);
        if (attempt >= 3) throw new Error(`${error instanceof Error ? error.message : String(error)}\n${serverLog(dir)}`);
      }
    }
    const admin = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await createDatabase(admin, "srp_test");
    let stopped = false;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/srp_test`,
      async stop() {
        if (stopped) return;
        stopped = true;
        try {
          await as.run(bin.pgCtl, ["-D", data, "-m", "immediate", "-w", "stop"], dir);
        } finally {
          running.delete(data);
          await rm(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    if (running.has(data)) {
      await as.run(bin.pgCtl, ["-D", data, "-m", "immediate", "-w", "stop"], dir).catch(() => undefined);
      running.delete(data);
    }
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function serverLog(dir: string): string {
  try {
    return readFileSync(join(dir, "server.log"), "utf8");
  } catch {
    return "";
  }
}

/** Creates database `name` on the server of `url` and returns the URL that reaches it. */
export async function createDatabase(url: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`invalid database name ${JSON.stringify(name)}`);
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
