/**
 * The x402 payment flow of a hub: offer, verify, lock, settle (before or after serving),
 * credit the payer's wallet account, and reconcile outcomes that were not known in time.
 * Verification is stateless; the durable lock in the {@link PaymentBook} is what makes
 * one authorization buy one request, however many copies arrive and whenever.
 */
import { verifyTypedData } from "viem";
import { canonicalize, SrpError } from "@srp/core";
import {
  decodePaymentPayload,
  decodePaymentPayloadV1,
  encodeX402Header,
  exactEvmPayload,
  v1NetworkOf,
  X402_HEADERS,
  X402_V1_HEADERS,
  type PaymentPayload,
  type PaymentRequirements,
  type SettlementResponse,
} from "@srp/core/x402";
import { transferWithAuthorizationTypes } from "@srp/core/chain";
import type { PaymentBook, PaymentRecord, SettleMode } from "./book.js";
import type { SettleInput, SettleResult, Settler } from "./authorization-settlers.js";
import {
  checkPayment,
  paymentFromV1,
  paymentRequired,
  requirementsFor,
  requirementsV1For,
  type PaidResource,
  type X402Terms,
} from "./x402-policy.js";

/** Something that happened to a payment, for operators' logs and metrics. */
export interface PaymentEvent {
  kind: "settled" | "failed" | "unknown" | "debt";
  payment: PaymentRecord;
  detail?: string;
}

/** Options of {@link X402Payments}. */
export interface X402PaymentsOptions {
  terms: X402Terms;
  /** Settle before serving (the payer's money moves first) or after (only served requests move money). */
  mode: SettleMode;
  settler: Settler;
  book: PaymentBook;
  /** Told of settlements, failures, unknown outcomes and debts. */
  onEvent?: (event: PaymentEvent) => void;
}

/** A payment header a request carries: version 2's `PAYMENT-SIGNATURE` or version 1's `X-PAYMENT` (`paymentHeaderOf` in `@srp/core/x402`). */
export interface PaymentHeader {
  version: 1 | 2;
  value: string;
}

/** A paid request the hub may serve: the payer's account, and how to end the payment. */
export interface Admission {
  payment: PaymentRecord;
  /** The header that tells the payer how its payment settled: `PAYMENT-RESPONSE`, or `X-PAYMENT-RESPONSE` for a version-1 payer. */
  responseHeader: string;
  /** The payer's wallet account, credited with the payment (its maximum cost is reserved from it as usual). */
  accountId: string;
  /**
   * Ends the payment after the request: in `after` mode settles it when the request was
   * served, or gives the authorization up when it was not. Returns the value of the
   * {@link responseHeader}. In `before` mode it only returns the header of the settlement made.
   */
  finish(served: boolean): Promise<string>;
}

/** Settlements with an unknown outcome are reconciled once they are this old. */
const RECONCILE_AFTER_MS = 30_000;
/**
 * A payment still `locked` (verified, not yet settled) belongs to a request in flight: in
 * this process it is never reconciled before its request ends. A row of another (perhaps
 * dead) process is reconciled once it is this old, or once its authorization is about to
 * expire (settling it then is safe: the chain accepts an authorization once).
 */
const LOCKED_GRACE_MS = 10 * 60 * 1000;
/** How long before its expiry an abandoned authorization is settled at the latest. */
const EXPIRY_MARGIN_MS = 60_000;

/** The hub's x402 payments. */
export class X402Payments {
  readonly terms: X402Terms;
  readonly mode: SettleMode;
  readonly #settler: Settler;
  readonly #book: PaymentBook;
  readonly #onEvent: (event: PaymentEvent) => void;
  /** Payments whose request this process is serving or settling now. */
  readonly #inFlight = new Set<string>();

