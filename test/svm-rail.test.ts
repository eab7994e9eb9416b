/**
 * The Solana payment rail against an in-process Solana VM (LiteSVM): the official
 * `@x402/svm` client pays the rail's offers (its RPC is a local stand-in over the VM), and
 * the rail checks, preflights, co-signs and settles them on the VM. A payment moves its
 * amount exactly once however often it is settled, every tampering gets its own code and
 * moves nothing, and the chain's word on a payment follows its blockhash's life.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SrpError } from "@srp/core";
import type { PaymentPayload, PaymentRequirements } from "@srp/core/x402";
import { liteSvmChain, svmRail, SOLANA_NETWORKS, BLOCKHASH_LIFETIME_SECONDS } from "@srp/hub";
import type { PaymentRail, RailPayment } from "@srp/hub/payments";
import {
  AccountRole,
  compileTransaction,
  decompileTransactionMessage,
  getBase64Decoder,
  getBase64Encoder,
  getCompiledTransactionMessageDecoder,
  getTransactionDecoder,
  getTransactionEncoder,
  partiallySignTransaction,
  appendTransactionMessageInstruction,
  type Address,
  type Transaction,
} from "@solana/kit";
import { x402Client } from "@x402/core/client";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { DEVNET, solanaWorld, type SolanaWorld } from "./support/solana.js";

const AMOUNT = 1_250_000n;
const SYSTEM_PROGRAM = "11111111111111111111111111111111" as Address;

let w: SolanaWorld;
let rail: PaymentRail;
let offer: PaymentRequirements;
const nowSeconds = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  w = await solanaWorld();
  rail = svmRail({
    network: DEVNET,
    mint: w.mint,
    decimals: 6,
    payTo: w.treasury.address,
    feePayer: w.feePayerSecret,
    chain: liteSvmChain(w.svm),
  });
  offer = rail.offer(AMOUNT);
});
afterAll(async () => {
  await w?.close();
});

/** The official client's payment for `requirements` (echoing them as `accepted`). */
async function pay(requirements: PaymentRequirements): Promise<PaymentPayload> {
  const client = new x402Client();
  client.setSpendControls({ allowedAssets: true });
  client.register(DEVNET, new ExactSvmScheme(w.payer, { rpcUrl: w.rpcUrl }));
  const required = { x402Version: 2, resource: { url: "http://hub.test/v1/chat/completions" }, accepts: [requirements] };
  return (await client.createPaymentPayload(required as never)) as unknown as PaymentPayload;
}

const txOf = (p: PaymentPayload) => getTransactionDecoder().decode(getBase64Encoder().encode(p.payload.transaction as string));
const withTx = (p: PaymentPayload, tx: Transaction): PaymentPayload => ({
  ...p,
  payload: { transaction: getBase64Decoder().decode(getTransactionEncoder().encode(tx)) },
});
const balances = async () => ({
  payer: w.tokenBalance(await w.ata(w.payer.address)),
  treasury: w.tokenBalance(await w.ata(w.treasury.address)),
});

describe("the offer", () => {
  it("is deterministic: exact, the mint, the treasury owner, the fee payer, no blockhash or memo", () => {
    expect(rail.offer(AMOUNT)).toEqual(offer);
    expect(offer).toEqual({
      scheme: "exact",
      network: DEVNET,
      amount: "1250000",
      asset: w.mint,
      payTo: w.treasury.address,
      maxTimeoutSeconds: BLOCKHASH_LIFETIME_SECONDS,
      extra: { feePayer: w.feePayer.address },
    });
    expect(rail.settlesFirst).toBe(true);
    expect(rail.offerV1(AMOUNT, { url: "u", description: "d", mimeType: "application/json", method: "POST" })).toBeUndefined();
  });
});

