/**
 * An account's owner manages its API keys and their spending controls over real HTTP
 * (`/v1/account/keys`, `/v1/account/spend`), the operator by the admin API and the
 * `srp-hub keys` CLI: a hub on a SQLite file, one provider node on the model simulator,
 * and the official `openai` SDK calling with the keys the API created.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { generateIdentity } from "@srp/core";
import {
  createHub,
  LastKeyError,
  MemoryAccountStore,
  openStore,
  SqliteStore,
  type AccountAdmin,
  type AccountStore,
  type Hub,
} from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

const MODEL = "sim-llama-3-8b";
const PRICE = { input: "1000000", output: "3000000" };
const ADMIN_TOKEN = "admin-token-for-keys-tests-00001";
const CLI = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
const ask = [{ role: "user" as const, content: "Tell me about spare capacity." }];

interface Money {
  units: string;
  usd: string;
}
interface Key {
  object: string;
  id: string;
  prefix: string;
  label: string | null;
  tags: string[];
  created_at: number;
  revoked_at: number | null;
  expires_at: number | null;
  models: string[] | null;
  budget: { total: Money | null; day: Money | null; month: Money | null };
  limits: { rpm: number | null; tpm: number | null; concurrency: number | null };
  spent: { total: Money; day: Money; month: Money };
}
interface SpendRow {
  key?: string;
  tag?: string;
  label?: string | null;
  spent: { total: Money; day: Money; month: Money };
  requests: number;
}
const ZERO = { units: "0", usd: "0.00" };

let dir = "";
let dbFile = "";
let store: SqliteStore;
let hub: Hub;
let url = "";
let sim: Simulator;
let provider: Provider;
let accountId = "";
let ownerKey = "";
let pg: TestPostgres | undefined;
let pgCount = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "srp-keys-"));
  dbFile = join(dir, "hub.sqlite");
  store = new SqliteStore(dbFile, { signupCredits: 5_000_000n });
  hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, adminToken: ADMIN_TOKEN, drainTimeoutMs: 2000 });
  ({ url } = await hub.listen({ port: 0 }));
  sim = await startSimulator();
  const providerAccount = await store.createAccount({ name: "provider" });
  provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: (await store.createApiKey(providerAccount.id)).key,
    reconnect: false,
    instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 8 }],
  });
  await provider.ready();
  accountId = (await store.createAccount({ name: "owner" })).id;
  ownerKey = (await store.createApiKey(accountId, "first")).key;
});

afterAll(async () => {
  await provider?.close();
  await hub?.close();
  await sim?.close();
  if (store) {
    expect(await store.verify()).toEqual([]);
    await store.close();
  }
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A request to the hub with a key (or none) and a JSON body. */
function call(method: string, path: string, key: string | undefined, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  if (key !== undefined) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  return fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
}

async function json<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function errorCode(response: Response, status: number): Promise<{ code: string; message: string }> {
  return (await json<{ error: { code: string; message: string } }>(response, status)).error;
}

const sdk = (apiKey: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });

