/**
 * The relay end to end over real sockets: the official `openai` SDK as the consumer, a
 * hub, provider nodes (in process and in child processes) and the model simulator.
 */
import { afterEach, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { verifyHubReceipt } from "@srp/client";
import type { Receipt } from "@srp/core/schema";
import { KEY, MODEL, startNet, until, type Net } from "./helpers.js";

let net: Net | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const sdk = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
const ask = [{ role: "user" as const, content: "Tell me about spare capacity." }];

describe("chat completions through the relay", () => {
  it("streams with usage, cost and receipt id in the last chunk, and the receipt verifies", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim);
    const stream = await sdk(net.url).chat.completions.create({ model: MODEL, messages: ask, stream: true, max_tokens: 12 });
    let text = "";
    const chunks = [];
    for await (const c of stream) {
      chunks.push(c);
      text += c.choices[0]?.delta?.content ?? "";
    }
    const last = chunks[chunks.length - 1]! as unknown as { usage: Record<string, unknown>; choices: unknown[] };
    expect(text.split(/\s+/).length).toBeGreaterThan(3);
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: 12, measured: true, cost_units: expect.stringMatching(/^[1-9][0-9]*$/) });
    const receiptId = last.usage.receipt_id as string;
    // The consumer did not ask for include_usage, but the hub did (SRP-JOB-002).
    expect(sim.requests.at(-1)).toMatchObject({ stream: true, stream_options: { include_usage: true } });

    const res = await fetch(`${net.url}/v1/receipts/${receiptId}`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(res.status).toBe(200);
    const { receipt } = (await res.json()) as { receipt: Receipt };
    expect(verifyHubReceipt(receipt, net.hub.id)).toEqual({ valid: true, problems: [] });
    expect(receipt.cost).toBe(last.usage.cost_units);
    expect(receipt.usage).toMatchObject({ completionTokens: 12, measured: true });
    // Another account cannot read it; no key at all is a 401.
    expect((await fetch(`${net.url}/v1/receipts/${receiptId}`)).status).toBe(401);
  });

  it("answers non-stream requests with usage, cost and the x-srp-receipt header", async () => {
    net = await startNet();
    await net.addProvider(await net.sim());
    const { data, response } = await sdk(net.url).chat.completions.create({ model: MODEL, messages: ask, max_tokens: 5 }).withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.choices[0]!.message.content).toMatch(/\w/);
    const usage = data.usage as unknown as Record<string, unknown>;
    expect(usage).toMatchObject({ completion_tokens: 5, measured: true });
    expect(response.headers.get("x-srp-receipt")).toBe(usage.receipt_id);
    expect((await net.hub.receipts.get(usage.receipt_id as string))?.consumerAccountId).toBe("acct_test");
  });

  it("relays a tool-call round trip with tools and tool_choice untouched", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim, { capabilities: ["chat", "stream", "tools"] });
    const tools = [
      {
        type: "function" as const,
        function: {
          name: "get_weather",
          description: "Weather by city",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const client = sdk(net.url);
    const first = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Weather in Oslo?" }],
      tools,
      tool_choice: "auto",
      temperature: 0.2,
    });
    const call = first.choices[0]!.message.tool_calls![0]! as { id: string; function: { name: string; arguments: string } };
    expect(first.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toHaveProperty("city");
    expect(sim.requests.at(-1)).toMatchObject({ tools, tool_choice: "auto", temperature: 0.2 });

    const stream = await client.chat.completions.create({
      model: MODEL,
      stream: true,
      tools,
      messages: [
        { role: "user", content: "Weather in Oslo?" },
        { role: "assistant", content: null, tool_calls: [{ id: call.id, type: "function", function: call.function }] },
        { role: "tool", tool_call_id: call.id, content: "12 degrees and clear" },
      ],
    });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    expect(text).toContain("12 degrees and clear");
  });

  it("passes multimodal content parts and response_format through untouched", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim, { capabilities: ["chat", "stream", "vision", "json_mode"] });
    const messages = [
      {
        role: "user" as const,
        content: [
          { type: "text" as const, text: "What is in this picture?" },
          {
            type: "image_url" as const,
            image_url: {
              url: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
              detail: "low" as const,
            },
          },
        ],
      },
    ];
    await sdk(net.url).chat.completions.create({ model: MODEL, messages, response_format: { type: "json_object" }, top_p: 0.9, seed: 7 });
    expect(sim.requests.at(-1)).toEqual({
      model: MODEL,
      messages,
      response_format: { type: "json_object" },
      top_p: 0.9,
      seed: 7,
      stream: false,
    });
  });

  it("routes vision requests only to instances that declare vision", async () => {
    net = await startNet();
    await net.addProvider(await net.sim());
    const err = await sdk(net.url)
      .chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.invalid/a.png" } }] }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toMatch(/vision/);
  });
});

