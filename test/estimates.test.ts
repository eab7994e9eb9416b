/**
 * `POST /v1/estimate` for every surface (SRP-BIL-018): for each endpoint, the estimate's
 * `maximum` of a body is exactly what that endpoint's admission reserves for the same body,
 * read from the consumer's ledger (its `reserve` entries) after a real request through a
 * real hub on a SQLite ledger, served by a provider node in front of the model simulator.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { wavSeconds } from "@srp/core/metering";
import { createHub, SqliteStore, type Hub } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";

const CHAT = "sim-llama-3-8b";
const DEAR = "sim-dear-chat";
const EMBED = "sim-embed-1";
const IMAGE = "sim-image-1";
const TTS = "sim-tts-1";
const STT = "sim-whisper-1";

let store: SqliteStore;
let hub: Hub;
let url: string;
let sim: Simulator;
let provider: Provider;

beforeAll(async () => {
  store = new SqliteStore(":memory:", { signupCredits: 10_000_000n });
  hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, drainTimeoutMs: 2000 });
  ({ url } = await hub.listen({ port: 0 }));
  sim = await startSimulator({ models: [{ id: CHAT }, { id: DEAR }, { id: EMBED }, { id: IMAGE }, { id: TTS }, { id: STT }] });
  const owner = await store.createAccount({ name: "provider" });
  const backend = openAICompatibleBackend({ baseUrl: sim.baseUrl, apis: ["completions"] });
  provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: (await store.createApiKey(owner.id)).key,
    reconnect: false,
    instances: [
      { backend, model: CHAT, price: { input: "100000", output: "300000" }, capabilities: ["chat", "stream", "completions"] },
      { backend, model: DEAR, price: { input: "200000", output: "900000" } },
      { backend, model: EMBED, price: { input: "20000", output: "0" }, capabilities: ["embeddings"] },
      { backend, model: IMAGE, price: { input: "0", output: "0", image: "40000000000" }, capabilities: ["images"] },
      { backend, model: TTS, price: { input: "0", output: "0", character: "15000000" }, capabilities: ["speech"] },
      { backend, model: STT, price: { input: "0", output: "0", second: "100000000" }, capabilities: ["transcription"] },
    ],
  });
  await provider.ready();
});

afterAll(async () => {
  await provider.close();
  await hub.close();
  await sim.close();
  expect(await store.verify()).toEqual([]);
  store.close();
});

interface EstimateAnswer {
  object: string;
  endpoint?: string;
  model: string | null;
  maximum: { units: string; usd: string };
  expected: { units: string; usd: string };
  discount_bps: number;
  basis: Record<string, unknown>;
}

async function estimate(endpoint: string, body: Record<string, unknown>): Promise<EstimateAnswer> {
  const res = await fetch(`${url}/v1/estimate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ endpoint, body }),
  });
  const answer = (await res.json()) as EstimateAnswer;
  expect(res.status, JSON.stringify(answer)).toBe(200);
  expect(answer).toMatchObject({ object: "srp.estimate", endpoint });
  expect(BigInt(answer.maximum.units)).toBeGreaterThan(0n);
  expect(BigInt(answer.expected.units)).toBeLessThanOrEqual(BigInt(answer.maximum.units));
  return answer;
}

/** A new consumer, `send` run with its key; then what its ledger shows reserved (the sum of its `reserve` entries). */
async function reservedBy(send: (key: string) => Promise<Response>): Promise<bigint> {
  const account = await store.createAccount({ name: "consumer" });
  const { key } = await store.createApiKey(account.id);
  const res = await send(key);
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  await res.arrayBuffer();
  const history = await store.history(account.id, 500);
  const reserves = history.filter((h) => h.kind === "reserve");
  expect(reserves.length).toBeGreaterThan(0);
  return reserves.reduce((sum, h) => sum - h.amount, 0n);
}

const post = (path: string, body: Record<string, unknown>) => (key: string) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

const ask = [{ role: "user", content: "Tell me about spare capacity." }];

/** Each JSON endpoint with a body: the estimate's maximum is what its admission reserved. */
const CASES: Array<[string, string, Record<string, unknown>]> = [
  ["chat completions", "/v1/chat/completions", { model: CHAT, messages: ask, max_tokens: 12 }],
  ["chat completions without an output limit (the largest context)", "/v1/chat/completions", { model: CHAT, messages: ask }],
  [
    "chat completions with fallback models (the dearest served)",
    "/v1/chat/completions",
    { models: [CHAT, DEAR], messages: ask, max_tokens: 9 },
  ],
  ["Messages", "/v1/messages", { model: CHAT, max_tokens: 16, system: "Be brief.", messages: ask }],
  ["Responses", "/v1/responses", { model: CHAT, input: "Tell me about spare capacity.", instructions: "Be brief.", max_output_tokens: 20 }],
  ["legacy completions", "/v1/completions", { model: CHAT, prompt: "def fib(n):", max_tokens: 8, n: 2 }],
  ["embeddings", "/v1/embeddings", { model: EMBED, input: ["the first text", "and a second one"] }],
  ["image generation", "/v1/images/generations", { model: IMAGE, prompt: "a lighthouse at dusk", n: 2, size: "256x256" }],
  ["speech", "/v1/audio/speech", { model: TTS, input: "Hello from the relay.", voice: "alloy", response_format: "wav" }],
];

