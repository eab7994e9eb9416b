/**
 * The hub's public shapes that its parts share: the `Hub` interface, its events, the
 * sessions it reports and the provider endpoint's path. Parts under `src/hub/` import these
 * from here (never from `hub.ts`), and `hub.ts` re-exports them.
 */
import type { EventEmitter } from "node:events";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { Discovery, Dispute, Statement } from "@srp/core/schema";
import type { Registry } from "prom-client";
import type { AccountAdmin } from "../accounts.js";
import type { CardMoneyEvent } from "../api/cards.js";
import type { ResponseStore } from "../api/response-store.js";
import type { HubLedger, LedgerBooks } from "../ledger/ledger.js";
import type { ClientInfo } from "../node-adapter.js";
import type { PayoutEvent } from "../payments/onchain-payouts.js";
import type { PaymentEvent, X402Payments } from "../payments/x402-flow.js";
import type { ReceiptBook } from "../receipts.js";
import type { BreakerChange, Router } from "../routing/router.js";
import type { QueueWaitEvent, WaitQueue } from "../routing/wait-queue.js";

/** Path of the provider WebSocket endpoint. */
export const PROVIDER_PATH = "/srp/v1/provider";

/** A provider session as the hub reports it. */
export interface SessionInfo {
  sessionId: string;
  nodeId: string;
  accountId: string;
  version: number;
  instances: number;
  lastSeen: number;
}

/** Events a hub emits. */
export interface HubEvents {
  "session.open": [info: SessionInfo & { replaced: boolean }];
  "session.close": [info: SessionInfo & { code: number; reason: string }];
  "handshake.rejected": [detail: { sessionId: string; code: string; message: string }];
  /** A breaker parked or readmitted an instance; `lastForModel` means the model has no instance left. */
  breaker: [change: BreakerChange];
  /**
   * A node's receipt failed a check and was not countersigned (the job's consumer is not billed for it);
   * `requestId`: the consumer request the job served, when known.
   */
  "receipt.rejected": [detail: { jobId: string; nodeId: string; code: string; message: string; requestId?: string }];
  /** A node's receipt skipped sequence numbers: it was countersigned, and the missing range recorded (SRP-ATT-010). */
  "receipt.gap": [detail: { jobId: string; nodeId: string; from: number; to: number; requestId?: string }];
  /** A node disputed the hub's receipt totals or a statement (SRP-SET-011). */
  dispute: [detail: { nodeId: string; accountId: string; dispute: Dispute }];
  /** A statement was issued to a node. */
  statement: [detail: { nodeId: string; statement: Statement }];
  /** Storage failed (a receipt or a settlement could not be recorded, reservations not reconciled). */
  "storage.error": [detail: { what: string; message: string }];
  /** An x402 payment settled, failed, became a debt, or has an unknown outcome. */
  payment: [event: PaymentEvent];
  /** A consumer HTTP request was answered: once per request, when its response ended (a stream: when the stream ended). */
  request: [event: RequestEvent];
  /** Consumers' reservations held, settled or released by this process (`hub/ledger-watch.ts`). */
  ledger: [event: LedgerEvent];
  /** The hub's on-chain payouts (the `onchainPayouts` option) issued a voucher, funded vouchers, or had a batch claimed. */
  payout: [event: PayoutEvent];
  /** A request stopped waiting for a slot (SRP-CON-064..067): it got one, its wait ran out, or it left. */
  "queue.wait": [event: QueueWaitEvent];
  /** Card deposits (`cards` option): a Checkout Session created, a deposit credited, a completion refused, a card refund sent, failed or unknown. */
  card: [event: CardMoneyEvent];
}

/** One consumer HTTP request as the hub's `request` event reports it. */
export interface RequestEvent {
  /** The `x-request-id` the response carried. */
  requestId: string;
  /** The route that answered: its path (`/v1/chat/completions`) or prefix (`/v1/receipts/`); `other` when none did. */
  surface: string;
  /** The model that served it, or the model asked for when some instance serves it; absent otherwise. */
  model?: string;
  /** The HTTP status (200 for a stream, even one that ended in an in-band error). */
  status: number;
  /** From the request's arrival to the end of its response, ms. */
  durationMs: number;
  /** A streamed answer: from the request's arrival to its first output, ms. */
  ttftMs?: number;
  /** Billed prompt tokens (the countersigned receipt's), when a job answered. */
  promptTokens?: number;
  /** Billed completion tokens, when a job answered. */
  completionTokens?: number;
  /** What the job cost, in atomic units (1e-6 USD), when a job answered. */
  costUnits?: bigint;
  /** The answer was streamed (server-sent events). */
  stream: boolean;
  /** The SRP error code of an error answer the hub built (`billing.insufficient_credits`, `api.key_budget_exceeded`, …). */
  errorCode?: string;
}

