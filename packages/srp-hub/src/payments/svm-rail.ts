/**
 * The Solana payment rail: x402's `exact` scheme on a Solana cluster, an SPL token
 * `TransferChecked` signed by the payer whose fees the hub's fee payer pays
 * (spec/v1/payments.md). The stateless checks are `svm-check.ts`'s; this rail adds the fee
 * payer's key, which co-signs each payment: Ed25519 is deterministic, so the co-signed
 * transaction's signature (its id on the chain) is known at the check and is the payment's
 * lock nonce. Preflight, settlement and the chain's word on a payment go through an
 * {@link SvmChain}. A transaction lives only as long as its blockhash (about a minute), so
 * the hub settles these payments before serving. Given the treasury owner's key, the rail
 * also pays refunds back to Solana payers and providers' earnings out on Solana (an SPL
 * `TransferChecked` from the treasury's token account to the receiver's, its fee paid by the
 * fee payer).
 */
import { createPrivateKey, createPublicKey, KeyObject, sign, type webcrypto } from "node:crypto";
import { SrpError } from "@srp/core";
import type { PaymentRequirements } from "@srp/core/x402";
import {
  AccountRole,
  address,
  appendTransactionMessageInstruction,
  compileTransaction,
  createTransactionMessage,
  getTransactionEncoder,
  isAddress,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
  type Address,
  type Blockhash,
  type SignatureBytes,
  type Transaction,
} from "@solana/kit";
import {
  AccountState,
  findAssociatedTokenPda,
  getTokenDecoder,
  getTokenSize,
  getTransferCheckedInstructionDataEncoder,
} from "@solana-program/token";
import type { AuthorizationOutcome, PreflightResult, SettleResult } from "./authorization-settlers.js";
import type { PaymentLock, PaymentRail, RailPayment, RailRefundResult, RailRefunds } from "./rail.js";
import type { SvmChain, SvmSignatureStatus, SvmTxErrorKind } from "./svm-chain.js";
import {
  base58,
  BLOCKHASH_LIFETIME_SECONDS,
  checkSvmPayment,
  MEMO_PROGRAM,
  SPL_TOKEN_PROGRAM,
  svmRequirements,
  svmTransferOf,
  type SvmTerms,
} from "./svm-check.js";

/** A `@solana/kit` `KeyPairSigner`, or anything with an address and an Ed25519 key pair. */
export interface SvmKeyPair {
  address: string;
  keyPair: { privateKey: webcrypto.CryptoKey };
}

/** Options of {@link svmRail}. */
export interface SvmRailOptions extends Omit<SvmTerms, "feePayer" | "maxTimeoutSeconds"> {
  /**
   * The hub's fee payer, which co-signs and pays every settlement's fee (in SOL): a 64-byte
   * secret key (seed then public key, as `solana-keygen` writes it) or a kit `KeyPairSigner`.
   * It need not be the treasury.
   */
  feePayer: Uint8Array | SvmKeyPair;
  /**
   * The treasury owner's key (its address is `payTo`), in the same forms as `feePayer`: with
   * it the rail pays refunds of Solana payers' prepaid money back to them on this network
   * (`POST /v1/futures/refund`, SRP-PAY-033) and providers' earnings out on it
   * (`POST /v1/payouts/solana`, SRP-PAY-034), the fee payer paying each transfer's fee.
   * Without it the rail pays neither (they are `payment.unavailable`).
   */
  treasurySigner?: Uint8Array | SvmKeyPair;
  /** The cluster. */
  chain: SvmChain;
  /** `maxTimeoutSeconds` offered. Default {@link BLOCKHASH_LIFETIME_SECONDS}. */
  maxTimeoutSeconds?: number;
  /** How long a settlement waits for confirmation before its outcome is unknown. Default 30 s. */
  confirmTimeoutMs?: number;
  /** How often a settlement asks for its status while it waits. Default 500 ms. */
  pollIntervalMs?: number;
  /** How often an unconfirmed settlement is submitted again while it waits (the same transaction: safe). Default 2 s. */
  resendIntervalMs?: number;
  /** The clock, in milliseconds (default `Date.now`). */
  now?: () => number;
  /**
   * The smallest amount offered on Solana, in ledger units: below it the fee payer's fees
   * would cost the hub more than the payment brings, and the 402 lists no Solana entry.
   * Default {@link SVM_MIN_AMOUNT} ($0.01).
   */
  minAmount?: bigint;
}

