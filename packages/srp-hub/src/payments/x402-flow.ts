/**
 * The x402 payment flow of a hub: offer, verify, lock, settle (before or after serving),
 * credit the payer's wallet account, and reconcile outcomes that were not known in time.
 * Verification is stateless; the durable lock in the {@link PaymentBook} is what makes
 * one authorization buy one request, however many copies arrive and whenever.
 */
import { canonicalize, SrpError } from "@srp/core";
import {
  decodePaymentPayload,
  decodePaymentPayloadV1,
  encodeX402Header,
  v1NetworkOf,
  X402_HEADERS,
  X402_V1_HEADERS,
  type PaymentPayload,
  type PaymentRequirements,
  type SettlementResponse,
} from "@srp/core/x402";
import type { PaymentBook, PaymentRecord, SettleMode } from "./book.js";
import type { SettleResult, Settler } from "./authorization-settlers.js";
import { evmRail } from "./evm-rail.js";
import type { PaymentLock, PaymentRail, RailPayment } from "./rail.js";
import { paymentFromV1, paymentRequired, type PaidResource, type X402Terms } from "./x402-policy.js";

/** Something that happened to a payment, for operators' logs and metrics. */
export interface PaymentEvent {
  kind: "settled" | "failed" | "unknown" | "debt";
  payment: PaymentRecord;
  detail?: string;
}

/** Options of {@link X402Payments}. */
export interface X402PaymentsOptions {
  /** The EVM network's terms: the first rail offered, and the one version-1 clients pay on. */
  terms: X402Terms;
  /** Settle before serving (the payer's money moves first) or after (only served requests move money). */
  mode: SettleMode;
  /** Settles payments on the EVM network of `terms`. */
  settler: Settler;
  /** More networks offered in the same 402, after the EVM one (such as Solana's, `svmRail`). */
  rails?: readonly PaymentRail[];
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
  /** The networks offered, the EVM one first. */
  readonly rails: readonly PaymentRail[];
  readonly #byNetwork: ReadonlyMap<string, PaymentRail>;
  readonly #book: PaymentBook;
  readonly #onEvent: (event: PaymentEvent) => void;
  /** Payments whose request this process is serving or settling now. */
  readonly #inFlight = new Set<string>();
  /** Unfinished payments on a network no longer offered, whose operator was told. */
  readonly #orphans = new Set<string>();

