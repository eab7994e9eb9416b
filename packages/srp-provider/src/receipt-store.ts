/**
 * Where a node keeps its receipt position per hub (last `seq` and running totals, which
 * SRP-ATT-006 requires to be durable before `done` is sent) and the countersigned
 * receipts it holds as evidence.
 */
import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { INITIAL_POSITION, sha256Hex, type Receipt, type ReceiptPosition } from "@srp/core";

/** A node's durable receipt state. */
export interface ReceiptStore {
  /** The position for a hub (the initial position if none was saved). */
  position(hubId: string): ReceiptPosition;
  /** Saves a new position durably; called before the `done` carrying its receipt is sent. */
  savePosition(hubId: string, position: ReceiptPosition): void;
  /** Keeps a countersigned receipt. */
  addCountersigned(receipt: Receipt): void;
}

/** Receipt state in memory (tests, short-lived nodes). */
export class MemoryReceiptStore implements ReceiptStore {
  readonly #positions = new Map<string, ReceiptPosition>();
  /** Countersigned receipts received, oldest first. */
  readonly receipts: Receipt[] = [];
  position(hubId: string): ReceiptPosition {
    return this.#positions.get(hubId) ?? INITIAL_POSITION;
  }
  savePosition(hubId: string, position: ReceiptPosition): void {
    this.#positions.set(hubId, position);
  }
  addCountersigned(receipt: Receipt): void {
    this.receipts.push(receipt);
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
      const parsed = JSON.parse(readFileSync(join(this.#dir, `position-${this.#name(hubId)}.json`), "utf8")) as ReceiptPosition & { hubId?: string };
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
}
