import { defineConfig } from "tsup";

export default defineConfig([
  {
    entry: { index: "src/index.ts", setup: "src/setup.ts", simulator: "src/simulator/index.ts" },
    format: ["esm", "cjs"],
    // One copy of shared code for every entry in both formats, so a class is the same class
    // (`instanceof`) whichever entry it is imported from.
    splitting: true,
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
  },
  {
    entry: ["src/cli.ts"],
    format: ["esm"],
    sourcemap: true,
    target: "node20",
    banner: { js: "#!/usr/bin/env node" },
  },
]);
