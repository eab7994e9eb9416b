/**
 * `srp-hub serve`'s Solana flags (`--solana-rpc`, `--solana-network`, `--solana-mint`,
 * `--solana-decimals`, `--solana-treasury`, and the fee payer's key from
 * `--solana-fee-payer-key` or `SRP_SOLANA_FEE_PAYER`, and the treasury owner's key for refunds
 * from `SRP_SOLANA_TREASURY_KEY`): pure parsing into the terms of the
 * Solana payment rail (`payments/svm-rail.ts`, spec/v1/payments.md "Solana"), and a thin
 * adapter that builds the rail over the cluster's JSON-RPC. A bad value is a usage error
 * that names the flag.
 */
import { readFileSync } from "node:fs";
import { getBase58Decoder, getBase58Encoder, isAddress } from "@solana/kit";
import { UsageError } from "@srp/core/node";
import type { PaymentRail } from "./payments/rail.js";
import { rpcSvmChain } from "./payments/svm-chain.js";
import { SOLANA_NETWORKS } from "./payments/svm-check.js";
import { svmRail, type SvmRailOptions } from "./payments/svm-rail.js";

/** USDC's mint on Solana mainnet: `--solana-mint`'s default there (and only there). */
export const SOLANA_MAINNET_USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";

/** The decimals of the token the hub prices in: its atomic unit is the ledger's (1 = 0.000001 USD). */
const LEDGER_DECIMALS = 6;

/** The Solana flags of `serve`, as `parseArgs` gives them (and whether the EVM flags turned x402 on). */
export interface SolanaFlags {
  "chain-rpc"?: string | undefined;
  "solana-rpc"?: string | undefined;
  "solana-network"?: string | undefined;
  "solana-mint"?: string | undefined;
  "solana-decimals"?: string | undefined;
  "solana-treasury"?: string | undefined;
  "solana-fee-payer-key"?: string | undefined;
  "solana-min-amount"?: string | undefined;
}

/** What the Solana flags come to: the rail's terms and the cluster's JSON-RPC URL. */
export interface SolanaTerms extends Omit<SvmRailOptions, "chain" | "feePayer" | "treasurySigner"> {
  /** The cluster's JSON-RPC URL. */
  rpcUrl: string;
  /** The fee payer's 64-byte secret key (seed, then public key). */
  feePayer: Uint8Array;
  /** The treasury owner's 64-byte secret key, which pays refunds on Solana; absent: no Solana refunds. */
  treasurySigner?: Uint8Array;
}

/** The flags that mean nothing without `--solana-rpc`. */
const DEPENDENT = [
  "solana-network",
  "solana-mint",
  "solana-decimals",
  "solana-treasury",
  "solana-fee-payer-key",
  "solana-min-amount",
] as const;

const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;

/** 64 bytes from the numbers of a JSON array (solana-keygen's file format), or a usage error. */
function keyFromJson(text: string, what: string): Uint8Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${what} is not valid JSON: expected an array of 64 numbers (a solana-keygen key file)`);
  }
  if (!Array.isArray(parsed) || !parsed.every((n) => Number.isInteger(n) && n >= 0 && n <= 255))
    throw new UsageError(`${what} must be an array of byte values 0..255 (a solana-keygen key file)`);
  return Uint8Array.from(parsed as number[]);
}

/**
 * The fee payer's secret key from its text: a JSON array of 64 numbers (what `solana-keygen`
 * writes), base58 of the 64 bytes, or the path of a `solana-keygen` JSON file. Checks the
 * length; that the public half matches the seed is the rail's check.
 */
export function parseFeePayerKey(text: string, what: string, readFile: (path: string) => string | undefined): Uint8Array {
  const trimmed = text.trim();
  let key: Uint8Array;
  let source = what;
  if (trimmed.startsWith("[")) key = keyFromJson(trimmed, what);
  else if (BASE58.test(trimmed) && trimmed.length >= 64) key = Uint8Array.from(getBase58Encoder().encode(trimmed));
  else {
    const file = readFile(trimmed);
    if (file === undefined)
      throw new UsageError(`${what} is neither a JSON array of 64 numbers, base58 of 64 bytes, nor a readable key file: ${trimmed}`);
    source = `${what} (the file ${trimmed})`;
    key = keyFromJson(file.trim(), source);
  }
  if (key.length !== 64)
    throw new UsageError(
      `${source} holds ${key.length} bytes; a Solana key pair is 64 (the seed, then the public key, as solana-keygen writes it)`,
    );
  return key;
}

/** A base58 Solana address, or a usage error naming the flag. */
function addressFlag(value: string | undefined, flag: string): string {
  if (value === undefined || !isAddress(value)) throw new UsageError(`${flag} is a base58 Solana address, got ${JSON.stringify(value)}`);
  return value;
}

/** An http(s) URL, or a usage error naming the flag. */
function urlFlag(value: string, flag: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:"))
    throw new UsageError(`${flag} is the cluster's JSON-RPC URL (http:// or https://), got ${JSON.stringify(value)}`);
  return value;
}

