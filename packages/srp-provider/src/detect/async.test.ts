/** Setup for async jobs: finding Cog and Videos API servers, planning their instances, and the node config that runs them. */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { startSimulator, type Simulator } from "../simulator/index.js";
import {
  detectAsyncBackends,
  instancesFromConfig,
  nodeKeyStore,
  readNodeConfig,
  refreshIo,
  writeNodeConfig,
  type NodeConfig,
} from "../node-config.js";
import {
  DEFAULT_RUN_PRICE,
  DEFAULT_VIDEO_PRICE,
  describeInstance,
  parseAsyncModelFlag,
  parsePriceFlag,
  planAsyncInstances,
} from "../supply.js";
import { cogModelName, detectCog, detectVideos, parseCogHealth, parseCogOpenApi, parseVideoList, type DetectedCog } from "./async.js";

let sim: Simulator | undefined;
let server: Server | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

/** A server answering fixed JSON per path (404 elsewhere). */
async function fixed(routes: Record<string, unknown>): Promise<string> {
  server = createServer((req, res) => {
    const body = routes[(req.url ?? "/").split("?")[0]!];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const COG_DOC = {
  openapi: "3.0.2",
  info: { title: "Cog", version: "0.1.0" },
  paths: { "/predictions": { post: {} } },
  components: {
    schemas: {
      Input: { type: "object", properties: { image: { $ref: "#/components/schemas/Img" } }, required: ["image"] },
      Img: { type: "string", format: "uri", pattern: "^data:" },
      Output: { type: "string", format: "uri" },
    },
  },
};

describe("parsing what async servers answer", () => {
  it("recognises a Cog document by its /predictions path and Input schema, with refs in $defs and regexes dropped", () => {
    const doc = parseCogOpenApi(COG_DOC);
    expect(doc?.title).toBe("Cog");
    expect(doc?.io).toEqual({
      input: {
        type: "object",
        properties: { image: { $ref: "#/$defs/Img" } },
        required: ["image"],
        $defs: { Img: { type: "string", format: "uri" } },
      },
      output: { type: "string", format: "uri" },
    });
    // vLLM and other FastAPI apps serve /openapi.json too: no /predictions, no Input.
    expect(parseCogOpenApi({ ...COG_DOC, paths: { "/v1/chat/completions": {} } })).toBeUndefined();
    expect(parseCogOpenApi({ ...COG_DOC, components: { schemas: { ChatCompletionRequest: {} } } })).toBeUndefined();
    expect(parseCogOpenApi("nope")).toBeUndefined();
  });

  it("takes a model name from a title that names a model, never from Cog's own", () => {
    expect(cogModelName("Cog")).toBeUndefined();
    expect(cogModelName("Cog (SRP simulator)")).toBeUndefined();
    expect(cogModelName("  ")).toBeUndefined();
    expect(cogModelName(undefined)).toBeUndefined();
    expect(cogModelName("Real-ESRGAN x4")).toBe("real-esrgan-x4");
    expect(cogModelName("Cogvideo X")).toBe("cogvideo-x");
  });

  it("reads Cog's health status and recognises a Videos API list", () => {
    expect(parseCogHealth({ status: "READY", setup: {} })).toBe("READY");
    expect(parseCogHealth([])).toBeUndefined();
    expect(parseVideoList({ object: "list", data: [] })).toEqual({ seenModels: [] });
    expect(
      parseVideoList({
        object: "list",
        data: [
          { object: "video", model: "wan-2.1" },
          { object: "video", model: "wan-2.1" },
        ],
      }),
    ).toEqual({
      seenModels: ["wan-2.1"],
    });
    // A model list, LM Studio's 200 error for an unknown endpoint: not videos.
    expect(parseVideoList({ object: "list", data: [{ id: "llama", object: "model" }] })).toBeUndefined();
    expect(parseVideoList({ error: "Unexpected endpoint or method. (GET /v1/videos)" })).toBeUndefined();
  });
});

describe("finding async servers", () => {
  it("finds the simulator's Cog-like run mode and its video mode at one URL, and nothing at a plain server", async () => {
    sim = await startSimulator();
    const cog = await detectCog(sim.url);
    expect(cog).toMatchObject({ kind: "cog", baseUrl: sim.url, title: "Cog (SRP simulator)", health: "READY" });
    expect(cog?.model).toBeUndefined();
    expect(cog?.ioProblem).toBeUndefined();
    expect(cog?.io.input).toMatchObject({ type: "object", required: ["prompt"] });
    expect(await detectVideos(`${sim.url}/v1/`)).toEqual({ kind: "videos", baseUrl: `${sim.url}/v1`, seenModels: [] });
    const found = await detectAsyncBackends([sim.url, `${sim.url}/v1`], { wellKnown: false });
    expect(found.cog).toHaveLength(1);
    expect(found.videos).toHaveLength(1);

    const plain = await fixed({ "/v1/models": { object: "list", data: [{ id: "m", object: "model" }] } });
    expect(await detectAsyncBackends([plain], { wellKnown: false })).toEqual({ cog: [], videos: [] });
  });

  it("reports a Cog model whose setup failed, and one titled by its author", async () => {
    const url = await fixed({
      "/openapi.json": { ...COG_DOC, info: { title: "Real-ESRGAN" } },
      "/health-check": { status: "SETUP_FAILED" },
    });
    expect(await detectCog(url)).toMatchObject({ model: "real-esrgan", health: "SETUP_FAILED" });
  });
});

describe("planning async instances", () => {
  const cog: DetectedCog = {
    kind: "cog",
    baseUrl: "http://127.0.0.1:5000",
    title: "Cog",
    io: { input: { type: "object" }, output: {} },
    health: "READY",
  };
  const videos = { kind: "videos" as const, baseUrl: "http://127.0.0.1:9000/v1", seenModels: ["wan-2.1"] };

  it("parses --run-model and --video-model as NAME or URL=NAME", () => {
    expect(parseAsyncModelFlag("my-upscaler", "--run-model")).toEqual({ model: "my-upscaler" });
    expect(parseAsyncModelFlag("http://127.0.0.1:5001/=esrgan", "--run-model")).toEqual({ url: "http://127.0.0.1:5001", model: "esrgan" });
    expect(() => parseAsyncModelFlag("has space", "--run-model")).toThrow(/--run-model/);
    expect(() => parseAsyncModelFlag("http://x=", "--video-model")).toThrow(/--video-model/);
  });

  it("names a Cog model from --run-model, prices run instances and video instances by default or by --price", () => {
    const plan = planAsyncInstances(
      { cog: [cog], videos: [videos] },
      {
        runModels: [{ model: "upscaler" }],
        videoModels: [{ model: "wan-2.1" }, { url: "http://127.0.0.1:9000", model: "wan-2.2" }],
        prices: [parsePriceFlag("upscaler=second=2000000000,run=0")],
      },
    );
    expect(plan.instances).toEqual([
      {
        backend: { kind: "cog", baseUrl: "http://127.0.0.1:5000" },
        model: "upscaler",
        price: { ...DEFAULT_RUN_PRICE, second: "2000000000", run: "0" },
        maxConcurrency: 1,
        capabilities: ["run"],
        io: cog.io,
      },
      // A name for this server's URL wins over names for every server.
      {
        backend: { kind: "videos", baseUrl: "http://127.0.0.1:9000/v1" },
        model: "wan-2.2",
        price: { ...DEFAULT_VIDEO_PRICE },
        maxConcurrency: 2,
        capabilities: ["video"],
      },
    ]);
    expect(plan.notes).toEqual([]);
    expect(describeInstance(plan.instances[0]!)).toBe("upscaler  run  concurrency 1  price second=2000000000,run=0");
  });

  it("skips what it cannot offer, saying why", () => {
    const plan = planAsyncInstances(
      {
        cog: [cog, { ...cog, baseUrl: "http://127.0.0.1:5002", health: "SETUP_FAILED", model: "broken" }],
        videos: [videos],
      },
      { runModels: [{ url: "http://127.0.0.1:7777", model: "elsewhere" }], maxConcurrency: 3 },
    );
    expect(plan.instances).toEqual([]);
    expect(plan.notes).toEqual([
      'cog at http://127.0.0.1:5000: its /openapi.json (title "Cog") names no model; name it with --run-model NAME',
      "cog at http://127.0.0.1:5002: its health check says SETUP_FAILED; skipped",
      "videos at http://127.0.0.1:9000/v1: name the models it makes with --video-model NAME (its videos name wan-2.1)",
      "warning: --run-model http://127.0.0.1:7777=elsewhere: no Cog server answers there",
    ]);
  });
});

describe("the node config of async instances", () => {
  it("stores cog and videos instances with io and prices, and builds backends that serve them", async () => {
    sim = await startSimulator({ runMs: 5 });
    const found = await detectAsyncBackends([sim.url], { wellKnown: false });
    const { instances } = planAsyncInstances(found, { runModels: [{ model: "sim-upscaler" }], videoModels: [{ model: "sim-video" }] });
    const dir = mkdtempSync(join(tmpdir(), "srp-async-config-"));
    try {
      const config: NodeConfig = { hub: "http://127.0.0.1:1", accountKeyName: "hub-account", instances };
      writeNodeConfig(dir, config);
      const read = readNodeConfig(dir);
      expect(read.instances.map((i) => [i.backend.kind, i.model])).toEqual([
        ["cog", "sim-upscaler"],
        ["videos", "sim-video"],
      ]);
      const offered = instancesFromConfig(read, nodeKeyStore(dir, generateIdentity()));
      expect(offered[0]).toMatchObject({ model: "sim-upscaler", io: instances[0]!.io, price: DEFAULT_RUN_PRICE, maxConcurrency: 1 });
      expect(offered[0]!.backend.asyncApi).toBe("runs");
      expect(offered[1]!.backend.asyncApi).toBe("videos");
      expect(offered[1]!.io).toBeUndefined();
      // The backends reach the simulator: its health check, its videos list, its model's io.
      await offered[0]!.backend.probe!(AbortSignal.timeout(2000));
      await offered[1]!.backend.probe!(AbortSignal.timeout(2000));
      expect(await refreshIo(offered)).toEqual([{ model: "sim-upscaler", outcome: "same" }]);
      // A replaced model's io is offered instead of the stored one; a server gone keeps the stored one.
      offered[0]!.io = { input: { type: "object" }, output: {} };
      expect(await refreshIo(offered)).toEqual([{ model: "sim-upscaler", outcome: "updated" }]);
      expect(offered[0]!.io).toEqual(instances[0]!.io);
      await sim.close();
      sim = undefined;
      const gone = await refreshIo(offered, 1000);
      expect(gone).toMatchObject([{ model: "sim-upscaler", outcome: "unreachable" }]);
      expect(offered[0]!.io).toEqual(instances[0]!.io);
      delete offered[0]!.io;
      await expect(refreshIo(offered, 1000)).rejects.toThrow(/provider.json has none/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
