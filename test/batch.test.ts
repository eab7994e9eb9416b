/**
 * Batches: 50 mixed jobs in one call, one atomic reservation, a 10 % discount on every
 * item's charge, per-item results and costs, failed items refunded, results forgotten
 * after the retention time. A real SQLite ledger, real providers on the simulator; the
 * batches kept in the SQLite store (as every process of a hub shares them) and in memory.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cost, generateIdentity } from "@srp/core";
import { BatchObject, checkConsumerBody, type Receipt } from "@srp/core/schema";
import { createHub, MemoryBatchStore, SqliteStore, type Hub } from "@srp/hub";
import { anthropicBackend, createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startAnthropicSimulator, startSimulator, type AnthropicSimulator, type Simulator } from "@srp/provider/simulator";
import { createClient } from "@srp/client";

const CHAT = "sim-llama-3-8b";
const EMBED = "sim-embed-1";
const IMAGE = "sim-image-1";
const BROKEN = "sim-broken";
/** An instance that runs `/v1/responses` and `/v1/completions` itself (a vLLM-like server). */
const CODER = "sim-coder-1";
const TTS = "sim-tts-1";
const STT = "sim-whisper-1";
/** A native Messages instance (a forwarded Anthropic key on the Anthropic simulator). */
const CLAUDE = "claude-sim-1";
const CLAUDE_CONTEXT = 16384;
const CLAUDE_PRICE = { input: "3000000", output: "15000000" };

