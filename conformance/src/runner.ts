/** Runs checks one after another, each with a time limit, and assembles the report. */
import { SkipCheckError } from "./harness/verdict.js";
import type { WirePeer } from "./harness/wire.js";
import type { Check, CheckResult, CheckStatus, Mode, Report } from "./types.js";

/** Version of this suite. */
export const SUITE_VERSION = "0.1.0";

/** Everything a check opened, so the runner can close it and collect schema violations. */
export class Tracker {
  readonly peers: WirePeer[] = [];
  readonly cleanups: Array<() => Promise<void> | void> = [];

  /** Registers a peer for cleanup and schema accounting. */
  track<P extends WirePeer>(peer: P): P {
    this.peers.push(peer);
    return peer;
  }

  async dispose(): Promise<string[]> {
    const violations = this.peers.flatMap((p) => p.violations);
    for (const p of this.peers) p.terminate();
    for (const c of this.cleanups.reverse()) await c();
    this.peers.length = 0;
    this.cleanups.length = 0;
    return violations;
  }
}

/** Options of a conformance run. */
export interface RunOptions {
  mode: Mode;
  target: string;
  /** Per-check time limit in ms (default 30 000). */
  timeoutMs?: number;
  /** Check ids expected to fail. */
  expectedFailures?: ReadonlySet<string>;
  /** Run only these ids (all when absent). */
  only?: ReadonlySet<string>;
  /** Called after each check. */
  onResult?: (result: CheckResult) => void;
}

/** Runs the checks against a context made per check. */
export async function runChecks<C>(
  checks: ReadonlyArray<Check<C>>,
  makeContext: (tracker: Tracker) => C,
  options: RunOptions,
): Promise<Report> {
  const started = Date.now();
  const results: CheckResult[] = [];
  let unexpectedPasses = 0;
  for (const check of checks) {
    if (options.only && !options.only.has(check.id)) continue;
    const tracker = new Tracker();
    const t0 = Date.now();
    let status: CheckStatus = "pass";
    let details: string | undefined;
    const limit = options.timeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const verdict = await Promise.race([
        check.run(makeContext(tracker)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`check did not finish within ${limit} ms`)), limit);
        }),
      ]);
      if (verdict) {
        status = verdict.status;
        details = verdict.details;
      }
    } catch (error) {
      // A check may end itself as skipped from anywhere in its body (a helper found that the target cannot run it).
      status = error instanceof SkipCheckError ? "skipped" : "fail";
      details = (error as Error).message;
    } finally {
      clearTimeout(timer);
    }
    const violations = await tracker.dispose();
    if (violations.length > 0 && status !== "skipped") {
      status = "fail";
      details = [details, `received ${violations.length} message(s) that do not match schema.json: ${violations.slice(0, 3).join("; ")}`]
        .filter(Boolean)
        .join("; ");
    }
    if (status === "fail" && check.level === "SHOULD") status = "warning";
    if (options.expectedFailures?.has(check.id)) {
      if (status === "fail") status = "xfail";
      else if (status === "pass") {
        status = "fail";
        unexpectedPasses++;
        details = "listed in the expected-failures file but passed: remove it from the file";
      }
    }
    const result: CheckResult = {
      id: check.id,
      title: check.title,
      requirements: check.requirements,
      level: check.level,
      status,
      durationMs: Date.now() - t0,
      ...(details === undefined ? {} : { details }),
      ...(violations.length ? { schemaViolations: violations } : {}),
    };
    results.push(result);
    options.onResult?.(result);
  }
  const summary = { pass: 0, fail: 0, warning: 0, skipped: 0, xfail: 0, total: results.length, unexpectedPasses };
  for (const r of results) summary[r.status]++;
  return {
    suite: "srp-conformance",
    version: SUITE_VERSION,
    protocolVersion: 1,
    mode: options.mode,
    target: options.target,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    summary,
    ok: summary.fail === 0,
    results,
  };
}
