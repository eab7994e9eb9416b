/**
 * The node's side of an SRP session: it dials out to the hub (no inbound port), checks
 * the hub's signed hello, authenticates (giving up a silent handshake after 10 s, SRP-HS-016),
 * keeps the session alive with heartbeats and WebSocket pings (SRP-LIV-006), and
 * reconnects with exponential backoff and jitter when the session drops for a reason
 * that a retry can fix. It stops for good on handshake errors that a retry cannot fix,
 * whichever side detected them (wrong account, bad signatures, no common version), on an
 * `auth.*` error after welcome, and when another process with the same identity replaces it
 * (SRP-HS-009, SRP-HS-010, SRP-HS-020, SRP-HS-021).
 */
import { EventEmitter } from "node:events";
import {
  createAuth,
  decode,
  fetchDiscovery,
  encode,
  ERROR_TABLE,
  errorMessage,
  frameHardCap,
  isErrorCode,
  SrpError,
  SUPPORTED_VERSIONS,
  verifyHello,
  type Identity,
} from "@srp/core";
import { AccountBinding, type Discovery, FRAME_LIMITS, type InstanceLoad, type SrpMessage, type Welcome } from "@srp/core/schema";
import { coalesceWrites, useNodeCrypto } from "@srp/core/node";
import { Value } from "@sinclair/typebox/value";
import WebSocket from "ws";

// Native Ed25519 (libsodium when it loads, else OpenSSL) and SHA-256 for everything this process signs and verifies.
useNodeCrypto();

/** Reconnection policy. */
export interface ReconnectPolicy {
  /** Least delay in ms, at least 500 (default 500); the first delay is drawn from [initialDelayMs, 2 × initialDelayMs]. */
  initialDelayMs?: number;
  /** Largest delay in ms (default 60 000). */
  maxDelayMs?: number;
}

/** Options of {@link connectToHub}. */
export interface ConnectOptions {
  /** The hub: its base URL (`http(s)://`, discovered through `/.well-known/srp.json`) or its provider WebSocket URL (`ws(s)://`). */
  hub: string;
  /** The node's identity. */
  identity: Identity;
  /** The account the node binds to. */
  account: AccountBinding;
  /** Refuse any hub whose id differs (pinning). */
  expectedHubId?: string;
  /** Software name for the hub's logs. */
  agent?: string;
  /** Versions to speak; default all the library speaks. */
  versions?: readonly number[];
  /** Reconnection policy, or `false` to connect once. */
  reconnect?: ReconnectPolicy | false;
  /** Current load per instance, sent with every heartbeat. */
  load?: () => InstanceLoad[];
  /**
   * How long to wait for `hello` after the WebSocket opens, and again for `welcome` after
   * sending `auth`, before ending the attempt with `protocol.handshake_timeout` (close 4408)
   * and reconnecting with backoff; default 10 000 ms (SRP-HS-016).
   */
  handshakeTimeoutMs?: number;
}

/** Connection states. */
export type ConnectionState = "connecting" | "handshaking" | "open" | "waiting" | "stopped";

/** Events of a {@link HubConnection}. */
export interface HubConnectionEvents {
  /** The handshake succeeded. */
  welcome: [welcome: Welcome];
  /** A message after the handshake (offer_ack, job, cancel, probe, receipt, statement, error, goodbye). */
  message: [message: SrpMessage];
  /** The WebSocket closed; `retryInMs` is set when a reconnect is scheduled. */
  disconnected: [detail: { code: number; reason: string; retryInMs?: number }];
  /** The connection stopped for good: a non-retryable error, replacement, or `close()`. */
  stopped: [detail: { error?: SrpError }];
  /** A protocol error sent or received, for logs. */
  protocolError: [detail: { direction: "sent" | "received"; code: string; message: string }];
}

/** Fetches and validates a hub's discovery document (see `fetchDiscovery` in `@srp/core`). */
export function discoverHub(baseUrl: string, signal?: AbortSignal): Promise<Discovery> {
  return fetchDiscovery(baseUrl, signal ? { signal } : {});
}

