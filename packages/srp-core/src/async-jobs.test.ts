import { describe, expect, it } from "vitest";
import {
  artifactRanges,
  asyncInstanceProblem,
  asyncJobsExt,
  asyncJobsOf,
  fromBase64,
  ioSchemaProblem,
  isAsyncApi,
  manifestProblem,
  resultFrames,
  toBase64,
} from "./async-jobs.js";
import { decode } from "./codec.js";
import { sha256Hex } from "./encoding.js";
import { mp4Seconds } from "./mp4.js";
import { ASYNC_JOB_LIMITS } from "./schema/async-jobs.js";

function codeOf(frame: unknown): string | undefined {
  const r = decode(JSON.stringify(frame));
  return r.ok ? undefined : r.error.code;
}

const runIo = {
  input: {
    type: "object",
    properties: { prompt: { type: "string", maxLength: 1000 }, steps: { type: "integer", minimum: 1, maximum: 50, default: 4 } },
    required: ["prompt"],
    additionalProperties: false,
  },
  output: { type: "object", properties: { image: { type: "string", format: "uri" } } },
};

const instance = (capabilities: string[], io?: unknown) =>
  ({
    instanceId: "sim-upscaler",
    model: "sim-upscaler",
    tier: "gpu",
    backend: { kind: "other" },
    price: { input: "0", output: "0", second: "1000000000", run: "1000000000" },
    maxConcurrency: 1,
    tokensPerSecond: 1,
    contextLength: 1,
    capabilities,
    ...(io === undefined ? {} : { io }),
  }) as never;

describe("async-job frames (SRP-JOB-040..047)", () => {
  it("decodes progress, result and resume", () => {
    expect(codeOf({ type: "progress", jobId: "job_1", progress: 0 })).toBeUndefined();
    expect(codeOf({ type: "progress", jobId: "job_1", progress: 100, message: "rendering" })).toBeUndefined();
    expect(codeOf({ type: "result", jobId: "job_1", offset: 0, data: "AAECAw==" })).toBeUndefined();
    expect(codeOf({ type: "result", jobId: "job_1", offset: 262144, data: "AAEC" })).toBeUndefined();
    expect(codeOf({ type: "resume", jobId: "job_1", received: 0 })).toBeUndefined();
    expect(codeOf({ type: "resume", jobId: "job_1", received: 524288 })).toBeUndefined();
  });

  it("refuses progress outside 0..100 and non-integers", () => {
    expect(codeOf({ type: "progress", jobId: "job_1", progress: 101 })).toBe("frame.invalid");
    expect(codeOf({ type: "progress", jobId: "job_1", progress: -1 })).toBe("frame.invalid");
    expect(codeOf({ type: "progress", jobId: "job_1", progress: 12.5 })).toBe("frame.invalid");
    expect(codeOf({ type: "progress", jobId: "job_1" })).toBe("frame.invalid");
  });

  it("refuses a result that is empty, unpadded, base64url, negative or larger than the largest part", () => {
    expect(codeOf({ type: "result", jobId: "job_1", offset: 0, data: "" })).toBe("frame.invalid");
    expect(codeOf({ type: "result", jobId: "job_1", offset: 0, data: "AAECAw" })).toBe("frame.invalid");
    expect(codeOf({ type: "result", jobId: "job_1", offset: 0, data: "AA-_AA==" })).toBe("frame.invalid");
    expect(codeOf({ type: "result", jobId: "job_1", offset: -1, data: "AAEC" })).toBe("frame.invalid");
    expect(codeOf({ type: "result", jobId: "job_1", data: "AAEC" })).toBe("frame.invalid");
    const largest = toBase64(new Uint8Array(ASYNC_JOB_LIMITS.maxPartBytes));
    const r = decode(JSON.stringify({ type: "result", jobId: "job_1", offset: 0, data: largest }));
    expect(r.ok).toBe(true);
    // The largest part fits the smallest frame limit a hub may announce (1 MiB).
    expect(JSON.stringify({ type: "result", jobId: "j".repeat(128), offset: Number.MAX_SAFE_INTEGER, data: largest }).length).toBeLessThan(
      1_048_576,
    );
    const over = toBase64(new Uint8Array(ASYNC_JOB_LIMITS.maxPartBytes + 3));
    expect(codeOf({ type: "result", jobId: "job_1", offset: 0, data: over })).toBe("frame.invalid");
  });

  it("refuses resume without received or with a negative one", () => {
    expect(codeOf({ type: "resume", jobId: "job_1" })).toBe("frame.invalid");
    expect(codeOf({ type: "resume", jobId: "job_1", received: -5 })).toBe("frame.invalid");
  });

  it("takes videos and runs as job APIs and video and run as capabilities", () => {
    expect(isAsyncApi("videos") && isAsyncApi("runs")).toBe(true);
    expect(isAsyncApi("chat.completions")).toBe(false);
    const job = {
      type: "job",
      jobId: "job_1",
      instanceId: "sim-video",
      model: "sora-2",
      api: "videos",
      stream: false,
      request: { model: "sora-2", prompt: "a lighthouse", seconds: "4" },
      deadline: 1,
      quote: { input: "0", output: "0", second: "1000000000", run: "0" },
    };
    expect(codeOf(job)).toBeUndefined();
    expect(codeOf({ type: "offer", instances: [instance(["run"], runIo)] })).toBeUndefined();
    expect(codeOf({ type: "offer", instances: [instance(["video"])] })).toBeUndefined();
    expect(codeOf({ type: "offer", instances: [instance(["run"], { input: {} })] })).toBe("frame.invalid");
    expect(codeOf({ type: "offer", instances: [instance(["teleport"])] })).toBe("frame.invalid");
  });

  it("takes usage.runs and price.run", () => {
    const done = {
      type: "done",
      jobId: "job_1",
      chunks: 0,
      usage: { promptTokens: 0, completionTokens: 0, seconds: 4, runs: 1, measured: true },
      response: { object: "srp.result", artifacts: [], output: null },
      receipt: {},
    };
    // The receipt is not a receipt; what matters is that the usage passes and the receipt fails.
    const r = decode(JSON.stringify(done));
    expect(!r.ok && (r.error.details as { path: string }).path).toMatch(/^\/receipt/);
    expect(codeOf({ ...done, usage: { ...done.usage, runs: -1 } })).toBe("frame.invalid");
  });
});