/** The default smallest Solana payment, in ledger units: $0.01 (a settlement costs the fee payer about 10 000 lamports). */
export const SVM_MIN_AMOUNT = 10_000n;

/** A signing key (the fee payer's, the treasury's), as Node signs with it synchronously. */
function signingKey(feePayer: Uint8Array | SvmKeyPair, whose = "fee payer"): { address: string; key: KeyObject } {
  if (feePayer instanceof Uint8Array) {
    if (feePayer.length !== 64) throw new RangeError(`the ${whose}'s secret key must be 64 bytes (seed, then public key)`);
    const b64url = (b: Uint8Array) => Buffer.from(b).toString("base64url");
    const pub = feePayer.subarray(32);
    const key = createPrivateKey({
      format: "jwk",
      key: { kty: "OKP", crv: "Ed25519", d: b64url(feePayer.subarray(0, 32)), x: b64url(pub) },
    });
    if (createPublicKey(key).export({ format: "jwk" }).x !== b64url(pub))
      throw new RangeError(`the ${whose}'s secret key does not match its public key`);
    return { address: base58(pub), key };
  }
  return { address: feePayer.address, key: KeyObject.from(feePayer.keyPair.privateKey) };
}

/** Largest number of payments whose blockhash the rail remembers for {@link PaymentRail.outcome}. */
const REMEMBERED = 10_000;

/** What the chain says of a co-signed transaction, given its blockhash. */
type ChainWord = { state: "landed"; status: SvmSignatureStatus } | { state: "pending" } | { state: "unused" } | { state: "expired" };

/** Kinds of refusal that say the transaction cannot land now, whatever is retried. */
const DEFINITE: ReadonlySet<SvmTxErrorKind> = new Set(["insufficient_funds", "fee_payer_funds", "failed"]);

const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 500);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The Solana rail of a hub: offers {@link svmRequirements}, checks with
 * {@link checkSvmPayment}, and co-signs, submits and follows each payment on `chain`.
 *
 * @example
 * ```ts
 * import { svmRail, rpcSvmChain, SOLANA_NETWORKS } from "@srp/hub";
 * const rail = svmRail({
 *   network: SOLANA_NETWORKS.mainnet,
 *   mint: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", // USDC
 *   decimals: 6,
 *   payTo: "<treasury owner address>",
 *   feePayer: new Uint8Array(64), // the fee payer's secret key
 *   chain: rpcSvmChain({ url: "https://api.mainnet-beta.solana.com" }),
 * });
 * ```
 */
