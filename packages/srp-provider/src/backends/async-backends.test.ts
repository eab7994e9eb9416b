// The async backends (videos.ts, cog.ts) against the simulator's video and run modes over
// HTTP, and their pure parts: the io a Cog /openapi.json declares, URL inputs, output files
// taken out as artifacts (SRP-JOB-044, SRP-JOB-051, SRP-JOB-052, SRP-OFF-021).
import { ioSchemaProblem, sha256Hex } from "@srp/core";
import { mp4Seconds } from "@srp/core/metering";
import { afterEach, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "../simulator/index.js";
import { resultOf } from "../async-jobs.js";
import { cogBackend, cogIo, outputArtifacts, urlInInput } from "./cog.js";
import { BackendError } from "./types.js";
import { failedVideoCode, videosBackend } from "./videos.js";

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const call = (onProgress: (p: number) => void = () => {}, signal = new AbortController().signal) => ({ signal, onProgress });

describe("videosBackend (SRP-JOB-051)", () => {
  it("creates, polls with rising progress and downloads the video as the artifact video", async () => {
    sim = await startSimulator({ videoRenderMs: 200, videoBytes: 150_000 });
    const backend = videosBackend({ baseUrl: sim.baseUrl, pollMs: 20 });
    const seen: number[] = [];
    const r = await backend.runAsync!(
      { model: "sim-video", prompt: "a lighthouse", seconds: "8" },
      call((p) => seen.push(p)),
    );
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.every((p) => p < 100)).toBe(true);
    expect(r.artifacts.map((a) => [a.name, a.contentType, a.bytes.length])).toEqual([["video", "video/mp4", 150_000]]);
    expect(mp4Seconds(r.artifacts[0]!.bytes)).toBe(8);
    expect(r.video).toEqual({ seconds: "8", size: "720x1280" });
    expect(r.usage).toEqual({ promptTokens: 0, completionTokens: 0, seconds: 8, runs: 1, measured: true });
    const { stream, manifest } = resultOf("videos", r);
    expect(stream.length).toBe(150_000);
    expect(manifest).toEqual({
      object: "srp.result",
      artifacts: [{ name: "video", content_type: "video/mp4", bytes: 150_000, sha256: sha256Hex(r.artifacts[0]!.bytes) }],
      video: { seconds: "8", size: "720x1280" },
      output: null,
    });
  });

  it("ends a refused video with job.invalid_request and a backend failure with job.upstream_error", async () => {
    sim = await startSimulator();
    const backend = videosBackend({ baseUrl: sim.baseUrl, pollMs: 10 });
    sim.setFault({ kind: "video_failed" }, 1);
    await expect(backend.runAsync!({ model: "sim-video", prompt: "x" }, call())).rejects.toMatchObject({ code: "job.invalid_request" });
    sim.setFault({ kind: "status", status: 500 }, 1);
    await expect(backend.runAsync!({ model: "sim-video", prompt: "x" }, call())).rejects.toMatchObject({ code: "job.upstream_error" });
    await expect(backend.runAsync!({ model: "sim-video", prompt: "x", seconds: "5" }, call())).rejects.toMatchObject({
      code: "job.invalid_request",
    });
    expect(failedVideoCode({ code: "internal_error" })).toBe("job.upstream_error");
    expect(failedVideoCode(null)).toBe("job.upstream_error");
  });

  it("deletes the backend's video when the job is cancelled", async () => {
    sim = await startSimulator({ videoRenderMs: 60_000 });
    const backend = videosBackend({ baseUrl: sim.baseUrl, pollMs: 20 });
    const controller = new AbortController();
    let started!: () => void;
    const polled = new Promise<void>((r) => (started = r));
    const run = backend.runAsync!(
      { model: "sim-video", prompt: "slow" },
      call(() => started(), controller.signal),
    );
    await polled;
    controller.abort(new BackendError("job.cancelled", "cancelled"));
    await expect(run).rejects.toMatchObject({ code: "job.cancelled" });
    for (;;) {
      const list = (await (await fetch(`${sim.baseUrl}/videos`)).json()) as { data: unknown[] };
      if (list.data.length === 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
  });
});

describe("cogBackend (SRP-JOB-052, SRP-OFF-021)", () => {
  it("declares the io of the Cog model, runs a prediction and sends its PNG as an artifact", async () => {
    sim = await startSimulator({ runMs: 10 });
    const backend = cogBackend({ baseUrl: sim.url });
    const io = await backend.io!();
    expect(ioSchemaProblem(io)).toBeUndefined();
    expect(io.input).toMatchObject({ type: "object", required: ["prompt"], properties: { steps: { minimum: 1, maximum: 50 } } });
    const r = await backend.runAsync!({ model: "sim-upscaler", input: { prompt: "a lighthouse", steps: 3 } }, call());
    expect(r.output).toBe("srp-artifact:out-0.png");
    expect(r.artifacts.map((a) => [a.name, a.contentType])).toEqual([["out-0.png", "image/png"]]);
    expect([...r.artifacts[0]!.bytes.subarray(0, 4)]).toEqual([137, 80, 78, 71]);
    expect(r.usage).toMatchObject({ promptTokens: 0, completionTokens: 0, runs: 1, measured: true });
    expect(r.usage.seconds).toBeGreaterThanOrEqual(1);
    await expect(backend.probe!(AbortSignal.timeout(5000))).resolves.toBeUndefined();
  });

  it("refuses URL inputs unless allowed, and maps Cog's 422 to job.invalid_request", async () => {
    sim = await startSimulator();
    const backend = cogBackend({ baseUrl: sim.url });
    await expect(backend.runAsync!({ input: { prompt: "https://10.0.0.1/secret" } }, call())).rejects.toMatchObject({
      code: "job.invalid_request",
    });
    expect(sim.requests.length).toBe(0); // refused before the backend saw it
    await expect(backend.runAsync!({ input: { prompt: "x", steps: 0 } }, call())).rejects.toMatchObject({ code: "job.invalid_request" });
    const allowing = cogBackend({ baseUrl: sim.url, allowUrls: true });
    await expect(allowing.runAsync!({ input: { prompt: "https://example.com/a.png" } }, call())).resolves.toMatchObject({
      usage: { runs: 1 },
    });
  });

  it("reads io from an OpenAPI document with references and drops keywords outside the subset", () => {
    const io = cogIo({
      components: {
        schemas: {
          Input: {
            type: "object",
            properties: {
              mode: { allOf: [{ $ref: "#/components/schemas/mode" }], default: "fast" },
              name: { type: "string", pattern: "^a+$" },
            },
          },
          mode: { title: "mode", enum: ["fast", "slow"], type: "string", description: "An enumeration." },
          Output: { type: "array", items: { type: "string", format: "uri" } },
        },
      },
    });
    expect(io).toEqual({
      input: {
        type: "object",
        properties: { mode: { allOf: [{ $ref: "#/$defs/mode" }], default: "fast" }, name: { type: "string" } },
        $defs: { mode: { title: "mode", enum: ["fast", "slow"], type: "string", description: "An enumeration." } },
      },
      output: { type: "array", items: { type: "string", format: "uri" } },
    });
    expect(ioSchemaProblem(io!)).toBeUndefined();
    expect(cogIo({ components: { schemas: {} } })).toBeUndefined();
  });

  it("finds URL inputs at any depth", () => {
    expect(urlInInput({ a: [{ b: "HTTP://x" }] })).toBe("/a/0/b");
    expect(urlInInput({ a: "data:image/png;base64,AAAA", b: "see https://x" })).toBeUndefined();
  });

  it("takes long data: URLs and oversized outputs out as artifacts (SRP-JOB-044)", () => {
    const big = `data:image/png;base64,${Buffer.alloc(4000).toString("base64")}`;
    const small = "data:text/plain;base64,aGk=";
    const r = outputArtifacts({ images: [big, big], note: small });
    expect(r.output).toEqual({ images: ["srp-artifact:out-0.png", "srp-artifact:out-1.png"], note: small });
    expect(r.artifacts.map((a) => [a.name, a.bytes.length])).toEqual([
      ["out-0.png", 4000],
      ["out-1.png", 4000],
    ]);
    const huge = outputArtifacts({ text: "x".repeat(70_000) });
    expect(huge.output).toBe("srp-artifact:output.json");
    expect(huge.artifacts.map((a) => [a.name, a.contentType])).toEqual([["output.json", "application/json"]]);
    expect(outputArtifacts(null)).toEqual({ output: null, artifacts: [] });
  });
});
