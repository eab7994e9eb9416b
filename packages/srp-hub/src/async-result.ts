/**
 * The hub's copy of one async job's result stream while the job runs (SRP-JOB-042): `result`
 * parts appended at contiguous offsets, bounded by the session's `partBytes` and
 * `maxResultBytes` and by what the whole hub may hold at once ({@link ByteBudget}), and
 * checked against the job's `done` manifest (SRP-JOB-043) before its receipt is
 * countersigned; and the usage bounds of an async job (SRP-ATT-027, SRP-ATT-028).
 */
import { createHash } from "node:crypto";
import { artifactRanges, fromBase64, manifestProblem, type AsyncApi } from "@srp/core";
import { mp4Seconds, type UsageBounds } from "@srp/core/metering";
import type { AsyncJobsAnnouncement, ResultManifest } from "@srp/core/schema";

/** Why a `result` part was not taken: a protocol violation (the session ends) or a result over a limit (the job fails). */
export type PartRefusal = { kind: "protocol"; message: string } | { kind: "too_large"; message: string };

/** Result bytes the whole hub holds for running async jobs, across sessions, at most `max`. */
export class ByteBudget {
  readonly max: number;
  #used = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** Takes `n` bytes; false (nothing taken) when that would pass `max`. */
  take(n: number): boolean {
    if (this.#used + n > this.max) return false;
    this.#used += n;
    return true;
  }

  /** Gives `n` bytes back. */
  give(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
}

/** The result stream of one async job, as received. */
export class ResultBuffer {
  /** The job's async API. */
  readonly api: AsyncApi;
  readonly #limits: Pick<AsyncJobsAnnouncement, "partBytes" | "maxResultBytes">;
  readonly #budget: ByteBudget | undefined;
  readonly #parts: Buffer[] = [];
  #received = 0;
  /** Bytes taken from the budget and not given back. */
  #held = 0;
  /** Why the stream was dropped, once it was. */
  #cut: string | undefined;
  /** The largest `progress` received (SRP-JOB-041: smaller ones are ignored). */
  progress = 0;

  constructor(api: AsyncApi, limits: Pick<AsyncJobsAnnouncement, "partBytes" | "maxResultBytes">, budget?: ByteBudget) {
    this.api = api;
    this.#limits = limits;
    this.#budget = budget;
  }

  /** Bytes of the stream held. */
  get received(): number {
    return this.#received;
  }

  /**
   * Appends a part sent at `offset` (standard base64 `data`); the refusal when the offset is
   * not the bytes held, the data is not padded base64 or is empty or larger than `partBytes`
   * (protocol), or the stream would pass `maxResultBytes` or the hub's budget (too large).
   * Once the stream is dropped ({@link cutOff}) parts are discarded.
   */
  append(offset: number, data: string): PartRefusal | undefined {
    if (this.#cut !== undefined) return undefined;
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
    if (this.#budget && !this.#budget.take(bytes.length))
      return { kind: "too_large", message: `the hub holds ${this.#budget.max} bytes of running jobs' results, its most; retry later` };
    this.#held += bytes.length;
    this.#parts.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    this.#received += bytes.length;
    return undefined;
  }

  /** Gives the bytes held back to the hub's budget (the job ended; its bytes went to the job's runner or nowhere). */
  release(): void {
    this.#budget?.give(this.#held);
    this.#held = 0;
  }

  /** Drops the stream (`why`: the job passed a limit, or the hub cancelled it): later parts are discarded and no manifest matches. */
  cutOff(why: string): void {
    this.#cut = why;
    this.#parts.length = 0;
    this.release();
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
    if (this.#cut !== undefined) return this.#cut;
    const all = this.bytes();
    return manifestProblem(this.api, response, this.#received, (start, end) =>
      createHash("sha256").update(all.subarray(start, end)).digest("hex"),
    );
  }

  /**
   * The seconds a video's receipt may bill (SRP-ATT-028): the `video` artifact's MP4 movie
   * header duration, rounded up, when it parses, and never more than the manifest's `video.seconds`
   * (what the consumer is shown). Undefined for a run or a manifest without them.
   */
  videoSeconds(manifest: ResultManifest): number | undefined {
    if (this.api !== "videos" || manifest.video === undefined) return undefined;
    const stated = Number(manifest.video.seconds);
    const range = artifactRanges(manifest).find((r) => r.name === "video");
    const measured = range ? mp4Seconds(this.bytes().subarray(range.start, range.end)) : undefined;
    return measured === undefined ? stated : Math.min(stated, Math.ceil(measured));
  }
}

/**
 * The bounds an async job's receipt is checked against (SRP-ATT-027, SRP-ATT-028): a run's
 * seconds at most the hub's own clock from sending the job to its `done`, plus one; a video's
 * at most what its result shows (`videoSeconds`). Other members as admitted.
 */
export function asyncJobBounds(
  api: AsyncApi,
  admitted: UsageBounds | undefined,
  sentAt: number,
  now: number,
  videoSeconds: number | undefined,
): UsageBounds | undefined {
  if (!admitted) return undefined;
  const cap = api === "runs" ? Math.ceil((now - sentAt) / 1000) + 1 : videoSeconds;
  if (cap === undefined) return admitted;
  return { ...admitted, seconds: Math.min(admitted.seconds ?? cap, cap) };
}
