/**
 * `srp-hub`: run and administer an SRP hub.
 *
 *   srp-hub serve [--port 8787] [--host 127.0.0.1] [--data-dir .srp-data/hub] [--db sqlite:PATH|postgres://...]
 *                 [--public-url URL] [--admin-token TOKEN] [--account ID:API_KEY ...] [--signup-credits UNITS] [--metrics-token TOKEN]
 *                 [--redis redis://HOST:PORT [--workers N] [--link-host H] [--link-port N] [--link-advertise H]]
 *   srp-hub accounts create|list
 *   srp-hub keys create|update|list|revoke|spend   (API keys and their spending controls)
 *   srp-hub ledger verify | show ACCOUNT_ID | history ACCOUNT_ID | deposit ACCOUNT_ID UNITS --ref REF | refund ACCOUNT_ID --ref REF | top
 *   srp-hub payouts run --rpc URL --chain-id N --settlement ADDRESS --token ADDRESS [--key HEX] [--signer-key HEX] [--minimum UNITS]
 *
 * The data directory holds the hub identity (`hub.key`), the SQLite database
 * (`hub.sqlite`, unless `--db` names another) and the admin token (`admin.token`), all
 * created on first use with owner-only permissions. Admin commands work while the hub
 * runs (SQLite WAL, or PostgreSQL). Every command takes `--data-dir` and `--db`.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatUsdc, randomBytes, toBase64Url } from "@srp/core";
import { loadOrCreateIdentity, runCli, UsageError } from "@srp/core/node";
import { createHub, type HubOptions, type HubX402Options, type RequestEvent } from "./hub.js";
import { keyRecordJson, parseKeyBody, spendRows } from "./api/keys.js";
import { applyPolicyPatch, NO_POLICY, PolicyError } from "./keys/policy.js";
import { directSettler, facilitatorSettler } from "./payments/authorization-settlers.js";
import { openStore as openDatabase } from "./storage/open.js";
import type { SqlStore } from "./storage/sql-store.js";
import { OnchainPayouts } from "./payments/onchain-payouts.js";
import { parseLimit, type HubLimits } from "./limits.js";
import type { HubCardOptions } from "./cards/stripe-cards.js";
import type { ClusterOptions } from "./cluster/cluster.js";
import { isUnspecifiedHost } from "./cluster/links.js";
import { superviseWorkers } from "./workers.js";
import type { PaymentRail } from "./payments/rail.js";

const USAGE = `usage:
  srp-hub serve [--port 8787] [--host 127.0.0.1] [--public-url URL] [--admin-token TOKEN] [--account ID:API_KEY]... [--signup-credits UNITS]
                [--metrics-token TOKEN]   (Prometheus metrics at GET /metrics for this bearer token; also SRP_METRICS_TOKEN)
                [--request-log on|off]    (a "request" log line per consumer request, default on; also SRP_REQUEST_LOG)
                [--trust-proxy] [--limit NAME=BURST:PER_SECOND|N|off]...   (limits on strangers, see the README's "Limits")
                [--redis redis://HOST:PORT [--workers N] [--link-host HOST] [--link-port N] [--link-advertise HOST]]
                                                 (several processes as one hub, on PostgreSQL: docs/deployment.md)
                [--chain-rpc URL --chain-id N --usdc ADDRESS [--usdc-name "USD Coin"] [--usdc-version 2]
                 --treasury ADDRESS | --treasury-key HEX, --settler-key HEX | --facilitator URL, [--settle before|after]
                 [--settlement ADDRESS [--voucher-key HEX]]]   (x402 pay-per-call and on-chain payouts)
                [--solana-rpc URL --solana-treasury OWNER [--solana-network solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp]
                 [--solana-mint ADDRESS] [--solana-decimals 6] [--solana-fee-payer-key JSON|BASE58|FILE]
                 [--solana-min-amount UNITS (default 10000: Solana is offered from $0.01)]]
                                                 (x402 on Solana too, beside the --chain-rpc network; mint default USDC on
                                                  mainnet only; fee payer key also SRP_SOLANA_FEE_PAYER, preferred;
                                                  refunds to Solana payers with the treasury owner's key in SRP_SOLANA_TREASURY_KEY)
                [--stripe-secret-key KEY --stripe-webhook-secret SECRET [--card-success-url URL] [--card-cancel-url URL]]
                                                 (card deposits through Stripe Checkout; also STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET)
  srp-hub accounts create [--id ID] [--name NAME]
  srp-hub accounts list
  srp-hub keys create ACCOUNT_ID [--label LABEL] [--tag TAG]... [--expires ISO|MS] [--model MODEL]...
                [--budget-total USD] [--budget-day USD] [--budget-month USD] [--rpm N] [--tpm N] [--concurrency N]
  srp-hub keys update KEY_ID [the flags of create] [--clear budget|limits|models|expires|tags|label]...
  srp-hub keys list ACCOUNT_ID          (each key with its policy and what it spent)
  srp-hub keys revoke KEY_ID
  srp-hub keys spend ACCOUNT_ID [--by key|tag]
  srp-hub ledger verify
  srp-hub ledger show ACCOUNT_ID
  srp-hub ledger history ACCOUNT_ID [--limit N]
  srp-hub ledger deposit ACCOUNT_ID UNITS --ref REFERENCE
  srp-hub ledger refund ACCOUNT_ID --ref REFERENCE
  srp-hub ledger top [--by earned|spent] [--limit N]
  srp-hub payouts run --rpc URL --chain-id N --settlement ADDRESS --token ADDRESS [--key HEX] [--signer-key HEX] [--minimum UNITS]
every command also takes --data-dir DIR (default .srp-data/hub) and --db sqlite:PATH|postgres://URL
(default sqlite:DIR/hub.sqlite; also SRP_HUB_DB). Amounts are USDC atomic units (1 = 0.000001 USD).`;

const DATA_DIR = { type: "string", default: ".srp-data/hub" } as const;
const DB = { type: "string" } as const;

function dbSpec(dataDir: string, db: string | undefined): string {
  return db ?? process.env.SRP_HUB_DB ?? `sqlite:${join(resolve(dataDir), "hub.sqlite")}`;
}

function openStore(dataDir: string, db: string | undefined, signupCredits?: bigint): Promise<SqlStore> {
  return openDatabase(dbSpec(dataDir, db), signupCredits === undefined ? {} : { signupCredits });
}

function unitsArg(text: string | undefined, what: string): bigint {
  if (text === undefined || !/^[0-9]{1,18}$/.test(text))
    throw new UsageError(`${what} is a whole number of atomic units (1 = 0.000001 USD), got ${JSON.stringify(text)}`);
  return BigInt(text);
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
      db: DB,
      "signup-credits": { type: "string" },
      account: { type: "string", multiple: true, default: [] },
      "public-url": { type: "string" },
      "admin-token": { type: "string" },
      "metrics-token": { type: "string" },
      "request-log": { type: "string" },
      "heartbeat-ms": { type: "string" },
      "trust-proxy": { type: "boolean", default: false },
      limit: { type: "string", multiple: true, default: [] },
      // Several processes as one hub (docs/deployment.md).
      redis: { type: "string" },
      workers: { type: "string" },
      "link-host": { type: "string" },
      "link-port": { type: "string" },
      "link-advertise": { type: "string" },
      // x402 and on-chain payouts (all optional; x402 is on when --chain-rpc is given).
      "chain-rpc": { type: "string" },
      "chain-id": { type: "string" },
      usdc: { type: "string" },
      "usdc-name": { type: "string", default: "USD Coin" },
      "usdc-version": { type: "string", default: "2" },
      treasury: { type: "string" },
      "settler-key": { type: "string" },
      "treasury-key": { type: "string" },
      facilitator: { type: "string" },
      settle: { type: "string", default: "before" },
      settlement: { type: "string" },
      "voucher-key": { type: "string" },
      // x402 on Solana too (on when --solana-rpc is given; needs --chain-rpc): solana-flags.ts.
      "solana-rpc": { type: "string" },
      "solana-network": { type: "string" },
      "solana-mint": { type: "string" },
      "solana-decimals": { type: "string" },
      "solana-treasury": { type: "string" },
      "solana-fee-payer-key": { type: "string" },
      "solana-min-amount": { type: "string" },
      // Card deposits through Stripe Checkout (on when a secret key is given).
      "stripe-secret-key": { type: "string" },
      "stripe-webhook-secret": { type: "string" },
      "card-success-url": { type: "string" },
      "card-cancel-url": { type: "string" },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got ${values.port}`);
  const requestLog = values["request-log"] ?? process.env.SRP_REQUEST_LOG ?? "on";
  if (requestLog !== "on" && requestLog !== "off") throw new UsageError(`--request-log is on or off, got ${requestLog}`);
  const limits: HubLimits = { trustProxy: values["trust-proxy"] };
  for (const text of values.limit) {
    try {
      Object.assign(limits, parseLimit(text));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const dataDir = resolve(values["data-dir"]);
  const clusterOptions = clusterArgs(values, dbSpec(dataDir, values.db));
  // Solana's libraries load only when a --solana-* flag is given.
  const solana = Object.keys(values).some((k) => k.startsWith("solana-") && values[k as keyof typeof values] !== undefined)
    ? (await import("./solana-flags.js")).solanaRails(values)
    : [];
  const workers = values.workers === undefined ? 1 : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new UsageError(`--workers is 1..256, got ${values.workers}`);
  if (workers > 1 && !clusterOptions) throw new UsageError("--workers needs --redis (and a PostgreSQL --db): the workers share them");
  if (workers > 1 && clusterOptions?.link?.port)
    throw new UsageError("--workers gives each worker a free link port: leave --link-port out");
  const { identity, created } = loadOrCreateIdentity(join(dataDir, "hub.key"));
  if (workers > 1) {
    // The primary creates what the workers share (identity, admin token, the database's tables) before forking.
    adminToken(dataDir, values["admin-token"] ?? process.env.SRP_ADMIN_TOKEN);
    await (await openStore(dataDir, values.db)).close();
    const log = (event: string, detail: object) =>
      process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), event, ...detail })}\n`);
    log("hub.workers", { workers, hubId: identity.id });
    process.stdout.write(`srp-hub starting ${workers} workers on ${values.host}:${port} (hub id ${identity.id})\n`);
    // A worker that would not stop was killed: the exit status says the shutdown was not clean.
    if (!(await superviseWorkers(workers, argv, log))) process.exitCode = 1;
    return;
  }
  const signup = values["signup-credits"] === undefined ? undefined : unitsArg(values["signup-credits"], "--signup-credits");
  const store = await openStore(dataDir, values.db, signup);
  const specs = [...values.account, ...(process.env.SRP_HUB_ACCOUNTS?.split(",").filter(Boolean) ?? [])];
  for (const spec of specs) {
    const i = spec.indexOf(":");
    if (i <= 0 || i === spec.length - 1) throw new UsageError(`--account takes ID:API_KEY, got ${JSON.stringify(spec)}`);
    await store.importApiKey(spec.slice(0, i), spec.slice(i + 1), "--account");
  }
  const token = adminToken(dataDir, values["admin-token"] ?? process.env.SRP_ADMIN_TOKEN);
  const chain = values["chain-rpc"] ? await chainOptions(values as ChainArgs, store, solana) : {};
  // Routing and payout state live in the database too (written behind every second), so
  // the 14-day window, ramp-up and anti-flapping survive a restart.
  const writeBehindError = (what: string) => (error: unknown) =>
    process.stderr.write(
      `${JSON.stringify({ t: new Date().toISOString(), event: "storage.error", what, message: (error as Error)?.message ?? String(error) })}\n`,
    );
  const routing = await store.openRouting({ onError: writeBehindError("routing.flush") });
  const payoutState = await store.openPayoutState({ onError: writeBehindError("payouts.flush") });
  const hub = createHub({
    identity,
    accounts: store,
    storage: store,
    routing,
    payoutState,
    admin: store,
    adminToken: token,
    limits,
    ...chain,
    ...(values["public-url"] ? { publicUrl: values["public-url"] } : {}),
    ...(values["heartbeat-ms"] ? { heartbeatIntervalMs: Number(values["heartbeat-ms"]) } : {}),
    ...(clusterOptions ? { cluster: clusterOptions } : {}),
    ...metricsArgs(values["metrics-token"] ?? process.env.SRP_METRICS_TOKEN),
    ...cardArgs(values),
  });
  const log = (event: string, detail: object) =>
    process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), event, ...detail })}\n`);
  hub.on("session.open", (s) => log("session.open", s));
  hub.on("session.close", (s) => log("session.close", s));
  hub.on("handshake.rejected", (d) => log("handshake.rejected", d));
  hub.on("breaker", (c) => log(c.lastForModel ? "breaker.last_instance_parked" : `breaker.${c.status}`, c));
  hub.on("receipt.rejected", (d) => log("receipt.rejected", d));
  hub.on("receipt.gap", (d) => log("receipt.gap", d));
  hub.on("storage.error", (d) => log("storage.error", d));
  // One line per consumer request, when its response ended (README, "Logs").
  if (requestLog === "on") hub.on("request", (e) => log("request", requestLogFields(e)));
  hub.on("payment", (e) =>
    log(`payment.${e.kind}`, { id: e.payment.id, payer: e.payment.payer, amount: e.payment.amount.toString(), detail: e.detail }),
  );
  const { url } = await hub.listen({ port, host: values.host });
  await hub.ready();
  log("hub.listening", {
    url,
    hubId: hub.id,
    identity: created ? "created" : "loaded",
    database: store.dialect === "sqlite" ? dbSpec(dataDir, values.db) : "postgres",
    // The holder id of this process's reservations (`reservations.holder`): what an operator looks for after a crash.
    ledgerProcess: store.processId,
  });
  process.stdout.write(`srp-hub listening on ${url} (hub id ${hub.id})\n`);
  const stop = () => {
    log("hub.stopping", {});
    void hub
      .close()
      .then(() => store.close())
      .finally(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

/** The fields of a `request` log line: the hub's `request` event, its cost as a decimal string. */
function requestLogFields(e: RequestEvent): object {
  return e.costUnits === undefined ? e : { ...e, costUnits: e.costUnits.toString() };
}

