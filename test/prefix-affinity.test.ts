/**
 * Prefix affinity through a real hub: four instances, each a provider in front of its own
 * model simulator with the simulator's prefix cache on (a simulator feature). A multi-turn
 * conversation with a long system prompt stays on one instance and its later turns are
 * billed with cached prompt tokens; with affinity off (`routingConfig.affinityTtlMs: 0`)
 * its turns go where load sends them and find nothing cached. No test depends on which
 * instance a random tie-break picks: where a request must not reach an instance, that
 * instance runs one job more than the others (a request its simulator never answers), so the
 * least-loaded rule keeps the request away from it whatever the draw, unless affinity
 * (which replaces the least-loaded choice, SRP-CON-072) sends it there.
 */
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import type { Simulator } from "@srp/provider/simulator";
import { KEY, MODEL, startNet, until, type Net } from "./helpers.js";

const SYSTEM = `You are a coding agent working in a large repository. ${"Read the relevant files before you edit, keep changes small, and run the tests after each change. ".repeat(20)}`;
const INSTANCES = 4;

let net: Net | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

/** Four instances; `nodes[i]` is the node id of the provider in front of `sims[i]`. */
async function start(affinityTtlMs?: number): Promise<{ net: Net; sims: Simulator[]; nodes: string[] }> {
  net = await startNet(affinityTtlMs === undefined ? {} : { routingConfig: { affinityTtlMs } });
  const sims: Simulator[] = [];
  const nodes: string[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const sim = await net.sim({ prefixCache: true, defaultMaxTokens: 12 });
    sims.push(sim);
    nodes.push((await net.addProvider(sim, { maxConcurrency: 4 })).nodeId);
  }
  await until(() => net!.hub.router.all().length === INSTANCES, 5000, "four instances online");
  return { net, sims, nodes };
}

/**
 * Gives the instance of `sim` one more running job than before: a short request (no affinity
 * key) sent there with `provider.only`, which its simulator never answers. Resolves once the
 * simulator holds it; the returned function abandons it.
 */
async function occupy(n: Net, sim: Simulator, nodeId: string): Promise<() => void> {
  const open = sim.openRequests;
  sim.setFault({ kind: "hang" }, 1);
  const abort = new AbortController();
  fetch(`${n.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, max_tokens: 4, provider: { only: [nodeId] }, messages: [{ role: "user", content: "Wait." }] }),
    signal: abort.signal,
  }).catch(() => undefined);
  await until(() => sim.openRequests === open + 1, 5000, "the held request at its instance");
  return () => abort.abort();
}

interface Turn {
  /** Index of the simulator that served the turn. */
  served: number;
  prompt: number;
  cached: number;
}

/** Runs a conversation of `turns` turns through the hub's chat surface, one turn after the other (`between` runs after each). */
async function converse(
  n: Net,
  sims: Simulator[],
  turns: number,
  apiKey = KEY,
  between?: (turn: Turn) => Promise<unknown>,
): Promise<Turn[]> {
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
    await between?.(out.at(-1)!);
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
    const { net: n, sims, nodes } = await start();
    const other = "srp_test_consumer_key_000002";
    n.accounts.add({ id: "acct_other", apiKeys: [other] });
    const first = await converse(n, sims, 2);
    expect(first[1]!.cached).toBeGreaterThan(0);
    const mine = first[0]!.served;
    // The instance holding the prefix now runs a job more than the others: only affinity could send a request there.
    const release = await occupy(n, sims[mine]!, nodes[mine]!);
    // The same opening from another account is routed as if nobody had sent it: to a less loaded instance, nothing cached.
    const [theirs] = await converse(n, sims, 1, other);
    expect(theirs!.served).not.toBe(mine);
    expect(theirs!.cached).toBe(0);
    expect(n.hub.router.affinity.size).toBe(2);
    // Each account's own next turn still goes back to its own instance, busier as it is.
    const again = await converse(n, sims, 1);
    expect(again[0]!.served).toBe(mine);
    release();
  });

  it("with affinity off, each turn goes to the least loaded instance, not back to its prefix, and nothing is cached at first", async () => {
    const { net: n, sims, nodes } = await start(0);
    // After each turn the instance that served it runs a job more than the others: with affinity
    // on, the next turn would go back to it all the same (as above); off, it goes elsewhere.
    const releases: (() => void)[] = [];
    const hold = async (t: Turn) => releases.push(await occupy(n, sims[t.served]!, nodes[t.served]!));
    const turns = await converse(n, sims, 4, KEY, hold);
    expect(new Set(turns.map((t) => t.served)).size).toBe(INSTANCES);
    for (const t of turns) expect(t.cached).toBe(0);
    expect(n.hub.router.affinity.size).toBe(0);
    for (const release of releases) release();
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