/** One movement of reservations, as the hub's `ledger` event reports it. */
export type LedgerEvent =
  /** Reservations held at admission (a batch holds several at once); `amount`: what they hold together, atomic units. */
  | { outcome: "held"; reservations: number; amount: bigint }
  /** A receipt settled a reservation: `charged` to the consumer, the rest `returned` to the consumer's balance. */
  | { outcome: "settled"; reservations: 1; charged: bigint; returned: bigint }
  /**
   * Reservations released unbilled; `returned`: what came back, when this process held them
   * while someone listened (absent for those of another process, or held before).
   */
  | { outcome: "released"; reservations: number; returned?: bigint };

/** A hub's Prometheus metrics (the `metrics` option). */
export interface HubMetrics {
  /** The hub's own registry (never prom-client's global one): several hubs in one process keep their own. */
  readonly registry: Registry;
  /** The metrics in Prometheus text format, as `GET /metrics` answers them. */
  scrape(): Promise<string>;
  /** The content type of {@link HubMetrics.scrape}'s text. */
  readonly contentType: string;
}

/** The emitter of a hub's events, as its parts see it. */
export type HubEmitter = EventEmitter<HubEvents>;

/** Reports a storage failure that no answer can carry (the hub's `storage.error` event). */
export type StorageErrorSink = (what: string, error: unknown) => void;

/** An embeddable SRP hub. */
export interface Hub extends EventEmitter<HubEvents> {
  /** The hub id (base64url Ed25519 public key). */
  readonly id: string;
  /** Web-standard handler for the hub's HTTP surface. */
  fetch(request: Request, client?: ClientInfo): Promise<Response>;
  /** Handles a `node:http` upgrade request; returns false if the path is not the provider endpoint. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Attaches the HTTP handler and the WebSocket endpoint to a `node:http` server. */
  attach(server: Server): void;
  /** Creates a `node:http` server for this hub and listens; resolves with its base URL. */
  listen(options?: { port?: number; host?: string }): Promise<{ url: string; server: Server }>;
  /** Open, authenticated provider sessions. */
  sessions(): SessionInfo[];
  /** The discovery document for a given base URL. */
  discovery(baseUrl: string): Discovery;
  /** The live routing table. */
  readonly router: Router;
  /** The hub's Prometheus metrics, when the `metrics` option enables them (`hub.metrics.scrape()` for a separate port). */
  readonly metrics: HubMetrics | undefined;
  /** The hub's x402 payments, when it takes them. */
  readonly payments: X402Payments | undefined;
  /** Operator operations (library form of the admin API): the `admin` option. */
  readonly admin: AccountAdmin | undefined;
  /** The receipt book. */
  readonly receipts: ReceiptBook;
  /** The ledger that bills consumers, if any. */
  readonly ledger: HubLedger | undefined;
  /** Where stored responses of `POST /v1/responses` are kept. */
  readonly responses: ResponseStore;
  /** Requests waiting for a slot, per model (SRP-CON-064); for inspection. */
  readonly waiting: WaitQueue;
  /** The ledger's books (balances, history, deposits, refunds, checks): the storage's `books`. */
  readonly books: LedgerBooks | undefined;
  /**
   * Issues a signed statement to every connected node with receipts since its last one
   * (to every connected node with `force`) and sends it; the hub also does this every
   * `statementIntervalMs`. Needs storage that keeps statements (`storage.statements`).
   */
  issueStatements(force?: boolean): Promise<Statement[]>;
  /**
   * Stops taking consumer requests, waits for jobs in flight (up to `drainTimeoutMs`),
   * says goodbye to every node, and closes the endpoint and any server made by `listen`.
   */
  close(): Promise<void>;
  /** Resolves once the hub can serve: at once, or when its process has joined the others of its hub (`options.cluster`). */
  ready(): Promise<void>;
  /**
   * Checks every open provider session's API key or wallet against the account store and
   * closes those whose binding was revoked (`auth.revoked`, SRP-SEC-022); resolves with how
   * many it closed. The hub does this after `DELETE /admin/v1/keys/{keyId}` and every
   * `limits.bindingCheckIntervalMs`.
   */
  revalidateSessions(): Promise<number>;
}
