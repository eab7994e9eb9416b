/**
 * The hub's adapter to the card processor (Stripe, through the official `stripe`
 * library): creates Checkout Sessions for card deposits, verifies the signature of the
 * webhook events it sends, and refunds card payments. Thin on purpose: what a deposit or a
 * refund means is decided in `card-policy.ts`, `storage/card-book.ts` and `api/cards.ts`.
 */
import type Stripe from "stripe";
import type { CompletedSession } from "./card-policy.js";

/** How a hub takes card deposits (`createHub({ cards })`, spec/v1/billing.md "Card deposits"). */
export interface HubCardOptions {
  /** The Stripe secret key (`sk_live_…`, `sk_test_…`, or a restricted key allowed Checkout Sessions and refunds). */
  secretKey: string;
  /** The signing secret of the webhook endpoint registered for `POST /v1/stripe/webhook` (`whsec_…`). */
  webhookSecret: string;
  /** Where the buyer lands after paying (Stripe may substitute `{CHECKOUT_SESSION_ID}`). */
  successUrl: string;
  /** Where the buyer lands after leaving the payment page. */
  cancelUrl: string;
  /** The name of the line item on the payment page; default "Prepaid balance". */
  productName?: string;
  /** Another base URL for the Stripe API (tests: a local stand-in), e.g. `http://127.0.0.1:12111`. */
  apiBase?: string;
  /** How long one call to the API may take; default 30 s. */
  timeoutMs?: number;
}

/** A Checkout Session as the hub keeps it. */
export interface CreatedSession {
  id: string;
  url: string;
}

/** What a signed webhook event is, as far as the hub acts on it. */
export type CardEvent =
  | { id: string; type: "checkout.session.completed" | "checkout.session.async_payment_succeeded"; session: CompletedSession }
  | { id: string; type: "checkout.session.expired"; sessionId: string; depositId: string | null }
  | {
      id: string;
      type: "refund.failed";
      refundId: string;
      /** `metadata.srp_refund`: the share the refund was made for (set by {@link CardProcessor.refund}'s caller). */
      shareId: string | null;
      reason: string | null;
    }
  | { id: string; type: "other"; eventType: string };

/** The outcome of a refund call: made (Stripe's refund id and status), surely not made, or unknown. */
export type CardRefundCall =
  | { kind: "made"; refundId: string; status: string }
  | { kind: "refused"; reason: string }
  | { kind: "unknown"; reason: string };

/** What a look-up of a refund found: it (made, or refused when it failed), none, or unknown (the look-up failed). */
export type CardRefundLookup = CardRefundCall | { kind: "none" };

/** The card processor as the hub uses it; {@link StripeCards} is the real one. */
export interface CardProcessor {
  /** Creates a Checkout Session for a deposit (idempotent by the deposit id), payable until `expiresAt` (Unix ms). */
  createSession(deposit: { id: string; accountId: string; units: bigint; cents: bigint }, expiresAt: number): Promise<CreatedSession>;
  /** Verifies a webhook delivery's `Stripe-Signature` over its exact raw bytes; throws {@link CardSignatureError}. */
  verify(payload: Buffer, signature: string): Promise<CardEvent>;
  /** Refunds `cents` of a payment (idempotent by `idempotencyKey`). */
  refund(paymentIntent: string, cents: bigint, idempotencyKey: string, metadata: Record<string, string>): Promise<CardRefundCall>;
  /** The refund of a payment whose `metadata.srp_refund` is `shareId`, if the processor has one. */
  findRefund(paymentIntent: string, shareId: string): Promise<CardRefundLookup>;
}

/** A webhook delivery whose signature does not verify (or is too old). */
export class CardSignatureError extends Error {
  override readonly name = "CardSignatureError";
}

/** The library's client options for a base URL (`apiBase`), or none for Stripe itself (pure). */
export function stripeHostOptions(apiBase: string | undefined): { host?: string; port?: number; protocol?: "http" | "https" } {
  if (apiBase === undefined) return {};
  const url = new URL(apiBase);
  const protocol = url.protocol === "http:" ? "http" : "https";
  return { host: url.hostname, port: Number(url.port || (protocol === "http" ? 80 : 443)), protocol };
}

/** The fields the hub checks of a Checkout Session object in an event (pure). */
export function completedSessionOf(object: Record<string, unknown>): CompletedSession {
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  const metadata = (object.metadata ?? {}) as Record<string, unknown>;
  const intent = object.payment_intent;
  return {
    sessionId: String(object.id),
    accountId: str(object.client_reference_id),
    depositId: str(metadata.srp_deposit),
    amountTotal: typeof object.amount_total === "number" ? object.amount_total : null,
    currency: str(object.currency),
    mode: str(object.mode),
    paymentStatus: str(object.payment_status),
    // Expanded or not: the id either way.
    paymentIntent: typeof intent === "string" ? intent : str((intent as { id?: unknown } | null)?.id),
  };
}

