/**
 * x402's `exact` scheme on Solana as pure functions: what a hub offers (an SPL token
 * `TransferChecked` to the treasury's associated token account, fees paid by the hub's fee
 * payer), and every check of a payment that needs no chain state, in the order of the
 * Solana rules of spec/v1/payments.md, each failure with its own error code. No I/O and no
 * keys here: co-signing as fee payer (which fixes the transaction's signature, the
 * payment's one-time id) is the rail's (`svm-rail.ts`).
 */
import { SrpError } from "@srp/core";
import { sameRequirements, X402_VERSION, type PaymentPayload, type PaymentRequirements } from "@srp/core/x402";
import {
  address,
  getBase58Decoder,
  getBase64Encoder,
  getCompiledTransactionMessageDecoder,
  getPublicKeyFromAddress,
  getTransactionDecoder,
  verifySignature,
  type Address,
  type ReadonlyUint8Array,
  type SignatureBytes,
  type Transaction,
} from "@solana/kit";
import {
  COMPUTE_BUDGET_PROGRAM_ADDRESS,
  getSetComputeUnitLimitInstructionDataDecoder,
  getSetComputeUnitPriceInstructionDataDecoder,
  SET_COMPUTE_UNIT_LIMIT_DISCRIMINATOR,
  SET_COMPUTE_UNIT_PRICE_DISCRIMINATOR,
} from "@solana-program/compute-budget";
import {
  findAssociatedTokenPda,
  getTransferCheckedInstructionDataDecoder,
  TOKEN_PROGRAM_ADDRESS,
  TRANSFER_CHECKED_DISCRIMINATOR,
} from "@solana-program/token";

/** The CAIP-2 ids of the public Solana clusters (`solana:` and the genesis hash's first 32 characters). */
export const SOLANA_NETWORKS = Object.freeze({
  mainnet: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
  devnet: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
  testnet: "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
});

/** The SPL Token program. */
export const SPL_TOKEN_PROGRAM = TOKEN_PROGRAM_ADDRESS as string;
/** The SPL Token-2022 program (same `TransferChecked` layout). */
export const SPL_TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
/** The Memo program: a payment may carry memo instructions after its transfer. */
export const MEMO_PROGRAM = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr";
/**
 * The Lighthouse program (wallet-added assertions). Refused: an assertion on the clock or
 * on balances can pass the hub's simulation and fail once landed, and the hub's fee payer
 * would pay for a transfer that never happened.
 */
export const LIGHTHOUSE_PROGRAM = "L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95";

/**
 * How long a payment can settle after it arrives, in seconds: a Solana transaction is
 * valid for 150 blocks after its blockhash (about a minute), and the payer fetched that
 * blockhash before paying. A payment's lock expires this long after it was checked.
 */
export const BLOCKHASH_LIFETIME_SECONDS = 90;
/**
 * Default cap on the compute-unit price a payment may set, in micro-lamports per unit: with
 * {@link MAX_COMPUTE_UNIT_LIMIT}, a priority fee of at most 4 000 lamports, which the hub's
 * fee payer pays (x402 itself allows 5 000 000).
 */
export const MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS = 100_000n;
/** Default cap on the compute-unit limit a payment may set (a `TransferChecked` and a memo need a few thousand; clients ask 20 000). */
export const MAX_COMPUTE_UNIT_LIMIT = 40_000;
/** Largest transaction Solana carries, in bytes. */
export const MAX_TRANSACTION_BYTES = 1232;

/** What a hub offers Solana payers. */
export interface SvmTerms {
  /** CAIP-2 id of the cluster (see {@link SOLANA_NETWORKS}). */
  network: string;
  /** The token's mint (the offer's `asset`). */
  mint: string;
  /** The mint's decimals (6 for USDC): `TransferChecked` must name them. */
  decimals: number;
  /** The program that owns the mint: SPL Token (default) or Token-2022 (then only mints without transfer fees). */
  tokenProgram?: string;
  /** The treasury's owner address (the offer's `payTo`); payments go to its associated token account. */
  payTo: string;
  /** The hub's fee payer address (the offer's `extra.feePayer`). */
  feePayer: string;
  /** `maxTimeoutSeconds` offered. */
  maxTimeoutSeconds: number;
  /** Highest compute-unit price accepted, in micro-lamports (default {@link MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS}). */
  maxComputeUnitPrice?: bigint;
  /** Highest compute-unit limit accepted (default {@link MAX_COMPUTE_UNIT_LIMIT}). */
  maxComputeUnitLimit?: number;
}

