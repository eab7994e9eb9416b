/**
 * Strangers cannot grow a hub's state for free (SRP-SEC-014..SRP-SEC-024): floods of
 * sign-in nonces, failed x402 payments, WebSocket connections and handshakes, and a chatty
 * node, each against a real hub on real sockets with a real SQLite file (and PostgreSQL for
 * the nonce table). Every flood is bounded and stays on loopback; the second loopback
 * address (127.0.0.2) stands for another client. Also: the database files are owner-only,
 * and revoking a key closes the node session bound with it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createAuth, decode, encode, generateIdentity, SrpError, type Identity } from "@srp/core";
import type { Hello } from "@srp/core/schema";
import { decodePaymentRequired } from "@srp/core/x402";
import { createHub, openStore, SqliteStore, type Hub, type HubLimits, type SqlStore } from "@srp/hub";
import { openPostgres, openSqlite, WALLET_NONCE_TTL_MS, type SqlDriver } from "@srp/hub/storage";
import { FAILED_PAYMENT_RETENTION_MS } from "@srp/hub/payments";
import { PayoutTracker } from "../packages/srp-hub/src/ledger/payout-tracker.js";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";
import { createDatabase, startPostgres, type TestPostgres } from "./support/postgres.js";
import { MODEL as PAY_MODEL, payHeader, quote, usePayNets } from "./support/paynet.js";

const MODEL = "sim-llama-3-8b";
const dir = mkdtempSync(join(tmpdir(), "srp-strangers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request from a chosen local address (127.0.0.1 or 127.0.0.2: two clients on loopback). */
function call(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; from?: string; agent?: Agent } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: options.method ?? "GET",
        headers: options.headers ?? {},
        localAddress: options.from ?? "127.0.0.1",
        ...(options.agent ? { agent: options.agent } : {}),
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (c: Buffer) => parts.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts).toString() }));
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Runs `count` calls, `concurrency` at a time. */
async function flood(count: number, concurrency: number, one: (i: number) => Promise<Answer>): Promise<Answer[]> {
  const out: Answer[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) out.push(await one(next++));
    }),
  );
  return out;
}

const codeOf = (a: Answer) => (JSON.parse(a.body) as { error: { code: string } }).error.code;

/** Every refusal is 429 `code` with a Retry-After of at least one second. */
function expectRateLimited(answers: Answer[], code: string): void {
  for (const a of answers) {
    expect(a.status).toBe(429);
    expect(codeOf(a)).toBe(code);
    expect(Number(a.headers["retry-after"])).toBeGreaterThanOrEqual(1);
  }
}

/** A hub on a store, one node on the simulator, and a consumer account with money. */
interface World {
  hub: Hub;
  url: string;
  store: SqlStore;
  /** Another connection to the same database, to count rows. */
  raw: SqlDriver;
  sim: Simulator;
  provider: Provider;
  providerKey: string;
  providerKeyId: string;
  consumerKey: string;
  consumerId: string;
  close(): Promise<void>;
}

async function world(spec: string, options: { limits?: HubLimits; adminToken?: string; tokensPerSecond?: number } = {}): Promise<World> {
  const store = await openStore(spec);
  const hub = createHub({
    identity: generateIdentity(),
    accounts: store,
    storage: store,
    drainTimeoutMs: 500,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.adminToken ? { adminToken: options.adminToken } : {}),
  });
  const { url } = await hub.listen({ port: 0 });
  const sim = await startSimulator(options.tokensPerSecond ? { tokensPerSecond: options.tokensPerSecond } : {});
  const owner = await store.createAccount({ name: "provider" });
  const { key: providerKey, record } = await store.createApiKey(owner.id);
  const consumer = await store.createAccount({ name: "consumer" });
  const { key: consumerKey } = await store.createApiKey(consumer.id);
  await store.deposit(consumer.id, 5_000_000n, "strangers-test");
  const provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: providerKey,
    reconnect: false,
    instances: [
      {
        backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }),
        model: MODEL,
        price: { input: "100000", output: "300000" },
        maxConcurrency: 8,
      },
    ],
  });
  await provider.ready();
  const raw = rawDriver(spec);
  return {
    hub,
    url,
    store,
    raw,
    sim,
    provider,
    providerKey,
    providerKeyId: record.keyId,
    consumerKey,
    consumerId: consumer.id,
    async close() {
      await provider.close();
      await hub.close();
      await sim.close();
      await store.close();
      await raw.close();
    },
  };
}

