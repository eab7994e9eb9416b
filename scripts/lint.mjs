// Lint-grade checks that keep the architecture visible (README.md, "Roles and packages"):
//  1. @srp/core imports no other @srp package; hub, provider and client never import
//     each other; the conformance suite imports only @srp/core (it talks to
//     implementations over the wire).
//  2. The main entry of @srp/core imports nothing Node-only (node:*, ws, fs), so it runs
//     in browsers and edge runtimes; Node-only helpers live in src/node.ts.
//  3. Every entry file of every package (its package.json `exports`) names its exports
//     (no `export *`): each export is public API.
//  4. No floating-point money: parseFloat / toFixed never appear in package sources.
//  5. Relative imports in sources end in .js (ESM resolution in Node).
//  6. No two modules import each other, directly or around a longer cycle (type-only
//     imports included): a module's dependencies can be read before it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { cycles, entries, sources } from "./shape.mjs";

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
    const text = readFileSync(file, "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    const isTest = file.endsWith(".test.ts");
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
      const spec = m[1] ?? m[2];
      const srp = spec.match(/^@srp\/[a-z-]+/)?.[0];
      if (srp && !allowed.includes(srp) && !isTest)
        problems.push(`${rel}: imports ${spec}; ${pkg} may import only ${allowed.join(", ") || "no @srp package"}`);
      if (spec.startsWith(".") && !spec.endsWith(".js") && !spec.endsWith(".json"))
        problems.push(`${rel}: relative import ${spec} must end in .js`);
      if (
        pkg === "packages/srp-core" &&
        !file.endsWith("node.ts") &&
        !isTest &&
        (spec.startsWith("node:") || spec === "ws" || spec === "fs")
      ) {
        problems.push(`${rel}: @srp/core's main entry must not import ${spec} (put Node-only code in src/node.ts)`);
      }
    }
    if (!isTest && /\bparseFloat\(|\.toFixed\(/.test(text) && !rel.endsWith("report.ts"))
      problems.push(`${rel}: floating-point formatting; money is bigint`);
  }
}

for (const { entry, file } of entries(root)) {
  if (/export \*/.test(readFileSync(join(root, file), "utf8"))) problems.push(`${file} (entry ${entry}): use named exports, not export *`);
}

for (const cycle of cycles(sources(root), root)) problems.push(`import cycle: ${cycle.join(" <-> ")}`);

if (problems.length) {
  for (const p of problems) console.error(`lint: ${p}`);
  console.error(`lint: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log("lint: architecture, exports and imports are clean");