/** Runs the built `srp-hub` CLI on the test's database; its JSON output, or throws with its stderr. */
function cli(...args: string[]): unknown {
  const r = spawnSync(process.execPath, [CLI, ...args, "--data-dir", dir, "--db", `sqlite:${dbFile}`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`srp-hub ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe("an account's keys over HTTP", () => {
  let bot: Key & { api_key: string };
  let other: Key & { api_key: string };

  it("creates a key with a budget, limits, tags and models; the secret is shown once", async () => {
    const created = await call("POST", "/v1/account/keys", ownerKey, {
      label: "ci bot",
      tags: ["team-a", "ci"],
      models: [MODEL],
      budget: { total: { usd: "20" }, day: { usd: "1" }, month: { units: "10000000" } },
      limits: { rpm: 60, tpm: 100000, concurrency: 4 },
    });
    expect(created.headers.get("cache-control")).toBe("no-store");
    bot = await json(created, 201);
    expect(bot).toMatchObject({
      object: "srp.api_key",
      label: "ci bot",
      tags: ["team-a", "ci"],
      revoked_at: null,
      expires_at: null,
      models: [MODEL],
      budget: {
        total: { units: "20000000", usd: "20.00" },
        day: { units: "1000000", usd: "1.00" },
        month: { units: "10000000", usd: "10.00" },
      },
      limits: { rpm: 60, tpm: 100000, concurrency: 4 },
      spent: { total: ZERO, day: ZERO, month: ZERO },
    });
    expect(bot.id).toMatch(/^key_/);
    expect(bot.api_key.startsWith(bot.prefix.replace("…", ""))).toBe(true);
    other = await json(await call("POST", "/v1/account/keys", ownerKey, { tags: ["team-a"] }), 201);
    expect(other).toMatchObject({ label: null, tags: ["team-a"], budget: { total: null, day: null, month: null } });
    expect(other.limits).toEqual({ rpm: null, tpm: null, concurrency: null });
    // The new key works at once, and manages the account's keys too.
    const listed = await json<{ object: string; data: Key[] }>(await call("GET", "/v1/account/keys", bot.api_key), 200);
    expect(listed.object).toBe("list");
    expect(listed.data.map((k) => k.id)).toEqual([expect.stringMatching(/^key_/), bot.id, other.id]);
    expect(listed.data[0]).toMatchObject({ label: "first", tags: [], budget: { total: null } });
    expect(JSON.stringify(listed)).not.toContain(bot.api_key); // never the secret again
  });

  it("changes only the members a PATCH names, and null clears them", async () => {
    const patched = await json<Key>(
      await call("PATCH", `/v1/account/keys/${bot.id}`, ownerKey, { label: "nightly", budget: { day: null }, limits: { rpm: 120 } }),
      200,
    );
    expect(patched).toMatchObject({
      id: bot.id,
      label: "nightly",
      tags: ["team-a", "ci"],
      models: [MODEL],
      budget: { total: { units: "20000000" }, day: null, month: { units: "10000000" } },
      limits: { rpm: 120, tpm: 100000, concurrency: 4 },
    });
    const cleared = await json<Key>(
      await call("PATCH", `/v1/account/keys/${bot.id}`, ownerKey, { budget: null, limits: null, models: null, expires_at: null }),
      200,
    );
    expect(cleared).toMatchObject({
      label: "nightly",
      tags: ["team-a", "ci"],
      models: null,
      expires_at: null,
      budget: { total: null, day: null, month: null },
      limits: { rpm: null, tpm: null, concurrency: null },
    });
    // Kept: a fresh list reads what the PATCH wrote.
    const listed = await json<{ data: Key[] }>(await call("GET", "/v1/account/keys", ownerKey), 200);
    expect(listed.data.find((k) => k.id === bot.id)).toEqual(cleared);
    // A budget back on for the spend test below.
    await json(await call("PATCH", `/v1/account/keys/${bot.id}`, ownerKey, { budget: { total: { usd: "20" } } }), 200);
  });

  it("refuses bad bodies with api.invalid_body and the reason", async () => {
    const cases: [unknown, RegExp][] = [
      [{ budget: { day: { usd: "-1" } } }, /budget\.day/],
      [{ limits: { rpm: 0 } }, /limits\.rpm/],
      [{ tags: ["no spaces"] }, /tags/],
      [{ expires_at: "soon" }, /expires_at/],
      [{ budgets: {} }, /unknown member `budgets`/],
      [{ budget: { week: { usd: "1" } } }, /unknown member `budget\.week`/],
      [{ label: "" }, /label/],
    ];
    for (const [body, message] of cases) {
      const e = await errorCode(await call("POST", "/v1/account/keys", ownerKey, body), 400);
      expect(e.code).toBe("api.invalid_body");
      expect(e.message).toMatch(message);
      const p = await errorCode(await call("PATCH", `/v1/account/keys/${bot.id}`, ownerKey, body), 400);
      expect(p.code).toBe("api.invalid_body");
    }
    expect((await errorCode(await call("POST", "/v1/account/keys", ownerKey, ["not an object"]), 400)).code).toBe("api.invalid_body");
    expect((await errorCode(await call("GET", "/v1/account/spend?by=model", ownerKey), 400)).code).toBe("api.invalid_body");
  });

  it("answers 401 without a key and 404 for a key of another account", async () => {
    expect((await errorCode(await call("GET", "/v1/account/keys", undefined), 401)).code).toBe("api.unauthorized");
    expect((await errorCode(await call("POST", "/v1/account/keys", "srp_not_a_key", {}), 401)).code).toBe("api.unauthorized");
    const stranger = await store.createAccount({ name: "stranger" });
    const strangerKey = (await store.createApiKey(stranger.id)).key;
    for (const method of ["PATCH", "DELETE"]) {
      const e = await errorCode(
        await call(method, `/v1/account/keys/${bot.id}`, strangerKey, method === "PATCH" ? { label: "mine" } : undefined),
        404,
      );
      expect(e.code).toBe("api.not_found");
    }
    expect((await errorCode(await call("PATCH", "/v1/account/keys/key_none", ownerKey, {}), 404)).code).toBe("api.not_found");
    // The stranger sees only its own key; the owner's key is unchanged.
    const theirs = await json<{ data: Key[] }>(await call("GET", "/v1/account/keys", strangerKey), 200);
    expect(theirs.data).toHaveLength(1);
    expect((await store.getApiKey(bot.id))?.label).toBe("nightly");
    expect((await call("PUT", `/v1/account/keys/${bot.id}`, ownerKey, {})).status).toBe(405);
  });

  it("reports what each key and each tag spent after real requests with the openai SDK", async () => {
    const cost = new Map<string, bigint>([
      [bot.id, 0n],
      [other.id, 0n],
    ]);
    for (const [key, id, n] of [
      [bot.api_key, bot.id, 2],
      [other.api_key, other.id, 1],
    ] as const) {
      for (let i = 0; i < n; i++) {
        const r = await sdk(key).chat.completions.create({ model: MODEL, messages: ask, max_tokens: 16 });
        const units = BigInt((r.usage as unknown as { cost_units: string }).cost_units);
        expect(units).toBeGreaterThan(0n);
        cost.set(id, cost.get(id)! + units);
      }
    }
    const byKey = await json<{ object: string; by: string; data: SpendRow[] }>(
      await call("GET", "/v1/account/spend?by=key", ownerKey),
      200,
    );
    expect(byKey).toMatchObject({ object: "list", by: "key" });
    const row = (id: string) => byKey.data.find((r) => r.key === id)!;
    const units = (n: bigint) => ({ units: n.toString(), usd: expect.any(String) });
    expect(row(bot.id)).toEqual({
      key: bot.id,
      label: "nightly",
      spent: { total: units(cost.get(bot.id)!), day: units(cost.get(bot.id)!), month: units(cost.get(bot.id)!) },
      requests: 2,
    });
    expect(row(other.id)).toMatchObject({ spent: { total: { units: cost.get(other.id)!.toString() } }, requests: 1 });
    expect(byKey.data.find((r) => r.label === "first")).toMatchObject({ spent: { total: ZERO }, requests: 0 });
    // The default grouping is by key.
    expect((await json<{ by: string }>(await call("GET", "/v1/account/spend", ownerKey), 200)).by).toBe("key");

    const byTag = await json<{ by: string; data: SpendRow[] }>(await call("GET", "/v1/account/spend?by=tag", ownerKey), 200);
    expect(byTag.by).toBe("tag");
    const both = cost.get(bot.id)! + cost.get(other.id)!;
    expect(byTag.data).toEqual([
      {
        tag: "ci",
        spent: { total: units(cost.get(bot.id)!), day: units(cost.get(bot.id)!), month: units(cost.get(bot.id)!) },
        requests: 2,
      },
      { tag: "team-a", spent: { total: units(both), day: units(both), month: units(both) }, requests: 3 },
    ]);
    // The key list shows the same spending.
    const listed = await json<{ data: Key[] }>(await call("GET", "/v1/account/keys", ownerKey), 200);
    expect(listed.data.find((k) => k.id === bot.id)!.spent.total.units).toBe(cost.get(bot.id)!.toString());
  });

  it("refuses an expired key's management with api.key_expired, and counts it as no live key", async () => {
    const expired = await json<Key & { api_key: string }>(
      await call("POST", "/v1/account/keys", ownerKey, { label: "old", expires_at: Date.now() - 1000 }),
      201,
    );
    expect((await errorCode(await call("GET", "/v1/account/keys", expired.api_key), 401)).code).toBe("api.key_expired");
    expect((await errorCode(await call("POST", "/v1/account/keys", expired.api_key, {}), 401)).code).toBe("api.key_expired");
    const stale = new Date(Date.now() + 3_600_000).toISOString();
    const later = await json<Key>(await call("PATCH", `/v1/account/keys/${expired.id}`, ownerKey, { expires_at: stale }), 200);
    expect(later.expires_at).toBe(Date.parse(stale));
    expect((await call("GET", "/v1/account/keys", expired.api_key)).status).toBe(200); // extended: works again
    await json(await call("PATCH", `/v1/account/keys/${expired.id}`, ownerKey, { expires_at: Date.now() - 1000 }), 200);
  });

  it("revokes keys, but never the account's last live one", async () => {
    const revoked = await json<Key>(await call("DELETE", `/v1/account/keys/${other.id}`, ownerKey), 200);
    expect(revoked).toMatchObject({ id: other.id, object: "srp.api_key" });
    expect(revoked.revoked_at).toEqual(expect.any(Number));
    expect((await errorCode(await call("GET", "/v1/account/keys", other.api_key), 401)).code).toBe("api.unauthorized");
    expect((await errorCode(await call("DELETE", `/v1/account/keys/${other.id}`, ownerKey), 404)).code).toBe("api.not_found");
    expect((await errorCode(await call("PATCH", `/v1/account/keys/${other.id}`, ownerKey, { label: "x" }), 404)).code).toBe(
      "api.not_found",
    );
    // The bot key is held to spending controls: it may not revoke keys until the owner lifts them.
    const first = (await json<{ data: Key[] }>(await call("GET", "/v1/account/keys", bot.api_key), 200)).data.find(
      (k) => k.label === "first",
    )!;
    expect((await errorCode(await call("DELETE", `/v1/account/keys/${first.id}`, bot.api_key), 403)).code).toBe("api.forbidden");
    await json(
      await call("PATCH", `/v1/account/keys/${bot.id}`, ownerKey, { budget: null, limits: null, models: null, expires_at: null }),
      200,
    );
    // The bot key revokes the owner's first key; then the bot key is the last live one (the other is expired).
    await json(await call("DELETE", `/v1/account/keys/${first.id}`, bot.api_key), 200);
    const last = await errorCode(await call("DELETE", `/v1/account/keys/${bot.id}`, bot.api_key), 403);
    expect(last.code).toBe("api.forbidden");
    expect(last.message).toMatch(/last live key/);
    expect((await call("GET", "/v1/account/keys", bot.api_key)).status).toBe(200);
    // A revoked key still shows, with what it spent.
    const listed = await json<{ data: Key[] }>(await call("GET", "/v1/account/keys", bot.api_key), 200);
    expect(listed.data.find((k) => k.id === other.id)).toMatchObject({ revoked_at: revoked.revoked_at });
    expect(listed.data.find((k) => k.id === other.id)!.spent.total.units).not.toBe("0");
  });

  it("lets the operator create a key with a policy through the admin API", async () => {
    const admin = (path: string, body?: unknown) =>
      fetch(`${url}/admin/v1/${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const created = await json<{ key: string; keyId: string; label: string; policy: Record<string, unknown> }>(
      await admin(`accounts/${accountId}/keys`, {
        label: "ops",
        tags: ["ops"],
        budget: { month: { usd: "3" } },
        limits: { concurrency: 2 },
      }),
      201,
    );
    expect(created).toMatchObject({
      label: "ops",
      policy: { tags: ["ops"], budget: { total: null, day: null, month: { units: "3000000", usd: "3.00" } }, limits: { concurrency: 2 } },
    });
    expect(created.key).toMatch(/^srp_/);
    const account = await json<{ keys: { keyId: string; policy: { tags: string[] } }[] }>(await admin(`accounts/${accountId}`), 200);
    expect(account.keys.find((k) => k.keyId === created.keyId)?.policy.tags).toEqual(["ops"]);
    expect((await errorCode(await admin(`accounts/${accountId}/keys`, { limits: { rpm: -1 } }), 400)).code).toBe("api.invalid_body");
    // The key the operator made shows in the owner's list with its policy.
    const listed = await json<{ data: Key[] }>(await call("GET", "/v1/account/keys", created.key), 200);
    expect(listed.data.find((k) => k.id === created.keyId)).toMatchObject({ tags: ["ops"], limits: { concurrency: 2, rpm: null } });
  });
});