  constructor(options: X402PaymentsOptions) {
    this.terms = options.terms;
    this.mode = options.mode;
    this.#settler = options.settler;
    this.#book = options.book;
    this.#onEvent = options.onEvent ?? (() => {});
    if (options.terms.maxTimeoutSeconds < 300) throw new RangeError("maxTimeoutSeconds must be at least 300");
    if (options.terms.minValiditySeconds >= options.terms.maxTimeoutSeconds)
      throw new RangeError("minValiditySeconds must be below maxTimeoutSeconds");
  }

  /**
   * What an account still owes after repaying what it can from its prepaid balance (a
   * request by API key from an indebted account is refused while this is above zero).
   */
  async outstandingDebt(accountId: string): Promise<bigint> {
    // Per request by API key: a set lookup; only an account that owes reaches the database.
    if (!(await this.#indebtedNow()).has(accountId)) return 0n;
    await this.#book.repayDebts(accountId);
    const owed = await this.#book.debtOf(accountId);
    if (owed === 0n) this.#indebted?.delete(accountId);
    return owed;
  }

  /**
   * The accounts that owe: loaded once, refreshed by every {@link reconcile} (so debts
   * recorded by another hub process on the same database count within one reconcile
   * interval), and kept current for the debts this process records.
   */
  #indebted: Set<string> | undefined;
  #indebtedLoading: Promise<Set<string>> | undefined;

  #indebtedNow(): Promise<Set<string>> {
    if (this.#indebted) return Promise.resolve(this.#indebted);
    this.#indebtedLoading ??= this.#book.indebtedAccounts().then(
      (ids) => (this.#indebted = new Set(ids)),
      (error: unknown) => {
        this.#indebtedLoading = undefined;
        throw error;
      },
    );
    return this.#indebtedLoading;
  }

  /** Repays an account's debt from its prepaid balance; returns the amount repaid. */
  repayDebts(accountId: string): Promise<bigint> {
    return this.#book.repayDebts(accountId);
  }

  /** The settler's name. */
  get settlerName(): string {
    return this.#settler.name;
  }

  /** The requirements offered for a request that may cost up to `amount`. */
  offer(amount: bigint): PaymentRequirements {
    return requirementsFor(this.terms, amount);
  }

  /** A 402 response for a request that may cost up to `amount`, optionally saying why an earlier payment failed. */
  required(amount: bigint, resource: PaidResource, error?: SrpError): Response {
    const doc = paymentRequired(
      this.terms,
      amount,
      resource,
      error ? `${error.code}: ${error.message}` : "payment required: pay with x402 or send an API key",
    );
    const code = error?.code ?? "payment.required";
    const v1 = requirementsV1For(this.terms, amount, resource);
    const status = error?.httpStatus ?? 402;
    return Response.json(
      {
        error: {
          message:
            error?.message ?? `this request may cost up to ${amount} units of USDC: pay with x402 (PAYMENT-SIGNATURE) or send an API key`,
          type: "payment_required",
          code,
          param: null,
        },
        x402: doc,
        // Version-1 clients read the 402's body (version 1 has no PAYMENT-REQUIRED header).
        ...(v1 ? { x402Version: 1, accepts: [v1] } : {}),
      },
      {
        status,
        headers: {
          "PAYMENT-REQUIRED": encodeX402Header(doc),
          "Access-Control-Expose-Headers": "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE",
        },
      },
    );
  }

  #response(p: PaymentRecord, version: 1 | 2, success: boolean, transaction: string | null, errorReason?: string): string {
    const doc: SettlementResponse = {
      success,
      transaction: transaction ?? "",
      // Version 1 names the network (the hub only takes version 1 on a chain that has a name).
      network: (version === 1 ? v1NetworkOf(this.terms.chainId) : undefined) ?? p.network,
      payer: p.payer,
      ...(errorReason !== undefined ? { errorReason } : {}),
    };
    return encodeX402Header(doc);
  }

  async #verifySignature(input: SettleInput): Promise<boolean> {
    const a = input.authorization;
    const args = {
      address: a.from as `0x${string}`,
      domain: {
        name: this.terms.asset.name,
        version: this.terms.asset.version,
        chainId: this.terms.chainId,
        verifyingContract: this.terms.asset.address as `0x${string}`,
      },
      types: transferWithAuthorizationTypes,
      primaryType: "TransferWithAuthorization" as const,
      message: {
        from: a.from as `0x${string}`,
        to: a.to as `0x${string}`,
        value: BigInt(a.value),
        validAfter: BigInt(a.validAfter),
        validBefore: BigInt(a.validBefore),
        nonce: a.nonce as `0x${string}`,
      },
      signature: input.signature,
    };
    try {
      if (await verifyTypedData(args)) return true;
    } catch {
      // not an EOA signature
    }
    // With a chain client, smart-contract wallets (ERC-1271, ERC-6492) verify too.
    if (!this.#settler.chain) return false;
    try {
      return await this.#settler.chain.verifyTypedData(args);
    } catch {
      return false;
    }
  }

  /**
   * Admits a request paid with the payment header `header` (`PAYMENT-SIGNATURE`, or a
   * version-1 `X-PAYMENT`, read as the version-2 payment it stands for), whose offer was
   * `offered`. Returns the admission, or the error to answer with (a 402 for payment
   * problems, with fresh requirements). `mode` overrides the hub's settlement mode (a
   * deposit always settles first); `debtorMayPay` admits a blocked wallet (a deposit, which
   * repays its debt first).
   */
  async admit(
    header: PaymentHeader | string,
    offered: PaymentRequirements,
    resourceUrl: string,
    options: { now?: number; mode?: SettleMode; debtorMayPay?: boolean } = {},
  ): Promise<Admission | SrpError> {
    const now = options.now ?? Date.now();
    const mode = options.mode ?? this.mode;
    const given = typeof header === "string" ? { version: 2 as const, value: header } : header;
    const payment = this.#decode(given, offered);
    if (payment instanceof SrpError) return payment;
    const version = given.version;
    const checked = checkPayment(payment, offered, this.terms, Math.floor(now / 1000));
    if (checked instanceof SrpError) return checked;
    const input: SettleInput = { ...checked, payment };
    if (!(await this.#verifySignature(input)))
      return new SrpError("payment.bad_signature", "the authorization's EIP-712 signature does not recover to its `from`");
    const a = checked.authorization;
    const payload = canonicalize(payment);
    const accountId = await this.#book.walletAccount(a.from);
    const debt = await this.#book.debtOf(accountId);
    if (debt > 0n && options.debtorMayPay !== true)
      return new SrpError("payment.wallet_blocked", `wallet ${a.from} owes ${debt} units from a payment that did not settle`, {
        details: { debt: debt.toString() },
      });

    // A copy of a payment already locked: the same document may resume (its settlement was pending); anything else is a replay.
    const existing = await this.#book.lock({
      network: checked.requirements.network,
      asset: checked.requirements.asset,
      payer: a.from,
      nonce: a.nonce,
      amount: BigInt(a.value),
      validBefore: Number(
        BigInt(a.validBefore) > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : BigInt(a.validBefore),
      ),
      accountId,
      mode,
      resource: resourceUrl,
      payload,
    });
    if (!existing.locked) return this.#resume(existing.record, payload, input, version);
    const record = existing.record;
    this.#inFlight.add(record.id);
    try {
      const admitted = await this.#admitLocked(record, input, mode, version);
      // Admitted: in flight until the request finishes; refused: done now.
      if (admitted instanceof SrpError) this.#inFlight.delete(record.id);
      return admitted;
    } catch (error) {
      this.#inFlight.delete(record.id);
      throw error;
    }
  }

  /** A payment header's document as a version-2 payment, or why it is not one. */
  #decode(header: PaymentHeader, offered: PaymentRequirements): PaymentPayload | SrpError {
    try {
      return header.version === 2
        ? decodePaymentPayload(header.value)
        : paymentFromV1(decodePaymentPayloadV1(header.value), offered, this.terms);
    } catch (error) {
      return error as SrpError;
    }
  }

