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
