/**
 * Request ids, the hub's `request` event and its Prometheus metrics over real sockets: the
 * official `openai` SDK as the consumer of a hub with a provider node and the model
 * simulator, `/metrics` scraped over HTTP, and `srp-hub serve --metrics-token` as a child
 * process (built `dist/`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { generateIdentity } from "@srp/core";
import { createHub, MemoryAccountStore, SqliteStore, type Hub, type RequestEvent } from "@srp/hub";
import { createProvider, openAICompatibleBackend } from "@srp/provider";
import { startSimulator } from "@srp/provider/simulator";
import { NO_POLICY } from "../packages/srp-hub/src/keys/policy.js";
import { KEY, MODEL, startNet, until, type Net } from "./helpers.js";

const TOKEN = "metrics-token-for-tests-000001";
const CLI = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
const GENERATED = /^req_[0-9a-f]{32}$/;
const CHAT = "/v1/chat/completions";

let net: Net | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await net?.close();
  net = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sdk = (url: string, apiKey = KEY) => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
const ask = [{ role: "user" as const, content: "Tell me about spare capacity." }];

/** The SRP members of a response's `usage`. */
interface SrpUsage {
  prompt_tokens: number;
  completion_tokens: number;
  cost_units: string;
}

/** Scrapes `/metrics` of a hub. */
function scrape(url: string, token: string | null = TOKEN): Promise<Response> {
  return fetch(`${url}/metrics`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
}

/**
 * The value of the sample of a metric whose labels include `labels`, from Prometheus text
 * (undefined when there is none; several: their sum).
 */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total = (total ?? 0) + Number(m[3]);
  }
  return total;
}

describe("request ids and the request event", () => {
  it("returns x-request-id on every response: a generated one, the client's own when safe, a new one for a bad one", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim);
    const client = sdk(net.url);
    const plain = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 }).withResponse();
    expect(plain.response.headers.get("x-request-id")).toMatch(GENERATED);
    const own = await client.chat.completions
      .create({ model: MODEL, messages: ask, max_tokens: 8 }, { headers: { "x-request-id": "client-trace:42.a_b-c" } })
      .withResponse();
    expect(own.response.headers.get("x-request-id")).toBe("client-trace:42.a_b-c");
    for (const bad of ["has spaces", "x".repeat(129), "semi;colon", "a/b", "%C3%BC"]) {
      const r = await fetch(`${net.url}/v1/models`, { headers: { "x-request-id": bad } });
      expect(r.headers.get("x-request-id"), bad).toMatch(GENERATED);
    }
    // Errors, other surfaces and unknown paths carry one too.
    const refused = await fetch(`${net.url}${CHAT}`, { method: "POST", headers: { authorization: "Bearer nope" }, body: "{}" });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("x-request-id")).toMatch(GENERATED);
    const unknown = await fetch(`${net.url}/no/such/path`, { headers: { "x-request-id": "abc" } });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("x-request-id")).toBe("abc");
    const messages = await fetch(`${net.url}/v1/messages`, { method: "POST", headers: { "x-api-key": KEY }, body: "{" });
    expect(messages.headers.get("x-request-id")).toMatch(GENERATED);
  });

  it("emits one request event per request, a stream's at its end with its time to first token and billed usage", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim);
    const events: RequestEvent[] = [];
    net.hub.on("request", (e) => events.push(e));
    const client = sdk(net.url);
    const once = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 }).withResponse();
    const usage = once.data.usage as unknown as SrpUsage;
    const streamed = await client.chat.completions
      .create({ model: MODEL, messages: ask, max_tokens: 12, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    let streamUsage: SrpUsage | undefined;
    for await (const c of streamed.data) if (c.usage) streamUsage = c.usage as unknown as SrpUsage;
    await until(() => events.length >= 2, 5000, "two request events");
    // Nothing more arrives for these two requests.
    await fetch(`${net.url}/v1/models`);
    await until(() => events.length >= 3, 5000, "the models event");
    expect(events).toHaveLength(3);
    const [first, second, third] = events as [RequestEvent, RequestEvent, RequestEvent];
    expect(first).toMatchObject({
      requestId: once.response.headers.get("x-request-id"),
      surface: CHAT,
      model: MODEL,
      status: 200,
      stream: false,
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      costUnits: BigInt(usage.cost_units),
    });
    expect(first.ttftMs).toBeUndefined();
    expect(second).toMatchObject({
      requestId: streamed.response.headers.get("x-request-id"),
      surface: CHAT,
      model: MODEL,
      status: 200,
      stream: true,
      promptTokens: streamUsage!.prompt_tokens,
      completionTokens: streamUsage!.completion_tokens,
      costUnits: BigInt(streamUsage!.cost_units),
    });
    expect(second.ttftMs).toBeGreaterThanOrEqual(0);
    expect(second.ttftMs).toBeLessThanOrEqual(second.durationMs);
    expect(third).toMatchObject({ surface: "/v1/models", status: 200, stream: false });
    expect(third.model).toBeUndefined();
    expect(new Set(events.map((e) => e.requestId)).size).toBe(3);
  });

  it("reports the Anthropic and Responses surfaces with their billed tokens, and a stream the consumer left once", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim);
    const events: RequestEvent[] = [];
    net.hub.on("request", (e) => events.push(e));
    const message = await new Anthropic({ baseURL: net.url, apiKey: KEY, maxRetries: 0 }).messages.create({
      model: MODEL,
      max_tokens: 8,
      messages: ask,
    });
    const response = await sdk(net.url).responses.create({ model: MODEL, input: "Tell me about spare capacity.", max_output_tokens: 16 });
    expect(events.map((e) => [e.surface, e.model, e.status])).toEqual([
      ["/v1/messages", MODEL, 200],
      ["/v1/responses", MODEL, 200],
    ]);
    expect(events[0]).toMatchObject({ promptTokens: message.usage.input_tokens, completionTokens: message.usage.output_tokens });
    expect(events[1]).toMatchObject({ promptTokens: response.usage!.input_tokens, completionTokens: response.usage!.output_tokens });

    // A consumer that leaves a stream after its first chunk: one event, when the hub saw it leave.
    const left = new AbortController();
    const stream = await sdk(net.url).chat.completions.create(
      { model: MODEL, messages: ask, max_tokens: 400, stream: true },
      { signal: left.signal },
    );
    // The SDK ends the iteration quietly (or throws, by version) once aborted.
    try {
      for await (const _ of stream) left.abort();
    } catch {}
    await until(() => events.length === 3, 5000, "the left stream's event");
    expect(events[2]).toMatchObject({ surface: CHAT, model: MODEL, status: 200, stream: true });
    expect(events[2]!.ttftMs).toBeDefined();
    await fetch(`${net.url}/v1/models`);
    await until(() => events.length === 4, 5000, "the models event");
    expect(events.filter((e) => e.stream)).toHaveLength(1);
  });
});

