/**
 * The Solana reads and writes the Solana payment rail makes (`svm-rail.ts`), behind one
 * small interface, {@link SvmChain}, with two adapters: {@link rpcSvmChain} over a cluster's
 * JSON-RPC (production, `@solana/kit`), and {@link liteSvmChain} over an in-process LiteSVM
 * (tests and local hubs; the `litesvm` package is the embedder's, not a dependency here).
 * Adapters translate the chain's transaction errors into the few kinds the rail acts on,
 * and throw when the chain cannot be reached.
 */
import {
  createSolanaRpc,
  getBase64Decoder,
  getTransactionDecoder,
  isSolanaError,
  SOLANA_ERROR__INSTRUCTION_ERROR__CUSTOM,
  SOLANA_ERROR__JSON_RPC__SERVER_ERROR_SEND_TRANSACTION_PREFLIGHT_FAILURE,
  SOLANA_ERROR__TRANSACTION_ERROR__ALREADY_PROCESSED,
  SOLANA_ERROR__TRANSACTION_ERROR__BLOCKHASH_NOT_FOUND,
  SOLANA_ERROR__TRANSACTION_ERROR__INSUFFICIENT_FUNDS_FOR_FEE,
  type Address,
  type Base64EncodedWireTransaction,
  type Blockhash,
  type Signature,
} from "@solana/kit";

/** An account as the chain holds it. */
export interface SvmAccount {
  /** The program that owns it. */
  owner: string;
  lamports: bigint;
  data: Uint8Array;
}

/**
 * Why the chain refused or failed a transaction: it already processed it, its blockhash is
 * unknown (expired), the token transfer lacks funds, the fee payer cannot pay the fee, or
 * anything else.
 */
export type SvmTxErrorKind = "already_processed" | "blockhash_not_found" | "insufficient_funds" | "fee_payer_funds" | "failed";

/** What a simulation or a submission came to. */
export type SvmSubmitResult = { ok: true } | { ok: false; kind: SvmTxErrorKind; message: string };

/** A transaction's status on the chain: whether it is in a confirmed block, and its error when it failed there. */
export interface SvmSignatureStatus {
  /** In a block the cluster has confirmed (or finalized); false while only processed. */
  confirmed: boolean;
  /** The transaction's error, or null when it succeeded. */
  err: string | null;
}

/** The chain as the Solana rail uses it. Every method throws when the chain cannot be reached. */
export interface SvmChain {
  /** An account, or null when it does not exist. */
  getAccount(address: string): Promise<SvmAccount | null>;
  /** Simulates a fully signed wire transaction against the latest state. */
  simulate(transaction: Uint8Array): Promise<SvmSubmitResult>;
  /** Submits a fully signed wire transaction (a refusal in the node's own simulation is `ok: false`). */
  send(transaction: Uint8Array): Promise<SvmSubmitResult>;
  /** A transaction's status by its signature (base58), searched in history; null when the chain has not seen it. */
  signatureStatus(signature: string): Promise<SvmSignatureStatus | null>;
  /** Whether a transaction with this blockhash could still land (checked at the confirmed block). */
  isBlockhashValid(blockhash: string): Promise<boolean>;
  /** A recent blockhash (of the confirmed block), for a transaction the hub makes itself (a refund). */
  latestBlockhash(): Promise<string>;
}

/** The Token program's error code for a transfer above the balance. */
const TOKEN_INSUFFICIENT_FUNDS = 1;

/** The kind of a transaction error as JSON-RPC reports it (`"BlockhashNotFound"`, `{ InstructionError: [2, { Custom: 1 }] }`). */
export function svmTxErrorKind(err: unknown): SvmTxErrorKind {
  if (err === "AlreadyProcessed") return "already_processed";
  if (err === "BlockhashNotFound") return "blockhash_not_found";
  if (err === "InsufficientFundsForFee" || err === "InvalidAccountForFee") return "fee_payer_funds";
  const ix = (err as { InstructionError?: [number | bigint, unknown] } | null)?.InstructionError;
  // Kit's RPC delivers the numbers of an error as bigints, JSON as numbers.
  const custom = (ix?.[1] as { Custom?: number | bigint } | null | undefined)?.Custom;
  if (custom !== undefined && Number(custom) === TOKEN_INSUFFICIENT_FUNDS) return "insufficient_funds";
  return "failed";
}

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));

/** Options of {@link rpcSvmChain}. */
export interface RpcSvmChainOptions {
  /** The cluster's JSON-RPC URL. */
  url: string;
}

