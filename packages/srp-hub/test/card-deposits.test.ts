/**
 * Card deposits end to end with real parts: a hub on a SQLite file and on PostgreSQL, the
 * official `stripe` library talking to a local stand-in for its API (test/support/stripe-api.ts),
 * and webhook events signed with the library's `generateTestHeaderString`. The books must
 * verify after every test.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { createHub, NO_POLICY, openStore, type Hub, type SqlStore } from "../src/index.js";
import { startStripeStandIn, type StripeStandIn } from "../../../test/support/stripe-api.js";
import { createDatabase, startPostgres, type TestPostgres } from "../../../test/support/postgres.js";

const WEBHOOK_SECRET = "whsec_test_secret_for_card_deposits";
const dir = mkdtempSync(join(tmpdir(), "srp-cards-"));
let pg: TestPostgres | undefined;
let api: StripeStandIn;
let n = 0;

beforeAll(async () => {
  pg = await startPostgres();
  api = await startStripeStandIn();
}, 60_000);
afterAll(async () => {
  await api?.close();
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Rig {
  store: SqlStore;
  hub: Hub;
  url: string;
  key: string;
  accountId: string;
  events: { kind: string; reason?: string }[];
  close(): Promise<void>;
}

const engines: Array<[string, () => Promise<SqlStore>]> = [
  ["SQLite", () => openStore(`sqlite:${join(dir, `cards-${++n}.db`)}`, { signupCredits: 0n })],
  ["PostgreSQL", async () => openStore(await createDatabase(pg!.url, `cards_${++n}`), { signupCredits: 0n })],
];

async function rig(open: () => Promise<SqlStore>): Promise<Rig> {
  const store = await open();
  const account = await store.createAccount({ name: "card buyer" });
  const { key } = await store.createApiKey(account.id);
  const hub = createHub({
    identity: generateIdentity(),
    accounts: store,
    storage: store,
    cards: {
      secretKey: "sk_test_stand_in",
      webhookSecret: WEBHOOK_SECRET,
      successUrl: "https://hub.example/paid",
      cancelUrl: "https://hub.example/cancelled",
      apiBase: api.url,
    },
  });
  const events: Rig["events"] = [];
  hub.on("card", (e) => events.push(e));
  const { url } = await hub.listen({ port: 0, host: "127.0.0.1" });
  return {
    store,
    hub,
    url,
    key,
    accountId: account.id,
    events,
    async close() {
      expect(await store.verify()).toEqual([]);
      await hub.close();
      await store.close();
    },
  };
}

async function deposit(r: Rig, amount: string) {
  const res = await fetch(`${r.url}/v1/account/deposits/card`, {
    method: "POST",
    headers: { authorization: `Bearer ${r.key}`, "content-type": "application/json" },
    body: JSON.stringify({ amount }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Delivers an event as Stripe does: the raw body and its `Stripe-Signature`, signed by the official library. */