describe("/metrics", () => {
  it("counts requests, latency, time to first token, tokens and cost by surface, model and status, with instance and session gauges", async () => {
    net = await startNet({ metrics: { token: TOKEN } });
    const sim = await net.sim();
    await net.addProvider(sim);
    const client = sdk(net.url);
    let prompt = 0;
    let completion = 0;
    let cost = 0n;
    const add = (u: SrpUsage) => {
      prompt += u.prompt_tokens;
      completion += u.completion_tokens;
      cost += BigInt(u.cost_units);
    };
    for (let i = 0; i < 2; i++) add((await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 })).usage as never);
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: ask,
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const c of stream) if (c.usage) add(c.usage as never);
    await expect(sdk(net.url, "srp_not_a_key").chat.completions.create({ model: MODEL, messages: ask })).rejects.toThrow();
    await expect(client.chat.completions.create({ model: "no-such-model", messages: ask })).rejects.toThrow();
    expect(prompt).toBeGreaterThan(0);
    expect(completion).toBeGreaterThan(0);
    expect(cost).toBeGreaterThan(0n);

    // A stream is counted when its body has ended, before the last bytes reach the consumer.
    const r = await scrape(net.url);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await r.text();
    expect(sample(text, "srp_requests_total", { surface: CHAT, model: MODEL, status: "200" })).toBe(3);
    expect(sample(text, "srp_requests_total", { surface: CHAT, model: "none", status: "401" })).toBe(1);
    // A model nobody serves is not a label (a stranger's made-up names do not grow the metrics).
    expect(sample(text, "srp_requests_total", { surface: CHAT, model: "none", status: "404" })).toBe(1);
    expect(text).not.toContain("no-such-model");
    expect(sample(text, "srp_requests_total", { surface: "/metrics" })).toBeUndefined();
    expect(sample(text, "srp_request_duration_seconds_count", { surface: CHAT, model: MODEL })).toBe(3);
    expect(sample(text, "srp_request_duration_seconds_bucket", { surface: CHAT, model: MODEL, le: "+Inf" })).toBe(3);
    expect(sample(text, "srp_time_to_first_token_seconds_count", { surface: CHAT, model: MODEL })).toBe(1);
    expect(sample(text, "srp_tokens_total", { model: MODEL, kind: "prompt" })).toBe(prompt);
    expect(sample(text, "srp_tokens_total", { model: MODEL, kind: "completion" })).toBe(completion);
    expect(sample(text, "srp_cost_units_total", { model: MODEL })).toBe(Number(cost));
    expect(sample(text, "srp_provider_sessions")).toBe(1);
    expect(sample(text, "srp_provider_sessions_opened_total")).toBe(1);
    expect(sample(text, "srp_instances", { model: MODEL, breaker: "closed" })).toBe(1);
    expect(sample(text, "srp_instance_slots", { model: MODEL })).toBeGreaterThanOrEqual(1);
    expect(sample(text, "srp_instance_jobs", { model: MODEL })).toBe(0);
    expect(sample(text, "srp_queue_waiting", { model: MODEL })).toBe(0);
    for (const name of ["srp_breaker_changes_total", "srp_receipts_rejected_total", "srp_payments_total", "srp_handshakes_rejected_total"])
      expect(text).toContain(`# TYPE ${name} counter`);

    // The session gauge follows the provider leaving.
    await net.providers[0]!.close();
    await until(() => net!.hub.sessions().length === 0, 5000, "the session to close");
    const after = await (await scrape(net.url)).text();
    expect(sample(after, "srp_provider_sessions")).toBe(0);
    expect(sample(after, "srp_provider_sessions_closed_total")).toBe(1);
    expect(sample(after, "srp_instances", { model: MODEL })).toBeUndefined();
  });

  it("counts reservations held, settled and released with their amounts, error answers by code, and waits for a slot", async () => {
    const dir = mkdtempSync(join(tmpdir(), "srp-metrics-ledger-"));
    const store = new SqliteStore(join(dir, "hub.sqlite"));
    const hub: Hub = createHub({
      identity: generateIdentity(),
      accounts: store,
      storage: store,
      drainTimeoutMs: 2000,
      metrics: { token: TOKEN },
    });
    const { url } = await hub.listen({ port: 0 });
    // One slot, a model that takes a moment: requests behind the first one wait.
    const sim = await startSimulator({ latencyMs: 600 });
    const owner = await store.createAccount({ name: "provider" });
    const provider = createProvider({
      hub: url,
      identity: generateIdentity(),
      account: (await store.createApiKey(owner.id)).key,
      reconnect: false,
      instances: [
        {
          backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }),
          model: MODEL,
          price: { input: "100000", output: "300000" },
          maxConcurrency: 1,
        },
      ],
    });
    cleanups.push(async () => {
      await provider.close();
      await hub.close();
      await sim.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await provider.ready();
    const consumer = (await store.createAccount({ name: "consumer" })).id;
    const { key } = await store.createApiKey(consumer, "open key");
    const { key: tight } = await store.createApiKey(consumer, "tiny budget", {
      ...NO_POLICY,
      budget: { total: 1n, day: null, month: null },
    });
    const scraped = async () => (await scrape(url)).text();

    // A request over its key's budget: refused (402) before any money is held.
    const refused = await sdk(url, tight)
      .chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 })
      .catch((e: unknown) => e as { status: number; code: string });
    expect(refused).toMatchObject({ status: 402, code: "api.key_budget_exceeded" });

    // The first request takes the only slot; the next one waits and is served; the last gives up waiting after 100 ms.
    const client = sdk(url, key);
    const first = client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 });
    await until(() => hub.router.catalog(Date.now()).get(MODEL)?.[0]?.active === 1, 5000, "the first job");
    const queued = client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 });
    await until(() => hub.waiting.size(MODEL) === 1, 5000, "a request waiting");
    const gaveUp = await client.chat.completions
      .create({ model: MODEL, messages: ask, max_tokens: 8 }, { headers: { "x-srp-queue-timeout-ms": "100" } })
      .catch((e: unknown) => e as { status: number; code: string });
    expect(gaveUp).toMatchObject({ status: 503, code: "job.no_capacity" });
    await Promise.all([first, queued]);

    const text = await scraped();
    expect(sample(text, "srp_ledger_reservations_total", { outcome: "held" })).toBe(3);
    expect(sample(text, "srp_ledger_reservations_total", { outcome: "settled" })).toBe(2);
    expect(sample(text, "srp_ledger_reservations_total", { outcome: "released" })).toBe(1);
    const held = sample(text, "srp_ledger_amount_units_total", { movement: "held" })!;
    const charged = sample(text, "srp_ledger_amount_units_total", { movement: "charged" })!;
    const released = sample(text, "srp_ledger_amount_units_total", { movement: "released" })!;
    // What was charged is what the consumer's account spent; every unit held was either charged or came back.
    expect(charged).toBe(Number((await store.summary(consumer)).spent));
    expect(charged).toBeGreaterThan(0);
    expect(released).toBeGreaterThan(0);
    expect(held).toBe(charged + released);
    expect(sample(text, "srp_request_errors_total", { code: "api.key_budget_exceeded" })).toBe(1);
    expect(sample(text, "srp_request_errors_total", { code: "job.no_capacity" })).toBe(1);
    expect(sample(text, "srp_request_errors_total")).toBe(2);
    expect(sample(text, "srp_queue_wait_seconds_count", { model: MODEL, outcome: "served" })).toBe(1);
    expect(sample(text, "srp_queue_wait_seconds_count", { model: MODEL, outcome: "timed_out" })).toBe(1);
    expect(sample(text, "srp_queue_wait_seconds_count", { outcome: "left" })).toBeUndefined();
    // The one that gave up waited at least its 100 ms: none of it in the lowest buckets.
    expect(sample(text, "srp_queue_wait_seconds_bucket", { model: MODEL, outcome: "timed_out", le: "0.05" })).toBe(0);
    expect(await store.verify()).toEqual([]);
  });

  it("answers 401 without the token, 404 when metrics are off, and keeps one registry per hub", async () => {
    net = await startNet({ metrics: { token: TOKEN } });
    for (const token of [null, "wrong-token-of-some-length", `${TOKEN}x`]) {
      const r = await scrape(net.url, token);
      expect(r.status).toBe(401);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("api.unauthorized");
      expect(r.headers.get("x-request-id")).toMatch(GENERATED);
    }
    expect((await scrape(net.url)).status).toBe(200);

    const off = await startNet();
    cleanups.push(() => off.close());
    const r = await scrape(off.url);
    expect(r.status).toBe(404);
    expect(off.hub.metrics).toBeUndefined();

    // Metrics without a token: kept (for a port of the embedder's own), not served by the hub.
    const accounts = new MemoryAccountStore();
    const quiet = createHub({ identity: generateIdentity(), accounts, metrics: {} });
    const other = createHub({ identity: generateIdentity(), accounts, metrics: { token: TOKEN } });
    cleanups.push(
      () => quiet.close(),
      () => other.close(),
    );
    expect((await quiet.fetch(new Request("http://hub/metrics"))).status).toBe(404);
    await quiet.fetch(new Request("http://hub/v1/models"));
    const own = await quiet.metrics!.scrape();
    expect(sample(own, "srp_requests_total", { surface: "/v1/models", model: "none", status: "200" })).toBe(1);
    expect(sample(await other.metrics!.scrape(), "srp_requests_total")).toBeUndefined();
    expect(quiet.metrics!.registry).not.toBe(other.metrics!.registry);
    expect(() => createHub({ identity: generateIdentity(), accounts, metrics: { token: "short" } })).toThrow(RangeError);
  });

  it("srp-hub serve --metrics-token serves /metrics behind that token", async () => {
    const dir = mkdtempSync(join(tmpdir(), "srp-metrics-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const env = { ...process.env };
    for (const k of ["SRP_HUB_DB", "SRP_HUB_ACCOUNTS", "SRP_ADMIN_TOKEN", "SRP_METRICS_TOKEN"]) delete env[k];
    const child: ChildProcess = spawn(process.execPath, [CLI, "serve", "--port", "0", "--data-dir", dir, "--metrics-token", TOKEN], {
      stdio: ["ignore", "pipe", "pipe"],
      env,
    });
    cleanups.push(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /listening on (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once("exit", (code) => reject(new Error(`srp-hub serve exited (${code}) before listening:\n${err}`)));
    });
    expect((await scrape(url, null)).status).toBe(401);
    const r = await scrape(url);
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(sample(text, "srp_provider_sessions")).toBe(0);
    expect(text).toContain("# TYPE srp_requests_total counter");
    const models = await fetch(`${url}/v1/models`, { headers: { "x-request-id": "cli-trace-1" } });
    expect(models.headers.get("x-request-id")).toBe("cli-trace-1");
  });
});
