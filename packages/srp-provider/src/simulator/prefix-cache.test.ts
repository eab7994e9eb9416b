import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { startAnthropicSimulator, type AnthropicSimulator } from "./anthropic.js";
import { chatPromptSequence, messagesPromptSequence, PrefixCache } from "./prefix-cache.js";
import { startSimulator, type Simulator } from "./server.js";
import { countPromptTokens } from "./text.js";

const SYSTEM = `You are a coding agent. ${"Read before you write, and test what you change. ".repeat(20)}`;

function conversation(turns: number, first = "Fix the bug in parser.ts") {
  const messages: Record<string, unknown>[] = [
    { role: "system", content: SYSTEM },
    { role: "user", content: first },
  ];
  for (let i = 1; i < turns; i++)
    messages.push({ role: "assistant", content: `Done step ${i}.` }, { role: "user", content: `Now step ${i + 1}.` });
  return messages;
}

describe("prompt sequences", () => {
  it("have as many tokens as the simulator bills (property over message shapes)", () => {
    const part = fc.oneof(
      fc.record({ type: fc.constant("text"), text: fc.string() }),
      fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: fc.string() }) }),
    );
    const message = fc.record({
      role: fc.constantFrom("system", "user", "assistant", "tool"),
      content: fc.oneof(fc.string(), fc.array(part, { maxLength: 3 })),
    });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 6 }), (messages) => {
        expect(chatPromptSequence("m", messages).length).toBe(countPromptTokens(messages));
      }),
    );
  });

  it("differ by model, so two models never share a prefix", () => {
    const a = chatPromptSequence("a", conversation(1));
    const b = chatPromptSequence("b", conversation(1));
    expect(a.length).toBe(b.length);
    expect(a[0]).not.toBe(b[0]);
  });
});

describe("PrefixCache", () => {
  it("reports the longest prefix shared with a remembered prompt, less the last token", () => {
    const cache = new PrefixCache(4);
    const t1 = chatPromptSequence("m", conversation(1));
    const t2 = chatPromptSequence("m", conversation(2));
    expect(cache.serve(t1)).toBe(0);
    expect(cache.serve(t2)).toBe(t1.length); // turn 2 starts with all of turn 1
    expect(cache.serve(t2)).toBe(t2.length - 1); // the same prompt again: all but its last token
    const other = chatPromptSequence("m", conversation(2, "Write docs"));
    const shared = cache.serve(other);
    expect(shared).toBeGreaterThan(0); // the system prompt
    expect(shared).toBeLessThan(t1.length);
  });

  it("forgets the oldest prompts beyond its bound and the prompts a newer one extends", () => {
    const cache = new PrefixCache(2);
    const conv = (first: string) => chatPromptSequence("m", [{ role: "user", content: `${first} ${"words ".repeat(50)}` }]);
    cache.serve(conv("alpha"));
    cache.serve(conv("beta"));
    cache.serve(conv("gamma"));
    expect(cache.size).toBe(2);
    expect(cache.serve(conv("alpha"))).toBe(4); // only the framing tokens are shared now
    const c = new PrefixCache(8);
    c.serve(chatPromptSequence("m", conversation(1)));
    c.serve(chatPromptSequence("m", conversation(2)));
    expect(c.size).toBe(1);
  });
});

describe("the simulators' prefix cache (a simulator feature)", () => {
  let sim: Simulator | undefined;
  let anth: AnthropicSimulator | undefined;
  afterEach(async () => {
    await sim?.close();
    await anth?.close();
    sim = anth = undefined;
  });

  const chat = async (s: Simulator, messages: unknown, stream = false) => {
    const res = await fetch(`${s.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "sim-llama-3-8b",
        messages,
        max_tokens: 8,
        stream,
        ...(stream ? { stream_options: { include_usage: true } } : {}),
      }),
    });
    if (!stream)
      return ((await res.json()) as { usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } }).usage;
    const text = await res.text();
    type Usage = { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
    const chunks = text
      .split("\n\n")
      .filter((l) => l.startsWith("data: {"))
      .map((l) => JSON.parse(l.slice(6)) as { usage?: Usage | null });
    return chunks.filter((c) => c.usage).at(-1)!.usage!;
  };

  it("reports cached_tokens for a conversation's later turns, streamed and not", async () => {
    sim = await startSimulator({ prefixCache: true });
    const u1 = await chat(sim, conversation(1));
    expect(u1.prompt_tokens_details.cached_tokens).toBe(0);
    const u2 = await chat(sim, conversation(2));
    expect(u2.prompt_tokens_details.cached_tokens).toBe(u1.prompt_tokens);
    const u3 = await chat(sim, conversation(3), true);
    expect(u3.prompt_tokens_details.cached_tokens).toBe(u2.prompt_tokens);
    expect(u3.prompt_tokens).toBe(countPromptTokens(conversation(3)));
  });

  it("reports no cached tokens when the feature is off (the default)", async () => {
    sim = await startSimulator();
    await chat(sim, conversation(1));
    expect((await chat(sim, conversation(2))).prompt_tokens_details.cached_tokens).toBe(0);
  });

  it("the Anthropic simulator reports cache reads for marked requests, and input_tokens without them", async () => {
    anth = await startAnthropicSimulator({ prefixCache: true });
    const send = async (turns: number, mark: boolean) => {
      const messages: Record<string, unknown>[] = [{ role: "user", content: [{ type: "text", text: "Refactor the parser" }] }];
      for (let i = 1; i < turns; i++)
        messages.push(
          { role: "assistant", content: [{ type: "text", text: `ok ${i}` }] },
          { role: "user", content: [{ type: "text", text: `next ${i}` }] },
        );
      const system = [{ type: "text", text: SYSTEM, ...(mark ? { cache_control: { type: "ephemeral" } } : {}) }];
      const body = { model: "claude-sim-1", max_tokens: 8, system, messages };
      const res = await fetch(`${anth!.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "sk-ant-sim", "anthropic-version": "2023-06-01" },
        body: JSON.stringify(body),
      });
      const usage = ((await res.json()) as { usage: { input_tokens: number; cache_read_input_tokens?: number } }).usage;
      return { ...usage, total: messagesPromptSequence("claude-sim-1", body).length };
    };
    const first = await send(1, true);
    expect(first.cache_read_input_tokens).toBe(0);
    expect(first.input_tokens).toBe(first.total); // the sequence has as many tokens as the simulator bills
    const second = await send(2, true);
    expect(second.cache_read_input_tokens).toBe(first.input_tokens);
    expect(second.input_tokens + second.cache_read_input_tokens!).toBe(second.total);
    const unmarked = await send(3, false);
    expect(unmarked.cache_read_input_tokens).toBeUndefined();
    expect(unmarked.input_tokens).toBe(unmarked.total);
  });
});
