/**
 * Statements to nodes and their disputes (spec/v1/settlement.md, SRP-SET-004..011): issues
 * and sends each connected node a signed statement of its receipts and earnings, on demand
 * and every interval, and records the disputes nodes raise.
 */
import { signStatement, type Identity } from "@srp/core";
import type { Dispute, Statement } from "@srp/core/schema";
import type { ProviderSession } from "../session.js";
import type { StatementBook } from "../ledger/statements.js";
import type { HubEmitter, StorageErrorSink } from "./types.js";

/** What statements work with. */
export interface StatementsOptions {
  readonly identity: Identity;
  /** Where statements and disputes are kept; absent: none are issued, disputes only emitted. */
  readonly book: StatementBook | undefined;
  readonly emitter: HubEmitter;
  readonly storageError: StorageErrorSink;
  /** How often statements are issued; 0 disables the timer. */
  readonly intervalMs: number;
  /** The open sessions, one per node. */
  sessions(): Iterable<ProviderSession>;
}

/** Statements and disputes of the hub's nodes. */
export interface Statements {
  /** Issues and sends a statement to every connected node with receipts since its last one (all of them with `force`). */
  issue(force?: boolean): Promise<Statement[]>;
  /** A node disputed the hub's view of its receipts (the session's `onDispute`). */
  onDispute(session: ProviderSession, dispute: Dispute): void;
  /** Stops the interval. */
  stop(): void;
}

/** Issues one node's statement and sends it; undefined when it had nothing new (and not `force`). */
async function issueOne(
  o: StatementsOptions,
  book: StatementBook,
  session: ProviderSession,
  force: boolean,
): Promise<Statement | undefined> {
  if (session.state !== "open" || session.nodeId === undefined || session.account === undefined) return undefined;
  try {
    const statement = await book.issueStatement(
      session.nodeId,
      session.account.id,
      (body) => signStatement(body, o.identity),
      Date.now(),
      force,
    );
    if (!statement) return undefined;
    session.send({ type: "statement", statement });
    o.emitter.emit("statement", { nodeId: session.nodeId, statement });
    return statement;
  } catch (e) {
    o.storageError(`statement for ${session.nodeId}`, e);
    return undefined;
  }
}

/** Starts issuing statements every `intervalMs` (when the hub keeps a statement book). */
export function startStatements(o: StatementsOptions): Statements {
  const book = o.book;
  const issue = async (force = false): Promise<Statement[]> => {
    if (!book) return [];
    const out: Statement[] = [];
    for (const session of o.sessions()) {
      const statement = await issueOne(o, book, session, force);
      if (statement) out.push(statement);
    }
    return out;
  };
  const timer = book && o.intervalMs > 0 ? setInterval(() => void issue(), o.intervalMs) : undefined;
  timer?.unref();
  return {
    issue,
    onDispute(session, dispute) {
      o.emitter.emit("dispute", { nodeId: session.nodeId!, accountId: session.account!.id, dispute });
      book?.recordDispute(session.nodeId!, session.account!.id, dispute).catch((e: unknown) => o.storageError("record a dispute", e));
    },
    stop() {
      clearInterval(timer);
    },
  };
}
