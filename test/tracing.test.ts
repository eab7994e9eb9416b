/**
 * Request ids in logs and OpenTelemetry tracing across hub and node (SRP-JOB-037,
 * SRP-JOB-038): a real hub and a real provider node in this process, so both export to one
 * in-memory exporter, and the official `openai` SDK as the consumer. One request is one
 * trace: the node's span is a child of the hub's job span, itself a child of the request's
 * span. Without a tracer provider nothing is traced and no trace context is sent; the
 * request id still is, and `srp-hub serve` (built `dist/`) logs it on the request's lines.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { generateIdentity } from "@srp/core";
import { createProvider, openAICompatibleBackend, type Backend, type ChatCallOptions, type JobOutcome, type Provider } from "@srp/provider";
import { startSimulator } from "@srp/provider/simulator";
import { KEY, MODEL, startNet, until, type Net } from "./helpers.js";

const CLI = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;

let net: Net | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await net?.close();
  net = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => trace.disable());

const ask = [{ role: "user" as const, content: "Tell me about spare capacity." }];
const sdk = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });

/** A hub, a simulator and a node whose backend records the `ext` of every job it runs. */
async function netRecordingExt(): Promise<{ net: Net; provider: Provider; seen: (Readonly<Record<string, unknown>> | undefined)[] }> {
  const n = await startNet();
  const sim = await n.sim();
  const inner = openAICompatibleBackend({ baseUrl: sim.baseUrl });
  const seen: (Readonly<Record<string, unknown>> | undefined)[] = [];
  const backend: Backend = Object.create(inner, {
    chat: {
      value: (request: Record<string, unknown>, call: ChatCallOptions) => {
        seen.push(call.ext);
        return inner.chat(request, call);
      },
    },
  });
  const provider = await n.addProvider(sim, { backend });
  return { net: n, provider, seen };
}

const spanId = (s: ReadableSpan) => s.spanContext().spanId;
const traceId = (s: ReadableSpan) => s.spanContext().traceId;

/** The finished spans of the trace of one consumer request (other requests, such as the node's discovery fetch, have their own). */
async function traceOf(exporter: InMemorySpanExporter, requestId: string): Promise<ReadableSpan[]> {
  const of = () => {
    const request = exporter.getFinishedSpans().find((s) => s.name === "srp.request" && s.attributes["srp.request_id"] === requestId);
    return request ? exporter.getFinishedSpans().filter((s) => traceId(s) === traceId(request)) : [];
  };
  await until(() => of().length >= 3, 5000, `the spans of ${requestId}`);
  return of();
}

describe("tracing off (no tracer provider registered)", () => {
  it("serves as before, sends no trace context, and names the request in the job only while someone listens", async () => {
    const r = await netRecordingExt();
    net = r.net;
    const client = sdk(net.url);
    const quiet = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 }).withResponse();
    expect(quiet.data.choices[0]!.message.content).toBeTruthy();
    // Nothing listens and nothing traces: the job carries no ext of ours.
    expect(r.seen[0]?.["srp.request_id"]).toBeUndefined();
    expect(r.seen[0]?.["srp.traceparent"]).toBeUndefined();

    const ends: string[] = [];
    r.provider.on("job.end", (o) => ends.push(o.requestId ?? "(none)"));
    net.hub.on("request", () => {});
    const heard = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 }).withResponse();
    const id = heard.response.headers.get("x-request-id")!;
    expect(r.seen[1]?.["srp.request_id"]).toBe(id);
    expect(r.seen[1]).not.toHaveProperty("srp.traceparent");
    expect(r.seen[1]).not.toHaveProperty("srp.tracestate");
    await until(() => ends.length === 1, 5000, "the job's end");
    expect(ends).toEqual([id]);
  });
});