/** A second connection to the database a `--db` spec names. */
function rawDriver(spec: string): SqlDriver {
  return spec.startsWith("sqlite:") ? openSqlite(spec.slice("sqlite:".length)) : openPostgres(spec, { max: 1 });
}

const chat = (w: World, from = "127.0.0.1") =>
  call(`${w.url}/v1/chat/completions`, {
    method: "POST",
    from,
    headers: { "content-type": "application/json", authorization: `Bearer ${w.consumerKey}` },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "still there?" }], max_tokens: 8 }),
  });

async function count(raw: SqlDriver, table: string): Promise<number> {
  const rows = await raw.all(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(rows[0]!.n);
}

// ---------------------------------------------------------------------------------------

describe.each([
  ["SQLite", async () => `sqlite:${join(dir, `nonces-${Date.now()}.sqlite`)}`],
  ["PostgreSQL", async () => createDatabase(pg!.url, `strangers_${Date.now()}`)],
])("sign-in nonce flood (%s)", (engine, spec) => {
  it("answers 429 api.rate_limited with Retry-After once over the limit; the nonce table grows by what was issued only; others are served", async () => {
    const w = await world(await spec());
    try {
      const before = await count(w.raw, "wallet_nonces");
      const agent = new Agent({ keepAlive: true, maxSockets: 16 });
      const started = Date.now();
      const [answers, served] = await Promise.all([flood(2000, 16, () => call(`${w.url}/v1/auth/nonce`, { agent })), chat(w)]);
      const seconds = (Date.now() - started) / 1000;
      agent.destroy();
      // An authenticated consumer on the same address is served during the flood.
      expect(served.status).toBe(200);
      const ok = answers.filter((a) => a.status === 200);
      // The default: 30 at once, then 0.5 per second.
      expect(ok.length).toBeGreaterThanOrEqual(30);
      expect(ok.length).toBeLessThanOrEqual(30 + Math.ceil(seconds * 0.5) + 1);
      expectRateLimited(
        answers.filter((a) => a.status !== 200),
        "api.rate_limited",
      );
      // Another address still gets a nonce.
      expect((await call(`${w.url}/v1/auth/nonce`, { from: "127.0.0.2" })).status).toBe(200);
      const after = await count(w.raw, "wallet_nonces");
      expect(after - before).toBe(ok.length + 1);
      // Expired nonces are swept (bounded batches), on this engine too.
      expect(await w.store.wallets.sweep(Date.now() + WALLET_NONCE_TTL_MS + 1)).toBe(after);
      expect(await count(w.raw, "wallet_nonces")).toBe(0);
    } finally {
      await w.close();
    }
  }, 60_000);
  void engine;
});

let pg: TestPostgres | undefined;
beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.stop();
});

// ---------------------------------------------------------------------------------------