/** The chain over a Solana JSON-RPC endpoint. */
export function rpcSvmChain(options: RpcSvmChainOptions): SvmChain {
  const rpc = createSolanaRpc(options.url);
  const b64 = (bytes: Uint8Array) => getBase64Decoder().decode(bytes) as Base64EncodedWireTransaction;
  /** The last valid block height of each blockhash this adapter handed out (its own transactions: refunds). */
  const issued = new Map<string, bigint>();
  return {
    async getAccount(address) {
      const { value } = await rpc.getAccountInfo(address as Address, { encoding: "base64", commitment: "confirmed" }).send();
      if (!value) return null;
      return { owner: value.owner, lamports: BigInt(value.lamports), data: Buffer.from(value.data[0], "base64") };
    },
    async simulate(transaction) {
      const { value } = await rpc
        .simulateTransaction(b64(transaction), { encoding: "base64", commitment: "confirmed", sigVerify: true })
        .send();
      return value.err === null ? { ok: true } : { ok: false, kind: svmTxErrorKind(value.err), message: json(value.err) };
    },
    async send(transaction) {
      try {
        await rpc.sendTransaction(b64(transaction), { encoding: "base64", preflightCommitment: "confirmed" }).send();
        return { ok: true };
      } catch (error) {
        // Only the node's own simulation refusing it is an answer; anything else is trouble reaching the chain.
        if (!isSolanaError(error, SOLANA_ERROR__JSON_RPC__SERVER_ERROR_SEND_TRANSACTION_PREFLIGHT_FAILURE)) throw error;
        const cause = (error as Error).cause;
        const message = cause instanceof Error ? cause.message : error.message;
        if (isSolanaError(cause, SOLANA_ERROR__TRANSACTION_ERROR__ALREADY_PROCESSED))
          return { ok: false, kind: "already_processed", message };
        if (isSolanaError(cause, SOLANA_ERROR__TRANSACTION_ERROR__BLOCKHASH_NOT_FOUND))
          return { ok: false, kind: "blockhash_not_found", message };
        if (isSolanaError(cause, SOLANA_ERROR__TRANSACTION_ERROR__INSUFFICIENT_FUNDS_FOR_FEE))
          return { ok: false, kind: "fee_payer_funds", message };
        if (isSolanaError(cause, SOLANA_ERROR__INSTRUCTION_ERROR__CUSTOM) && Number(cause.context.code) === TOKEN_INSUFFICIENT_FUNDS)
          return { ok: false, kind: "insufficient_funds", message };
        return { ok: false, kind: "failed", message };
      }
    },
    async signatureStatus(signature) {
      const { value } = await rpc.getSignatureStatuses([signature as Signature], { searchTransactionHistory: true }).send();
      const s = value[0];
      if (!s) return null;
      return {
        confirmed: s.confirmationStatus === "confirmed" || s.confirmationStatus === "finalized",
        err: s.err === null ? null : json(s.err),
      };
    },
    async isBlockhashValid(blockhash) {
      // A blockhash this adapter handed out is judged by block height: a node a few slots behind then errs
      // towards "still valid" (never towards "expired", which would credit back a refund that may yet land).
      const last = issued.get(blockhash);
      if (last !== undefined) return (await rpc.getBlockHeight({ commitment: "confirmed" }).send()) <= last;
      return (await rpc.isBlockhashValid(blockhash as Blockhash, { commitment: "confirmed" }).send()).value;
    },
    async latestBlockhash() {
      const { value } = await rpc.getLatestBlockhash({ commitment: "confirmed" }).send();
      issued.set(value.blockhash, value.lastValidBlockHeight);
      if (issued.size > 1024) issued.delete(issued.keys().next().value as string);
      return value.blockhash;
    },
  };
}

/**
 * The part of a `litesvm` `LiteSVM` instance the adapter uses (declared here so that the
 * hub does not depend on the package).
 */
export interface LiteSvmLike {
  getAccount(address: string): { exists: boolean; programAddress?: string; lamports?: bigint; data?: Uint8Array };
  /** Takes a `@solana/kit` `Transaction` (typed loosely: LiteSVM may bring its own copy of kit). */
  simulateTransaction(tx: never): object;
  /** Takes a `@solana/kit` `Transaction`. */
  sendTransaction(tx: never): object;
  getTransaction(signature: string): object | null;
  latestBlockhash(): string;
}

/** LiteSVM's transaction errors without fields, by number (its `TransactionErrorFieldless`). */
const LITESVM_ERRORS: Record<number, SvmTxErrorKind> = {
  4: "fee_payer_funds",
  5: "fee_payer_funds",
  6: "already_processed",
  7: "blockhash_not_found",
};

/** The kind of a LiteSVM failure (a `FailedTransactionMetadata`), or undefined when the result is a success. */
function liteSvmError(result: object): { kind: SvmTxErrorKind; message: string } | undefined {
  const failed = result as { err?: () => unknown; toString(): string };
  if (typeof failed.err !== "function") return undefined;
  const err = failed.err();
  const message = String(failed.toString()).slice(0, 500);
  if (typeof err === "number") return { kind: LITESVM_ERRORS[err] ?? "failed", message };
  const ix = err as { index?: number; err?: () => unknown };
  const inner = typeof ix.err === "function" ? (ix.err() as { code?: number }) : undefined;
  if (inner && typeof inner === "object" && Number(inner.code) === TOKEN_INSUFFICIENT_FUNDS) return { kind: "insufficient_funds", message };
  return { kind: "failed", message };
}

/**
 * The chain over an in-process LiteSVM: a transaction lands (or fails) as it is sent, so
 * every status is confirmed at once; only the latest blockhash is valid.
 */
export function liteSvmChain(svm: LiteSvmLike): SvmChain {
  const decode = (bytes: Uint8Array) => getTransactionDecoder().decode(bytes) as never;
  const submitted = (result: object): SvmSubmitResult => {
    const e = liteSvmError(result);
    return e ? { ok: false, ...e } : { ok: true };
  };
  return {
    async getAccount(address) {
      const a = svm.getAccount(address);
      if (!a.exists) return null;
      return { owner: String(a.programAddress), lamports: BigInt(a.lamports ?? 0n), data: Uint8Array.from(a.data ?? []) };
    },
    async simulate(transaction) {
      return submitted(svm.simulateTransaction(decode(transaction)));
    },
    async send(transaction) {
      return submitted(svm.sendTransaction(decode(transaction)));
    },
    async signatureStatus(signature) {
      const t = svm.getTransaction(signature);
      if (!t) return null;
      const e = liteSvmError(t);
      return { confirmed: true, err: e ? e.message : null };
    },
    async isBlockhashValid(blockhash) {
      return blockhash === svm.latestBlockhash();
    },
    async latestBlockhash() {
      return svm.latestBlockhash();
    },
  };
}
