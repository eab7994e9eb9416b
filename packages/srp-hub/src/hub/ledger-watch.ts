/**
 * The hub's `ledger` event: what consumers' reservations (SRP-BIL-003) do in this process,
 * held at admission, settled by a receipt, or released unbilled. A thin wrapper over the
 * hub's {@link HubLedger} reports holds and releases; job dispatch hands it each receipt's
 * settlement. Nothing is reported, remembered or awaited on top while nobody listens; while
 * someone does, the amount of each reservation held here is remembered until it closes, so
 * that a release can say how much came back.
 */
import type { HubLedger, ReserveManyResult, ReserveResult } from "../ledger/ledger.js";
import type { HubEmitter, LedgerEvent } from "./types.js";

/** At most this many open reservations' amounts are remembered (the oldest are forgotten first). */
const MAX_REMEMBERED = 100_000;

/** The settlement of one reservation as a receipt book reports it (a `SqlStore`'s `SettledJob`), or undefined (pure). */
export function settlementOf(value: unknown): { reservationId: string; charge: bigint; refund: bigint } | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const s = value as { reservationId?: unknown; charge?: unknown; refund?: unknown };
  return typeof s.reservationId === "string" && typeof s.charge === "bigint" && typeof s.refund === "bigint"
    ? { reservationId: s.reservationId, charge: s.charge, refund: s.refund }
    : undefined;
}

/** Reports a hub's reservations on its `ledger` event. */
export class LedgerWatch {
  readonly #emitter: HubEmitter;
  /** Amounts of reservations held here while someone listened, until they close. */
  readonly #open = new Map<string, bigint>();

  constructor(emitter: HubEmitter) {
    this.#emitter = emitter;
  }

  /** Whether someone listens to the `ledger` event. */
  get listening(): boolean {
    return this.#emitter.listenerCount("ledger") > 0;
  }

  /** The ledger with its holds and releases reported (the same methods, delegated). */
  wrap(ledger: HubLedger): HubLedger {
    const watched: HubLedger = {
      reserve: async (accountId, amount, key) => {
        const r: ReserveResult = await ledger.reserve(accountId, amount, key);
        if (r.ok && this.listening) this.#held([r.reservationId], [amount]);
        return r;
      },
      release: async (reservationId, reason) => {
        const released = await ledger.release(reservationId, reason);
        if (released) this.#released([reservationId]);
        else this.#open.delete(reservationId);
        return released;
      },
    };
    const { reserveMany, reconcile, closure } = ledger;
    if (reserveMany)
      watched.reserveMany = async (accountId, amounts, extraDiscountBps, key) => {
        const r: ReserveManyResult = await reserveMany.call(ledger, accountId, amounts, extraDiscountBps, key);
        if (r.ok && this.listening) this.#held(r.reservationIds, amounts);
        return r;
      };
    if (reconcile)
      watched.reconcile = async (options) => {
        const ids = await reconcile.call(ledger, options);
        if (ids.length > 0) this.#released(ids);
        return ids;
      };
    if (closure) watched.closure = (reservationId) => closure.call(ledger, reservationId);
    return watched;
  }

  /** Reports the settlement a receipt's recording resolves to (job dispatch calls it for each receipt it records). */
  settlement(recorded: Promise<unknown>): void {
    if (!this.listening) return;
    recorded.then(
      (value) => {
        const s = settlementOf(value);
        if (s === undefined) return;
        this.#open.delete(s.reservationId);
        this.#emitter.emit("ledger", { outcome: "settled", reservations: 1, charged: s.charge, returned: s.refund });
      },
      () => {},
    );
  }

  #held(ids: readonly string[], amounts: readonly bigint[]): void {
    let amount = 0n;
    for (let i = 0; i < ids.length; i++) {
      amount += amounts[i]!;
      if (this.#open.size >= MAX_REMEMBERED) this.#open.delete(this.#open.keys().next().value!);
      this.#open.set(ids[i]!, amounts[i]!);
    }
    this.#emitter.emit("ledger", { outcome: "held", reservations: ids.length, amount });
  }

  #released(ids: readonly string[]): void {
    let returned: bigint | undefined;
    for (const id of ids) {
      const amount = this.#open.get(id);
      if (amount === undefined) continue;
      this.#open.delete(id);
      returned = (returned ?? 0n) + amount;
    }
    if (!this.listening) return;
    const event: LedgerEvent =
      returned === undefined
        ? { outcome: "released", reservations: ids.length }
        : { outcome: "released", reservations: ids.length, returned };
    this.#emitter.emit("ledger", event);
  }
}
