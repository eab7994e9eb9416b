import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", x402: "src/x402.ts" },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
});
