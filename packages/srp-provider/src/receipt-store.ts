/**
 * Where a node keeps its receipt position per hub (last `seq` and running totals, which
 * SRP-ATT-006 requires to be durable before `done` is sent) and the countersigned
 * receipts it holds as evidence.
 */
import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { INITIAL_POSITION, sha256Hex, type ReceiptPosition } from "@srp/core";
import type { Receipt, ReceiptTotals, Statement } from "@srp/core/schema";

/** A node's durable receipt state. */
export interface ReceiptStore {
  /** The position for a hub (the initial position if none was saved). */
  position(hubId: string): ReceiptPosition;
  /** Saves a new position durably; called before the `done` carrying its receipt is sent. */
  savePosition(hubId: string, position: ReceiptPosition): void;
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
 * Receipt state in a directory: `position-<hub>.json` (written with fsync and an atomic
 * rename) and `receipts-<hub>.jsonl` (countersigned receipts, appended).
 */
export class FileReceiptStore implements ReceiptStore {
  readonly #dir: string;
  readonly #cache = new Map<string, ReceiptPosition>();

  constructor(dir: string) {
    this.#dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  #name(hubId: string): string {
    return sha256Hex(hubId).slice(0, 16);
  }

  position(hubId: string): ReceiptPosition {
    const cached = this.#cache.get(hubId);
    if (cached) return cached;
    let pos: ReceiptPosition = INITIAL_POSITION;
    try {
      const parsed = JSON.parse(readFileSync(join(this.#dir, `position-${this.#name(hubId)}.json`), "utf8")) as ReceiptPosition & {
        hubId?: string;
      };
      pos = { lastSeq: parsed.lastSeq, totals: parsed.totals };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    this.#cache.set(hubId, pos);
    return pos;
  }

  savePosition(hubId: string, position: ReceiptPosition): void {
    const file = join(this.#dir, `position-${this.#name(hubId)}.json`);
    const tmp = `${file}.tmp`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, JSON.stringify({ hubId, ...position }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    this.#cache.set(hubId, position);
  }

  addCountersigned(receipt: Receipt): void {
    appendFileSync(join(this.#dir, `receipts-${this.#name(receipt.hubId)}.jsonl`), `${JSON.stringify(receipt)}\n`, { mode: 0o600 });
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
    return totalsIn(this.#lines<Receipt>(`receipts-${this.#name(hubId)}.jsonl`), hubId, seq);
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