/** The `cards` option of `serve`'s Stripe flags (or STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET); none without a secret key. */
function cardArgs(v: {
  "stripe-secret-key"?: string;
  "stripe-webhook-secret"?: string;
  "card-success-url"?: string;
  "card-cancel-url"?: string;
  "public-url"?: string;
}): { cards?: HubCardOptions } {
  const secretKey = v["stripe-secret-key"] ?? process.env.STRIPE_SECRET_KEY;
  if (!secretKey) return {};
  const webhookSecret = v["stripe-webhook-secret"] ?? process.env.STRIPE_WEBHOOK_SECRET;
  if (!webhookSecret)
    throw new UsageError("card deposits need --stripe-webhook-secret (or STRIPE_WEBHOOK_SECRET): the webhook's signing secret");
  const base = v["public-url"]?.replace(/\/$/, "");
  const successUrl = v["card-success-url"] ?? (base ? `${base}/dashboard` : undefined);
  const cancelUrl = v["card-cancel-url"] ?? successUrl;
  if (!successUrl || !cancelUrl)
    throw new UsageError("card deposits need --card-success-url (or --public-url): where buyers land after paying");
  return { cards: { secretKey, webhookSecret, successUrl, cancelUrl } };
}

/** The metrics option of `--metrics-token` (or SRP_METRICS_TOKEN): `GET /metrics` behind that bearer token. */
function metricsArgs(token: string | undefined): Pick<HubOptions, "metrics"> {
  if (!token) return {};
  if (token.length < 16) throw new UsageError("--metrics-token must be at least 16 characters");
  return { metrics: { token } };
}