describe("the srp.async_jobs announcement (SRP-JOB-039)", () => {
  it("reads a well-formed announcement and the reference one", () => {
    expect(asyncJobsOf({ ext: asyncJobsExt() })).toEqual({ partBytes: 262144, maxResultBytes: 67108864, resumeWindowMs: 120000 });
    expect(asyncJobsOf({ ext: asyncJobsExt({ resumeWindowMs: 0 }) })?.resumeWindowMs).toBe(0);
  });

  it("treats an absent or ill-formed announcement as none", () => {
    expect(asyncJobsOf({})).toBeUndefined();
    expect(asyncJobsOf({ ext: { "srp.async_jobs": true } })).toBeUndefined();
    expect(asyncJobsOf({ ext: asyncJobsExt({ partBytes: 1024 }) })).toBeUndefined();
    expect(asyncJobsOf({ ext: asyncJobsExt({ partBytes: 1_048_576 }) })).toBeUndefined();
    expect(asyncJobsOf({ ext: asyncJobsExt({ resumeWindowMs: 600_001 }) })).toBeUndefined();
    expect(asyncJobsOf({ ext: asyncJobsExt({ partBytes: 262144, maxResultBytes: 65536 }) })).toBeUndefined();
    expect(asyncJobsOf({ ext: { "srp.async_jobs": { ...asyncJobsExt()["srp.async_jobs"], more: 1 } } })).toBeUndefined();
  });

  it("a welcome carrying it decodes", () => {
    const welcome = {
      type: "welcome",
      version: 1,
      sessionId: "sess_1",
      nodeId: "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA",
      accountId: "acct_1",
      heartbeatIntervalMs: 15000,
      limits: { maxFrameBytes: 4194304, maxInstances: 64, maxConcurrentJobs: 256 },
      replaced: false,
      receipts: { lastSeq: 0, totals: { receipts: 0, cost: "0", promptTokens: 0, completionTokens: 0 } },
      ext: asyncJobsExt(),
    };
    expect(codeOf(welcome)).toBeUndefined();
  });
});