/**
 * What ended a session, as far as reconnecting is concerned: the code of the first
 * session-ending `error` sent or received on the connection (none for a lost connection or
 * a close without `error`), the `retryable` member of that `error`, and whether the node
 * had received `welcome` by then.
 */
export interface SessionEnd {
  /** The error code, or undefined when no `error` preceded the close. */
  code?: string | undefined;
  /** The `retryable` member of the `error` (used only for codes outside the error table). */
  retryable?: boolean | undefined;
  /** Whether the node had received `welcome` on the connection. */
  afterWelcome: boolean;
}

/**
 * Whether a node may reconnect automatically (with backoff) after a session ended as
 * `end` (SRP-HS-009, SRP-HS-010, SRP-HS-019, SRP-HS-020, SRP-HS-021). Before `welcome`, an
 * error sent or received decides by its row's `retryable` (by the message's member for a
 * code outside the table); after `welcome`, any error allows it except `session.replaced`
 * and the `auth.*` family; a close without `error` always allows it.
 *
 * @example
 * mayReconnect({ code: "auth.bad_signature", afterWelcome: false }); // false
 * mayReconnect({ code: "frame.invalid", afterWelcome: true }); // true
 */
export function mayReconnect(end: SessionEnd): boolean {
  if (end.code === undefined) return true;
  if (end.code === "session.replaced") return false;
  if (end.afterWelcome) return !end.code.startsWith("auth.");
  return isErrorCode(end.code) ? ERROR_TABLE[end.code].retryable : end.retryable === true;
}

/**
 * The delay before reconnection attempt `attempt` (0, 1, 2, ...): uniform in [d/2, d] with
 * d = min(maxDelayMs, 2 × initialDelayMs × 2^attempt), and never below `initialDelayMs`
 * (SRP-HS-010, SRP-HS-018). `random` is a number in [0, 1).
 */
export function backoffDelay(attempt: number, initialDelayMs: number, maxDelayMs: number, random: number): number {
  const d = Math.min(maxDelayMs, 2 * initialDelayMs * 2 ** attempt);
  return Math.max(initialDelayMs, Math.round(d / 2 + random * (d / 2)));
}

/**
 * A live, self-healing connection from a node to a hub. Create it with {@link connectToHub}.
 */
export class HubConnection extends EventEmitter<HubConnectionEvents> {
  state: ConnectionState = "connecting";
  /** The hub id, once a hello verified. */
  hubId: string | undefined;
  /** The current welcome, while open. */
  welcome: Welcome | undefined;

  readonly #opts: ConnectOptions;
  #ws: WebSocket | undefined;
  /** Corks the session's socket until the end of this turn of the event loop (one system call for its frames). */
  #hold: (() => void) | undefined;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Pings the hub every heartbeat interval while open (SRP-LIV-006). */
  #liveness: ReturnType<typeof setInterval> | undefined;
  /** Limits the wait for `hello`, then for `welcome` (SRP-HS-016). */
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  #maxFrameBytes: number = FRAME_LIMITS.max;
  /**
   * The first session-ending error sent or received on the current connection: a code of the
   * error table that has a close code (SRP-ERR-002, SRP-HS-020).
   */
  #end: (SessionEnd & { error: SrpError | undefined }) | undefined;
  /**
   * The last received `error` with a code outside the table, while no other frame followed it:
   * it ends the session only if the hub closes right after it (SRP-ERR-004).
   */
  #unknownEnd: SessionEnd | undefined;
  /** When the current session received welcome (0 before). */
  #openedAt = 0;
  #resumeAfterMs: number | undefined;
  #stopped = false;
  /** The version the current connection's auth chose. */
  #authVersion = 0;

  constructor(options: ConnectOptions) {
    super();
    if (!Value.Check(AccountBinding, options.account)) {
      throw new TypeError(
        "the account binding is malformed: an API key is 8-256 characters; a wallet binding needs an 0x address and signature",
      );
    }
    this.#opts = options;
  }

