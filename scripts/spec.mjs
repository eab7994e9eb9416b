// Generates and checks the machine-readable parts of spec/v1 from @srp/core:
//   schema.json                 JSON Schema 2020-12, one $defs entry per message
//   openapi.json                OpenAPI 3.1 of the consumer API (what a hub serves at /openapi.json)
//   examples/<Message>/*.json   deterministic examples, signed with the published test keys
//   errors.md                   the error table between the GENERATED markers
//   test-vectors.md             the test key table between the GENERATED markers
//   ../../conformance/README.md the table of conformance checks between the GENERATED markers
// `node scripts/spec.mjs write` rewrites them; `check` exits 1 when any is stale, and
// also checks that requirement ids in the prose are unique.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildJsonSchema, canonicalize, consumerOpenApi, ERROR_TABLE, omitFields, sha256Hex, signingBytes } from "../packages/srp-core/dist/index.js";
import { HUB_CHECKS, PROVIDER_CHECKS } from "../conformance/dist/index.js";
import { buildExamples, testKeyTable } from "./spec-examples.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const spec = join(root, "spec", "v1");
const mode = process.argv[2];
if (mode !== "write" && mode !== "check") {
  console.error("usage: node scripts/spec.mjs write|check");
  process.exit(2);
}

const json = (v) => `${JSON.stringify(v, null, 2)}\n`;
const expected = new Map(); // relative path -> content

expected.set("schema.json", json(buildJsonSchema()));
expected.set("openapi.json", json(consumerOpenApi("https://hub.example")));
const built = await buildExamples();
for (const [name, examples] of Object.entries(built)) {
  for (const [ex, msg] of Object.entries(examples)) expected.set(`examples/${name}/${ex}.json`, json(msg));
}

function replaceBlock(file, tag, body) {
  const path = join(spec, file);
  if (!existsSync(path)) return undefined;
  const text = expected.get(file) ?? readFileSync(path, "utf8");
  const begin = `<!-- BEGIN GENERATED ${tag} -->`;
  const end = `<!-- END GENERATED ${tag} -->`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${file} lacks the ${begin} ... ${end} markers`);
  return `${text.slice(0, a + begin.length)}\n${body}\n${text.slice(b)}`;
}

const errorRows = Object.entries(ERROR_TABLE).map(
  ([code, e]) => `| \`${code}\` | ${e.http} | ${e.close ?? "(session continues)"} | ${e.retryable ? "yes" : "no"} | ${e.title} |`,
);
const errorTable = ["| code | HTTP | WebSocket close | retryable | meaning |", "|---|---|---|---|---|", ...errorRows].join("\n");
const keyTable = ["| role | Ed25519 seed (hex) | id (base64url public key) |", "|---|---|---|", ...testKeyTable().map((k) => `| ${k.role} | \`${k.seedHex}\` | \`${k.id}\` |`)].join("\n");
const receipt = built.ReceiptMessage.countersigned.receipt;
const job = built.Job.chat;
const chunk = built.Chunk.first.data;
const nodeInput = signingBytes("receiptNode", omitFields(receipt, "nodeSig", "hubSig"));
const hubInput = signingBytes("receiptHub", omitFields(receipt, "hubSig"));
const text = (bytes) => new TextDecoder().decode(bytes);
const receiptVector = [
  `**Node signing input** (${nodeInput.length} bytes; SHA-256 \`${sha256Hex(nodeInput)}\`):`,
  "",
  "```",
  text(nodeInput),
  "```",
  "",
  `\`nodeSig\` (by the node): \`${receipt.nodeSig}\``,
  "",
  `**Hub signing input** (${hubInput.length} bytes; SHA-256 \`${sha256Hex(hubInput)}\`):`,
  "",
  "```",
  text(hubInput),
  "```",
  "",
  `\`hubSig\` (by the hub): \`${receipt.hubSig}\``,
  "",
  "The cost follows [money.md](money.md#cost): 11 prompt tokens at 50000 and 3 completion tokens at 150000 per 1M give 550000 + 450000 = 1000000 micro-units, so `cost` is `\"1\"`.",
  "",
  "`requestHash` is the SHA-256 of the canonical form of the job's `request` ([`examples/Job/chat.json`](examples/Job/chat.json), SRP-ATT-004):",
  "",
  "```",
  canonicalize(job.request),
  "```",
  "",
  `that is \`${sha256Hex(canonicalize(job.request))}\`. \`responseHash\` is the SHA-256 of the canonical JSON array of the streamed chunks' \`data\` in \`seq\` order (SRP-ATT-005), here the single chunk of [\`examples/Chunk/first.json\`](examples/Chunk/first.json): \`${sha256Hex(canonicalize([chunk]))}\`.`,
].join("\n");
const checkRows = (checks) => checks.map((c) => `| \`${c.id}\` | ${c.level} | ${c.requirements.join(", ")} | ${c.title.replace(/\|/g, "\\|")} |`);
const checkTable = (mode, checks) => [`### ${mode} mode (${checks.length} checks)`, "", "| check | level | requirements | what it checks |", "|---|---|---|---|", ...checkRows(checks)].join("\n");
const checksBody = [checkTable("Hub", HUB_CHECKS), "", checkTable("Provider", PROVIDER_CHECKS)].join("\n");
for (const [file, tag, body] of [
  ["../../conformance/README.md", "CHECKS", checksBody],
  ["test-vectors.md", "RECEIPT VECTOR", receiptVector],
  ["errors.md", "ERROR TABLE", errorTable],
  ["test-vectors.md", "TEST KEYS", keyTable],
]) {
  const content = replaceBlock(file, tag, body);
  if (content !== undefined) expected.set(file, content);
}

let stale = 0;
if (mode === "write") {
  rmSync(join(spec, "examples"), { recursive: true, force: true });
  for (const [rel, content] of expected) {
    mkdirSync(dirname(join(spec, rel)), { recursive: true });
    writeFileSync(join(spec, rel), content);
  }
  console.log(`spec: wrote ${expected.size} files under spec/v1`);
} else {
  for (const [rel, content] of expected) {
    const path = join(spec, rel);
    if (!existsSync(path) || readFileSync(path, "utf8") !== content) {
      console.error(`spec: stale or missing spec/v1/${rel}`);
      stale++;
    }
  }
  const exDir = join(spec, "examples");
  if (existsSync(exDir)) {
    for (const d of readdirSync(exDir)) {
      for (const f of readdirSync(join(exDir, d))) {
        if (!expected.has(`examples/${d}/${f}`)) {
          console.error(`spec: spec/v1/examples/${d}/${f} is not generated; add it to scripts/spec-examples.mjs`);
          stale++;
        }
      }
    }
  }
}

// Requirement ids: unique across the prose.
const seen = new Map();
for (const f of readdirSync(spec).filter((f) => f.endsWith(".md"))) {
  const text = readFileSync(join(spec, f), "utf8");
  for (const m of text.matchAll(/\*\*(SRP-[A-Z]+-\d{3})\*\*/g)) {
    if (seen.has(m[1])) {
      console.error(`spec: requirement ${m[1]} is defined in both ${seen.get(m[1])} and ${f}`);
      stale++;
    }
    seen.set(m[1], f);
  }
}

if (stale > 0) {
  console.error(`spec: ${stale} problem(s); run \`npm run spec:gen\``);
  process.exit(1);
}
if (mode === "check") console.log(`spec: spec/v1 is current (${expected.size} generated files, ${seen.size} requirements)`);
