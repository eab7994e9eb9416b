import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      "@srp/core/node": src("./packages/srp-core/src/node.ts"),
      "@srp/core/schema": src("./packages/srp-core/src/schema/index.ts"),
      "@srp/core/metering": src("./packages/srp-core/src/metering.ts"),
      "@srp/core/x402": src("./packages/srp-core/src/x402.ts"),
      "@srp/core/chain": src("./packages/srp-core/src/chain/index.ts"),
      "@srp/core": src("./packages/srp-core/src/index.ts"),
      "@srp/hub/routing": src("./packages/srp-hub/src/routing/index.ts"),
      "@srp/hub/ledger": src("./packages/srp-hub/src/ledger/index.ts"),
      "@srp/hub/storage": src("./packages/srp-hub/src/storage/index.ts"),
      "@srp/hub/payments": src("./packages/srp-hub/src/payments/index.ts"),
      "@srp/hub": src("./packages/srp-hub/src/index.ts"),
      "@srp/provider/setup": src("./packages/srp-provider/src/setup.ts"),
      "@srp/provider/simulator": src("./packages/srp-provider/src/simulator/index.ts"),
      "@srp/provider": src("./packages/srp-provider/src/index.ts"),
      "@srp/client/x402": src("./packages/srp-client/src/x402.ts"),
      "@srp/client": src("./packages/srp-client/src/index.ts"),
      "@srp/conformance": src("./conformance/src/index.ts"),
    },
  },
  test: {
    // Builds the hub's dashboard assets (a generated, git-ignored module) before any test imports the hub.
    globalSetup: ["test/support/dashboard-assets.ts"],
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts", "conformance/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Two test files at a time: most tests wait on sockets and child processes, so on the
    // 2-core CI machine this halves the run (vitest's default would be one, cores − 1).
    maxWorkers: 2,
  },
});
