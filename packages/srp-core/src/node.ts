/**
 * `@srp/core/node`: Node-only helpers (file system). Kept out of the main entry so the
 * core stays importable in browsers and edge runtimes.
 *
 * @module @srp/core/node
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { exportIdentity, generateIdentity, importIdentity, type Identity } from "./identity.js";

/** Reads the identity at `path`, creating a new one there if the file does not exist. */
export function loadOrCreateIdentity(path: string): { identity: Identity; created: boolean } {
  if (existsSync(path)) return { identity: importIdentity(readFileSync(path, "utf8")), created: false };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const identity = generateIdentity();
  writeFileSync(path, `${exportIdentity(identity)}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return { identity, created: true };
}

/** Thrown by CLI commands for bad arguments: printed with the usage text, exit status 64. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Runs a small multi-command CLI: dispatches `argv[0]` to a command, prints `usage` for
 * `help`, and turns errors into exit statuses (64 for usage errors, 1 otherwise). A
 * command that resolves keeps the process alive as long as it has work (servers).
 */
export function runCli(name: string, usage: string, commands: Record<string, (argv: string[]) => unknown>, argv = process.argv.slice(2)): void {
  const [command, ...rest] = argv;
  const run = async () => {
    if (command === undefined || command === "--help" || command === "help") {
      process.stdout.write(`${usage}\n`);
      return;
    }
    const fn = commands[command];
    if (!fn) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    await fn(rest);
  };
  run().catch((error: unknown) => {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`${name}: ${(error as Error).message}\n${usage}\n`);
      process.exit(64);
    }
    // Operational errors print as one line (`code: message`); SRP_DEBUG=1 shows the stack.
    const e = error as { code?: unknown; message?: string; stack?: string };
    const line = typeof e.code === "string" && /^[a-z]+\.[a-z_]+$/.test(e.code) ? `${e.code}: ${e.message}` : (e.message ?? String(error));
    process.stderr.write(`${name}: ${process.env.SRP_DEBUG ? (e.stack ?? line) : line}\n`);
    process.exit(1);
  });
}
