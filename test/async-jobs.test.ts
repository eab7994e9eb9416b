/**
 * Async jobs end to end: a video through the official OpenAI client (`client.videos.create`,
 * `retrieve`, `downloadContent`), a generic run (`POST /v1/runs`, `GET /v1/jobs/{id}`), both
 * billed once at their receipt; a signed webhook verified with the `standardwebhooks`
 * library; a node killed mid-video (its own process, SIGKILL) with the job failed over to
 * another node and billed once, or failed and never billed when no other node serves it;
 * estimates equal to what admission reserves. A real SQLite ledger, real providers on the
 * model simulator's video and Cog-like run modes (simulators, not models).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { createInterface } from "node:readline";
import OpenAI from "openai";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cost, generateIdentity } from "@srp/core";
import { mp4Seconds } from "@srp/core/metering";
import { AsyncJobObject, checkConsumerBody, type Receipt } from "@srp/core/schema";
import { createHub, SqliteStore, type Hub } from "@srp/hub";
import { cogBackend, createProvider, videosBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";

const VIDEO = "sim-video";
const RUN = "sim-upscaler";
const VIDEO_PRICE = { input: "0", output: "0", second: "25000000000", run: "10000000000" };
const RUN_PRICE = { input: "0", output: "0", second: "1000000000", run: "5000000000" };
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let store: SqliteStore;
let hub: Hub;
let url: string;
let key: string;
let consumer: string;
let providerKey: string;
let sim: Simulator;
let provider: Provider;
const children: ChildProcess[] = [];

/** A provider node in its own process (killed with SIGKILL by the failover tests) serving `videoModel`. */
async function childNode(videoModel: string, renderMs: number): Promise<ChildProcess & { jobs: string[] }> {
  const child = spawn(
    process.execPath,
    [new URL("./fixtures/async-provider-child.mjs", import.meta.url).pathname, url, providerKey, String(renderMs), "300000", videoModel],
    { stdio: ["ignore", "pipe", "inherit"] },
  ) as ChildProcess & { jobs: string[] };
  child.jobs = [];
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = JSON.parse(line) as { event: string; jobId?: string };
      if (m.event === "ready") resolve();
      if (m.event === "job.start") child.jobs.push(m.jobId!);
    });
    child.once("exit", (code) => reject(new Error(`provider child exited with ${code}`)));
  });
  return child;
}