describe("srp-hub keys", () => {
  it("creates, updates, lists and reports spend on the database a running hub uses", async () => {
    const made = cli(
      "keys",
      "create",
      accountId,
      "--label",
      "cli",
      "--tag",
      "team-b",
      "--tag",
      "cli",
      "--model",
      MODEL,
      "--expires",
      "2030-01-01T00:00:00Z",
      "--budget-total",
      "5",
      "--budget-day",
      "0.5",
      "--rpm",
      "30",
      "--concurrency",
      "2",
    ) as { apiKey: string; keyId: string; label: string; policy: Record<string, unknown> };
    expect(made.apiKey).toMatch(/^srp_/);
    expect(made).toMatchObject({
      label: "cli",
      policy: {
        tags: ["team-b", "cli"],
        models: [MODEL],
        expires_at: Date.UTC(2030, 0, 1),
        budget: { total: { units: "5000000" }, day: { units: "500000", usd: "0.50" }, month: null },
        limits: { rpm: 30, tpm: null, concurrency: 2 },
      },
    });
    // The running hub takes the key and shows its policy.
    await sdk(made.apiKey).chat.completions.create({ model: MODEL, messages: ask, max_tokens: 8 });
    const listed = await json<{ data: Key[] }>(await call("GET", "/v1/account/keys", made.apiKey), 200);
    expect(listed.data.find((k) => k.id === made.keyId)).toMatchObject({ tags: ["team-b", "cli"], limits: { rpm: 30 } });

    const updated = cli("keys", "update", made.keyId, "--tpm", "1000", "--clear", "budget", "--budget-month", "2", "--clear", "models") as {
      policy: Record<string, unknown>;
      spent: { total: Money };
      requests: number;
    };
    expect(updated.policy).toMatchObject({
      models: null,
      budget: { total: null, day: null, month: { units: "2000000" } },
      limits: { rpm: 30, tpm: 1000, concurrency: 2 },
    });
    expect(updated.requests).toBe(1);
    expect(cli("keys", "update", made.keyId, "--clear", "label", "--clear", "expires")).toMatchObject({
      label: null,
      policy: { expires_at: null },
    });

    const keys = cli("keys", "list", accountId) as { keyId: string; revokedAt: number | null; spent: { total: Money }; requests: number }[];
    const mine = keys.find((k) => k.keyId === made.keyId)!;
    expect(mine.requests).toBe(1);
    expect(BigInt(mine.spent.total.units)).toBeGreaterThan(0n);
    expect(keys.filter((k) => k.revokedAt !== null).length).toBeGreaterThanOrEqual(2);

    const byTag = cli("keys", "spend", accountId, "--by", "tag") as { by: string; data: SpendRow[] };
    expect(byTag.by).toBe("tag");
    expect(byTag.data.find((r) => r.tag === "team-b")).toEqual({
      tag: "team-b",
      spent: mine.spent,
      requests: 1,
    });
    const byKey = cli("keys", "spend", accountId) as { by: string; data: SpendRow[] };
    expect(byKey.data.find((r) => r.key === made.keyId)).toMatchObject({ label: null, spent: mine.spent, requests: 1 });

    for (const args of [
      ["keys", "create", accountId, "--budget-day", "lots"],
      ["keys", "update", made.keyId, "--clear", "everything"],
      ["keys", "create", accountId, "--rpm", "0"],
      ["keys", "spend", accountId, "--by", "model"],
      ["keys", "update", "key_none", "--rpm", "5"],
    ]) {
      const r = spawnSync(process.execPath, [CLI, ...args, "--data-dir", dir, "--db", `sqlite:${dbFile}`], { encoding: "utf8" });
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(64);
    }
    expect(cli("keys", "revoke", made.keyId)).toEqual({ revoked: made.keyId });
  }, 120_000);
});