/** The cluster options of `serve`'s flags; undefined without `--redis` (or SRP_REDIS_URL). */
function clusterArgs(
  v: {
    redis?: string | undefined;
    "link-host"?: string | undefined;
    "link-port"?: string | undefined;
    "link-advertise"?: string | undefined;
  },
  db: string,
): ClusterOptions | undefined {
  const redisUrl = v.redis ?? process.env.SRP_REDIS_URL;
  if (!redisUrl) return undefined;
  if (!/^rediss?:\/\//.test(redisUrl)) throw new UsageError(`--redis takes redis://HOST:PORT, got ${JSON.stringify(redisUrl)}`);
  if (!/^postgres(ql)?:\/\//.test(db)) throw new UsageError("--redis needs a PostgreSQL --db: the hub's processes share its ledger");
  const linkHost = v["link-host"] ?? "127.0.0.1";
  // Every interface names no address the other processes could reach: the operator says which one they use.
  if (isUnspecifiedHost(linkHost) && !v["link-advertise"])
    throw new UsageError(
      `--link-host ${linkHost} listens on every interface: add --link-advertise HOST, the address the other hub processes reach this one at`,
    );
  const linkPort = v["link-port"] === undefined ? 0 : Number(v["link-port"]);
  if (!Number.isInteger(linkPort) || linkPort < 0 || linkPort > 65535)
    throw new UsageError(`--link-port must be 0..65535, got ${v["link-port"]}`);
  return {
    redisUrl,
    link: {
      host: linkHost,
      port: linkPort,
      ...(v["link-advertise"] ? { advertiseHost: v["link-advertise"] } : {}),
    },
  };
}

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

async function accounts(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: { id: { type: "string" }, name: { type: "string" }, "data-dir": DATA_DIR, db: DB },
    strict: true,
  });
  const store = await openStore(values["data-dir"], values.db);
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
    await store.close();
  }
}

