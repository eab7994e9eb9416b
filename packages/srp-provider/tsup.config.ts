import { defineConfig } from "tsup";

export default defineConfig([
  {
    entry: { index: "src/index.ts", setup: "src/setup.ts", simulator: "src/simulator/index.ts" },
    format: ["esm", "cjs"],
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
