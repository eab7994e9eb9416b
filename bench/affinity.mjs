// Bench helper: prefix affinity (cache-aware routing), measured on Claude-Code-shaped
// sessions. One hub in this process, with BENCH_AFFINITY_INSTANCES instances, each a provider
// node in front of its own model simulator (not a model) with the simulator's prefix cache
// on (a simulator feature: it reports as cached the tokens a prompt shares from its start
// with one of the last 64 prompts it served, as vLLM and llama.cpp do). Several concurrent
// sessions send the Anthropic Messages requests Claude Code sends: a long system prompt (a
// shared part and a per-session environment block) and tools, then turn after turn the
// previous answer and a new user message (a tool result when the model called a tool).
// Run twice on fresh instances, stickiness on (the default) and off
// (`routingConfig.affinityTtlMs: 0`); reported: cached prompt tokens / prompt tokens, both
// from the billed usage each answer carries.
import { generateIdentity } from "@srp/core";
import { createHub, MemoryAccountStore } from "@srp/hub";
import { createProvider, openAICompatibleBackend } from "@srp/provider";
import { startSimulator } from "@srp/provider/simulator";
import { serve } from "./ipc.mjs";

const KEY = "srp_bench_affinity_key_000001";
const MODEL = "sim-llama-3-8b";
const WORDS =
  "parser token stream buffer index offset length value result error module import export function return const let async await test case".split(
    " ",
  );

/** Deterministic filler text of about `bytes` bytes (the bench's file contents and prompts). */
function filler(seed, bytes) {
  let out = "";
  let s = seed >>> 0;
  while (out.length < bytes) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out += `${WORDS[s % WORDS.length]}${s % 11 === 0 ? ".\n" : " "}`;
  }
  return out;
}

/** Claude Code's request shape: the system prompt (shared part + this session's environment), tools, the conversation. */
function sessionPrefix(session, systemBytes, toolsBytes) {
  const shared = `You are an interactive CLI tool that helps users with software engineering tasks.\n${filler(1, systemBytes)}`;
  const env = `<env>\nWorking directory: /home/user/project-${session}\nIs directory a git repo: Yes\nPlatform: linux\n</env>\n${filler(1000 + session, 600)}`;
  const tools = [];
  for (let i = 0; tools.length === 0 || JSON.stringify(tools).length < toolsBytes; i++) {
    tools.push({
      name: `Tool${i}`,
      description: filler(500 + i, 700),
      input_schema: { type: "object", properties: { path: { type: "string", description: "Absolute path" } }, required: ["path"] },
    });
  }
  return {
    system: [
      { type: "text", text: shared },
      { type: "text", text: env, cache_control: { type: "ephemeral" } },
    ],
    tools,
  };
}

/** One session: `turns` requests in a row, each resending the whole conversation. */
async function runSession(url, session, cfg, totals) {
  const { system, tools } = sessionPrefix(session, cfg.systemBytes, cfg.toolsBytes);
  const messages = [
    {
      role: "user",
      content: [
        {
          type: "text",
          text: `<system-reminder>\n${filler(2000 + session, 800)}\n</system-reminder>\nSession ${session}: find why the parser drops trailing commas.`,
        },
      ],
    },
  ];
  for (let turn = 0; turn < cfg.turns; turn++) {
    // Claude Code marks the last user block for caching; the mark moves every turn.
    const marked = messages.map((m, i) =>
      i === messages.length - 1
        ? { ...m, content: m.content.map((b, j) => (j === m.content.length - 1 ? { ...b, cache_control: { type: "ephemeral" } } : b)) }
        : m,
    );
    const res = await fetch(`${url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      // max_tokens above what the simulator's echo of a tool result can use (it echoes the result's words).
      body: JSON.stringify({ model: MODEL, max_tokens: 1024, system, tools, messages: marked }),
    });
    const body = await res.json();
    if (res.status !== 200) {
      totals.errors++;
      totals.firstError ??= `${res.status} ${JSON.stringify(body).slice(0, 200)}`;
      return;
    }
    const u = body.usage;
    const cached = u.cache_read_input_tokens ?? 0;
    totals.prompt += u.input_tokens + cached + (u.cache_creation_input_tokens ?? 0);
    totals.cached += cached;
    totals.requests++;
    messages.push({ role: "assistant", content: body.content });
    const call = body.content.find((b) => b.type === "tool_use");
    messages.push({
      role: "user",
      content: call
        ? [{ type: "tool_result", tool_use_id: call.id, content: filler(3000 + session * 100 + turn, cfg.resultBytes) }]
        : [{ type: "text", text: `Good. Now step ${turn + 2}: ${filler(4000 + turn, 200)}` }],
    });
  }
}

/** One hub, its instances, the sessions; answers the cached share. */
async function measure(cfg, affinity) {
  const accounts = new MemoryAccountStore();
  accounts.add({ id: "acct_bench", apiKeys: [KEY] });
  const hub = createHub({
    identity: generateIdentity(),
    accounts,
    drainTimeoutMs: 1000,
    limits: { connections: false, unauthenticatedConnections: false },
    ...(affinity ? {} : { routingConfig: { affinityTtlMs: 0 } }),
  });
  const { url } = await hub.listen({ port: 0, host: "127.0.0.1" });
  const sims = [];
  const providers = [];
  try {
    for (let i = 0; i < cfg.instances; i++) {
      const sim = await startSimulator({ host: "127.0.0.1", prefixCache: true, defaultMaxTokens: 48 });
      sims.push(sim);
      const p = createProvider({
        hub: url,
        identity: generateIdentity(),
        account: KEY,
        reconnect: false,
        instances: [
          {
            backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }),
            model: MODEL,
            price: { input: "100000", output: "300000" },
            maxConcurrency: cfg.slots,
            contextLength: 131_072,
            capabilities: ["chat", "stream", "tools"],
          },
        ],
      });
      providers.push(p);
    }
    await Promise.all(providers.map((p) => p.ready()));
    const totals = { prompt: 0, cached: 0, requests: 0, errors: 0, firstError: undefined };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: cfg.sessions }, (_, s) => runSession(url, s, cfg, totals)));
    return { ...totals, share: totals.prompt > 0 ? totals.cached / totals.prompt : NaN, ms: performance.now() - t0 };
  } finally {
    await Promise.all(providers.map((p) => p.close().catch(() => {})));
    await hub.close();
    await Promise.all(sims.map((s) => s.close()));
  }
}

serve({
  async run(cfg) {
    const off = await measure(cfg, false);
    const on = await measure(cfg, true);
    return { on, off, config: cfg };
  },
  close() {},
});