/** The flags of `keys create` and `keys update`: a key's label and spending controls. */
const KEY_FLAGS = {
  label: { type: "string" },
  tag: { type: "string", multiple: true },
  expires: { type: "string" },
  model: { type: "string", multiple: true },
  "budget-total": { type: "string" },
  "budget-day": { type: "string" },
  "budget-month": { type: "string" },
  rpm: { type: "string" },
  tpm: { type: "string" },
  concurrency: { type: "string" },
  clear: { type: "string", multiple: true },
  by: { type: "string", default: "key" },
} as const;

/** What `--clear FIELD` clears, as a member of the key body. */
const CLEARED: Record<string, [string, unknown]> = {
  budget: ["budget", { total: null, day: null, month: null }],
  limits: ["limits", { rpm: null, tpm: null, concurrency: null }],
  models: ["models", null],
  expires: ["expires_at", null],
  tags: ["tags", []],
  label: ["label", null],
};

/** The flags of `keys create|update` as the JSON body `POST /v1/account/keys` takes (pure); `--clear` goes first. */
function keyFlagsBody(v: {
  label?: string | undefined;
  tag?: string[] | undefined;
  expires?: string | undefined;
  model?: string[] | undefined;
  "budget-total"?: string | undefined;
  "budget-day"?: string | undefined;
  "budget-month"?: string | undefined;
  rpm?: string | undefined;
  tpm?: string | undefined;
  concurrency?: string | undefined;
  clear?: string[] | undefined;
}): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const field of v.clear ?? []) {
    const cleared = CLEARED[field];
    if (!cleared) throw new UsageError(`--clear takes ${Object.keys(CLEARED).join("|")}, got ${JSON.stringify(field)}`);
    body[cleared[0]] = cleared[1];
  }
  if (v.label !== undefined) body.label = v.label;
  if (v.tag !== undefined) body.tags = v.tag;
  if (v.model !== undefined) body.models = v.model;
  if (v.expires !== undefined) body.expires_at = /^[0-9]+$/.test(v.expires) ? Number(v.expires) : v.expires;
  const budget: Record<string, unknown> = {};
  for (const period of ["total", "day", "month"] as const) {
    const usd = v[`budget-${period}`];
    if (usd !== undefined) budget[period] = { usd };
  }
  if (Object.keys(budget).length > 0) body.budget = { ...(body.budget as object | undefined), ...budget };
  const limits: Record<string, unknown> = {};
  for (const name of ["rpm", "tpm", "concurrency"] as const) {
    const n = v[name];
    if (n !== undefined) limits[name] = /^[0-9]+$/.test(n) ? Number(n) : n;
  }
  if (Object.keys(limits).length > 0) body.limits = { ...(body.limits as object | undefined), ...limits };
  return body;
}

