// temporary H3 A/B driver (removed before report)
import { startSrpCli } from "./gateways.mjs";
import { startSrpCli as startBase } from "/tmp/h3/base/bench/gateways.mjs";
import { Helper } from "./ipc.mjs";
const MODEL = "sim-llama-3-8b";
const sim = new Helper("sim", "./sim.mjs");
const { baseUrl } = await sim.call("start", { defaultMaxTokens: 16 });
const loadgen = new Helper("loadgen", "./loadgen.mjs");
const o = { simBaseUrl: baseUrl, model: MODEL, nodeConcurrency: 256 };
const stacks = { base: await startBase(o), full: await startSrpCli(o), normal: await startSrpCli({ ...o, sqliteSync: "normal" }) };
const targets = [{ name: "direct", url: `${baseUrl}/chat/completions`, headers: {} }, ...Object.entries(stacks).map(([name, s]) => ({ name, url: `${s.url}/v1/chat/completions`, headers: s.headers }))];
const c = await loadgen.call("compare", { targets, model: MODEL, samples: Number(process.env.N ?? 600), warmup: 50, budgetMs: 90000 }, 150000);
const p = (a, q) => [...a].sort((x, y) => x - y)[Math.floor(a.length * q)];
const d = p(c.totals.direct, 0.5);
for (const t of targets) console.log(t.name.padEnd(8), "p50", p(c.totals[t.name], 0.5).toFixed(2), "added", (p(c.totals[t.name], 0.5) - d).toFixed(2), "p90", p(c.totals[t.name], 0.9).toFixed(2), "n", c.totals[t.name].length);
await loadgen.stop();
for (const s of Object.values(stacks)) { const v = await s.verify(); if (!v.ok) console.log("VERIFY FAIL", v); await s.stop(); }
await sim.stop();
