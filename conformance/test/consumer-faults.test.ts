// The consumer API checks of hub-consumer-rules.ts against faulty hubs (fixtures/faulty-hub.ts):
// each fails against a hub that breaks exactly its rule and passes through the unchanged
// relay. Then our hub's real answers (a simulator node behind it) are validated against
// the schemas of the OpenAPI document, and the x-srp-timeout-ms parsing is pinned.
import { generateIdentity } from "@srp/core";
import { consumerOpenApi } from "@srp/core/schema";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timeoutOf } from "../../packages/srp-hub/src/api/serve.js";
import { KEY, MODEL, startNet, type Net } from "../../test/helpers.js";
import { runAgainstFault as run } from "./fixtures/faulty-hub.js";

/** check id -> the fault that must fail it (a hub without a ledger), and what the failure says. */
const CHECK_FAULTS: [string, string, RegExp][] = [
  ["hub.consumer.timeout_header", "deadline_ignores_header", /expected 40000 ms more/],
  ["hub.consumer.receipts", "receipt_unsigned", /hubSig is missing/],
  ["hub.consumer.models_list", "models_unpriced", /pricing_units_per_million/],
  ["hub.consumer.stream_usage", "usage_only_when_asked", /0 chunks carry a usage object/],
  ["hub.consumer.stream_usage", "cost_float", /usage\.cost is "0\.1"; for cost_units 100000 it is "0\.10"/],
  ["hub.consumer.stream_error", "midstream_clean_end", /carries data: \[DONE\].*carries message_stop/],
  ["hub.consumer.attempts_exhausted", "lost_as_500", /status 500, expected 502.*code internal, expected job\.upstream_error/],
  ["hub.consumer.messages_blocks", "messages_blocks_accepted", /a block of an unknown type: status 200, expected 400/],
];

describe("consumer API checks against faulty hubs", () => {
  it("the unchanged relay passes every check listed here", async () => {
    const results = await run("none", [...new Set(CHECK_FAULTS.map(([c]) => c))]);
    expect(Object.keys(results).length).toBe(7);
    expect(Object.entries(results).filter(([, [s]]) => s !== "pass")).toEqual([]);
  }, 60_000);

  for (const [check, fault, why] of CHECK_FAULTS) {
    it(`${check} fails against the fault ${fault}`, async () => {
      const results = await run(fault, [check]);
      expect(results[check]?.[0]).toBe("fail");
      expect(results[check]?.[1]).toMatch(why);
    }, 30_000);
  }

  it("hub.consumer.insufficient_credits passes against a billing hub, fails without the amounts, and skips where the hub bills nobody", async () => {
    const check = "hub.consumer.insufficient_credits";
    expect((await run("none", [check], {}, { ledger: true }))[check]).toEqual(["pass", ""]);
    const faulty = (await run("insufficient_without_amounts", [check], {}, { ledger: true }))[check];
    expect(faulty?.[0]).toBe("fail");
    expect(faulty?.[1]).toMatch(/required\/available/);
    expect((await run("none", [check]))[check]?.[0]).toBe("skipped");
  }, 60_000);
});

describe("x-srp-timeout-ms (SRP-CON-025)", () => {
  const budget = (value?: string) =>
    timeoutOf(new Request("http://hub.test/", value === undefined ? {} : { headers: { "x-srp-timeout-ms": value } }), 120_000);
  it("clamps an integer to 1 s .. 1 h and ignores anything else", () => {
    expect(budget("5000")).toEqual({ ms: 5000, chosen: true });
    expect(budget("250")).toEqual({ ms: 1000, chosen: true });
    expect(budget("99999999999999999999")).toEqual({ ms: 3_600_000, chosen: true });
    for (const bad of [undefined, "", "0", "-5", "1e4", "0x10", "12.5", "abc"]) expect(budget(bad)).toEqual({ ms: 120_000, chosen: false });
  });
  it("is a parameter of the relayed endpoints in openapi.json", () => {
    const doc = consumerOpenApi("https://hub.example") as { paths: Record<string, { post?: { parameters?: Array<{ name: string }> } }> };
    for (const p of ["/v1/chat/completions", "/v1/messages", "/v1/embeddings"])
      expect(doc.paths[p]?.post?.parameters?.map((x) => x.name)).toContain("x-srp-timeout-ms");
  });
});

