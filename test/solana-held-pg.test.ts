/**
 * The Solana money a hub holds (SRP-PAY-034), on a real PostgreSQL server: settled Solana
 * payments count, another network's do not, a Solana refund (its posting names the network)
 * takes away and its credit-back gives back, an EVM refund is not counted; a memo PostgreSQL
 * cannot read as JSON (a NUL in a failure reason) breaks nothing.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { SqlStore } from "@srp/hub";
import { openPostgres } from "@srp/hub/storage";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";

const NET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
let pg: TestPostgres;
let store: SqlStore | undefined;
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await store?.close();
  await pg?.stop();
});

it("counts Solana money in and out by network, whatever else the ledger's memos hold", async () => {
  const db = openPostgres(await createDatabase(pg.url, "solana_held"));
  store = new SqlStore(db, { signupCredits: 0n });
  await store.payouts.solanaHeld(NET); // the migrations have run
  const settled = (amount: bigint, network: string) =>
    db.run(
      `INSERT INTO x402_payments (id, network, asset, payer, nonce, amount, valid_before, account_id, mode, state, resource, payload, created_at, updated_at)
       VALUES (?, ?, 'mint', 'payer', ?, ?, 0, 'acct_x', 'deposit', 'settled', 'r', '{}', 0, 0)`,
      [`pay_${network}_${amount}`, network, `nonce_${network}_${amount}`, amount],
    );
  await settled(1000n, NET);
  await settled(77n, "eip155:84532");
  expect(await store.payouts.solanaHeld(NET)).toBe(1000n);
  const c = await store.createAccount({ name: "c" });
  await store.deposit(c.id, 300n, "dep1", { x: 1 });
  expect(await store.refund(c.id, "n1", { network: NET, to: "addr" })).toBe(300n);
  expect(await store.payouts.solanaHeld(NET)).toBe(700n);
  await store.deposit(c.id, 300n, "refund-failed:n1", { reason: "the transfer failed", to: "addr", network: NET });
  expect(await store.payouts.solanaHeld(NET)).toBe(1000n);
  // An EVM refund, and a credit-back whose reason holds a NUL (JSON \u0000, which jsonb refuses): neither counts, nothing breaks.
  await store.refund(c.id, "n2");
  await store.deposit(c.id, 5n, "refund-failed:evm1", { reason: "revert: \u0000bad", to: "0xabc" });
  expect(await store.payouts.solanaHeld(NET)).toBe(1000n);
  expect(await store.verify()).toEqual([]);
});