describe("tracing on", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  it("makes a consumer request one trace across hub and node, carried in the job's ext", async () => {
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
    const r = await netRecordingExt();
    net = r.net;
    const answer = await sdk(net.url).chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 }).withResponse();
    const id = answer.response.headers.get("x-request-id")!;
    const spans = await traceOf(exporter, id);
    const named = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      expect(found, name).toHaveLength(1);
      return found[0]!;
    };
    const request = named("srp.request");
    const job = named("srp.job");
    const node = named("srp.node.job");

    // One trace: node -> job -> request.
    expect(new Set(spans.map(traceId)).size).toBe(1);
    expect(node.parentSpanContext?.spanId).toBe(spanId(job));
    expect(job.parentSpanContext?.spanId).toBe(spanId(request));
    expect(request.parentSpanContext).toBeUndefined();

    // The job carried the job span's context and the request id.
    expect(r.seen[0]?.["srp.traceparent"]).toBe(`00-${traceId(job)}-${spanId(job)}-01`);
    expect(r.seen[0]?.["srp.request_id"]).toBe(id);

    expect(request.attributes).toMatchObject({
      "srp.request_id": id,
      "srp.surface": "/v1/chat/completions",
      "srp.model": MODEL,
      "http.response.status_code": 200,
      "srp.completion_tokens": answer.data.usage!.completion_tokens,
    });
    expect(job.attributes).toMatchObject({
      "srp.request_id": id,
      "srp.node_id": r.provider.nodeId,
      "srp.instance_id": expect.any(String),
      "srp.attempt": 1,
      "srp.outcome": "done",
    });
    expect(node.attributes).toMatchObject({
      "srp.request_id": id,
      "srp.job_id": job.attributes["srp.job_id"],
      "srp.node_id": r.provider.nodeId,
      "srp.outcome": "done",
      "srp.completion_tokens": answer.data.usage!.completion_tokens,
    });
  });

  it("continues a consumer's own traceparent, and a streamed request's span ends with its stream", async () => {
    exporter.reset();
    const r = await netRecordingExt();
    net = r.net;
    const consumerTrace = "0af7651916cd43dd8448eb211c80319c";
    const consumerSpan = "b7ad6b7169203331";
    const { data: stream, response } = await sdk(net.url)
      .chat.completions.create(
        { model: MODEL, messages: ask, max_tokens: 8, stream: true },
        { headers: { traceparent: `00-${consumerTrace}-${consumerSpan}-01` } },
      )
      .withResponse();
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBeTruthy();
    const spans = await traceOf(exporter, response.headers.get("x-request-id")!);
    expect(spans.map(traceId)).toEqual([consumerTrace, consumerTrace, consumerTrace]);
    const request = spans.find((s) => s.name === "srp.request")!;
    expect(request.parentSpanContext?.spanId).toBe(consumerSpan);
    expect(request.attributes["srp.stream"]).toBe(true);
    const node = spans.find((s) => s.name === "srp.node.job")!;
    expect(node.attributes["srp.stream"]).toBe(true);
  });
});

describe("logs", () => {
  it("srp-hub serve logs each consumer request as a request line with its id, which the node's job.end carries too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "srp-logs-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const env = { ...process.env };
    for (const k of ["SRP_HUB_DB", "SRP_HUB_ACCOUNTS", "SRP_ADMIN_TOKEN", "SRP_METRICS_TOKEN", "SRP_REQUEST_LOG"]) delete env[k];
    const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "--data-dir", dir, "--account", `acct_logs:${KEY}`], {
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
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /listening on (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once("exit", (code) => reject(new Error(`srp-hub serve exited (${code}) before listening:\n${err}`)));
    });
    const sim = await startSimulator();
    cleanups.push(() => sim.close());
    const node = createProvider({
      hub: url,
      identity: generateIdentity(),
      account: KEY,
      reconnect: false,
      instances: [
        { backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: { input: "100000", output: "300000" } },
      ],
    });
    cleanups.push(() => node.close());
    const ends: JobOutcome[] = [];
    node.on("job.end", (o) => ends.push(o));
    await node.ready();

    const answer = await sdk(url)
      .chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 }, { headers: { "x-request-id": "logs-test:1" } })
      .withResponse();
    expect(answer.response.headers.get("x-request-id")).toBe("logs-test:1");
    const lines = () =>
      err
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await until(() => lines().some((l) => l.event === "request" && l.requestId === "logs-test:1"), 5000, "the request line");
    const line = lines().find((l) => l.event === "request" && l.requestId === "logs-test:1")!;
    const usage = answer.data.usage as unknown as { prompt_tokens: number; completion_tokens: number; cost_units: string };
    expect(line).toMatchObject({
      surface: "/v1/chat/completions",
      model: MODEL,
      status: 200,
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      costUnits: usage.cost_units,
      stream: false,
    });
    expect(typeof line.t).toBe("string");
    expect(line.durationMs).toEqual(expect.any(Number));
    await until(() => ends.length === 1, 5000, "the node's job.end");
    expect(ends[0]).toMatchObject({ ok: true, requestId: "logs-test:1" });
  }, 30_000);
});
