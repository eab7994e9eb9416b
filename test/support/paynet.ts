/**
 * A paying network for tests on the in-process chain: a hub on a SQLite ledger file taking
 * x402 payments (direct settlement with the hub key, the treasury as `payTo`), one provider
 * node on the model simulator, and the chain reverted to a snapshot after each test. After
 * every test the books must verify and the treasury's on-chain balance must equal what the
 * ledger says came in from outside (minus the `external` account).
 *
 * `usePayNets` registers the vitest hooks; call it once at the top of a test file.
 */
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PrivateKeyAccount } from "viem";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm";
import { generateIdentity } from "@srp/core";
import { decodePaymentRequired, encodeX402Header, type PaymentRequired, type PaymentRequirements } from "@srp/core/x402";
import { authorizationNonce, signTransferAuthorization, transferWithAuthorizationTypes } from "@srp/core/chain";
import { createHub, directSettler, SqliteStore, type ChainWriter, type Hub, type HubX402Options, type Settler } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";
import { startChain, type TestChain } from "./chain.js";

/** The model the node serves. */
export const MODEL = "sim-llama-3-8b";
/** $1 per 1M input tokens, $3 per 1M output tokens. */
export const PRICE = { input: "1000000", output: "3000000" };

/** How to build one net. */
export interface PayNetOptions {
  /** Overrides of the hub's x402 options. */
  x402?: Partial<HubX402Options>;
  /** What the treasury holds on other networks (a Solana rail's token account), counted with its EVM balance against the ledger. */
  elsewhere?: () => Promise<bigint>;
  /** Wraps the direct settler (tests make settlements fail or time out). */
  settler?: (inner: Settler) => Settler;
  /** The hub's treasury wallet (refunds): default the treasury account's; `false`: none; a function wraps it. */
  treasury?: false | ((wallet: ChainWriter) => ChainWriter);
}

/** A running paying network. */
export interface PayNet {
  hub: Hub;
  url: string;
  store: SqliteStore;
  /** The SQLite file of the store. */
  file: string;
  sim: Simulator;
  /** The node of the `owner` account, bound by its API key. */
  provider: Provider;
  nodeId: string;
  owner: { id: string; key: string };
  /** The treasury's address (`payTo`); it holds no tokens at the snapshot. */
  treasury: `0x${string}`;
  /** More nodes a test started (closed with the net). */
  extra: Provider[];
  /** What the treasury holds on other networks ({@link PayNetOptions.elsewhere}). */
  elsewhere?: () => Promise<bigint>;
  close(): Promise<void>;
}

/** What a test file gets from {@link usePayNets}. */
export interface PayNets {
  /** The chain (started before the file's tests). */
  chain(): TestChain;
  start(options?: PayNetOptions): Promise<PayNet>;
}

/** Registers the hooks and returns a factory of paying networks (`chainId`: the chain's id, default 1337). */
export function usePayNets(prefix: string, options: { chainId?: number } = {}): PayNets {
  let chain: TestChain | undefined;
  let restore: (() => Promise<void>) | undefined;
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const nets: PayNet[] = [];
  beforeAll(async () => {
    chain = await startChain(options.chainId ? { chainId: options.chainId } : {});
  }, 60_000);
  afterAll(async () => {
    await chain?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const net of nets.splice(0)) {
      try {
        expect(await net.store.verify()).toEqual([]);
        const elsewhere = (await net.elsewhere?.()) ?? 0n;
        expect((await chain!.usdcBalance(net.treasury)) + elsewhere).toBe(-(await net.store.ledgerBalance("external")));
      } finally {
        await net.close();
      }
    }
    await restore?.();
    restore = undefined;
  });
  return {
    chain: () => chain!,
    async start(options = {}) {
      const c = chain!;
      restore = await c.snapshot();
      const treasuryAccount = c.accounts[5]!;
      const file = join(dir, `ledger-${nets.length}-${Date.now()}.db`);
      const store = new SqliteStore(file);
      const inner = directSettler({ publicClient: c.publicClient, walletClient: c.walletFor(c.hubSigner), confirmTimeoutMs: 10_000 });
      const wallet = c.walletFor(treasuryAccount);
      const treasury = options.treasury === false ? undefined : options.treasury ? options.treasury(wallet) : wallet;
      const hub = createHub({
        identity: generateIdentity(),
        accounts: store,
        storage: store,
        admin: store,
        drainTimeoutMs: 2000,
        x402: {
          chainId: c.chainId,
          asset: { address: c.usdc.address, name: c.usdc.name, version: c.usdc.version },
          payTo: treasuryAccount.address,
          settler: options.settler ? options.settler(inner) : inner,
          ...(treasury ? { treasury } : {}),
          ...options.x402,
        },
      });
      const { url } = await hub.listen({ port: 0 });
      const sim = await startSimulator();
      const owner = await store.createAccount({ name: "provider" });
      const { key } = await store.createApiKey(owner.id);
      const identity = generateIdentity();
      const provider = createProvider({
        hub: url,
        identity,
        account: key,
        reconnect: false,
        instances: [{ backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: PRICE, maxConcurrency: 8 }],
      });
      await provider.ready();
      const net: PayNet = {
        hub,
        url,
        store,
        file,
        sim,
        provider,
        nodeId: identity.id,
        owner: { id: owner.id, key },
        treasury: treasuryAccount.address,
        extra: [],
        ...(options.elsewhere ? { elsewhere: options.elsewhere } : {}),
        async close() {
          for (const p of [provider, ...net.extra]) await p.close();
          await hub.close();
          await sim.close();
          await store.close();
        },
      };
      nets.push(net);
      return net;
    },
  };
}

