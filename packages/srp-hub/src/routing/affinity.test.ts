import type { Instance } from "@srp/core/schema";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ProviderSession } from "../session.js";
import {
  AffinityTable,
  accountAffinityKey,
  chatAffinityKey,
  messagesAffinityKey,
  responsesAffinityKey,
  AFFINITY_MIN_PREFIX_BYTES,
} from "./affinity.js";
import { eligible, type CandidateView } from "./policy.js";
import { instanceKey, Router } from "./router.js";
import { MemoryRoutingStore } from "./store.js";

const SYSTEM = `You are a careful coding agent. ${"Follow the repository's conventions and explain every change. ".repeat(30)}`;
const TOOLS = [
  {
    type: "function",
    function: {
      name: "read_file",
      description: "Reads a file",
      parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
    },
  },
];

/** A chat conversation after `turns` turns (each answer and a new user message appended). */
function chatTurn(turns: number, first = "Fix the failing test in src/a.ts", model = "llama3.1:8b") {
  const messages: Record<string, unknown>[] = [
    { role: "system", content: SYSTEM },
    { role: "user", content: first },
  ];
  for (let i = 1; i < turns; i++) messages.push({ role: "assistant", content: `answer ${i}` }, { role: "user", content: `follow-up ${i}` });
  return { model, tools: TOOLS, messages };
}

/** A Claude-Code-shaped Messages body: the cache mark sits on the last user block, so it moves every turn. */
function messagesTurn(turns: number, first = "Refactor the parser") {
  const messages: Record<string, unknown>[] = [{ role: "user", content: [{ type: "text", text: first }] }];
  for (let i = 1; i < turns; i++)
    messages.push(
      { role: "assistant", content: [{ type: "text", text: `done ${i}` }] },
      { role: "user", content: [{ type: "text", text: `next ${i}` }] },
    );
  const last = messages.at(-1)!.content as Record<string, unknown>[];
  last[last.length - 1] = { ...last[last.length - 1], cache_control: { type: "ephemeral" } };
  return {
    model: "claude-sonnet-4-5",
    max_tokens: 256,
    system: [{ type: "text", text: SYSTEM, cache_control: { type: "ephemeral" } }],
    tools: [{ name: "Read", description: "Reads a file", input_schema: { type: "object", properties: { path: { type: "string" } } } }],
    messages,
  };
}

