import { describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { getBase58Decoder } from "@solana/kit";
import { UsageError } from "@srp/core/node";
import { SOLANA_NETWORKS } from "./payments/svm-check.js";
import { parseFeePayerKey, SOLANA_MAINNET_USDC, solanaRails, solanaTerms, type SolanaFlags } from "./solana-flags.js";

/** A 64-byte Ed25519 secret key (seed, then public key), as solana-keygen writes it. */
function secretKey(): Uint8Array {
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  return new Uint8Array([...Buffer.from(jwk.d as string, "base64url"), ...Buffer.from(jwk.x as string, "base64url")]);
}

const key = secretKey();
const TREASURY = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
const noFiles = () => undefined;
const base: SolanaFlags = { "chain-rpc": "http://127.0.0.1:8545", "solana-rpc": "http://127.0.0.1:8899", "solana-treasury": TREASURY };
const env = { SRP_SOLANA_FEE_PAYER: JSON.stringify([...key]) };
const usage = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error("no usage error");
};

describe("parseFeePayerKey", () => {
  it("reads a JSON array, base58 of the 64 bytes, or a solana-keygen file, all to the same key", () => {
    expect(parseFeePayerKey(JSON.stringify([...key]), "K", noFiles)).toEqual(key);
    expect(parseFeePayerKey(getBase58Decoder().decode(key), "K", noFiles)).toEqual(key);
    const files: Record<string, string> = { "/keys/fee.json": `${JSON.stringify([...key])}\n` };
    expect(parseFeePayerKey("/keys/fee.json", "K", (p) => files[p])).toEqual(key);
  });

  it("refuses a wrong length, bytes out of range, and a path that cannot be read, naming where the key came from", () => {
    expect(usage(() => parseFeePayerKey(JSON.stringify([...key.subarray(0, 32)]), "K", noFiles))).toMatch(/^K holds 32 bytes/);
    expect(usage(() => parseFeePayerKey(getBase58Decoder().decode(key.subarray(0, 48)), "K", noFiles))).toMatch(/^K holds 48 bytes/);
    expect(usage(() => parseFeePayerKey("[1, 300]", "K", noFiles))).toMatch(/byte values 0\.\.255/);
    expect(usage(() => parseFeePayerKey("./missing.json", "K", noFiles))).toMatch(/nor a readable key file: \.\/missing\.json/);
    expect(usage(() => parseFeePayerKey("/k.json", "K", () => "[1,2,3]"))).toMatch(/^K \(the file \/k\.json\) holds 3 bytes/);
  });
});

describe("solanaTerms", () => {
  it("defaults to mainnet USDC with 6 decimals; the flag's key wins over the environment's", () => {
    const other = secretKey();
    const terms = solanaTerms({ ...base, "solana-fee-payer-key": JSON.stringify([...other]) }, env, noFiles);
    expect(terms).toMatchObject({ network: SOLANA_NETWORKS.mainnet, mint: SOLANA_MAINNET_USDC, decimals: 6, payTo: TREASURY });
    expect(terms!.feePayer).toEqual(other);
    expect(solanaTerms(base, env, noFiles)!.feePayer).toEqual(key);
  });

  it("is off without --solana-rpc, and refuses its other flags then, or --solana-rpc without the EVM flags", () => {
    expect(solanaTerms({}, env, noFiles)).toBeUndefined();
    expect(usage(() => solanaTerms({ "solana-mint": SOLANA_MAINNET_USDC }, env, noFiles))).toMatch(/--solana-mint needs --solana-rpc/);
    expect(usage(() => solanaTerms({ ...base, "chain-rpc": undefined }, env, noFiles))).toMatch(/needs the EVM x402 flags too/);
  });

  it("refuses each bad value with the flag's name", () => {
    const bad: Array<[SolanaFlags, RegExp]> = [
      [{ ...base, "solana-rpc": "ws://x" }, /--solana-rpc is the cluster's JSON-RPC URL/],
      [{ ...base, "solana-network": "solana:devnet" }, /--solana-network is a CAIP-2 id/],
      [{ ...base, "solana-network": SOLANA_NETWORKS.devnet }, /--solana-mint is required on solana:EtWT/],
      [{ ...base, "solana-mint": "0xabc" }, /--solana-mint is a base58 Solana address/],
      [{ ...base, "solana-decimals": "six" }, /--solana-decimals is the mint's decimals/],
      [{ ...base, "solana-decimals": "9" }, /--solana-decimals 9: .* must have 6 decimals/],
      [{ ...base, "solana-treasury": undefined }, /--solana-treasury is a base58 Solana address/],
    ];
    for (const [flags, says] of bad) expect(usage(() => solanaTerms(flags, env, noFiles))).toMatch(says);
    expect(usage(() => solanaTerms(base, {}, noFiles))).toMatch(/SRP_SOLANA_FEE_PAYER \(preferred\) or --solana-fee-payer-key/);
  });

  it("takes the treasury owner's key for refunds from SRP_SOLANA_TREASURY_KEY, only the --solana-treasury owner's", () => {
    const owner = secretKey();
    const ownerAddress = getBase58Decoder().decode(owner.subarray(32));
    const flags = { ...base, "solana-treasury": ownerAddress };
    const withKey = { ...env, SRP_SOLANA_TREASURY_KEY: getBase58Decoder().decode(owner) };
    expect(solanaTerms(flags, withKey, noFiles)!.treasurySigner).toEqual(owner);
    expect(solanaTerms(flags, env, noFiles)!.treasurySigner).toBeUndefined();
    expect(solanaRails(flags, withKey)[0]!.refunds).toBeDefined();
    expect(solanaRails(flags, env)[0]!.refunds).toBeUndefined();
    expect(usage(() => solanaTerms(base, withKey, noFiles))).toMatch(/SRP_SOLANA_TREASURY_KEY is the key of .*, not of the treasury owner/);
    expect(usage(() => solanaTerms(flags, { ...env, SRP_SOLANA_TREASURY_KEY: "[1,2]" }, noFiles))).toMatch(
      /^SRP_SOLANA_TREASURY_KEY holds 2 bytes/,
    );
  });

  it("builds the rail, and refuses a key whose public half is not its seed's", () => {
    expect(solanaRails(base, env).map((r) => r.network)).toEqual([SOLANA_NETWORKS.mainnet]);
    const broken = Uint8Array.from(key);
    broken[40] = (broken[40]! + 1) % 256;
    expect(usage(() => solanaRails(base, { SRP_SOLANA_FEE_PAYER: JSON.stringify([...broken]) }))).toMatch(
      /the Solana fee payer's key: .*does not match/,
    );
  });
});
