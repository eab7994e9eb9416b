/**
 * A recording WebSocket peer for the harness: it remembers every frame it receives,
 * validates each message against schema.json, and lets a check wait for the next
 * message or for the close, with time limits.
 */
import WebSocket from "ws";
import { LocalError, scanJson } from "@srp/core";
import type { SchemaValidator } from "../schema.js";

/**
 * The largest message the harness's own WebSocket accepts. It checks UTF-8 itself, so a
 * peer's invalid text is recorded as a violation instead of closing the connection.
 */
export const WIRE_OPTIONS = { maxPayload: 64 * 1024 * 1024, skipUTF8Validation: true } as const;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** What SRP-TR-002 and SRP-FRM-010 forbid in a text frame a peer sent, before its schema is checked. */
function textProblem(data: Buffer): string | undefined {
  try {
    strictUtf8.decode(data);
  } catch {
    return "frame is not valid UTF-8 (SRP-TR-002)";
  }
  const scan = scanJson(data.toString(), { maxDepth: Number.MAX_SAFE_INTEGER, duplicates: true });
  return !scan.ok && scan.problem === "duplicate"
    ? `frame has duplicate member name ${JSON.stringify(scan.name)} (SRP-FRM-010)`
    : undefined;
}

/** A received frame, parsed. */
export interface Received {
  /** Parsed JSON, or undefined when the frame was not JSON. */
  message: Record<string, unknown> | undefined;
  /** The raw text. */
  raw: string;
  /** When it arrived (ms since the epoch). */
  at: number;
}

/** A test on received messages. */
export type MessagePredicate = (message: Record<string, unknown>) => boolean;

/** The close of a connection. */
export interface Closed {
  code: number;
  reason: string;
}

/** Thrown by waits that time out. */
export class WireTimeoutError extends LocalError {
  override readonly name = "WireTimeoutError";
}

/** A WebSocket upgrade the server answered with an HTTP status instead of switching protocols. */
export class UpgradeRefusedError extends LocalError {
  override readonly name = "UpgradeRefusedError";

  constructor(
    readonly status: number,
    /** The answer's `Retry-After`, in milliseconds, when it had one. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(`the WebSocket upgrade was answered ${status}${retryAfterMs === undefined ? "" : ` (Retry-After ${retryAfterMs / 1000} s)`}`, {
      details: { status, retryAfterMs },
    });
  }
}

/** One WebSocket connection, either side. */
export class WirePeer {
  readonly received: Received[] = [];
  /** Schema violations in received messages. */
  readonly violations: string[] = [];
  closed: Closed | undefined;
  /** Called with each received message (after it is recorded), e.g. to answer probes automatically. */
  onMessage: ((message: Record<string, unknown>) => void) | undefined;
  readonly #ws: WebSocket;
  #cursor = 0;
  readonly #taken = new Set<number>();
  #waiters: Array<() => void> = [];

  constructor(ws: WebSocket, validator: SchemaValidator) {
    this.#ws = ws;
    ws.on("message", (data, isBinary) => {
      const raw = isBinary ? "<binary>" : data.toString();
      const malformed = isBinary ? undefined : textProblem(data as Buffer);
      if (malformed) this.violations.push(malformed);
      let message: Record<string, unknown> | undefined;
      try {
        const v: unknown = JSON.parse(raw);
        if (typeof v === "object" && v !== null && !Array.isArray(v)) message = v as Record<string, unknown>;
      } catch {
        message = undefined;
      }
      const problem = validator.checkMessage(message ?? raw);
      if (problem) this.violations.push(problem);
      this.received.push({ message, raw, at: Date.now() });
      if (message) this.onMessage?.(message);
      this.#wake();
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.#wake();
    });
    ws.on("error", () => {
      /* a close follows */
    });
  }

  /** Connects to a WebSocket URL; an upgrade answered with an HTTP status rejects with an {@link UpgradeRefusedError}. */
  static connect(url: string, validator: SchemaValidator, timeoutMs = 5000): Promise<WirePeer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { handshakeTimeout: timeoutMs, ...WIRE_OPTIONS });
      const peer = new WirePeer(ws, validator);
      ws.once("open", () => resolve(peer));
      ws.once("unexpected-response", (req, res) => {
        const retryAfter = Number(res.headers["retry-after"]);
        req.destroy();
        reject(new UpgradeRefusedError(res.statusCode ?? 0, Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined));
      });
      ws.once("error", (e) => reject(e));
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  #wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The next unread message; throws WireTimeoutError, or an Error when the connection closed first. */
  async next(timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.received[this.#cursor];
      if (r) {
        this.#cursor++;
        if (!r.message) throw new Error(`peer sent a frame that is not a JSON object: ${r.raw.slice(0, 80)}`);
        return r.message;
      }
      if (this.closed) throw new Error(`connection closed (${this.closed.code} ${this.closed.reason}) while waiting for a message`);
      const left = deadline - Date.now();
      if (left <= 0) throw new WireTimeoutError(`no message within ${timeoutMs} ms`);
      await this.#wait(left);
    }
  }

  /** Waits for a message of the given type, skipping heartbeats. */
  async expect(type: string, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (m.type === type) return m;
      if (m.type === "heartbeat") continue;
      throw new Error(`expected ${type}, got ${JSON.stringify(m).slice(0, 200)}`);
    }
  }

