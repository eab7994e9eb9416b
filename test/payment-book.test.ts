/**
 * The x402 payment book and the payout book on both engines (a SQLite file and a real
 * PostgreSQL server): one authorization locks once however many copies race for it, a
 * credit is posted once, a failed settlement after serving takes back what is left of the
 * prepaid balance and records the rest as the wallet's debt, payouts take only withdrawable
 * earnings, and the books verify after each.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type SqlStore } from "@srp/hub";
import type { NewPayment } from "@srp/hub/payments";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

let pg: TestPostgres | undefined;
const dir = mkdtempSync(join(tmpdir(), "srp-paybook-"));
let n = 0;
beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const engines: Array<[string, () => Promise<SqlStore>]> = [
  ["SQLite", () => openStore(`sqlite:${join(dir, `book-${++n}.db`)}`, { signupCredits: 0n })],
  ["PostgreSQL", async () => openStore(await createDatabase(pg!.url, `paybook_${++n}`), { signupCredits: 0n })],
];

const payment = (accountId: string, nonce: string, amount: bigint): NewPayment => ({
  network: "eip155:1337",
  asset: "0x00000000000000000000000000000000000000AA",
  payer: "0x00000000000000000000000000000000000000BB",
  nonce,
  amount,
  validBefore: Math.floor(Date.now() / 1000) + 600,
  accountId,
  mode: "after",
  resource: "http://hub/v1/chat/completions",
  payload: "{}",
});

describe.each(engines)("payment book on %s", (_name, open) => {
  it("locks an authorization once among concurrent copies, and finds the wallet's one account", async () => {
    const store = await open();
    try {
      const wallets = await Promise.all(
        Array.from({ length: 8 }, () => store.payments.walletAccount("0x00000000000000000000000000000000000000BB")),
      );
      expect(new Set(wallets).size).toBe(1);
      const nonce = `0x${"1".repeat(64)}`;
      const results = await Promise.all(Array.from({ length: 10 }, () => store.payments.lock(payment(wallets[0]!, nonce, 500n))));
      expect(results.filter((r) => r.locked)).toHaveLength(1);
      expect(new Set(results.map((r) => r.record.id)).size).toBe(1);
      // The service a payment buys is claimed once.
      const id = results[0]!.record.id;
      const claims = await Promise.all(Array.from({ length: 5 }, () => store.payments.claimService(id)));
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await store.verify()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("credits once; a failed settlement after serving takes back the prepaid rest and leaves the spent part as debt", async () => {
    const store = await open();
    try {
      const account = await store.payments.walletAccount("0x00000000000000000000000000000000000000BB");
      const { record } = await store.payments.lock(payment(account, `0x${"2".repeat(64)}`, 1_000n));
      await store.payments.credit(record.id);
      await store.payments.credit(record.id);
      expect(await store.summary(account)).toMatchObject({ balance: 1_000n, prepaid: 1_000n });
      // Spend 300 of it (a reservation settled by hand is not needed: a refund-free spend is a reserve + release of less).
      const r = await store.reserve(account, 300n);
      expect(r.ok).toBe(true);
      // While the credit is unsettled, no refund.
      await expect(store.refund(account, "early")).rejects.toThrow(/not settled/);
      const debt = await store.payments.failed(record.id, "reverted");
      // 700 spendable and funded came back; the 300 held is the debt.
      expect(debt).toBe(300n);
      expect(await store.payments.debtOf(account)).toBe(300n);
      expect(await store.payments.failed(record.id, "again")).toBe(0n);
      expect(await store.verify()).toEqual([]);
      // The held 300 comes back (the request was not billed after all): a refund repays the debt first and pays out nothing.
      if (r.ok) await store.release(r.reservationId, "not billed");
      expect(await store.summary(account)).toMatchObject({ balance: 300n, prepaid: 300n });
      expect(await store.refund(account, "after-release")).toBe(0n);
      expect(await store.payments.debtOf(account)).toBe(0n);
      expect(await store.summary(account)).toMatchObject({ balance: 0n, prepaid: 0n });
      expect(await store.verify()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("pays out earnings only: prepaid money is never a payout", async () => {
    const store = await open();
    try {
      const acct = await store.createAccount({ name: "provider" });
      // Prepaid money is not earnings: a deposit alone gives nothing to pay out.
      await store.deposit(acct.id, 5_000n, "dep-1");
      expect(await store.payouts.payable(acct.id)).toBe(0n);
      const issued = await store.payouts.issue({
        accountId: acct.id,
        payee: "0x00000000000000000000000000000000000000CC",
        settlement: "0x00000000000000000000000000000000000000DD",
        chainId: 1337,
        sign: async () => "0xsig",
      });
      expect(issued).toBeUndefined();
      expect(await store.verify()).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
