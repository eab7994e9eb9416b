/**
 * A throwaway in-process Ethereum chain for tests: ganache (chain id 1337, Shanghai rules,
 * instant mining, deterministic accounts) wrapped in viem clients, with TestUSDC ("USD Coin",
 * version "2", the test stand-in for USDC) and SrpSettlement deployed and USDC minted to the
 * first accounts. Transactions are signed locally by viem accounts and sent raw, as on a
 * real network.
 *
 * Roles: `accounts[0]` deploys both contracts (it owns them and may mint), `accounts[1]` is
 * the hub key that signs settlement vouchers, `accounts[2]` receives the protocol's share.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import ganache, { type EthereumProvider } from "ganache";
import {
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  type Address,
  type CustomTransport,
  type Hex,
  type PrivateKeyAccount,
  type PublicClient,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deploySettlement, deployTestUsdc, testUsdcAbi } from "@srp/core/chain";

/** The chain id of the test chain. */
export const TEST_CHAIN_ID = 1337;

/** The viem chain definition of the test chain (its RPC URL is a placeholder: clients use the in-process provider). */
export const testChain = defineChain({
  id: TEST_CHAIN_ID,
  name: "SRP test chain (ganache)",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: ["http://127.0.0.1:8545"] } },
});

/** A wallet client for one of the test accounts. */
export type TestWallet = WalletClient<CustomTransport, typeof testChain, PrivateKeyAccount>;

/** Options of {@link startChain}. */
export interface ChainOptions {
  /** Number of funded accounts (at least 3); default 10. */
  accounts?: number;
  /** USDC (smallest units) minted to each of the first `mintTo` accounts; default 1,000,000 USDC. */
  mint?: bigint;
  /** How many of the first accounts receive `mint`; default 5. */
  mintTo?: number;
  /** Also serve the chain over HTTP JSON-RPC (see {@link serveRpc}) and set `rpcUrl`. */
  serve?: boolean;
}

/** A running test chain. */
export interface TestChain {
  chainId: number;
  /** The raw ganache EIP-1193 provider. */
  provider: EthereumProvider;
  publicClient: PublicClient<CustomTransport, typeof testChain>;
  /** Local (private key) accounts for ganache's deterministic keys. */
  accounts: PrivateKeyAccount[];
  /** The private keys of `accounts`, in the same order. */
  privateKeys: Hex[];
  /** `accounts[0]`: deployer and owner of both contracts, the only minter. */
  deployer: PrivateKeyAccount;
  /** `accounts[1]`: the hub key SrpSettlement accepts vouchers from. */
  hubSigner: PrivateKeyAccount;
  /** `accounts[2]`: the recipient of the protocol's share. */
  protocol: PrivateKeyAccount;
  /** A wallet client that signs with `account`. */
  walletFor(account: PrivateKeyAccount): TestWallet;
  /** TestUSDC's address and its EIP-712 domain parameters. */
  usdc: { address: Address; name: string; version: string; chainId: number };
  /** SrpSettlement's address. */
  settlement: Address;
  /** An HTTP JSON-RPC URL for child processes, when started with `serve: true`. */
  rpcUrl: string | undefined;
  /** Reads an account's USDC balance. */
  usdcBalance(address: Address): Promise<bigint>;
  /** Takes a chain snapshot; the returned function reverts to it (once). */
  snapshot(): Promise<() => Promise<void>>;
  /** Stops the RPC server (if any) and the chain. */
  stop(): Promise<void>;
}

