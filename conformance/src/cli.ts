/**
 * `srp-conformance`: run the SRP conformance suite.
 *
 *   srp-conformance hub --url <hub base URL> [--account-key KEY] [--x402-payer-key 0xKEY]
 *   srp-conformance provider --command "<command>"
 *   common: [--json FILE] [--junit FILE] [--expected-failures FILE] [--only ID,ID] [--timeout MS] [--list]
 *
 * Exit status: 0 when no check failed (expected failures excepted), 1 otherwise, 64 on
 * usage errors.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { LocalError } from "@srp/core";
import { HUB_CHECKS } from "./checks/hub.js";
import { PROVIDER_CHECKS } from "./checks/provider.js";
import { parseExpectedFailures, toJson, toJunit, toText } from "./report.js";
import { runHubSuite, runProviderSuite } from "./suite.js";
import type { CheckResult } from "./types.js";

const USAGE = `usage:
  srp-conformance hub --url <hub base URL> [--account-key KEY] [--x402-payer-key 0xKEY]   (a funded wallet: hub.x402.pay_once pays one request)
  srp-conformance provider --command "<command>"   (the harness hub URL is appended as the last argument)
options: --json FILE  --junit FILE  --expected-failures FILE  --only ID[,ID]  --timeout MS  --list`;

/** A command line the CLI cannot run: it prints the message and the usage, and exits with 64. */
class UsageError extends LocalError {
  override readonly name = "UsageError";
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

async function main(argv: string[]): Promise<number> {
  const [mode, ...rest] = argv;
  if (mode !== "hub" && mode !== "provider") {
    if (mode === undefined || mode === "--help" || mode === "help") {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    throw new UsageError(`unknown mode ${JSON.stringify(mode)}`);
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      url: { type: "string" },
      "account-key": { type: "string" },
      "x402-payer-key": { type: "string" },
      command: { type: "string" },
      json: { type: "string" },
      junit: { type: "string" },
      "expected-failures": { type: "string" },
      only: { type: "string" },
      timeout: { type: "string" },
      list: { type: "boolean", default: false },
    },
  });
  if (values.list) {
    for (const c of mode === "hub" ? HUB_CHECKS : PROVIDER_CHECKS)
      process.stdout.write(`${c.id}\t${c.level}\t${c.requirements.join(",")}\t${c.title}\n`);
    return 0;
  }
  const expectedFailures = values["expected-failures"]
    ? parseExpectedFailures(readFileSync(values["expected-failures"], "utf8"))
    : undefined;
  const only = values.only ? new Set(values.only.split(",").map((s) => s.trim())) : undefined;
  const timeoutMs = values.timeout ? Number(values.timeout) : undefined;
  const known = new Set((mode === "hub" ? HUB_CHECKS : PROVIDER_CHECKS).map((c) => c.id));
  for (const id of [...(expectedFailures ?? []), ...(only ?? [])]) {
    if (!known.has(id)) throw new UsageError(`no ${mode} check has the id ${id} (see --list)`);
  }
  const onResult = (r: CheckResult) =>
    process.stderr.write(`${r.status.toUpperCase().padEnd(7)} ${r.id}${r.status === "pass" ? "" : `: ${r.details ?? ""}`}\n`);
  const common = {
    onResult,
    ...(expectedFailures ? { expectedFailures } : {}),
    ...(only ? { only } : {}),
    ...(timeoutMs ? { timeoutMs } : {}),
  };
  let report;
  if (mode === "hub") {
    if (!values.url) throw new UsageError("hub mode needs --url");
    const accountKey = values["account-key"] ?? process.env.SRP_CONFORMANCE_ACCOUNT_KEY;
    const x402PayerKey = values["x402-payer-key"] ?? process.env.SRP_CONFORMANCE_X402_PAYER_KEY;
    report = await runHubSuite({
      url: values.url,
      ...(accountKey ? { accountKey } : {}),
      ...(x402PayerKey ? { x402PayerKey } : {}),
      ...common,
    });
  } else {
    if (!values.command) throw new UsageError("provider mode needs --command");
    report = await runProviderSuite({ command: values.command, ...common });
  }
  if (values.json) write(values.json, toJson(report));
  if (values.junit) write(values.junit, toJunit(report));
  process.stdout.write(toText(report));
  return report.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`srp-conformance: ${(error as Error).message}\n${USAGE}\n`);
      process.exit(64);
    }
    process.stderr.write(`srp-conformance: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