async function keys(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { ...KEY_FLAGS, "data-dir": DATA_DIR, db: DB },
    allowPositionals: true,
    strict: true,
  });
  const target = positionals[0];
  if (!target) throw new UsageError(`keys ${sub ?? ""} needs an id`);
  const store = await openStore(values["data-dir"], values.db);
  try {
    if (sub === "create") {
      const { label, ...patch } = parseKeyBody(keyFlagsBody(values));
      const { key, record } = await store.createApiKey(target, label ?? undefined, applyPolicyPatch(NO_POLICY, patch));
      print({ apiKey: key, ...keyRecordJson(record), note: "the API key is shown only once" });
    } else if (sub === "update") {
      const change = parseKeyBody(keyFlagsBody(values));
      const record = await store.updateApiKey(target, change);
      if (!record) throw new UsageError(`no active key ${target}`);
      print(keyRecordJson(record, (await store.keySpend([target], Date.now())).get(target)));
    } else if (sub === "list") {
      const records = await store.listApiKeys(target);
      const spend = await store.keySpend(
        records.map((r) => r.keyId),
        Date.now(),
      );
      print(records.map((r) => keyRecordJson(r, spend.get(r.keyId))));
    } else if (sub === "revoke") {
      if (!(await store.revokeApiKey(target))) throw new Error(`no active key ${target}`);
      print({ revoked: target });
    } else if (sub === "spend") {
      if (values.by !== "key" && values.by !== "tag") throw new UsageError("keys spend takes --by key|tag");
      const records = await store.listApiKeys(target);
      const spend = await store.keySpend(
        records.map((r) => r.keyId),
        Date.now(),
      );
      print({ account: target, by: values.by, data: spendRows(records, spend, values.by) });
    } else throw new UsageError(`unknown keys command ${JSON.stringify(sub)}`);
  } catch (error) {
    if (error instanceof TypeError || error instanceof PolicyError) throw new UsageError(error.message);
    throw error;
  } finally {
    await store.close();
  }
}