describe("failed x402 payments", () => {
  const nets = usePayNets("srp-strangers-x402-");

  /** A paying hub whose settler counts its on-chain pre-checks (each one a chain call). */
  async function startCountingPreflights() {
    let count = 0;
    const net = await nets.start({
      settler: (inner) => ({
        ...inner,
        async preflight(input) {
          count++;
          return inner.preflight(input);
        },
      }),
    });
    return { net, preflights: () => count };
  }

  it("refuse a flood of unfunded authorizations before any write or chain call, per address and per payer; payers and keys are still served", async () => {
    const chain = nets.chain();
    const { net, preflights } = await startCountingPreflights();
    const body = { model: PAY_MODEL, messages: [{ role: "user", content: "pay me" }], max_tokens: 8 };
    const doc = await quote(net, "/v1/chat/completions", body);
    const poor = chain.accounts[8]!;
    const post = (header: string, from = "127.0.0.1") =>
      call(`${net.url}/v1/chat/completions`, {
        method: "POST",
        from,
        headers: { "content-type": "application/json", "payment-signature": header },
        body: JSON.stringify(body),
      });
    const raw = openSqlite(net.file);
    const rowsBefore = await count(raw, "x402_payments");
    const accountsBefore = await count(raw, "accounts");
    // 150 attempts by the unfunded wallet from one address, then 150 by fresh wallets (each
    // would make an account) from another, 8 at a time.
    const poorHeaders = await Promise.all(Array.from({ length: 150 }, () => payHeader(chain, poor, doc)));
    const freshHeaders = await Promise.all(
      Array.from({ length: 150 }, () => payHeader(chain, privateKeyToAccount(generatePrivateKey()), doc)),
    );
    const answers = [
      ...(await flood(150, 8, (i) => post(poorHeaders[i]!))),
      ...(await flood(150, 8, (i) => post(freshHeaders[i]!, "127.0.0.3"))),
    ];
    const failed = answers.filter((a) => a.status === 402);
    const limited = answers.filter((a) => a.status === 429);
    expect(failed.length + limited.length).toBe(300);
    // The default: 20 failures at once per address (and per payer), then one per 10 s.
    expect(failed.length).toBeGreaterThanOrEqual(40);
    expect(failed.length).toBeLessThanOrEqual(44);
    expect(failed.map(codeOf).every((c) => c === "payment.insufficient_funds")).toBe(true);
    expectRateLimited(limited, "api.rate_limited");
    // Refused attempts cost no chain call and no row.
    expect(preflights()).toBe(failed.length);
    expect((await count(raw, "x402_payments")) - rowsBefore).toBe(failed.length);
    expect((await count(raw, "accounts")) - accountsBefore).toBeLessThanOrEqual(failed.length);

    // The payer that failed is refused from another address too; a funded payer there is served.
    const elsewhere = await post(await payHeader(chain, poor, doc), "127.0.0.2");
    expect(elsewhere.status).toBe(429);
    const paid = await post(await payHeader(chain, chain.accounts[3]!, doc), "127.0.0.2");
    expect(paid.status).toBe(200);
    // A consumer with an API key is served from the flooding address.
    const keyed = await call(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${net.owner.key}` },
      body: JSON.stringify(body),
    });
    expect([200, 402]).toContain(keyed.status);
    expect(keyed.status === 402 ? codeOf(keyed) : "served").not.toBe("api.rate_limited");

    // Failed locks that moved no money are swept after their retention; the settled one stays.
    const swept = await net.store.payments.sweep(Date.now() + FAILED_PAYMENT_RETENTION_MS + 1);
    expect(swept).toBe(failed.length);
    expect(await count(raw, "x402_payments")).toBe(rowsBefore + 1);
    await raw.close();
  }, 120_000);

  it("count deposit attempts whatever their Authorization header says (a deposit takes the payment, never the key)", async () => {
    const chain = nets.chain();
    const { net, preflights } = await startCountingPreflights();
    const body = JSON.stringify({ amount: "1000000" });
    const quoted = await call(`${net.url}/v1/futures/deposit`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(quoted.status).toBe(402);
    const doc = decodePaymentRequired(quoted.headers["payment-required"] as string);
    const headers = await Promise.all(Array.from({ length: 60 }, () => payHeader(chain, chain.accounts[8]!, doc)));
    const answers = await flood(60, 4, (i) =>
      call(`${net.url}/v1/futures/deposit`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer not-a-key", "payment-signature": headers[i]! },
        body,
      }),
    );
    const failed = answers.filter((a) => a.status === 402);
    expect(failed.map(codeOf).every((c) => c === "payment.insufficient_funds")).toBe(true);
    expect(failed.length).toBeGreaterThanOrEqual(20);
    expect(failed.length).toBeLessThanOrEqual(22);
    expectRateLimited(
      answers.filter((a) => a.status !== 402),
      "api.rate_limited",
    );
    expect(preflights()).toBe(failed.length);
  }, 120_000);

  it("do not lock an honest payer out with authorizations forged in its name (bad signatures count against the forger's address only)", async () => {
    const chain = nets.chain();
    const net = await nets.start();
    const body = { model: PAY_MODEL, messages: [{ role: "user", content: "pay me" }], max_tokens: 8 };
    const doc = await quote(net, "/v1/chat/completions", body);
    const victim = chain.accounts[3]!;
    const forger = privateKeyToAccount(generatePrivateKey());
    const post = (header: string, from: string) =>
      call(`${net.url}/v1/chat/completions`, {
        method: "POST",
        from,
        headers: { "content-type": "application/json", "payment-signature": header },
        body: JSON.stringify(body),
      });
    // 20 authorizations naming the victim as `from`, signed by the forger: each a 402 payment.bad_signature.
    for (let i = 0; i < 20; i++) {
      const forged = await post(await payHeader(chain, victim, doc, { signer: forger }), "127.0.0.1");
      expect([forged.status, codeOf(forged)]).toEqual([402, "payment.bad_signature"]);
    }
    // The forger's address is spent...
    expectRateLimited([await post(await payHeader(chain, victim, doc, { signer: forger }), "127.0.0.1")], "api.rate_limited");
    // ...the victim, from another address with its own funded authorization, is served.
    const honest = await post(await payHeader(chain, victim, doc), "127.0.0.2");
    expect(honest.status).toBe(200);
  }, 120_000);
});

describe("model names strangers make up", () => {
  const nets = usePayNets("srp-strangers-demand-");

  it("are not remembered as demand: 500 unpaid requests for unknown models are 404 job.unknown_model, none noted", async () => {
    const noted: string[] = [];
    const original = PayoutTracker.prototype.noteDemand;
    PayoutTracker.prototype.noteDemand = function (model: string, now?: number) {
      noted.push(model);
      return original.call(this, model, now);
    };
    try {
      const net = await nets.start();
      const answers = await flood(500, 8, (i) =>
        call(`${net.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: `junk-${i}-${"x".repeat(200)}`, messages: [{ role: "user", content: "hi" }] }),
        }),
      );
      expect(new Set(answers.map((a) => `${a.status} ${codeOf(a)}`))).toEqual(new Set(["404 job.unknown_model"]));
      expect(noted).toEqual([]);
      // A model a node serves is noted (here unpaid: quoted a 402).
      const quoted = await call(`${net.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: PAY_MODEL, messages: [{ role: "user", content: "hi" }] }),
      });
      expect(quoted.status).toBe(402);
      expect(noted).toEqual([PAY_MODEL]);
    } finally {
      PayoutTracker.prototype.noteDemand = original;
    }
  }, 120_000);
});

// ---------------------------------------------------------------------------------------

interface RawPeer {
  ws: WebSocket;
  hello: Hello;
  messages: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
}

type Upgrade = { peer: RawPeer } | { refused: Answer };

/** Opens a raw provider WebSocket from `from`: the hub's hello, or the HTTP refusal of the upgrade. */
function connectRaw(url: string, from = "127.0.0.1"): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/srp/v1/provider`, { localAddress: from });
    const messages: Record<string, unknown>[] = [];
    const closed = new Promise<{ code: number; reason: string }>((r) =>
      ws.once("close", (code, reason) => r({ code, reason: reason.toString() })),
    );
    ws.on("unexpected-response", (_req, res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ refused: { status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts).toString() } }));
    });
    ws.on("message", (data: Buffer) => {
      const d = decode(data, {});
      if (!d.ok) return;
      const m = d.message as unknown as Record<string, unknown>;
      messages.push(m);
      if (m.type === "hello") resolve({ peer: { ws, hello: d.message as Hello, messages, closed } });
    });
    ws.on("error", (e) => {
      if (!/Unexpected server response/.test(String(e))) reject(e);
    });
  });
}

