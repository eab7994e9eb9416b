/**
 * Forwarded API keys at rest: each key is sealed with XSalsa20-Poly1305 (tweetnacl
 * `secretbox`) under a 32-byte store key derived from the node's identity secret key,
 * so the key file alone reveals nothing and a changed byte is detected.
 */
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2";
import { fromBase64Url, fromUtf8, LocalError, randomBytes, toBase64Url, utf8 } from "@srp/core";
import nacl from "tweetnacl";

const PREFIX = "srpbox1";
const DOMAIN = "srp-keystore-v1\n";

/**
 * A sealed secret that cannot be opened (wrong key, tampered or malformed data) or a key
 * file that cannot be used. `details` names the key file and the entry when known; never
 * a key.
 *
 * @example
 * try {
 *   store.get("openai");
 * } catch (error) {
 *   if (error instanceof KeyStoreError) console.error(error.message, error.details); // { file, entry }
 * }
 */
export class KeyStoreError extends LocalError {
  override readonly name = "KeyStoreError";
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== nacl.secretbox.keyLength)
    throw new TypeError(`a secretbox key is ${nacl.secretbox.keyLength} bytes`);
}

/**
 * Seals a secret with a 32-byte key: `srpbox1.<base64url nonce>.<base64url ciphertext>`,
 * with a fresh random 24-byte nonce each time.
 *
 * @example
 * const sealed = sealSecret("sk-ant-...", key); // "srpbox1.…"
 * openSecret(sealed, key); // "sk-ant-..."
 */
export function sealSecret(plaintext: string, key: Uint8Array): string {
  checkKey(key);
  const nonce = randomBytes(nacl.secretbox.nonceLength);
  const box = nacl.secretbox(utf8(plaintext), nonce, key);
  return `${PREFIX}.${toBase64Url(nonce)}.${toBase64Url(box)}`;
}

/**
 * Opens a secret sealed by {@link sealSecret}.
 * @throws KeyStoreError when the text is malformed, was sealed under another key, or was altered.
 */
export function openSecret(sealed: string, key: Uint8Array): string {
  checkKey(key);
  const parts = typeof sealed === "string" ? sealed.split(".") : [];
  const nonce = parts.length === 3 && parts[0] === PREFIX ? fromBase64Url(parts[1]!) : undefined;
  const box = nonce ? fromBase64Url(parts[2]!) : undefined;
  if (!nonce || nonce.length !== nacl.secretbox.nonceLength || !box || box.length < nacl.secretbox.overheadLength) {
    throw new KeyStoreError(`not a sealed secret (expected ${PREFIX}.<nonce>.<ciphertext>)`);
  }
  const opened = nacl.secretbox.open(box, nonce, key);
  if (!opened) throw new KeyStoreError("cannot open sealed secret: wrong key, or the data was tampered with");
  const text = fromUtf8(opened);
  if (text === undefined) throw new KeyStoreError("sealed secret is not UTF-8");
  return text;
}

/**
 * The 32-byte key store key of a node: SHA-256 of `"srp-keystore-v1\n"` followed by the
 * identity's 64-byte secret key. Domain separation keeps it unrelated to any signature.
 */
export function deriveKeyStoreKey(secretKey: Uint8Array): Uint8Array {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== nacl.sign.secretKeyLength)
    throw new TypeError("expected a 64-byte Ed25519 secret key");
  const domain = utf8(DOMAIN);
  const input = new Uint8Array(domain.length + secretKey.length);
  input.set(domain, 0);
  input.set(secretKey, domain.length);
  const key = sha256(input);
  input.fill(0);
  return key;
}

/** Options of {@link KeyStore}. */
export interface KeyStoreOptions {
  /** Directory of the key file (created with mode 0700 if missing). */
  dir: string;
  /** The node identity (or its 64-byte secret key) the store key is derived from. */
  identity: { readonly secretKey: Uint8Array } | Uint8Array;
  /** File name inside `dir`; default `forwarded-keys.json`. */
  fileName?: string;
}

interface KeyFile {
  version: 1;
  keys: Record<string, string>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/**
 * Forwarded API keys sealed at rest in one JSON file (mode 0600): `{"version":1,"keys":{name: sealed}}`.
 * Each sealed value binds its name, so entries cannot be swapped between names unnoticed.
 * The file holds no plaintext; `list()` never returns keys.
 *
 * @example
 * const store = new KeyStore({ dir: "~/.srp/provider", identity });
 * store.set("anthropic", "sk-ant-...");
 * const backend = anthropicBackend({ apiKey: store.get("anthropic")! });
 */
export class KeyStore {
  readonly #file: string;
  readonly #key: Uint8Array;

