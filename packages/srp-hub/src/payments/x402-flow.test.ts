/**
 * The x402 flow's bookkeeping around a request in flight, with the real payment book on
 * SQLite and a settler that records what it is asked (the chain itself is exercised in
 * test/x402.test.ts): reconciliation never settles a payment whose request this process is
 * still serving, and an abandoned row is picked up once it is old enough.
 */
import { describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { SrpError } from "@srp/core";
import { encodeX402Header } from "@srp/core/x402";
import { authorizationNonce, signTransferAuthorization } from "@srp/core/chain";
import { SqliteStore } from "../storage/sqlite.js";
import { X402Payments } from "./x402-flow.js";
import type { Settler } from "./authorization-settlers.js";
import type { X402Terms } from "./x402-policy.js";

const terms: X402Terms = {
  chainId: 1337,
  asset: { address: "0x00000000000000000000000000000000000000aa", name: "USD Coin", version: "2" },
  payTo: "0x00000000000000000000000000000000000000bb",
  maxTimeoutSeconds: 300,
  minValiditySeconds: 60,
};

/** Settles everything it is asked to, and remembers which authorizations it used (as a chain would). */
function recordingSettler(): Settler & { settles: number } {
  const used = new Set<string>();
  const s = {
    name: "recording",
    settles: 0,
    async preflight() {
      return { ok: true as const };
    },
    async settle(input: Parameters<Settler["settle"]>[0]) {
      s.settles++;
      used.add(input.authorization.nonce.toLowerCase());
      return { outcome: "settled" as const, transaction: `0x${"ab".repeat(32)}` };
    },
    async outcome(q: { nonce: string }) {
      return used.has(q.nonce.toLowerCase())
        ? { state: "paid" as const, transaction: `0x${"ab".repeat(32)}` }
        : { state: "unused" as const };
    },
  };
  return s;
}

async function paymentHeader(amount: bigint): Promise<string> {
  const payer = privateKeyToAccount(generatePrivateKey());
  const now = BigInt(Math.floor(Date.now() / 1000));
  const authorization = {
    from: payer.address,
    to: terms.payTo as `0x${string}`,
    value: amount,
    validAfter: 0n,
    validBefore: now + 300n,
    nonce: authorizationNonce(),
  };
  const signature = await signTransferAuthorization(
    payer,
    { name: "USD Coin", version: "2", chainId: 1337, address: terms.asset.address as `0x${string}` },
    authorization,
  );
  const offered = new X402Payments({ terms, mode: "after", settler: recordingSettler(), book: new SqliteStore(":memory:").payments }).offer(
    amount,
  );
  return encodeX402Header({
    x402Version: 2,
    accepted: offered,
    payload: {
      signature,
      authorization: { ...authorization, value: amount.toString(), validAfter: "0", validBefore: authorization.validBefore.toString() },
    },
  });
}

describe("X402Payments in flight", () => {
  it("does not settle a request still being served, settles it once when it ends, and reconciles an abandoned one", async () => {
    const store = new SqliteStore(":memory:", { signupCredits: 0n });
    const settler = recordingSettler();
    const payments = new X402Payments({ terms, mode: "after", settler, book: store.payments });
    const admitted = await payments.admit(await paymentHeader(1000n), 1000n, "http://hub/v1/chat/completions");
    if (admitted instanceof SrpError) throw admitted;
    expect(admitted.payment.state).toBe("locked");

    // Long after the grace periods, while this process still serves the request: nothing is settled.
    expect(await payments.reconcile(Date.now() + 3 * 60 * 60 * 1000)).toBe(0);
    expect(settler.settles).toBe(0);
    await admitted.finish(true);
    await admitted.finish(true);
    expect(settler.settles).toBe(1);
    expect((await store.payments.get(admitted.payment.id))?.state).toBe("settled");

    // A row left locked by another process (which died) is settled before its authorization expires (valid 300 s here).
    const other = new X402Payments({ terms, mode: "after", settler: recordingSettler(), book: store.payments });
    const abandoned = await other.admit(await paymentHeader(2000n), 2000n, "http://hub/v1/chat/completions");
    if (abandoned instanceof SrpError) throw abandoned;
    expect(await payments.reconcile(Date.now() + 60_000)).toBe(0);
    expect(await payments.reconcile(Date.now() + 250_000)).toBe(1);
    expect(settler.settles).toBe(2);
    expect((await store.payments.get(abandoned.payment.id))?.state).toBe("settled");
    // One that expired unsettled is given up: its credit comes back (nothing was spent from it, so no debt).
    const expired = await other.admit(await paymentHeader(3000n), 3000n, "http://hub/v1/chat/completions");
    if (expired instanceof SrpError) throw expired;
    expect(await payments.reconcile(Date.now() + 400_000)).toBe(1);
    expect((await store.payments.get(expired.payment.id))?.state).toBe("failed");
    expect(await store.payments.debtOf(expired.accountId)).toBe(0n);
    expect(settler.settles).toBe(2);
    expect(await store.verify()).toEqual([]);
    await store.close();
  });
});
