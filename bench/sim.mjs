// Bench helper: the OpenAI-wire-format model simulator (not a model) in its own process,
// at full speed (tokensPerSecond 0, latency 0).
import { startSimulator } from "@srp/provider/simulator";
import { serve } from "./ipc.mjs";

let sim;

serve({
  async start({ defaultMaxTokens = 16 }) {
    sim = await startSimulator({ host: "127.0.0.1", port: 0, tokensPerSecond: 0, latencyMs: 0, defaultMaxTokens });
    return { baseUrl: sim.baseUrl, url: sim.url, pid: process.pid };
  },
  async close() {
    await sim?.close();
    sim = undefined;
  },
});