/**
 * The Solana terms of `serve`'s flags (pure but for `readFile`); undefined without
 * `--solana-rpc`. Solana is offered beside the EVM network, never alone: the hub's x402 needs
 * `--chain-rpc` and its flags too. The fee payer's key comes from `--solana-fee-payer-key`, else
 * `env.SRP_SOLANA_FEE_PAYER`; the treasury owner's key (optional: refunds to Solana payers,
 * SRP-PAY-033) from `env.SRP_SOLANA_TREASURY_KEY`, in the same forms, and must be `--solana-treasury`'s.
 */
export function solanaTerms(
  flags: SolanaFlags,
  env: Record<string, string | undefined>,
  readFile: (path: string) => string | undefined,
): SolanaTerms | undefined {
  const rpc = flags["solana-rpc"];
  if (rpc === undefined) {
    const stray = DEPENDENT.find((f) => flags[f] !== undefined);
    if (stray) throw new UsageError(`--${stray} needs --solana-rpc URL: Solana x402 is on only when the cluster's RPC is given`);
    return undefined;
  }
  if (!flags["chain-rpc"])
    throw new UsageError(
      "--solana-rpc needs the EVM x402 flags too (--chain-rpc, --chain-id, --usdc, ...): a hub offers Solana beside its EVM network, not alone",
    );
  const rpcUrl = urlFlag(rpc, "--solana-rpc");
  const network = flags["solana-network"] ?? SOLANA_NETWORKS.mainnet;
  if (!/^solana:[1-9A-HJ-NP-Za-km-z]{32}$/.test(network))
    throw new UsageError(
      `--solana-network is a CAIP-2 id (solana: and 32 base58 characters of the genesis hash), got ${JSON.stringify(network)}`,
    );
  const givenMint = flags["solana-mint"];
  if (givenMint === undefined && network !== SOLANA_NETWORKS.mainnet)
    throw new UsageError(`--solana-mint is required on ${network}: USDC's mint is the default on mainnet only`);
  const mint = addressFlag(givenMint ?? SOLANA_MAINNET_USDC, "--solana-mint");
  const decimalsText = flags["solana-decimals"] ?? String(LEDGER_DECIMALS);
  if (!/^[0-9]{1,3}$/.test(decimalsText) || Number(decimalsText) > 255)
    throw new UsageError(`--solana-decimals is the mint's decimals (a whole number), got ${JSON.stringify(decimalsText)}`);
  if (Number(decimalsText) !== LEDGER_DECIMALS)
    throw new UsageError(
      `--solana-decimals ${decimalsText}: the hub prices in atomic units of 0.000001 USD, so the mint must have 6 decimals (USDC has)`,
    );
  const payTo = addressFlag(flags["solana-treasury"], "--solana-treasury");
  const keyText = flags["solana-fee-payer-key"] ?? env.SRP_SOLANA_FEE_PAYER;
  if (!keyText) throw new UsageError("Solana x402 needs the fee payer's key: SRP_SOLANA_FEE_PAYER (preferred) or --solana-fee-payer-key");
  const what = flags["solana-fee-payer-key"] !== undefined ? "--solana-fee-payer-key" : "SRP_SOLANA_FEE_PAYER";
  const feePayer = parseFeePayerKey(keyText, what, readFile);
  const treasuryText = env.SRP_SOLANA_TREASURY_KEY;
  let treasurySigner: Uint8Array | undefined;
  if (treasuryText) {
    treasurySigner = parseFeePayerKey(treasuryText, "SRP_SOLANA_TREASURY_KEY", readFile);
    const owner = getBase58Decoder().decode(treasurySigner.subarray(32));
    if (owner !== payTo)
      throw new UsageError(
        `SRP_SOLANA_TREASURY_KEY is the key of ${owner}, not of the treasury owner --solana-treasury ${payTo}: refunds are paid from the treasury's token account`,
      );
  }
  const minText = flags["solana-min-amount"];
  if (minText !== undefined && !/^(0|[1-9][0-9]{0,17})$/.test(minText))
    throw new UsageError(`--solana-min-amount is a whole number of atomic units (0.000001 USD), got ${JSON.stringify(minText)}`);
  return {
    rpcUrl,
    network,
    mint,
    decimals: LEDGER_DECIMALS,
    payTo,
    feePayer,
    ...(treasurySigner ? { treasurySigner } : {}),
    ...(minText !== undefined ? { minAmount: BigInt(minText) } : {}),
  };
}

/** Reads a key file, or undefined when there is none (or it cannot be read) at that path. */
function readKeyFile(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The payment rails `serve`'s Solana flags add to x402 (none without `--solana-rpc`). */
export function solanaRails(flags: SolanaFlags, env: Record<string, string | undefined> = process.env): PaymentRail[] {
  const terms = solanaTerms(flags, env, readKeyFile);
  if (!terms) return [];
  const { rpcUrl, ...options } = terms;
  try {
    return [svmRail({ ...options, chain: rpcSvmChain({ url: rpcUrl }) })];
  } catch (error) {
    // The rail refuses a key whose public half is not the seed's.
    const text = (error as Error).message;
    throw new UsageError(`the Solana ${text.includes("treasury") ? "treasury" : "fee payer"}'s key: ${text}`);
  }
}
