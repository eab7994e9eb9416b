/**
 * `@srp/conformance`: the SRP conformance suite. It tests a hub by URL (playing provider
 * nodes) and a provider by command (playing the hub), over the wire only; every check
 * has a stable id and cites the spec requirements it enforces, and every received
 * message is validated against `spec/v1/schema.json`.
 *
 * One entry: running a suite (`runHubSuite`, `runProviderSuite`) and reporting its
 * results, the check lists with their contexts (what `spec/v1/coverage.md` is made from),
 * and the schema validator the checks share. The `srp-conformance` CLI is the usual way in.
 *
 * Every export is public API: a new export is a promise to keep it.
 *
 * @packageDocumentation
 * @module @srp/conformance
 */
export { runHubSuite, runProviderSuite, type SuiteOptions } from "./suite.js";
export { HUB_CHECKS, type HubContext } from "./checks/hub.js";
export { PROVIDER_CHECKS, type ProviderContext } from "./checks/provider.js";
export { toJson, toJunit, toText, parseExpectedFailures } from "./report.js";
export { SchemaValidator } from "./schema.js";
export { NOT_WIRE_TESTABLE } from "./coverage.js";
export { SUITE_VERSION, type RunOptions } from "./runner.js";
export type { Check, CheckResult, CheckStatus, CheckVerdict, Mode, Report } from "./types.js";
