/** Bad input from a node or a consumer costs them, never the hub or other instances. */
import { afterEach, expect, it } from "vitest";
import { createReceipt, encode, generateIdentity, INITIAL_POSITION, requestHash } from "@srp/core";
import type { SrpMessage } from "@srp/core/schema";
import { connectToHub } from "@srp/provider";
import { KEY, MODEL, startNet, until, type Net } from "./helpers.js";

let net: Net | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
    body,
  });

it("a node sending a chunk without a canonical JSON form loses its session; the hub keeps serving", async () => {
  net = await startNet();
  const good = await net.sim();
  await net.addProvider(good, { price: { input: "9", output: "9" } });
  const evil = connectToHub({ hub: net.url, identity: generateIdentity(), account: { kind: "api_key", key: KEY }, reconnect: false });
  await evil.ready();
  const jobs: SrpMessage[] = [];
  evil.on("message", (m) => jobs.push(m));
  evil.sendEncoded(
    encode({
      type: "offer",
      instances: [
        {
          instanceId: "evil.0",
          model: MODEL,
          tier: "gpu",
          backend: { kind: "other" },
          price: { input: "1", output: "1" },
          maxConcurrency: 4,
          tokensPerSecond: 50,
          contextLength: 8192,
          capabilities: ["chat", "stream"],
        },
      ],
    }),
  );
  await until(() => jobs.some((m) => m.type === "offer_ack"), 5000, "offer_ack");
  const closed = new Promise<{ code: number }>((resolve) => evil.once("disconnected", resolve));
  // Cheapest first: the evil instance gets the job.
  const pending = post(
    net.url,
    JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true, srp: { sort: "price" } }),
  );
  await until(() => jobs.some((m) => m.type === "job"), 5000, "the job");
  const job = jobs.find((m) => m.type === "job") as Extract<SrpMessage, { type: "job" }>;
  // Valid JSON, valid schema, but a lone surrogate has no RFC 8785 form.
  evil.sendEncoded(`{"type":"chunk","jobId":"${job.jobId}","seq":0,"data":{"choices":[{"index":0,"delta":{"content":"\\ud800"}}]}}`);
  expect((await closed).code).toBe(4422);
  // The request failed over to the honest instance before any content reached the consumer.
  const res = await pending;
  expect(res.status).toBe(200);
  expect(await res.text()).toContain("[DONE]");
  expect(good.requests).toHaveLength(1);
  await evil.close();
});

it("a consumer body without a canonical JSON form is a 400, and nothing reaches a node", async () => {
  net = await startNet();
  const sim = await net.sim();
  await net.addProvider(sim);
  const res = await post(net.url, `{"model":"${MODEL}","messages":[{"role":"user","content":"\\ud800"}]}`);
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe("api.invalid_body");
  expect(sim.requests).toHaveLength(0);
});

it("deadlines a consumer chose do not count against the instance (no parking by short timeouts)", async () => {
  net = await startNet();
  const sim = await net.sim();
  await net.addProvider(sim);
  const changes: unknown[] = [];
  net.hub.on("breaker", (c) => changes.push(c));
  sim.setFault({ kind: "hang" }, 4);
  for (let i = 0; i < 4; i++) {
    // 1 ms is raised to the 1 s floor.
    const res = await post(net.url, JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }), {
      "x-srp-timeout-ms": "1",
    });
    expect(res.status).toBe(504);
  }
  expect(changes).toEqual([]);
  const ok = await post(net.url, JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }));
  expect(ok.status).toBe(200);
});

it("a node that ends a non-streamed job without a response is not billed or countersigned; the request fails over", async () => {
  net = await startNet();
  const good = await net.sim();
  await net.addProvider(good, { price: { input: "9", output: "9" } });
  const identity = generateIdentity();
  const evil = connectToHub({ hub: net.url, identity, account: { kind: "api_key", key: KEY }, reconnect: false });
  await evil.ready();
  const seen: SrpMessage[] = [];
  evil.on("message", (m) => seen.push(m));
  evil.sendEncoded(
    encode({
      type: "offer",
      instances: [
        {
          instanceId: "evil.0",
          model: MODEL,
          tier: "gpu",
          backend: { kind: "other" },
          price: { input: "1", output: "1" },
          maxConcurrency: 4,
          tokensPerSecond: 50,
          contextLength: 8192,
          capabilities: ["chat", "stream"],
        },
      ],
    }),
  );
  await until(() => seen.some((m) => m.type === "offer_ack"), 5000, "offer_ack");
  const pending = post(net.url, JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], srp: { sort: "price" } }));
  await until(() => seen.some((m) => m.type === "job"), 5000, "the job");
  const job = seen.find((m) => m.type === "job") as Extract<SrpMessage, { type: "job" }>;
  const usage = { promptTokens: 5, completionTokens: 5, measured: true };
  const receipt = createReceipt(
    {
      jobId: job.jobId,
      hubId: net.hub.id,
      instanceId: job.instanceId,
      model: job.model,
      requestHash: requestHash(job.request),
      responseHash: requestHash({}),
      usage,
      price: job.quote,
      startedAt: Date.now() - 5,
      finishedAt: Date.now(),
    },
    INITIAL_POSITION,
    identity,
  );
  evil.sendEncoded(encode({ type: "done", jobId: job.jobId, chunks: 0, usage, receipt }));
  const res = await pending;
  expect(res.status).toBe(200);
  expect(good.requests).toHaveLength(1);
  await until(() => seen.some((m) => m.type === "error" && (m as { jobId?: string }).jobId === job.jobId), 5000, "the hub's error");
  expect(seen.find((m) => m.type === "error")).toMatchObject({ code: "receipt.field_mismatch" });
  expect(seen.some((m) => m.type === "receipt")).toBe(false);
  expect(await net.hub.receipts.get(job.jobId)).toBeUndefined();
  await evil.close();
});