async function poll(id: string, until: (v: AsyncJobObject) => boolean, ms = 20_000): Promise<AsyncJobObject> {
  const end = Date.now() + ms;
  for (;;) {
    const res = await fetch(`${url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const view = (await res.json()) as AsyncJobObject;
    if (until(view)) return view;
    if (Date.now() > end) throw new Error(`job ${id} stayed ${view.status}`);
    await sleep(25);
  }
}

const ended = (v: AsyncJobObject) => v.status === "completed" || v.status === "failed";

beforeAll(async () => {
  store = new SqliteStore(":memory:", { signupCredits: 5_000_000n });
  hub = createHub({
    identity: generateIdentity(),
    accounts: store,
    storage: store,
    drainTimeoutMs: 2000,
    asyncJobs: { allowPrivateWebhooks: true, resumeWindowMs: 1500 },
  });
  ({ url } = await hub.listen({ port: 0 }));
  consumer = (await store.createAccount({ name: "consumer" })).id;
  key = (await store.createApiKey(consumer)).key;
  const owner = await store.createAccount({ name: "provider" });
  providerKey = (await store.createApiKey(owner.id)).key;
  // 600 kB videos: three result parts of the hub's 256 KiB.
  sim = await startSimulator({ videoRenderMs: 300, videoBytes: 600_000, runMs: 20 });
  const cog = cogBackend({ baseUrl: sim.url });
  provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: providerKey,
    reconnect: false,
    instances: [
      { backend: videosBackend({ baseUrl: sim.baseUrl, pollMs: 50 }), model: VIDEO, price: VIDEO_PRICE, maxConcurrency: 2 },
      { backend: cog, model: RUN, io: await cog.io!(), price: RUN_PRICE, maxConcurrency: 2 },
    ],
  });
  await provider.ready();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await provider?.close();
  await hub?.close();
  await sim?.close();
  await store?.close();
});

describe("async jobs: a video through the official OpenAI client", () => {
  it("is admitted 202, rises in progress, completes with its MP4 served by URL, and is billed once at its receipt", async () => {
    const before = await store.summary(consumer);
    const client = new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 });
    const created = await client.videos.create({ model: VIDEO as never, prompt: "a lighthouse at dusk", seconds: "4" });
    expect(checkConsumerBody(AsyncJobObject, created)).toBeUndefined();
    expect(created).toMatchObject({ object: "video", status: "queued", progress: 0, model: VIDEO, seconds: "4", size: "720x1280" });
    expect(created.id).toMatch(/^video_/);
    // The worst case reserved: 4 s and one run at the instance's prices.
    const worst = cost({ promptTokens: 0, completionTokens: 0, seconds: 4, runs: 1 }, VIDEO_PRICE);
    expect((created as unknown as AsyncJobObject).reserved_units).toBe(worst.toString());

    const seen: number[] = [];
    let video = created;
    while (video.status !== "completed" && video.status !== "failed") {
      await sleep(20);
      video = await client.videos.retrieve(created.id);
      seen.push(video.progress);
    }
    expect(video.status).toBe("completed");
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.some((p) => p > 0 && p < 100)).toBe(true);
    const view = video as unknown as AsyncJobObject;
    expect(checkConsumerBody(AsyncJobObject, view)).toBeUndefined();
    expect(view.progress).toBe(100);
    expect(view.expires_at).toBeGreaterThan(view.completed_at!);

    const content = await client.videos.downloadContent(created.id);
    expect(content.headers.get("content-type")).toBe("video/mp4");
    const bytes = new Uint8Array(await content.arrayBuffer());
    expect(bytes.length).toBe(600_000);
    expect(mp4Seconds(bytes)).toBe(4);
    const listed = view.artifacts.find((a) => a.name === "video")!;
    expect(listed).toMatchObject({ content_type: "video/mp4", bytes: 600_000, sha256: sha(bytes) });
    // The artifact's URL serves the same bytes.
    const byUrl = await fetch(listed.url, { headers: { authorization: `Bearer ${key}` } });
    expect(sha(new Uint8Array(await byUrl.arrayBuffer()))).toBe(listed.sha256);

    // Billed once: the receipt's cost, as shown; the balance moved by exactly that; nothing held.
    expect(view.usage).toEqual({ seconds: 4, runs: 1 });
    const stored = (await store.get(view.receipt_id!))!;
    const receipt = stored.receipt as Receipt;
    expect(receipt.usage).toMatchObject({ seconds: 4, runs: 1 });
    expect(view.cost_units).toBe(receipt.cost);
    expect(BigInt(view.cost_units)).toBe(worst);
    const after = await store.summary(consumer);
    expect(after.held).toBe(0n);
    expect(before.balance - after.balance).toBe(worst);
    expect(await store.verify()).toEqual([]);

    // The account's videos, OpenAI's list shape; deleting one forgets it and its content.
    const page = await client.videos.list();
    expect(page.data.map((v) => v.id)).toContain(created.id);
    expect(await client.videos.delete(created.id)).toMatchObject({ id: created.id, object: "video.deleted", deleted: true });
    await expect(client.videos.retrieve(created.id)).rejects.toMatchObject({ status: 404 });
  });

  it("takes the multipart form the client sends with an input_reference file, and refuses bad bodies and unknown models", async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 });
    const png = new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0])], "ref.png", { type: "image/png" });
    const created = await client.videos.create({ model: VIDEO as never, prompt: "from a reference", input_reference: png, seconds: "4" });
    expect(created.status).toBe("queued");
    expect((await poll(created.id, ended)).status).toBe("completed");
    const post = (body: unknown) =>
      fetch(`${url}/v1/videos`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await post({ model: VIDEO })).status).toBe(400);
    expect((await post({ model: VIDEO, prompt: "x", seconds: "99" })).status).toBe(400);
    expect((await post({ model: VIDEO, prompt: "x", input_reference: { image_url: "http://10.0.0.1/x.png" } })).status).toBe(400);
    expect(
      (await post({ model: VIDEO, prompt: "x", input_reference: { image_url: "https://169.254.169.254/latest/meta-data" } })).status,
    ).toBe(400);
    expect((await post({ model: VIDEO, prompt: "x", webhook_url: "https://user:pw@example.com/hook" })).status).toBe(400);
    const unknown = await post({ model: "no-such-video-model", prompt: "x" });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("job.unknown_model");
    expect((await fetch(`${url}/v1/videos`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status).toBe(
      401,
    );
  });
});

describe("async jobs: a generic run", () => {
  it("runs { model, input } on a run instance, links its file output to the artifact the hub serves, and bills runs and seconds", async () => {
    const before = await store.summary(consumer);
    const res = await fetch(`${url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: RUN, input: { prompt: "a red square", steps: 2 }, max_seconds: 30 }),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get("location")).toMatch(/^\/v1\/jobs\/run_/);
    const created = (await res.json()) as AsyncJobObject;
    expect(created).toMatchObject({ object: "srp.run", status: "queued", output: null });
    const worst = cost({ promptTokens: 0, completionTokens: 0, seconds: 30, runs: 1 }, RUN_PRICE);
    expect(created.reserved_units).toBe(worst.toString());
    const done = await poll(created.id, ended);
    expect(done.status).toBe("completed");
    expect(checkConsumerBody(AsyncJobObject, done)).toBeUndefined();
    // The simulator's output is a PNG data: URL over 4 KiB: sent as an artifact, the output names its URL (SRP-JOB-044).
    expect(done.artifacts).toHaveLength(1);
    const [artifact] = done.artifacts;
    expect(done.output).toBe(artifact!.url);
    const png = await fetch(artifact!.url, { headers: { authorization: `Bearer ${key}` } });
    expect(png.headers.get("content-type")).toBe("image/png");
    expect(sha(new Uint8Array(await png.arrayBuffer()))).toBe(artifact!.sha256);
    expect(done.usage!.runs).toBe(1);
    expect(done.usage!.seconds).toBeGreaterThanOrEqual(1);
    const billed = cost({ promptTokens: 0, completionTokens: 0, seconds: done.usage!.seconds, runs: 1 }, RUN_PRICE);
    expect(BigInt(done.cost_units)).toBe(billed);
    const after = await store.summary(consumer);
    expect(before.balance - after.balance).toBe(billed);
    expect(after.held).toBe(0n);
    // Another account's key does not see it.
    const other = await store.createAccount({ name: "other" });
    const otherKey = (await store.createApiKey(other.id)).key;
    expect((await fetch(`${url}/v1/jobs/${created.id}`, { headers: { authorization: `Bearer ${otherKey}` } })).status).toBe(404);
    expect((await fetch(artifact!.url, { headers: { authorization: `Bearer ${otherKey}` } })).status).toBe(404);
  });

  it("fails a run whose input the model refuses, billing nothing", async () => {
    const before = await store.summary(consumer);
    const res = await fetch(`${url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: RUN, input: { steps: 500 } }),
    });
    expect(res.status).toBe(202);
    const done = await poll(((await res.json()) as AsyncJobObject).id, ended);
    expect(done.status).toBe("failed");
    expect(done.error?.code).toBe("job.invalid_request");
    expect(done.cost_units).toBe("0");
    expect((await store.summary(consumer)).balance).toBe(before.balance);
  });

  it("posts the finished job to its webhook, signed so that the standardwebhooks library verifies it", async () => {
    const received: Array<{ headers: Record<string, string>; body: string }> = [];
    const server: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        received.push({ headers: req.headers as Record<string, string>, body });
        res.end("ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const res = await fetch(`${url}/v1/runs`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: RUN, input: { prompt: "hook" }, webhook_url: `http://127.0.0.1:${port}/hook` }),
      });
      const created = (await res.json()) as AsyncJobObject & { webhook_secret: string };
      expect(created.webhook_secret).toMatch(/^whsec_/);
      const done = await poll(created.id, ended);
      const end = Date.now() + 5000;
      while (received.length === 0 && Date.now() < end) await sleep(20);
      expect(received).toHaveLength(1);
      const payload = new Webhook(created.webhook_secret).verify(received[0]!.body, received[0]!.headers) as {
        type: string;
        data: AsyncJobObject;
      };
      expect(payload.type).toBe("run.completed");
      expect(payload.data).toEqual(done);
      // A forged body fails verification.
      expect(() =>
        new Webhook(created.webhook_secret).verify(received[0]!.body.replace("completed", "failed"), received[0]!.headers),
      ).toThrow();
      // The secret is given once, at creation: never in the job's view.
      expect(JSON.stringify(await poll(created.id, ended))).not.toContain("whsec_");
    } finally {
      server.close();
    }
  });
});

