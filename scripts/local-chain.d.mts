// Types of scripts/local-chain.mjs (plain ESM, so that `npm start -- --chain` runs it with plain `node`).
import type { EthereumProvider } from "ganache";
import type { Address, Chain, CustomTransport, Hex, PrivateKeyAccount, PublicClient, WalletClient } from "viem";

/** The chain id of the test chain. */
export declare const TEST_CHAIN_ID: 1337;

/** The viem chain definition of the test chain (its RPC URL is a placeholder: clients use the in-process provider). */
export declare const testChain: Chain & { id: 1337 };

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
  /** The RPC server's port when serving; default any free port. */
  port?: number;
  /** The chain id; default 1337 ({@link TEST_CHAIN_ID}). 84532 (x402 version 1's `base-sepolia`) lets version-1 clients pay. */
  chainId?: number;
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
export declare function startChain(options?: ChainOptions): Promise<TestChain>;

/** A JSON-RPC endpoint in front of a provider. */
export interface RpcServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  close(): Promise<void>;
}

/** Serves `provider` as HTTP JSON-RPC on a loopback port (any free one unless given), single and batch requests. */
export declare function serveRpc(provider: EthereumProvider, options?: { port?: number }): Promise<RpcServer>;