describe("prefix keys", () => {
  it("gives every turn of a chat conversation the same key, and other conversations other keys", () => {
    const k1 = chatAffinityKey(chatTurn(1));
    expect(k1).toMatch(/^[0-9a-f]{32}$/);
    for (const turns of [2, 5, 12]) expect(chatAffinityKey(chatTurn(turns))).toBe(k1);
    expect(chatAffinityKey(chatTurn(3, "Write a README"))).not.toBe(k1);
    expect(chatAffinityKey({ ...chatTurn(3), tools: [] })).not.toBe(k1);
    expect(chatAffinityKey(chatTurn(1, undefined, "qwen2.5:7b"))).not.toBe(k1);
  });

  it("keys a model's aliases alike (the canonical id is hashed)", () => {
    expect(chatAffinityKey(chatTurn(2, undefined, "llama3.1:8b"))).toBe(chatAffinityKey(chatTurn(2, undefined, "llama3.1:8b:latest")));
  });

  it("gives no key below the length threshold, and one at it", () => {
    const short = { model: "m", messages: [{ role: "user", content: "hi" }] };
    expect(chatAffinityKey(short)).toBeUndefined();
    // Grow the user message until the opening's JSON reaches the threshold exactly.
    const base = JSON.stringify({ tools: null, opening: [{ role: "user", content: "" }] }).length;
    const at = { model: "m", messages: [{ role: "user", content: "x".repeat(AFFINITY_MIN_PREFIX_BYTES - base) }] };
    const below = { model: "m", messages: [{ role: "user", content: "x".repeat(AFFINITY_MIN_PREFIX_BYTES - base - 1) }] };
    expect(chatAffinityKey(at)).toBeDefined();
    expect(chatAffinityKey(below)).toBeUndefined();
    expect(chatAffinityKey(below, 16)).toBeDefined();
  });

  it("uses the consumer's prompt_cache_key whatever the prompt's length", () => {
    const a = chatAffinityKey({ model: "m", prompt_cache_key: "conv-1", messages: [{ role: "user", content: "hi" }] });
    expect(a).toBeDefined();
    expect(chatAffinityKey({ model: "m", prompt_cache_key: "conv-1", messages: [{ role: "user", content: "other" }] })).toBe(a);
    expect(chatAffinityKey({ model: "m", prompt_cache_key: "conv-2", messages: [{ role: "user", content: "hi" }] })).not.toBe(a);
  });

  it("keeps a Messages conversation's key while its cache_control marks move", () => {
    const k1 = messagesAffinityKey(messagesTurn(1));
    expect(k1).toBeDefined();
    for (const turns of [2, 4, 10]) expect(messagesAffinityKey(messagesTurn(turns))).toBe(k1);
    expect(messagesAffinityKey(messagesTurn(2, "Another task"))).not.toBe(k1);
    expect(messagesAffinityKey({ model: "claude-sonnet-4-5", max_tokens: 8, messages: [{ role: "user", content: "hi" }] })).toBeUndefined();
  });

  it("keys a Responses body by prompt_cache_key, else by instructions, tools and the opening of its input", () => {
    const body = (input: unknown, extra: Record<string, unknown> = {}) => ({
      model: "m",
      instructions: SYSTEM,
      tools: TOOLS,
      input,
      ...extra,
    });
    const first = [
      { role: "developer", content: "env: linux" },
      { role: "user", content: "fix it" },
    ];
    const k = responsesAffinityKey(body(first));
    expect(k).toBeDefined();
    const later = [
      ...first,
      { type: "function_call", call_id: "c1", name: "read_file", arguments: "{}" },
      { type: "function_call_output", call_id: "c1", output: "..." },
    ];
    expect(responsesAffinityKey(body(later))).toBe(k);
    expect(responsesAffinityKey(body("fix it"))).not.toBe(k);
    const chosen = responsesAffinityKey(body("hi", { prompt_cache_key: "019a-session" }));
    expect(responsesAffinityKey({ model: "m", input: "short", prompt_cache_key: "019a-session" })).toBe(chosen);
  });

  it("never throws on hostile bodies", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 20_000; i++) deep = [deep];
    expect(chatAffinityKey({ model: "m", messages: [{ role: "user", content: deep }] })).toBeUndefined();
    expect(chatAffinityKey({ model: 7, messages: [] })).toBeUndefined();
    expect(messagesAffinityKey({ model: "m", messages: "no" })).toBeUndefined();
    expect(responsesAffinityKey({ model: "m" })).toBeUndefined();
  });
});