describe("POST /v1/estimate for every surface: the maximum is exactly what admission reserves", () => {
  it.each(CASES)("%s", async (_name, endpoint, body) => {
    const est = await estimate(endpoint, body);
    expect(await reservedBy(post(endpoint, body))).toBe(BigInt(est.maximum.units));
  });

  it("chat completions: the endpoint form and the chat form agree", async () => {
    const body = { model: CHAT, messages: ask, max_tokens: 12 };
    const est = await estimate("/v1/chat/completions", body);
    const legacy = (await (
      await fetch(`${url}/v1/estimate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    ).json()) as EstimateAnswer;
    expect(legacy.maximum).toEqual(est.maximum);
    // The chat form is estimated as the chat completions endpoint, and says so.
    expect(legacy.endpoint).toBe("/v1/chat/completions");
  });

  it("transcription: a JSON stand-in with the audio's duration (a WAV) or its size (any other file)", async () => {
    // Three seconds of 8 kHz 16-bit WAV, made by the simulator's speech endpoint.
    const speech = await post("/v1/audio/speech", { model: TTS, input: "x".repeat(150), voice: "alloy", response_format: "wav" })(
      (await store.createApiKey((await store.createAccount({ name: "speaker" })).id)).key,
    );
    const wav = new Uint8Array(await speech.arrayBuffer());
    const upload = (audio: Uint8Array, name: string) => (key: string) => {
      const form = new FormData();
      form.append("model", STT);
      form.append("language", "en");
      form.append("file", new Blob([audio]), name);
      return fetch(`${url}/v1/audio/transcriptions`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: form });
    };
    const byDuration = await estimate("/v1/audio/transcriptions", { model: STT, language: "en", duration_seconds: wavSeconds(wav) });
    expect(byDuration.basis.maximum).toMatchObject({ seconds: 4 });
    expect(await reservedBy(upload(wav, "speech.wav"))).toBe(BigInt(byDuration.maximum.units));
    const other = new Uint8Array(2500);
    const bySize = await estimate("/v1/audio/transcriptions", { model: STT, file_bytes: other.length });
    expect(await reservedBy(upload(other, "a.bin"))).toBe(BigInt(bySize.maximum.units));

    const res = await fetch(`${url}/v1/estimate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ endpoint: "/v1/audio/transcriptions", body: { model: STT } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("api.invalid_body");
  });

  it("batches: the sum of the items' maximums, each item's shown, at the batch discount", async () => {
    const items = [
      { custom_id: "a", url: "/v1/chat/completions", body: { model: CHAT, messages: ask, max_tokens: 10 } },
      { custom_id: "b", url: "/v1/messages", body: { model: CHAT, max_tokens: 7, messages: ask } },
      { custom_id: "c", url: "/v1/embeddings", body: { model: EMBED, input: "embed me" } },
      { custom_id: "d", url: "/v1/images/generations", body: { model: IMAGE, prompt: "a boat", n: 1 } },
    ];
    const est = await estimate("/v1/batch", { requests: items });
    expect(est.model).toBeNull();
    expect(est.discount_bps).toBe(1000);
    const each = (est.basis.items as { custom_id: string; maximum: { units: string } }[]).map((i) => BigInt(i.maximum.units));
    expect(each).toHaveLength(4);
    expect(each.reduce((a, b) => a + b, 0n)).toBe(BigInt(est.maximum.units));
    // Each item's maximum is what its endpoint alone would reserve.
    for (const [i, item] of items.entries()) expect(each[i]).toBe(BigInt((await estimate(item.url, item.body)).maximum.units));
    let batchId = "";
    let owner = "";
    const reserved = await reservedBy(async (key) => {
      const res = await post("/v1/batch", { requests: items })(key);
      batchId = ((await res.clone().json()) as { id: string }).id;
      owner = key;
      return res;
    });
    expect(reserved).toBe(BigInt(est.maximum.units));
    // The batch ends before the hub closes (its items settle or release).
    for (let i = 0; i < 500; i++) {
      const view = (await (await fetch(`${url}/v1/jobs/${batchId}`, { headers: { authorization: `Bearer ${owner}` } })).json()) as {
        status: string;
      };
      if (view.status !== "queued" && view.status !== "in_progress") break;
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  it("refuses an unknown endpoint with 400 api.invalid_body naming the endpoints it estimates, and a model nobody serves with 404", async () => {
    const res = await fetch(`${url}/v1/estimate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ endpoint: "/v1/nope", body: { model: CHAT } }),
    });
    expect(res.status).toBe(400);
    const error = ((await res.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe("api.invalid_body");
    for (const e of ["/v1/messages", "/v1/embeddings", "/v1/audio/transcriptions", "/v1/batch"]) expect(error.message).toContain(e);
    const unknown = await fetch(`${url}/v1/estimate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ endpoint: "/v1/embeddings", body: { model: "nobody-serves-this", input: "x" } }),
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("job.unknown_model");
  });
});