/** A Cog-shaped server (a stand-in, not a model) whose predictions answer at once with `output` and a stated `predict_time`. */
async function fakeCog(output: string, predictTime: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url === "/openapi.json") {
      res.setHeader("content-type", "application/json");
      return res.end(
        JSON.stringify({
          openapi: "3.0.2",
          components: { schemas: { Input: { type: "object", properties: { prompt: { type: "string" } } }, Output: { type: "string" } } },
        }),
      );
    }
    req.resume();
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ status: "succeeded", output, metrics: { predict_time: predictTime } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A provider serving `model` as one run instance of the Cog-shaped server at `cogUrl`. */
async function runNode(model: string, cogUrl: string): Promise<Provider> {
  const backend = cogBackend({ baseUrl: cogUrl });
  const node = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: providerKey,
    reconnect: false,
    instances: [{ backend, model, io: await backend.io!(), price: RUN_PRICE }],
  });
  await node.ready();
  return node;
}

describe("async jobs: hostile or careless nodes", () => {
  it("refuses a run's receipt that bills more seconds than the hub's own clock saw (SRP-ATT-027): failed, unbilled", async () => {
    const cog = await fakeCog("done", 250);
    const model = "sim-lying-run";
    const liar = await runNode(model, cog.url);
    try {
      const before = await store.summary(consumer);
      const res = await fetch(`${url}/v1/runs`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model, input: { prompt: "quick" }, max_seconds: 300 }),
      });
      const done = await poll(((await res.json()) as AsyncJobObject).id, ended);
      expect(done.status).toBe("failed");
      expect(done.error?.message).toMatch(/implausible|could not have used/);
      expect(done.cost_units).toBe("0");
      expect(done.artifacts).toEqual([]);
      const after = await store.summary(consumer);
      expect(after.balance).toBe(before.balance);
      expect(after.held).toBe(0n);
    } finally {
      await liar.close();
      await cog.close();
    }
  });

  it("serves an artifact whose type could run as a page of the hub's origin as an inert attachment", async () => {
    const page = `data:text/html;base64,${Buffer.from(`<script>alert(1)</script>${"x".repeat(5000)}`).toString("base64")}`;
    const cog = await fakeCog(page, 0.1);
    const model = "sim-html-run";
    const node = await runNode(model, cog.url);
    try {
      const res = await fetch(`${url}/v1/runs`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model, input: { prompt: "page" } }),
      });
      const done = await poll(((await res.json()) as AsyncJobObject).id, ended);
      expect(done.status).toBe("completed");
      expect(done.artifacts[0]!.content_type).toBe("text/html");
      const served = await fetch(done.artifacts[0]!.url, { headers: { authorization: `Bearer ${key}` } });
      expect(served.headers.get("content-type")).toBe("application/octet-stream");
      expect(served.headers.get("content-disposition")).toMatch(/^attachment/);
      expect(served.headers.get("x-content-type-options")).toBe("nosniff");
      expect(served.headers.get("content-security-policy")).toContain("sandbox");
      expect(sha(new Uint8Array(await served.arrayBuffer()))).toBe(done.artifacts[0]!.sha256);
    } finally {
      await node.close();
      await cog.close();
    }
  });
});

