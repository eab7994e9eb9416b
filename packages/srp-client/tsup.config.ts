import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", x402: "src/x402.ts" },
  format: ["esm", "cjs"],
  // One copy of shared code for every entry in both formats, so a class is the same class
  // (`instanceof`) whichever entry it is imported from.
  splitting: true,
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
});
