// Generates and checks the machine-readable parts of spec/v1 from @srp/core:
//   schema.json                 JSON Schema 2020-12, one $defs entry per message
//   openapi.json                OpenAPI 3.1 of the consumer API (what a hub serves at /openapi.json)
//   examples/<Message>/*.json   deterministic examples, signed with the published test keys
//   errors.md                   the error table between the GENERATED markers
//   test-vectors.md             the test key table between the GENERATED markers
//   ../../conformance/README.md the table of conformance checks between the GENERATED markers
//   coverage.md                 every requirement id, its level and the checks that enforce it
// `node scripts/spec.mjs write` rewrites them; `check` exits 1 when any is stale, when
// requirement ids in the prose are not unique, or when a MUST is neither cited by a
// conformance check nor listed as not testable over the wire (conformance/src/coverage.ts).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { canonicalize, ERROR_TABLE, omitFields, sha256Hex, signingBytes } from "../packages/srp-core/dist/index.js";
import { buildJsonSchema, consumerOpenApi } from "../packages/srp-core/dist/schema.js";
import { HUB_CHECKS, NOT_WIRE_TESTABLE, PROVIDER_CHECKS } from "../conformance/dist/index.js";
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
const keyTable = [
  "| role | Ed25519 seed (hex) | id (base64url public key) |",
  "|---|---|---|",
  ...testKeyTable().map((k) => `| ${k.role} | \`${k.seedHex}\` | \`${k.id}\` |`),
].join("\n");
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
  'The cost follows [money.md](money.md#cost): 11 prompt tokens at 50000 and 3 completion tokens at 150000 per 1M give 550000 + 450000 = 1000000 micro-units, so `cost` is `"1"`.',
  "",
  "`requestHash` is the SHA-256 of the canonical form of the job's `request` ([`examples/Job/chat.json`](examples/Job/chat.json), SRP-ATT-004):",
  "",
  "```",
  canonicalize(job.request),
  "```",
  "",
  `that is \`${sha256Hex(canonicalize(job.request))}\`. \`responseHash\` is the SHA-256 of the canonical JSON array of the streamed chunks' \`data\` in \`seq\` order (SRP-ATT-005), here the single chunk of [\`examples/Chunk/first.json\`](examples/Chunk/first.json): \`${sha256Hex(canonicalize([chunk]))}\`.`,
].join("\n");
// Canonical JSON of numbers and member order (SRP-FRM-020, SRP-FRM-021): JSON text as sent -> RFC 8785 form of the parsed value.
const NUMBER_TEXTS = [
  "0.1",
  "4.50",
  "1.0",
  "-0",
  "1e21",
  "1e20",
  "1e-7",
  "0.000001",
  "5e-324",
  "1.7976931348623157e308",
  "333333333.33333329",
  "9007199254740991",
  "9007199254740993",
  "123456789012345678901",
  "-1.5E-10",
  // U+FB33 is escaped in the text as received: Unicode normalization (NFC, which editors and
  // clipboards may apply) would turn the raw character into U+05D3 U+05BC when copied.
  '{"b":{"\\ud83d\\ude00":1,"\\ufb33":2,"\u20ac":3},"a":[1.0,{"\u00e9":0.5,"e":-0}],"\\r":"CR","1":"one"}',
];
const FB33_VECTOR = NUMBER_TEXTS.at(-1);
const NUMBER_REQUEST =
  '{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.1,"top_p":1e-7,"frequency_penalty":-0,"presence_penalty":4.50,"seed":9007199254740993,"logit_bias":{"11":1e21,"12":1.0}}';
