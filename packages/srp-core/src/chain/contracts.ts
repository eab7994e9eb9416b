import {
  getAddress,
  isAddressEqual,
  parseSignature,
  toHex,
  type Abi,
  type Account,
  type Address,
  type Chain,
  type Hash,
  type Hex,
  type LocalAccount,
} from "viem";
import { randomBytes } from "../encoding.js";
import { srpSettlementAbi, srpSettlementBytecode, testUsdcAbi, testUsdcBytecode } from "./artifacts.js";
import {
  eip3009Domain,
  payoutTypes,
  settlementDomain,
  transferWithAuthorizationTypes,
  type Eip3009Token,
  type TransferAuthorization,
} from "./typed-data.js";

/** The deployment request the helpers make of a wallet. */
export interface DeployRequest {
  /** The contract's ABI. */
  abi: Abi;
  /** Its creation bytecode. */
  bytecode: Hex;
  /** Constructor arguments. */
  args: readonly unknown[];
  /** The deploying account. */
  account: Account;
  /** The chain to deploy on (checked against the node's). */
  chain: Chain | undefined;
}

/**
 * What the deploy helpers need of a wallet: an account and `deployContract`. A viem
 * `WalletClient` with an account attached fits.
 */
export interface DeployWallet {
  /** The account that deploys, and becomes owner. */
  readonly account: Account;
  /** The wallet's chain, if it has one. */
  readonly chain: Chain | undefined;
  /** Sends the deployment transaction; resolves to its hash. */
  deployContract(request: DeployRequest): Promise<Hash>;
}

/** What the deploy helpers need of a public client: waiting for receipts. A viem `PublicClient` fits. */
export interface ReceiptClient {
  /** Resolves once the transaction `hash` is mined. */
  waitForTransactionReceipt(request: {
    hash: Hash;
  }): Promise<{ status: "success" | "reverted"; contractAddress?: Address | null | undefined }>;
}

/** Options of {@link deployTestUsdc}. */
export interface TestUsdcOptions {
  /** EIP-712 domain name and token name; defaults to "USD Coin" (as USDC). */
  name?: string;
  /** EIP-712 domain version; defaults to "2" (as USDC). */
  version?: string;
}

/** Constructor arguments of SrpSettlement. */
export interface SettlementOptions {
  /** The ERC-20 token it pays in. */
  token: Address;
  /** The hub key whose vouchers it honours. */
  signer: Address;
  /** The recipient of the protocol's share. */
  protocol: Address;
}

/** A voucher to sign: pay `payee` up to the cumulative `total` from `settlement` on `chainId`. */
export interface PayoutVoucher {
  /** The chain the settlement contract lives on. */
  chainId: number | bigint;
  /** The SrpSettlement contract. */
  settlement: Address;
  /** The provider being paid. */
  payee: Address;
  /** The cumulative amount owed to the provider so far. */
  total: bigint;
}

async function deployedAddress(publicClient: ReceiptClient, hash: Hash, what: string): Promise<Address> {
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success" || !receipt.contractAddress) throw new Error(`${what} deployment failed (transaction ${hash})`);
  return getAddress(receipt.contractAddress);
}

/**
 * Deploys TestUSDC, the test stand-in for USDC (tests and local networks only), from
 * `wallet`'s account, which becomes the only account allowed to mint. Resolves to the
 * contract address once the deployment is mined.
 */
export async function deployTestUsdc(wallet: DeployWallet, publicClient: ReceiptClient, options: TestUsdcOptions = {}): Promise<Address> {
  const hash = await wallet.deployContract({
    abi: testUsdcAbi,
    bytecode: testUsdcBytecode,
    args: [options.name ?? "USD Coin", options.version ?? "2"],
    account: wallet.account,
    chain: wallet.chain,
  });
  return deployedAddress(publicClient, hash, "TestUSDC");
}

/**
 * Deploys SrpSettlement from `wallet`'s account, which becomes its owner. Resolves to the
 * contract address once the deployment is mined.
 */
export async function deploySettlement(wallet: DeployWallet, publicClient: ReceiptClient, options: SettlementOptions): Promise<Address> {
  const hash = await wallet.deployContract({
    abi: srpSettlementAbi,
    bytecode: srpSettlementBytecode,
    args: [options.token, options.signer, options.protocol],
    account: wallet.account,
    chain: wallet.chain,
  });
  return deployedAddress(publicClient, hash, "SrpSettlement");
}

/** Signs an SrpSettlement `Payout` voucher with the hub key; returns the 65-byte signature. */
export function signPayout(account: LocalAccount, voucher: PayoutVoucher): Promise<Hex> {
  return account.signTypedData({
    domain: settlementDomain(voucher.chainId, voucher.settlement),
    types: payoutTypes,
    primaryType: "Payout",
    message: { payee: voucher.payee, total: voucher.total },
  });
}

/**
 * Signs an EIP-3009 `TransferWithAuthorization` for `token`; returns the 65-byte signature.
 * `account` must be `auth.from`.
 */
export function signTransferAuthorization(account: LocalAccount, token: Eip3009Token, auth: TransferAuthorization): Promise<Hex> {
  if (!isAddressEqual(account.address, auth.from)) throw new Error("the signing account is not the authorization's `from`");
  return account.signTypedData({
    domain: eip3009Domain(token),
    types: transferWithAuthorizationTypes,
    primaryType: "TransferWithAuthorization",
    message: auth,
  });
}

/** Splits a 65-byte `r || s || v` signature into the `v` (27 or 28), `r`, `s` that contracts take. */
export function splitSignature(signature: Hex): { v: number; r: Hex; s: Hex } {
  const { r, s, yParity } = parseSignature(signature);
  return { v: 27 + yParity, r, s };
}

/** A fresh random 32-byte EIP-3009 authorization nonce. */
export function authorizationNonce(): Hex {
  return toHex(randomBytes(32));
}
