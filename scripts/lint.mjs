// Lint-grade checks that keep the architecture visible (DEVELOPERS.md):
//  1. @srp/core imports no other @srp package; hub, provider and client never import
//     each other; the conformance suite imports only @srp/core (it talks to
//     implementations over the wire).
//  2. The main entry of @srp/core imports nothing Node-only (node:*, ws, fs), so it runs
//     in browsers and edge runtimes; Node-only helpers live in src/node.ts.
//  3. Every package's index.ts names its exports (no `export *`).
//  4. No floating-point money: parseFloat / toFixed never appear in package sources.
//  5. Relative imports in sources end in .js (ESM resolution in Node).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const packages = {
  "packages/srp-core": { allowed: [] },
  "packages/srp-hub": { allowed: ["@srp/core"] },
  "packages/srp-provider": { allowed: ["@srp/core"] },
  "packages/srp-client": { allowed: ["@srp/core"] },
  conformance: { allowed: ["@srp/core"] },
};
const problems = [];

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith(".ts") ? [p] : [];
  });
}

for (const [pkg, { allowed }] of Object.entries(packages)) {
  const src = join(root, pkg, "src");
  for (const file of walk(src)) {
    const rel = relative(root, file);
    const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    const isTest = file.endsWith(".test.ts");
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
      const spec = m[1] ?? m[2];
      const srp = spec.match(/^@srp\/[a-z-]+/)?.[0];
      if (srp && !allowed.includes(srp) && !isTest) problems.push(`${rel}: imports ${spec}; ${pkg} may import only ${allowed.join(", ") || "no @srp package"}`);
      if (spec.startsWith(".") && !spec.endsWith(".js") && !spec.endsWith(".json")) problems.push(`${rel}: relative import ${spec} must end in .js`);
      if (pkg === "packages/srp-core" && !file.endsWith("node.ts") && !isTest && (spec.startsWith("node:") || spec === "ws" || spec === "fs")) {
        problems.push(`${rel}: @srp/core's main entry must not import ${spec} (put Node-only code in src/node.ts)`);
      }
    }
    if (!isTest && /\bparseFloat\(|\.toFixed\(/.test(text) && !rel.endsWith("report.ts")) problems.push(`${rel}: floating-point formatting; money is bigint`);
  }
  const index = readFileSync(join(src, "index.ts"), "utf8");
  if (/export \*/.test(index)) problems.push(`${pkg}/src/index.ts: use named exports, not export *`);
}

if (problems.length) {
  for (const p of problems) console.error(`lint: ${p}`);
  console.error(`lint: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log("lint: architecture, exports and imports are clean");