async function deliver(r: Rig, payload: string, secret = WEBHOOK_SECRET) {
  const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret });
  const res = await fetch(`${r.url}/v1/stripe/webhook`, {
    method: "POST",
    headers: { "stripe-signature": signature, "content-type": "application/json" },
    body: payload,
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** `POST /v1/account/refund` with the rig's key (or another), and an `Idempotency-Key` when given. */
async function refundOf(r: Rig, key: string | null, apiKey = r.key) {
  const headers: Record<string, string> = { authorization: `Bearer ${apiKey}` };
  if (key !== null) headers["idempotency-key"] = key;
  const res = await fetch(`${r.url}/v1/account/refund`, { method: "POST", headers });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

/** A signed `refund.failed` event for a refund id, with the share id its metadata carries. */
function refundFailedEvent(refundId: string, shareId: string | null, eventId = `evt_rf_${refundId}`): string {
  return JSON.stringify({
    id: eventId,
    object: "event",
    type: "refund.failed",
    data: {
      object: {
        id: refundId,
        object: "refund",
        status: "failed",
        failure_reason: "expired_or_canceled_card",
        metadata: shareId === null ? {} : { srp_refund: shareId },
      },
    },
  });
}

async function account(r: Rig) {
  const res = await fetch(`${r.url}/v1/account`, { headers: { authorization: `Bearer ${r.key}` } });
  return (await res.json()) as Record<string, any>;
}

describe.each(engines)("card deposits on %s", (_engine, open) => {
  it("creates a Checkout Session, and the signed completion credits the recorded amount once", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "25000000");
      expect(made.status).toBe(200);
      expect(made.body).toMatchObject({ object: "srp.card_deposit", amount: { units: "25000000" } });
      expect(made.body.url).toMatch(/^https:\/\/checkout\.stripe\.com\//);
      const call = api.calls.find((c) => c.path === "/v1/checkout/sessions" && c.form["metadata[srp_deposit]"] === made.body.id)!;
      expect(call.form).toMatchObject({
        mode: "payment",
        client_reference_id: r.accountId,
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "2500",
        "metadata[srp_account]": r.accountId,
        "metadata[srp_amount]": "25000000",
      });
      expect(call.idempotencyKey).toBe(`srp-session-${made.body.id}`);
      expect(call.authorization).toBe("Bearer sk_test_stand_in");
      // Nothing is credited before the webhook.
      expect((await account(r)).balance.units).toBe("0");

      const payload = api.completedEvent(made.body.session);
      expect(await deliver(r, payload)).toEqual({ status: 200, body: { received: true, credited: true } });
      const after = await account(r);
      expect(after).toMatchObject({ balance: { units: "25000000" }, prepaid: { units: "25000000" }, deposited: { units: "25000000" } });
      // The same event again, and another event for the same session: 200, nothing more.
      expect(await deliver(r, payload)).toEqual({ status: 200, body: { received: true, credited: false } });
      expect(await deliver(r, api.completedEvent(made.body.session))).toEqual({ status: 200, body: { received: true, credited: false } });
      expect((await account(r)).balance.units).toBe("25000000");
      const history = await r.store.history(r.accountId, 10);
      expect(history.filter((h) => h.kind === "deposit")).toEqual([
        expect.objectContaining({ ref: made.body.session, amount: 25_000_000n }),
      ]);
      expect(r.events.map((e) => e.kind)).toEqual(["session", "credited"]);
    } finally {
      await r.close();
    }
  });

  it("concurrent duplicate deliveries credit once", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "10000000");
      const payloads = [api.completedEvent(made.body.session), api.completedEvent(made.body.session)];
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => deliver(r, payloads[i % 2]!)));
      expect(answers.every((a) => a.status === 200)).toBe(true);
      expect(answers.filter((a) => a.body.credited === true)).toHaveLength(1);
      expect((await account(r)).balance.units).toBe("10000000");
    } finally {
      await r.close();
    }
  });

  it("a bad signature is 400 and writes nothing; other events and unknown sessions are acknowledged and credit nothing", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "10000000");
      const payload = api.completedEvent(made.body.session);
      const before = await r.store.cards.get(made.body.id);
      const forged = await deliver(r, payload, "whsec_someone_else");
      expect(forged.status).toBe(400);
      expect(forged.body.error.code).toBe("payment.card_signature_invalid");
      const unsigned = await fetch(`${r.url}/v1/stripe/webhook`, { method: "POST", body: payload });
      expect(unsigned.status).toBe(400);
      expect(((await unsigned.json()) as any).error.code).toBe("payment.card_signature_invalid");
      // A signed body changed after signing does not verify either.
      const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET });
      const tampered = await fetch(`${r.url}/v1/stripe/webhook`, {
        method: "POST",
        headers: { "stripe-signature": signature },
        body: payload.replace('"amount_total":1000', '"amount_total":9000'),
      });
      expect(tampered.status).toBe(400);
      expect(await r.store.cards.get(made.body.id)).toEqual(before);
      expect((await account(r)).balance.units).toBe("0");

      const other = JSON.stringify({ id: "evt_other", object: "event", type: "customer.created", data: { object: { id: "cus_1" } } });
      expect(await deliver(r, other)).toEqual({ status: 200, body: { received: true, ignored: true } });
      const stranger = JSON.parse(payload);
      stranger.data.object.id = "cs_test_not_ours";
      stranger.data.object.metadata = {};
      expect(await deliver(r, JSON.stringify(stranger))).toEqual({ status: 200, body: { received: true, credited: false } });
      expect((await account(r)).balance.units).toBe("0");
    } finally {
      await r.close();
    }
  });

  it("a completion whose amount differs from the recorded one is not credited", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "10000000");
      const answer = await deliver(r, api.completedEvent(made.body.session, { amount_total: 100 }));
      expect(answer).toEqual({ status: 200, body: { received: true, credited: false } });
      expect((await account(r)).balance.units).toBe("0");
      expect(r.events.at(-1)).toMatchObject({ kind: "refused", reason: expect.stringContaining("amount_total 100") });
      expect((await r.store.cards.get(made.body.id))?.state).toBe("open");
      // An unpaid completion is not credited either; the right one still is.
      expect(await deliver(r, api.completedEvent(made.body.session, { payment_status: "unpaid" }))).toMatchObject({
        body: { credited: false },
      });
      expect(await deliver(r, api.completedEvent(made.body.session))).toMatchObject({ body: { credited: true } });
      expect((await account(r)).balance.units).toBe("10000000");
    } finally {
      await r.close();
    }
  });

  it("refuses amounts that are not whole cents or outside the limits, and requests without a key", async () => {
    const r = await rig(open);
    try {
      for (const amount of ["10000001", "490000", "1000000000000", "abc"]) {
        const res = await deposit(r, amount);
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe("api.invalid_body");
      }
      const anonymous = await fetch(`${r.url}/v1/account/deposits/card`, { method: "POST", body: JSON.stringify({ amount: "1000000" }) });
      expect(anonymous.status).toBe(401);
    } finally {
      await r.close();
    }
  });

  it("the prepaid tier discount applies after a card deposit as after a USDC deposit; pricing and discovery announce cards", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "50000000");
      await deliver(r, api.completedEvent(made.body.session));
      const card = await account(r);
      // The same amount credited as USDC (the ledger deposit x402 deposits make).
      const usdc = await r.store.createAccount({ name: "usdc buyer" });
      await r.store.deposit(usdc.id, 50_000_000n, "x402-deposit-for-comparison");
      const usdcSummary = await r.store.summary(usdc.id);
      expect(card.discount_bps).toBe(1000);
      expect(card.discount_bps).toBe(usdcSummary.discountBps);
      expect(card.tier).toMatchObject({ min_deposit: { units: "50000000" }, discount_bps: 1000 });

      const pricing = (await (await fetch(`${r.url}/v1/pricing`)).json()) as any;
      expect(pricing.card_deposits).toMatchObject({ path: "/v1/account/deposits/card", currency: "usd", min: { units: "500000" } });
      const discovery = (await (await fetch(`${r.url}/.well-known/srp.json`)).json()) as any;
      expect(discovery.payments).toContain("card");
      expect(discovery.consumer.surfaces).toContain("srp.card_deposits");
    } finally {
      await r.close();
    }
  });

  it("refunds the unused card money through Stripe, newest payment first, at most what each brought, once per Idempotency-Key", async () => {
    const r = await rig(open);
    try {
      const first = await deposit(r, "20000000");
      await deliver(r, api.completedEvent(first.body.session));
      const second = await deposit(r, "5000000");
      await deliver(r, api.completedEvent(second.body.session));
      // $7.123456 of the $25 held by a request in flight: not refundable.
      const hold = await r.store.reserve(r.accountId, 7_123_456n);
      expect(hold.ok).toBe(true);
      const refund = (key: string) =>
        fetch(`${r.url}/v1/account/refund`, { method: "POST", headers: { authorization: `Bearer ${r.key}`, "idempotency-key": key } });
      const res = await refund("refund-1");
      expect(res.status).toBe(200);
      const body = (await res.json()) as any;
      // $17.876544 unused, rounded down to cents: $17.87 back to the cards; newest first: $5 to the second, $12.87 to the first.
      expect(body.refunded.units).toBe("17870000");
      expect(body.card_refunds.map((s: any) => [s.deposit, s.amount.units, s.state])).toEqual([
        [second.body.id, "5000000", "sent"],
        [first.body.id, "12870000", "sent"],
      ]);
      const ours = [`pi_for_${first.body.session}`, `pi_for_${second.body.session}`];
      const refundCalls = api.calls.filter((c) => c.path === "/v1/refunds" && ours.includes(c.form.payment_intent!));
      expect(refundCalls.map((c) => [c.form.payment_intent, c.form.amount])).toEqual([
        [`pi_for_${second.body.session}`, "500"],
        [`pi_for_${first.body.session}`, "1287"],
      ]);
      expect(refundCalls.map((c) => c.idempotencyKey)).toEqual(body.card_refunds.map((s: any) => s.id));
      // A retry with the same key answers the same refund and calls Stripe no more.
      const again = (await (await refund("refund-1")).json()) as any;
      expect(again.refunded.units).toBe("17870000");
      expect(api.calls.filter((c) => c.path === "/v1/refunds" && ours.includes(c.form.payment_intent!))).toHaveLength(2);
      const after = await account(r);
      expect(after.balance.units).toBe("6544"); // the sub-cent rest stays
      expect(after.refunded.units).toBe("17870000");
    } finally {
      await r.close();
    }
  });

  it("a refund Stripe refuses is credited back; one with an unknown outcome is sent again by a retry with the same key", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "10000000");
      await deliver(r, api.completedEvent(made.body.session));
      const refund = (key: string) =>
        fetch(`${r.url}/v1/account/refund`, { method: "POST", headers: { authorization: `Bearer ${r.key}`, "idempotency-key": key } });
      api.refunds = "refuse";
      const refused = (await (await refund("refused-1")).json()) as any;
      expect(refused.refunded.units).toBe("0");
      expect(refused.card_refunds[0].state).toBe("failed");
      expect(refused.other.units).toBe("0");
      // Repeated: the same answer, the failed share not reported as money of another channel.
      const repeated = (await (await refund("refused-1")).json()) as any;
      expect(repeated.card_refunds.map((s: any) => s.state)).toEqual(["failed"]);
      expect(repeated.other.units).toBe("0");
      expect((await account(r)).balance.units).toBe("10000000");
      expect((await account(r)).prepaid.units).toBe("10000000");

      api.refunds = "error";
      const unknown = await refund("unknown-1");
      expect(unknown.status).toBe(503);
      expect(((await unknown.json()) as any).error.code).toBe("payment.settlement_pending");
      expect((await account(r)).balance.units).toBe("0");
      api.refunds = "succeed";
      const resent = (await (await refund("unknown-1")).json()) as any;
      expect(resent.refunded.units).toBe("10000000");
      expect(resent.card_refunds[0].state).toBe("sent");
      const keys = api.calls.filter((c) => c.path === "/v1/refunds" && c.form.payment_intent === `pi_for_${made.body.session}`);
      expect(keys.at(-1)!.idempotencyKey).toBe(resent.card_refunds[0].id);

      // Stripe reports the sent refund failed later: its money comes back once.
      const refundId = resent.card_refunds[0].refund as string;
      const failed = JSON.stringify({
        id: "evt_refund_failed",
        object: "event",
        type: "refund.failed",
        data: { object: { id: refundId, object: "refund", status: "failed", failure_reason: "expired_or_canceled_card" } },
      });
      expect(await deliver(r, failed)).toEqual({ status: 200, body: { received: true, credited: true } });
      expect(await deliver(r, failed)).toEqual({ status: 200, body: { received: true, credited: false } });
      expect((await account(r)).balance.units).toBe("10000000");
    } finally {
      await r.close();
    }
  });
  it("other refund channels (the ledger's refund: admin API, CLI, on-chain) never pay out card money", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "10000000");
      await deliver(r, api.completedEvent(made.body.session));
      await r.store.deposit(r.accountId, 4_000_000n, "usdc-deposit-1");
      // The admin API and the CLI refund through the ledger: only the $4 beyond the card money.
      expect(await r.store.refund(r.accountId, "admin-1")).toBe(4_000_000n);
      expect(await r.store.refund(r.accountId, "admin-2")).toBe(0n);
      expect((await r.store.cards.get(made.body.id))?.refunded).toBe(0n);
      // The card money goes back to the card, whole.
      const back = await refundOf(r, "card-1");
      expect(back.status).toBe(200);
      expect(back.body.refunded.units).toBe("10000000");
      expect(back.body.card_refunds.map((s: any) => s.amount.units)).toEqual(["10000000"]);
      expect(back.body.other.units).toBe("0");
      expect((await r.store.cards.get(made.body.id))?.refunded).toBe(10_000_000n);
    } finally {
      await r.close();
    }
  });

  it("requires an Idempotency-Key to refund card money, and refuses keys held to spending controls", async () => {
    const r = await rig(open);
    try {
      // Nothing of cards to refund: no key needed.
      expect((await refundOf(r, null)).status).toBe(200);
      const made = await deposit(r, "10000000");
      await deliver(r, api.completedEvent(made.body.session));
      const keyless = await refundOf(r, null);
      expect(keyless.status).toBe(400);
      expect(keyless.body.error.code).toBe("api.invalid_body");
      expect(keyless.body.error.message).toContain("Idempotency-Key");
      const { key: limited } = await r.store.createApiKey(r.accountId, "limited", { ...NO_POLICY, models: ["some-model"] });
      const forbidden = await refundOf(r, "limited-1", limited);
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.error.code).toBe("api.forbidden");
      // A limited key may still deposit.
      expect((await deposit({ ...r, key: limited }, "1000000")).status).toBe(200);
      expect((await account(r)).balance.units).toBe("10000000");
      expect((await refundOf(r, "full-1")).body.refunded.units).toBe("10000000");
    } finally {
      await r.close();
    }
  });

  it("a pending share older than 23 hours is looked up by its metadata before it is sent again", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "10000000");
      await deliver(r, api.completedEvent(made.body.session));
      const intent = `pi_for_${made.body.session}`;
      const dayAgo = Date.now() - 24 * 3_600_000;
      // A share recorded a day ago whose call timed out after Stripe made the refund.
      const plan = await r.store.cards.refund(r.accountId, `${r.accountId}:old-1`, dayAgo);
      const share = plan.shares[0]!;
      api.made.push({
        id: "re_test_made_before_the_timeout",
        object: "refund",
        amount: Number(share.cents),
        currency: "usd",
        metadata: { srp_account: r.accountId, srp_deposit: share.depositId, srp_refund: share.id },
        payment_intent: intent,
        status: "succeeded",
      });
      const posted = () => api.calls.filter((c) => c.method === "POST" && c.path === "/v1/refunds" && c.form.payment_intent === intent);
      const before = posted().length;
      const resumed = await refundOf(r, "old-1");
      expect(resumed.status).toBe(200);
      expect(resumed.body.card_refunds).toEqual([
        expect.objectContaining({ id: share.id, state: "sent", refund: "re_test_made_before_the_timeout" }),
      ]);
      expect(posted()).toHaveLength(before);
      expect(api.calls.some((c) => c.method === "GET" && c.path === "/v1/refunds" && c.form.payment_intent === intent)).toBe(true);
      expect(api.made.filter((m) => m.payment_intent === intent)).toHaveLength(1);

      // None found: it is sent.
      const second = await deposit(r, "5000000");
      await deliver(r, api.completedEvent(second.body.session));
      const plan2 = await r.store.cards.refund(r.accountId, `${r.accountId}:old-2`, dayAgo);
      const sent = await refundOf(r, "old-2");
      expect(sent.body.card_refunds).toEqual([expect.objectContaining({ id: plan2.shares[0]!.id, state: "sent" })]);
      expect(api.made.filter((m) => m.payment_intent === `pi_for_${second.body.session}`)).toHaveLength(1);
    } finally {
      api.refunds = "succeed";
      await r.close();
    }
  });

  it("refund.failed for a share whose refund id was never recorded is credited back by the share id in its metadata", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "10000000");
      await deliver(r, api.completedEvent(made.body.session));
      api.refunds = "lost";
      const lost = await refundOf(r, "lost-1");
      expect(lost.status).toBe(503);
      api.refunds = "succeed";
      const refund = api.made.at(-1)!;
      expect(refund.metadata).toMatchObject({ srp_account: r.accountId, srp_deposit: made.body.id });
      const shareId = (refund.metadata as Record<string, string>).srp_refund!;
      expect((await account(r)).balance.units).toBe("0");
      expect(await deliver(r, refundFailedEvent(refund.id as string, shareId))).toEqual({
        status: 200,
        body: { received: true, credited: true },
      });
      expect(await deliver(r, refundFailedEvent(refund.id as string, shareId, "evt_again"))).toEqual({
        status: 200,
        body: { received: true, credited: false },
      });
      expect((await account(r)).balance.units).toBe("10000000");
      expect((await r.store.cards.get(made.body.id))?.refunded).toBe(0n);
    } finally {
      api.refunds = "succeed";
      await r.close();
    }
  });

  it("at most 5 unpaid deposits per account a day; sessions expire in an hour; expired and old deposits are swept", async () => {
    const r = await rig(open);
    try {
      const start = Date.now();
      const made: Awaited<ReturnType<typeof deposit>>[] = [];
      for (let i = 0; i < 5; i++) made.push(await deposit(r, "1000000"));
      expect(made.every((m) => m.status === 200)).toBe(true);
      const call = api.calls.find((c) => c.path === "/v1/checkout/sessions" && c.form["metadata[srp_deposit]"] === made[0]!.body.id)!;
      const expiresAt = Number(call.form.expires_at) * 1000;
      expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(start / 1000) * 1000 + 3_600_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000);
      const sixth = await fetch(`${r.url}/v1/account/deposits/card`, {
        method: "POST",
        headers: { authorization: `Bearer ${r.key}`, "content-type": "application/json" },
        body: JSON.stringify({ amount: "1000000" }),
      });
      expect(sixth.status).toBe(429);
      expect(((await sixth.json()) as any).error.code).toBe("api.rate_limited");
      expect(Number(sixth.headers.get("retry-after"))).toBeGreaterThan(23 * 3600);
      const sessions = api.calls.filter((c) => c.path === "/v1/checkout/sessions" && c.form.client_reference_id === r.accountId);
      expect(sessions).toHaveLength(5);

      // Stripe says one expired; a completion that still arrives for it (paid just before) is credited.
      expect(await deliver(r, api.expiredEvent(made[0]!.body.session))).toEqual({ status: 200, body: { received: true, credited: false } });
      expect((await r.store.cards.get(made[0]!.body.id))?.state).toBe("expired");
      expect(await deliver(r, api.completedEvent(made[1]!.body.session))).toMatchObject({ body: { credited: true } });
      // Paid: no longer counted.
      expect((await deposit(r, "1000000")).status).toBe(200);
      expect((await deposit(r, "1000000")).status).toBe(429);

      // By age: open deposits expire two hours after creation, and uncredited ones go after 30 days.
      await r.store.cards.sweep(Date.now() + 2 * 3_600_000 + 1000);
      expect((await r.store.cards.get(made[2]!.body.id))?.state).toBe("expired");
      expect(await r.store.cards.sweep(Date.now() + 31 * 86_400_000)).toBe(5);
      expect(await r.store.cards.get(made[0]!.body.id)).toBeUndefined();
      expect((await r.store.cards.get(made[1]!.body.id))?.state).toBe("credited");
      expect((await deposit(r, "1000000")).status).toBe(200);
    } finally {
      await r.close();
    }
  });
  it("a paid completion for an account that no longer exists is answered 200 and recorded as refused", async () => {
    const r = await rig(open);
    try {
      const made = await deposit(r, "1000000");
      // A deposit recorded for an account since removed from the accounts table.
      expect(await r.store.cards.open({ id: "cdep_of_a_gone_account", accountId: "acct_gone", units: 1_000_000n, cents: 100n })).toEqual({
        ok: true,
      });
      const payload = api.completedEvent(made.body.session, {
        id: "cs_test_of_a_gone_account",
        client_reference_id: "acct_gone",
        metadata: { srp_deposit: "cdep_of_a_gone_account" },
      });
      expect(await deliver(r, payload)).toEqual({ status: 200, body: { received: true, credited: false } });
      expect(r.events.at(-1)).toMatchObject({ kind: "refused", reason: "account acct_gone no longer exists" });
      expect(await r.store.cards.get("cdep_of_a_gone_account")).toMatchObject({
        state: "open",
        note: "account acct_gone no longer exists",
      });
    } finally {
      await r.close();
    }
  });
});