describe.each(["in the SQL store", "in memory"] as const)("batches kept %s", (kept) => {
  let store: SqliteStore;
  let hub: Hub;
  let url: string;
  const sims: Simulator[] = [];
  const providers: Provider[] = [];
  let key: string;
  let consumer: string;
  let claudeSim: AnthropicSimulator;

  beforeAll(async () => {
    store = new SqliteStore(":memory:", { signupCredits: 5_000_000n });
    hub = createHub({
      identity: generateIdentity(),
      accounts: store,
      storage: store,
      drainTimeoutMs: 2000,
      batches: { retentionMs: 1500, maxKeptPerAccount: 4, ...(kept === "in memory" ? { store: new MemoryBatchStore() } : {}) },
    });
    ({ url } = await hub.listen({ port: 0 }));
    const sim = await startSimulator({ models: [{ id: CHAT }, { id: EMBED }, { id: IMAGE }, { id: CODER }, { id: TTS }, { id: STT }] });
    const broken = await startSimulator({ models: [{ id: BROKEN }] });
    broken.setFault({ kind: "status", status: 500 });
    sims.push(sim, broken);
    const owner = await store.createAccount({ name: "provider" });
    const providerKey = (await store.createApiKey(owner.id)).key;
    const backend = openAICompatibleBackend({ baseUrl: sim.baseUrl });
    const p = createProvider({
      hub: url,
      identity: generateIdentity(),
      account: providerKey,
      reconnect: false,
      instances: [
        { backend, model: CHAT, price: { input: "100000", output: "300000" }, maxConcurrency: 8 },
        { backend, model: EMBED, price: { input: "20000", output: "0" }, capabilities: ["embeddings"] },
        { backend, model: IMAGE, price: { input: "0", output: "0", image: "40000000000" }, capabilities: ["images"] },
        { backend: openAICompatibleBackend({ baseUrl: broken.baseUrl }), model: BROKEN, price: { input: "100000", output: "300000" } },
        {
          backend: openAICompatibleBackend({ baseUrl: sim.baseUrl, apis: ["responses", "completions"] }),
          model: CODER,
          price: { input: "100000", output: "300000" },
          capabilities: ["chat", "stream", "responses", "completions"],
        },
        { backend, model: TTS, price: { input: "0", output: "0", character: "15000000" }, capabilities: ["speech"] },
        { backend, model: STT, price: { input: "0", output: "0", second: "100000000" }, capabilities: ["transcription"] },
      ],
    });
    providers.push(p);
    await p.ready();
    claudeSim = await startAnthropicSimulator({ models: [CLAUDE] });
    const claude = createProvider({
      hub: url,
      identity: generateIdentity(),
      account: providerKey,
      reconnect: false,
      instances: [
        {
          backend: anthropicBackend({ apiKey: "sk-ant-sim", baseUrl: claudeSim.url }),
          model: CLAUDE,
          price: CLAUDE_PRICE,
          contextLength: CLAUDE_CONTEXT,
          capabilities: ["chat", "stream", "tools"],
        },
      ],
    });
    providers.push(claude);
    await claude.ready();
    const account = await store.createAccount({ name: "consumer" });
    consumer = account.id;
    key = (await store.createApiKey(account.id)).key;
  });

  afterAll(async () => {
    await Promise.all(providers.map((p) => p.close()));
    await hub.close();
    await Promise.all(sims.map((s) => s.close()));
    await claudeSim.close();
    store.close();
  });

  const post = (body: unknown, k = key) =>
    fetch(`${url}/v1/batch`, {
      method: "POST",
      headers: { authorization: `Bearer ${k}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  interface Item {
    index: number;
    custom_id: string | null;
    status: string;
    status_code: number;
    response: Record<string, unknown> & { usage?: { cost_units?: string } };
    cost_units: string;
    receipt_id: string | null;
  }
  interface View {
    id: string;
    status: string;
    discount_bps: number;
    reserved_units: string;
    charged_units: string;
    counts: Record<string, number>;
    items: Item[];
  }

  async function finished(id: string, k = key): Promise<View> {
    for (let i = 0; i < 500; i++) {
      const res = await fetch(`${url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${k}` } });
      expect(res.status).toBe(200);
      const view = (await res.json()) as View;
      if (view.status === "completed" || view.status === "failed") return view;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("batch did not finish");
  }

  function mixed(n: number): { custom_id: string; url: string; body: Record<string, unknown> }[] {
    return Array.from({ length: n }, (_, i) => {
      const custom_id = `item-${i}`;
      switch (i % 5) {
        case 0:
          return {
            custom_id,
            url: "/v1/chat/completions",
            body: { model: CHAT, max_tokens: 8, messages: [{ role: "user", content: `question ${i}` }] },
          };
        case 1:
          return {
            custom_id,
            url: "/v1/messages",
            body: { model: CHAT, max_tokens: 8, messages: [{ role: "user", content: `question ${i}` }] },
          };
        case 2:
          return { custom_id, url: "/v1/embeddings", body: { model: EMBED, input: `text ${i}`, encoding_format: "float", dimensions: 4 } };
        case 3:
          return { custom_id, url: "/v1/images/generations", body: { model: IMAGE, prompt: `picture ${i}`, n: 1 } };
        default:
          return {
            custom_id,
            url: "/v1/chat/completions",
            body: { model: i === 49 ? BROKEN : CHAT, max_tokens: 8, messages: [{ role: "user", content: `question ${i}` }] },
          };
      }
    });
  }

  describe("batches", () => {
    it("runs 50 mixed jobs with the 10 % discount, per-item results and costs, and refunds the failed item", async () => {
      const before = await store.summary(consumer);
      const res = await post({ requests: mixed(50) });
      expect(res.status).toBe(202);
      const created = (await res.json()) as View;
      expect(res.headers.get("location")).toBe(`/v1/jobs/${created.id}`);
      expect(created.discount_bps).toBe(1000);
      expect(created.counts.total).toBe(50);
      const view = await finished(created.id);
      expect(view.status).toBe("completed");
      // Both answers match the schema the OpenAPI document publishes for them.
      expect(checkConsumerBody(BatchObject, created)).toBeUndefined();
      expect(checkConsumerBody(BatchObject, view)).toBeUndefined();
      expect(view.counts).toEqual({ total: 50, queued: 0, running: 0, completed: 49, failed: 1 });
      const failed = view.items.filter((i) => i.status === "failed");
      expect(failed.map((i) => i.custom_id)).toEqual(["item-49"]);
      expect(failed[0]!.status_code).toBe(502);
      expect(failed[0]!.cost_units).toBe("0");
      let sum = 0n;
      for (const item of view.items.filter((i) => i.status === "completed")) {
        expect(item.status_code).toBe(200);
        // The item's own answer, in its API's format, and a charge of the receipt's cost less 10 % (rounded up).
        const shape = { 0: "chat.completion", 1: "message", 2: "list", 3: undefined, 4: "chat.completion" }[item.index % 5];
        if (shape === "message") expect(item.response.type).toBe("message");
        else if (shape) expect(item.response.object).toBe(shape);
        else expect(Array.isArray(item.response.data)).toBe(true);
        const stored = (await store.get(item.receipt_id!))!;
        const receiptCost = BigInt((stored.receipt as Receipt).cost);
        expect(BigInt(item.cost_units)).toBe((receiptCost * 9000n + 9999n) / 10000n);
        expect(item.response.usage?.cost_units).toBe(item.cost_units);
        sum += BigInt(item.cost_units);
      }
      expect(view.charged_units).toBe(sum.toString());
      const after = await store.summary(consumer);
      expect(after.held).toBe(0n);
      expect(before.balance - after.balance).toBe(sum);
      expect(await store.verify()).toEqual([]);
    });

    it("refuses more than 50 items, bad items and a batch the balance cannot cover, holding nothing", async () => {
      expect((await post({ requests: mixed(51) })).status).toBe(400);
      expect((await post({ requests: [{ url: "/v1/videos", body: { model: CHAT, prompt: "x" } }] })).status).toBe(400);
      expect((await post({ requests: [{ url: "/v1/audio/speech", body: { model: CHAT } }] })).status).toBe(400);
      expect(
        (
          await post({
            requests: [{ url: "/v1/chat/completions", body: { model: CHAT, stream: true, messages: [{ role: "user", content: "x" }] } }],
          })
        ).status,
      ).toBe(400);
      expect(
        (
          await post({
            requests: [
              { custom_id: "a", url: "/v1/embeddings", body: { model: EMBED, input: "x" } },
              { custom_id: "a", url: "/v1/embeddings", body: { model: EMBED, input: "y" } },
            ],
          })
        ).status,
      ).toBe(400);
      const unknown = await post({
        requests: [{ url: "/v1/chat/completions", body: { model: "nope", messages: [{ role: "user", content: "x" }] } }],
      });
      expect(unknown.status).toBe(404);
      const before = await store.summary(consumer);
      // 20 items of ten images at $0.04: $8, more than the $5 of signup credits.
      const big = Array.from({ length: 20 }, () => ({ url: "/v1/images/generations", body: { model: IMAGE, prompt: "x", n: 10 } }));
      const refused = await post({ requests: big });
      expect(refused.status).toBe(402);
      expect(((await refused.json()) as { error: { code: string; required: string } }).error).toMatchObject({
        code: "billing.insufficient_credits",
        required: "8000000",
      });
      const after = await store.summary(consumer);
      expect(after.balance).toBe(before.balance);
      expect(after.held).toBe(0n);
    });

    it("shows a batch only to its account, and forgets it after the retention time", async () => {
      const res = await post({ requests: [{ url: "/v1/embeddings", body: { model: EMBED, input: "keep me" } }] });
      const { id } = (await res.json()) as View;
      await finished(id);
      const other = await store.createAccount({ name: "other" });
      const otherKey = (await store.createApiKey(other.id)).key;
      expect((await fetch(`${url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${otherKey}` } })).status).toBe(404);
      expect((await fetch(`${url}/v1/jobs/${id}`)).status).toBe(401);
      await new Promise((r) => setTimeout(r, 1600));
      expect((await fetch(`${url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404);
    });
  });

  describe("batch items of every surface", () => {
    /** `seconds` of 8 kHz 16-bit mono PCM WAV (silence). */
    function wav(seconds: number): Buffer {
      const data = seconds * 8000 * 2;
      const h = Buffer.alloc(44);
      h.write("RIFF", 0, "latin1");
      h.writeUInt32LE(36 + data, 4);
      h.write("WAVEfmt ", 8, "latin1");
      h.writeUInt32LE(16, 16);
      h.writeUInt16LE(1, 20);
      h.writeUInt16LE(1, 22);
      h.writeUInt32LE(8000, 24);
      h.writeUInt32LE(16000, 28);
      h.writeUInt16LE(2, 32);
      h.writeUInt16LE(16, 34);
      h.write("data", 36, "latin1");
      h.writeUInt32LE(data, 40);
      return Buffer.concat([h, Buffer.alloc(data)]);
    }

    it("runs Responses, completions, speech and transcription items, each with its own answer and the discounted charge", async () => {
      const audio = wav(3);
      const file = { filename: "speech.wav", content_type: "audio/wav", data: audio.toString("base64") };
      const speechInput = "Hello from a batch, here is some speech.";
      const requests = [
        { custom_id: "completion", url: "/v1/completions", body: { model: CODER, prompt: "def fib(n):", max_tokens: 8 } },
        { custom_id: "responses-native", url: "/v1/responses", body: { model: CODER, input: "Say hello", max_output_tokens: 8 } },
        // Translated to chat completions; `store: true` is overridden: a batch item is never stored.
        { custom_id: "responses-chat", url: "/v1/responses", body: { model: CHAT, input: "Say hi", max_output_tokens: 8, store: true } },
        { custom_id: "speech", url: "/v1/audio/speech", body: { model: TTS, input: speechInput, voice: "alloy", response_format: "wav" } },
        { custom_id: "transcription", url: "/v1/audio/transcriptions", body: { model: STT, file, language: "en" } },
        { custom_id: "transcription-text", url: "/v1/audio/transcriptions", body: { model: STT, file, response_format: "text" } },
      ];
      // What POST /v1/estimate says the batch holds is what admission reserves.
      const estimated = await fetch(`${url}/v1/estimate`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ endpoint: "/v1/batch", body: { requests } }),
      });
      expect(estimated.status).toBe(200);
      const estimate = (await estimated.json()) as { maximum: { units: string } };
      const before = await store.summary(consumer);
      const res = await post({ requests });
      expect(res.status).toBe(202);
      const created = (await res.json()) as View;
      expect(created.reserved_units).toBe(estimate.maximum.units);
      const view = await finished(created.id);
      expect(checkConsumerBody(BatchObject, view)).toBeUndefined();
      expect(view.counts).toEqual({ total: 6, queued: 0, running: 0, completed: 6, failed: 0 });
      const by = Object.fromEntries(view.items.map((i) => [i.custom_id, i]));
      expect(by.completion!.response.object).toBe("text_completion");
      for (const id of ["responses-native", "responses-chat"]) {
        const r = by[id]!.response;
        expect(r.object).toBe("response");
        // Eight output tokens end it `incomplete` (max_output_tokens), an answer all the same.
        expect(["completed", "incomplete"]).toContain(r.status);
        expect(r.store).toBe(false);
        // Not stored: it cannot be read back nor continued.
        const stored = await fetch(`${url}/v1/responses/${String(r.id)}`, { headers: { authorization: `Bearer ${key}` } });
        expect(stored.status).toBe(404);
      }
      const speech = by.speech!.response as { object: string; content_type: string; data: string; usage: Record<string, unknown> };
      expect(speech.object).toBe("srp.audio");
      expect(speech.content_type).toBe("audio/wav");
      const spoken = Buffer.from(speech.data, "base64");
      expect(spoken.toString("latin1", 0, 4)).toBe("RIFF");
      expect(spoken.length).toBe(44 + Math.round([...speechInput].length * 0.02 * 8000) * 2);
      expect(speech.usage).toMatchObject({ characters: [...speechInput].length, receipt_id: by.speech!.receipt_id });
      const heard = by.transcription!.response as { text: string; usage: { type: string; seconds: number } };
      expect(heard.text.length).toBeGreaterThan(0);
      expect(heard.usage).toMatchObject({ type: "duration", seconds: 3 });
      const text = by["transcription-text"]!.response;
      expect(text).toMatchObject({ object: "srp.text", text: `${heard.text}\n` });
      expect(String(text.content_type)).toMatch(/^text\/plain/);
      let sum = 0n;
      for (const item of view.items) {
        expect(item.status_code).toBe(200);
        const receiptCost = BigInt(((await store.get(item.receipt_id!))!.receipt as Receipt).cost);
        expect(receiptCost).toBeGreaterThan(0n);
        expect(BigInt(item.cost_units)).toBe((receiptCost * 9000n + 9999n) / 10000n);
        expect(item.response.usage?.cost_units).toBe(item.cost_units);
        sum += BigInt(item.cost_units);
      }
      expect(view.charged_units).toBe(sum.toString());
      const after = await store.summary(consumer);
      expect(after.held).toBe(0n);
      expect(before.balance - after.balance).toBe(sum);
      expect(await store.verify()).toEqual([]);
    });

    it("refuses a Responses item that continues a stored response, and a transcription file that is not base64, holding nothing", async () => {
      const before = await store.summary(consumer);
      const continued = await post({
        requests: [
          { url: "/v1/embeddings", body: { model: EMBED, input: "x" } },
          { url: "/v1/responses", body: { model: CODER, input: "and then?", previous_response_id: "resp_earlier" } },
        ],
      });
      expect(continued.status).toBe(400);
      const error = ((await continued.json()) as { error: { code: string; message: string } }).error;
      expect(error.code).toBe("api.invalid_body");
      expect(error.message).toContain("requests[1]");
      expect(error.message).toContain("previous_response_id");
      const notBase64 = await post({
        requests: [
          {
            url: "/v1/audio/transcriptions",
            body: { model: STT, file: { filename: "a.wav", content_type: "audio/wav", data: "not base64!" } },
          },
        ],
      });
      expect(notBase64.status).toBe(400);
      const after = await store.summary(consumer);
      expect(after.balance).toBe(before.balance);
      expect(after.held).toBe(0n);
    });
  });

  describe("batch items whose prompt grows while they run", () => {
    it("reserves an Anthropic item with MCP servers at the instance's context length, and bills its receipt less the discount", async () => {
      const before = await store.summary(consumer);
      const mcp = [{ type: "url", url: "https://mcp.example.com/sse", name: "example" }];
      const body = { model: CLAUDE, max_tokens: 16, messages: [{ role: "user", content: "Ask the MCP server." }], mcp_servers: mcp };
      const res = await post({ requests: [{ custom_id: "mcp", url: "/v1/messages", body }] });
      expect(res.status).toBe(202);
      const created = (await res.json()) as View;
      // The MCP server's results come back as input while the job runs: the reserved prompt is the
      // instance's whole context (as the plausibility check admits), not the request's few bytes.
      const contextBound = cost({ promptTokens: CLAUDE_CONTEXT, completionTokens: 16 }, CLAUDE_PRICE);
      expect(BigInt(created.reserved_units)).toBe(contextBound);
      const view = await finished(created.id);
      expect(view.counts).toMatchObject({ total: 1, completed: 1, failed: 0 });
      const [item] = view.items;
      expect(item!.response.type).toBe("message");
      expect(claudeSim.requests.at(-1)!.mcp_servers).toEqual(mcp);
      const receiptCost = BigInt(((await store.get(item!.receipt_id!))!.receipt as Receipt).cost);
      expect(receiptCost).toBeGreaterThan(0n);
      expect(BigInt(item!.cost_units)).toBe((receiptCost * 9000n + 9999n) / 10000n);
      expect(view.charged_units).toBe(item!.cost_units);
      const after = await store.summary(consumer);
      expect(after.held).toBe(0n);
      expect(before.balance - after.balance).toBe(BigInt(item!.cost_units));
    });
  });

  describe("batch limits", () => {
    it("keeps at most maxKeptPerAccount batches of an account (429), and a malformed id names nothing", async () => {
      const account = await store.createAccount({ name: "busy" });
      const busyKey = (await store.createApiKey(account.id)).key;
      const one = { requests: [{ url: "/v1/embeddings", body: { model: EMBED, input: "x" } }] };
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await post(one, busyKey);
        expect(res.status).toBe(202);
        ids.push(((await res.json()) as View).id);
      }
      const refused = await post(one, busyKey);
      expect(refused.status).toBe(429);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("api.rate_limited");
      expect(refused.headers.get("retry-after")).not.toBeNull();
      // The refused batch reserved nothing: once the four are done, nothing is held and each charged what it says.
      const views = await Promise.all(ids.map((id) => finished(id, busyKey)));
      const summary = await store.summary(account.id);
      expect(summary.held).toBe(0n);
      expect(summary.spent).toBe(views.reduce((a, v) => a + BigInt(v.charged_units), 0n));
      expect((await fetch(`${url}/v1/jobs/%E0%A4%A`, { headers: { authorization: `Bearer ${busyKey}` } })).status).toBe(404);
    });
  });

  describe("batches and embeddings from @srp/client", () => {
    it("submits a batch, waits for it and embeds, with typed costs", async () => {
      const srp = createClient({ hub: url, apiKey: key });
      const before = await store.summary(consumer);
      const created = await srp.batches.create([
        {
          custom_id: "chat",
          url: "/v1/chat/completions",
          body: { model: CHAT, max_tokens: 4, messages: [{ role: "user", content: "client batch" }] },
        },
        { custom_id: "embed", url: "/v1/embeddings", body: { model: EMBED, input: "client batch" } },
      ]);
      expect(created.status).toBe("queued");
      const done = await srp.batches.wait(created.id, { intervalMs: 20, timeoutMs: 10_000 });
      expect(done.counts).toMatchObject({ total: 2, completed: 2, failed: 0 });
      expect(done.items.map((i) => i.custom_id)).toEqual(["chat", "embed"]);
      const e = await srp.embeddings.create({ model: EMBED, input: ["a", "b"], encoding_format: "float" });
      expect(e.data).toHaveLength(2);
      expect(e.receiptId).toBe(e.usage.receipt_id);
      const after = await store.summary(consumer);
      expect(before.balance - after.balance).toBe(BigInt(done.charged_units) + BigInt(e.usage.cost_units));
      await expect(srp.batches.get("batch_nope")).rejects.toMatchObject({ status: 404, code: "api.not_found" });
    });
  });
});