/**
 * The requirements a hub offers on Solana for a request that may cost up to `amount`.
 * They hold no blockhash and no memo, so the same amount always gives the same offer and a
 * payment's `accepted` is compared with it by deep equality.
 */
export function svmRequirements(terms: SvmTerms, amount: bigint): PaymentRequirements {
  if (amount < 0n) throw new RangeError("amount must be non-negative");
  return {
    scheme: "exact",
    network: terms.network,
    amount: amount.toString(),
    asset: terms.mint,
    payTo: terms.payTo,
    maxTimeoutSeconds: terms.maxTimeoutSeconds,
    extra: { feePayer: terms.feePayer },
  };
}

/** A Solana payment that passed every stateless check: the transfer it makes and the transaction that makes it. */
export interface CheckedSvmPayment {
  requirements: PaymentRequirements;
  /** The payer's partially signed transaction (the fee payer's slot still empty). */
  transaction: Transaction;
  /** The transfer's authority: the paying wallet (base58). */
  payer: string;
  /** The token account paid from. */
  source: string;
  /** The token account paid to: the treasury's associated token account. */
  destination: string;
  amount: bigint;
  /** The transaction's recent blockhash (its lifetime). */
  blockhash: string;
}

/** The payer's transaction of a payment, as sent (`payload.transaction`), with its compiled message. */
interface Decoded {
  transaction: Transaction;
  message: ReturnType<ReturnType<typeof getCompiledTransactionMessageDecoder>["decode"]>;
}

const invalid = (why: string) => new SrpError("payment.invalid", `payload is not an exact Solana payment: ${why}`);

