import { describe, expect, it } from "vitest";
import { formatSse, parseSse, type SseEvent } from "./sse.js";
import { requestHash, responseHash, StreamHasher } from "./hashing.js";
import { usageFromOpenAI } from "./openai.js";

async function collect(parts: string[]): Promise<SseEvent[]> {
  const enc = new TextEncoder();
  async function* gen() {
    for (const p of parts) yield enc.encode(p);
  }
  const out: SseEvent[] = [];
  for await (const e of parseSse(gen())) out.push(e);
  return out;
}

describe("parseSse", () => {
  it("parses data lines split across arbitrary byte boundaries", async () => {
    const text = formatSse({ a: 1 }) + ": comment\n\n" + formatSse("[DONE]");
    for (let cut = 1; cut < text.length; cut++) {
      expect(await collect([text.slice(0, cut), text.slice(cut)])).toEqual([{ data: '{"a":1}' }, { data: "[DONE]" }]);
    }
  });

  it("handles CRLF, CR, named events, ids, multi-line data and a BOM", async () => {
    const events = await collect([
      "\uFEFFevent: message_start\r\nid: 7\r\ndata: a\r\ndata: b\r\n\r",
      "\ndata: c\r\rdata: tail-without-blank-line",
    ]);
    expect(events).toEqual([
      { event: "message_start", id: "7", data: "a\nb" },
      { data: "c", id: "7" },
    ]);
  });

  it("refuses an event larger than the limit", async () => {
    const gen = async function* () {
      yield new TextEncoder().encode(`data: ${"x".repeat(100)}\n\n`);
    };
    await expect(async () => {
      for await (const _ of parseSse(gen(), { maxEventChars: 10 })) void _;
    }).rejects.toThrow(RangeError);
  });

  it("formats multi-line text as several data lines", () => {
    expect(formatSse("a\nb", "ping")).toBe("event: ping\ndata: a\ndata: b\n\n");
  });
});

describe("hashes", () => {
  it("the stream hash equals the hash of the array of chunk data", () => {
    const chunks = [{ b: 2, a: 1 }, { c: "é" }, { d: [1, 2] }];
    const h = new StreamHasher();
    for (const c of chunks) h.add(c);
    expect(h.count).toBe(3);
    expect(h.digest()).toBe(responseHash(chunks));
    expect(new StreamHasher().digest()).toBe(responseHash([]));
  });

  it("the request hash ignores member order", () => {
    expect(requestHash({ model: "m", messages: [] })).toBe(requestHash({ messages: [], model: "m" }));
    expect(requestHash({ model: "m" })).not.toBe(requestHash({ model: "n" }));
  });
});

describe("usageFromOpenAI", () => {
  it("reads counts, cached and reasoning tokens", () => {
    expect(
      usageFromOpenAI({
        prompt_tokens: 10,
        completion_tokens: 5,
        prompt_tokens_details: { cached_tokens: 4 },
        completion_tokens_details: { reasoning_tokens: 2 },
      }),
    ).toEqual({ promptTokens: 10, completionTokens: 5, cachedTokens: 4, reasoningTokens: 2, measured: true });
  });
  it("returns undefined without integer counts", () => {
    expect(usageFromOpenAI(null)).toBeUndefined();
    expect(usageFromOpenAI({ prompt_tokens: 1.5, completion_tokens: 2 })).toBeUndefined();
    expect(usageFromOpenAI({ prompt_tokens: 3 })).toBeUndefined();
  });
});
