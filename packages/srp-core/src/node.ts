/**
 * `@srp/core/node`: Node-only helpers (file system). Kept out of the main entry so the
 * core stays importable in browsers and edge runtimes.
 *
 * @module @srp/core/node
 */
import {
  createPrivateKey,
  createPublicKey,
  hash as oneShotHash,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { setCryptoBackend, type CryptoBackend } from "./crypto-backend.js";
import { dirname } from "node:path";
import { exportIdentity, generateIdentity, importIdentity, type Identity } from "./identity.js";
import { LocalError } from "./local-error.js";

/** Reads the identity at `path`, creating a new one there if the file does not exist. */
export function loadOrCreateIdentity(path: string): { identity: Identity; created: boolean } {
  if (existsSync(path)) return { identity: importIdentity(readFileSync(path, "utf8")), created: false };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const identity = generateIdentity();
  writeFileSync(path, `${exportIdentity(identity)}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return { identity, created: true };
}

/**
 * Thrown by CLI commands for bad arguments: {@link runCli} prints it with the usage text
 * and exits with status 64.
 *
 * @example
 * if (!values.hub) throw new UsageError("--hub URL is required");
 */
export class UsageError extends LocalError {
  override readonly name = "UsageError";
}

/**
 * Runs a small multi-command CLI: dispatches `argv[0]` to a command, prints `usage` for
 * `help`, and turns errors into exit statuses (64 for usage errors, 1 otherwise). A
 * command that resolves keeps the process alive as long as it has work (servers).
 */
export function runCli(
  name: string,
  usage: string,
  commands: Record<string, (argv: string[]) => unknown>,
  argv = process.argv.slice(2),
): void {
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

// DER prefixes of Ed25519 keys (RFC 8410): PKCS#8 for the 32-byte seed, SPKI for the public key.
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const privateKeys = new WeakMap<Uint8Array, KeyObject>();
const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_PUBLIC_KEYS = 50_000;

function privateKeyOf(secretKey: Uint8Array): KeyObject {
  let key = privateKeys.get(secretKey);
  if (!key) {
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey.subarray(0, 32)]), format: "der", type: "pkcs8" });
    privateKeys.set(secretKey, key);
  }
  return key;
}

function publicKeyOf(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString("base64");
  let key = publicKeys.get(id);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: "der", type: "spki" });
    if (publicKeys.size >= MAX_CACHED_PUBLIC_KEYS) publicKeys.delete(publicKeys.keys().next().value as string);
    publicKeys.set(id, key);
  }
  return key;
}

/** Ed25519 and SHA-256 on Node's native `node:crypto` (OpenSSL), with per-key caches. */
export const NODE_CRYPTO: CryptoBackend = Object.freeze({
  name: "node:crypto",
  sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
    return new Uint8Array(nodeSign(null, message, privateKeyOf(secretKey)));
  },
  verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      return nodeVerify(null, message, publicKeyOf(publicKey), signature);
    } catch {
      return false;
    }
  },
  publicKeyFromSeed(seed: Uint8Array): Uint8Array {
    const spki = createPublicKey(createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" })).export({
      format: "der",
      type: "spki",
    });
    return new Uint8Array(spki.subarray(spki.length - 32));
  },
  sha256(data: Uint8Array): Uint8Array {
    // One call, no Hash object per digest (Node 20.12+): about twice as fast on short inputs.
    const digest = oneShotHash("sha256", data, "buffer");
    return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
  },
});

/** The functions of the `sodium-native` package (libsodium) that SRP uses. */
interface Sodium {
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
}

/** Ed25519 on libsodium (`sodium-native`), SHA-256 on `node:crypto`. */
function sodiumBackend(sodium: Sodium): CryptoBackend {
  return Object.freeze({
    name: "libsodium",
    sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
      const signature = new Uint8Array(64);
      sodium.crypto_sign_detached(signature, message, secretKey);
      return signature;
    },
    verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
      if (publicKey.length !== 32 || signature.length !== 64) return false;
      try {
        return sodium.crypto_sign_verify_detached(signature, message, publicKey);
      } catch {
        return false;
      }
    },
    publicKeyFromSeed(seed: Uint8Array): Uint8Array {
      const publicKey = new Uint8Array(32);
      sodium.crypto_sign_seed_keypair(publicKey, new Uint8Array(64), seed);
      return publicKey;
    },
    sha256: NODE_CRYPTO.sha256,
  });
}

let sodium: CryptoBackend | null | undefined;

/**
 * Ed25519 on libsodium through the optional `sodium-native` package (prebuilt binaries),
 * about twice as fast as OpenSSL's at signing and at verifying on x64; `undefined` when
 * the package is not installed or does not load on this platform.
 */
export function sodiumCrypto(): CryptoBackend | undefined {
  if (sodium === undefined) {
    try {
      sodium = sodiumBackend(createRequire(import.meta.url)("sodium-native") as Sodium);
    } catch {
      sodium = null;
    }
  }
  return sodium ?? undefined;
}

/**
 * The native backend {@link useNodeCrypto} installs: libsodium when `sodium-native` loads,
 * else `node:crypto`. `SRP_CRYPTO=node:crypto` in the environment chooses `node:crypto`.
 */
export function nativeCrypto(): CryptoBackend {
  return (process.env.SRP_CRYPTO === NODE_CRYPTO.name ? undefined : sodiumCrypto()) ?? NODE_CRYPTO;
}

/**
 * Makes `@srp/core` sign, verify and hash with native code for the rest of the process
 * (the portable default is pure JavaScript): libsodium when the optional `sodium-native`
 * package loads, else Node's OpenSSL ({@link nativeCrypto}). Ed25519 is deterministic,
 * so the bytes produced are identical whichever runs. The hub and provider packages call
 * this when they load.
 */
export function useNodeCrypto(): void {
  setCryptoBackend(nativeCrypto());
}

/** The part of a socket {@link coalesceWrites} needs (a `net.Socket`, a TLS socket, any corkable `Writable`). */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Coalesces the writes made to `socket` during one turn of the event loop: call the
 * returned function before each write. The first call corks the socket and schedules one
 * `uncork` for the end of the turn (`setImmediate`), so every frame written meanwhile,
 * to this socket, goes out in one `writev` system call instead of one call each. Frames
 * wait at most until the loop has handled the I/O that was ready; under load that is
 * many frames per call, and for a lone frame the wait is a few microseconds.
 *
 * @example
 * const hold = coalesceWrites(socket);
 * hold();
 * ws.send(frame); // sent when this turn of the loop ends
 */
export function coalesceWrites(socket: Corkable): () => void {
  let held = false;
  const release = () => {
    held = false;
    socket.uncork();
  };
  return () => {
    if (held) return;
    held = true;
    socket.cork();
    setImmediate(release);
  };
}
