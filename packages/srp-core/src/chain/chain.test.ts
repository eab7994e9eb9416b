import fc from "fast-check";
import {
  createPublicClient,
  encodeAbiParameters,
  http,
  hashTypedData,
  keccak256,
  maxUint256,
  parseEventLogs,
  toHex,
  type Address,
  type Hex,
  type PrivateKeyAccount,
} from "viem";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { serveRpc, startChain, testChain, type TestChain } from "../../../../test/support/chain.js";
import {
  authorizationNonce,
  claimAmounts,
  eip3009Domain,
  payoutTypes,
  protocolShare,
  settlementDomain,
  signPayout,
  signTransferAuthorization,
  splitSignature,
  srpSettlementAbi,
  testUsdcAbi,
  transferWithAuthorizationTypes,
  type TransferAuthorization,
} from "./index.js";

/** secp256k1 group order, to build the malleable (high-s) twin of a signature. */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

let chain: TestChain;
let restore: (() => Promise<void>) | undefined;

beforeAll(async () => {
  chain = await startChain();
});
afterAll(async () => {
  await chain?.stop();
});
beforeEach(async () => {
  restore = await chain.snapshot();
});
afterEach(async () => {
  await restore?.();
  restore = undefined;
});

const account = (i: number): PrivateKeyAccount => {
  const a = chain.accounts[i];
  if (!a) throw new Error(`no account ${i}`);
  return a;
};
const now = async () => (await chain.publicClient.getBlock()).timestamp;

/** The malleable twin of a 65-byte signature: s' = n - s and the other v. */
function highS(signature: Hex): Hex {
  const { v, r, s } = splitSignature(signature);
  const s2 = SECP256K1_N - BigInt(s);
  return `${r}${s2.toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}`;
}