/** Starts a fresh chain with both contracts deployed. */
export async function startChain(options: ChainOptions = {}): Promise<TestChain> {
  const totalAccounts = Math.max(3, options.accounts ?? 10);
  const provider = ganache.provider({
    logging: { quiet: true },
    chain: { chainId: TEST_CHAIN_ID, hardfork: "shanghai" },
    wallet: { deterministic: true, totalAccounts, defaultBalance: 1000 },
    miner: { instamine: "eager" },
  });
  const transport = custom({
    request: async ({ method, params }) => {
      try {
        return await provider.request({ method, params } as never);
      } catch (err) {
        throw withRpcCode(err);
      }
    },
  });
  const publicClient = createPublicClient({ chain: testChain, transport, pollingInterval: 20 });
  const privateKeys = Object.values(provider.getInitialAccounts()).map((a) => a.secretKey as Hex);
  const accounts = privateKeys.map((key) => privateKeyToAccount(key));
  const walletFor = (account: PrivateKeyAccount): TestWallet =>
    createWalletClient({ account, chain: testChain, transport, pollingInterval: 20 });
  const [deployer, hubSigner, protocol] = accounts as [PrivateKeyAccount, PrivateKeyAccount, PrivateKeyAccount];

  const usdc = { name: "USD Coin", version: "2", chainId: TEST_CHAIN_ID };
  const admin = walletFor(deployer);
  let usdcAddress: Address;
  let settlement: Address;
  let server: RpcServer | undefined;
  try {
    usdcAddress = await deployTestUsdc(admin, publicClient, usdc);
    settlement = await deploySettlement(admin, publicClient, { token: usdcAddress, signer: hubSigner.address, protocol: protocol.address });
    const mint = options.mint ?? 1_000_000n * 10n ** 6n;
    for (const account of accounts.slice(0, options.mintTo ?? 5)) {
      const hash = await admin.writeContract({ address: usdcAddress, abi: testUsdcAbi, functionName: "mint", args: [account.address, mint] });
      await publicClient.waitForTransactionReceipt({ hash });
    }
    if (options.serve) server = await serveRpc(provider);
  } catch (err) {
    await provider.disconnect().catch(() => undefined);
    throw err;
  }
  return {
    chainId: TEST_CHAIN_ID,
    provider,
    publicClient,
    accounts,
    privateKeys,
    deployer,
    hubSigner,
    protocol,
    walletFor,
    usdc: { address: usdcAddress, ...usdc },
    settlement,
    rpcUrl: server?.url,
    usdcBalance: (address) => publicClient.readContract({ address: usdcAddress, abi: testUsdcAbi, functionName: "balanceOf", args: [address] }),
    async snapshot() {
      const id = await provider.request({ method: "evm_snapshot", params: [] });
      return async () => {
        const ok = await provider.request({ method: "evm_revert", params: [id] });
        if (!ok) throw new Error(`evm_revert ${id} failed`);
      };
    },
    async stop() {
      await server?.close();
      await provider.disconnect();
    },
  };
}

/**
 * Gives ganache's errors for methods it lacks (it throws a bare "The method X does not
 * exist/is not available") the JSON-RPC code -32601, so viem treats them as "method not
 * found": it does not retry them and falls back at once (viem first tries
 * `eth_fillTransaction`, which ganache 7.9 lacks, before every transaction).
 */
function withRpcCode(err: unknown): unknown {
  if (err instanceof Error && !("code" in err) && /does not exist\/is not available/.test(err.message)) {
    return Object.assign(new Error(err.message), { code: -32601 });
  }
  return err;
}

/** A JSON-RPC endpoint in front of a provider. */
export interface RpcServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Serves `provider` as HTTP JSON-RPC on a free loopback port, so child processes can reach the
 * in-process chain. Handles single and batch requests.
 */
export async function serveRpc(provider: EthereumProvider): Promise<RpcServer> {
  type Call = { id?: unknown; method?: unknown; params?: unknown };
  const answer = async (call: Call) => {
    const id = call.id ?? null;
    try {
      if (typeof call.method !== "string") throw Object.assign(new Error("invalid request"), { code: -32600 });
      const result = await provider.request({ method: call.method, params: call.params ?? [] } as never);
      return { jsonrpc: "2.0", id, result: result ?? null };
    } catch (caught) {
      const err = withRpcCode(caught);
      const e = err as { code?: unknown; message?: unknown; data?: unknown };
      return {
        jsonrpc: "2.0",
        id,
        error: { code: typeof e.code === "number" ? e.code : -32603, message: String(e.message ?? err), ...(e.data === undefined ? {} : { data: e.data }) },
      };
    }
  };
  const server = createServer((req, res) => {
    void (async () => {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } }));
        return;
      }
      const reply = Array.isArray(body) ? await Promise.all(body.map((c) => answer(c as Call))) : await answer(body as Call);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(reply, (_k, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
