// The node's reconnection policy over a real WebSocket: a loopback hub (discovery document plus
// the hub's half of the handshake, signed with @srp/core) drives the provider's connection
// through the cases of SRP-HS-009, SRP-HS-010, SRP-HS-016, SRP-HS-018..021, SRP-ERR-004,
// SRP-LIV-006 and SRP-JOB-024; the pure policy functions get table tests.
import { createServer, type Server } from "node:http";
import { createHello, generateIdentity, INITIAL_POSITION, type Identity } from "@srp/core";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { backoffDelay, connectToHub, mayReconnect, type ConnectOptions, type HubConnection, type SessionEnd } from "./connection.js";
import { createProvider, type Provider } from "./provider.js";
import type { Backend } from "./backends/types.js";

const KEY = "srp_test_key_123";
type Msg = Record<string, unknown> & { type: string };

/** One node connection as the test hub sees it. */
class Peer {
  readonly received: Msg[] = [];
  readonly pings: number[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.received.push(JSON.parse(data.toString()) as Msg);
      for (const w of this.#waiters.splice(0)) w();
    });
    ws.on("ping", () => {
      this.pings.push(Date.now());
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  send(m: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(m));
  }

  /** Resolves once `test` holds, checking after every message and ping; rejects after `ms`. */
  until<T>(test: () => T | undefined, ms = 5000, what = "a condition"): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.received.map((m) => m.type))}`)),
        ms,
      );
      const check = () => {
        const v = test();
        if (v !== undefined) {
          clearTimeout(timer);
          resolve(v);
        } else this.#waiters.push(check);
      };
      check();
    });
  }

  /** The first received message of `type` (matching `where`) at or after index `from`. */
  next(type: string, where: (m: Msg) => boolean = () => true, from = 0, ms = 5000): Promise<Msg> {
    return this.until(() => this.received.slice(from).find((m) => m.type === type && where(m)), ms, type);
  }
}

/** A loopback hub: discovery document, provider WebSocket, connections handed out in order. */
class TestHub {
  readonly identity: Identity = generateIdentity();
  baseUrl = "";
  /** Answer this many discovery requests with 503. */
  failDiscovery = 0;
  readonly peers: Peer[] = [];
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  #waiters: Array<() => void> = [];

  constructor(wsOptions: { autoPong?: boolean } = {}) {
    this.#wss = new WebSocketServer({ noServer: true, ...wsOptions });
    this.#server = createServer((req, res) => {
      if (req.url !== "/.well-known/srp.json") {
        res.statusCode = 404;
        return void res.end();
      }
      if (this.failDiscovery > 0) {
        this.failDiscovery--;
        res.statusCode = 503;
        return void res.end();
      }
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          protocol: "srp",
          versions: [1],
          hubId: this.identity.id,
          provider: { url: `${this.baseUrl.replace(/^http/, "ws")}/srp/v1/provider`, maxFrameBytes: 1_048_576 },
          payments: [],
          software: "srp-reconnect-test",
        }),
      );
    });
    this.#server.on("upgrade", (req, socket, head) => {
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        this.peers.push(new Peer(ws));
        for (const w of this.#waiters.splice(0)) w();
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address();
    this.baseUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    return this;
  }

  /** The `n`th connection (0-based), waiting up to `ms` for it. */
  connection(n: number, ms = 5000): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection #${n} within ${ms} ms (${this.peers.length} so far)`)), ms);
      const check = () => {
        const p = this.peers[n];
        if (p) {
          clearTimeout(timer);
          resolve(p);
        } else this.#waiters.push(check);
      };
      check();
    });
  }

  /** Completes the hub's half of the handshake on `peer`. */
  async welcome(peer: Peer, heartbeatIntervalMs = 15_000): Promise<Msg> {
    peer.send(createHello({ identity: this.identity, maxFrameBytes: 1_048_576 }));
    const auth = await peer.next("auth");
    peer.send({
      type: "welcome",
      version: auth.version,
      sessionId: `sess_${this.peers.indexOf(peer)}`,
      nodeId: auth.nodeId,
      accountId: "acct_test",
      heartbeatIntervalMs,
      limits: { maxFrameBytes: 1_048_576, maxInstances: 64, maxConcurrentJobs: 16 },
      replaced: false,
      receipts: INITIAL_POSITION,
    });
    return auth;
  }

  async stop(): Promise<void> {
    for (const p of this.peers) p.ws.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function hubAndNode(options: Partial<ConnectOptions> = {}, wsOptions: { autoPong?: boolean } = {}) {
  const hub = await new TestHub(wsOptions).start();
  const conn = connectToHub({ hub: hub.baseUrl, identity: generateIdentity(), account: { kind: "api_key", key: KEY }, ...options });
  cleanups.push(
    () => hub.stop(),
    () => conn.close(),
  );
  return { hub, conn };
}

/** Resolves with the error the connection stopped with. */
function stoppedWith(conn: HubConnection): Promise<string | undefined> {
  return new Promise((resolve) => conn.once("stopped", ({ error }) => resolve(error?.code)));
}

describe("mayReconnect", () => {
  const cases: Array<[SessionEnd, boolean]> = [
    // No error before the close: a connection loss, before or after welcome (SRP-HS-019, SRP-HS-020).
    [{ afterWelcome: false }, true],
    [{ afterWelcome: true }, true],
    // Before welcome the table's retryable decides, sent or received (SRP-HS-010, SRP-HS-020).
    [{ code: "auth.bad_signature", afterWelcome: false }, false],
    [{ code: "auth.unknown_account", afterWelcome: false }, false],
    [{ code: "version.unsupported", afterWelcome: false }, false],
    [{ code: "frame.invalid", afterWelcome: false }, false],
    [{ code: "protocol.unexpected_message", afterWelcome: false }, false],
    [{ code: "auth.stale_timestamp", afterWelcome: false }, true],
    [{ code: "protocol.handshake_timeout", afterWelcome: false }, true],
    [{ code: "session.rate_limited", afterWelcome: false }, true],
    // The table decides even when the message's retryable member says otherwise.
    [{ code: "auth.bad_signature", retryable: true, afterWelcome: false }, false],
    // A code outside the table: the message's retryable member decides (SRP-ERR-004).
    [{ code: "x-acme.refused", retryable: false, afterWelcome: false }, false],
    [{ code: "x-acme.busy", retryable: true, afterWelcome: false }, true],
    [{ code: "x-acme.unsaid", afterWelcome: false }, false],
    // After welcome: anything but session.replaced and auth.* (SRP-HS-009, SRP-HS-021).
    [{ code: "frame.invalid", afterWelcome: true }, true],
    [{ code: "protocol.unexpected_message", afterWelcome: true }, true],
    [{ code: "internal", afterWelcome: true }, true],
    [{ code: "x-acme.refused", retryable: false, afterWelcome: true }, true],
    [{ code: "session.replaced", afterWelcome: true }, false],
    [{ code: "session.replaced", afterWelcome: false }, false],
    [{ code: "auth.revoked", afterWelcome: true }, false],
    [{ code: "auth.unknown_account", afterWelcome: true }, false],
  ];
  it.each(cases)("%j -> %s", (end, expected) => {
    expect(mayReconnect(end)).toBe(expected);
  });
});

describe("backoffDelay", () => {
  const cases: Array<[attempt: number, initial: number, max: number, random: number, expected: number]> = [
    // d = min(max, 2 × initial × 2^attempt); the delay is d/2 + random × d/2 (SRP-HS-018).
    [0, 500, 60_000, 0, 500],
    [0, 500, 60_000, 0.5, 750],
    [0, 500, 60_000, 0.999999, 1000],
    [1, 500, 60_000, 0, 1000],
    [1, 500, 60_000, 0.999999, 2000],
    [3, 500, 60_000, 0, 4000],
    [3, 500, 60_000, 0.999999, 8000],
    // Capped at maxDelayMs.
    [6, 500, 60_000, 0.999999, 60_000],
    [20, 500, 60_000, 0, 30_000],
    [1000, 500, 60_000, 0.999999, 60_000],
    [3, 500, 5000, 0.999999, 5000],
    // Never below the initial delay, even with a cap under twice the initial delay.
    [0, 500, 600, 0, 500],
    [5, 500, 500, 0, 500],
    [0, 2000, 60_000, 0, 2000],
  ];
  it.each(cases)("attempt %i, initial %i, max %i, random %d -> %i", (attempt, initial, max, random, expected) => {
    expect(backoffDelay(attempt, initial, max, random)).toBe(expected);
  });

  it("stays within [500, 60 000] ms and never shrinks from one attempt to the next at the same draw", () => {
    for (const r of [0, 0.25, 0.5, 0.75, 0.999999]) {
      let previous = 0;
      for (let n = 0; n < 40; n++) {
        const d = backoffDelay(n, 500, 60_000, r);
        expect(d).toBeGreaterThanOrEqual(Math.max(500, previous));
        expect(d).toBeLessThanOrEqual(60_000);
        previous = d;
      }
    }
  });
});

describe("the session's end decides about reconnecting", () => {
  // Bug: an unknown-code error that did not end the session used to be kept as its end, so a
  // later session.replaced or auth.revoked led to a reconnect (SRP-ERR-004, SRP-HS-009, SRP-HS-021).
  for (const [code, close] of [
    ["session.replaced", 4409],
    ["auth.revoked", 4403],
  ] as const) {
    it(`after an unknown-code error the session survived, a later ${code} still stops the node`, async () => {
      const { hub, conn } = await hubAndNode();
      const stopped = stoppedWith(conn);
      const peer = await hub.connection(0);
      await hub.welcome(peer);
      await conn.ready();
      // An extension notice the hub does not close for: the session goes on (SRP-ERR-004).
      peer.send({ type: "error", code: "x-acme.notice", message: "an extension notice; the session goes on", retryable: true });
      peer.send({ type: "error", code, message: "the end", retryable: false });
      peer.ws.close(close, code);
      const outcome = await Promise.race([stopped.then((c) => `stopped with ${c}`), hub.connection(1, 10_000).then(() => "reconnected")]);
      expect(outcome).toBe(`stopped with ${code}`);
      expect(conn.state).toBe("stopped");
    });
  }

  it("an unknown-code error before welcome that the hub did not close for does not decide a later bare close", async () => {
    const { hub, conn } = await hubAndNode();
    const peer = await hub.connection(0);
    // retryable false: had it ended the handshake, the node would stop (SRP-HS-020).
    peer.send({ type: "error", code: "x-acme.refused", message: "a notice the hub did not close for", retryable: false });
    peer.send(createHello({ identity: hub.identity, maxFrameBytes: 1_048_576 }));
    await peer.next("auth");
    peer.ws.close(1011, "hub trouble");
    // A close that no error preceded is a connection loss: the node comes back.
    const again = await hub.connection(1);
    await hub.welcome(again);
    await conn.ready();
    expect(conn.state).toBe("open");
  });

  it("an unknown-code error the hub closes right after decides by its retryable member", async () => {
    const { hub, conn } = await hubAndNode();
    const stopped = stoppedWith(conn);
    const peer = await hub.connection(0);
    peer.send(createHello({ identity: hub.identity, maxFrameBytes: 1_048_576 }));
    await peer.next("auth");
    peer.send({ type: "error", code: "x-acme.refused", message: "not retryable", retryable: false });
    peer.ws.close(4000, "x-acme.refused");
    expect(await stopped).toBe("internal");
    expect(hub.peers).toHaveLength(1);
  });

  // Bug: a bare close code used to be read as the first table error with that close code,
  // which stopped the node for good (SRP-HS-019, SRP-HS-020). A bare 4409 is a connection loss
  // too: SRP-HS-009 is about the session.replaced error, which a hub sends before closing (SRP-ERR-002).
  for (const [code, when] of [
    [4401, "before welcome"],
    [4403, "before welcome"],
    [4403, "after welcome"],
    [4409, "after welcome"],
    [4426, "before welcome"],
  ] as const) {
    it(`a close with ${code} ${when} that no error preceded is a connection loss: the node reconnects`, async () => {
      const { hub, conn } = await hubAndNode();
      const peer = await hub.connection(0);
      if (when === "after welcome") {
        await hub.welcome(peer);
        await conn.ready();
      } else {
        peer.send(createHello({ identity: hub.identity, maxFrameBytes: 1_048_576 }));
        await peer.next("auth");
      }
      const disconnected = new Promise<{ retryInMs?: number }>((resolve) => conn.once("disconnected", resolve));
      peer.ws.close(code, "bare");
      expect((await disconnected).retryInMs).toBeGreaterThanOrEqual(500);
      const again = await hub.connection(1);
      await hub.welcome(again);
      await conn.ready();
      expect(conn.state).toBe("open");
    });
  }
});

describe("goodbye's reconnectAfterMs", () => {
  // Bug: it used to bound every later retry while discovery failed (SRP-HS-018, SRP-TR-012).
  it("bounds only the first reconnect after the goodbye", async () => {
    const { hub, conn } = await hubAndNode();
    const peer = await hub.connection(0);
    await hub.welcome(peer);
    await conn.ready();
    const delays: Array<{ reason: string; retryInMs?: number }> = [];
    const two = new Promise<void>((resolve) =>
      conn.on("disconnected", (d) => {
        delays.push(d);
        if (delays.length === 2) resolve();
      }),
    );
    hub.failDiscovery = 1;
    peer.send({ type: "goodbye", reason: "maintenance", reconnectAfterMs: 3000 });
    peer.ws.close(1001, "session.shutdown");
    await two;
    expect(delays[0]!.retryInMs).toBeGreaterThanOrEqual(3000);
    // Attempt 1 after a failed discovery: backoff alone, 1000 to 2000 ms.
    expect(delays[1]!.reason).toMatch(/discovery failed/);
    expect(delays[1]!.retryInMs).toBeLessThanOrEqual(2000);
    expect(delays[1]!.retryInMs).toBeGreaterThanOrEqual(1000);
    // And the node does come back.
    await hub.welcome(await hub.connection(1, 5000));
    await conn.ready();
  });
});

describe("handshake timeout (SRP-HS-016)", () => {
  it("a hub that sends no hello, then one that sends no welcome, gets protocol.handshake_timeout and close 4408; the node retries with backoff", async () => {
    const { hub, conn } = await hubAndNode({ handshakeTimeoutMs: 300 });
    const silent = await hub.connection(0);
    expect(await silent.next("error")).toMatchObject({ code: "protocol.handshake_timeout", retryable: true });
    expect((await silent.closed).code).toBe(4408);
    const second = await hub.connection(1);
    second.send(createHello({ identity: hub.identity, maxFrameBytes: 1_048_576 }));
    await second.next("auth");
    expect(await second.next("error")).toMatchObject({ code: "protocol.handshake_timeout", retryable: true });
    expect((await second.closed).code).toBe(4408);
    const third = await hub.connection(2);
    await hub.welcome(third);
    await conn.ready();
    expect(conn.state).toBe("open");
  });
});

describe("WebSocket ping liveness (SRP-LIV-006)", () => {
  it("pings every heartbeat interval and keeps a session whose pings are answered", async () => {
    const { hub, conn } = await hubAndNode();
    const peer = await hub.connection(0);
    await hub.welcome(peer, 1000);
    await conn.ready();
    // Without pongs the node would drop the session at its third tick; the third ping shows it did not.
    await peer.until(() => (peer.pings.length >= 3 ? true : undefined), 6000, "three pings");
    expect(peer.ws.readyState).toBe(WebSocket.OPEN);
    expect(conn.state).toBe("open");
  });

  it("drops a session whose ping stays unanswered for two intervals, and reconnects", async () => {
    const { hub, conn } = await hubAndNode({}, { autoPong: false });
    const peer = await hub.connection(0);
    await hub.welcome(peer, 1000);
    await conn.ready();
    await peer.until(() => (peer.pings.length >= 1 ? true : undefined), 3000, "a ping");
    expect((await peer.closed).code).toBe(1006);
    await hub.welcome(await hub.connection(1, 5000), 15_000);
    await conn.ready();
  });
});

describe("jobs refused on the spot count as ended (SRP-JOB-024)", () => {
  /** A backend that holds the job whose prompt is "hold" until it is aborted, and answers the others at once. */
  function backend(calls: string[]): Backend {
    return {
      kind: "vllm",
      label: "test backend",
      listModels: async () => [{ id: "m" }],
      chat: (request, { signal }) => {
        const prompt = String((request.messages as Array<{ content: string }>)[0]!.content);
        calls.push(prompt);
        if (prompt === "hold") {
          return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true }));
        }
        return Promise.resolve({
          kind: "response",
          body: {
            id: "chatcmpl-1",
            object: "chat.completion",
            created: 1,
            model: "m",
            choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          },
        });
      },
    };
  }

  it("a job id refused with job.busy or job.unknown_instance is ignored when it comes again", async () => {
    const hub = await new TestHub().start();
    const calls: string[] = [];
    const provider: Provider = createProvider({
      hub: hub.baseUrl,
      identity: generateIdentity(),
      account: KEY,
      instances: [{ backend: backend(calls), model: "m", instanceId: "inst_1", price: { input: "0", output: "0" }, maxConcurrency: 1 }],
    });
    cleanups.push(
      () => hub.stop(),
      () => provider.close(),
    );
    const peer = await hub.connection(0);
    await hub.welcome(peer);
    await peer.next("offer");
    peer.send({ type: "offer_ack", results: [{ instanceId: "inst_1", accepted: true }] });
    await provider.ready();
    const job = (jobId: string, prompt: string, instanceId = "inst_1") => ({
      type: "job",
      jobId,
      instanceId,
      model: "m",
      api: "chat.completions",
      stream: false,
      request: { model: "m", messages: [{ role: "user", content: prompt }] },
      deadline: Date.now() + 60_000,
      quote: { input: "0", output: "0" },
    });
    const ended = (jobId: string) => (m: Msg) => m.jobId === jobId;
    // The node handles frames in order: job_a holds the only slot when job_b arrives.
    peer.send(job("job_a", "hold"));
    peer.send(job("job_b", "b"));
    expect(await peer.next("job_error", ended("job_b"))).toMatchObject({ code: "job.busy" });
    peer.send({ type: "cancel", jobId: "job_a", reason: "consumer_gone" });
    expect(await peer.next("job_error", ended("job_a"))).toMatchObject({ code: "job.cancelled" });
    // The instance is free now; job_b ended with job_error, so its repeat is ignored.
    peer.send(job("job_b", "b"));
    peer.send(job("job_x", "x", "inst_nope"));
    expect(await peer.next("job_error", ended("job_x"))).toMatchObject({ code: "job.unknown_instance" });
    peer.send(job("job_x", "x", "inst_nope"));
    // A fresh job marks the point up to which the node has handled every frame.
    peer.send(job("job_c", "c"));
    await peer.until(
      () => peer.received.find((m) => (m.type === "done" || m.type === "job_error") && m.jobId === "job_c"),
      5000,
      "job_c to end",
    );
    expect(calls).toEqual(["hold", "c"]);
    const outcomes = peer.received
      .filter((m) => m.type === "done" || m.type === "job_error")
      .map((m) => [m.jobId, m.type === "done" ? "done" : m.code]);
    expect(outcomes).toEqual([
      ["job_b", "job.busy"],
      ["job_a", "job.cancelled"],
      ["job_x", "job.unknown_instance"],
      ["job_c", "done"],
    ]);
  });
});