describe("errors in OpenAI's shape", () => {
  it("401 without a valid key, 404 unknown model, 400 invalid body, 405, 413", async () => {
    net = await startNet({ maxFrameBytes: 1024 * 1024 });
    await net.addProvider(await net.sim());
    const post = (body: unknown, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }) =>
      fetch(`${net!.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const bad = await post({ model: MODEL, messages: ask }, { authorization: "Bearer srp_nope" });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toEqual({
      error: { message: expect.any(String), type: "authentication_error", param: null, code: "api.unauthorized" },
    });
    const unknown = await post({ model: "no-such-model", messages: ask });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("job.unknown_model");
    expect((await post("{not json")).status).toBe(400);
    expect((await post({ model: MODEL })).status).toBe(400);
    expect((await post({ model: MODEL, messages: ask, stream: "yes" })).status).toBe(400);
    expect((await post({ model: MODEL, messages: [{ role: "user", content: "x".repeat(1100 * 1024) }] })).status).toBe(413);
    expect((await fetch(`${net.url}/v1/chat/completions`)).status).toBe(405);
    const sdkErr = await sdk(net.url)
      .chat.completions.create({ model: "no-such-model", messages: ask })
      .catch((e: unknown) => e);
    expect(sdkErr).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("503 with Retry-After when every instance is busy, 504 at the deadline", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim, { maxConcurrency: 1 });
    sim.setFault({ kind: "hang" }, 1);
    const controller = new AbortController();
    const hung = fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", "x-srp-timeout-ms": "600" },
      body: JSON.stringify({ model: MODEL, messages: ask }),
      signal: controller.signal,
    });
    await until(() => sim.openRequests > 0, 5000, "the hung upstream request");
    // A request that will not wait for a slot (SRP-CON-065; test/queue.test.ts covers waiting).
    const busy = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", "x-srp-queue-timeout-ms": "0" },
      body: JSON.stringify({ model: MODEL, messages: ask }),
    });
    expect(busy.status).toBe(503);
    expect(busy.headers.get("retry-after")).toBe("1");
    const timedOut = await hung;
    expect(timedOut.status).toBe(504);
    expect(((await timedOut.json()) as { error: { code: string } }).error.code).toBe("job.deadline_exceeded");
    // The deadline cancelled the job: the provider aborted its upstream request and freed the slot.
    await until(() => sim.openRequests === 0, 5000, "the upstream request to be aborted");
    const again = await sdk(net.url).chat.completions.create({ model: MODEL, messages: ask });
    expect(again.choices[0]!.message.content).toBeTruthy();
  });
});

describe("failures", () => {
  it("fails over transparently when a provider is killed before the first token", async () => {
    net = await startNet();
    const slow = await net.sim({ latencyMs: 60_000 });
    const good = await net.sim();
    const doomed = await net.addChildProvider(slow, { input: "1", output: "1" }); // cheapest: chosen first
    await net.addProvider(good);
    const pending = sdk(net.url).chat.completions.create({
      model: MODEL,
      messages: ask,
      stream: true,
      srp: { sort: "price" },
    } as never) as unknown as Promise<AsyncIterable<{ choices: { delta?: { content?: string } }[] }>>;
    await until(() => slow.requests.length > 0, 5000, "the doomed provider to receive the job");
    doomed.kill("SIGKILL");
    let text = "";
    for await (const c of await pending) text += c.choices[0]?.delta?.content ?? "";
    expect(text.length).toBeGreaterThan(0);
    expect(good.requests).toHaveLength(1);
  });

  it("ends the stream with an in-band error and no [DONE] when a provider is killed mid-stream", async () => {
    net = await startNet();
    const sim = await net.sim({ tokensPerSecond: 20, defaultMaxTokens: 200 });
    const doomed = await net.addChildProvider(sim);
    const client = sdk(net.url);
    const stream = await client.chat.completions.create({ model: MODEL, messages: ask, stream: true });
    let text = "";
    const consumed = (async () => {
      for await (const c of stream) {
        text += c.choices[0]?.delta?.content ?? "";
        if (text.length > 10 && doomed.exitCode === null && doomed.signalCode === null) doomed.kill("SIGKILL");
      }
    })();
    const error = await consumed.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as Error).message).toMatch(/mid-stream/);
    expect(text.length).toBeGreaterThan(10);

    // The same failure seen on the wire: an error event, and never [DONE].
    const sim2 = await net.sim({ tokensPerSecond: 200 });
    await net.addProvider(sim2);
    sim2.setFault({ kind: "drop_mid_stream", afterTokens: 3 });
    // Only the in-process provider is left (the child is dead).
    const res = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: ask, stream: true }),
    });
    const body = await res.text();
    expect(res.status).toBe(200);
    expect(body).toContain('"code":"job.stream_interrupted"');
    expect(body).not.toContain("[DONE]");
    expect(body.trimEnd().split("\n\n").at(-1)).toMatch(/^data: \{"error":/);
  });

  it("cancels the provider job and frees its slot when the consumer goes away", async () => {
    net = await startNet();
    const sim = await net.sim({ tokensPerSecond: 20, defaultMaxTokens: 500 });
    const provider = await net.addProvider(sim, { maxConcurrency: 1 });
    const ended: { code?: string }[] = [];
    provider.on("job.end", (o) => ended.push(o));
    const controller = new AbortController();
    const stream = await sdk(net.url).chat.completions.create({ model: MODEL, messages: ask, stream: true }, { signal: controller.signal });
    let n = 0;
    // The SDK ends the iteration (or throws an abort error) once aborted.
    await (async () => {
      for await (const _ of stream) if (++n === 3) controller.abort();
    })().catch((e: unknown) => expect(e).toBeInstanceOf(OpenAI.APIUserAbortError));
    expect(n).toBe(3);
    await until(() => ended.length === 1, 5000, "the provider job to end");
    expect(ended[0]!.code).toBe("job.cancelled");
    await until(() => sim.openRequests === 0, 5000, "the upstream request to be aborted");
    expect(net.hub.router.all()[0]!.session.active.size).toBe(0);
    // The single slot is free again.
    const next = await sdk(net.url).chat.completions.create({ model: MODEL, messages: ask, max_tokens: 3 });
    expect(next.choices[0]!.message.content).toBeTruthy();
  });

  it("parks an instance after 3 failures in 60 s and lets it back in after one probe; 4xx are neutral", async () => {
    net = await startNet({ routingConfig: { parkMs: 300 } });
    const sim = await net.sim();
    await net.addProvider(sim);
    const changes: { status: string; lastForModel: boolean }[] = [];
    net.hub.on("breaker", (c) => changes.push(c));
    const client = sdk(net.url);

    sim.setFault({ kind: "status", status: 400 }, 5);
    for (let i = 0; i < 5; i++)
      await expect(client.chat.completions.create({ model: MODEL, messages: ask })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    expect(changes).toEqual([]); // consumer-caused errors are neutral

    sim.setFault({ kind: "status", status: 500 }, 3);
    for (let i = 0; i < 3; i++)
      await expect(client.chat.completions.create({ model: MODEL, messages: ask })).rejects.toBeInstanceOf(OpenAI.APIError);
    expect(changes).toEqual([expect.objectContaining({ status: "parked", lastForModel: true })]);
    const parked = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: ask }),
    });
    expect(parked.status).toBe(503);
    expect(Number(parked.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await parked.json()) as { error: { message: string } }).error.message).toMatch(/parked/);
    const before = sim.requests.length;

    await until(() => changes.length === 2, 5000, "the probe to readmit the instance");
    expect(changes[1]).toMatchObject({ status: "readmitted" });
    expect(sim.requests.length).toBe(before + 1); // the probe, and nothing else
    expect(sim.requests.at(-1)).toMatchObject({ max_tokens: 1, stream: false });
    const ok = await client.chat.completions.create({ model: MODEL, messages: ask });
    expect(ok.choices[0]!.message.content).toBeTruthy();
  });

  it("providers reconnect by themselves after a hub restart", async () => {
    net = await startNet();
    const port = Number(new URL(net.url).port);
    const sim = await net.sim();
    const provider = await net.addProvider(sim);
    await net.hub.close();
    const first = net;
    net = await startNet({ port, identity: first.identity });
    net.providers.push(provider);
    net.sims.push(sim);
    await until(() => net!.hub.router.all().length === 1, 10_000, "the provider to come back");
    const r = await sdk(net.url).chat.completions.create({ model: MODEL, messages: ask });
    expect(r.choices[0]!.message.content).toBeTruthy();
  });
});
