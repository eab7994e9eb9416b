/**
 * What the helpers that run a real server as a child process share (test/support/redis.ts,
 * test/support/haproxy.ts): finding the binary, skipping locally but failing in CI when it
 * is missing, and never leaving a server behind when the test process ends.
 */
import type { ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Where the executable `name` is: the first directory on PATH that has it, else the first of `fallbackDirs`; undefined when missing. */
export function findBinary(name: string, fallbackDirs: readonly string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...fallbackDirs];
  return dirs.map((d) => join(d, name)).find(executable);
}

/**
 * Whether tests needing `name` are to be skipped: true when it was not found (`binary`
 * undefined) on a local run; throws in CI (`CI` set), where a missing server is a failure,
 * never a silent skip.
 */
export function skipWithout(name: string, binary: string | undefined, install: string): boolean {
  if (binary !== undefined) return false;
  if (process.env.CI) throw new Error(`${name} is not installed (${install}); CI must run these tests`);
  return true;
}

/** Servers this process started and has not stopped yet, killed when the process ends. */
const running = new Set<ChildProcess>();
let hooked = false;

/**
 * Kills `child` with SIGKILL should the test process exit or be ended by SIGINT, SIGTERM
 * (how vitest ends its workers) or SIGHUP before it is stopped; the signal is then raised
 * again, unless someone else handles it. (SIGKILL of the test process leaves no hook.)
 */
export function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const c of running) c.kill("SIGKILL");
    running.clear();
  };
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      killAll();
      if (process.listenerCount(signal) === 1) {
        process.off(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/** Whether `child` has exited. */
export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends `signal` to `child` and resolves once it has exited. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
