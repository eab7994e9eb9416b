import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    schema: "src/schema/index.ts",
    metering: "src/metering.ts",
    x402: "src/x402.ts",
    node: "src/node.ts",
    chain: "src/chain/index.ts",
  },
  format: ["esm", "cjs"],
  // One copy of shared code for every entry in both formats, so a class is the same class
  // (`instanceof`) whichever entry it is imported from.
  splitting: true,
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  // `import.meta.url` in the CommonJS build too (`@srp/core/node` loads the optional sodium-native with it).
  shims: true,
});
