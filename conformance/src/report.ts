/** Report writers: JSON, JUnit XML, and a text summary for terminals. */
import type { Report } from "./types.js";

/** The report as pretty JSON. */
export function toJson(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

const xml = (s: string) =>
  s
    .replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "");

/**
 * The report as JUnit XML: one testcase per check; `fail` is a failure, `skipped` and
 * `xfail` are skipped (with the reason), `warning` passes with the warning in system-out.
 */
export function toJunit(report: Report): string {
  const s = report.summary;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="srp-conformance" tests="${s.total}" failures="${s.fail}" skipped="${s.skipped + s.xfail}" time="${(report.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="srp-conformance.${report.mode}" tests="${s.total}" failures="${s.fail}" errors="0" skipped="${s.skipped + s.xfail}" timestamp="${report.startedAt}" time="${(report.durationMs / 1000).toFixed(3)}">`,
    `    <properties><property name="target" value="${xml(report.target)}"/><property name="protocolVersion" value="${report.protocolVersion}"/></properties>`,
  ];
  for (const r of report.results) {
    const open = `    <testcase classname="srp.${report.mode}" name="${xml(r.id)}" time="${(r.durationMs / 1000).toFixed(3)}">`;
    const req = `requirements: ${r.requirements.join(", ")}`;
    const detail = xml(`${r.title}. ${req}${r.details ? `. ${r.details}` : ""}`);
    if (r.status === "fail")
      lines.push(open, `      <failure message="${xml(r.details ?? "failed")}">${detail}</failure>`, "    </testcase>");
    else if (r.status === "skipped") lines.push(open, `      <skipped message="${xml(r.details ?? "skipped")}"/>`, "    </testcase>");
    else if (r.status === "xfail")
      lines.push(open, `      <skipped message="expected failure: ${xml(r.details ?? "")}"/>`, "    </testcase>");
    else if (r.status === "warning") lines.push(open, `      <system-out>WARNING (SHOULD): ${detail}</system-out>`, "    </testcase>");
    else lines.push(`${open}</testcase>`);
  }
  lines.push("  </testsuite>", "</testsuites>", "");
  return lines.join("\n");
}

/** One line per check and a closing summary line (`N passed, N failed`). */
export function toText(report: Report): string {
  const mark = { pass: "PASS", fail: "FAIL", warning: "WARN", skipped: "SKIP", xfail: "XFAIL" } as const;
  const out = report.results.map(
    (r) =>
      `${mark[r.status].padEnd(5)} ${r.id}  [${r.requirements.join(" ")}]${r.details && r.status !== "pass" ? `\n      ${r.details}` : ""}`,
  );
  const s = report.summary;
  out.push(
    "",
    `srp-conformance ${report.mode} ${report.target}: ${s.pass} passed, ${s.fail} failed, ${s.warning} warnings, ${s.skipped} skipped, ${s.xfail} expected failures`,
  );
  return `${out.join("\n")}\n`;
}

/** Parses an expected-failures file: one check id per line, `#` comments and blank lines ignored. */
export function parseExpectedFailures(text: string): Set<string> {
  return new Set(
    text
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim())
      .filter(Boolean),
  );
}
