/**
 * A local stand-in for the parts of the Stripe API a hub that takes cards calls:
 * `POST /v1/checkout/sessions`, `POST /v1/refunds` and `GET /v1/refunds?payment_intent=…`,
 * answered in the documented JSON shapes (a `checkout.session`, a `refund`, a list), replaying
 * the first answer for a repeated `Idempotency-Key` as the real API does, and recording every
 * call. It also builds the `checkout.session.completed` and `checkout.session.expired` events
 * of a session it created, for the test to sign with the official library's
 * `generateTestHeaderString`.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One call the stand-in received: its method, path, form fields (or query), and idempotency key. */
export interface StripeCall {
  method: string;
  path: string;
  form: Record<string, string>;
  idempotencyKey: string | undefined;
  authorization: string | undefined;
}

/** A Checkout Session as the stand-in created it. */
export type StandInSession = Record<string, unknown> & { id: string; amount_total: number; metadata: Record<string, string> };

/** The running stand-in. */
export interface StripeStandIn {
  /** `http://127.0.0.1:<port>`: the hub's `cards.apiBase`. */
  url: string;
  calls: StripeCall[];
  sessions: Map<string, StandInSession>;
  /**
   * Refunds answer this way: `succeeded` (default), a 400 refusal, a 500, or `lost`: the
   * refund is made but the answer is a 500 (a call that timed out after it happened).
   */
  refunds: "succeed" | "refuse" | "error" | "lost";
  /** Every refund made, as the API lists them. */
  made: Record<string, unknown>[];
  /** The `checkout.session.completed` event of a created session, paid (fields overridable). */
  completedEvent(sessionId: string, change?: Record<string, unknown>, eventId?: string): string;
  /** The `checkout.session.expired` event of a created session. */
  expiredEvent(sessionId: string): string;
  close(): Promise<void>;
}

const id = (prefix: string) => `${prefix}_test_${randomBytes(12).toString("hex")}`;

/** Starts the stand-in on a free loopback port. */
export async function startStripeStandIn(): Promise<StripeStandIn> {
  const calls: StripeCall[] = [];
  const sessions = new Map<string, StandInSession>();
  const replies = new Map<string, { status: number; body: unknown }>();
  const event = (type: string, object: Record<string, unknown>, eventId = id("evt")) =>
    JSON.stringify({
      id: eventId,
      object: "event",
      api_version: "2025-11-17.clover",
      created: Math.floor(Date.now() / 1000),
      data: { object },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    });
  const state: StripeStandIn = {
    url: "",
    calls,
    sessions,
    refunds: "succeed",
    made: [],
    expiredEvent(sessionId) {
      const session = sessions.get(sessionId);
      if (!session) throw new Error(`no session ${sessionId}`);
      return event("checkout.session.expired", { ...session, status: "expired" });
    },
    completedEvent(sessionId, change = {}, eventId = id("evt")) {
      const session = sessions.get(sessionId);
      if (!session) throw new Error(`no session ${sessionId}`);
      const object = { ...session, status: "complete", payment_status: "paid", payment_intent: `pi_for_${sessionId}`, ...change };
      return JSON.stringify({
        id: eventId,
        object: "event",
        api_version: "2025-11-17.clover",
        created: Math.floor(Date.now() / 1000),
        data: { object },
        livemode: false,
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
        type: "checkout.session.completed",
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  // Refunds made, by idempotency key: a retried call whose answer was lost makes no second refund.
  const madeByKey = new Map<string, Record<string, unknown>>();
  const answer = (path: string, form: Record<string, string>, key: string | undefined): { status: number; body: unknown } => {
    const now = Math.floor(Date.now() / 1000);
    if (path === "/v1/checkout/sessions") {
      const sessionId = id("cs");
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(form)) {
        const m = /^metadata\[(.+)\]$/.exec(k);
        if (m) metadata[m[1]!] = v;
      }
      const cents = Number(form["line_items[0][price_data][unit_amount]"]) * Number(form["line_items[0][quantity]"] ?? "1");
      const session: StandInSession = {
        id: sessionId,
        object: "checkout.session",
        amount_subtotal: cents,
        amount_total: cents,
        cancel_url: form.cancel_url ?? null,
        client_reference_id: form.client_reference_id ?? null,
        created: now,
        currency: form["line_items[0][price_data][currency]"] ?? "usd",
        expires_at: form.expires_at === undefined ? now + 86_400 : Number(form.expires_at),
        livemode: false,
        metadata,
        mode: form.mode ?? "payment",
        payment_intent: null,
        payment_status: "unpaid",
        status: "open",
        success_url: form.success_url ?? null,
        url: `https://checkout.stripe.com/c/pay/${sessionId}`,
      };
      sessions.set(sessionId, session);
      return { status: 200, body: session };
    }
    if (path === "/v1/refunds") {
      if (state.refunds === "refuse") {
        return {
          status: 400,
          body: { error: { type: "invalid_request_error", code: "charge_already_refunded", message: "Charge has already been refunded." } },
        };
      }
      if (state.refunds === "error") return { status: 500, body: { error: { type: "api_error", message: "An unknown error occurred" } } };
      const refund = (key === undefined ? undefined : madeByKey.get(key)) ?? {
        id: id("re"),
        object: "refund",
        amount: Number(form.amount),
        currency: "usd",
        created: now,
        metadata: Object.fromEntries(
          Object.entries(form)
            .filter(([k]) => k.startsWith("metadata["))
            .map(([k, v]) => [k.slice(9, -1), v]),
        ),
        payment_intent: form.payment_intent,
        reason: form.reason ?? null,
        status: "succeeded",
      };
      if (!state.made.includes(refund)) {
        state.made.push(refund);
        if (key !== undefined) madeByKey.set(key, refund);
      }
      if (state.refunds === "lost") return { status: 500, body: { error: { type: "api_error", message: "An unknown error occurred" } } };
      return { status: 200, body: refund };
    }
    return { status: 404, body: { error: { type: "invalid_request_error", message: `Unrecognized request URL (POST: ${path})` } } };
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const [path = "", query = ""] = (req.url ?? "").split("?");
      const method = req.method ?? "GET";
      const form = Object.fromEntries(new URLSearchParams(method === "GET" ? query : Buffer.concat(chunks).toString("utf8")));
      const key = req.headers["idempotency-key"] as string | undefined;
      calls.push({ method, path, form, idempotencyKey: key, authorization: req.headers.authorization });
      if (method === "GET" && path === "/v1/refunds") {
        // The list of a payment's refunds, newest first, in one page.
        const data = state.made.filter((r) => r.payment_intent === form.payment_intent).reverse();
        res.writeHead(200, { "content-type": "application/json", "request-id": id("req") });
        res.end(JSON.stringify({ object: "list", data, has_more: false, url: "/v1/refunds" }));
        return;
      }
      const replayKey = key === undefined ? undefined : `${path} ${key}`;
      const reply = (replayKey && replies.get(replayKey)) || answer(path, form, key);
      if (replayKey && reply.status < 500) replies.set(replayKey, reply);
      res.writeHead(reply.status, { "content-type": "application/json", "request-id": id("req") });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
