/**
 * Hostile input over real sockets: deeply nested bodies, content that is not typed parts,
 * and frames a WebSocket library would close on its own (bad UTF-8, far over the limit)
 * or a JSON parser would accept (duplicate member names, deep nesting). Each gets the
 * spec's error, and the hub keeps serving everyone else.
 */
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createAuth, generateIdentity } from "@srp/core";
import type { Hello } from "@srp/core/schema";
import { KEY, MODEL, startNet, type Net } from "./helpers.js";

let net: Net | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const deep = (n: number) => "[".repeat(n) + "]".repeat(n);

async function post(path: string, body: string, auth = true): Promise<{ status: number; code: unknown }> {
  const res = await fetch(`${net!.url}${path}`, {
    method: "POST",
    headers: { ...(auth ? { authorization: `Bearer ${KEY}` } : {}), "content-type": "application/json" },
    body,
  });
  const json = (await res.json()) as { error?: { code?: unknown } };
  return { status: res.status, code: json.error?.code };
}

async function chatWorks(): Promise<void> {
  const ok = await post("/v1/chat/completions", JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }));
  expect(ok.status).toBe(200);
}

describe("consumer bodies", () => {
  it("a body nested 100 000 levels deep is a 400 api.invalid_body on every surface, before any recursion; the hub keeps serving", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim);
    const content = deep(100_000);
    expect(await post("/v1/chat/completions", `{"model":"${MODEL}","messages":[{"role":"user","content":${content}}]}`)).toEqual({
      status: 400,
      code: "api.invalid_body",
    });
    expect(await post("/v1/estimate", `{"model":"${MODEL}","messages":[{"role":"user","content":${content}}]}`, false)).toEqual({
      status: 400,
      code: "api.invalid_body",
    });
    const messages = await fetch(`${net.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "content-type": "application/json" },
      body: `{"model":"${MODEL}","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"x","extra":${content}}]}]}`,
    });
    expect(messages.status).toBe(400);
    expect(((await messages.json()) as { error: { code: string } }).error.code).toBe("api.invalid_body");
    // 64 levels are fine (SRP-CON-021): the tool schema below is the 64th level.
    let schema: unknown = { type: "string" };
    for (let d = 6; d < 64; d++) schema = [schema]; // levels 6..64 under {tools[{function{parameters{x
    const body = (inner: unknown) =>
      JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "hi" }],
        tools: [{ type: "function", function: { name: "f", parameters: { x: inner } } }],
      });
    expect((await post("/v1/estimate", body(schema), false)).status).toBe(200);
    expect(await post("/v1/estimate", body([schema]), false)).toEqual({ status: 400, code: "api.invalid_body" });
    expect(sim.requests).toHaveLength(0);
    await chatWorks();
    expect(sim.requests).toHaveLength(1);
  });

  it("content that is not a string, null or typed parts is refused, never served or billed", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim);
    const chat = await post("/v1/chat/completions", JSON.stringify({ model: MODEL, messages: [{ role: "user", content: [[["hi"]]] }] }));
    expect(chat).toEqual({ status: 400, code: "api.invalid_body" });
    const unknown = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: [{ type: "hologram", hologram: {} }] }] }),
    });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe(
      '/messages/0/content/0/type: "hologram" is not a type this API defines here (text, image_url, input_audio, file, refusal)',
    );
    const messages = await fetch(`${net.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, max_tokens: 5, messages: [{ role: "user", content: [[["hi"]]] }] }),
    });
    expect(messages.status).toBe(400);
    expect(sim.requests).toHaveLength(0);
    await chatWorks();
  });
});

/** A raw node connection to the hub: frames in order, and the close. */
class RawNode {
  readonly frames: Record<string, unknown>[] = [];
  closed: Promise<{ code: number; reason: string }>;
  readonly ws: WebSocket;
  #wake: (() => void) | undefined;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on("message", (data) => {
      this.frames.push(JSON.parse(String(data)) as Record<string, unknown>);
      this.#wake?.();
    });
    this.closed = new Promise((resolve) => this.ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })));
    this.ws.on("error", () => undefined);
  }

  static async open(): Promise<{ node: RawNode; hello: Hello }> {
    const doc = (await (await fetch(`${net!.url}/.well-known/srp.json`)).json()) as { provider: { url: string } };
    const node = new RawNode(doc.provider.url);
    const hello = (await node.next()) as unknown as Hello;
    expect(hello.type).toBe("hello");
    return { node, hello };
  }

  async next(): Promise<Record<string, unknown>> {
    while (this.frames.length === 0) await new Promise<void>((r) => (this.#wake = r));
    return this.frames.shift()!;
  }

  /** The frames after hello up to the close, and the close. */
  async end(): Promise<{ frames: Record<string, unknown>[]; code: number }> {
    const { code } = await this.closed;
    return { frames: this.frames.splice(0), code };
  }
}

const rejection = (code: string) => [expect.objectContaining({ type: "error", code, retryable: false })];

describe("frames", () => {
  it("a text frame that is not UTF-8 is answered with an error frame.malformed, then closed 1007 (SRP-FRM-014)", async () => {
    net = await startNet();
    const { node } = await RawNode.open();
    node.ws.send(Buffer.from([...Buffer.from('{"type":"goodbye","reason":"'), 0x80, 0xc0, 0xaf, ...Buffer.from('"}')]), { binary: false });
    const { frames, code } = await node.end();
    expect(frames).toEqual(rejection("frame.malformed"));
    expect(code).toBe(1007);
  });

  it("a frame over the limit gets frame.too_large up to twice the limit; beyond that ws closes 1009 unbuffered (SRP-FRM-015)", async () => {
    net = await startNet(); // the default limit, 4 MiB
    const goodbye = (bytes: number) => `{"type":"goodbye","reason":"${"x".repeat(bytes - 30)}"}`;
    const a = await RawNode.open();
    a.node.ws.send(goodbye(2 * 4_194_304));
    expect(await a.node.end()).toEqual({ frames: rejection("frame.too_large"), code: 1009 });
    const b = await RawNode.open();
    b.node.ws.send(goodbye(2 * 4_194_304 + 1));
    expect(await b.node.end()).toEqual({ frames: [], code: 1009 });
  });

  it("a correctly signed auth with a member name twice is refused with frame.malformed, never welcomed (SRP-FRM-016)", async () => {
    net = await startNet();
    for (const duplicate of ["nodeId", "kind"]) {
      const { node, hello } = await RawNode.open();
      const identity = generateIdentity();
      const auth = JSON.stringify(createAuth({ identity, hello, account: { kind: "api_key", key: KEY } }));
      const member = duplicate === "nodeId" ? `"nodeId":"${identity.id}"` : `"kind":"api_key"`;
      expect(auth).toContain(member);
      node.ws.send(auth.replace(member, `${member},${member}`));
      expect(await node.end()).toEqual({ frames: rejection("frame.malformed"), code: 1007 });
    }
    // The same auth without the duplicate is welcomed.
    const { node, hello } = await RawNode.open();
    node.ws.send(JSON.stringify(createAuth({ identity: generateIdentity(), hello, account: { kind: "api_key", key: KEY } })));
    expect((await node.next()).type).toBe("welcome");
    node.ws.close();
  });

  it("a frame nested 100 000 levels deep is refused with frame.malformed; the hub keeps serving (SRP-FRM-017)", async () => {
    net = await startNet();
    const sim = await net.sim();
    await net.addProvider(sim);
    const { node } = await RawNode.open();
    node.ws.send(`{"type":"goodbye","reason":"x","ext":{"x.deep":${deep(100_000)}}}`);
    expect(await node.end()).toEqual({ frames: rejection("frame.malformed"), code: 1007 });
    await chatWorks();
  });
});
