/**
 * Async jobs on the wire (`spec/v1/jobs.md#async-jobs`): the limits of the `srp.async_jobs`
 * announcement a hub puts in `welcome.ext` (SRP-JOB-039), and the `srp.result` manifest a
 * node puts in `done.response` of a `videos` or `runs` job (SRP-JOB-042, SRP-JOB-043).
 */
import { Type, type Static } from "@sinclair/typebox";
import { Hash, Id } from "./primitives.js";

/** Bounds of the async-job announcement and of what travels under it. */
export const ASYNC_JOB_LIMITS = {
  /** The `welcome.ext` key that announces async jobs (SRP-JOB-039). */
  extKey: "srp.async_jobs",
  /** Smallest `partBytes` a hub may announce (64 KiB). */
  minPartBytes: 65_536,
  /**
   * Largest `partBytes` a hub may announce (512 KiB): its base64 form (699 052 characters)
   * plus the frame's other members fits the smallest `maxFrameBytes` (1 MiB).
   */
  maxPartBytes: 524_288,
  /** What the reference hub announces as `partBytes` (256 KiB). */
  defaultPartBytes: 262_144,
  /** Largest `maxResultBytes` a hub may announce (4 GiB). */
  maxResultBytes: 4_294_967_296,
  /** What the reference hub announces as `maxResultBytes` (64 MiB). */
  defaultMaxResultBytes: 67_108_864,
  /** Longest `resumeWindowMs` a hub may announce (10 minutes). */
  maxResumeWindowMs: 600_000,
  /** What the reference hub announces as `resumeWindowMs` (2 minutes). */
  defaultResumeWindowMs: 120_000,
  /** Largest canonical JSON of an instance's `io` (SRP-OFF-020). */
  maxIoBytes: 16_384,
  /** Largest canonical JSON of a run's inline `output` (SRP-JOB-044). */
  maxOutputBytes: 65_536,
  /** Longest `data:` URL a run's output may carry inline (SRP-JOB-044). */
  maxInlineDataUrl: 4_096,
  /** Most artifacts one result may have. */
  maxArtifacts: 64,
} as const;

/** The value of `welcome.ext["srp.async_jobs"]`: the hub takes `videos` and `runs` jobs under these limits (SRP-JOB-039). */
export const AsyncJobsAnnouncement = Type.Object(
  {
    partBytes: Type.Integer({ minimum: ASYNC_JOB_LIMITS.minPartBytes, maximum: ASYNC_JOB_LIMITS.maxPartBytes }),
    maxResultBytes: Type.Integer({ minimum: ASYNC_JOB_LIMITS.minPartBytes, maximum: ASYNC_JOB_LIMITS.maxResultBytes }),
    resumeWindowMs: Type.Integer({ minimum: 0, maximum: ASYNC_JOB_LIMITS.maxResumeWindowMs }),
  },
  { additionalProperties: false, title: "AsyncJobsAnnouncement" },
);
/** The value of `welcome.ext["srp.async_jobs"]`. */
export type AsyncJobsAnnouncement = Static<typeof AsyncJobsAnnouncement>;

/** One artifact of an async job's result: a named byte range of its result stream. */
export const ResultArtifact = Type.Object(
  {
    name: Id,
    content_type: Type.String({ minLength: 1, maxLength: 255, pattern: "^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$" }),
    bytes: Type.Integer({ minimum: 0, maximum: ASYNC_JOB_LIMITS.maxResultBytes }),
    sha256: Hash,
  },
  { additionalProperties: false, title: "ResultArtifact" },
);
/** One artifact of an async job's result. */
export type ResultArtifact = Static<typeof ResultArtifact>;

/**
 * `done.response` of an async job: the artifacts in stream order, the video's final
 * `seconds` and `size` (a `videos` job), and a run's JSON output (a `runs` job; null for a
 * video).
 */
export const ResultManifest = Type.Object(
  {
    object: Type.Literal("srp.result"),
    artifacts: Type.Array(ResultArtifact, { maxItems: ASYNC_JOB_LIMITS.maxArtifacts }),
    video: Type.Optional(
      Type.Object(
        {
          seconds: Type.String({ pattern: "^[0-9]{1,6}$" }),
          size: Type.String({ pattern: "^[0-9]{1,5}x[0-9]{1,5}$" }),
        },
        { additionalProperties: false },
      ),
    ),
    output: Type.Unknown(),
  },
  { additionalProperties: false, title: "ResultManifest" },
);
/** `done.response` of an async job. */
export type ResultManifest = Static<typeof ResultManifest>;
