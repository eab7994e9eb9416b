/** Entry points that run a whole suite. */
import { HUB_CHECKS, type HubContext } from "./checks/hub.js";
import { PROVIDER_CHECKS, type ProviderContext } from "./checks/provider.js";
import { runChecks, type RunOptions } from "./runner.js";
import { SchemaValidator } from "./schema.js";
import type { Report } from "./types.js";

/** Options shared by both suites. */
export type SuiteOptions = Omit<RunOptions, "mode" | "target">;

/**
 * Tests a hub by URL, playing provider nodes against it. With `x402PayerKey` (the private
 * key of a wallet holding the hub's x402 token) the x402 checks also pay one request.
 *
 * @example
 * const report = await runHubSuite({ url: "http://127.0.0.1:8787", accountKey: "srp_..." });
 * console.log(report.summary);
 */
export async function runHubSuite(options: SuiteOptions & { url: string; accountKey?: string; x402PayerKey?: string }): Promise<Report> {
  const validator = new SchemaValidator();
  return runChecks<HubContext>(
    HUB_CHECKS,
    (tracker) => ({ baseUrl: options.url, accountKey: options.accountKey, x402PayerKey: options.x402PayerKey, validator, tracker }),
    {
      ...options,
      mode: "hub",
      target: options.url,
    },
  );
}

/**
 * Tests a provider by command, playing the hub for it. The command is launched once per
 * check with the harness hub's base URL appended as its last argument.
 */
export async function runProviderSuite(options: SuiteOptions & { command: string; connectTimeoutMs?: number }): Promise<Report> {
  const validator = new SchemaValidator();
  return runChecks<ProviderContext>(
    PROVIDER_CHECKS,
    (tracker) => ({
      command: options.command,
      validator,
      tracker,
      ...(options.connectTimeoutMs ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    }),
    { ...options, mode: "provider", target: options.command },
  );
}
