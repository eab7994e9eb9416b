/**
 * The request and response hashes a receipt binds (spec/v1/attestation.md, SRP-ATT-004
 * and SRP-ATT-005): SHA-256 over RFC 8785 canonical JSON. The response hash of a
 * streamed job can be computed chunk by chunk, without holding the output.
 */
import { sha256 } from "@noble/hashes/sha2";
import { canonicalize } from "./canonical.js";
import { cryptoBackend } from "./crypto-backend.js";
import { toHex, utf8 } from "./encoding.js";

/** SHA-256 (lowercase hex) of the canonical JSON of a job's `request` (SRP-ATT-004). */
export function requestHash(request: unknown): string {
  return toHex(cryptoBackend().sha256(utf8(canonicalize(request))));
}

/** SHA-256 (lowercase hex) of the canonical JSON of a non-streamed job's `done.response` (SRP-ATT-005). */
export function responseHash(response: unknown): string {
  return toHex(cryptoBackend().sha256(utf8(canonicalize(response))));
}

/**
 * Incremental response hash of a streamed job: the SHA-256 of the canonical JSON array of
 * the chunks' `data` members in `seq` order (SRP-ATT-005).
 *
 * @example
 * const h = new StreamHasher();
 * h.add({ id: "c1", object: "chat.completion.chunk", choices: [] });
 * h.digest(); // equals responseHash([{ id: "c1", ... }])
 */
export class StreamHasher {
  readonly #hash = sha256.create();
  #count = 0;

  constructor() {
    this.#hash.update(utf8("["));
  }

  /** Adds the `data` of the next chunk. */
  add(data: unknown): void {
    this.#hash.update(utf8(this.#count === 0 ? canonicalize(data) : `,${canonicalize(data)}`));
    this.#count++;
  }

  /** Number of chunks added so far. */
  get count(): number {
    return this.#count;
  }

  /** Finishes the hash; the hasher cannot be used afterwards. */
  digest(): string {
    this.#hash.update(utf8("]"));
    return toHex(this.#hash.digest());
  }
}