const money = (units: bigint) => ({ units: units.toString(), usd: formatUsdc(units) });

async function ledger(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      ref: { type: "string" },
      limit: { type: "string", default: "50" },
      by: { type: "string", default: "earned" },
      "data-dir": DATA_DIR,
      db: DB,
    },
    allowPositionals: true,
    strict: true,
  });
  const store = await openStore(values["data-dir"], values.db);
  try {
    if (sub === "verify") {
      const problems = await store.verify();
      if (problems.length === 0) {
        print({
          ok: true,
          checked:
            "every transaction balances; balances equal their entries; no forbidden negative; held money equals open reservations; each settled job has one receipt and one charge",
        });
        return;
      }
      print({ ok: false, problems });
      process.exitCode = 1;
      return;
    }
    if (sub === "top") {
      const limit = Number(values.limit);
      if ((values.by !== "earned" && values.by !== "spent") || !Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new UsageError("ledger top takes --by earned|spent and --limit 1..1000");
      print((await store.top(values.by, limit)).map((t) => ({ account: t.accountId, [values.by!]: money(t.amount), jobs: t.jobs })));
      return;
    }
    const account = positionals[0];
    if (!account) throw new UsageError(`ledger ${sub ?? ""} needs an account id`);
    if (sub === "show") {
      const s = await store.summary(account);
      print({
        account,
        balance: money(s.balance),
        held: money(s.held),
        prepaid: money(s.prepaid),
        discountBps: s.discountBps,
        spent: money(s.spent),
        earned: money(s.earned),
        deposited: money(s.deposited),
        refunded: money(s.refunded),
        requests: s.requests,
      });
    } else if (sub === "history") {
      const limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new UsageError("--limit is 1..500");
      print(
        (await store.history(account, limit)).map((h) => ({
          ...h,
          amount: h.amount.toString(),
          held: h.held.toString(),
          createdAt: new Date(h.createdAt).toISOString(),
        })),
      );
    } else if (sub === "deposit") {
      if (!values.ref) throw new UsageError("ledger deposit needs --ref REFERENCE (makes it idempotent)");
      const amount = unitsArg(positionals[1], "the deposit");
      if (amount === 0n) throw new UsageError("the deposit must be positive");
      const posted = await store.deposit(account, amount, values.ref, { by: "srp-hub ledger deposit" });
      print({
        account,
        deposited: money(amount),
        reference: values.ref,
        posted,
        note: posted ? undefined : "this reference was deposited before; nothing moved",
      });
    } else if (sub === "refund") {
      if (!values.ref) throw new UsageError("ledger refund needs --ref REFERENCE (makes it idempotent)");
      print({ account, refunded: money(await store.refund(account, values.ref)), reference: values.ref });
    } else throw new UsageError(`unknown ledger command ${JSON.stringify(sub)}`);
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(error.message);
    throw error;
  } finally {
    await store.close();
  }
}

