/**
 * `srp-provider setup` and `start` for async jobs, as a user runs them: real child processes
 * of the built CLI against a real hub (SQLite ledger) and the model simulator's Cog-like run
 * mode and OpenAI-Videos-shaped video mode (simulators, not models). Setup finds both at a
 * `--backend-url` (or `SRP_BACKEND_URL`), writes `run` and `video` instances to
 * `provider.json`, the daemon offers them, and a consumer's `POST /v1/runs` and
 * `POST /v1/videos` complete and are billed.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { createHub, SqliteStore, type Hub } from "@srp/hub";
import { startSimulator, type Simulator } from "@srp/provider/simulator";
import type { CliRun } from "./helpers.js";

const CLI = new URL("../packages/srp-provider/dist/cli.js", import.meta.url).pathname;

let store: SqliteStore | undefined;
let hub: Hub | undefined;
let sim: Simulator | undefined;
let dir: string | undefined;

afterEach(async () => {
  if (dir) await cli({}, "stop", "--dir", dir);
  await hub?.close();
  await sim?.close();
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  hub = undefined;
  sim = undefined;
  store = undefined;
  dir = undefined;
});

/** Runs the built CLI as a child process with extra environment (bounded: 60 s). */
function cli(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface JobView {
  id: string;
  status: string;
  artifacts: { url: string; content_type: string; sha256: string }[];
  cost_units: string;
  usage?: { seconds: number; runs: number };
  error: { code: string; message: string } | null;
}

async function startNet() {
  store = new SqliteStore(":memory:", { signupCredits: 5_000_000n });
  hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, drainTimeoutMs: 2000, reconnectAfterMs: 100 });
  const { url } = await hub.listen({ port: 0 });
  const consumer = (await store.createAccount({ name: "consumer" })).id;
  const consumerKey = (await store.createApiKey(consumer)).key;
  const providerKey = (await store.createApiKey((await store.createAccount({ name: "provider" })).id)).key;
  const poll = async (id: string, ms = 30_000): Promise<JobView> => {
    let view: JobView | undefined;
    await until(
      async () => {
        const res = await fetch(`${url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${consumerKey}` } });
        expect(res.status).toBe(200);
        view = (await res.json()) as JobView;
        return view.status === "completed" || view.status === "failed";
      },
      ms,
      `job ${id} to end`,
    );
    return view!;
  };
  const post = (path: string, body: unknown) =>
    fetch(`${url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${consumerKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  return { url, consumer, consumerKey, providerKey, poll, post };
}

it("sets up a node from a detected Cog server and a Videos API server, runs it as a daemon, and completes a run and a video", async () => {
  const net = await startNet();
  sim = await startSimulator({ runMs: 20, videoRenderMs: 200, videoBytes: 100_000 });
  dir = mkdtempSync(join(tmpdir(), "srp-provider-async-"));

  const setup = await cli(
    {},
    "setup",
    "--hub",
    net.url,
    "--dir",
    dir,
    "--account-key",
    net.providerKey,
    "--no-detect",
    "--no-probe",
    "--backend-url",
    sim.url,
    "--run-model",
    "sim-upscaler",
    "--video-model",
    "sim-video",
    "--price",
    "sim-video=second=30000000000,run=5000000000",
  );
  expect(setup.stderr).toBe("");
  expect(setup.status).toBe(0);
  expect(setup.stdout).toContain(`backend      cog at ${sim.url}: "Cog (SRP simulator)" (health READY)`);
  expect(setup.stdout).toContain(`backend      videos at ${sim.url}/v1`);
  expect(setup.stdout).toContain(
    "model        sim-upscaler  run  concurrency 1  price second=1000000000,run=10000000000  input prompt,steps",
  );
  expect(setup.stdout).toContain("model        sim-video  video  concurrency 2  price second=30000000000,run=5000000000");
  expect(setup.stdout).not.toContain("names no model found");
  const config = JSON.parse(readFileSync(join(dir, "provider.json"), "utf8")) as { instances: Record<string, unknown>[] };
  const run = config.instances.find((i) => i.model === "sim-upscaler");
  const video = config.instances.find((i) => i.model === "sim-video");
  expect(run).toMatchObject({
    backend: { kind: "cog", baseUrl: sim.url },
    price: { input: "0", output: "0", second: "1000000000", run: "10000000000" },
    maxConcurrency: 1,
    capabilities: ["run"],
    io: { input: { type: "object", required: ["prompt"] }, output: { type: "string", format: "uri" } },
  });
  expect(video).toMatchObject({
    backend: { kind: "videos", baseUrl: `${sim.url}/v1` },
    price: { input: "0", output: "0", second: "30000000000", run: "5000000000" },
    maxConcurrency: 2,
    capabilities: ["video"],
  });
  expect(video!.io).toBeUndefined();

  const started = await cli({}, "start", "--dir", dir);
  expect(started.status).toBe(0);
  const offered = () => new Set(hub!.router.all().map((i) => i.instance.model));
  await until(() => offered().has("sim-upscaler") && offered().has("sim-video"), 15_000, "the daemon to offer its async instances");

  const runRes = await net.post("/v1/runs", { model: "sim-upscaler", input: { prompt: "a lighthouse", steps: 2 }, max_seconds: 30 });
  expect(runRes.status).toBe(202);
  const runJob = (await runRes.json()) as JobView;
  const runDone = await net.poll(runJob.id);
  expect(runDone.status, JSON.stringify(runDone.error)).toBe("completed");
  expect(runDone.artifacts).toHaveLength(1);
  expect(runDone.artifacts[0]!.content_type).toBe("image/png");
  expect(runDone.usage).toMatchObject({ runs: 1 });
  expect(BigInt(runDone.cost_units)).toBeGreaterThanOrEqual(10_000n); // $0.01 a run, plus seconds

  const videoRes = await net.post("/v1/videos", { model: "sim-video", prompt: "a lighthouse at dusk", seconds: "4" });
  expect(videoRes.status).toBe(202);
  const videoJob = (await videoRes.json()) as JobView;
  const videoDone = await net.poll(videoJob.id);
  expect(videoDone.status, JSON.stringify(videoDone.error)).toBe("completed");
  expect(videoDone.artifacts.map((a) => a.content_type)).toEqual(["video/mp4"]);
  // 4 s at $0.03 a second and $0.005 a run.
  expect(videoDone.cost_units).toBe((4n * 30_000n + 5_000n).toString());

  const logs = await cli({}, "logs", "--dir", dir, "-n", "200");
  expect(logs.stdout).toContain('"event":"job.end"');
  expect(logs.stdout).not.toContain("io.unreachable");
  const stopped = await cli({}, "stop", "--dir", dir);
  expect(stopped.stdout).toMatch(/stopped \(pid \d+\)/);
  await until(() => hub!.router.all().length === 0, 5000, "the node to leave the hub");
}, 90_000);

it("takes servers from SRP_BACKEND_URL, and says what a Cog or Videos server needs when no model is named", async () => {
  const net = await startNet();
  sim = await startSimulator();
  dir = mkdtempSync(join(tmpdir(), "srp-provider-async-"));
  const env = { SRP_BACKEND_URL: sim.url };
  const unnamed = await cli(env, "setup", "--hub", net.url, "--dir", dir, "--account-key", net.providerKey, "--no-detect", "--no-probe");
  expect(unnamed.status).toBe(0); // the simulator's text models are offered
  expect(unnamed.stdout).toContain(
    `note         cog at ${sim.url}: its /openapi.json (title "Cog (SRP simulator)") names no model; name it with --run-model NAME`,
  );
  expect(unnamed.stdout).toContain(`note         videos at ${sim.url}/v1: name the models it makes with --video-model NAME`);
  const kinds = (
    JSON.parse(readFileSync(join(dir, "provider.json"), "utf8")) as { instances: { backend: { kind: string } }[] }
  ).instances.map((i) => i.backend.kind);
  expect(kinds).not.toContain("cog");
  expect(kinds).not.toContain("videos");

  const named = await cli(
    env,
    "setup",
    "--hub",
    net.url,
    "--dir",
    dir,
    "--account-key",
    net.providerKey,
    "--no-detect",
    "--no-probe",
    "--run-model",
    `${sim.url}=sim-upscaler`,
  );
  expect(named.status).toBe(0);
  expect(named.stdout).toContain("model        sim-upscaler  run");

  const bad = await cli(env, "setup", "--hub", net.url, "--dir", dir, "--account-key", net.providerKey, "--run-model", "two words");
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toContain("--run-model two words");
}, 60_000);