describe("TestUSDC", () => {
  // accounts[3] holds USDC and authorizes; accounts[5] (no USDC) receives; accounts[6] relays.
  const payer = () => account(3);
  const payee = () => account(5);
  const relayer = () => chain.walletFor(account(6));

  async function authorization(overrides: Partial<TransferAuthorization> = {}): Promise<TransferAuthorization> {
    const t = await now();
    return {
      from: payer().address,
      to: payee().address,
      value: 1_234_567n,
      validAfter: t - 60n,
      validBefore: t + 3600n,
      nonce: authorizationNonce(),
      ...overrides,
    };
  }

  const args = (a: TransferAuthorization) => [a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce] as const;

  function sendVrs(a: TransferAuthorization, signature: Hex) {
    const { v, r, s } = splitSignature(signature);
    return relayer().writeContract({
      address: chain.usdc.address,
      abi: testUsdcAbi,
      functionName: "transferWithAuthorization",
      args: [...args(a), v, r, s],
    });
  }

  function sendBytes(a: TransferAuthorization, signature: Hex) {
    return relayer().writeContract({
      address: chain.usdc.address,
      abi: testUsdcAbi,
      functionName: "transferWithAuthorization",
      args: [...args(a), signature],
    });
  }

  const used = (a: TransferAuthorization) =>
    chain.publicClient.readContract({
      address: chain.usdc.address,
      abi: testUsdcAbi,
      functionName: "authorizationState",
      args: [a.from, a.nonce],
    });

  it("is a 6-decimal ERC-20 named USD Coin with a chain-bound EIP-712 domain", async () => {
    const read = <F extends "name" | "symbol" | "decimals" | "DOMAIN_SEPARATOR" | "TRANSFER_WITH_AUTHORIZATION_TYPEHASH" | "owner">(
      functionName: F,
    ) => chain.publicClient.readContract({ address: chain.usdc.address, abi: testUsdcAbi, functionName });
    expect(await read("name")).toBe("USD Coin");
    expect(await read("symbol")).toBe("USDC");
    expect(await read("decimals")).toBe(6);
    expect(await read("owner")).toBe(chain.deployer.address);
    const domainTypehash = keccak256(toHex("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"));
    const expected = keccak256(
      encodeAbiParameters(
        [{ type: "bytes32" }, { type: "bytes32" }, { type: "bytes32" }, { type: "uint256" }, { type: "address" }],
        [domainTypehash, keccak256(toHex("USD Coin")), keccak256(toHex("2")), 1337n, chain.usdc.address],
      ),
    );
    expect(await read("DOMAIN_SEPARATOR")).toBe(expected);
    expect(await read("TRANSFER_WITH_AUTHORIZATION_TYPEHASH")).toBe(
      keccak256(
        toHex("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"),
      ),
    );
  });

  it("lets only the deployer mint", async () => {
    const before = await chain.usdcBalance(payee().address);
    await expect(
      chain
        .walletFor(payee())
        .writeContract({ address: chain.usdc.address, abi: testUsdcAbi, functionName: "mint", args: [payee().address, 1n] }),
    ).rejects.toThrow(/caller is not the owner/);
    expect(await chain.usdcBalance(payee().address)).toBe(before);
  });

  it("moves exactly `value` with a (v, r, s) authorization and marks the nonce used", async () => {
    const a = await authorization();
    const signature = await signTransferAuthorization(payer(), chain.usdc, a);
    const [fromBefore, toBefore, relayerBefore] = await Promise.all([
      chain.usdcBalance(a.from),
      chain.usdcBalance(a.to),
      chain.usdcBalance(account(6).address),
    ]);
    expect(await used(a)).toBe(false);
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: await sendVrs(a, signature) });
    expect(receipt.status).toBe("success");
    expect(await chain.usdcBalance(a.from)).toBe(fromBefore - a.value);
    expect(await chain.usdcBalance(a.to)).toBe(toBefore + a.value);
    expect(await chain.usdcBalance(account(6).address)).toBe(relayerBefore);
    expect(await used(a)).toBe(true);
    const events = parseEventLogs({ abi: testUsdcAbi, logs: receipt.logs });
    expect(events.map((e) => e.eventName)).toEqual(["AuthorizationUsed", "Transfer"]);
    expect(events[0]?.args).toEqual({ authorizer: a.from, nonce: a.nonce });
  });

  it("moves exactly `value` with a 65-byte signature (bytes overload)", async () => {
    const a = await authorization({ value: 42n });
    const signature = await signTransferAuthorization(payer(), chain.usdc, a);
    const [fromBefore, toBefore] = await Promise.all([chain.usdcBalance(a.from), chain.usdcBalance(a.to)]);
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: await sendBytes(a, signature) });
    expect(receipt.status).toBe("success");
    expect(await chain.usdcBalance(a.from)).toBe(fromBefore - 42n);
    expect(await chain.usdcBalance(a.to)).toBe(toBefore + 42n);
    expect(await used(a)).toBe(true);
  });

  it("rejects a used authorization in either form", async () => {
    const a = await authorization();
    const signature = await signTransferAuthorization(payer(), chain.usdc, a);
    await chain.publicClient.waitForTransactionReceipt({ hash: await sendBytes(a, signature) });
    const toAfterFirst = await chain.usdcBalance(a.to);
    await expect(sendBytes(a, signature)).rejects.toThrow(/authorization is used or canceled/);
    await expect(sendVrs(a, signature)).rejects.toThrow(/authorization is used or canceled/);
    expect(await chain.usdcBalance(a.to)).toBe(toAfterFirst);
  });

  it("rejects an expired and a not-yet-valid authorization", async () => {
    const t = await now();
    const expired = await authorization({ validAfter: 0n, validBefore: t - 1n });
    await expect(sendVrs(expired, await signTransferAuthorization(payer(), chain.usdc, expired))).rejects.toThrow(
      /authorization is expired/,
    );
    const early = await authorization({ validAfter: t + 3600n, validBefore: t + 7200n });
    await expect(sendBytes(early, await signTransferAuthorization(payer(), chain.usdc, early))).rejects.toThrow(
      /authorization is not yet valid/,
    );
    expect(await used(expired)).toBe(false);
    expect(await used(early)).toBe(false);
  });

  it("rejects a signature by another key, a tampered value, a wrong domain and a high-s twin", async () => {
    const a = await authorization();
    const before = await chain.usdcBalance(a.to);
    // Another key signs the same message (the helper refuses, so sign the typed data directly).
    const forged = await account(4).signTypedData({
      domain: eip3009Domain(chain.usdc),
      types: transferWithAuthorizationTypes,
      primaryType: "TransferWithAuthorization",
      message: a,
    });
    await expect(sendVrs(a, forged)).rejects.toThrow(/invalid signature/);
    const signature = await signTransferAuthorization(payer(), chain.usdc, a);
    await expect(sendBytes({ ...a, value: a.value + 1n }, signature)).rejects.toThrow(/invalid signature/);
    const otherDomain = await signTransferAuthorization(payer(), { ...chain.usdc, version: "1" }, a);
    await expect(sendBytes(a, otherDomain)).rejects.toThrow(/invalid signature/);
    await expect(sendBytes(a, highS(signature))).rejects.toThrow(/invalid signature 's' value/);
    expect(() => signTransferAuthorization(account(4), chain.usdc, a)).toThrow(/not the authorization's `from`/);
    expect(await chain.usdcBalance(a.to)).toBe(before);
    expect(await used(a)).toBe(false);
  });
});