  /**
   * Waits for a message satisfying `match` that no earlier `take` returned, looking at
   * every message received from index `from` on (independently of `next`'s position), and
   * marks it taken. Throws WireTimeoutError, or an Error when the connection closed first.
   */
  async take(match: MessagePredicate, timeoutMs = 5000, from = 0, what = "the expected message"): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    let scanned = from;
    for (;;) {
      for (; scanned < this.received.length; scanned++) {
        const m = this.received[scanned]!.message;
        if (m && !this.#taken.has(scanned) && match(m)) {
          this.#taken.add(scanned);
          return m;
        }
      }
      if (this.closed) throw new Error(`connection closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new WireTimeoutError(`${what} did not arrive within ${timeoutMs} ms`);
      await this.#wait(left);
    }
  }

  /** When a received message (as returned by `next`, `take` or `matching`) arrived, and its index. */
  arrival(message: Record<string, unknown>): { at: number; index: number } | undefined {
    const index = this.received.findIndex((r) => r.message === message);
    return index < 0 ? undefined : { at: this.received[index]!.at, index };
  }

  /** Messages received from index `from` on that satisfy `match`. */
  matching(match: MessagePredicate, from = 0): Record<string, unknown>[] {
    return this.received.slice(from).flatMap((r) => (r.message && match(r.message) ? [r.message] : []));
  }

  /** Resolves with the close, or undefined if still open after the timeout. */
  async closedWithin(timeoutMs: number): Promise<Closed | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await this.#wait(left);
    }
    return this.closed;
  }

  /** Sends a message object as JSON text. */
  send(message: unknown): void {
    this.sendRaw(JSON.stringify(message));
  }

  /** Sends raw text (or bytes as a binary frame). */
  sendRaw(data: string | Buffer): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(data);
  }

  /** Sends bytes as a text frame (opcode 0x1) as they are, valid UTF-8 or not. */
  sendText(bytes: Uint8Array): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(bytes, { binary: false });
  }

  /** Sends a WebSocket ping (a control frame, not an SRP message); resolves true when a pong arrives within `timeoutMs`. */
  ping(timeoutMs = 2000): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.#ws.readyState !== WebSocket.OPEN) return resolve(false);
      const onPong = () => {
        clearTimeout(t);
        resolve(true);
      };
      const t = setTimeout(() => {
        this.#ws.off("pong", onPong);
        resolve(false);
      }, timeoutMs);
      this.#ws.once("pong", onPong);
      this.#ws.ping();
    });
  }

  /** Whether the socket is still open. */
  get open(): boolean {
    return this.#ws.readyState === WebSocket.OPEN && !this.closed;
  }

  /** Closes with a code. */
  close(code = 1000, reason = ""): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.close(code, reason);
  }

  /** Drops the TCP connection. */
  terminate(): void {
    this.#ws.terminate();
  }
}

/**
 * Waits for a coded rejection: an `error` message with `code`, then a close with
 * `closeCode`. Returns a description of what differed, or undefined when it matched.
 */
export async function expectRejection(peer: WirePeer, code: string, closeCode: number, timeoutMs = 5000): Promise<string | undefined> {
  let error: Record<string, unknown> | undefined;
  const seen: string[] = [];
  try {
    for (;;) {
      const m = await peer.next(timeoutMs);
      if (m.type === "error") {
        error = m;
        break;
      }
      if (m.type !== "heartbeat") seen.push(String(m.type));
      if (m.type === "welcome") break; // accepted: no need to wait for a rejection
    }
  } catch {
    // closed or timed out: reported below
  }
  const closed = await peer.closedWithin(error ? timeoutMs : Math.min(timeoutMs, 500));
  const problems: string[] = [];
  if (!error) problems.push(`no error message${seen.length ? ` (got ${seen.join(", ")})` : ""}`);
  else if (error.code !== code) problems.push(`error code ${JSON.stringify(error.code)}, expected ${code}`);
  if (!closed) problems.push(`connection still open ${timeoutMs} ms later`);
  else if (closed.code !== closeCode) problems.push(`closed with ${closed.code}, expected ${closeCode}`);
  return problems.length ? problems.join("; ") : undefined;
}