describe.each([
  ["memory", async () => ({ store: new MemoryAccountStore(), close: async () => {} })],
  [
    "SQLite",
    async () => {
      const s = new SqliteStore(join(dir, `store-${Math.random().toString(36).slice(2)}.sqlite`));
      return { store: s, close: () => s.close() };
    },
  ],
  [
    "PostgreSQL",
    async () => {
      pg ??= await startPostgres();
      const s = await openStore(await createDatabase(pg.url, `keys_${++pgCount}`));
      return { store: s, close: () => s.close() };
    },
  ],
] as const)("key storage (%s)", (_name, open) => {
  let opened: { store: AccountStore & AccountAdmin; close(): Promise<void> };
  beforeAll(async () => {
    opened = await open();
  });
  afterAll(async () => {
    await opened?.close();
  });

  it("keeps a key's policy, returns it on lookup, and changes it in one step", async () => {
    const { store: s } = opened;
    const account = await s.createAccount({});
    const { key, record } = await s.createApiKey(account.id, "bot", {
      tags: ["a"],
      expiresAt: null,
      models: [MODEL],
      budget: { total: 5n, day: null, month: null },
      limits: { rpm: 3, tpm: null, concurrency: null },
    });
    expect(record.policy.budget.total).toBe(5n);
    expect(await s.findByApiKey(key)).toEqual({ id: account.id, key: { keyId: record.keyId, policy: record.policy } });
    expect((await s.createApiKey(account.id)).record.policy).toMatchObject({ tags: [], budget: { total: null } }); // no policy given
    // Concurrent changes of different members all land (each a read-modify-write in one transaction).
    await Promise.all([
      s.updateApiKey(record.keyId, { limits: { tpm: 100 } }),
      s.updateApiKey(record.keyId, { budget: { day: 2n } }),
      s.updateApiKey(record.keyId, { label: "renamed" }),
      s.updateApiKey(record.keyId, { tags: ["a", "b"] }),
    ]);
    const after = await s.getApiKey(record.keyId);
    expect(after).toMatchObject({ label: "renamed", policy: { tags: ["a", "b"], models: [MODEL] } });
    expect(after?.policy.budget).toEqual({ total: 5n, day: 2n, month: null });
    expect(after?.policy.limits).toEqual({ rpm: 3, tpm: 100, concurrency: null });
    expect((await s.findByApiKey(key))?.key?.policy).toEqual(after?.policy);
    expect(await s.updateApiKey("key_none", { label: "x" })).toBeUndefined();
    expect(await s.getApiKey("key_none")).toBeUndefined();
  });

  it("never revokes an account's last live key when asked to keep one, even two revocations at once", async () => {
    const { store: s } = opened;
    const account = await s.createAccount({});
    const a = (await s.createApiKey(account.id)).record.keyId;
    const b = (await s.createApiKey(account.id)).record.keyId;
    const expired = (await s.createApiKey(account.id, "old", { ...(await s.getApiKey(a))!.policy, expiresAt: Date.now() - 1 })).record;
    const results = await Promise.allSettled([s.revokeApiKey(a, { keepLastLive: true }), s.revokeApiKey(b, { keepLastLive: true })]);
    expect(results.filter((r) => r.status === "fulfilled").map((r) => (r as PromiseFulfilledResult<boolean>).value)).toEqual([true]);
    const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(LastKeyError);
    const live = (await s.listApiKeys(account.id)).filter((k) => k.revokedAt === null && k.keyId !== expired.keyId);
    expect(live).toHaveLength(1);
    // Without the option the operator may revoke it; an updated revoked key is not found.
    expect(await s.revokeApiKey(live[0]!.keyId)).toBe(true);
    expect(await s.updateApiKey(live[0]!.keyId, { label: "x" })).toBeUndefined();
  });
});