describe("async instances (SRP-OFF-019, SRP-OFF-020)", () => {
  it("accepts a run with io and a video without", () => {
    expect(asyncInstanceProblem(instance(["run"], runIo))).toBeUndefined();
    expect(asyncInstanceProblem(instance(["video"]))).toBeUndefined();
    expect(asyncInstanceProblem(instance(["chat", "stream"]))).toBeUndefined();
  });

  it("refuses a run without io, io without video or run, and mixed capabilities", () => {
    expect(asyncInstanceProblem(instance(["run"]))).toMatch(/no io/);
    expect(asyncInstanceProblem(instance(["chat"], runIo))).toMatch(/without video or run/);
    expect(asyncInstanceProblem(instance(["video", "chat"]))).toMatch(/stands alone/);
    expect(asyncInstanceProblem(instance(["video", "run"], runIo))).toMatch(/stands alone/);
  });

  it("refuses keywords outside the subset, remote references and oversized schemas", () => {
    const withInput = (input: unknown) => ioSchemaProblem({ input, output: {} });
    expect(withInput({ type: "string", pattern: "^(a+)+$" })).toMatch(/pattern/);
    expect(withInput({ properties: { a: { type: "string", patternProperties: {} } } })).toMatch(/patternProperties/);
    expect(withInput({ $ref: "https://example.com/schema.json" })).toMatch(/local/);
    expect(withInput({ $ref: "#/$defs/missing" })).toMatch(/does not resolve/);
    expect(withInput({ $defs: { a: { type: "integer" } }, properties: { n: { $ref: "#/$defs/a" } } })).toBeUndefined();
    expect(withInput({ anyOf: [] })).toMatch(/non-empty/);
    expect(withInput({ type: "text" })).toMatch(/type/);
    expect(withInput({ minLength: -1 })).toMatch(/non-negative/);
    expect(withInput({ multipleOf: 0 })).toMatch(/number/);
    expect(withInput(true)).toMatch(/not a schema object/);
    expect(withInput({ items: true, not: false })).toBeUndefined();
    expect(withInput({ description: "x".repeat(ASYNC_JOB_LIMITS.maxIoBytes) })).toMatch(/16384/);
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 40; i++) deep = { items: deep };
    expect(withInput(deep)).toMatch(/deeper/);
  });
});

