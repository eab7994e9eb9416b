// The shape of the code base in figures: the largest source files and functions, the
// names each package's entries export, and import cycles between modules. `npm run shape`
// prints them (the closing notes of refactoring issues quote them); `cycles()` is also
// what `npm run lint` uses to refuse modules that import each other.
//
//   node scripts/shape.mjs [--root DIR] [--top N] [--json]
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";

/** The source trees measured: every package's `src` and the conformance suite's. */
export const PACKAGES = ["packages/srp-core", "packages/srp-hub", "packages/srp-provider", "packages/srp-client", "conformance"];

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith(".ts") && !p.endsWith(".d.ts") ? [p] : [];
  });
}

/** Every non-test TypeScript source of the measured trees. */
export function sources(root) {
  return PACKAGES.flatMap((pkg) => walk(join(root, pkg, "src"))).filter((f) => !f.endsWith(".test.ts"));
}

function lineCount(text) {
  return text.length === 0 ? 0 : text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

function functionName(node, sf) {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  if (node.name && ts.isPrivateIdentifier(node.name)) return node.name.text;
  if (node.name) return node.name.getText(sf);
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  if (ts.isConstructorDeclaration(node)) return "constructor";
  return "(anonymous)";
}

/** Functions, methods and arrow functions of a file with their length in lines. */
export function functionsOf(file, root) {
  const text = readFileSync(file, "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.end).line;
      out.push({ file: relative(root, file), name: functionName(node, sf), line: start + 1, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Names exported by a module: named re-exports and exported declarations. */
export function exportedNames(file) {
  const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const names = [];
  for (const s of sf.statements) {
    if (ts.isExportDeclaration(s)) {
      if (s.exportClause && ts.isNamedExports(s.exportClause)) names.push(...s.exportClause.elements.map((e) => e.name.text));
      else names.push(`* from ${s.moduleSpecifier?.getText(sf)}`);
      continue;
    }
    const exported = ts.canHaveModifiers(s) && ts.getModifiers(s)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (!exported) continue;
    if (ts.isVariableStatement(s)) names.push(...s.declarationList.declarations.map((d) => d.name.getText(sf)));
    else if (s.name) names.push(s.name.getText(sf));
  }
  return names;
}

/** Each package entry (the `exports` map of its package.json) with the names its source exports. */
export function entries(root) {
  const out = [];
  for (const pkg of PACKAGES) {
    const manifest = JSON.parse(readFileSync(join(root, pkg, "package.json"), "utf8"));
    for (const [subpath, target] of Object.entries(manifest.exports ?? { ".": manifest.main })) {
      const built = typeof target === "string" ? target : (target.import ?? target.default ?? Object.values(target)[0]);
      const path = typeof built === "string" ? built : (built?.default ?? built?.import);
      if (typeof path !== "string" || !path.startsWith("./dist/")) continue;
      // `./dist/<name>.js` is built from `src/<name>.ts` or `src/<name>/index.ts`.
      const file = join(root, pkg, path.replace(/^\.\/dist\//, "src/").replace(/\.(c|m)?js$/, ".ts"));
      const src = existsSync(file) ? file : file.replace(/\.ts$/, "/index.ts");
      if (!existsSync(src)) continue;
      out.push({
        entry: `${manifest.name}${subpath === "." ? "" : subpath.slice(1)}`,
        file: relative(root, src),
        names: exportedNames(src),
      });
    }
  }
  return out;
}

/** Relative imports of a source file (type-only ones included), resolved to files. */
function importsOf(file) {
  const text = readFileSync(file, "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false);
  const out = [];
  for (const s of sf.statements) {
    const spec =
      (ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) && s.moduleSpecifier && ts.isStringLiteral(s.moduleSpecifier)
        ? s.moduleSpecifier.text
        : undefined;
    if (!spec?.startsWith(".")) continue;
    const target = resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
    if (existsSync(target)) out.push(target);
    else if (existsSync(join(target.replace(/\.ts$/, ""), "index.ts"))) out.push(join(target.replace(/\.ts$/, ""), "index.ts"));
  }
  return out;
}

/** Import cycles among the given files: each a list of files (strongly connected components larger than one). */
export function cycles(files, root) {
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => t !== f)]));
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(relative(root, w));
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const f of graph.keys()) if (!idx.has(f)) strong(f);
  return found;
}

/** All the figures at once. */
export function shape(root, top = 10) {
  const files = sources(root);
  const fileLines = files
    .map((f) => ({ file: relative(root, f), lines: lineCount(readFileSync(f, "utf8")) }))
    .sort((a, b) => b.lines - a.lines);
  const functions = files.flatMap((f) => functionsOf(f, root)).sort((a, b) => b.lines - a.lines);
  return {
    files: fileLines.slice(0, top),
    filesOver400: fileLines.filter((f) => f.lines > 400).length,
    functions: functions.slice(0, top),
    functionsOver100: functions.filter((f) => f.lines > 100).length,
    entries: entries(root).map((e) => ({ entry: e.entry, exports: e.names.length })),
    cycles: cycles(files, root),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  const at = (flag) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  const root = resolve(at("--root") ?? fileURLToPath(new URL("..", import.meta.url)));
  const s = shape(root, Number(at("--top") ?? 10));
  if (args.includes("--json")) {
    console.log(JSON.stringify(s, null, 2));
  } else {
    console.log("Largest source files (lines):");
    for (const f of s.files) console.log(`  ${String(f.lines).padStart(5)}  ${f.file}`);
    console.log(`  files over 400 lines: ${s.filesOver400}`);
    console.log("Largest functions (lines):");
    for (const f of s.functions) console.log(`  ${String(f.lines).padStart(5)}  ${f.file}:${f.line} ${f.name}`);
    console.log(`  functions over 100 lines: ${s.functionsOver100}`);
    console.log("Exported names per entry:");
    for (const e of s.entries) console.log(`  ${String(e.exports).padStart(5)}  ${e.entry}`);
    console.log(`Import cycles: ${s.cycles.length}`);
    for (const c of s.cycles) console.log(`  ${c.join(" <-> ")}`);
  }
}