const numberVectors = [
  "| JSON text as received | canonical form (RFC 8785) |",
  "|---|---|",
  ...NUMBER_TEXTS.map((t) => `| \`${t}\` | \`${canonicalize(JSON.parse(t))}\` |`),
  "",
  `In the last row the text as received writes U+FB33 (HEBREW LETTER DALET WITH DAGESH) escaped, as \`"\\ufb33"\`, because Unicode normalization (NFC), which editors, browsers and clipboards may apply, replaces the raw character with the two code points U+05D3 U+05BC, which sort and hash differently. The canonical form cannot escape it (RFC 8785 writes every character above U+001F other than \`"\` and \`\\\` raw), so the character in the canonical column is U+FB33, UTF-8 \`EF AC B3\`: copy that column by code point, not as normalized text. Its canonical form is ${Buffer.byteLength(canonicalize(JSON.parse(FB33_VECTOR)))} bytes of UTF-8 with SHA-256 \`${sha256Hex(canonicalize(JSON.parse(FB33_VECTOR)))}\`.`,
  "",
  "A request as a consumer sent it (one line):",
  "",
  "```",
  NUMBER_REQUEST,
  "```",
  "",
  `has the canonical form (${Buffer.byteLength(canonicalize(JSON.parse(NUMBER_REQUEST)))} bytes):`,
  "",
  "```",
  canonicalize(JSON.parse(NUMBER_REQUEST)),
  "```",
  "",
  `and its \`requestHash\` ([SRP-ATT-004](attestation.md)) is \`${sha256Hex(canonicalize(JSON.parse(NUMBER_REQUEST)))}\`.`,
].join("\n");
const checkRows = (checks) =>
  checks.map((c) => `| \`${c.id}\` | ${c.level} | ${c.requirements.join(", ")} | ${c.title.replace(/\|/g, "\\|")} |`);
const checkTable = (mode, checks) =>
  [
    `### ${mode} mode (${checks.length} checks)`,
    "",
    "| check | level | requirements | what it checks |",
    "|---|---|---|---|",
    ...checkRows(checks),
  ].join("\n");
const checksBody = [checkTable("Hub", HUB_CHECKS), "", checkTable("Provider", PROVIDER_CHECKS)].join("\n");
for (const [file, tag, body] of [
  ["../../conformance/README.md", "CHECKS", checksBody],
  ["test-vectors.md", "RECEIPT VECTOR", receiptVector],
  ["errors.md", "ERROR TABLE", errorTable],
  ["test-vectors.md", "TEST KEYS", keyTable],
  ["test-vectors.md", "NUMBER VECTORS", numberVectors],
]) {
  const content = replaceBlock(file, tag, body);
  if (content !== undefined) expected.set(file, content);
}

const requirements = readRequirements();
expected.set("coverage.md", coverageTable(requirements));

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

// Requirement ids: unique across the prose, and every MUST covered.
for (const r of requirements) {
  if (r.duplicateOf) {
    console.error(`spec: requirement ${r.id} is defined in both ${r.duplicateOf} and ${r.file}`);
    stale++;
  }
}
for (const problem of coverageProblems(requirements)) {
  console.error(`spec: ${problem}`);
  stale++;
}

if (stale > 0) {
  console.error(
    `spec: ${stale} problem(s); run \`npm run spec:gen\`, and give every MUST a conformance check or a reason in conformance/src/coverage.ts`,
  );
  process.exit(1);
}
if (mode === "check") console.log(`spec: spec/v1 is current (${expected.size} generated files, ${requirements.length} requirements)`);

/**
 * Every requirement of the prose: its id, file, anchor text and level. The level is the
 * strongest BCP 14 key word of its paragraph (MUST, SHOULD, MAY), or "none" for a
 * definition that states no key word.
 */
