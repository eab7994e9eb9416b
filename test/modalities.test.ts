/**
 * Embeddings, image generation, speech and transcription through the hub with the
 * official `openai` package, each billed by its own unit on a real SQLite ledger:
 * the charge equals the countersigned receipt's cost, which equals units times price.
 */
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cost, generateIdentity, verifyReceipt } from "@srp/core";
import type { Receipt } from "@srp/core/schema";
import { createHub, SqliteStore, type Hub } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";

const CHAT = "sim-llama-3-8b";
const EMBED = "sim-embed-1";
const IMAGE = "sim-image-1";
const TTS = "sim-tts-1";
const STT = "sim-whisper-1";
/** Per 1M units: tokens, images ($0.04 an image), characters ($15 per 1M) and seconds ($0.0001 a second). */
const PRICES = {
  [EMBED]: { input: "20000", output: "0" },
  [IMAGE]: { input: "0", output: "0", image: "40000000000" },
  [TTS]: { input: "0", output: "0", character: "15000000" },
  [STT]: { input: "0", output: "0", second: "100000000" },
} as const;

let store: SqliteStore;
let hub: Hub;
let url: string;
let sim: Simulator;
let provider: Provider;
let openai: OpenAI;
let consumer: string;
let key: string;

beforeAll(async () => {
  store = new SqliteStore(":memory:");
  hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, drainTimeoutMs: 2000 });
  ({ url } = await hub.listen({ port: 0 }));
  sim = await startSimulator({ models: [{ id: CHAT }, { id: EMBED }, { id: IMAGE }, { id: TTS }, { id: STT }] });
  const owner = await store.createAccount({ name: "provider" });
  const backend = openAICompatibleBackend({ baseUrl: sim.baseUrl });
  provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: (await store.createApiKey(owner.id)).key,
    reconnect: false,
    instances: [
      { backend, model: CHAT, price: { input: "100000", output: "300000" } },
      { backend, model: EMBED, price: PRICES[EMBED], capabilities: ["embeddings"] },
      { backend, model: IMAGE, price: PRICES[IMAGE], capabilities: ["images"] },
      { backend, model: TTS, price: PRICES[TTS], capabilities: ["speech"] },
      { backend, model: STT, price: PRICES[STT], capabilities: ["transcription"] },
    ],
  });
  await provider.ready();
  const account = await store.createAccount({ name: "consumer" });
  consumer = account.id;
  key = (await store.createApiKey(account.id)).key;
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
});

afterAll(async () => {
  await provider.close();
  await hub.close();
  await sim.close();
  store.close();
});