describe("a payment by the official client", () => {
  let checked: RailPayment;

  it("checks, preflights and settles, moving exactly the amount once", async () => {
    const payment = await pay(offer);
    const now = nowSeconds();
    const result = await rail.check(payment, offer, now);
    if (result instanceof SrpError) throw result;
    checked = result;
    expect(checked.lock).toMatchObject({ network: DEVNET, asset: w.mint, payer: w.payer.address, amount: AMOUNT, validBefore: now + 90 });
    expect(checked.lock.nonce).toMatch(/^[1-9A-HJ-NP-Za-km-z]{64,88}$/);
    // The same payment, checked again (another copy), locks the same nonce: the co-signature is deterministic.
    const again = await rail.check(payment, offer, now);
    expect(again instanceof SrpError ? again : again.lock.nonce).toBe(checked.lock.nonce);
    // A rail with the same fee payer as a kit signer co-signs identically.
    const twin = svmRail({
      network: DEVNET,
      mint: w.mint,
      decimals: 6,
      payTo: w.treasury.address,
      feePayer: w.feePayer,
      chain: liteSvmChain(w.svm),
    });
    const twinLock = await twin.check(payment, offer, now);
    expect(twinLock instanceof SrpError ? twinLock : twinLock.lock.nonce).toBe(checked.lock.nonce);

    expect(await rail.outcome(checked.lock)).toEqual({ state: "unused" });
    expect(await rail.preflight(checked)).toEqual({ ok: true });
    const before = await balances();
    const feePayerSol = w.svm.getBalance(w.feePayer.address as never) as bigint;
    const payerSol = w.svm.getBalance(w.payer.address as never);
    expect(await rail.settle(checked)).toEqual({ outcome: "settled", transaction: checked.lock.nonce });
    const after = await balances();
    expect(before.payer! - after.payer!).toBe(AMOUNT);
    expect(after.treasury! - before.treasury!).toBe(AMOUNT);
    // The fee payer paid the fee; the payer paid none.
    expect(w.svm.getBalance(w.feePayer.address as never) as bigint).toBeLessThan(feePayerSol);
    expect(w.svm.getBalance(w.payer.address as never)).toBe(payerSol);
  });

  it("settling it again moves nothing and reports the same transaction; the chain says paid", async () => {
    const before = await balances();
    expect(await rail.settle(checked)).toEqual({ outcome: "settled", transaction: checked.lock.nonce });
    expect(await balances()).toEqual(before);
    expect(await rail.outcome(checked.lock)).toEqual({ state: "paid", transaction: checked.lock.nonce });
    expect(await rail.preflight(checked)).toMatchObject({ ok: false, code: "payment.replayed" });
  });

  it("a rail that never saw it (a restart) restores it and still finds it paid", async () => {
    const fresh = svmRail({
      network: DEVNET,
      mint: w.mint,
      decimals: 6,
      payTo: w.treasury.address,
      feePayer: w.feePayerSecret,
      chain: liteSvmChain(w.svm),
    });
    expect(await fresh.outcome(checked.lock)).toEqual({ state: "paid", transaction: checked.lock.nonce });
    const restored = fresh.restore(checked.payment);
    expect(restored?.lock).toMatchObject({ nonce: checked.lock.nonce, payer: w.payer.address, amount: AMOUNT, asset: w.mint });
    expect(
      fresh.restore({ ...checked.payment, accepted: { ...checked.payment.accepted, network: SOLANA_NETWORKS.mainnet } }),
    ).toBeUndefined();
  });
});

