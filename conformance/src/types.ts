/** Shapes shared by the checks, the runner and the reports. */

/** Outcome of one check. `xfail` is a failure listed in the expected-failures file. */
export type CheckStatus = "pass" | "fail" | "warning" | "skipped" | "xfail";

/** Which implementation role a check tests. */
export type Mode = "hub" | "provider";

/** What a check's body returns: nothing on success, or a verdict (a pass may say how it passed). */
export type CheckVerdict = void | { status: "pass" | "fail" | "warning" | "skipped"; details: string };

/** A conformance check. */
export interface Check<C> {
  /** Stable id, e.g. `hub.auth.bad_signature`. Never reused for another meaning. */
  id: string;
  /** One line saying what is checked. */
  title: string;
  /** Requirement ids in spec/v1 that this check enforces. */
  requirements: string[];
  /** MUST checks fail; SHOULD checks warn. */
  level: "MUST" | "SHOULD";
  /** The check. Throwing counts as a failure with the error's message. */
  run(ctx: C): Promise<CheckVerdict>;
}

/** The result of one check in a report. */
export interface CheckResult {
  id: string;
  title: string;
  requirements: string[];
  level: "MUST" | "SHOULD";
  status: CheckStatus;
  durationMs: number;
  details?: string;
  /** Messages received during the check that do not match schema.json. */
  schemaViolations?: string[];
}

/** A complete run. */
export interface Report {
  suite: "srp-conformance";
  version: string;
  protocolVersion: number;
  mode: Mode;
  target: string;
  startedAt: string;
  durationMs: number;
  summary: Record<CheckStatus, number> & { total: number; unexpectedPasses: number };
  /** True when no check failed (expected failures excepted) and no expected failure passed. */
  ok: boolean;
  results: CheckResult[];
}