  /** Sends a message on the open session. Returns false when not open. */
  send(message: SrpMessage): boolean {
    if (this.state !== "open" || this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#hold?.();
    this.#ws.send(encode(message));
    return true;
  }

  /** Sends a frame already produced by `encode`. Returns false when not open. */
  sendEncoded(frame: string): boolean {
    if (this.state !== "open" || this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#hold?.();
    this.#ws.send(frame);
    return true;
  }

  /** Bytes queued on the WebSocket and not yet sent (0 when not connected): a backpressure signal. */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** Resolves at the next welcome (or at once if open); rejects if the connection stops first. */
  ready(): Promise<Welcome> {
    if (this.state === "open" && this.welcome) return Promise.resolve(this.welcome);
    return new Promise((resolve, reject) => {
      const onWelcome = (w: Welcome) => {
        this.off("stopped", onStopped);
        resolve(w);
      };
      const onStopped = ({ error }: { error?: SrpError }) => {
        this.off("welcome", onWelcome);
        reject(error ?? new Error("connection stopped"));
      };
      this.once("welcome", onWelcome);
      this.once("stopped", onStopped);
    });
  }

  /** Says goodbye and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#clearSessionTimers();
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      if (this.state === "open") ws.send(encode({ type: "goodbye", reason: "node is shutting down" }));
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        ws.close(1000, "goodbye");
        setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000).unref();
      });
    } else {
      ws?.terminate();
    }
    this.#stop(undefined);
  }

  /** @internal Opens the first connection. */
  start(): void {
    void this.#open();
  }

  async #open(): Promise<void> {
    if (this.#stopped) return;
    this.state = "connecting";
    let url = this.#opts.hub;
    try {
      if (/^https?:/i.test(url)) {
        const doc = await discoverHub(url);
        if (this.#opts.expectedHubId !== undefined && doc.hubId !== this.#opts.expectedHubId) {
          return this.#stop(new SrpError("auth.wrong_hub", `discovery document names hub ${doc.hubId}`));
        }
        url = doc.provider.url;
      }
    } catch (error) {
      return this.#scheduleReconnect(0, `discovery failed: ${(error as Error).message}`);
    }
    if (this.#stopped) return;
    // The codec judges UTF-8 and size, so every bad frame up to the hard cap gets its coded `error` (SRP-FRM-014, SRP-FRM-015).
    const ws = new WebSocket(url, { maxPayload: frameHardCap(FRAME_LIMITS.max), skipUTF8Validation: true, handshakeTimeout: 10_000 });
    this.#ws = ws;
    this.#hold = undefined;
    ws.once("upgrade", (response) => {
      if (ws === this.#ws) this.#hold = coalesceWrites(response.socket);
    });
    this.#end = undefined;
    this.#unknownEnd = undefined;
    this.#openedAt = 0;
    this.state = "handshaking";
    // SRP-HS-016: no hello within the limit of opening ends the attempt (retryable, with backoff).
    ws.once("open", () => {
      if (ws === this.#ws) this.#armHandshakeTimer(ws, "hello", "opening the connection");
    });
    ws.on("message", (data, isBinary) => {
      try {
        this.#onFrame(ws, data as Buffer, isBinary);
      } catch (error) {
        // A listener's failure must not take the node down; it ends this session, and the node reconnects.
        this.#fail(ws, new SrpError("internal", `the node could not handle a frame: ${(error as Error).message}`));
      }
    });
    ws.on("close", (code, reason) => this.#onClose(ws, code, reason.toString()));
    ws.on("error", () => {
      /* followed by close */
    });
  }

  #fail(ws: WebSocket, error: SrpError): void {
    this.emit("protocolError", { direction: "sent", code: error.code, message: error.message });
    this.#end ??= { code: error.code, retryable: error.retryable, afterWelcome: this.state === "open", error };
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(encode(errorMessage(error)));
      ws.close(error.closeCode ?? 1011, error.code);
    }
  }

  #onFrame(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    if (ws !== this.#ws) return;
    // An unknown-code error followed by any other frame did not end the session (SRP-ERR-004).
    this.#unknownEnd = undefined;
    const r = decode(data, { binary: isBinary, maxFrameBytes: this.#maxFrameBytes, versions: this.#opts.versions ?? SUPPORTED_VERSIONS });
    if (!r.ok) return this.#fail(ws, r.error);
    const m = r.message;
    if (m.type === "error") {
      this.emit("protocolError", { direction: "received", code: m.code, message: m.message });
      // A table code with a close code ends the session; the first such error decides about
      // reconnecting (SRP-ERR-002, SRP-HS-020). A code this node does not know ends it only if
      // the hub closes before sending anything else, so it is kept aside until then (SRP-ERR-004).
      if (!isErrorCode(m.code)) {
        this.#unknownEnd = { code: m.code, retryable: m.retryable, afterWelcome: this.state === "open" };
      } else if (ERROR_TABLE[m.code].close !== null) {
        this.#end ??= { code: m.code, retryable: m.retryable, afterWelcome: this.state === "open", error: new SrpError(m.code, m.message) };
      }
      if (this.state === "open") this.emit("message", m);
      return;
    }
    if (m.type === "goodbye") {
      this.#resumeAfterMs = m.reconnectAfterMs;
      if (this.state === "open") this.emit("message", m);
      return;
    }
    if (this.state === "handshaking" && this.hubId === undefined) {
      if (m.type !== "hello") return this.#fail(ws, new SrpError("protocol.unexpected_message", `expected hello, got ${m.type}`));
      const bad = verifyHello(m, this.#opts.expectedHubId === undefined ? {} : { expectedHubId: this.#opts.expectedHubId });
      if (bad) return this.#fail(ws, bad);
      this.hubId = m.hubId;
      this.#maxFrameBytes = m.limits.maxFrameBytes;
      const auth = createAuth({
        identity: this.#opts.identity,
        hello: m,
        account: this.#opts.account,
        versions: this.#opts.versions ?? SUPPORTED_VERSIONS,
        ...(this.#opts.agent === undefined ? {} : { agent: this.#opts.agent }),
      });
      this.#authVersion = auth.version;
      ws.send(encode(auth));
      this.#armHandshakeTimer(ws, "welcome", "sending auth");
      return;
    }
    if (this.state === "handshaking") {
      if (m.type !== "welcome") return this.#fail(ws, new SrpError("protocol.unexpected_message", `expected welcome, got ${m.type}`));
      // SRP-HS-015: the welcome must name this node and the version its auth chose.
      if (m.nodeId !== this.#opts.identity.id || m.version !== this.#authVersion) {
        return this.#fail(
          ws,
          new SrpError(
            "protocol.unexpected_message",
            `welcome for node ${m.nodeId} version ${m.version} does not answer this node's auth (version ${this.#authVersion})`,
          ),
        );
      }
      clearTimeout(this.#handshakeTimer);
      this.state = "open";
      this.welcome = m;
      this.#openedAt = Date.now();
      this.#startHeartbeat(ws, m.heartbeatIntervalMs);
      this.emit("welcome", m);
      return;
    }
    if (m.type === "hello" || m.type === "welcome")
      return this.#fail(ws, new SrpError("protocol.unexpected_message", `${m.type} after the handshake`));
    if (
      m.type === "auth" ||
      m.type === "chunk" ||
      m.type === "done" ||
      m.type === "job_error" ||
      m.type === "heartbeat" ||
      m.type === "offer" ||
      m.type === "withdraw" ||
      m.type === "probe_result" ||
      m.type === "dispute"
    ) {
      return this.#fail(ws, new SrpError("protocol.unexpected_message", `a hub does not send ${m.type}`));
    }
    this.emit("message", m);
  }

  /** Ends the attempt with `protocol.handshake_timeout` unless `what` arrives in time (SRP-HS-016). */
  #armHandshakeTimer(ws: WebSocket, what: "hello" | "welcome", since: string): void {
    clearTimeout(this.#handshakeTimer);
    const ms = this.#opts.handshakeTimeoutMs ?? 10_000;
    this.#handshakeTimer = setTimeout(() => {
      if (ws !== this.#ws || this.state !== "handshaking") return;
      this.#fail(ws, new SrpError("protocol.handshake_timeout", `no ${what} within ${ms} ms of ${since}`));
      // A hub that does not answer the close either is dropped (the close then counts as this error).
      setTimeout(() => ws.terminate(), 2000).unref();
    }, ms);
  }

  #startHeartbeat(ws: WebSocket, intervalMs: number): void {
    this.#clearSessionTimers();
    const beat = () => {
      if (ws.readyState === WebSocket.OPEN) ws.send(encode({ type: "heartbeat", ts: Date.now(), load: this.#opts.load?.() ?? [] }));
    };
    // Beat a little faster than required so a slow timer never misses the window.
    this.#heartbeat = setInterval(beat, Math.max(250, Math.floor(intervalMs * 0.8)));
    // SRP-LIV-006: a ping every interval; one left unanswered for two intervals is a lost connection.
    let pingedAt: number | undefined;
    ws.on("pong", () => {
      pingedAt = undefined;
    });
    this.#liveness = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (pingedAt === undefined) {
        pingedAt = Date.now();
        ws.ping();
      } else if (Date.now() - pingedAt >= 2 * intervalMs) {
        ws.terminate();
      }
    }, intervalMs);
  }

  #clearSessionTimers(): void {
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#heartbeat);
    clearInterval(this.#liveness);
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    this.#clearSessionTimers();
    this.welcome = undefined;
    this.hubId = undefined;
    this.#maxFrameBytes = FRAME_LIMITS.max;
    const afterWelcome = this.#openedAt > 0;
    // SRP-HS-018: the backoff starts over once a session has stayed open for 60 s.
    if (afterWelcome && Date.now() - this.#openedAt >= 60_000) this.#attempt = 0;
    // The first session-ending table error decides; else an unknown-code error the hub closed
    // right after (SRP-ERR-004); else nothing preceded the close: a connection loss, whatever
    // the close code (SRP-HS-019, SRP-HS-020).
    const end: SessionEnd = this.#end ?? this.#unknownEnd ?? { afterWelcome };
    if (this.#stopped) return;
    if (!mayReconnect(end)) {
      this.emit("disconnected", { code, reason });
      return this.#stop(
        this.#end?.error ??
          new SrpError("internal", `the session ended with ${end.code ?? "a close"}, which forbids an automatic reconnect`),
      );
    }
    this.#scheduleReconnect(code, reason);
  }

  #scheduleReconnect(code: number, reason: string): void {
    if (this.#opts.reconnect === false) {
      this.emit("disconnected", { code, reason });
      return this.#stop(undefined);
    }
    const initial = Math.max(500, this.#opts.reconnect?.initialDelayMs ?? 500);
    const cap = Math.min(60_000, this.#opts.reconnect?.maxDelayMs ?? 60_000);
    // A goodbye's reconnectAfterMs is a lower bound on the next delay only (SRP-TR-012, SRP-HS-018).
    const delay = Math.max(backoffDelay(this.#attempt, initial, cap, Math.random()), this.#resumeAfterMs ?? 0);
    this.#resumeAfterMs = undefined;
    this.#attempt++;
    this.state = "waiting";
    this.emit("disconnected", { code, reason, retryInMs: delay });
    this.#timer = setTimeout(() => void this.#open(), delay);
  }

  #stop(error: SrpError | undefined): void {
    this.#stopped = true;
    this.state = "stopped";
    clearTimeout(this.#timer);
    this.#clearSessionTimers();
    this.emit("stopped", error ? { error } : {});
  }
}

/**
 * Dials out to a hub and keeps the session alive.
 *
 * @example
 * import { generateIdentity } from "@srp/core";
 * import { connectToHub } from "@srp/provider";
 *
 * const conn = connectToHub({
 *   hub: "http://127.0.0.1:8787",
 *   identity: generateIdentity(),
 *   account: { kind: "api_key", key: process.env.SRP_ACCOUNT_KEY ?? "" },
 * });
 * const welcome = await conn.ready();
 * console.log("session", welcome.sessionId);
 */
export function connectToHub(options: ConnectOptions): HubConnection {
  const conn = new HubConnection(options);
  conn.start();
  return conn;
}