describe("result frames and manifests (SRP-JOB-042, SRP-JOB-043)", () => {
  const stream = new Uint8Array(1000).map((_, i) => i % 251);
  const video = stream.subarray(0, 700);
  const thumb = stream.subarray(700);
  const manifest = {
    object: "srp.result",
    artifacts: [
      { name: "video", content_type: "video/mp4", bytes: 700, sha256: sha256Hex(video) },
      { name: "thumbnail", content_type: "image/webp", bytes: 300, sha256: sha256Hex(thumb) },
    ],
    video: { seconds: "4", size: "720x1280" },
    output: null,
  };
  const hashOf = (s: number, e: number) => sha256Hex(stream.subarray(s, e));

  it("cuts a stream into contiguous parts and resumes from a byte", () => {
    const frames = resultFrames("job_1", stream, 256);
    expect(frames.map((f) => f.offset)).toEqual([0, 256, 512, 768]);
    const joined = frames.flatMap((f) => [...fromBase64(f.data)!]);
    expect(Uint8Array.from(joined)).toEqual(stream);
    expect(resultFrames("job_1", stream, 256, 600).map((f) => f.offset)).toEqual([600, 856]);
    expect(resultFrames("job_1", stream, 256, 1000)).toEqual([]);
    for (const f of frames) expect(codeOf(f)).toBeUndefined();
  });

  it("finds the artifacts' ranges and accepts a matching manifest", () => {
    expect(artifactRanges(manifest as never)).toEqual([
      { name: "video", start: 0, end: 700 },
      { name: "thumbnail", start: 700, end: 1000 },
    ]);
    expect(manifestProblem("videos", manifest, 1000, hashOf)).toBeUndefined();
  });

  it("refuses a manifest whose bytes, hashes, names or kind do not match", () => {
    expect(manifestProblem("videos", manifest, 999, hashOf)).toMatch(/1000 bytes/);
    const bad = structuredClone(manifest);
    bad.artifacts[1]!.sha256 = "0".repeat(64);
    expect(manifestProblem("videos", bad, 1000, hashOf)).toMatch(/thumbnail hashes/);
    const twice = structuredClone(manifest);
    twice.artifacts[1]!.name = "video";
    expect(manifestProblem("videos", twice, 1000, hashOf)).toMatch(/twice/);
    const noVideo = structuredClone(manifest);
    noVideo.artifacts[0]!.name = "clip";
    expect(manifestProblem("videos", noVideo, 1000, hashOf)).toMatch(/named video/);
    expect(manifestProblem("runs", manifest, 1000, hashOf)).toMatch(/video member/);
    expect(manifestProblem("videos", { object: "srp.result", artifacts: [] }, 0, hashOf)).toMatch(/not an srp.result/);
    expect(manifestProblem("runs", { object: "srp.result", artifacts: [], output: "x".repeat(70_000) }, 0, hashOf)).toMatch(/65536/);
    expect(manifestProblem("runs", { object: "srp.result", artifacts: [], output: { image: "srp-artifact:out-0.png" } }, 0, hashOf)).toBe(
      undefined,
    );
  });

  it("round-trips base64 and refuses other alphabets", () => {
    expect(toBase64(new Uint8Array([251, 255, 0]))).toBe("+/8A");
    expect(fromBase64("+/8A")).toEqual(new Uint8Array([251, 255, 0]));
    expect(fromBase64("-_8A")).toBeUndefined();
    expect(fromBase64("AAE")).toBeUndefined();
  });
});

describe("mp4Seconds (SRP-ATT-028)", () => {
  const box = (type: string, ...body: Uint8Array[]) => {
    const size = 8 + body.reduce((s, b) => s + b.length, 0);
    const out = new Uint8Array(size);
    new DataView(out.buffer).setUint32(0, size);
    out.set(new TextEncoder().encode(type), 4);
    let at = 8;
    for (const b of body) {
      out.set(b, at);
      at += b.length;
    }
    return out;
  };
  const mvhd0 = (timescale: number, duration: number) => {
    const b = new Uint8Array(100);
    const v = new DataView(b.buffer);
    v.setUint32(12, timescale);
    v.setUint32(16, duration);
    return box("mvhd", b);
  };
  const mvhd1 = (timescale: number, duration: bigint) => {
    const b = new Uint8Array(112);
    b[0] = 1;
    const v = new DataView(b.buffer);
    v.setUint32(20, timescale);
    v.setBigUint64(24, duration);
    return box("mvhd", b);
  };
  const ftyp = box("ftyp", new TextEncoder().encode("isom\0\0\0\0isom"));

  it("reads duration / timescale from moov/mvhd (versions 0 and 1)", () => {
    expect(mp4Seconds(Uint8Array.from([...ftyp, ...box("moov", mvhd0(1000, 4000))]))).toBe(4);
    expect(mp4Seconds(Uint8Array.from([...ftyp, ...box("free"), ...box("moov", mvhd1(600, 7200n))]))).toBe(12);
  });

  it("is undefined for other files and broken boxes", () => {
    expect(mp4Seconds(box("moov", mvhd0(1000, 4000)))).toBeUndefined();
    expect(mp4Seconds(Uint8Array.from([...ftyp, ...box("moov")]))).toBeUndefined();
    expect(mp4Seconds(Uint8Array.from([...ftyp, ...box("moov", mvhd0(0, 4000))]))).toBeUndefined();
    expect(mp4Seconds(new TextEncoder().encode("RIFF....WAVE"))).toBeUndefined();
    const truncated = Uint8Array.from([...ftyp, ...box("moov", mvhd0(1000, 4000))]).subarray(0, 40);
    expect(mp4Seconds(truncated)).toBeUndefined();
  });
});