function readRequirements() {
  const out = [];
  const seen = new Map();
  for (const file of readdirSync(spec)
    .filter((f) => f.endsWith(".md") && f !== "coverage.md")
    .sort()) {
    const text = readFileSync(join(spec, file), "utf8");
    for (const m of text.matchAll(/\*\*(SRP-[A-Z]+-\d{3})\*\*/g)) {
      const rest = text.slice(m.index + m[0].length);
      const end = rest.search(/\n\s*\n|\n\s*(?:[-*]|\d+\.) \*\*SRP-|\n\|/);
      const para = end < 0 ? rest : rest.slice(0, end);
      const level = /\b(MUST|REQUIRED|SHALL)\b/.test(para)
        ? "MUST"
        : /\b(SHOULD|RECOMMENDED)\b/.test(para)
          ? "SHOULD"
          : /\b(MAY|OPTIONAL)\b/.test(para)
            ? "MAY"
            : "none";
      out.push({ id: m[1], file, level, duplicateOf: seen.get(m[1]) });
      seen.set(m[1], file);
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true }));
}

/** requirement id -> ids of the checks citing it */
function citations() {
  const cited = new Map();
  for (const c of [...HUB_CHECKS, ...PROVIDER_CHECKS]) for (const r of c.requirements) cited.set(r, [...(cited.get(r) ?? []), c.id]);
  return cited;
}

function coverageProblems(reqs) {
  const cited = citations();
  const defined = new Set(reqs.map((r) => r.id));
  const problems = [];
  for (const r of reqs) {
    if (r.level === "MUST" && !cited.has(r.id) && !NOT_WIRE_TESTABLE[r.id])
      problems.push(`${r.id} (${r.file}) is a MUST with no conformance check and no reason in conformance/src/coverage.ts`);
    if (cited.has(r.id) && NOT_WIRE_TESTABLE[r.id])
      problems.push(`${r.id} is cited by ${cited.get(r.id).join(", ")} but listed as not testable over the wire`);
  }
  for (const id of Object.keys(NOT_WIRE_TESTABLE))
    if (!defined.has(id)) problems.push(`conformance/src/coverage.ts lists ${id}, which spec/v1 does not define`);
  for (const id of cited.keys()) if (!defined.has(id)) problems.push(`a conformance check cites ${id}, which spec/v1 does not define`);
  return problems;
}

function coverageTable(reqs) {
  const cited = citations();
  const count = (pred) => reqs.filter(pred).length;
  const musts = reqs.filter((r) => r.level === "MUST");
  const anchor = (r) => `[${r.id}](${r.file})`;
  const rows = reqs.map((r) => {
    const checks = cited.get(r.id);
    const how = checks
      ? checks.map((c) => `\`${c}\``).join(", ")
      : NOT_WIRE_TESTABLE[r.id]
        ? `not testable over the wire: ${NOT_WIRE_TESTABLE[r.id]}`
        : "(no check)";
    return `| ${anchor(r)} | ${r.level} | ${how.replace(/\|/g, "\\|")} |`;
  });
  return [
    "# Conformance coverage",
    "",
    "Generated by `npm run spec:gen` from the requirement ids in this folder, the `requirements` of",
    "the conformance checks (`conformance/src/checks/`) and the reasons in",
    "`conformance/src/coverage.ts`; `npm run spec:check` fails when a MUST has neither a check nor a",
    "reason. The level is the strongest BCP 14 key word in the requirement's paragraph.",
    "",
    `- requirements: ${reqs.length} (MUST ${musts.length}, SHOULD ${count((r) => r.level === "SHOULD")}, MAY ${count((r) => r.level === "MAY")}, definitions ${count((r) => r.level === "none")})`,
    `- cited by a check: ${count((r) => cited.has(r.id))}, of them MUST ${count((r) => r.level === "MUST" && cited.has(r.id))}`,
    `- MUSTs not testable over the wire (with a reason): ${count((r) => r.level === "MUST" && !cited.has(r.id) && NOT_WIRE_TESTABLE[r.id])}`,
    `- MUSTs with neither: ${count((r) => r.level === "MUST" && !cited.has(r.id) && !NOT_WIRE_TESTABLE[r.id])}`,
    `- checks: ${HUB_CHECKS.length} in hub mode, ${PROVIDER_CHECKS.length} in provider mode`,
    "",
    "| requirement | level | enforced by |",
    "|---|---|---|",
    ...rows,
    "",
  ].join("\n");
}