describe("our hub's answers match openapi.json", () => {
  let net: Net;
  const doc = consumerOpenApi("https://hub.example") as {
    components: { schemas: Record<string, object> };
    paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> }>>;
  };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  /** Validates `body` against the schema the document names for `path`'s `method` answering `status` (JSON). */
  const conforms = (path: string, method: string, status: number, body: unknown) => {
    const ref = doc.paths[path]?.[method]?.responses[String(status)]?.content?.["application/json"]?.schema?.$ref;
    expect(ref, `${method} ${path} ${status} has a JSON schema`).toMatch(/^#\/components\/schemas\//);
    const validate = ajv.compile(doc.components.schemas[ref!.split("/").at(-1)!]!);
    expect(validate(body) ? [] : validate.errors, `${method} ${path} ${status}: ${JSON.stringify(body).slice(0, 300)}`).toEqual([]);
  };
  const component = (name: string, body: unknown) => {
    const validate = ajv.compile(doc.components.schemas[name]!);
    expect(validate(body) ? [] : validate.errors, `${name}: ${JSON.stringify(body).slice(0, 300)}`).toEqual([]);
  };
  const call = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${net.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}`, ...headers },
      body: JSON.stringify(body),
    });
  const sse = async (res: Response) => (await res.text()).split("\n\n").filter((e) => e.trim() !== "");
  const data = (event: string) => JSON.parse(event.slice(event.indexOf("data: ") + 6)) as Record<string, unknown>;

  beforeAll(async () => {
    net = await startNet({ identity: generateIdentity() });
    await net.addProvider(await net.sim());
  });
  afterAll(() => net.close());

  it("chat completions, streamed and not, with their usage, and the receipt they name", async () => {
    const ask = { model: MODEL, messages: [{ role: "user", content: "Hello there." }], max_tokens: 6 };
    const whole = await call("/v1/chat/completions", ask);
    expect(whole.status).toBe(200);
    const completion = (await whole.json()) as { usage: { receipt_id: string } };
    conforms("/v1/chat/completions", "post", 200, completion);
    const events = await sse(await call("/v1/chat/completions", { ...ask, stream: true }));
    expect(events.at(-1)).toBe("data: [DONE]");
    const last = data(events.at(-2)!);
    expect(last.choices).toEqual([]);
    component("OpenAIUsage", last.usage);
    const receipt = await fetch(`${net.url}/v1/receipts/${completion.usage.receipt_id}`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(receipt.status).toBe(200);
    conforms("/v1/receipts/{id}", "get", 200, await receipt.json());
    const unknown = await fetch(`${net.url}/v1/receipts/job_unknown`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(unknown.status).toBe(404);
    conforms("/v1/receipts/{id}", "get", 404, await unknown.json());
    const anonymous = await fetch(`${net.url}/v1/receipts/${completion.usage.receipt_id}`);
    expect(anonymous.status).toBe(401);
    conforms("/v1/receipts/{id}", "get", 401, await anonymous.json());
  });

  it("Anthropic Messages, streamed and not, with their usage", async () => {
    const ask = { model: MODEL, max_tokens: 6, messages: [{ role: "user", content: "Hello there." }] };
    const whole = await call("/v1/messages", ask);
    expect(whole.status).toBe(200);
    conforms("/v1/messages", "post", 200, await whole.json());
    const events = await sse(await call("/v1/messages", { ...ask, stream: true }));
    const delta = events.map(data).find((e) => e.type === "message_delta");
    component("AnthropicUsage", delta?.usage);
  });

  it("the model list", async () => {
    const res = await fetch(`${net.url}/v1/models`);
    const list = (await res.json()) as { data: Array<{ id: string }> };
    expect(list.data.map((m) => m.id)).toContain(MODEL);
    conforms("/v1/models", "get", 200, list);
  });

  it("every error, in both shapes", async () => {
    const chat = { model: MODEL, messages: [{ role: "user", content: "x" }], max_tokens: 2 };
    const cases: [string, unknown, Record<string, string>, number][] = [
      ["/v1/chat/completions", chat, { authorization: "Bearer srp_unknown" }, 401],
      ["/v1/chat/completions", { ...chat, messages: [] }, {}, 400],
      ["/v1/chat/completions", { ...chat, model: "no-such-model" }, {}, 404],
      ["/v1/embeddings", { model: MODEL, input: "x" }, {}, 404],
      ["/v1/messages", { model: MODEL, messages: [{ role: "user", content: "x" }] }, {}, 400],
      [
        "/v1/messages",
        { model: MODEL, max_tokens: 2, messages: [{ role: "user", content: "x" }] },
        { authorization: "", "x-api-key": "srp_unknown" },
        401,
      ],
      ["/v1/messages", { model: "no-such-model", max_tokens: 2, messages: [{ role: "user", content: "x" }] }, {}, 404],
    ];
    for (const [path, body, headers, status] of cases) {
      const res = await call(path, body, headers);
      expect(res.status, path).toBe(status);
      conforms(path, "post", status, await res.json());
    }
  });
});
