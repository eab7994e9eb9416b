/**
 * Where a node keeps its receipt position per hub (last `seq` and running totals, which
 * SRP-ATT-006 requires to be durable before `done` is sent) and the countersigned
 * receipts it holds as evidence.
 */
import { appendFileSync, createWriteStream, mkdirSync, readFileSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { INITIAL_POSITION, sha256Hex, type ReceiptPosition } from "@srp/core";
import { PositionFile } from "./position-file.js";
import type { Receipt, ReceiptTotals, Statement } from "@srp/core/schema";

/** A node's durable receipt state. */
export interface ReceiptStore {
  /** The position for a hub (the initial position if none was saved). */
  position(hubId: string): ReceiptPosition;
  /**
   * Saves a new position durably; called before the `done` carrying its receipt is sent.
   * A store that writes asynchronously returns a promise that resolves once the position
   * is durable (the node sends the `done` then); `position()` returns the new position at
   * once either way, since the next receipt builds on it.
   */
  savePosition(hubId: string, position: ReceiptPosition): void | Promise<void>;
  /** Keeps a countersigned receipt. */
  addCountersigned(receipt: Receipt): void;
  /** The node's running totals right after receipt `seq` for a hub, when the store still knows them. */
  totalsAt?(hubId: string, seq: number): ReceiptTotals | undefined;
  /** Keeps a statement the hub sent, with whether the node agreed (SRP-SET-010). */
  addStatement?(statement: Statement, agreed: boolean): void;
  /** The statements kept for a hub, oldest first. */
  statements?(hubId: string): Array<{ statement: Statement; agreed: boolean }>;
}

/** Totals after `seq` among countersigned receipts (newest first search). */
function totalsIn(receipts: readonly Receipt[], hubId: string, seq: number): ReceiptTotals | undefined {
  for (let i = receipts.length - 1; i >= 0; i--) {
    const r = receipts[i]!;
    if (r.hubId === hubId && r.seq === seq) return r.totals;
  }
  return undefined;
}

/** Receipt state in memory (tests, short-lived nodes). */
export class MemoryReceiptStore implements ReceiptStore {
  readonly #positions = new Map<string, ReceiptPosition>();
  /** Countersigned receipts received, oldest first. */
  readonly receipts: Receipt[] = [];
  /** Statements received, oldest first. */
  readonly kept: Array<{ statement: Statement; agreed: boolean }> = [];
  position(hubId: string): ReceiptPosition {
    return this.#positions.get(hubId) ?? INITIAL_POSITION;
  }
  savePosition(hubId: string, position: ReceiptPosition): void {
    this.#positions.set(hubId, position);
  }
  addCountersigned(receipt: Receipt): void {
    this.receipts.push(receipt);
  }
  totalsAt(hubId: string, seq: number): ReceiptTotals | undefined {
    const pos = this.#positions.get(hubId);
    if (pos?.lastSeq === seq) return pos.totals;
    return totalsIn(this.receipts, hubId, seq);
  }
  addStatement(statement: Statement, agreed: boolean): void {
    this.kept.push({ statement, agreed });
  }
  statements(hubId: string): Array<{ statement: Statement; agreed: boolean }> {
    return this.kept.filter((k) => k.statement.hubId === hubId);
  }
}

/**
 * Receipt state in a directory: `position-<hub>.slots` (the position, written in place and
 * synced, off the event loop, by `PositionFile` in `position-file.ts`; a node that kept
 * `position-<hub>.json` before reads it once) and `receipts-<hub>.jsonl` (countersigned
 * receipts, appended).
 */
export class FileReceiptStore implements ReceiptStore {
  readonly #dir: string;
  readonly #files = new Map<string, PositionFile>();
  readonly #appenders = new Map<string, Appender>();

  constructor(dir: string) {
    this.#dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  #name(hubId: string): string {
    return sha256Hex(hubId).slice(0, 16);
  }

  #file(hubId: string): PositionFile {
    let file = this.#files.get(hubId);
    if (!file) {
      const name = this.#name(hubId);
      file = new PositionFile(join(this.#dir, `position-${name}.slots`), hubId, () =>
        legacyPosition(join(this.#dir, `position-${name}.json`)),
      );
      this.#files.set(hubId, file);
    }
    return file;
  }

  position(hubId: string): ReceiptPosition {
    return this.#file(hubId).position();
  }

  savePosition(hubId: string, position: ReceiptPosition): Promise<void> {
    return this.#file(hubId).save(position);
  }

  /** Closes the position and receipt files (after their writes in flight). */
  async close(): Promise<void> {
    await Promise.all([...this.#files.values(), ...this.#appenders.values()].map((f) => f.close()));
    this.#files.clear();
    this.#appenders.clear();
  }

  addCountersigned(receipt: Receipt): void {
    // Appended through a stream kept open (one file per hub, writes in order, off the event
    // loop); the newest receipts are also kept in memory until written, for totalsAt.
    this.#appender(receipt.hubId).append(`${JSON.stringify(receipt)}\n`, receipt);
  }

  #appender(hubId: string): Appender {
    let a = this.#appenders.get(hubId);
    if (!a) {
      a = new Appender(join(this.#dir, `receipts-${this.#name(hubId)}.jsonl`));
      this.#appenders.set(hubId, a);
    }
    return a;
  }

  #lines<T>(file: string): T[] {
    try {
      return readFileSync(join(this.#dir, file), "utf8")
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as T);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
  }

  totalsAt(hubId: string, seq: number): ReceiptTotals | undefined {
    const pos = this.position(hubId);
    if (pos.lastSeq === seq) return pos.totals;
    return (
      totalsIn(this.#appenders.get(hubId)?.unwritten ?? [], hubId, seq) ??
      totalsIn(this.#lines<Receipt>(`receipts-${this.#name(hubId)}.jsonl`), hubId, seq)
    );
  }

  addStatement(statement: Statement, agreed: boolean): void {
    appendFileSync(join(this.#dir, `statements-${this.#name(statement.hubId)}.jsonl`), `${JSON.stringify({ statement, agreed })}\n`, {
      mode: 0o600,
    });
  }

  statements(hubId: string): Array<{ statement: Statement; agreed: boolean }> {
    return this.#lines(`statements-${this.#name(hubId)}.jsonl`);
  }
}

/** The position a node stored in `position-<hub>.json` before `.slots` files, or the initial one. */
function legacyPosition(path: string): ReceiptPosition {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as ReceiptPosition;
    return { lastSeq: parsed.lastSeq, totals: parsed.totals };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return INITIAL_POSITION;
  }
}

/**
 * Appends lines to a file through a write stream kept open (writes in order, in the
 * thread pool). Receipts not yet written stay readable in `unwritten`. When the stream
 * fails, it is dropped and the next append opens a new one; the lines it held are
 * appended again synchronously.
 */
class Appender {
  readonly #path: string;
  #stream: WriteStream | undefined;
  /** Receipts handed to the stream and not yet written, oldest first. */
  readonly unwritten: Receipt[] = [];
  #lines: string[] = [];

  constructor(path: string) {
    this.#path = path;
  }

  append(line: string, receipt: Receipt): void {
    if (!this.#stream) {
      const stream = createWriteStream(this.#path, { flags: "a", mode: 0o600 });
      stream.on("error", () => {
        if (this.#stream === stream) this.#stream = undefined;
        const lost = this.#lines.splice(0);
        this.unwritten.splice(0);
        try {
          if (lost.length > 0) appendFileSync(this.#path, lost.join(""), { mode: 0o600 });
        } catch {
          // The disk refuses: the receipts stay with the hub, which serves them (GET /v1/receipts/{jobId}).
        }
      });
      this.#stream = stream;
    }
    this.unwritten.push(receipt);
    this.#lines.push(line);
    this.#stream.write(line, (error) => {
      if (error) return; // the "error" listener writes it again
      this.unwritten.shift();
      this.#lines.shift();
    });
  }

  /** Ends the stream once what it holds is written. */
  close(): Promise<void> {
    const stream = this.#stream;
    this.#stream = undefined;
    return stream ? new Promise((resolve) => stream.end(() => resolve())) : Promise.resolve();
  }
}