describe("async jobs: a node lost mid-job", () => {
  it("fails the video over to another node (from byte 0) and bills it once", async () => {
    const model = "sim-video-failover";
    const first = await childNode(model, 3000);
    const before = await store.summary(consumer);
    const res = await fetch(`${url}/v1/videos`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model, prompt: "slow", seconds: "8" }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as AsyncJobObject;
    await poll(id, (v) => v.progress > 0, 10_000);
    expect(first.jobs).toHaveLength(1);
    const second = await childNode(model, 200);
    first.kill("SIGKILL");
    const done = await poll(id, ended, 20_000);
    expect(done.status).toBe("completed");
    expect(second.jobs).toHaveLength(1);
    expect(done.usage).toEqual({ seconds: 8, runs: 1 });
    const billed = cost({ promptTokens: 0, completionTokens: 0, seconds: 8, runs: 1 }, VIDEO_PRICE);
    expect(BigInt(done.cost_units)).toBe(billed);
    const after = await store.summary(consumer);
    expect(before.balance - after.balance).toBe(billed);
    expect(after.held).toBe(0n);
    expect(await store.verify()).toEqual([]);
    second.kill("SIGKILL");
  });

  it("fails the job and bills nothing when no other node serves the model", async () => {
    const model = "sim-video-alone";
    const only = await childNode(model, 3000);
    const before = await store.summary(consumer);
    const res = await fetch(`${url}/v1/videos`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model, prompt: "slow", seconds: "4" }),
    });
    const { id } = (await res.json()) as AsyncJobObject;
    await poll(id, (v) => v.progress > 0, 10_000);
    only.kill("SIGKILL");
    const done = await poll(id, ended, 20_000);
    expect(done.status).toBe("failed");
    expect(done.cost_units).toBe("0");
    expect(done.artifacts).toEqual([]);
    const after = await store.summary(consumer);
    expect(after.balance).toBe(before.balance);
    expect(after.held).toBe(0n);
    expect(await store.verify()).toEqual([]);
  });
});

