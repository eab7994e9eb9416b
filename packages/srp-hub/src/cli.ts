/**
 * `srp-hub`: run and administer an SRP hub.
 *
 *   srp-hub serve [--port 8787] [--host 127.0.0.1] [--data-dir .srp-data/hub]
 *                 [--public-url URL] [--admin-token TOKEN] [--account ID:API_KEY ...]
 *   srp-hub accounts create [--id ID] [--name NAME] [--data-dir DIR]
 *   srp-hub accounts list [--data-dir DIR]
 *   srp-hub keys create ACCOUNT_ID [--label LABEL] [--data-dir DIR]
 *   srp-hub keys list ACCOUNT_ID [--data-dir DIR]
 *   srp-hub keys revoke KEY_ID [--data-dir DIR]
 *
 * The data directory holds the hub identity (`hub.key`), the SQLite database
 * (`hub.sqlite`) and the admin token (`admin.token`), all created on first use with
 * owner-only permissions. Admin commands work while the hub runs (SQLite WAL).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { randomBytes, toBase64Url } from "@srp/core";
import { loadOrCreateIdentity, runCli, UsageError } from "@srp/core/node";
import { createHub } from "./hub.js";
import { SqliteStore } from "./storage/sqlite.js";

const USAGE = `usage:
  srp-hub serve [--port 8787] [--host 127.0.0.1] [--data-dir DIR] [--public-url URL] [--admin-token TOKEN] [--account ID:API_KEY]...
  srp-hub accounts create [--id ID] [--name NAME] [--data-dir DIR]
  srp-hub accounts list [--data-dir DIR]
  srp-hub keys create ACCOUNT_ID [--label LABEL] [--data-dir DIR]
  srp-hub keys list ACCOUNT_ID [--data-dir DIR]
  srp-hub keys revoke KEY_ID [--data-dir DIR]`;

const DATA_DIR = { type: "string", default: ".srp-data/hub" } as const;

function openStore(dataDir: string): SqliteStore {
  return new SqliteStore(join(resolve(dataDir), "hub.sqlite"));
}

function adminToken(dataDir: string, given: string | undefined): string {
  if (given) return given;
  const file = join(dataDir, "admin.token");
  if (!existsSync(file)) writeFileSync(file, `srpadm_${toBase64Url(randomBytes(24))}\n`, { mode: 0o600, flag: "wx" });
  return readFileSync(file, "utf8").trim();
}

async function serve(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8787" },
      host: { type: "string", default: "127.0.0.1" },
      "data-dir": DATA_DIR,
      account: { type: "string", multiple: true, default: [] },
      "public-url": { type: "string" },
      "admin-token": { type: "string" },
      "heartbeat-ms": { type: "string" },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got ${values.port}`);
  const dataDir = resolve(values["data-dir"]);
  const { identity, created } = loadOrCreateIdentity(join(dataDir, "hub.key"));
  const store = openStore(dataDir);
  const specs = [...values.account, ...(process.env.SRP_HUB_ACCOUNTS?.split(",").filter(Boolean) ?? [])];
  for (const spec of specs) {
    const i = spec.indexOf(":");
    if (i <= 0 || i === spec.length - 1) throw new UsageError(`--account takes ID:API_KEY, got ${JSON.stringify(spec)}`);
    const id = spec.slice(0, i);
    if (!(await store.getAccount(id))) await store.createAccount({ id });
    store.importApiKey(id, spec.slice(i + 1), "--account");
  }
  const token = adminToken(dataDir, values["admin-token"] ?? process.env.SRP_ADMIN_TOKEN);
  const hub = createHub({
    identity,
    accounts: store,
    receipts: store,
    adminToken: token,
    ...(values["public-url"] ? { publicUrl: values["public-url"] } : {}),
    ...(values["heartbeat-ms"] ? { heartbeatIntervalMs: Number(values["heartbeat-ms"]) } : {}),
  });
  const log = (event: string, detail: object) => process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), event, ...detail })}\n`);
  hub.on("session.open", (s) => log("session.open", s));
  hub.on("session.close", (s) => log("session.close", s));
  hub.on("handshake.rejected", (d) => log("handshake.rejected", d));
  hub.on("breaker", (c) => log(c.lastForModel ? "breaker.last_instance_parked" : `breaker.${c.status}`, c));
  hub.on("receipt.rejected", (d) => log("receipt.rejected", d));
  const { url } = await hub.listen({ port, host: values.host });
  log("hub.listening", { url, hubId: hub.id, identity: created ? "created" : "loaded", database: join(dataDir, "hub.sqlite") });
  process.stdout.write(`srp-hub listening on ${url} (hub id ${hub.id})\n`);
  const stop = () => {
    log("hub.stopping", {});
    void hub.close().then(() => {
      store.close();
      process.exit(0);
    });
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

async function accounts(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({ args: rest, options: { id: { type: "string" }, name: { type: "string" }, "data-dir": DATA_DIR }, strict: true });
  const store = openStore(values["data-dir"]);
  try {
    if (sub === "create") {
      const input: { id?: string; name?: string } = {};
      if (values.id) input.id = values.id;
      if (values.name) input.name = values.name;
      const account = await store.createAccount(input);
      const { key, record } = await store.createApiKey(account.id, "created with the account");
      print({ account, apiKey: key, keyId: record.keyId, note: "the API key is shown only once" });
    } else if (sub === "list") print(await store.listAccounts());
    else throw new UsageError(`unknown accounts command ${JSON.stringify(sub)}`);
  } finally {
    store.close();
  }
}

async function keys(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({ args: rest, options: { label: { type: "string" }, "data-dir": DATA_DIR }, allowPositionals: true, strict: true });
  const target = positionals[0];
  if (!target) throw new UsageError(`keys ${sub ?? ""} needs an id`);
  const store = openStore(values["data-dir"]);
  try {
    if (sub === "create") {
      const { key, record } = await store.createApiKey(target, values.label);
      print({ apiKey: key, ...record, note: "the API key is shown only once" });
    } else if (sub === "list") print(await store.listApiKeys(target));
    else if (sub === "revoke") {
      if (!(await store.revokeApiKey(target))) throw new Error(`no active key ${target}`);
      print({ revoked: target });
    } else throw new UsageError(`unknown keys command ${JSON.stringify(sub)}`);
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(error.message);
    throw error;
  } finally {
    store.close();
  }
}

runCli("srp-hub", USAGE, { serve, accounts, keys });