  constructor(options: KeyStoreOptions) {
    const secretKey = options.identity instanceof Uint8Array ? options.identity : options.identity.secretKey;
    this.#key = deriveKeyStoreKey(secretKey);
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    this.#file = join(options.dir, options.fileName ?? "forwarded-keys.json");
  }

  /** Path of the key file. */
  get path(): string {
    return this.#file;
  }

  /** Seals and saves a key under a name (replacing any key of that name). */
  set(name: string, apiKey: string): void {
    checkName(name);
    if (typeof apiKey !== "string" || apiKey === "") throw new TypeError("apiKey must be a non-empty string");
    const file = this.#read();
    this.#verifyAll(file); // never mix keys sealed under another identity into one file
    file.keys[name] = sealSecret(JSON.stringify({ name, key: apiKey }), this.#key);
    this.#write(file);
  }

  /**
   * The key saved under a name, or `undefined` if there is none.
   * @throws KeyStoreError when the entry was sealed by another identity or was altered.
   */
  get(name: string): string | undefined {
    checkName(name);
    const sealed = this.#read().keys[name];
    return sealed === undefined ? undefined : this.#open(name, sealed);
  }

  /** Removes a key; returns whether there was one. Works even on entries that no longer open. */
  delete(name: string): boolean {
    checkName(name);
    const file = this.#read();
    if (!Object.hasOwn(file.keys, name)) return false;
    delete file.keys[name];
    this.#write(file);
    return true;
  }

  /**
   * Names of the saved keys, sorted; never the keys. Checks that every entry opens.
   * @throws KeyStoreError when an entry was sealed by another identity or was altered.
   */
  list(): string[] {
    const file = this.#read();
    this.#verifyAll(file);
    return Object.keys(file.keys).sort();
  }

  #open(name: string, sealed: string): string {
    let text: string;
    try {
      text = openSecret(sealed, this.#key);
    } catch (error) {
      if (error instanceof KeyStoreError) {
        throw new KeyStoreError(
          `key store ${this.#file}: entry ${JSON.stringify(name)} cannot be opened (${error.message}); was it written by another node identity?`,
          {
            details: { file: this.#file, entry: name },
            cause: error,
          },
        );
      }
      throw error;
    }
    let entry: unknown;
    try {
      entry = JSON.parse(text);
    } catch {
      entry = undefined;
    }
    const e = entry as { name?: unknown; key?: unknown } | undefined;
    if (typeof e !== "object" || e === null || e.name !== name || typeof e.key !== "string") {
      throw new KeyStoreError(`key store ${this.#file}: entry ${JSON.stringify(name)} does not belong to that name (tampered)`, {
        details: { file: this.#file, entry: name },
      });
    }
    return e.key;
  }

  #verifyAll(file: KeyFile): void {
    for (const [name, sealed] of Object.entries(file.keys)) this.#open(name, sealed);
  }

  #read(): KeyFile {
    let raw: string;
    try {
      raw = readFileSync(this.#file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, keys: {} };
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new KeyStoreError(`key store ${this.#file} is not valid JSON (corrupted or tampered)`, { details: { file: this.#file } });
    }
    const p = parsed as { version?: unknown; keys?: unknown };
    if (typeof p !== "object" || p === null || p.version !== 1 || typeof p.keys !== "object" || p.keys === null || Array.isArray(p.keys)) {
      throw new KeyStoreError(`key store ${this.#file} is not a version 1 key file`, { details: { file: this.#file } });
    }
    const keys: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [name, sealed] of Object.entries(p.keys as Record<string, unknown>)) {
      if (!NAME.test(name) || typeof sealed !== "string")
        throw new KeyStoreError(`key store ${this.#file} has a malformed entry ${JSON.stringify(name)}`, {
          details: { file: this.#file, entry: name },
        });
      keys[name] = sealed;
    }
    return { version: 1, keys };
  }

  #write(file: KeyFile): void {
    const tmp = `${this.#file}.tmp`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      fchmodSync(fd, 0o600); // a stale temp file keeps its old mode; narrow it before writing
      writeSync(fd, `${JSON.stringify({ version: file.version, keys: { ...file.keys } }, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.#file);
  }
}

function checkName(name: string): void {
  if (typeof name !== "string" || !NAME.test(name))
    throw new TypeError("a key name is 1-128 characters of letters, digits and . _ : @ - (starting with a letter or digit)");
}