describe("SrpSettlement", () => {
  const hub = () => chain.walletFor(account(0)); // submits claims on behalf of providers
  const payees = () => [account(7), account(8), account(9)] as const;

  async function fund(amount: bigint) {
    const hash = await chain.walletFor(chain.deployer).writeContract({
      address: chain.usdc.address,
      abi: testUsdcAbi,
      functionName: "transfer",
      args: [chain.settlement, amount],
    });
    await chain.publicClient.waitForTransactionReceipt({ hash });
  }

  const voucher = (payee: Address, total: bigint, signer: PrivateKeyAccount = chain.hubSigner) =>
    signPayout(signer, { chainId: chain.chainId, settlement: chain.settlement, payee, total });

  const paid = (payee: Address) =>
    chain.publicClient.readContract({ address: chain.settlement, abi: srpSettlementAbi, functionName: "paid", args: [payee] });

  async function claim(payee: Address, total: bigint, signature: Hex, by = hub()) {
    const hash = await by.writeContract({
      address: chain.settlement,
      abi: srpSettlementAbi,
      functionName: "claim",
      args: [payee, total, signature],
    });
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    expect(receipt.status).toBe("success");
    return receipt;
  }

  /** USDC balances of `addresses`, as a tuple of the same length. */
  async function balances<const T extends readonly Address[]>(...addresses: T): Promise<{ [K in keyof T]: bigint }> {
    return (await Promise.all(addresses.map((a) => chain.usdcBalance(a)))) as { [K in keyof T]: bigint };
  }

  it("is deployed with its token, signer, protocol and owner, and signs the EIP-712 digest viem computes", async () => {
    const read = <F extends "token" | "signer" | "protocol" | "owner">(functionName: F) =>
      chain.publicClient.readContract({ address: chain.settlement, abi: srpSettlementAbi, functionName });
    expect(await read("token")).toBe(chain.usdc.address);
    expect(await read("signer")).toBe(chain.hubSigner.address);
    expect(await read("protocol")).toBe(chain.protocol.address);
    expect(await read("owner")).toBe(chain.deployer.address);
    const payee = payees()[0].address;
    const digest = await chain.publicClient.readContract({
      address: chain.settlement,
      abi: srpSettlementAbi,
      functionName: "payoutDigest",
      args: [payee, 900n],
    });
    expect(digest).toBe(
      hashTypedData({
        domain: settlementDomain(chain.chainId, chain.settlement),
        types: payoutTypes,
        primaryType: "Payout",
        message: { payee, total: 900n },
      }),
    );
  });

  it("pays 900 + 100 for a 900 voucher, nothing for a replay, then 100 + 12 for a 1000 voucher", async () => {
    await fund(10_000n);
    const payee = payees()[0].address;
    const protocol = chain.protocol.address;
    const [p0, q0, c0] = await balances(payee, protocol, chain.settlement);

    const v900 = await voucher(payee, 900n);
    const receipt = await claim(payee, 900n, v900);
    expect(await balances(payee, protocol, chain.settlement)).toEqual([p0 + 900n, q0 + 100n, c0 - 1000n]);
    expect(await paid(payee)).toBe(900n);
    const events = parseEventLogs({ abi: srpSettlementAbi, logs: receipt.logs, eventName: "Claimed" });
    expect(events.map((e) => e.args)).toEqual([{ payee, total: 900n, providerAmount: 900n, protocolAmount: 100n }]);

    // A replay pays nothing and does not revert, whoever submits it (here the provider itself).
    const { result } = await chain.publicClient.simulateContract({
      account: payees()[0],
      address: chain.settlement,
      abi: srpSettlementAbi,
      functionName: "claim",
      args: [payee, 900n, v900],
    });
    expect(result).toEqual([0n, 0n]);
    const replay = await claim(payee, 900n, v900, chain.walletFor(payees()[0]));
    expect(parseEventLogs({ abi: srpSettlementAbi, logs: replay.logs, eventName: "Claimed" })).toEqual([]);
    // An older, smaller voucher pays nothing either.
    await claim(payee, 500n, await voucher(payee, 500n));
    expect(await balances(payee, protocol, chain.settlement)).toEqual([p0 + 900n, q0 + 100n, c0 - 1000n]);
    expect(await paid(payee)).toBe(900n);

    await claim(payee, 1000n, await voucher(payee, 1000n));
    expect(await balances(payee, protocol, chain.settlement)).toEqual([p0 + 1000n, q0 + 112n, c0 - 1112n]);
    expect(await paid(payee)).toBe(1000n);
    expect(claimAmounts(900n, 1000n)).toEqual({ providerAmount: 100n, protocolAmount: 12n });
  });

  it("computes protocolShare on-chain exactly as the TypeScript rule, ceil(total / 9)", async () => {
    const onChain = (total: bigint) =>
      chain.publicClient.readContract({ address: chain.settlement, abi: srpSettlementAbi, functionName: "protocolShare", args: [total] });
    const fixed = [0n, 1n, 8n, 9n, 10n, 17n, 18n, 19n, 900n, 1000n, 10n ** 30n + 1n, maxUint256 - 1n, maxUint256];
    for (const total of fixed) expect(await onChain(total), `protocolShare(${total})`).toBe(protocolShare(total));
    expect([0n, 1n, 8n, 9n, 10n, 1000n].map(protocolShare)).toEqual([0n, 1n, 1n, 1n, 2n, 112n]);
    expect(protocolShare(maxUint256)).toBe(maxUint256 / 9n + 1n);
    await fc.assert(
      fc.asyncProperty(fc.bigInt({ min: 0n, max: maxUint256 }), async (total) => {
        expect(await onChain(total)).toBe(protocolShare(total));
      }),
      { numRuns: 50 },
    );
    expect(() => protocolShare(-1n)).toThrow(RangeError);
  });

  it("rejects vouchers not signed by the hub key, for another payee, or in high-s form", async () => {
    await fund(10_000n);
    const [a, b] = payees();
    const before = await balances(a.address, b.address, chain.protocol.address);
    await expect(claim(a.address, 900n, await voucher(a.address, 900n, account(4)))).rejects.toThrow(/invalid signature/);
    const forA = await voucher(a.address, 900n);
    await expect(claim(b.address, 900n, forA)).rejects.toThrow(/invalid signature/);
    await expect(claim(a.address, 901n, forA)).rejects.toThrow(/invalid signature/);
    await expect(claim(a.address, 900n, highS(forA))).rejects.toThrow(/invalid signature 's' value/);
    await expect(claim(a.address, 900n, `${forA.slice(0, -2)}01` as Hex)).rejects.toThrow(/invalid signature 'v' value/);
    expect(await balances(a.address, b.address, chain.protocol.address)).toEqual(before);
    expect(await paid(a.address)).toBe(0n);
  });

  it("honours the new key only after setSigner, which only the owner may call", async () => {
    await fund(10_000n);
    const payee = payees()[0].address;
    const newKey = account(4);
    const setSigner = (wallet: ReturnType<typeof chain.walletFor>) =>
      wallet.writeContract({ address: chain.settlement, abi: srpSettlementAbi, functionName: "setSigner", args: [newKey.address] });
    await expect(setSigner(chain.walletFor(newKey))).rejects.toThrow(/caller is not the owner/);
    await chain.publicClient.waitForTransactionReceipt({ hash: await setSigner(chain.walletFor(chain.deployer)) });
    await expect(claim(payee, 900n, await voucher(payee, 900n))).rejects.toThrow(/invalid signature/);
    await claim(payee, 900n, await voucher(payee, 900n, newKey));
    expect(await paid(payee)).toBe(900n);
  });

  it("claimBatch pays three payees in one transaction, a replayed entry paying nothing", async () => {
    await fund(100_000n);
    const [a, b, c] = payees().map((p) => p.address) as [Address, Address, Address];
    const protocol = chain.protocol.address;
    const va = await voucher(a, 900n);
    await claim(a, 900n, va);
    const before = await balances(a, b, c, protocol, chain.settlement);

    const entries: [Address, bigint, Hex][] = [
      [a, 900n, va], // replay
      [b, 500n, await voucher(b, 500n)],
      [c, 1000n, await voucher(c, 1000n)],
    ];
    const args = [entries.map((e) => e[0]), entries.map((e) => e[1]), entries.map((e) => e[2])] as const;
    const { result } = await chain.publicClient.simulateContract({
      account: chain.deployer,
      address: chain.settlement,
      abi: srpSettlementAbi,
      functionName: "claimBatch",
      args,
    });
    // 500 + 1000 to providers; ceil(500/9) = 56 and ceil(1000/9) = 112 to the protocol.
    expect(result).toEqual([1500n, 168n]);
    const hash = await hub().writeContract({ address: chain.settlement, abi: srpSettlementAbi, functionName: "claimBatch", args });
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    expect(receipt.status).toBe("success");
    const [a0, b0, c0, q0, s0] = before;
    expect(await balances(a, b, c, protocol, chain.settlement)).toEqual([a0, b0 + 500n, c0 + 1000n, q0 + 168n, s0 - 1668n]);
    expect(await Promise.all([a, b, c].map(paid))).toEqual([900n, 500n, 1000n]);
    const claimed = parseEventLogs({ abi: srpSettlementAbi, logs: receipt.logs, eventName: "Claimed" });
    expect(claimed.map((e) => [e.args.payee, e.args.providerAmount, e.args.protocolAmount])).toEqual([
      [b, 500n, 56n],
      [c, 1000n, 112n],
    ]);
    // The protocol's share arrives in one transfer: two to providers plus one to the protocol.
    expect(parseEventLogs({ abi: testUsdcAbi, logs: receipt.logs, eventName: "Transfer" })).toHaveLength(3);
  });

  it("claimBatch rejects mismatched array lengths", async () => {
    const a = payees()[0].address;
    await expect(
      hub().writeContract({
        address: chain.settlement,
        abi: srpSettlementAbi,
        functionName: "claimBatch",
        args: [[a], [900n, 1000n], [await voucher(a, 900n)]],
      }),
    ).rejects.toThrow(/array lengths differ/);
  });

  it("reverts on an insufficient balance and changes nothing", async () => {
    await fund(999n); // 900 + 100 are needed
    const [a, b] = payees().map((p) => p.address) as [Address, Address];
    const before = await balances(a, b, chain.protocol.address, chain.settlement);
    await expect(claim(a, 900n, await voucher(a, 900n))).rejects.toThrow(/transfer amount exceeds balance/);
    const batch = [
      [a, b],
      [900n, 100n],
      [await voucher(a, 900n), await voucher(b, 100n)],
    ] as const;
    await expect(
      hub().writeContract({
        address: chain.settlement,
        abi: srpSettlementAbi,
        functionName: "claimBatch",
        args: [[...batch[0]], [...batch[1]], [...batch[2]]],
      }),
    ).rejects.toThrow(/transfer amount exceeds balance/);
    expect(await balances(a, b, chain.protocol.address, chain.settlement)).toEqual(before);
    expect(await paid(a)).toBe(0n);
    expect(await paid(b)).toBe(0n);
  });

  it("costs bounded gas: claim (first and follow-up) and claimBatch of three new payees", async () => {
    await fund(100_000n);
    // All four payees start with no USDC and nothing paid, as a new provider would.
    const [a, b, c] = payees().map((p) => p.address) as [Address, Address, Address];
    const d = account(6).address;
    const first = await claim(d, 900n, await voucher(d, 900n));
    const followUp = await claim(d, 1800n, await voucher(d, 1800n));
    const hash = await hub().writeContract({
      address: chain.settlement,
      abi: srpSettlementAbi,
      functionName: "claimBatch",
      args: [
        [a, b, c],
        [900n, 900n, 900n],
        [await voucher(a, 900n), await voucher(b, 900n), await voucher(c, 900n)],
      ],
    });
    const batch = await chain.publicClient.waitForTransactionReceipt({ hash });
    if (process.env.SRP_PRINT_GAS)
      console.log(`gas: claim ${first.gasUsed}, follow-up claim ${followUp.gasUsed}, claimBatch(3) ${batch.gasUsed}`);
    expect(first.gasUsed).toBeLessThan(110_000n);
    expect(followUp.gasUsed).toBeLessThan(first.gasUsed);
    // One protocol transfer for the whole batch: cheaper than three separate claims.
    expect(batch.gasUsed).toBeLessThan(3n * first.gasUsed);
  });
});

describe("test chain over HTTP (serveRpc)", () => {
  it("serves reads, revert reasons and unknown methods to an HTTP client", async () => {
    const server = await serveRpc(chain.provider);
    try {
      const client = createPublicClient({ chain: testChain, transport: http(server.url, { retryCount: 0 }) });
      expect(await client.getChainId()).toBe(1337);
      expect(await client.readContract({ address: chain.usdc.address, abi: testUsdcAbi, functionName: "symbol" })).toBe("USDC");
      await expect(
        client.simulateContract({
          account: account(5),
          address: chain.usdc.address,
          abi: testUsdcAbi,
          functionName: "mint",
          args: [account(5).address, 1n],
        }),
      ).rejects.toThrow(/caller is not the owner/);
      const res = await fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify([
          { jsonrpc: "2.0", id: 1, method: "eth_noSuchMethod", params: [] },
          { jsonrpc: "2.0", id: 2, method: "eth_chainId", params: [] },
        ]),
      });
      expect(await res.json()).toEqual([
        { jsonrpc: "2.0", id: 1, error: expect.objectContaining({ code: -32601 }) },
        { jsonrpc: "2.0", id: 2, result: "0x539" },
      ]);
    } finally {
      await server.close();
    }
  });
});
