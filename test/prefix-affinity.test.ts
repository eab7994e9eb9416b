/**
 * Prefix affinity through a real hub: four instances, each a provider in front of its own
 * model simulator with the simulator's prefix cache on (a simulator feature). A multi-turn
 * conversation with a long system prompt stays on one instance and its later turns are
 * billed with cached prompt tokens; with affinity off (`routingConfig.affinityTtlMs: 0`)
 * and the same tie-breaks, its turns move between instances and find nothing cached.
 * The hub's random source is a fixed cycle, so which instance a tie goes to is known.
 */
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import type { Simulator } from "@srp/provider/simulator";
import { KEY, MODEL, startNet, until, type Net } from "./helpers.js";

const SYSTEM = `You are a coding agent working in a large repository. ${"Read the relevant files before you edit, keep changes small, and run the tests after each change. ".repeat(20)}`;
const INSTANCES = 4;

/** A random source that cycles through the four quarters of [0, 1): ties go round the instances in turn. */
function cycle(): () => number {
  let i = 0;
  return () => [0.1, 0.35, 0.6, 0.85][i++ % 4]!;
}

let net: Net | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

async function start(affinityTtlMs?: number): Promise<{ net: Net; sims: Simulator[] }> {
  net = await startNet({ random: cycle(), ...(affinityTtlMs === undefined ? {} : { routingConfig: { affinityTtlMs } }) });
  const sims: Simulator[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const sim = await net.sim({ prefixCache: true, defaultMaxTokens: 12 });
    sims.push(sim);
    await net.addProvider(sim, { maxConcurrency: 4 });
  }
  await until(() => net!.hub.router.all().length === INSTANCES, 5000, "four instances online");
  return { net, sims };
}

interface Turn {
  /** Index of the simulator that served the turn. */
  served: number;
  prompt: number;
  cached: number;
}

/** Runs a conversation of `turns` turns through the hub's chat surface, one turn after the other. */
async function converse(n: Net, sims: Simulator[], turns: number, apiKey = KEY): Promise<Turn[]> {
  const client = new OpenAI({ baseURL: `${n.url}/v1`, apiKey, maxRetries: 0 });
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: "system", content: SYSTEM },
    { role: "user", content: "Find why the parser drops trailing commas." },
  ];
  const out: Turn[] = [];
  for (let t = 0; t < turns; t++) {
    const before = sims.map((s) => s.requests.length);
    const res = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12 });
    const served = sims.findIndex((s, i) => s.requests.length > before[i]!);
    out.push({ served, prompt: res.usage!.prompt_tokens, cached: res.usage!.prompt_tokens_details?.cached_tokens ?? 0 });
    messages.push(
      { role: "assistant", content: res.choices[0]!.message.content ?? "" },
      { role: "user", content: `Go on with step ${t + 2}.` },
    );
  }
  return out;
}

describe("prefix affinity (SRP-CON-070)", () => {
  it("keeps a conversation on one instance, and its later turns are billed with cached prompt tokens", async () => {
    const { net: n, sims } = await start();
    const turns = await converse(n, sims, 6);
    expect(new Set(turns.map((t) => t.served)).size).toBe(1);
    expect(turns[0]!.cached).toBe(0);
    for (let i = 1; i < turns.length; i++) {
      // Everything the previous turn sent is cached: the billed usage says so.
      expect(turns[i]!.cached).toBe(turns[i - 1]!.prompt);
      expect(turns[i]!.cached).toBeLessThan(turns[i]!.prompt);
    }
    expect(n.hub.router.affinity.size).toBe(1);
  });

  it("never sends another account to the instance holding an account's prefix (no cross-account cache timing)", async () => {
    const { net: n, sims } = await start();
    const other = "srp_test_consumer_key_000002";
    n.accounts.add({ id: "acct_other", apiKeys: [other] });
    const first = await converse(n, sims, 2);
    expect(first[1]!.cached).toBeGreaterThan(0);
    // The same opening from another account is routed as if nobody had sent it: elsewhere, nothing cached.
    const [theirs] = await converse(n, sims, 1, other);
    expect(theirs!.served).not.toBe(first[0]!.served);
    expect(theirs!.cached).toBe(0);
    expect(n.hub.router.affinity.size).toBe(2);
    // Each account's own next turn still goes back to its own instance.
    const again = await converse(n, sims, 1);
    expect(again[0]!.served).toBe(first[0]!.served);
  });

  it("with affinity off, the same tie-breaks move the turns between instances and nothing is cached at first", async () => {
    const { net: n, sims } = await start(0);
    const turns = await converse(n, sims, 4);
    expect(new Set(turns.map((t) => t.served)).size).toBe(INSTANCES);
    for (const t of turns) expect(t.cached).toBe(0);
    expect(n.hub.router.affinity.size).toBe(0);
  });

  it("keeps a Claude-Code-shaped Messages conversation on one instance while its cache_control marks move", async () => {
    const { net: n, sims } = await start();
    const messages: Record<string, unknown>[] = [];
    const served: number[] = [];
    const cached: number[] = [];
    for (let t = 0; t < 4; t++) {
      messages.push({
        role: "user",
        content: [{ type: "text", text: t === 0 ? "Refactor the tokenizer." : `Continue with part ${t + 1}.` }],
      });
      // Claude Code marks the system prompt and the last user block; the mark moves every turn.
      const body = {
        model: MODEL,
        max_tokens: 12,
        system: [{ type: "text", text: SYSTEM, cache_control: { type: "ephemeral" } }],
        messages: messages.map((m, i) =>
          i === messages.length - 1
            ? { ...m, content: (m.content as object[]).map((b) => ({ ...b, cache_control: { type: "ephemeral" } })) }
            : m,
        ),
      };
      const before = sims.map((s) => s.requests.length);
      const res = await fetch(`${n.url}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      const msg = (await res.json()) as { content: { type: string; text?: string }[]; usage: { cache_read_input_tokens: number } };
      served.push(sims.findIndex((s, i) => s.requests.length > before[i]!));
      cached.push(msg.usage.cache_read_input_tokens);
      messages.push({ role: "assistant", content: msg.content });
    }
    expect(new Set(served).size).toBe(1);
    expect(cached[0]).toBe(0);
    for (const c of cached.slice(1)) expect(c).toBeGreaterThan(0);
  });
});