/** Ways to spoil a payment. */
export interface Tamper {
  /** Signs with this key instead of the payer's. */
  signer?: PrivateKeyAccount;
  to?: `0x${string}`;
  value?: bigint;
  validAfter?: bigint;
  validBefore?: bigint;
  /** Changes to the echoed requirements. */
  accepted?: Partial<PaymentRequirements>;
}

/** A `PAYMENT-SIGNATURE` header built by hand, as a client would, optionally spoiled. */
export async function payHeader(chain: TestChain, payer: PrivateKeyAccount, required: PaymentRequired, t: Tamper = {}): Promise<string> {
  const accepted = { ...required.accepts[0]!, ...t.accepted };
  const now = BigInt(Math.floor(Date.now() / 1000));
  const authorization = {
    from: payer.address,
    to: t.to ?? (accepted.payTo as `0x${string}`),
    value: t.value ?? BigInt(accepted.amount),
    validAfter: t.validAfter ?? 0n,
    validBefore: t.validBefore ?? now + BigInt(accepted.maxTimeoutSeconds),
    nonce: authorizationNonce(),
  };
  const token = { name: chain.usdc.name, version: chain.usdc.version, chainId: chain.chainId, address: chain.usdc.address };
  const signature = t.signer
    ? await t.signer.signTypedData({
        domain: { name: token.name, version: token.version, chainId: token.chainId, verifyingContract: token.address },
        types: transferWithAuthorizationTypes,
        primaryType: "TransferWithAuthorization",
        message: authorization,
      })
    : await signTransferAuthorization(payer, token, authorization);
  return encodeX402Header({
    x402Version: 2,
    resource: required.resource,
    accepted,
    payload: {
      signature,
      authorization: {
        from: authorization.from,
        to: authorization.to,
        value: authorization.value.toString(),
        validAfter: authorization.validAfter.toString(),
        validBefore: authorization.validBefore.toString(),
        nonce: authorization.nonce,
      },
    },
  });
}

/** The 402 of a request to `path`: its `PAYMENT-REQUIRED` document. */
export async function quote(net: PayNet, path: string, body: unknown): Promise<PaymentRequired> {
  const res = await fetch(`${net.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(402);
  const header = res.headers.get("payment-required");
  expect(header).not.toBeNull();
  return decodePaymentRequired(header!);
}

/** The status and SRP code of a refused request (a 402 also carries fresh requirements naming the code). */
export async function refusal(res: Response): Promise<{ status: number; code: string }> {
  const json = (await res.json()) as { error: { code: string } };
  if (res.status === 402) expect(decodePaymentRequired(res.headers.get("payment-required")!).error).toContain(json.error.code);
  return { status: res.status, code: json.error.code };
}

/** The official x402 client (`@x402/fetch` + `@x402/evm`) for a payer, allowing the test token. */
export function officialFetch(chain: TestChain, payer: PrivateKeyAccount): typeof fetch {
  return wrapFetchWithPaymentFromConfig(fetch, {
    schemes: [{ network: "eip155:*", client: new ExactEvmScheme(payer) }],
    spendControls: { allowedAssets: [{ network: `eip155:${chain.chainId}`, asset: chain.usdc.address }] },
  });
}

/** The id of the account a wallet pays into. */
export async function walletAccount(net: PayNet, address: string): Promise<string> {
  const account = await net.store.findByWallet(address);
  expect(account).toBeDefined();
  return account!.id;
}