describe("async jobs: estimates", () => {
  it("estimates a video and a run at exactly what admission reserves", async () => {
    const estimate = async (endpoint: string, body: unknown) =>
      (await (
        await fetch(`${url}/v1/estimate`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ endpoint, body }),
        })
      ).json()) as { maximum: { units: string } };
    const video = await estimate("/v1/videos", { model: VIDEO, prompt: "x", seconds: "8" });
    expect(video.maximum.units).toBe(cost({ promptTokens: 0, completionTokens: 0, seconds: 8, runs: 1 }, VIDEO_PRICE).toString());
    const run = await estimate("/v1/runs", { model: RUN, input: { prompt: "x" } });
    expect(run.maximum.units).toBe(cost({ promptTokens: 0, completionTokens: 0, seconds: 300, runs: 1 }, RUN_PRICE).toString());
  });
});

/** A TCP relay between a node and the hub that a test can cut, as a lost network would. */
async function cuttableLink(target: string): Promise<{ url: string; upstreamBytes: () => number; cut(): void; close(): Promise<void> }> {
  const { createServer: createTcpServer, connect } = await import("node:net");
  const port = Number(new URL(target).port);
  const sockets = new Set<import("node:net").Socket>();
  let upstream = 0;
  const server = createTcpServer((client) => {
    const hubSide = connect(port, "127.0.0.1");
    sockets.add(client).add(hubSide);
    client.on("data", (d) => (upstream += d.length));
    client.pipe(hubSide).pipe(client);
    const drop = () => {
      client.destroy();
      hubSide.destroy();
    };
    client.on("error", drop).on("close", drop);
    hubSide.on("error", drop).on("close", drop);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    upstreamBytes: () => upstream,
    cut() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe("async jobs: a node's connection lost mid-job and back within the resume window", () => {
  it("resumes the job on the node's next session from the bytes the hub holds, and bills it once", async () => {
    const link = await cuttableLink(url);
    const model = "sim-video-resume";
    const resumeSim = await startSimulator({ videoRenderMs: 600, videoBytes: 4_000_000, videoModels: [model] });
    const node = createProvider({
      hub: link.url,
      identity: generateIdentity(),
      account: providerKey,
      reconnect: { initialDelayMs: 100, maxDelayMs: 200 },
      instances: [{ backend: videosBackend({ baseUrl: resumeSim.baseUrl, pollMs: 50 }), model, price: VIDEO_PRICE }],
    });
    const starts: string[] = [];
    node.on("job.start", (j: { jobId: string }) => starts.push(j.jobId));
    try {
      await node.ready();
      const before = await store.summary(consumer);
      const res = await fetch(`${url}/v1/videos`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model, prompt: "resumed", seconds: "4" }),
      });
      const { id } = (await res.json()) as AsyncJobObject;
      // Cut the link once the result stream is under way (about 1 MB of its 4 MB sent).
      const mark = link.upstreamBytes();
      const end = Date.now() + 15_000;
      while (link.upstreamBytes() - mark < 1_000_000 && Date.now() < end) await sleep(2);
      link.cut();
      const done = await poll(id, ended, 20_000);
      expect(done.status).toBe("completed");
      // One job on the node: resumed, not run again.
      expect(starts).toHaveLength(1);
      const bytes = new Uint8Array(
        await (await fetch(done.artifacts[0]!.url, { headers: { authorization: `Bearer ${key}` } })).arrayBuffer(),
      );
      expect(bytes.length).toBe(4_000_000);
      expect(sha(bytes)).toBe(done.artifacts[0]!.sha256);
      expect(mp4Seconds(bytes)).toBe(4);
      const billed = cost({ promptTokens: 0, completionTokens: 0, seconds: 4, runs: 1 }, VIDEO_PRICE);
      expect(BigInt(done.cost_units)).toBe(billed);
      const after = await store.summary(consumer);
      expect(before.balance - after.balance).toBe(billed);
      expect(after.held).toBe(0n);
      expect(await store.verify()).toEqual([]);
    } finally {
      await node.close();
      await link.close();
      await resumeSim.close();
    }
  });
});
