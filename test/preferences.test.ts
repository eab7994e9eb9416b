/**
 * Per-request routing preferences (`provider`: sort, max_price, order, only, ignore,
 * allow_fallbacks), `model: "auto"`, and the OpenAPI document made from the schemas the
 * hub validates with.
 */
import Ajv2020 from "ajv/dist/2020.js";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Provider } from "@srp/provider";
import type { Simulator } from "@srp/provider/simulator";
import { KEY, MODEL, startNet, type Net } from "./helpers.js";

let net: Net;
let cheap: Provider;
let dear: Provider;
let slowSim: Simulator;
let openai: OpenAI;

/** The node that served a job (from its receipt). */
async function servedBy(receiptId: string): Promise<string> {
  const r = await fetch(`${net.url}/v1/receipts/${receiptId}`, { headers: { authorization: `Bearer ${KEY}` } });
  return ((await r.json()) as { receipt: { nodeId: string } }).receipt.nodeId;
}

async function chat(
  extra: Record<string, unknown>,
  model = MODEL,
): Promise<{ status: number; node?: string; model?: string; body: Record<string, unknown> }> {
  const res = await fetch(`${net.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model, max_tokens: 4, messages: [{ role: "user", content: "hi" }], ...extra }),
  });
  const body = (await res.json()) as Record<string, unknown> & { usage?: { receipt_id?: string }; model?: string };
  if (res.status !== 200) return { status: res.status, body };
  return { status: 200, node: await servedBy(body.usage!.receipt_id!), model: body.model!, body };
}

beforeAll(async () => {
  net = await startNet();
  const fast = await net.sim();
  slowSim = await net.sim({ latencyMs: 150 });
  cheap = await net.addProvider(fast, { price: { input: "100000", output: "200000" }, tier: "gpu" });
  dear = await net.addProvider(slowSim, { price: { input: "500000", output: "900000" }, tier: "key" });
  // A second, cheaper model with the same capabilities, for model "auto".
  const other = await net.sim({ models: [{ id: "sim-tiny-1" }] });
  await net.addProvider(other, { model: "sim-tiny-1", price: { input: "10000", output: "20000" } });
  openai = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await net.close();
});

describe("routing preferences", () => {
  it("sort: price always takes the cheapest instance", async () => {
    for (let i = 0; i < 6; i++) expect((await chat({ provider: { sort: "price" } })).node).toBe(cheap.nodeId);
  });

  it("only and ignore select by node id or supply tier", async () => {
    for (let i = 0; i < 4; i++) {
      expect((await chat({ provider: { only: [dear.nodeId] } })).node).toBe(dear.nodeId);
      expect((await chat({ provider: { ignore: [dear.nodeId] } })).node).toBe(cheap.nodeId);
      expect((await chat({ provider: { only: ["key"] } })).node).toBe(dear.nodeId);
      expect((await chat({ provider: { ignore: ["key"] } })).node).toBe(cheap.nodeId);
    }
    const none = await chat({ provider: { only: ["credits"] } });
    expect(none.status).toBe(404);
    expect(none.body).toMatchObject({ error: { code: "job.unknown_model" } });
  });

  it("order prefers its first selector that can serve; max_price caps the price in USD per 1M tokens", async () => {
    for (let i = 0; i < 4; i++) expect((await chat({ provider: { order: [dear.nodeId, cheap.nodeId] } })).node).toBe(dear.nodeId);
    // 0.3 USD per 1M prompt tokens = 300000 units: only the cheap instance (100000) qualifies.
    for (let i = 0; i < 4; i++) expect((await chat({ provider: { max_price: { prompt: "0.3", completion: 1 } } })).node).toBe(cheap.nodeId);
    const tooLow = await chat({ provider: { max_price: { prompt: 0.01 } } });
    expect(tooLow.status).toBe(404);
    const bad = await chat({ provider: { max_price: { prompt: "cheap" } } });
    expect(bad.status).toBe(400);
    expect((await chat({ provider: { sort: "fastest" } })).status).toBe(400);
  });

  it("allow_fallbacks: false with an order never falls back to another instance", async () => {
    slowSim.setFault({ kind: "status", status: 500 }, 1);
    const strict = await chat({ provider: { order: [dear.nodeId], allow_fallbacks: false } });
    expect(strict.status).toBe(502);
    const nobody = await chat({ provider: { order: ["no-such-node"], allow_fallbacks: false } });
    expect(nobody.status).toBe(404);
    slowSim.setFault({ kind: "status", status: 500 }, 1);
    const lenient = await chat({ provider: { order: [dear.nodeId] } });
    expect(lenient.node).toBe(cheap.nodeId);
  });

  it("sort: latency prefers the instance with the quickest first output once measured", async () => {
    // Both are measured by now (earlier tests used both); the slow one waits 150 ms before answering.
    for (let i = 0; i < 5; i++) expect((await chat({ provider: { sort: "latency" } })).node).toBe(cheap.nodeId);
  });

  it('model "auto" picks the cheapest healthy model that meets the request', async () => {
    const r = await openai.chat.completions.create({ model: "auto", max_tokens: 4, messages: [{ role: "user", content: "hi" }] });
    expect(r.model).toBe("sim-tiny-1");
    const withOrder = await chat({ provider: { order: [dear.nodeId] } }, "auto");
    expect(withOrder.model).toBe(MODEL);
    expect(withOrder.node).toBe(dear.nodeId);
  });
});

describe("OpenAPI document", () => {
  it("is served at /openapi.json, linked from discovery, and its schemas are the ones the hub validates with", async () => {
    const disco = (await (await fetch(`${net.url}/.well-known/srp.json`)).json()) as { consumer: { openapi: string; surfaces: string[] } };
    expect(disco.consumer.openapi).toBe(`${net.url}/openapi.json`);
    expect(disco.consumer.surfaces).toEqual(expect.arrayContaining(["anthropic.messages", "openai.embeddings"]));
    const doc = (await (await fetch(disco.consumer.openapi)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown> };
      servers: { url: string }[];
    };
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers[0]!.url).toBe(net.url);
    for (const p of [
      "/v1/chat/completions",
      "/v1/messages",
      "/v1/messages/count_tokens",
      "/v1/embeddings",
      "/v1/images/generations",
      "/v1/audio/speech",
      "/v1/audio/transcriptions",
      "/v1/batch",
      "/v1/jobs/{id}",
      "/v1/models",
    ]) {
      expect(doc.paths[p]).toBeDefined();
    }
    // Every component compiles as JSON Schema 2020-12, and the chat schema refuses what the hub refuses.
    const ajv = new Ajv2020({ strict: false });
    for (const s of Object.values(doc.components.schemas)) ajv.compile(s as object);
    const chatSchema = ajv.compile(doc.components.schemas.ChatCompletionRequest as object);
    const empty = { model: MODEL, messages: [] };
    expect(chatSchema(empty)).toBe(false);
    const res = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify(empty),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/^\/messages: /);
    expect(chatSchema({ model: MODEL, messages: [{ role: "user", content: "x" }], provider: { sort: "price" }, temperature: 0.2 })).toBe(
      true,
    );
  });
});