  constructor(options: X402PaymentsOptions) {
    this.terms = options.terms;
    this.mode = options.mode;
    this.rails = [evmRail(options.terms, options.settler), ...(options.rails ?? [])];
    this.#byNetwork = new Map(this.rails.map((r) => [r.network, r]));
    if (this.#byNetwork.size !== this.rails.length) throw new RangeError("two payment rails on one network");
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

  /** The settlers' names, the EVM one first (`direct`, `facilitator`, `direct+svm`). */
  get settlerName(): string {
    return [...new Set(this.rails.map((r) => r.settlerName))].join("+");
  }

  /** The requirements offered on the EVM network for a request that may cost up to `amount`. */
  offer(amount: bigint): PaymentRequirements {
    return this.rails[0]!.offer(amount);
  }

  /** The requirements offered on every network for a request that may cost up to `amount` (a 402's `accepts`). */
  offers(amount: bigint): PaymentRequirements[] {
    return this.rails.filter((r) => amount >= r.minAmount || r === this.rails[0]).map((r) => r.offer(amount));
  }

  /** A 402 response for a request that may cost up to `amount`, optionally saying why an earlier payment failed. */
  required(amount: bigint, resource: PaidResource, error?: SrpError): Response {
    const doc = paymentRequired(
      this.offers(amount),
      resource,
      error ? `${error.code}: ${error.message}` : "payment required: pay with x402 or send an API key",
    );
    const code = error?.code ?? "payment.required";
    const v1 = this.rails[0]!.offerV1(amount, resource);
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

  /**
   * Admits a request paid with the payment header `header` (`PAYMENT-SIGNATURE`, or a
   * version-1 `X-PAYMENT`, read as the version-2 payment it stands for) for a request that
   * may cost up to `amount`: the payment must pay one of the rails' offers for it, on the
   * network it names. Returns the admission, or the error to answer with (a 402 for payment
   * problems, with fresh requirements). `mode` overrides the hub's settlement mode (a
   * deposit always settles first); `debtorMayPay` admits a blocked wallet (a deposit, which
   * repays its debt first).
   */
  async admit(
    header: PaymentHeader | string,
    amount: bigint,
    resourceUrl: string,
    options: { now?: number; mode?: SettleMode; debtorMayPay?: boolean } = {},
  ): Promise<Admission | SrpError> {
    const now = options.now ?? Date.now();
    const given = typeof header === "string" ? { version: 2 as const, value: header } : header;
    const payment = this.#decode(given, amount);
    if (payment instanceof SrpError) return payment;
    const version = given.version;
    const rail = this.#byNetwork.get(payment.accepted.network);
    if (!rail || (rail !== this.rails[0] && amount < rail.minAmount))
      return new SrpError(
        "payment.wrong_network",
        `network ${payment.accepted.network} is not accepted for this request; pay on ${this.offers(amount)
          .map((r) => r.network)
          .join(" or ")}`,
      );
    // A rail whose payments expire within a minute is settled before serving, whatever the hub's mode.
    const mode = rail.settlesFirst ? "before" : (options.mode ?? this.mode);
    const checked = await rail.check(payment, rail.offer(amount), Math.floor(now / 1000));
    if (checked instanceof SrpError) return checked;
    const { lock } = checked;
    const payload = canonicalize(payment);
    const accountId = await this.#book.walletAccount(lock.payer);
    const debt = await this.#book.debtOf(accountId);
    if (debt > 0n && options.debtorMayPay !== true)
      return new SrpError("payment.wallet_blocked", `wallet ${lock.payer} owes ${debt} units from a payment that did not settle`, {
        details: { debt: debt.toString() },
      });

    // A copy of a payment already locked: the same document may resume (its settlement was pending); anything else is a replay.
    const existing = await this.#book.lock({ ...lock, accountId, mode, resource: resourceUrl, payload });
    if (!existing.locked) return this.#resume(existing.record, payload, rail, checked, version);
    const record = existing.record;
    this.#inFlight.add(record.id);
    try {
      const admitted = await this.#admitLocked(record, rail, checked, mode, version);
      // Admitted: in flight until the request finishes; refused: done now.
      if (admitted instanceof SrpError) this.#inFlight.delete(record.id);
      return admitted;
    } catch (error) {
      this.#inFlight.delete(record.id);
      throw error;
    }
  }

  /** A payment header's document as a version-2 payment, or why it is not one (a version-1 payment pays the EVM rail's offer). */
  #decode(header: PaymentHeader, amount: bigint): PaymentPayload | SrpError {
    try {
      if (header.version === 2) return decodePaymentPayload(header.value);
      return paymentFromV1(decodePaymentPayloadV1(header.value), this.rails[0]!.offer(amount), this.terms);
    } catch (error) {
      return error as SrpError;
    }
  }

  /** The rest of {@link admit} for a payment this call locked. */
  async #admitLocked(
    record: PaymentRecord,
    rail: PaymentRail,
    input: RailPayment,
    mode: SettleMode,
    version: 1 | 2,
  ): Promise<Admission | SrpError> {
    // Stateless on-chain checks after the lock: a failure burns nothing on-chain, and the payer signs anew.
    const pre = await rail.preflight(input);
    if (!pre.ok) {
      await this.#book.failed(record.id, pre.message);
      return new SrpError(pre.code, pre.message);
    }
    if (mode === "after") {
      await this.#book.credit(record.id);
      await this.#book.claimService(record.id);
      return this.#admitted(record, rail, input, undefined, version);
    }
    return this.#settleThenServe(record, rail, input, version);
  }

  async #settleThenServe(record: PaymentRecord, rail: PaymentRail, input: RailPayment, version: 1 | 2): Promise<Admission | SrpError> {
    const result = await rail.settle(input);
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
    return this.#admitted(done, rail, input, result.transaction, version);
  }