describe("AffinityTable", () => {
  it("forgets a key ttlMs after its last use, and a use renews it", () => {
    const t = new AffinityTable({ ttlMs: 1000, maxEntries: 10 });
    t.record("k", "n/a", 0);
    expect(t.lookup("k", 999)).toBe("n/a");
    t.record("k", "n/b", 900);
    expect(t.lookup("k", 1899)).toBe("n/b");
    expect(t.lookup("k", 1900)).toBeUndefined();
    expect(t.size).toBe(0);
  });

  it("holds at most maxEntries keys, dropping the least recently used", () => {
    const t = new AffinityTable({ ttlMs: 60_000, maxEntries: 3 });
    t.record("a", "1", 1);
    t.record("b", "2", 2);
    t.record("c", "3", 3);
    t.record("a", "1", 4); // a is now the most recently used
    t.record("d", "4", 5);
    expect(t.size).toBe(3);
    expect(t.lookup("b", 6)).toBeUndefined();
    expect(["a", "c", "d"].map((k) => t.lookup(k, 6))).toEqual(["1", "3", "4"]);
  });

  it("stays bounded under any stream of strangers' keys (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.tuple(fc.string({ maxLength: 4 }), fc.integer({ min: 0, max: 100 })), { maxLength: 300 }),
        (max, ops) => {
          const t = new AffinityTable({ ttlMs: 1000, maxEntries: max });
          let now = 0;
          for (const [k, dt] of ops) {
            now += dt;
            t.record(k, "i", now);
            expect(t.size).toBeLessThanOrEqual(max);
            expect(t.lookup(k, now)).toBe("i");
          }
        },
      ),
    );
  });

  it("remembers nothing when turned off (ttlMs 0)", () => {
    const t = new AffinityTable({ ttlMs: 0, maxEntries: 10 });
    t.record("k", "n/a", 0);
    expect(t.enabled).toBe(false);
    expect(t.lookup("k", 0)).toBeUndefined();
    expect(t.size).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// Routing with a preferred instance, on a live Router over sessions reduced to what it reads

interface Fake {
  router: Router;
  sessions: Map<string, { active: Map<string, number> }>;
  keys: string[];
  /** Sets the jobs running on an instance, as a session does, and tells the router. */
  setActive(key: string, n: number): void;
}

function fakeRouter(n: number, capacity = 4, random: () => number = Math.random): Fake {
  const router = new Router(new MemoryRoutingStore(), {}, random);
  const sessions = new Map<string, { active: Map<string, number> }>();
  const keys: string[] = [];
  const seasoned = Date.now() - 30 * 24 * 3600_000;
  for (let i = 0; i < n; i++) {
    const nodeId = `node${i}`;
    const instance = {
      instanceId: "m.0",
      model: "m",
      tier: "gpu",
      price: { input: String(100_000 + i), output: "300000" },
      maxConcurrency: capacity,
      contextLength: 8192,
      capabilities: ["chat", "stream"],
    } as unknown as Instance;
    const session = {
      state: "open",
      nodeId,
      instances: new Map([["m.0", instance]]),
      active: new Map<string, number>(),
      reportedCapacity: new Map(),
    };
    router.sync(session as unknown as ProviderSession, seasoned);
    const key = instanceKey(nodeId, "m.0");
    sessions.set(key, session);
    keys.push(key);
  }
  /** Sets the jobs running on an instance, as a session does, and tells the router. */
  const setActive = (key: string, n: number) => {
    const session = sessions.get(key)!;
    session.active.set("m.0", n);
    router.loadChanged(session as unknown as ProviderSession, "m.0");
  };
  return { router, sessions, keys, setActive };
}

const NEEDS = { model: "m", capabilities: ["chat" as const], contextTokens: 100 };
const routed = (r: ReturnType<Router["route"]>) => ("key" in r ? r.key : r.reason);

describe("Router.route with a preferred instance", () => {
  it("sends the request to the preferred instance while it has a free slot, whatever the others' load", () => {
    const f = fakeRouter(4);
    f.setActive(f.keys[2]!, 3); // the busiest, one slot left
    expect(routed(f.router.route(NEEDS, "load", Date.now(), undefined, f.keys[2]))).toBe(f.keys[2]);
  });

  it("spills to the least loaded when the preferred instance is full", () => {
    const f = fakeRouter(3);
    f.setActive(f.keys[0]!, 4);
    f.setActive(f.keys[1]!, 2);
    expect(routed(f.router.route(NEEDS, "load", Date.now(), undefined, f.keys[0]))).toBe(f.keys[2]);
  });

  it("spills when the preferred instance is parked, excluded, or gone", () => {
    const f = fakeRouter(2);
    const now = Date.now();
    for (let i = 0; i < 3; i++) f.router.outcome(f.keys[0]!, "m", "failure", now);
    expect(routed(f.router.route(NEEDS, "load", now, undefined, f.keys[0]))).toBe(f.keys[1]);
    const g = fakeRouter(2);
    expect(routed(g.router.route({ ...NEEDS, exclude: new Set([g.keys[0]!]) }, "load", now, undefined, g.keys[0]))).toBe(g.keys[1]);
    expect(["key" in g.router.route(NEEDS, "load", now, undefined, "gone/m.0")]).toEqual([true]);
  });

  it("lets an explicit sort, provider.only and provider.order decide over the preference", () => {
    const f = fakeRouter(3); // node0 is the cheapest
    const now = Date.now();
    expect(routed(f.router.route(NEEDS, "price", now, undefined, f.keys[2]))).toBe(f.keys[0]);
    expect(routed(f.router.route({ ...NEEDS, only: ["node1"] }, "load", now, undefined, f.keys[2]))).toBe(f.keys[1]);
    expect(routed(f.router.route(NEEDS, "load", now, { selectors: ["node1"], only: false }, f.keys[2]))).toBe(f.keys[1]);
    // Within the ordered group the preference still holds.
    expect(routed(f.router.route(NEEDS, "load", now, { selectors: ["gpu"], only: false }, f.keys[2]))).toBe(f.keys[2]);
  });

  it("never routes to an instance that may not take the request (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.boolean()), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (states, which) => {
          const f = fakeRouter(states.length);
          const now = Date.now();
          states.forEach(([active, parked], i) => {
            f.setActive(f.keys[i]!, active);
            if (parked) for (let j = 0; j < 3; j++) f.router.outcome(f.keys[i]!, "m", "failure", now);
          });
          const prefer = f.keys[which % f.keys.length]!;
          const r = f.router.route(NEEDS, "load", now, undefined, prefer);
          const allowed = eligible(f.router.views("m", now), NEEDS, now);
          if (!Array.isArray(allowed)) {
            expect("key" in r).toBe(false);
            return;
          }
          expect("key" in r).toBe(true);
          const key = (r as { key: string }).key;
          expect(allowed.map((v: CandidateView) => v.key)).toContain(key);
          if (allowed.some((v) => v.key === prefer)) expect(key).toBe(prefer);
        },
      ),
    );
  });

  it("spreads sessions with different prefixes by load: fairness holds across sessions (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 6 }),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 24 }),
        fc.integer(),
        (n, turnsPerSession, seed) => {
          let s = seed >>> 0;
          const random = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
          const f = fakeRouter(n, 64, random);
          const now = Date.now();
          // Sessions arrive one after another; each runs its turns on the instance it is routed to and keeps one slot busy.
          turnsPerSession.forEach((turns, session) => {
            const key = `prefix-${session}`;
            let home: string | undefined;
            for (let t = 0; t < turns; t++) {
              const r = f.router.route(NEEDS, "load", now, undefined, f.router.affinity.lookup(key, now));
              if (!("key" in r)) throw new Error(`not routed: ${r.reason}`);
              f.router.affinity.record(key, r.key, now);
              home ??= r.key;
              expect(r.key).toBe(home); // the same instance every turn: it always had a free slot
            }
            f.setActive(home!, (f.sessions.get(home!)!.active.get("m.0") ?? 0) + 1);
          });
          const loads = f.keys.map((k) => f.sessions.get(k)!.active.get("m.0") ?? 0);
          expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
        },
      ),
    );
  });
});

describe("accountAffinityKey", () => {
  it("scopes a prefix key to its paying account: one account's key never matches another's", () => {
    const body = {
      model: "m",
      messages: [
        { role: "system", content: SYSTEM },
        { role: "user", content: "hi" },
      ],
    };
    const key = chatAffinityKey(body)!;
    expect(accountAffinityKey(key, "acct_a")).toBe(accountAffinityKey(chatAffinityKey(structuredClone(body))!, "acct_a"));
    expect(accountAffinityKey(key, "acct_a")).not.toBe(accountAffinityKey(key, "acct_b"));
    expect(accountAffinityKey(key, "acct_a")).not.toBe(key);
    expect(accountAffinityKey(key, "acct_a")).toMatch(/^[0-9a-f]{32}$/);
    const table = new AffinityTable();
    table.record(accountAffinityKey(key, "acct_a"), "node/a", 0);
    expect(table.lookup(accountAffinityKey(key, "acct_a"), 1)).toBe("node/a");
    expect(table.lookup(accountAffinityKey(key, "acct_b"), 1)).toBeUndefined();
  });
});
