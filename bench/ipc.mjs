// Request/response over the IPC channel of `child_process.fork`, shared by the bench's
// orchestrator (bench/relay.mjs) and its helper processes. A helper calls `serve` with
// its commands; the orchestrator `spawn`s helpers, `call`s their commands and kills
// every helper it started when it ends (or when it dies: helpers exit when the IPC
// channel closes). `Command` runs a program that is not a bench helper (a package's own
// CLI, a third-party server) under the same rules.
import { fork, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";

/** In a helper: answers `{ id, cmd, args }` messages with `{ id, result }` or `{ id, error }`. */
export function serve(handlers) {
  process.on("message", async (m) => {
    if (!m || typeof m !== "object" || m.id === undefined) return;
    try {
      const handler = handlers[m.cmd];
      if (!handler) throw new Error(`unknown command ${m.cmd}`);
      const result = await handler(m.args ?? {});
      process.send?.({ id: m.id, result: result ?? null });
    } catch (error) {
      process.send?.({ id: m.id, error: String(error?.stack ?? error) });
    }
  });
  // The orchestrator went away (or let go of us): stop.
  process.on("disconnect", () => process.exit(0));
}

/** In a helper: an unsolicited event for the orchestrator. */
export function emit(event, data) {
  process.send?.({ event, data: data ?? null });
}

const live = new Set();
let nextId = 1;

/** A helper process started from bench/. */
export class Helper {
  constructor(name, script, execArgv = []) {
    this.name = name;
    this.pending = new Map();
    this.listeners = new Map();
    this.child = fork(new URL(script, import.meta.url), [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        live.delete(this);
        for (const { reject } of this.pending.values()) reject(new Error(`${name} exited (${signal ?? code}) with a command pending`));
        this.pending.clear();
        resolve({ code, signal });
      });
    });
    this.child.on("message", (m) => {
      if (m && m.id !== undefined) {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(`${name}: ${m.error}`));
        else p.resolve(m.result);
      } else if (m && m.event !== undefined) {
        for (const fn of this.listeners.get(m.event) ?? []) fn(m.data);
      }
    });
  }

  get pid() {
    return this.child.pid;
  }

  /** Runs a command in the helper. */
  call(cmd, args = {}, timeoutMs = 120_000) {
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return reject(new Error(`${this.name} is not running`));
      const id = nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, args });
    });
  }

  /** Listens to an event the helper emits. */
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
  }

  /** Asks the helper to close what it opened, then ends it (SIGKILL if it lingers). */
  async stop(graceMs = 3000) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await Promise.race([this.call("close", {}, graceMs).catch(() => {}), new Promise((r) => setTimeout(r, graceMs))]);
    if (this.child.connected) this.child.disconnect();
    const killer = setTimeout(() => this.child.kill("SIGKILL"), 1000);
    await this.exited;
    clearTimeout(killer);
  }
}

const GUARD = new URL("./parent-guard.mjs", import.meta.url).href;

/**
 * A long-running Node program started from the orchestrator as a user would run it (a CLI
 * of this repository, a third-party server): `node --import bench/parent-guard.mjs
 * ...args`. Its stdout and stderr go to the file `log` (never through the orchestrator);
 * the guard ends it when the orchestrator goes away (and removes `env.BENCH_GUARD_REMOVE_DIR`). `stopAll` / `killAllNow` end it with
 * the helpers.
 */
export class Command {
  constructor(name, args, { log, env = {}, preload = [], nodeFlags = [] }) {
    this.name = name;
    this.log = log;
    const fd = openSync(log, "a");
    const imports = [GUARD, ...preload].flatMap((p) => ["--import", p]);
    this.child = spawn(process.execPath, [...nodeFlags, ...imports, ...args], {
      stdio: ["ignore", fd, fd, "ipc"],
      env: { ...process.env, ...env },
    });
    closeSync(fd);
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        live.delete(this);
        resolve({ code, signal });
      });
    });
  }

  get pid() {
    return this.child.pid;
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines of its output, for error messages. */
  tail(lines = 12) {
    try {
      return readFileSync(this.log, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /** Resolves with the first match of `pattern` in its output; rejects if it exits or `timeoutMs` passes first. */
  async waitFor(pattern, timeoutMs = 30_000) {
    const end = performance.now() + timeoutMs;
    for (;;) {
      let text = "";
      try {
        text = readFileSync(this.log, "utf8");
      } catch {
        /* not written yet */
      }
      const m = pattern.exec(text);
      if (m) return m;
      if (!this.running) throw new Error(`${this.name} exited before printing ${pattern}:\n${this.tail()}`);
      if (performance.now() > end) throw new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM (the program's own shutdown), SIGKILL if it lingers. */
  async stop(graceMs = 5000) {
    if (!this.running) return;
    this.child.kill("SIGTERM"); // (not a disconnect: the guard would take that for the orchestrator's end)
    const killer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(killer);
  }
}

/** Stops every helper still running, in reverse order of start. */
export async function stopAll() {
  for (const h of [...live].reverse()) await h.stop();
}

/** Last resort at process exit: kill whatever is left (synchronous). */
export function killAllNow() {
  for (const h of live) {
    try {
      h.child.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
}
