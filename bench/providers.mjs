// Bench helper: provider nodes serving the simulator, in a process of their own.
import { generateIdentity } from "@srp/core";
import { createProvider, openAICompatibleBackend } from "@srp/provider";
import { serve } from "./ipc.mjs";

const providers = [];

serve({
  async start({ hub, key, simBaseUrl, model, count = 1, maxConcurrency = 64, contextLength = 131_072 }) {
    const started = [];
    for (let i = 0; i < count; i++) {
      const p = createProvider({
        hub,
        identity: generateIdentity(),
        account: key,
        reconnect: false,
        instances: [
          {
            backend: openAICompatibleBackend({ baseUrl: simBaseUrl }),
            model,
            price: { input: "100000", output: "300000" },
            maxConcurrency,
            contextLength,
          },
        ],
      });
      providers.push(p);
      started.push(p);
    }
    await Promise.all(started.map((p) => p.ready()));
    return { nodeIds: started.map((p) => p.nodeId), pid: process.pid };
  },
  stats() {
    return providers.map((p) => p.stats());
  },
  async close() {
    await Promise.all(providers.splice(0).map((p) => p.close().catch(() => {})));
  },
});
