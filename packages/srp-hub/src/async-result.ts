/**
 * The hub's copy of one async job's result stream while the job runs (SRP-JOB-042): `result`
 * parts appended at contiguous offsets, bounded by the session's `partBytes` and
 * `maxResultBytes`, and checked against the job's `done` manifest (SRP-JOB-043) before its
 * receipt is countersigned.
 */
import { createHash } from "node:crypto";
import { fromBase64, manifestProblem, type AsyncApi } from "@srp/core";
import type { AsyncJobsAnnouncement } from "@srp/core/schema";

/** Why a `result` part was not taken: a protocol violation (the session ends) or a result over the limit (the job fails). */
export type PartRefusal = { kind: "protocol"; message: string } | { kind: "too_large"; message: string };

/** The result stream of one async job, as received. */
export class ResultBuffer {
  /** The job's async API. */
  readonly api: AsyncApi;
  readonly #limits: Pick<AsyncJobsAnnouncement, "partBytes" | "maxResultBytes">;
  readonly #parts: Buffer[] = [];
  #received = 0;
  #cut = false;
  /** The largest `progress` received (SRP-JOB-041: smaller ones are ignored). */
  progress = 0;

  constructor(api: AsyncApi, limits: Pick<AsyncJobsAnnouncement, "partBytes" | "maxResultBytes">) {
    this.api = api;
    this.#limits = limits;
  }

  /** Bytes of the stream held. */
  get received(): number {
    return this.#received;
  }

  /**
   * Appends a part sent at `offset` (standard base64 `data`); the refusal when the offset is
   * not the bytes held, the data is not padded base64 or is empty or larger than `partBytes`
   * (protocol), or the stream would pass `maxResultBytes` (too large).
   */
  append(offset: number, data: string): PartRefusal | undefined {
    if (this.#cut) return undefined;
    if (offset !== this.#received)
      return { kind: "protocol", message: `result at offset ${offset}; the hub holds ${this.#received} bytes of this job's result` };
    // Larger than partBytes in base64 is larger decoded: refused before decoding.
    if (data.length > Math.ceil(this.#limits.partBytes / 3) * 4)
      return { kind: "protocol", message: `a result part over the ${this.#limits.partBytes}-byte partBytes` };
    const bytes = fromBase64(data);
    if (!bytes || bytes.length === 0)
      return { kind: "protocol", message: "a result part's data is not 1 or more bytes of padded standard base64" };
    if (bytes.length > this.#limits.partBytes)
      return { kind: "protocol", message: `a result part of ${bytes.length} bytes, over the ${this.#limits.partBytes}-byte partBytes` };
    if (this.#received + bytes.length > this.#limits.maxResultBytes)
      return { kind: "too_large", message: `the job's result passed the hub's ${this.#limits.maxResultBytes}-byte maxResultBytes` };
    this.#parts.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    this.#received += bytes.length;
    return undefined;
  }

  /** Drops the stream (it passed `maxResultBytes`; the job was cancelled): later parts are discarded and no manifest matches. */
  cutOff(): void {
    this.#cut = true;
    this.#parts.length = 0;
  }

  /** The whole stream received. */
  bytes(): Buffer {
    if (this.#parts.length !== 1) {
      const all = Buffer.concat(this.#parts, this.#received);
      this.#parts.length = 0;
      this.#parts.push(all);
    }
    return this.#parts[0] ?? Buffer.alloc(0);
  }

  /** What is wrong with a `done.response` for this stream (SRP-JOB-043), or undefined. */
  check(response: unknown): string | undefined {
    if (this.#cut) return `the job's result passed the hub's ${this.#limits.maxResultBytes}-byte maxResultBytes`;
    const all = this.bytes();
    return manifestProblem(this.api, response, this.#received, (start, end) =>
      createHash("sha256").update(all.subarray(start, end)).digest("hex"),
    );
  }
}
