/**
 * `srp-hub`: run an SRP hub.
 *
 *   srp-hub serve [--port 8787] [--host 127.0.0.1] [--data-dir .srp-data/hub]
 *                 [--account ID:API_KEY ...] [--public-url URL]
 *
 * The hub's identity seed lives in `<data-dir>/hub.key` (created on first start, mode
 * 0600). Accounts given with `--account` (or `SRP_HUB_ACCOUNTS="id:key,id:key"`) are
 * held in memory; the persistent account database comes with the ledger.
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { MemoryAccountStore } from "./accounts.js";
import { createHub } from "./hub.js";
import { loadOrCreateIdentity, runCli, UsageError } from "@srp/core/node";

const USAGE = `usage: srp-hub serve [--port 8787] [--host 127.0.0.1] [--data-dir DIR] [--account ID:API_KEY]... [--public-url URL]`;

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8787" },
      host: { type: "string", default: "127.0.0.1" },
      "data-dir": { type: "string", default: ".srp-data/hub" },
      account: { type: "string", multiple: true, default: [] },
      "public-url": { type: "string" },
      "heartbeat-ms": { type: "string" },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got ${values.port}`);
  const dataDir = resolve(values["data-dir"]);
  const { identity, created } = loadOrCreateIdentity(join(dataDir, "hub.key"));
  const accounts = new MemoryAccountStore();
  const specs = [...values.account, ...(process.env.SRP_HUB_ACCOUNTS?.split(",").filter(Boolean) ?? [])];
  for (const spec of specs) {
    const i = spec.indexOf(":");
    if (i <= 0 || i === spec.length - 1) throw new UsageError(`--account takes ID:API_KEY, got ${JSON.stringify(spec)}`);
    accounts.add({ id: spec.slice(0, i), apiKeys: [spec.slice(i + 1)] });
  }
  const hub = createHub({
    identity,
    accounts,
    ...(values["public-url"] ? { publicUrl: values["public-url"] } : {}),
    ...(values["heartbeat-ms"] ? { heartbeatIntervalMs: Number(values["heartbeat-ms"]) } : {}),
  });
  const log = (event: string, detail: object) => process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), event, ...detail })}\n`);
  hub.on("session.open", (s) => log("session.open", s));
  hub.on("session.close", (s) => log("session.close", s));
  hub.on("handshake.rejected", (d) => log("handshake.rejected", d));
  const { url } = await hub.listen({ port, host: values.host });
  log("hub.listening", { url, hubId: hub.id, identity: created ? "created" : "loaded", accounts: specs.length });
  process.stdout.write(`srp-hub listening on ${url} (hub id ${hub.id})\n`);
  const stop = () => {
    log("hub.stopping", {});
    void hub.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

runCli("srp-hub", USAGE, { serve });