describe("every tampering gets its own code and moves nothing", () => {
  /** Rebuilds the payer's transaction with one more instruction, signed again by the payer. */
  async function withExtraInstruction(p: PaymentPayload): Promise<PaymentPayload> {
    const tx = txOf(p);
    const message = decompileTransactionMessage(getCompiledTransactionMessageDecoder().decode(tx.messageBytes));
    const data = new Uint8Array(12);
    data[0] = 2; // System transfer
    data[4] = 1;
    const extended = appendTransactionMessageInstruction(
      {
        programAddress: SYSTEM_PROGRAM,
        accounts: [
          { address: w.payer.address, role: AccountRole.WRITABLE_SIGNER },
          { address: w.stranger.address, role: AccountRole.WRITABLE },
        ],
        data,
      },
      message,
    );
    return withTx(p, await partiallySignTransaction([w.payer.keyPair], compileTransaction(extended as never)));
  }

  it("amount, recipient, mint, fee payer, instructions, signatures, network, encoding, echo", async () => {
    const before = await balances();
    const good = await pay(offer);
    const cases: Array<[string, () => Promise<PaymentPayload>, string]> = [
      ["another amount", async () => ({ ...(await pay({ ...offer, amount: "1" })), accepted: offer }), "payment.wrong_amount"],
      [
        "another recipient",
        async () => ({ ...(await pay({ ...offer, payTo: w.stranger.address })), accepted: offer }),
        "payment.wrong_recipient",
      ],
      ["another mint", async () => ({ ...(await pay({ ...offer, asset: w.otherMint })), accepted: offer }), "payment.wrong_asset"],
      [
        "another fee payer",
        async () => ({ ...(await pay({ ...offer, extra: { feePayer: w.stranger.address } })), accepted: offer }),
        "payment.wrong_fee_payer",
      ],
      [
        "the fee payer's slot already signed",
        async () => {
          const tx = txOf(good);
          return withTx(good, { ...tx, signatures: { ...tx.signatures, [w.feePayer.address]: new Uint8Array(64).fill(7) } } as never);
        },
        "payment.wrong_fee_payer",
      ],
      ["an extra instruction", () => withExtraInstruction(good), "payment.invalid"],
      [
        "no signature of the authority",
        async () => {
          const tx = txOf(good);
          return withTx(good, { ...tx, signatures: { ...tx.signatures, [w.payer.address]: new Uint8Array(64) } } as never);
        },
        "payment.bad_signature",
      ],
      [
        "a forged signature of the authority",
        async () => {
          const tx = txOf(good);
          const sig = Uint8Array.from(tx.signatures[w.payer.address]!);
          sig[0]! ^= 1;
          return withTx(good, { ...tx, signatures: { ...tx.signatures, [w.payer.address]: sig } } as never);
        },
        "payment.bad_signature",
      ],
      [
        "another network",
        async () => ({ ...good, accepted: { ...good.accepted, network: SOLANA_NETWORKS.mainnet } }),
        "payment.wrong_network",
      ],
      [
        "an edited echo",
        async () => ({ ...good, accepted: { ...good.accepted, maxTimeoutSeconds: 600 } }),
        "payment.requirements_mismatch",
      ],
      ["not a transaction", async () => ({ ...good, payload: { transaction: "AAAA" } }), "payment.invalid"],
      ["no transaction", async () => ({ ...good, payload: { signature: "0x00" } }), "payment.invalid"],
    ];
    for (const [label, make, code] of cases) {
      const result = await rail.check(await make(), offer, nowSeconds());
      expect(result instanceof SrpError ? result.code : "accepted", label).toBe(code);
    }
    // The untampered payment passes, and nothing above moved money.
    expect(await rail.check(good, offer, nowSeconds())).not.toBeInstanceOf(SrpError);
    expect(await balances()).toEqual(before);
  });
});

describe("what only the chain knows", () => {
  it("a payer short of tokens fails preflight with insufficient funds", async () => {
    const big = rail.offer(50_000_000n);
    const result = await rail.check(await pay(big), big, nowSeconds());
    if (result instanceof SrpError) throw result;
    expect(await rail.preflight(result)).toMatchObject({ ok: false, code: "payment.insufficient_funds" });
  });

  it("a transaction that lands with an error is spent", async () => {
    const result = await rail.check(await pay(offer), offer, nowSeconds());
    if (result instanceof SrpError) throw result;
    const held = (await balances()).payer!;
    await w.setTokenBalance(w.payer.address, 0n); // the payer empties its account after paying
    const settled = await rail.settle(result);
    expect(settled.outcome).toBe("failed");
    expect(await rail.outcome(result.lock)).toEqual({ state: "spent", transaction: result.lock.nonce });
    await w.setTokenBalance(w.payer.address, held);
  });

  it("an expired blockhash: unused before expiry, spent after, and never settles", async () => {
    const result = await rail.check(await pay(offer), offer, nowSeconds());
    if (result instanceof SrpError) throw result;
    expect(await rail.outcome(result.lock)).toEqual({ state: "unused" });
    const before = await balances();
    w.svm.expireBlockhash();
    expect(await rail.preflight(result)).toMatchObject({ ok: false, code: "payment.expired" });
    expect(await rail.outcome(result.lock)).toEqual({ state: "spent" });
    expect((await rail.settle(result)).outcome).toBe("failed");
    expect(await balances()).toEqual(before);
  });

  it("a rail without the blockhash (a restart) bounds an unseen payment by its lock's expiry", async () => {
    const result = await rail.check(await pay(offer), offer, nowSeconds());
    if (result instanceof SrpError) throw result;
    const at = (seconds: number) =>
      svmRail({
        network: DEVNET,
        mint: w.mint,
        decimals: 6,
        payTo: w.treasury.address,
        feePayer: w.feePayerSecret,
        chain: liteSvmChain(w.svm),
        now: () => seconds * 1000,
      }).outcome(result.lock);
    const { validBefore } = result.lock;
    expect(await at(validBefore - 1)).toEqual({ state: "unused" });
    expect(await at(validBefore + 1)).toBeUndefined();
    expect(await at(validBefore + BLOCKHASH_LIFETIME_SECONDS)).toEqual({ state: "spent" });
  });
});