async function receipt(id: string): Promise<Receipt> {
  const res = await fetch(`${url}/v1/receipts/${id}`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  const r = ((await res.json()) as { receipt: Receipt }).receipt;
  expect(verifyReceipt(r, { hubId: hub.id })).toEqual([]);
  return r;
}

/** Runs `call`, then checks the consumer was charged exactly the receipt's cost. */
async function charged<T>(call: () => Promise<T>): Promise<{ result: T; spent: bigint }> {
  const before = await store.summary(consumer);
  const result = await call();
  const after = await store.summary(consumer);
  expect(after.held).toBe(0n);
  return { result, spent: before.balance - after.balance };
}

type Ext = { cost_units: string; receipt_id: string };

describe("other modalities through the official openai package", () => {
  it("lists each model with its endpoint, modalities and unit prices", async () => {
    const models = (await (await fetch(`${url}/v1/models`)).json()) as {
      data: { id: string; endpoints: string[]; architecture: { modality: string }; pricing: Record<string, string> }[];
    };
    const by = Object.fromEntries(models.data.map((m) => [m.id, m]));
    expect(by[EMBED]).toMatchObject({
      endpoints: ["embeddings"],
      architecture: { modality: "text->embeddings" },
      pricing: { prompt: "0.00000002" },
    });
    expect(by[IMAGE]).toMatchObject({
      endpoints: ["images.generations"],
      architecture: { modality: "text->image" },
      pricing: { image: "0.04" },
    });
    expect(by[TTS]).toMatchObject({
      endpoints: ["audio.speech"],
      architecture: { modality: "text->audio" },
      pricing: { character: "0.000015" },
    });
    expect(by[STT]).toMatchObject({
      endpoints: ["audio.transcriptions"],
      architecture: { modality: "audio->text" },
      pricing: { second: "0.0001" },
    });
    expect(by[CHAT]!.endpoints).toEqual(["chat.completions", "messages", "responses"]);
  });

  it("embeds (the SDK's default base64 encoding and floats), billed per prompt token", async () => {
    const { result, spent } = await charged(() =>
      openai.embeddings.create({ model: EMBED, input: ["the first text", "and a second one"] }),
    );
    expect(result.data).toHaveLength(2);
    expect(result.data[0]!.embedding).toHaveLength(256);
    const norm = Math.sqrt(result.data[0]!.embedding.reduce((a, x) => a + x * x, 0));
    expect(norm).toBeCloseTo(1, 5);
    const ext = result.usage as unknown as Ext & { prompt_tokens: number };
    const r = await receipt(ext.receipt_id);
    expect(r.usage).toEqual({ promptTokens: ext.prompt_tokens, completionTokens: 0, measured: true });
    expect(BigInt(r.cost)).toBe(cost({ promptTokens: ext.prompt_tokens, completionTokens: 0 }, PRICES[EMBED]));
    expect(spent).toBe(BigInt(r.cost));
    const floats = await openai.embeddings.create({ model: EMBED, input: "the first text", encoding_format: "float", dimensions: 8 });
    expect(floats.data[0]!.embedding).toHaveLength(8);
  });

  it("generates images, billed per image", async () => {
    const { result, spent } = await charged(() =>
      openai.images.generate({ model: IMAGE, prompt: "a lighthouse at dusk", n: 2, size: "256x256" }),
    );
    expect(result.data).toHaveLength(2);
    const png = Buffer.from(result.data![0]!.b64_json!, "base64");
    expect(png.subarray(0, 8)).toEqual(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]));
    const r = await receipt((result.usage as unknown as Ext).receipt_id);
    expect(r.usage.images).toBe(2);
    expect(r.cost).toBe("80000"); // 2 images at $0.04
    expect(spent).toBe(80_000n);
  });

  it("synthesizes speech, billed per character, with the audio passed through", async () => {
    const input = "Hello from the relay, here is some speech.";
    const { result, spent } = await charged(() =>
      openai.audio.speech.create({ model: TTS, input, voice: "alloy", response_format: "wav" }),
    );
    expect(result.headers.get("content-type")).toBe("audio/wav");
    const audio = Buffer.from(await result.arrayBuffer());
    expect(audio.toString("latin1", 0, 4)).toBe("RIFF");
    expect(audio.length).toBe(44 + Math.round([...input].length * 0.02 * 8000) * 2);
    const r = await receipt(result.headers.get("x-srp-receipt")!);
    expect(r.usage.characters).toBe([...input].length);
    expect(r.cost).toBe(result.headers.get("x-srp-cost-units"));
    expect(BigInt(r.cost)).toBe(cost({ promptTokens: 0, completionTokens: 0, characters: input.length }, PRICES[TTS]));
    expect(spent).toBe(BigInt(r.cost));
  });

  it("transcribes audio from a multipart upload, billed per second", async () => {
    // Three seconds of 8 kHz 16-bit WAV, made by the simulator's speech endpoint.
    const speech = await openai.audio.speech.create({ model: TTS, input: "x".repeat(150), voice: "alloy", response_format: "wav" });
    const wav = Buffer.from(await speech.arrayBuffer());
    const file = await toFile(wav, "speech.wav", { type: "audio/wav" });
    const { result, spent } = await charged(() => openai.audio.transcriptions.create({ model: STT, file, language: "en" }));
    expect(typeof result.text).toBe("string");
    expect(result.text.length).toBeGreaterThan(0);
    const ext = (result as unknown as { usage: Ext & { type: string; seconds: number } }).usage;
    expect(ext).toMatchObject({ type: "duration", seconds: 3 });
    const r = await receipt(ext.receipt_id);
    expect(r.usage.seconds).toBe(3);
    expect(r.cost).toBe("300"); // 3 s at $0.0001
    expect(spent).toBe(300n);
    const seen = sim.requests.at(-1)!;
    expect(seen).toMatchObject({ model: STT, language: "en", file: `<file ${wav.length} bytes>` });
    const text = await openai.audio.transcriptions.create({ model: STT, file: await toFile(wav, "speech.wav"), response_format: "text" });
    expect(text).toBe(`${result.text}\n`);
  });

  it("refuses what no instance can serve, a bad body, and a short balance, billing nothing", async () => {
    const before = await store.summary(consumer);
    const noCap = await openai.embeddings.create({ model: CHAT, input: "x" }).catch((e: unknown) => e);
    expect(noCap).toBeInstanceOf(OpenAI.NotFoundError);
    expect((noCap as InstanceType<typeof OpenAI.APIError>).code).toBe("job.unknown_model");
    const tooMany = await openai.images.generate({ model: IMAGE, prompt: "x", n: 11 }).catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
    // Forms with repeated fields are refused with 400; a field named like an Object member is just a field. Never a 500.
    const form = (fields: string[][]) => {
      const f = new FormData();
      f.append("model", STT);
      f.append("file", new Blob([Buffer.alloc(64)]), "a.bin");
      for (const [k, v] of fields) f.append(k!, v!);
      return fetch(`${url}/v1/audio/transcriptions`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: f });
    };
    for (const fields of [
      [
        ["language", "en"],
        ["language[]", "x"],
      ],
      [
        ["language", "en"],
        ["language", "fr"],
      ],
    ]) {
      const res = await form(fields);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("api.invalid_body");
    }
    const odd = await form([
      ["constructor[]", "x"],
      ["__proto__", "y"],
    ]);
    expect(odd.status).toBe(200);
    const oddCost = BigInt(((await odd.json()) as { usage: { cost_units: string } }).usage.cost_units);
    const srt = await openai.audio.transcriptions
      .create({ model: STT, file: await toFile(Buffer.alloc(100), "a.bin"), response_format: "srt" })
      .catch((e: unknown) => e);
    expect(srt).toBeInstanceOf(OpenAI.BadRequestError);
    // Another request of the account holds all but 10,000 units: one image (40,000) is more than it can spend.
    const summary = await store.summary(consumer);
    const hold = await store.reserve(consumer, summary.balance - 10_000n);
    expect(hold.ok).toBe(true);
    const refused = await openai.images.generate({ model: IMAGE, prompt: "x", n: 1 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(402);
    expect((refused as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      code: "billing.insufficient_credits",
      required: "40000",
      available: "10000",
    });
    await store.release((hold as { reservationId: string }).reservationId, "test");
    expect((await store.summary(consumer)).balance).toBe(before.balance - oddCost);
    expect(await store.verify()).toEqual([]);
  });
});