export function svmRail(options: SvmRailOptions): PaymentRail {
  const { chain } = options;
  // Ledger units are millionths of a dollar: a token of other decimals would be paid 10^n times too little or too much.
  if (options.decimals !== 6) throw new RangeError("svmRail takes a 6-decimal USD token (USDC): ledger units are 10^-6 USD");
  // Token-2022 mints may charge transfer fees (the treasury would get less than the amount) or be paused: not taken.
  if (options.tokenProgram !== undefined && options.tokenProgram !== SPL_TOKEN_PROGRAM)
    throw new RangeError("svmRail takes SPL Token mints only (Token-2022 extensions such as transfer fees are not checked)");
  const minAmount = options.minAmount ?? SVM_MIN_AMOUNT;
  if (minAmount < 0n) throw new RangeError("minAmount must be non-negative");
  const fee = signingKey(options.feePayer);
  const treasuryKey = options.treasurySigner === undefined ? undefined : signingKey(options.treasurySigner, "treasury");
  if (treasuryKey && treasuryKey.address !== options.payTo)
    throw new RangeError(`the treasury key is ${treasuryKey.address}'s, not the treasury owner's (payTo ${options.payTo})`);
  const terms: SvmTerms = {
    network: options.network,
    mint: options.mint,
    decimals: options.decimals,
    payTo: options.payTo,
    feePayer: fee.address,
    maxTimeoutSeconds: options.maxTimeoutSeconds ?? BLOCKHASH_LIFETIME_SECONDS,
    ...(options.tokenProgram !== undefined ? { tokenProgram: options.tokenProgram } : {}),
    ...(options.maxComputeUnitPrice !== undefined ? { maxComputeUnitPrice: options.maxComputeUnitPrice } : {}),
    ...(options.maxComputeUnitLimit !== undefined ? { maxComputeUnitLimit: options.maxComputeUnitLimit } : {}),
  };
  const tokenProgram = terms.tokenProgram ?? SPL_TOKEN_PROGRAM;
  const confirmTimeoutMs = options.confirmTimeoutMs ?? 30_000;
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const resendIntervalMs = options.resendIntervalMs ?? 2_000;
  const now = options.now ?? Date.now;
  let treasuryAccount: Promise<string> | undefined;
  const treasury = () =>
    (treasuryAccount ??= findAssociatedTokenPda({
      owner: address(terms.payTo),
      mint: address(terms.mint),
      tokenProgram: address(tokenProgram),
    }).then(([a]) => a as string));

  /** Blockhash and lock expiry by signature, for payments this process has seen (outcome needs the blockhash). */
  const seen = new Map<string, { blockhash: string; validBefore: number }>();
  const remember = (signature: string, blockhash: string, validBefore: number) => {
    if (seen.has(signature)) return;
    seen.set(signature, { blockhash, validBefore });
    if (seen.size > REMEMBERED) seen.delete(seen.keys().next().value as string);
  };
  /** Signatures this process has submitted and the chain took (a later refusal is then not definite). */
  const sent = new Set<string>();

  /** The payer's transaction with the fee payer's signature: the wire bytes and the signature (base58). */
  const cosign = (transaction: Transaction) => {
    const sig = new Uint8Array(sign(null, Uint8Array.from(transaction.messageBytes), fee.key)) as SignatureBytes;
    const signatures = { ...transaction.signatures, [fee.address as Address]: sig };
    const wire = new Uint8Array(getTransactionEncoder().encode({ ...transaction, signatures }));
    return { wire, signature: base58(sig) };
  };

  /** The chain's word, asking the blockhash first: a blockhash found expired, then no status, means it can never land. */
  const chainWord = async (signature: string, blockhash: string): Promise<ChainWord> => {
    const valid = await chain.isBlockhashValid(blockhash);
    const status = await chain.signatureStatus(signature);
    if (status?.confirmed) return { state: "landed", status };
    if (status) return { state: "pending" };
    return valid ? { state: "unused" } : { state: "expired" };
  };

  const landed = (signature: string, status: SvmSignatureStatus): SettleResult =>
    status.err === null
      ? { outcome: "settled", transaction: signature }
      : { outcome: "failed", reason: `transaction ${signature} failed on-chain: ${status.err}` };

  const lockOf = (requirements: PaymentRequirements, payer: string, amount: bigint, nonce: string, validBefore: number) =>
    ({ network: terms.network, asset: requirements.asset, payer, nonce, amount, validBefore }) satisfies PaymentLock;

  /**
   * Submits a fully signed transaction and follows it until it lands, can never land, or
   * `confirmTimeoutMs` passes (then its outcome is unknown). Submitting it again while it is
   * unconfirmed is safe: the chain takes a transaction once. "failed" means it surely moved
   * nothing: it failed on-chain, its blockhash expired before it landed, or the chain refused
   * it before this process ever got it onto the chain.
   */
  const follow = async (wire: Uint8Array, signature: string, blockhash: string): Promise<SettleResult> => {
    const deadline = now() + confirmTimeoutMs;
    let lastSend = Number.NEGATIVE_INFINITY;
    try {
      for (;;) {
        const word = await chainWord(signature, blockhash);
        if (word.state === "landed") return landed(signature, word.status);
        if (word.state === "expired") return { outcome: "failed", reason: `the blockhash expired before transaction ${signature} landed` };
        if (word.state === "unused" && now() - lastSend >= resendIntervalMs) {
          lastSend = now();
          const r = await chain.send(wire);
          if (r.ok || r.kind === "already_processed") {
            sent.add(signature);
            if (sent.size > REMEMBERED) sent.delete(sent.values().next().value as string);
          }
          // A refusal of a transaction this process never got onto the chain is definite: nothing can land.
          else if (DEFINITE.has(r.kind) && !sent.has(signature))
            return { outcome: "failed", reason: `the chain refused the transaction: ${r.message}` };
          continue;
        }
        if (now() >= deadline)
          return { outcome: "unknown", reason: `transaction ${signature} not confirmed within ${confirmTimeoutMs} ms` };
        await sleep(pollIntervalMs);
      }
    } catch (error) {
      return { outcome: "unknown", reason: `transaction ${signature}: the chain cannot be reached: ${message(error)}` };
    }
  };

  /** The payer's associated token account for the mint. */
  const tokenAccountOf = async (owner: string) =>
    (await findAssociatedTokenPda({ owner: address(owner), mint: address(terms.mint), tokenProgram: address(tokenProgram) }))[0] as string;

  /** Refunds, when the rail holds the treasury owner's key. */
  const refunds = (signer: { address: string; key: KeyObject }): RailRefunds => ({
    async receivable(payer) {
      if (!isAddress(payer)) return `${payer} is not a Solana address`;
      const account = await tokenAccountOf(payer);
      const found = await chain.getAccount(account);
      const create = `create it (the associated token account of ${payer} for ${terms.mint}), then ask again`;
      if (!found || found.owner !== tokenProgram || found.data.length < getTokenSize())
        return `the wallet ${payer} has no token account ${account} to receive the transfer: ${create}`;
      const token = getTokenDecoder().decode(found.data.subarray(0, getTokenSize()));
      if (token.mint !== terms.mint || token.owner !== payer)
        return `the token account ${account} is not ${payer}'s account for ${terms.mint}`;
      if (token.state !== AccountState.Initialized) return `the token account ${account} of ${payer} is frozen or uninitialized`;
      return undefined;
    },

    async pay(payer, amount, reference, purpose = "refund"): Promise<RailRefundResult> {
      let wire: Uint8Array;
      let signature: string;
      let blockhash: string;
      try {
        if (amount <= 0n) return { outcome: "failed", reason: "nothing to pay" };
        const [source, destination] = await Promise.all([treasury(), tokenAccountOf(payer)]);
        blockhash = await chain.latestBlockhash();
        const transfer = {
          programAddress: address(tokenProgram),
          accounts: [
            { address: address(source), role: AccountRole.WRITABLE },
            { address: address(terms.mint), role: AccountRole.READONLY },
            { address: address(destination), role: AccountRole.WRITABLE },
            { address: address(signer.address), role: AccountRole.READONLY_SIGNER },
          ],
          data: getTransferCheckedInstructionDataEncoder().encode({ amount, decimals: terms.decimals }),
        };
        // The memo names the refund (or payout) and keeps its transaction unique under a blockhash.
        const memo = {
          programAddress: address(MEMO_PROGRAM),
          data: new TextEncoder().encode(`SRP ${purpose} ${reference}`.slice(0, 200)),
        };
        const transaction = compileTransaction(
          pipe(
            createTransactionMessage({ version: 0 }),
            (m) => setTransactionMessageFeePayer(address(fee.address), m),
            // The last valid height is not part of the wire message: the rail follows the blockhash's validity instead.
            (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: blockhash as Blockhash, lastValidBlockHeight: 0n }, m),
            (m) => appendTransactionMessageInstruction(transfer, m),
            (m) => appendTransactionMessageInstruction(memo, m),
          ),
        );
        const bytes = Uint8Array.from(transaction.messageBytes);
        const signatures: Record<string, SignatureBytes> = {};
        for (const k of signer.address === fee.address ? [fee] : [fee, signer])
          signatures[k.address] = new Uint8Array(sign(null, bytes, k.key)) as SignatureBytes;
        wire = new Uint8Array(getTransactionEncoder().encode({ ...transaction, signatures: { ...transaction.signatures, ...signatures } }));
        signature = base58(signatures[fee.address]!);
      } catch (error) {
        // Nothing was sent: the treasury's key, a token account or the chain's blockhash was missing.
        return { outcome: "failed", reason: `the ${purpose} transaction could not be made: ${message(error)}` };
      }
      const result = await follow(wire, signature, blockhash);
      if (result.outcome === "settled") return { outcome: "paid", transaction: result.transaction };
      if (result.outcome === "failed") return result;
      return { outcome: "unknown", reason: result.reason, transaction: signature };
    },
  });

  return {
    network: terms.network,
    settlerName: "solana",
    settlesFirst: true,
    minAmount,
    ...(treasuryKey ? { refunds: refunds(treasuryKey) } : {}),
    offer: (amount) => svmRequirements(terms, amount),
    offerV1: () => undefined,

    async check(payment, offered, nowSeconds): Promise<RailPayment | SrpError> {
      const checked = await checkSvmPayment(payment, offered, terms);
      if (checked instanceof SrpError) return checked;
      const { signature } = cosign(checked.transaction);
      const validBefore = nowSeconds + BLOCKHASH_LIFETIME_SECONDS;
      remember(signature, checked.blockhash, validBefore);
      return { payment, requirements: offered, lock: lockOf(offered, checked.payer, checked.amount, signature, validBefore) };
    },

    restore(payment) {
      if (payment.accepted.network !== terms.network) return undefined;
      const t = svmTransferOf(payment);
      // A payment made out to another fee payer (the key was rotated since) cannot be co-signed by this one.
      if (!t || Object.keys(t.transaction.signatures)[0] !== fee.address) return undefined;
      const { signature } = cosign(t.transaction);
      // The lock's expiry is not in the document: the book's stored lock is authoritative.
      const validBefore = seen.get(signature)?.validBefore ?? Number.MAX_SAFE_INTEGER;
      remember(signature, t.blockhash, validBefore);
      return { payment, requirements: payment.accepted, lock: lockOf(payment.accepted, t.payer, t.amount, signature, validBefore) };
    },

    async preflight(p): Promise<PreflightResult> {
      const t = svmTransferOf(p.payment);
      if (!t) return { ok: false, code: "payment.invalid", message: "the payment holds no Solana transfer" };
      const { wire, signature } = cosign(t.transaction);
      try {
        if (await chain.signatureStatus(signature))
          return { ok: false, code: "payment.replayed", message: "the chain has already seen this transaction" };
        const [source, dest] = await Promise.all([chain.getAccount(t.source), treasury().then((a) => chain.getAccount(a))]);
        if (!source || source.owner !== tokenProgram || source.data.length < getTokenSize())
          return { ok: false, code: "payment.insufficient_funds", message: `the source token account ${t.source} does not exist` };
        const token = getTokenDecoder().decode(source.data.subarray(0, getTokenSize()));
        if (token.mint !== terms.mint)
          return { ok: false, code: "payment.wrong_asset", message: `the source token account holds ${token.mint}, not ${terms.mint}` };
        if (token.owner !== t.payer)
          return {
            ok: false,
            code: "payment.insufficient_funds",
            message: `the source token account is ${token.owner}'s, not the signer ${t.payer}'s`,
          };
        if (token.amount < t.amount)
          return {
            ok: false,
            code: "payment.insufficient_funds",
            message: `the payer holds ${token.amount} units; the payment is for ${t.amount}`,
          };
        if (!dest || dest.owner !== tokenProgram)
          return {
            ok: false,
            code: "payment.unavailable",
            message: "the treasury's token account does not exist yet: the operator must create it",
          };
        const sim = await chain.simulate(wire);
        if (sim.ok) return { ok: true };
        switch (sim.kind) {
          case "blockhash_not_found":
            return { ok: false, code: "payment.expired", message: "the transaction's blockhash has expired: pay again" };
          case "already_processed":
            return { ok: false, code: "payment.replayed", message: "the chain has already processed this transaction" };
          case "insufficient_funds":
            return { ok: false, code: "payment.insufficient_funds", message: `the transfer lacks funds: ${sim.message}` };
          case "fee_payer_funds":
            return { ok: false, code: "payment.unavailable", message: "the hub's fee payer cannot pay the transaction fee" };
          default:
            return { ok: false, code: "payment.settlement_failed", message: `the transaction fails in simulation: ${sim.message}` };
        }
      } catch (error) {
        return { ok: false, code: "payment.unavailable", message: `the chain cannot be read: ${message(error)}` };
      }
    },

    async settle(p): Promise<SettleResult> {
      const t = svmTransferOf(p.payment);
      if (!t) return { outcome: "failed", reason: "the payment holds no Solana transfer" };
      const { wire, signature } = cosign(t.transaction);
      remember(signature, t.blockhash, p.lock.validBefore);
      return follow(wire, signature, t.blockhash);
    },

    async outcome(lock): Promise<AuthorizationOutcome | undefined> {
      const nowSeconds = now() / 1000;
      const known = seen.get(lock.nonce);
      try {
        if (known) {
          const word = await chainWord(lock.nonce, known.blockhash);
          if (word.state === "landed")
            return word.status.err === null ? { state: "paid", transaction: lock.nonce } : { state: "spent", transaction: lock.nonce };
          if (word.state === "expired") return { state: "spent" };
          // Unused while the lock holds; past it, the blockhash may still let an earlier submission land: wait.
          return word.state === "unused" && nowSeconds < lock.validBefore ? { state: "unused" } : undefined;
        }
        // Not seen by this process (a restart): without the blockhash, the lock's expiry and one more lifetime bound it.
        const status = await chain.signatureStatus(lock.nonce);
        if (status?.confirmed)
          return status.err === null ? { state: "paid", transaction: lock.nonce } : { state: "spent", transaction: lock.nonce };
        if (status) return undefined;
        if (nowSeconds < lock.validBefore) return { state: "unused" };
        return nowSeconds >= lock.validBefore + BLOCKHASH_LIFETIME_SECONDS ? { state: "spent" } : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
