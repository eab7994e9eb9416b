// Bench helper: one hub in its own process (forked with --expose-gc), so its CPU time and
// memory can be measured apart from the load generator, simulator and providers.
import { generateIdentity } from "@srp/core";
import { createHub, MemoryAccountStore } from "@srp/hub";
import { serve } from "./ipc.mjs";

let hub;

const settle = () => new Promise((r) => setImmediate(r));

serve({
  async start({ key, accountId = "acct_bench" }) {
    const accounts = new MemoryAccountStore();
    accounts.add({ id: accountId, apiKeys: [key] });
    // Every node and the load generator connect from this one loopback address: the per-address
    // connection limits (meant for strangers) would throttle the memory phase's 1,000 sessions.
    hub = createHub({
      identity: generateIdentity(),
      accounts,
      drainTimeoutMs: 1000,
      reconnectAfterMs: 1000,
      limits: { connections: false, unauthenticatedConnections: false },
    });
    const { url } = await hub.listen({ port: 0, host: "127.0.0.1" });
    return { url, hubId: hub.id, pid: process.pid };
  },
  /** CPU time used so far by this process (µs) and a wall-clock stamp (ms). */
  cpu() {
    const c = process.cpuUsage();
    return { user: c.user, system: c.system, wall: performance.now() + performance.timeOrigin };
  },
  stats() {
    return { sessions: hub.sessions().length, instances: hub.router.all().length };
  },
  /** Memory after full garbage collections. */
  async mem() {
    if (typeof globalThis.gc !== "function") throw new Error("the hub helper needs --expose-gc");
    for (let i = 0; i < 4; i++) {
      globalThis.gc();
      await settle();
    }
    await new Promise((r) => setTimeout(r, 100));
    globalThis.gc();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
  },
  async close() {
    await hub?.close();
    hub = undefined;
  },
});