  /** A copy of a locked payment arrived. */
  async #resume(
    record: PaymentRecord,
    payload: string,
    rail: PaymentRail,
    input: RailPayment,
    version: 1 | 2,
  ): Promise<Admission | SrpError> {
    const replay = new SrpError("payment.replayed", "this authorization was already used or is in use");
    if (record.payload !== payload || record.served || record.state === "locked" || record.state === "failed") return replay;
    if (record.state === "settled") {
      return (await this.#book.claimService(record.id)) ? this.#admitted(record, rail, input, record.txHash ?? "", version) : replay;
    }
    // Unknown outcome: ask the chain whether the authorization paid the hub; if it is unused, submitting it again is safe.
    const o = await rail.outcome(lockOf(record));
    if (o === undefined)
      return new SrpError(
        "payment.settlement_pending",
        "the settlement's outcome is still not known; retry with the same PAYMENT-SIGNATURE",
      );
    if (o.state === "paid") {
      await this.#record(record, { outcome: "settled", transaction: o.transaction });
      return (await this.#book.claimService(record.id)) ? this.#admitted(record, rail, input, o.transaction, version) : replay;
    }
    if (o.state === "spent") {
      await this.#record(record, { outcome: "failed", reason: "the payer spent the authorization's nonce without paying the hub" });
      return new SrpError("payment.settlement_failed", "the authorization's nonce was spent without paying the hub");
    }
    return this.#settleThenServe(record, rail, input, version);
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

  #admitted(record: PaymentRecord, rail: PaymentRail, input: RailPayment, transaction: string | undefined, version: 1 | 2): Admission {
    const end = async (served: boolean): Promise<string> => {
      if (transaction !== undefined) return this.#response(record, version, true, transaction);
      if (!served) {
        // Nothing was served: the authorization is given up unused and the credit taken back.
        const debt = await this.#book.failed(record.id, "the request was not served; the authorization was not used");
        if (debt > 0n) this.#noteDebt(record, debt);
        return this.#response(record, version, false, null, "not served: the authorization was not used");
      }
      const result = await rail.settle(input);
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
      const rail = this.#byNetwork.get(p.network);
      // A payment on a network this hub no longer offers is left for an operator (the chain is not reachable from here), who is told once.
      if (!rail) {
        if (!this.#orphans.has(p.id)) {
          this.#orphans.add(p.id);
          this.#onEvent({ kind: "unknown", payment: p, detail: `network ${p.network} is no longer offered: resolve this payment by hand` });
        }
        continue;
      }
      const o = await rail.outcome(lockOf(p));
      if (o === undefined) continue;
      if (o.state !== "unused") {
        // Paid the hub: settled. Spent otherwise: failed (and, when it was credited, a debt).
        await this.#record(
          p,
          o.state === "paid"
            ? { outcome: "settled", transaction: o.transaction }
            : { outcome: "failed", reason: "the payment was spent on-chain without paying the hub, or can no longer land" },
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
      let input: RailPayment | undefined;
      try {
        input = rail.restore(decodePaymentPayload(encodeX402Header(JSON.parse(p.payload))));
      } catch {
        input = undefined;
      }
      if (!input) continue;
      await this.#record(p, await rail.settle(input));
      changed++;
    }
    return changed;
  }
}

/** What a stored payment locked. */
function lockOf(p: PaymentRecord): PaymentLock {
  return { network: p.network, asset: p.asset, payer: p.payer, nonce: p.nonce, amount: p.amount, validBefore: p.validBefore };
}