const hexKey = (v: string | undefined, what: string): `0x${string}` => {
  if (v === undefined || !/^0x[0-9a-fA-F]{64}$/.test(v)) throw new UsageError(`${what} is a 0x-prefixed 32-byte hex private key`);
  return v as `0x${string}`;
};
const addressArg = (v: string | undefined, what: string): `0x${string}` => {
  if (v === undefined || !/^0x[0-9a-fA-F]{40}$/.test(v)) throw new UsageError(`${what} is a 0x-prefixed 20-byte address`);
  return v as `0x${string}`;
};

/** The `serve` flags about the chain. */
interface ChainArgs {
  "chain-rpc": string;
  "chain-id"?: string;
  usdc?: string;
  "usdc-name": string;
  "usdc-version": string;
  treasury?: string;
  "settler-key"?: string;
  "treasury-key"?: string;
  facilitator?: string;
  settle: string;
  settlement?: string;
  "voucher-key"?: string;
}

/** x402 (and, with --settlement, on-chain payouts) for `serve`, from its flags; `rails` adds networks (Solana). */
async function chainOptions(v: ChainArgs, store: SqlStore, rails: PaymentRail[]): Promise<Pick<HubOptions, "x402" | "onchainPayouts">> {
  const chainId = Number(v["chain-id"]);
  if (!Number.isSafeInteger(chainId) || chainId <= 0) throw new UsageError("--chain-id is a positive integer (with --chain-rpc)");
  const usdc = addressArg(v.usdc, "--usdc");
  if (v.settle !== "before" && v.settle !== "after") throw new UsageError("--settle is before or after");
  const { createPublicClient, createWalletClient, defineChain, http } = await import("viem");
  const { nonceManager, privateKeyToAccount } = await import("viem/accounts");
  // One account (and one nonce sequence) per key: settlements, refunds and payouts sent from the same key never clash.
  const accounts = new Map<string, ReturnType<typeof privateKeyToAccount>>();
  const accountOf = (key: `0x${string}`) => {
    let a = accounts.get(key.toLowerCase());
    if (!a) accounts.set(key.toLowerCase(), (a = privateKeyToAccount(key, { nonceManager })));
    return a;
  };
  const chain = defineChain({
    id: chainId,
    name: `eip155:${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [v["chain-rpc"]] } },
  });
  const transport = http(v["chain-rpc"]);
  const publicClient = createPublicClient({ chain, transport });
  const treasuryKey = v["treasury-key"] ?? process.env.SRP_TREASURY_KEY;
  const treasuryWallet = treasuryKey
    ? createWalletClient({ account: accountOf(hexKey(treasuryKey, "--treasury-key (or SRP_TREASURY_KEY)")), chain, transport })
    : undefined;
  const payTo = v.treasury ? addressArg(v.treasury, "--treasury") : treasuryWallet?.account.address;
  if (!payTo) throw new UsageError("x402 needs --treasury ADDRESS (or --treasury-key)");
  let settler;
  if (v.facilitator) settler = facilitatorSettler({ url: v.facilitator, publicClient });
  else {
    const settlerKey = v["settler-key"] ?? process.env.SRP_SETTLER_KEY ?? treasuryKey;
    if (!settlerKey)
      throw new UsageError("x402 needs --facilitator URL or --settler-key HEX (or SRP_SETTLER_KEY): the key that submits settlements");
    settler = directSettler({
      publicClient,
      walletClient: createWalletClient({ account: accountOf(hexKey(settlerKey, "--settler-key")), chain, transport }),
    });
  }
  const x402: HubX402Options = {
    chainId,
    asset: { address: usdc, name: v["usdc-name"], version: v["usdc-version"] },
    payTo,
    settler,
    settle: v.settle,
    ...(treasuryWallet ? { treasury: treasuryWallet } : {}),
    ...(rails.length > 0 ? { rails } : {}),
  };
  if (!v.settlement) return { x402 };
  if (!treasuryWallet) throw new UsageError("on-chain payouts (--settlement) need --treasury-key");
  const voucherKey = v["voucher-key"] ?? process.env.SRP_VOUCHER_KEY ?? treasuryKey!;
  const onchainPayouts = new OnchainPayouts({
    publicClient,
    treasury: treasuryWallet,
    signer: accountOf(hexKey(voucherKey, "--voucher-key (or SRP_VOUCHER_KEY)")),
    settlement: addressArg(v.settlement, "--settlement"),
    token: usdc,
    chainId,
    book: store.payouts,
    payee: (id) => store.wallets.payoutWallet(id),
  });
  return { x402, onchainPayouts };
}

/** `srp-hub payouts run`: pays every owed provider through the settlement contract in one batch. */
async function payoutsCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== "run") throw new UsageError(`unknown payouts command ${JSON.stringify(sub)}`);
  const { values } = parseArgs({
    args: rest,
    options: {
      rpc: { type: "string" },
      "chain-id": { type: "string" },
      settlement: { type: "string" },
      token: { type: "string" },
      key: { type: "string" },
      "signer-key": { type: "string" },
      minimum: { type: "string", default: "1" },
      "data-dir": DATA_DIR,
      db: DB,
    },
    strict: true,
  });
  if (!values.rpc) throw new UsageError("payouts run needs --rpc URL");
  const chainId = Number(values["chain-id"]);
  if (!Number.isSafeInteger(chainId) || chainId <= 0) throw new UsageError("--chain-id is a positive integer");
  const settlement = addressArg(values.settlement, "--settlement");
  const token = addressArg(values.token, "--token");
  // The treasury key moves the money and pays gas; the signer key signs vouchers (the same key unless given).
  const treasuryKey = hexKey(values.key ?? process.env.SRP_TREASURY_KEY, "--key (or SRP_TREASURY_KEY)");
  const signerKey = values["signer-key"] ?? process.env.SRP_VOUCHER_KEY;
  const minimum = unitsArg(values.minimum, "--minimum");
  const { createPublicClient, createWalletClient, defineChain, http } = await import("viem");
  const { privateKeyToAccount } = await import("viem/accounts");
  const chain = defineChain({
    id: chainId,
    name: `eip155:${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [values.rpc] } },
  });
  const transport = http(values.rpc);
  const treasury = createWalletClient({ account: privateKeyToAccount(treasuryKey), chain, transport });
  const publicClient = createPublicClient({ chain, transport });
  const signer = signerKey ? privateKeyToAccount(hexKey(signerKey, "--signer-key (or SRP_VOUCHER_KEY)")) : privateKeyToAccount(treasuryKey);
  const store = await openStore(values["data-dir"], values.db);
  try {
    const payouts = new OnchainPayouts({
      publicClient,
      treasury,
      signer,
      settlement,
      token,
      chainId,
      book: store.payouts,
      payee: (id) => store.wallets.payoutWallet(id),
      minimum,
    });
    const run = await payouts.run();
    print({
      vouchers: run.issued.map((r) => ({
        account: r.accountId,
        payee: r.payee,
        amount: money(r.amount),
        fee: money(r.fee),
        total: r.total.toString(),
      })),
      fundingTx: run.fundingTx,
      batchTx: run.batchTx,
      paid: run.paid.map((p) => ({ payee: p.payee, provider: money(p.provider), protocol: money(p.protocol), total: p.total.toString() })),
    });
  } finally {
    await store.close();
  }
}

runCli("srp-hub", USAGE, { serve, accounts, keys, ledger, payouts: payoutsCommand });