/** A refund object's outcome as a {@link CardRefundCall} (pure): failed or canceled is refused, else made. */
export function refundCallOf(refund: { id: string; status?: string | null }): CardRefundCall {
  if (refund.status === "failed" || refund.status === "canceled") return { kind: "refused", reason: `the refund is ${refund.status}` };
  return { kind: "made", refundId: refund.id, status: refund.status ?? "pending" };
}

/** Whether a failed call surely did not happen: the API refused it (4xx other than a conflict or a rate limit). */
export function surelyRefused(error: unknown): boolean {
  const status = (error as { statusCode?: unknown })?.statusCode;
  return typeof status === "number" && status >= 400 && status < 500 && status !== 409 && status !== 429;
}

/** The card processor through the official `stripe` library. */
export class StripeCards implements CardProcessor {
  #stripe: Promise<Stripe> | undefined;
  readonly #options: HubCardOptions;

  constructor(options: HubCardOptions) {
    this.#options = options;
  }

  /** The library's client, loaded on first use (a hub or CLI command that takes no cards never loads it). */
  #client(): Promise<Stripe> {
    const o = this.#options;
    this.#stripe ??= import("stripe").then(
      ({ default: StripeClient }) =>
        new StripeClient(o.secretKey, {
          ...stripeHostOptions(o.apiBase),
          timeout: o.timeoutMs ?? 30_000,
          telemetry: false,
          appInfo: { name: "@srp/hub" },
        }),
    );
    return this.#stripe;
  }

  async createSession(
    deposit: { id: string; accountId: string; units: bigint; cents: bigint },
    expiresAt: number,
  ): Promise<CreatedSession> {
    const metadata = { srp_account: deposit.accountId, srp_amount: deposit.units.toString(), srp_deposit: deposit.id };
    const session = await (await this.#client()).checkout.sessions.create(
      {
        mode: "payment",
        line_items: [
          {
            quantity: 1,
            price_data: {
              currency: "usd",
              unit_amount: Number(deposit.cents),
              product_data: { name: this.#options.productName ?? "Prepaid balance" },
            },
          },
        ],
        client_reference_id: deposit.accountId,
        metadata,
        payment_intent_data: { metadata },
        success_url: this.#options.successUrl,
        cancel_url: this.#options.cancelUrl,
        expires_at: Math.floor(expiresAt / 1000),
      },
      { idempotencyKey: `srp-session-${deposit.id}` },
    );
    if (!session.url) throw new Error(`Checkout Session ${session.id} has no url`);
    return { id: session.id, url: session.url };
  }

  async verify(payload: Buffer, signature: string): Promise<CardEvent> {
    let event: Stripe.Event;
    try {
      event = await (await this.#client()).webhooks.constructEventAsync(payload, signature, this.#options.webhookSecret);
    } catch (error) {
      throw new CardSignatureError((error as Error).message);
    }
    const object = event.data.object as unknown as Record<string, unknown>;
    if (event.type === "checkout.session.completed" || event.type === "checkout.session.async_payment_succeeded") {
      return { id: event.id, type: event.type, session: completedSessionOf(object) };
    }
    if (event.type === "checkout.session.expired") {
      const metadata = (object.metadata ?? {}) as Record<string, unknown>;
      const depositId = typeof metadata.srp_deposit === "string" ? metadata.srp_deposit : null;
      return { id: event.id, type: "checkout.session.expired", sessionId: String(object.id), depositId };
    }
    if (event.type === "refund.failed") {
      const metadata = (object.metadata ?? {}) as Record<string, unknown>;
      return {
        id: event.id,
        type: "refund.failed",
        refundId: String(object.id),
        shareId: typeof metadata.srp_refund === "string" ? metadata.srp_refund : null,
        reason: (object.failure_reason as string | null) ?? null,
      };
    }
    return { id: event.id, type: "other", eventType: event.type };
  }

  async refund(paymentIntent: string, cents: bigint, idempotencyKey: string, metadata: Record<string, string>): Promise<CardRefundCall> {
    try {
      const refund = await (await this.#client()).refunds.create(
        { payment_intent: paymentIntent, amount: Number(cents), reason: "requested_by_customer", metadata },
        { idempotencyKey },
      );
      return refundCallOf(refund);
    } catch (error) {
      const reason = (error as Error)?.message ?? String(error);
      return surelyRefused(error) ? { kind: "refused", reason } : { kind: "unknown", reason };
    }
  }

  async findRefund(paymentIntent: string, shareId: string): Promise<CardRefundLookup> {
    try {
      // A payment has few refunds: every page is read (the library pages on).
      for await (const refund of (await this.#client()).refunds.list({ payment_intent: paymentIntent, limit: 100 })) {
        if (refund.metadata?.srp_refund === shareId) return refundCallOf(refund);
      }
      return { kind: "none" };
    } catch (error) {
      return { kind: "unknown", reason: (error as Error)?.message ?? String(error) };
    }
  }
}
