// Bench helper: reads a V8 CPU profile (`node --cpu-prof`) of a hub or provider process and
// sums its self time by stage (HTTP, JSON, signing and hashing, SQLite, WebSocket, schema
// validation, routing, billing, relay, GC, other), mapping bundled code back to its source
// file through the build's source maps. Used by the gateway phase to print where the hub's
// CPU time per request goes; also runnable by hand:
//
//   node bench/cpu-profile.mjs file.cpuprofile [requests]
import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";

/**
 * Stages in the order they are tested: the first whose test matches a frame's source file
 * (mapped through the source map when there is one) or function name takes its self time.
 */
const STAGES = [
  ["idle", (f) => f.name === "(idle)"],
  ["gc", (f) => f.name === "(garbage collector)"],
  ["schema validation", (f) => /@sinclair\/typebox|srp-core\/src\/(schema|validate)/.test(f.source)],
  [
    "signing & hashing",
    (f) => /tweetnacl|@noble|sodium-native|srp-core\/src\/(sign|canonical|hash|crypto|node)|node:crypto|internal\/crypto/.test(f.source),
  ],
  ["SQLite", (f) => /better-sqlite3|src\/storage\/|src\/ledger\//.test(f.source)],
  ["WebSocket", (f) => /node_modules\/ws\//.test(f.source)],
  ["JSON", (f) => f.source === "" && /^(parse|stringify|JSONParse|JSONStringify|JsonParse|JsonStringify)$/.test(f.name)],
  ["routing", (f) => /src\/routing\//.test(f.source)],
  ["frame codec", (f) => /srp-core\/src\/codec/.test(f.source)],
  [
    "files (position, receipts, status, logs)",
    (f) => /srp-provider\/src\/(receipt-store|position-file|cli)|^node:(fs|internal\/fs)/.test(f.source),
  ],
  ["billing & metering", (f) => /srp-core\/src\/(money|metering|usage)|src\/api\/(run-billing|meters)|src\/receipts/.test(f.source)],
  ["relay (sessions, jobs)", (f) => /src\/(session|relay|node-adapter|gate|hub\/)|srp-provider\/src\/(provider|connection)/.test(f.source)],
  ["consumer API", (f) => /srp-hub\/src\/api\//.test(f.source)],
  ["backend (node side)", (f) => /srp-provider\/src\/backends\//.test(f.source)],
  [
    "HTTP & streams",
    (f) =>
      /^node:(_http|http|net|stream|internal\/(streams|http|stream_base|net|timers|url|webstreams|fetch))|undici|internal\/deps\/undici/.test(
        f.source,
      ),
  ],
  ["(program)", (f) => f.name === "(program)"],
];

const maps = new Map();
/** The source map of a `file://` script, or null (no map, or not a file). */
function sourceMapOf(url) {
  if (maps.has(url)) return maps.get(url);
  let map = null;
  if (url.startsWith("file://")) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(url)}.map`, "utf8")));
    } catch {
      map = null;
    }
  }
  maps.set(url, map);
  return map;
}

/** A frame's source file (the original one where a source map says so) and function name. */
function frameOf(callFrame) {
  const { url, functionName, lineNumber, columnNumber } = callFrame;
  let source = url;
  const map = sourceMapOf(url);
  if (map && lineNumber >= 0) {
    const entry = map.findEntry(lineNumber, columnNumber);
    if (entry?.originalSource) source = new URL(entry.originalSource, url).href;
  }
  return { name: functionName || "(anonymous)", source, line: lineNumber + 1 };
}

/** The stage a frame belongs to (see STAGES); null for a native frame not named there. */
export function stageOf(frame) {
  for (const [stage, test] of STAGES) if (test(frame)) return stage;
  return frame.source === "" ? null : "other";
}

/**
 * Self time of a profile by stage and by function, in ms. `busyMs` is everything but idle
 * time; `stages` and `top` are sorted by time, largest first. `from` / `to` (µs of the
 * monotonic clock, as `process.hrtime.bigint() / 1000n` reads it in any process on the
 * machine) keep only the samples taken in that window.
 */
export function summarizeProfile(profile, { topN = 15, from = -Infinity, to = Infinity } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const frames = new Map();
  const frame = (id) => {
    if (!frames.has(id)) frames.set(id, frameOf(byId.get(id).callFrame));
    return frames.get(id);
  };
  // A native frame (writev, fsync, ...) takes the stage of the nearest caller that has one.
  const stageAt = (id) => {
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const stage = stageOf(frame(at));
      if (stage) return stage;
    }
    return "other";
  };
  const self = new Map();
  const deltas = profile.timeDeltas;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += deltas[i];
    if (at < from || at > to) continue;
    // The delta that follows a sample is the time spent in it.
    const dt = (deltas[i + 1] ?? 0) / 1000;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const stages = new Map();
  const fns = new Map();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const f0 = frame(id);
    const stage = stageAt(id);
    totalMs += ms;
    stages.set(stage, (stages.get(stage) ?? 0) + ms);
    const short = f0.source.replace(/^.*\/(node_modules\/|packages\/)/, "").replace(/^file:\/\//, "");
    const key = `${f0.name} (${short || "native"}${short ? `:${f0.line}` : ""})`;
    const f = fns.get(key) ?? { name: key, stage, ms: 0 };
    f.ms += ms;
    fns.set(key, f);
  }
  const idleMs = stages.get("idle") ?? 0;
  stages.delete("idle");
  const sorted = [...stages].map(([stage, ms]) => ({ stage, ms })).sort((a, b) => b.ms - a.ms);
  const top = [...fns.values()]
    .filter((f) => f.stage !== "idle")
    .sort((a, b) => b.ms - a.ms)
    .slice(0, topN);
  return { totalMs, idleMs, busyMs: totalMs - idleMs, stages: sorted, top };
}

/** Reads and summarizes a `.cpuprofile` file (options as {@link summarizeProfile}). */
export function summarizeProfileFile(path, options) {
  return summarizeProfile(JSON.parse(readFileSync(path, "utf8")), options);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [path, requests] = process.argv.slice(2);
  const s = summarizeProfileFile(path, { topN: 40 });
  const per = (ms) => (requests ? ` ${((ms * 1000) / Number(requests)).toFixed(0)} µs/request` : "");
  console.log(`busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled${per(s.busyMs)}`);
  for (const { stage, ms } of s.stages)
    console.log(`  ${stage.padEnd(24)} ${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / s.busyMs).toFixed(1).padStart(5)} %${per(ms)}`);
  console.log("top self time:");
  for (const f of s.top) console.log(`  ${f.ms.toFixed(1).padStart(8)} ms  ${f.stage.padEnd(22)} ${f.name}`);
}