  /** The rest of {@link admit} for a payment this call locked. */
  async #admitLocked(record: PaymentRecord, input: SettleInput, mode: SettleMode, version: 1 | 2): Promise<Admission | SrpError> {
    // Stateless on-chain checks after the lock: a failure burns nothing on-chain, and the payer signs anew.
    const pre = await this.#settler.preflight(input);
    if (!pre.ok) {
      await this.#book.failed(record.id, pre.message);
      return new SrpError(pre.code, pre.message);
    }
    if (mode === "after") {
      await this.#book.credit(record.id);
      await this.#book.claimService(record.id);
      return this.#admitted(record, input, undefined, version);
    }
    return this.#settleThenServe(record, input, version);
  }

  async #settleThenServe(record: PaymentRecord, input: SettleInput, version: 1 | 2): Promise<Admission | SrpError> {
    const result = await this.#settler.settle(input);
    const done = await this.#record(record, result);
    if (result.outcome === "failed") return new SrpError("payment.settlement_failed", `the payment could not be settled: ${result.reason}`);
    if (result.outcome === "unknown") {
      return new SrpError(
        "payment.settlement_pending",
        "the settlement's outcome is not known yet; retry with the same PAYMENT-SIGNATURE (it is never charged twice)",
        {
          details: { paymentId: record.id },
        },
      );
    }
    if (!(await this.#book.claimService(record.id))) return new SrpError("payment.replayed", "this payment has already bought a request");
    return this.#admitted(done, input, result.transaction, version);
  }

  /** A copy of a locked payment arrived. */
  async #resume(record: PaymentRecord, payload: string, input: SettleInput, version: 1 | 2): Promise<Admission | SrpError> {
    const replay = new SrpError("payment.replayed", "this authorization was already used or is in use");
    if (record.payload !== payload || record.served || record.state === "locked" || record.state === "failed") return replay;
    if (record.state === "settled") {
      return (await this.#book.claimService(record.id)) ? this.#admitted(record, input, record.txHash ?? "", version) : replay;
    }
    // Unknown outcome: ask the chain whether the authorization paid the hub; if it is unused, submitting it again is safe.
    const o = await this.#settler.outcome(this.#query(record));
    if (o === undefined)
      return new SrpError(
        "payment.settlement_pending",
        "the settlement's outcome is still not known; retry with the same PAYMENT-SIGNATURE",
      );
    if (o.state === "paid") {
      await this.#record(record, { outcome: "settled", transaction: o.transaction });
      return (await this.#book.claimService(record.id)) ? this.#admitted(record, input, o.transaction, version) : replay;
    }
    if (o.state === "spent") {
      await this.#record(record, { outcome: "failed", reason: "the payer spent the authorization's nonce without paying the hub" });
      return new SrpError("payment.settlement_failed", "the authorization's nonce was spent without paying the hub");
    }
    return this.#settleThenServe(record, input, version);
  }

  /** What to ask the chain about a payment. */
  #query(p: PaymentRecord) {
    return { asset: p.asset, payer: p.payer, nonce: p.nonce, payTo: this.terms.payTo, amount: p.amount };
  }

  /** A payment left its wallet owing. */
  #noteDebt(payment: PaymentRecord, debt: bigint): void {
    this.#indebted?.add(payment.accountId);
    this.#onEvent({ kind: "debt", payment, detail: `${debt} units` });
  }

  /** Stores a settlement's outcome; returns the record as it now stands. */
  async #record(record: PaymentRecord, result: SettleResult): Promise<PaymentRecord> {
    if (result.outcome === "settled") {
      await this.#book.settled(record.id, result.transaction);
      this.#onEvent({ kind: "settled", payment: record, detail: result.transaction });
    } else if (result.outcome === "failed") {
      const debt = await this.#book.failed(record.id, result.reason);
      this.#onEvent({ kind: "failed", payment: record, detail: result.reason });
      if (debt > 0n) this.#noteDebt(record, debt);
    } else {
      await this.#book.unknown(record.id, result.reason);
      this.#onEvent({ kind: "unknown", payment: record, detail: result.reason });
    }
    return (await this.#book.get(record.id)) ?? record;
  }

  #admitted(record: PaymentRecord, input: SettleInput, transaction: string | undefined, version: 1 | 2): Admission {
    const end = async (served: boolean): Promise<string> => {
      if (transaction !== undefined) return this.#response(record, version, true, transaction);
      if (!served) {
        // Nothing was served: the authorization is given up unused and the credit taken back.
        const debt = await this.#book.failed(record.id, "the request was not served; the authorization was not used");
        if (debt > 0n) this.#noteDebt(record, debt);
        return this.#response(record, version, false, null, "not served: the authorization was not used");
      }
      const result = await this.#settler.settle(input);
      const now = await this.#record(record, result);
      if (result.outcome === "settled") return this.#response(now, version, true, result.transaction);
      return this.#response(
        now,
        version,
        false,
        null,
        result.outcome === "unknown" ? `settlement pending: ${result.reason}` : result.reason,
      );
    };
    let finished: Promise<string> | undefined;
    const finish = (served: boolean): Promise<string> => {
      finished ??= end(served).finally(() => this.#inFlight.delete(record.id));
      return finished;
    };
    const responseHeader = version === 1 ? X402_V1_HEADERS.response : X402_HEADERS.response;
    return { payment: record, responseHeader, accountId: record.accountId, finish };
  }

  /**
   * Reconciles settlements left unfinished (time-outs, a crash mid-settlement) against the
   * chain: authorizations proven to have paid the hub are marked settled, ones whose nonce
   * was spent otherwise are failed; unused ones are settled again while
   * they are valid (when the request was served or the hub settles first), and marked
   * failed once they expire. Returns how many payments changed.
   */
  async reconcile(now = Date.now()): Promise<number> {
    this.#indebted = new Set(await this.#book.indebtedAccounts());
    let changed = 0;
    for (const p of await this.#book.unfinished(RECONCILE_AFTER_MS, now)) {
      // A request being served (settle after) or a settlement under way is left to its own ending.
      if (this.#inFlight.has(p.id)) continue;
      if (p.state === "locked" && now - p.updatedAt < LOCKED_GRACE_MS && now < p.validBefore * 1000 - EXPIRY_MARGIN_MS) continue;
      const o = await this.#settler.outcome(this.#query(p));
      if (o === undefined) continue;
      if (o.state !== "unused") {
        // Paid the hub: settled. Spent otherwise: failed (and, when it was credited, a debt).
        await this.#record(
          p,
          o.state === "paid"
            ? { outcome: "settled", transaction: o.transaction }
            : { outcome: "failed", reason: "the payer spent the authorization's nonce without paying the hub" },
        );
        changed++;
        continue;
      }
      if (p.validBefore * 1000 <= now) {
        const debt = await this.#book.failed(p.id, "the authorization expired unsettled");
        this.#onEvent({ kind: "failed", payment: p, detail: "expired unsettled" });
        if (debt > 0n) this.#noteDebt(p, debt);
        changed++;
        continue;
      }
      // Settle the stored payment again (it was checked when it arrived; the chain accepts it once).
      let input: SettleInput;
      try {
        const payment = decodePaymentPayload(encodeX402Header(JSON.parse(p.payload)));
        const ev = exactEvmPayload(payment);
        input = { payment, requirements: payment.accepted, authorization: ev.authorization, signature: ev.signature as `0x${string}` };
      } catch {
        continue;
      }
      await this.#record(p, await this.#settler.settle(input));
      changed++;
    }
    return changed;
  }
}
