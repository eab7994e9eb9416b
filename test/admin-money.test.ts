/**
 * The operator's lists of payments and payouts (`GET /admin/v1/payments`, `GET /admin/v1/payouts`,
 * docs/dashboard.md) on a real hub over HTTP, on a SQLite file: only with the admin token,
 * newest first, paged with a `next` cursor, a bounded `limit`. The x402 payments are written
 * through the payment book (locked, settled, failed, as the x402 flow does); the payouts are
 * vouchers the payout book issued for a provider's earnings from real jobs (a node serving
 * the model simulator). The books' page reads run on PostgreSQL too.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { createHub, openStore, SqliteStore, type Hub, type SqlStore } from "@srp/hub";
import type { NewPayment } from "@srp/hub/payments";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

const MODEL = "sim-llama-3-8b";
const ADMIN = "admin-token-for-money-lists-1";
const SETTLEMENT = "0x00000000000000000000000000000000000000DD";

const dir = mkdtempSync(join(tmpdir(), "srp-admin-money-"));
let n = 0;

const payment = (accountId: string, nonce: number, amount: bigint): NewPayment => ({
  network: "eip155:1337",
  asset: "0x00000000000000000000000000000000000000AA",
  payer: "0x00000000000000000000000000000000000000BB",
  nonce: `0x${nonce.toString(16).padStart(64, "0")}`,
  amount,
  validBefore: Math.floor(Date.now() / 1000) + 600,
  accountId,
  mode: "before",
  resource: "http://hub/v1/chat/completions",
  payload: "{}",
});

/** Waits for a condition the hub reaches on its own (a settled job's earnings), without timing it. */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("condition never held");
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("GET /admin/v1/payments and /admin/v1/payouts", () => {
  let store: SqliteStore;
  let hub: Hub;
  let url = "";
  let sim: Simulator;
  let provider: Provider;
  let providerId = "";
  const paymentIds: string[] = [];
  const payoutIds: string[] = [];

  const get = (path: string, token: string | null = ADMIN) =>
    fetch(`${url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  beforeAll(async () => {
    store = new SqliteStore(join(dir, "hub.sqlite"));
    hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, adminToken: ADMIN, statementIntervalMs: 0 });
    ({ url } = await hub.listen({ port: 0, host: "127.0.0.1" }));
    sim = await startSimulator();
    const providerAccount = await store.createAccount({ name: "provider" });
    providerId = providerAccount.id;
    provider = createProvider({
      hub: url,
      identity: generateIdentity(),
      account: (await store.createApiKey(providerId)).key,
      reconnect: false,
      instances: [
        { backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: { input: "1000000", output: "3000000" } },
      ],
    });
    await provider.ready();
    const consumer = await store.createAccount({ name: "consumer" });
    const key = (await store.createApiKey(consumer.id)).key;

    // Three x402 payments as the flow leaves them: settled, failed before serving, settlement pending.
    const wallet = await store.payments.walletAccount("0x00000000000000000000000000000000000000BB");
    for (const [i, end] of (["settled", "failed", "locked"] as const).entries()) {
      const { record } = await store.payments.lock(payment(wallet, i + 1, 1_000n * BigInt(i + 1)));
      if (end === "settled") await store.payments.settled(record.id, `0x${"ab".repeat(32)}`);
      if (end === "failed") await store.payments.failed(record.id, "the facilitator refused it");
      paymentIds.unshift(record.id);
    }

    // Two jobs, each followed by a voucher for what the provider earned from it.
    for (let job = 0; job < 2; job++) {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: `Hello ${job}.` }], max_tokens: 8 }),
      });
      expect(res.status).toBe(200);
      await res.text();
      await until(async () => (await store.payouts.payable(providerId)) > 0n);
      const issued = await store.payouts.issue({
        accountId: providerId,
        payee: "0x00000000000000000000000000000000000000CC",
        settlement: SETTLEMENT,
        chainId: 1337,
        sign: async () => "0xsig",
      });
      payoutIds.unshift(issued!.id);
    }
  }, 60_000);

  afterAll(async () => {
    await provider?.close();
    await hub?.close();
    await sim?.close();
    await store?.close();
  });

  it("answers only the admin token", async () => {
    for (const path of ["/admin/v1/payments", "/admin/v1/payouts"]) {
      for (const token of [null, "wrong-token-wrong-token"]) {
        const res = await get(path, token);
        expect(res.status).toBe(401);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("api.unauthorized");
      }
    }
  });

  it("lists the x402 payments newest first, with amounts as money and their states", async () => {
    const res = await get("/admin/v1/payments");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; data: Record<string, unknown>[]; next: string | null };
    expect(body.object).toBe("list");
    expect(body.next).toBeNull();
    expect(body.data.map((p) => p.id)).toEqual(paymentIds);
    expect(body.data.map((p) => p.state)).toEqual(["locked", "failed", "settled"]);
    const settled = body.data[2]!;
    expect(settled).toMatchObject({
      payer: "0x00000000000000000000000000000000000000bb",
      amount: { units: "1000", usd: "0.001" },
      network: "eip155:1337",
      credited: true,
      tx_hash: `0x${"ab".repeat(32)}`,
    });
    expect(typeof settled.created_at).toBe("number");
    expect(typeof settled.updated_at).toBe("number");
    expect(body.data[1]!.error).toBe("the facilitator refused it");
    // The signed authorization itself is not shown.
    expect(settled).not.toHaveProperty("payload");
  });

  it("pages the payments with a `next` cursor until the last page", async () => {
    const seen: string[] = [];
    let path = "/admin/v1/payments?limit=2";
    const pages: number[] = [];
    for (;;) {
      const body = (await (await get(path)).json()) as { data: { id: string }[]; next: string | null };
      pages.push(body.data.length);
      seen.push(...body.data.map((p) => p.id));
      if (!body.next) break;
      path = `/admin/v1/payments?limit=2&before=${encodeURIComponent(body.next)}`;
    }
    expect(pages).toEqual([2, 1]);
    expect(seen).toEqual(paymentIds);
  });

  it("lists and pages the payout vouchers, newest first, with their running totals", async () => {
    const first = (await (await get("/admin/v1/payouts?limit=1")).json()) as { data: Record<string, unknown>[]; next: string | null };
    expect(first.data).toHaveLength(1);
    expect(first.next).not.toBeNull();
    const second = (await (await get(`/admin/v1/payouts?limit=1&before=${encodeURIComponent(first.next!)}`)).json()) as {
      data: Record<string, unknown>[];
      next: string | null;
    };
    expect(second.data).toHaveLength(1);
    const third = (await (await get(`/admin/v1/payouts?limit=1&before=${encodeURIComponent(second.next!)}`)).json()) as {
      data: unknown[];
      next: string | null;
    };
    expect(third).toMatchObject({ data: [], next: null });
    expect([first.data[0]!.id, second.data[0]!.id]).toEqual(payoutIds);
    const [newest, oldest] = [first.data[0]!, second.data[0]!] as Array<Record<string, { units: string } & unknown>>;
    expect(newest).toMatchObject({
      account_id: providerId,
      payee: "0x00000000000000000000000000000000000000cc",
      state: "issued",
      chain_id: 1337,
    });
    // A voucher's total is the payee's running total: the newest pays both amounts.
    expect(BigInt(newest!.total!.units)).toBe(BigInt(newest!.amount!.units) + BigInt(oldest!.amount!.units));
    expect(newest).not.toHaveProperty("signature");
    // The books still balance after the payouts and payments.
    expect(await store.verify()).toEqual([]);
  });

  it("refuses a limit outside 1..500 and a cursor it did not give", async () => {
    for (const query of ["limit=0", "limit=501", "limit=2.5", "limit=ten", "before=yesterday", "before=12:a%20b"]) {
      for (const path of ["/admin/v1/payments", "/admin/v1/payouts"]) {
        const res = await get(`${path}?${query}`);
        expect(res.status, `${path}?${query}`).toBe(400);
      }
    }
    expect((await get("/admin/v1/payments?limit=500")).status).toBe(200);
  });
});

describe("the books' page reads on PostgreSQL and SQLite", () => {
  let pg: TestPostgres | undefined;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
  });

  const engines: Array<[string, () => Promise<SqlStore>]> = [
    ["SQLite", () => openStore(`sqlite:${join(dir, `book-${++n}.db`)}`, { signupCredits: 0n })],
    ["PostgreSQL", async () => openStore(await createDatabase(pg!.url, `admin_money_${++n}`), { signupCredits: 0n })],
  ];

  it.each(engines)("%s: payments page newest first, strictly before the cursor, at most 500", async (_name, open) => {
    const store = await open();
    try {
      const acct = await store.payments.walletAccount("0x00000000000000000000000000000000000000BB");
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.unshift((await store.payments.lock(payment(acct, 100 + i, 10n))).record.id);
      const first = await store.payments.page(2);
      expect(first.map((p) => p.id)).toEqual(ids.slice(0, 2));
      const last = first.at(-1)!;
      const rest = await store.payments.page(10, { createdAt: last.createdAt, id: last.id });
      expect(rest.map((p) => p.id)).toEqual(ids.slice(2));
      expect(await store.payments.page(10_000)).toHaveLength(5);
      expect(await store.payouts.page(10)).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
