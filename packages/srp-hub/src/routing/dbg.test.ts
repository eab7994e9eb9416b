import { it } from "vitest";
import { instanceKey, Router } from "./router.js";
import { MemoryRoutingStore } from "./store.js";
it("dbg", () => {
  const router = new Router(new MemoryRoutingStore());
  const T0 = 1_700_000_000_000;
  for (let i = 0; i < 3; i++) {
    const host = { state: "open", nodeId: `n${i}`, local: true, instances: new Map([["m.0", { instanceId: "m.0", model: "m", tier: "gpu", price: { input: "1", output: "1" }, maxConcurrency: 2, contextLength: 8192, capabilities: ["chat"] }]]), active: new Map(), reportedCapacity: new Map() };
    router.sync(host as never, T0);
  }
  const r = router as unknown as Record<string, unknown>;
  console.log(router.candidates({ model: "m", capabilities: ["chat"], contextTokens: 10 }, "load", T0));
  console.log(instanceKey("a", "b"), Object.getOwnPropertyNames(Object.getPrototypeOf(r)));
});
