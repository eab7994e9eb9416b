// Bench helper: operating figures of issue 19, in this process: what the hub's metrics and
// `request` event cost per request, and API keys' limits under a flood. A hub on a SQLite
// file (billing on), one provider node and the model simulator (not a model) at full speed,
// all here; requests go through the hub's HTTP listener on loopback.
//
// - metrics: the same chat completions, sequential, through a hub without metrics and one
//   with `/metrics` on (a private prom-client registry fed by the `request` event), rounds
//   interleaved; this process's CPU time per request of each (the difference is what
//   metrics cost; the client, node and simulator are the same on both sides).
// - flood: `concurrency` clients send `requests` requests at once with one key, first a key
//   limited to `rpm` requests per minute, then one whose budget covers `budgetRequests`
//   worst cases: how many were admitted, how fast the rest were refused, and the budget
//   spent against its cap (never more).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity } from "@srp/core";
import { createHub, NO_POLICY, SqliteStore } from "@srp/hub";
import { createProvider, openAICompatibleBackend } from "@srp/provider";
import { startSimulator } from "@srp/provider/simulator";
import { serve } from "./ipc.mjs";

const MODEL = "sim-llama-3-8b";
const PRICE = { input: "1000000", output: "3000000" };
const BODY = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Say something about spare capacity." }], max_tokens: 8 });

/** A hub on a SQLite file with one provider in front of `sim`; `metrics` turns `/metrics` on. */
async function startNet(sim, metrics) {
  const dir = mkdtempSync(join(tmpdir(), "srp-bench-keys-"));
  const store = new SqliteStore(join(dir, "hub.sqlite"));
  const hub = createHub({
    identity: generateIdentity(),
    accounts: store,
    storage: store,
    drainTimeoutMs: 1000,
    limits: { connections: false, unauthenticatedConnections: false },
    ...(metrics ? { metrics: { token: "bench-metrics-token-0001" } } : {}),
  });
  const { url } = await hub.listen({ port: 0, host: "127.0.0.1" });
  const providerAccount = await store.createAccount({ name: "node" });
  const { key: providerKey } = await store.createApiKey(providerAccount.id);
  const provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: providerKey,
    reconnect: false,
    instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 512 }],
  });
  await provider.ready();
  const account = (await store.createAccount({ name: "consumer" })).id;
  await store.deposit(account, 10_000_000_000n, "bench-keys");
  return {
    url,
    store,
    account,
    key: async (policy) => (await store.createApiKey(account, "bench", { ...NO_POLICY, ...policy })).key,
    async close() {
      await provider.close();
      await hub.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const chat = (url, key) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: BODY,
  }).then(async (r) => ({ status: r.status, body: await r.json() }));

/** CPU µs of this process for `n` sequential requests to `url` with `key`. */
async function cpuPerRequest(url, key, n) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const r = await chat(url, key);
    if (r.status !== 200) throw new Error(`metrics round: status ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const percentile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((q / 100) * s.length))] : Number.NaN;
};

/** Sends `requests` requests at `concurrency` with `key`: admitted, refused by status, refusal latency. */
async function flood(url, key, requests, concurrency) {
  let next = 0;
  const statuses = {};
  const refusedMs = [];
  let charged = 0n;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        next++;
        const t = performance.now();
        const r = await chat(url, key);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 200) charged += BigInt(r.body.usage.cost_units);
        else refusedMs.push(performance.now() - t);
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const refused = refusedMs.length;
  return {
    statuses,
    admitted: statuses[200] ?? 0,
    refused,
    elapsedMs,
    refusalsPerSecond: refused / (elapsedMs / 1000),
    refusalP50Ms: percentile(refusedMs, 50),
    refusalP99Ms: percentile(refusedMs, 99),
    charged,
  };
}

serve({
  async run({ metricsRequests = 2400, rounds = 8, requests = 2000, concurrency = 200, rpm = 100, budgetRequests = 50 }) {
    const sim = await startSimulator({ host: "127.0.0.1", port: 0, tokensPerSecond: 0, latencyMs: 0, defaultMaxTokens: 16 });
    const off = await startNet(sim, false);
    const on = await startNet(sim, true);
    try {
      const keyOff = await off.key({});
      const keyOn = await on.key({});
      // Warm both (V8 compiles the hot path over the first requests), then interleave.
      await cpuPerRequest(off.url, keyOff, 500);
      await cpuPerRequest(on.url, keyOn, 500);
      const offUs = [];
      const onUs = [];
      for (let r = 0; r < rounds; r++) {
        offUs.push(await cpuPerRequest(off.url, keyOff, Math.ceil(metricsRequests / rounds)));
        onUs.push(await cpuPerRequest(on.url, keyOn, Math.ceil(metricsRequests / rounds)));
      }
      const scrape = await fetch(`${on.url}/metrics`, { headers: { authorization: "Bearer bench-metrics-token-0001" } });
      const exposition = await scrape.text();

      // Floods, on the hub without metrics.
      const rpmKey = await off.key({ limits: { rpm, tpm: null, concurrency: null } });
      const rate = await flood(off.url, rpmKey, requests, concurrency);
      const estimate = await fetch(`${off.url}/v1/estimate`, {
        method: "POST",
        headers: { authorization: `Bearer ${keyOff}`, "content-type": "application/json" },
        body: BODY,
      }).then((r) => r.json());
      const worst = BigInt(estimate.maximum.units);
      const cap = worst * BigInt(budgetRequests);
      const budgetKey = await off.key({ budget: { total: cap, day: null, month: null } });
      const budget = await flood(off.url, budgetKey, requests, concurrency);
      const problems = await off.store.verify();
      return {
        metrics: {
          offUs: percentile(offUs, 50),
          onUs: percentile(onUs, 50),
          rounds: offUs.map((o, i) => ({ off: o, on: onUs[i] })),
          requests: Math.ceil(metricsRequests / rounds) * rounds,
          scrapeStatus: scrape.status,
          scrapeBytes: exposition.length,
        },
        rate: { ...rate, charged: rate.charged.toString(), rpm },
        budget: { ...budget, charged: budget.charged.toString(), cap: cap.toString(), worst: worst.toString(), budgetRequests },
        ledgerProblems: problems.length,
        config: { requests, concurrency },
      };
    } finally {
      await on.close();
      await off.close();
      await sim.close();
    }
  },
});
