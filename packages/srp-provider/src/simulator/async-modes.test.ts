import { createHash } from "node:crypto";
import OpenAI from "openai";
import { mp4Seconds } from "@srp/core/metering";
import { ioSchemaProblem } from "@srp/core";
import { afterEach, describe, expect, it } from "vitest";
import { startSimulator, type Simulator } from "./index.js";

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("simulator: slow video mode (OpenAI Videos API shape)", () => {
  it("creates, renders with rising progress, completes and serves an MP4 to the official OpenAI client", async () => {
    sim = await startSimulator({ videoRenderMs: 400, videoBytes: 300_000 });
    const client = new OpenAI({ apiKey: "sk-sim", baseURL: sim.baseUrl, maxRetries: 0 });
    const created = await client.videos.create({ model: "sim-video" as never, prompt: "a lighthouse at dusk", seconds: "8" });
    expect(created).toMatchObject({ object: "video", status: "queued", progress: 0, model: "sim-video", seconds: "8", size: "720x1280" });
    expect(created.id).toMatch(/^video_/);
    const seen: Array<{ status: string; progress: number }> = [];
    let video = created;
    while (video.status !== "completed") {
      await new Promise((r) => setTimeout(r, 20));
      video = await client.videos.retrieve(created.id);
      seen.push({ status: video.status, progress: video.progress });
    }
    const progress = seen.map((s) => s.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(seen.some((s) => s.status === "in_progress")).toBe(true);
    expect(video.progress).toBe(100);
    expect(video.completed_at).toBeTypeOf("number");
    const response = await client.videos.downloadContent(created.id);
    expect(response.headers.get("content-type")).toBe("video/mp4");
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect(bytes.length).toBe(300_000);
    expect(mp4Seconds(bytes)).toBe(8);
    // Deterministic: the same video's content twice is the same bytes.
    const again = new Uint8Array(await (await client.videos.downloadContent(created.id)).arrayBuffer());
    expect(sha(again)).toBe(sha(bytes));

    const page = await client.videos.list({ order: "asc" });
    expect(page.data.map((v) => v.id)).toEqual([created.id]);
    const deleted = await client.videos.delete(created.id);
    expect(deleted).toMatchObject({ id: created.id, object: "video.deleted", deleted: true });
    await expect(client.videos.retrieve(created.id)).rejects.toMatchObject({ status: 404 });
  });

  it("refuses bad bodies and unknown models, and answers content only once completed", async () => {
    sim = await startSimulator({ videoRenderMs: 60_000 });
    const post = (body: unknown) =>
      fetch(`${sim!.baseUrl}/videos`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post({ model: "sim-video" })).status).toBe(400);
    expect((await post({ model: "sim-video", prompt: "x", seconds: 5 })).status).toBe(400);
    expect((await post({ model: "sim-video", prompt: "x", size: "10x10" })).status).toBe(400);
    expect((await post({ model: "gpt-4o", prompt: "x" })).status).toBe(404);
    const form = new FormData();
    form.set("model", "sim-video");
    expect((await fetch(`${sim.baseUrl}/videos`, { method: "POST", body: form })).status).toBe(400);
    form.set("prompt", "as a form");
    form.set("seconds", "12");
    const viaForm = await fetch(`${sim.baseUrl}/videos`, { method: "POST", body: form });
    expect(viaForm.status).toBe(200);
    expect(await viaForm.json()).toMatchObject({ status: "queued", seconds: "12", prompt: "as a form" });
    expect(
      (await fetch(`${sim.baseUrl}/videos`, { method: "POST", headers: { "content-type": "application/json" }, body: "[1]" })).status,
    ).toBe(400);
    const video = (await (await post({ model: "sim-video", prompt: "slow" })).json()) as { id: string };
    const early = await fetch(`${sim.baseUrl}/videos/${video.id}/content`);
    expect(early.status).toBe(400);
    expect((await fetch(`${sim.baseUrl}/videos/video_nope`)).status).toBe(404);
  });

  it("fails a video with moderation_blocked under the video_failed fault", async () => {
    sim = await startSimulator();
    sim.setFault({ kind: "video_failed" }, 1);
    const client = new OpenAI({ apiKey: "sk-sim", baseURL: sim.baseUrl, maxRetries: 0 });
    const created = await client.videos.create({ model: "sim-video" as never, prompt: "refused" });
    const video = await client.videos.retrieve(created.id);
    expect(video.status).toBe("failed");
    expect(video.error?.code).toBe("moderation_blocked");
    const next = await client.videos.create({ model: "sim-video" as never, prompt: "fine" });
    // Shown in progress at the first retrieve, then completed (render time 0).
    expect((await client.videos.retrieve(next.id)).status).toBe("in_progress");
    expect((await client.videos.retrieve(next.id)).status).toBe("completed");
  });
});

describe("simulator: generic run mode (Cog-like predictions)", () => {
  it("describes its input and output in /openapi.json, within the io subset once regex-free", async () => {
    sim = await startSimulator();
    const doc = (await (await fetch(`${sim.url}/openapi.json`)).json()) as {
      components: { schemas: { Input: Record<string, unknown>; Output: Record<string, unknown> } };
    };
    const { Input, Output } = doc.components.schemas;
    expect(Input).toMatchObject({ type: "object", required: ["prompt"] });
    expect(Output).toMatchObject({ type: "string", format: "uri" });
    expect(ioSchemaProblem({ input: Input, output: Output })).toBeUndefined();
    expect(await (await fetch(`${sim.url}/health-check`)).json()).toMatchObject({ status: "READY" });
  });

  it("runs a prediction synchronously and answers a PNG data URL larger than 4 KiB with predict_time", async () => {
    sim = await startSimulator({ runMs: 50 });
    const res = await fetch(`${sim.url}/predictions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: { prompt: "a lighthouse", steps: 8 } }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; output: string; metrics: { predict_time: number }; input: unknown };
    expect(body.status).toBe("succeeded");
    expect(body.input).toEqual({ prompt: "a lighthouse", steps: 8 });
    expect(body.metrics.predict_time).toBeGreaterThan(0);
    expect(body.output.startsWith("data:image/png;base64,")).toBe(true);
    expect(body.output.length).toBeGreaterThan(4096);
    const png = Buffer.from(body.output.slice("data:image/png;base64,".length), "base64");
    expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  });

  it("answers Cog's 422 for an input outside the schema", async () => {
    sim = await startSimulator();
    const run = (input: unknown) =>
      fetch(`${sim!.url}/predictions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input }),
      });
    for (const input of [
      { steps: 4 },
      { prompt: "x", steps: 0 },
      { prompt: "x", steps: 51 },
      { prompt: "x".repeat(1001) },
      { prompt: "x", seed: 1 },
    ]) {
      const res = await run(input);
      expect(res.status, JSON.stringify(input)).toBe(422);
      expect(((await res.json()) as { detail: unknown[] }).detail.length).toBeGreaterThan(0);
    }
  });
});
