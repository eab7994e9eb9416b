#!/usr/bin/env node
// The `srp-conformance` command. It runs the built CLI in ../dist; this small file exists before
// any build, so npm links the command on install even in a fresh clone of the repository.
import { existsSync } from "node:fs";

const cli = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    "srp-conformance: @srp/conformance is not built yet; run `npm run build` in the repository root (npm install runs it too)\n",
  );
  process.exit(1);
}
await import(cli.href);
