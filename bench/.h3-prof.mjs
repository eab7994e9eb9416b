// temporary H3 profiling driver (removed before report)
import { startSrpCli } from "./gateways.mjs";
import { Helper } from "./ipc.mjs";
const mode = process.argv[2] ?? "seq"; // seq | load
const dir = process.argv[3] ?? "/tmp/h3/prof";
const flags = process.env.NOPROF ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`];
const sim = new Helper("sim", "./sim.mjs");
const { baseUrl } = await sim.call("start", { defaultMaxTokens: 16 });
const loadgen = new Helper("loadgen", "./loadgen.mjs");
const srp = await startSrpCli({ simBaseUrl: baseUrl, model: "sim-llama-3-8b", nodeConcurrency: 256, hubFlags: flags, nodeFlags: flags });
const MODEL = "sim-llama-3-8b";
if (mode === "seq") {
  const targets = [{ name: "srp", url: `${srp.url}/v1/chat/completions`, headers: srp.headers }, { name: "direct", url: `${baseUrl}/chat/completions`, headers: {} }];
  const c = await loadgen.call("compare", { targets, model: MODEL, samples: Number(process.env.N ?? 1500), warmup: 50, budgetMs: 60000 }, 120000);
  const p = (a, q) => [...a].sort((x, y) => x - y)[Math.floor(a.length * q)];
  console.log("seq srp p50", p(c.totals.srp, 0.5).toFixed(2), "direct", p(c.totals.direct, 0.5).toFixed(2), "n", c.rounds);
} else {
  const { readFileSync } = await import("node:fs");
  const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return (Number(f[11]) + Number(f[12])) * 10; };
  const c0 = [cpu(srp.hubPid), cpu(srp.nodePid)];
  const r = await loadgen.call("throughput", { hubUrl: srp.url, headers: srp.headers, model: MODEL, concurrency: 50, durationMs: Number(process.env.MS ?? 8000), warmupMs: 1000 }, 120000);
  const c1 = [cpu(srp.hubPid), cpu(srp.nodePid)];
  const n = r.ok + (r.warmupOk ?? 0);
  console.log("load rps", ((r.ok * 1000) / r.elapsedMs).toFixed(0), "errors", r.errors, r.firstError ?? "", "cpu ms/req hub", ((c1[0] - c0[0]) / r.ok).toFixed(3), "node", ((c1[1] - c0[1]) / r.ok).toFixed(3));
}
await loadgen.stop();
console.log(JSON.stringify(await srp.verify()));
await srp.stop();
await sim.stop();