/** Decodes `payload.transaction` (standard base64 of one wire transaction), or says why it is not one. */
export function decodeSvmTransaction(payment: Pick<PaymentPayload, "payload">): Decoded | SrpError {
  const b64 = payment.payload.transaction;
  if (typeof b64 !== "string" || b64.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return invalid("`transaction` is not base64");
  if (Math.ceil(b64.length / 4) * 3 > MAX_TRANSACTION_BYTES + 3) return invalid(`the transaction exceeds ${MAX_TRANSACTION_BYTES} bytes`);
  try {
    const wire = getBase64Encoder().encode(b64);
    if (wire.length > MAX_TRANSACTION_BYTES) return invalid(`the transaction exceeds ${MAX_TRANSACTION_BYTES} bytes`);
    const [transaction, end] = getTransactionDecoder().read(wire, 0);
    if (end !== wire.length) return invalid("trailing bytes after the transaction");
    const message = getCompiledTransactionMessageDecoder().decode(transaction.messageBytes);
    const version: unknown = message.version;
    if (version !== "legacy" && version !== 0) return invalid(`message version ${String(version)}`);
    return { transaction, message };
  } catch {
    return invalid("`transaction` does not decode as a Solana transaction");
  }
}

/** One instruction of a compiled message, with its program and accounts resolved to addresses. */
interface Ix {
  program: string;
  accounts: string[];
  data: ReadonlyUint8Array;
}

/** The instructions of a message (which uses no lookup tables), resolved; undefined when an index is out of range. */
function instructionsOf(message: Decoded["message"]): Ix[] | undefined {
  const keys = message.staticAccounts as readonly string[];
  const out: Ix[] = [];
  for (const ix of message.instructions) {
    const program = keys[ix.programAddressIndex];
    const accounts = (ix.accountIndices ?? []).map((i) => keys[i]);
    if (program === undefined || accounts.some((a) => a === undefined)) return undefined;
    out.push({ program, accounts: accounts as string[], data: ix.data ?? new Uint8Array() });
  }
  return out;
}

/** The transfer a payment's transaction makes, read from its layout without judging it. */
interface Transfer {
  source: string;
  mint: string;
  destination: string;
  authority: string;
  amount: bigint;
  decimals: number;
  program: string;
}

/** The `TransferChecked` at instruction 2, or why the instruction layout is not x402's. */
function layoutOf(instructions: Ix[], terms: SvmTerms): Transfer | string {
  if (instructions.length < 3 || instructions.length > 6) return `it has ${instructions.length} instructions; 3 to 6 are allowed`;
  const [limit, price, transfer] = instructions as [Ix, Ix, Ix];
  if (limit.program !== COMPUTE_BUDGET_PROGRAM_ADDRESS || limit.data[0] !== SET_COMPUTE_UNIT_LIMIT_DISCRIMINATOR || limit.data.length !== 5)
    return "instruction 0 is not SetComputeUnitLimit";
  if (price.program !== COMPUTE_BUDGET_PROGRAM_ADDRESS || price.data[0] !== SET_COMPUTE_UNIT_PRICE_DISCRIMINATOR || price.data.length !== 9)
    return "instruction 1 is not SetComputeUnitPrice";
  const units = getSetComputeUnitLimitInstructionDataDecoder().decode(limit.data).units;
  const maxUnits = terms.maxComputeUnitLimit ?? MAX_COMPUTE_UNIT_LIMIT;
  if (units > maxUnits) return `its compute-unit limit ${units} is above ${maxUnits}`;
  const microLamports = getSetComputeUnitPriceInstructionDataDecoder().decode(price.data).microLamports;
  const maxPrice = terms.maxComputeUnitPrice ?? MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS;
  if (microLamports > maxPrice) return `its compute-unit price ${microLamports} micro-lamports is above ${maxPrice}`;
  const tokenProgram = terms.tokenProgram ?? SPL_TOKEN_PROGRAM;
  if (transfer.program !== tokenProgram || transfer.data[0] !== TRANSFER_CHECKED_DISCRIMINATOR || transfer.data.length !== 10)
    return `instruction 2 is not a TransferChecked of the token program ${tokenProgram}`;
  if (transfer.accounts.length !== 4) return "the TransferChecked must name exactly source, mint, destination and authority";
  for (const [i, ix] of instructions.slice(3).entries())
    if (ix.program !== MEMO_PROGRAM) return `instruction ${i + 3} (program ${ix.program}) is not a Memo`;
  const data = getTransferCheckedInstructionDataDecoder().decode(transfer.data);
  const [source, mint, destination, authority] = transfer.accounts as [string, string, string, string];
  return { source, mint, destination, authority, amount: data.amount, decimals: data.decimals, program: transfer.program };
}

/** Whether a signature slot holds no signature (absent, or all zeros as wallets leave it). */
function unsigned(sig: SignatureBytes | null | undefined): boolean {
  return !sig || sig.every((b) => b === 0);
}

/**
 * Checks a Solana payment against the requirements offered for this request, in the
 * spec's order: version and scheme, network, the echoed requirements (deep equality), the
 * transaction's encoding, its instruction layout and signers, the fee payer, the token,
 * the recipient, the amount, and the payer's signature. Returns the checked payment or
 * the error. Whether the payer can pay, and whether the transaction is still unused and
 * within its blockhash's lifetime, are the chain's to say (the rail's preflight).
 */
export async function checkSvmPayment(
  payment: PaymentPayload,
  offered: PaymentRequirements,
  terms: SvmTerms,
): Promise<CheckedSvmPayment | SrpError> {
  if (payment.x402Version !== X402_VERSION)
    return new SrpError("payment.invalid", `x402Version ${String(payment.x402Version)} is not supported; use 2`);
  const a = payment.accepted;
  if (a.scheme !== "exact") return new SrpError("payment.wrong_network", `scheme ${a.scheme} is not accepted; use exact`);
  if (a.network !== terms.network)
    return new SrpError("payment.wrong_network", `network ${a.network} is not accepted; pay on ${terms.network}`);
  if (!sameRequirements(a, offered)) {
    return new SrpError("payment.requirements_mismatch", "`accepted` differs from the requirements this hub offers for this request", {
      details: { offered },
    });
  }
  const decoded = decodeSvmTransaction(payment);
  if (decoded instanceof SrpError) return decoded;
  const { transaction, message } = decoded;
  if (message.version === 0 && (message.addressTableLookups?.length ?? 0) > 0) return invalid("address lookup tables are not accepted");
  const instructions = instructionsOf(message);
  if (!instructions) return invalid("an instruction names an account the message does not list");
  const transfer = layoutOf(instructions, terms);
  if (typeof transfer === "string") return invalid(transfer);
  const keys = message.staticAccounts as readonly string[];
  if (message.header.numSignerAccounts !== 2 || keys[1] !== transfer.authority)
    return invalid("exactly two accounts must sign: the fee payer (account 0) and the transfer's authority (account 1)");

  const feePayer = String(offered.extra?.feePayer ?? "");
  if (keys[0] !== feePayer)
    return new SrpError("payment.wrong_fee_payer", `the transaction's fee payer is ${keys[0]}; it must be the offered ${feePayer}`);
  if (!unsigned(transaction.signatures[feePayer as Address]))
    return new SrpError("payment.wrong_fee_payer", "the fee payer's signature slot must be empty: the hub signs it when it settles");
  if (instructions.some((ix) => ix.accounts.includes(feePayer)))
    return new SrpError(
      "payment.wrong_fee_payer",
      "the fee payer may only pay fees: no instruction may name it (as source, authority or any account)",
    );

  const tokenProgram = terms.tokenProgram ?? SPL_TOKEN_PROGRAM;
  if (transfer.mint !== offered.asset)
    return new SrpError("payment.wrong_asset", `the transfer moves the token ${transfer.mint}, not the offered ${offered.asset}`);
  if (transfer.decimals !== terms.decimals)
    return new SrpError("payment.wrong_asset", `the transfer names ${transfer.decimals} decimals; the mint has ${terms.decimals}`);
  const [treasuryAccount] = await findAssociatedTokenPda({
    owner: address(offered.payTo),
    mint: address(offered.asset),
    tokenProgram: address(tokenProgram),
  });
  if (transfer.destination !== treasuryAccount)
    return new SrpError(
      "payment.wrong_recipient",
      `the transfer pays ${transfer.destination}, not the treasury's token account ${treasuryAccount} (owner ${offered.payTo})`,
    );
  if (transfer.amount !== BigInt(offered.amount))
    return new SrpError(
      "payment.wrong_amount",
      `the transfer is for ${transfer.amount} units; this request requires exactly ${offered.amount}`,
    );

  const signature = transaction.signatures[transfer.authority as Address];
  if (unsigned(signature) || !(await signedBy(transfer.authority, signature as SignatureBytes, transaction.messageBytes)))
    return new SrpError("payment.bad_signature", `the transaction is not signed by the transfer's authority ${transfer.authority}`);
  return {
    requirements: offered,
    transaction,
    payer: transfer.authority,
    source: transfer.source,
    destination: transfer.destination,
    amount: transfer.amount,
    blockhash: message.lifetimeToken,
  };
}

/** Whether `signature` is `signer`'s Ed25519 signature of `message`. */
async function signedBy(signer: string, signature: SignatureBytes, message: ReadonlyUint8Array): Promise<boolean> {
  try {
    return await verifySignature(await getPublicKeyFromAddress(address(signer)), signature, message);
  } catch {
    return false;
  }
}

/**
 * The transfer a stored payment makes (payer, amount, blockhash), read without checks, for
 * a payment that passed {@link checkSvmPayment} when it arrived; undefined when the
 * document holds no transaction of x402's layout.
 */
export function svmTransferOf(
  payment: Pick<PaymentPayload, "payload">,
): { transaction: Transaction; payer: string; source: string; amount: bigint; blockhash: string } | undefined {
  const decoded = decodeSvmTransaction(payment);
  if (decoded instanceof SrpError) return undefined;
  const instructions = instructionsOf(decoded.message);
  const transfer = instructions?.[2];
  if (!transfer || transfer.accounts.length !== 4 || transfer.data.length !== 10 || transfer.data[0] !== TRANSFER_CHECKED_DISCRIMINATOR)
    return undefined;
  const data = getTransferCheckedInstructionDataDecoder().decode(transfer.data);
  return {
    transaction: decoded.transaction,
    payer: transfer.accounts[3] as string,
    source: transfer.accounts[0] as string,
    amount: data.amount,
    blockhash: decoded.message.lifetimeToken,
  };
}

/** Base58 of bytes (a transaction signature as Solana names it). */
export function base58(bytes: ReadonlyUint8Array): string {
  return getBase58Decoder().decode(bytes);
}