async function authRaw(peer: RawPeer, identity: Identity, key: string): Promise<Record<string, unknown>> {
  peer.ws.send(encode(createAuth({ hello: peer.hello, identity, account: { kind: "api_key", key } })));
  for (let i = 0; i < 500; i++) {
    const m = peer.messages.find((x) => x.type === "welcome" || x.type === "error");
    if (m) return m;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("no answer to auth");
}

describe("provider connections from strangers", () => {
  it("refuses a connection flood with 429 session.rate_limited at the upgrade; nodes already connected keep serving", async () => {
    const w = await world(`sqlite:${join(dir, `conn-${Date.now()}.sqlite`)}`, {
      limits: { connections: { burst: 20, perSecond: 1 }, unauthenticatedConnections: 1000 },
    });
    try {
      const started = Date.now();
      const ups = await Promise.all(Array.from({ length: 200 }, () => connectRaw(w.url)));
      const seconds = (Date.now() - started) / 1000;
      const open = ups.filter((u): u is { peer: RawPeer } => "peer" in u);
      const refused = ups.filter((u): u is { refused: Answer } => "refused" in u).map((u) => u.refused);
      // 20 at once, one of them taken by the node that connected first, then one per second.
      expect(open.length).toBeGreaterThanOrEqual(19);
      expect(open.length).toBeLessThanOrEqual(19 + Math.ceil(seconds) + 1);
      expect(refused.length).toBe(200 - open.length);
      expectRateLimited(refused, "session.rate_limited");
      expect((await chat(w)).status).toBe(200);
      // Another address connects.
      const other = await connectRaw(w.url, "127.0.0.2");
      expect("peer" in other).toBe(true);
      for (const u of [...open, other]) if ("peer" in u) u.peer.ws.terminate();
    } finally {
      await w.close();
    }
  });

  it("caps the connections of one address still in their handshake", async () => {
    const w = await world(`sqlite:${join(dir, `unauth-${Date.now()}.sqlite`)}`, { limits: { unauthenticatedConnections: 8 } });
    try {
      const ups = await Promise.all(Array.from({ length: 30 }, () => connectRaw(w.url)));
      const open = ups.flatMap((u) => ("peer" in u ? [u.peer] : []));
      expect(open.length).toBe(8);
      expectRateLimited(
        ups.flatMap((u) => ("refused" in u ? [u.refused] : [])),
        "session.rate_limited",
      );
      // One finishes its handshake: a place is free again.
      const welcome = await authRaw(open[0]!, generateIdentity(), w.providerKey);
      expect(welcome.type).toBe("welcome");
      expect("peer" in (await connectRaw(w.url))).toBe(true);
      for (const p of open) p.ws.terminate();
    } finally {
      await w.close();
    }
  });

  it("caps the connections still in their handshake from all addresses together", async () => {
    const w = await world(`sqlite:${join(dir, `unauth-all-${Date.now()}.sqlite`)}`, {
      limits: { unauthenticatedConnections: 4, unauthenticatedConnectionsTotal: 6 },
    });
    try {
      const ups = [
        ...(await Promise.all(Array.from({ length: 5 }, () => connectRaw(w.url)))),
        ...(await Promise.all(Array.from({ length: 5 }, () => connectRaw(w.url, "127.0.0.2")))),
      ];
      const open = ups.flatMap((u) => ("peer" in u ? [u.peer] : []));
      expect(open.length).toBe(6);
      expectRateLimited(
        ups.flatMap((u) => ("refused" in u ? [u.refused] : [])),
        "session.rate_limited",
      );
      const third = await connectRaw(w.url, "127.0.0.3");
      expect("refused" in third && third.refused.body).toMatch(/at most 6 connections/);
      // One finishes its handshake: another address gets the place.
      expect((await authRaw(open[0]!, generateIdentity(), w.providerKey)).type).toBe("welcome");
      expect("peer" in (await connectRaw(w.url, "127.0.0.3"))).toBe(true);
      for (const p of open) p.ws.terminate();
    } finally {
      await w.close();
    }
  });

  it("refuses handshakes from an address whose auths keep failing, at the auth and at the upgrade", async () => {
    const w = await world(`sqlite:${join(dir, `hs-${Date.now()}.sqlite`)}`, {
      limits: { handshakeFailures: { burst: 5, perSecond: 0.01 } },
    });
    try {
      const codes: string[] = [];
      const held = await Promise.all(Array.from({ length: 3 }, () => connectRaw(w.url)));
      for (let i = 0; i < 5; i++) {
        const up = await connectRaw(w.url);
        if (!("peer" in up)) throw new Error("refused too early");
        const answer = await authRaw(up.peer, generateIdentity(), "srp_wrong_key_0000000000");
        codes.push(String(answer.code));
        await up.peer.closed;
      }
      expect(codes).toEqual(Array(5).fill("auth.unknown_account"));
      // New connections are refused at the upgrade now.
      const refused = await connectRaw(w.url);
      expect("refused" in refused && refused.refused.status).toBe(429);
      expectRateLimited([(refused as { refused: Answer }).refused], "session.rate_limited");
      // A connection opened before the failures gets its auth refused unchecked, with close 4429.
      const early = (held[0] as { peer: RawPeer }).peer;
      const answer = await authRaw(early, generateIdentity(), w.providerKey);
      expect(answer.code).toBe("session.rate_limited");
      expect((await early.closed).code).toBe(4429);
      // Another address is not affected.
      const other = await connectRaw(w.url, "127.0.0.2");
      expect("peer" in other && (await authRaw(other.peer, generateIdentity(), w.providerKey)).type).toBe("welcome");
      for (const u of [...held, other]) if ("peer" in u) u.peer.ws.terminate();
    } finally {
      await w.close();
    }
  });

  it("closes a node session that sends messages faster than its bucket allows with session.rate_limited (4429)", async () => {
    const w = await world(`sqlite:${join(dir, `chatty-${Date.now()}.sqlite`)}`, {
      limits: { sessionMessages: { burst: 100, perSecond: 10 } },
    });
    try {
      const up = await connectRaw(w.url);
      if (!("peer" in up)) throw new Error("refused");
      expect((await authRaw(up.peer, generateIdentity(), w.providerKey)).type).toBe("welcome");
      for (let i = 0; i < 1000 && up.peer.ws.readyState === WebSocket.OPEN; i++)
        up.peer.ws.send(encode({ type: "heartbeat", ts: Date.now(), load: [] }));
      const closed = await up.peer.closed;
      expect(closed.code).toBe(4429);
      expect(up.peer.messages.find((m) => m.type === "error")?.code).toBe("session.rate_limited");
      // The honest node on the same hub still serves.
      expect((await chat(w)).status).toBe(200);
    } finally {
      await w.close();
    }
  });
});

// ---------------------------------------------------------------------------------------

describe("database files", () => {
  it("are created owner-only (0600), in a directory created 0700; an existing 0644 file is narrowed", async () => {
    const path = join(dir, "fresh", "data", "hub.sqlite");
    const store = new SqliteStore(path);
    await store.ready();
    await store.createAccount({ name: "x" });
    const files = readdirSync(join(dir, "fresh", "data")).sort();
    expect(files).toEqual(["hub.sqlite", "hub.sqlite-shm", "hub.sqlite-wal"]);
    for (const f of files) expect({ f, mode: statSync(join(dir, "fresh", "data", f)).mode & 0o777 }).toEqual({ f, mode: 0o600 });
    expect(statSync(join(dir, "fresh", "data")).mode & 0o777).toBe(0o700);
    await store.close();

    const old = join(dir, "old.sqlite");
    writeFileSync(old, "");
    chmodSync(old, 0o644);
    const again = new SqliteStore(old);
    await again.ready();
    for (const f of [old, `${old}-wal`, `${old}-shm`]) expect(statSync(f).mode & 0o777).toBe(0o600);
    await again.close();
  });
});

// ---------------------------------------------------------------------------------------

describe("revoking a key", () => {
  const ADMIN = "admin-token-for-strangers-test";

  it("closes the node session bound with it (auth.revoked); its job in flight is lost and never billed; the node cannot come back with it", async () => {
    const w = await world(`sqlite:${join(dir, `revoke-${Date.now()}.sqlite`)}`, { adminToken: ADMIN, tokensPerSecond: 20 });
    try {
      const closes: Array<{ code: number; reason: string }> = [];
      w.hub.on("session.close", (s) => closes.push({ code: s.code, reason: s.reason }));
      // A slow stream is in flight, its first content already with the consumer, when the key is revoked.
      const res = await fetch(`${w.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${w.consumerKey}` },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "a long answer" }], max_tokens: 400, stream: true }),
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let body = "";
      while (!/"content":"[^"]/.test(body)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before any content: ${body}`);
        body += decoder.decode(value, { stream: true });
      }
      const inflight = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return { body };
          body += decoder.decode(value, { stream: true });
        }
      })();
      const revoke = await call(`${w.url}/admin/v1/keys/${w.providerKeyId}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      expect(revoke.status).toBe(204);
      // At once: closed by the time the revocation is answered (the close handshake follows).
      expect(w.hub.sessions()).toEqual([]);
      for (let i = 0; i < 500 && closes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(closes.at(-1)).toEqual({ code: 4403, reason: "auth.revoked" });
      const streamed = await inflight;
      // The consumer is told the stream broke (the job was lost with the session).
      expect(streamed.body).toContain('"code":"job.stream_interrupted"');
      expect(streamed.body).toContain("auth.revoked");
      // Nothing was billed for the lost job: the consumer's balance is whole.
      const summary = await w.store.summary(w.consumerId);
      expect(summary.spent).toBe(0n);
      expect(summary.held).toBe(0n);
      expect(await w.store.verify()).toEqual([]);
      // The node's reconnect with the revoked key fails its handshake.
      const up = await connectRaw(w.url);
      if (!("peer" in up)) throw new Error("refused");
      expect((await authRaw(up.peer, generateIdentity(), w.providerKey)).code).toBe("auth.unknown_account");
    } finally {
      await w.close();
    }
  });

  it("a handshake whose account look-up straddles the revocation is refused with auth.revoked, never left open", async () => {
    const store = new SqliteStore(join(dir, `revoke-race-${Date.now()}.sqlite`));
    const owner = await store.createAccount({ name: "provider" });
    const { key, record } = await store.createApiKey(owner.id);
    // The store, but the node key's first look-up (which reads the still valid key) answers only when let go.
    let lookedUp!: () => void;
    const reading = new Promise<void>((r) => (lookedUp = r));
    let letGo!: () => void;
    const held = new Promise<void>((r) => (letGo = r));
    let holds = 1;
    const findByApiKey = async (k: string) => {
      const found = await store.findByApiKey(k);
      if (k === key && holds-- > 0) {
        lookedUp();
        await held;
      }
      return found;
    };
    const accounts = new Proxy(store, {
      get(target, prop) {
        if (prop === "findByApiKey") return findByApiKey;
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const hub = createHub({
      identity: generateIdentity(),
      accounts,
      storage: store,
      adminToken: ADMIN,
      drainTimeoutMs: 200,
      limits: { bindingCheckIntervalMs: 0 },
    });
    const { url } = await hub.listen({ port: 0 });
    const sim = await startSimulator();
    const provider = createProvider({
      hub: url,
      identity: generateIdentity(),
      account: key,
      reconnect: false,
      instances: [
        { backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: { input: "1", output: "1" }, maxConcurrency: 1 },
      ],
    });
    const ready = provider.ready();
    ready.catch(() => {});
    try {
      await reading;
      const revoke = await call(`${url}/admin/v1/keys/${record.keyId}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      expect(revoke.status).toBe(204);
      letGo();
      const refused = await ready.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(SrpError);
      expect((refused as SrpError).code).toBe("auth.revoked");
      expect(hub.sessions()).toEqual([]);
    } finally {
      await provider.close().catch(() => {});
      await hub.close();
      await sim.close();
      await store.close();
    }
  });

  it("revoked in the store directly (another process): the periodic check closes the session", async () => {
    const w = await world(`sqlite:${join(dir, `revoke2-${Date.now()}.sqlite`)}`, { limits: { bindingCheckIntervalMs: 100 } });
    try {
      expect(w.hub.sessions()).toHaveLength(1);
      const other = new SqliteStore(join(dir, readdirSync(dir).find((f) => f.startsWith("revoke2-") && f.endsWith(".sqlite"))!));
      expect(await other.revokeApiKey(w.providerKeyId)).toBe(true);
      await other.close();
      for (let i = 0; i < 500 && w.hub.sessions().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(w.hub.sessions()).toEqual([]);
    } finally {
      await w.close();
    }
  });
});
