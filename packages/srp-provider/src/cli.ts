/**
 * `srp-provider`: run an SRP provider node.
 *
 *   srp-provider connect [--account-key KEY] [--identity FILE] [--hub-id ID] [--once] <hub-url>
 *   srp-provider keygen [--identity FILE]
 *
 * `connect` dials out to the hub (base URL or provider WebSocket URL), authenticates and
 * stays connected, reconnecting with backoff; it exits with status 2 when the hub
 * rejects the node for a reason a retry cannot fix, or when another process with the
 * same identity replaces it. The account key may also come from `SRP_ACCOUNT_KEY`.
 * Logs are JSON lines on stderr.
 */
import { parseArgs } from "node:util";
import { loadOrCreateIdentity, runCli, UsageError } from "@srp/core/node";
import { connectToHub } from "./connection.js";

const USAGE = `usage:
  srp-provider connect [--account-key KEY] [--identity FILE] [--hub-id ID] [--once] <hub-url>
  srp-provider keygen [--identity FILE]`;
const DEFAULT_IDENTITY = ".srp-data/provider/node.key";

const log = (event: string, detail: object = {}) => process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), event, ...detail })}\n`);

async function connect(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "account-key": { type: "string" },
      identity: { type: "string", default: DEFAULT_IDENTITY },
      "hub-id": { type: "string" },
      once: { type: "boolean", default: false },
    },
  });
  const hub = positionals.at(-1);
  if (!hub) throw new UsageError("the hub URL is the last argument");
  const key = values["account-key"] ?? process.env.SRP_ACCOUNT_KEY;
  if (!key) throw new UsageError("an account key is needed: --account-key KEY or SRP_ACCOUNT_KEY");
  const { identity, created } = loadOrCreateIdentity(values.identity);
  log("node.identity", { nodeId: identity.id, created });
  const conn = connectToHub({
    hub,
    identity,
    account: { kind: "api_key", key },
    agent: "srp-provider/0.1.0",
    ...(values["hub-id"] ? { expectedHubId: values["hub-id"] } : {}),
    ...(values.once ? { reconnect: false as const } : {}),
  });
  conn.on("welcome", (w) => log("session.open", { sessionId: w.sessionId, accountId: w.accountId, version: w.version, replaced: w.replaced }));
  conn.on("disconnected", (d) => log("session.closed", d));
  conn.on("protocolError", (e) => log("protocol.error", e));
  conn.on("stopped", ({ error }) => {
    if (error) {
      log("node.stopped", { code: error.code, message: error.message });
      process.stderr.write(`srp-provider: stopped: ${error.code}: ${error.message}\n`);
      process.exit(2);
    }
    process.exit(0);
  });
  const stop = () => void conn.close();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

function keygen(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { identity: { type: "string", default: DEFAULT_IDENTITY } } });
  const { identity, created } = loadOrCreateIdentity(values.identity);
  process.stdout.write(`${identity.id}\n`);
  if (!created) process.stderr.write(`srp-provider: ${values.identity} already existed; kept it\n`);
}

runCli("srp-provider", USAGE, { connect, keygen });
