/**
 * A node's receipt position for one hub, durable and cheap to update (SRP-ATT-006: the
 * position is on disk before the `done` carrying its receipt is sent). The file has two
 * fixed-size slots, written alternately in place and synced with `fdatasync` in libuv's
 * thread pool, so an update costs one small write and one data sync (no new file, no
 * rename, no metadata) and never blocks the event loop. Each slot holds the position as
 * JSON with a SHA-256 checksum; a write torn by a power cut spoils only the slot being
 * written, and the other still holds the previous durable position. Positions saved while
 * a write is in flight are coalesced: the next write stores the latest, which covers them.
 */
import { existsSync, readFileSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname } from "node:path";
import { sha256Hex, type ReceiptPosition } from "@srp/core";

/** Bytes per slot; a position record is far smaller. */
const SLOT = 1024;

/** The record of a position in a slot: JSON, space-padded to the slot, ending in a newline. */
export function encodeSlot(hubId: string, position: ReceiptPosition): Buffer {
  const body = { hubId, lastSeq: position.lastSeq, totals: position.totals };
  const text = JSON.stringify({ ...body, sum: sha256Hex(JSON.stringify(body)) });
  if (Buffer.byteLength(text) > SLOT - 1) throw new RangeError("a receipt position record exceeds its slot");
  const buf = Buffer.alloc(SLOT, 0x20);
  buf.write(text, 0, "utf8");
  buf[SLOT - 1] = 0x0a;
  return buf;
}

/** What one slot holds: a position with its sequence number, nothing (never written), or something torn. */
export type Slot = { kind: "position"; position: ReceiptPosition } | { kind: "blank" } | { kind: "invalid" };

/** Reads one slot's bytes (see {@link encodeSlot}). */
export function decodeSlot(bytes: Buffer, hubId: string): Slot {
  // NULs: the slots of a file whose creation a power cut interrupted.
  const text = bytes.toString("utf8").replace(/\0/g, "").trim();
  if (text === "") return { kind: "blank" };
  try {
    const { sum, ...body } = JSON.parse(text) as { hubId: string; lastSeq: number; totals: ReceiptPosition["totals"]; sum: string };
    if (body.hubId !== hubId || sum !== sha256Hex(JSON.stringify(body))) return { kind: "invalid" };
    return { kind: "position", position: { lastSeq: body.lastSeq, totals: body.totals } };
  } catch {
    return { kind: "invalid" };
  }
}

/**
 * The newest position among the slots and the slot to write next (the other one). With no
 * position in any slot, `undefined` when the file was never completely written (blank
 * slots, or the first write torn: the position before it stands), and an error when every
 * slot was written and none reads back (the file is damaged: going back to an older
 * position would reuse sequence numbers).
 */
export function newestSlot(slots: readonly Slot[]): { position: ReceiptPosition | undefined; next: number } {
  let best = -1;
  slots.forEach((s, i) => {
    if (s.kind === "position" && (best < 0 || s.position.lastSeq > (slots[best] as { position: ReceiptPosition }).position.lastSeq))
      best = i;
  });
  if (best >= 0) return { position: (slots[best] as { position: ReceiptPosition }).position, next: (best + 1) % slots.length };
  if (slots.some((s) => s.kind === "blank")) return { position: undefined, next: 0 };
  throw new Error("the receipt position file is damaged: no slot holds a valid position");
}

/** The durable position of one hub in one file (see the module comment). */
export class PositionFile {
  readonly #path: string;
  readonly #hubId: string;
  readonly #fallback: () => ReceiptPosition;
  #current: ReceiptPosition | undefined;
  /** The slot the next write goes to. */
  #next = 0;
  #handle: Promise<FileHandle> | undefined;
  /** The newest position saved and not yet being written. */
  #pending: ReceiptPosition | undefined;
  #writing = false;
  #waiters: Array<{ seq: number; resolve: () => void; reject: (e: unknown) => void }> = [];
  #failed: unknown;

  /** @param fallback the position when the file does not hold one yet (an older format, or the initial position). */
  constructor(path: string, hubId: string, fallback: () => ReceiptPosition) {
    this.#path = path;
    this.#hubId = hubId;
    this.#fallback = fallback;
  }

  /** The newest position saved (durable or being made durable). */
  position(): ReceiptPosition {
    if (this.#current) return this.#current;
    let stored: ReceiptPosition | undefined;
    if (existsSync(this.#path)) {
      const bytes = readFileSync(this.#path);
      const slots = [0, 1].map((i) => decodeSlot(bytes.subarray(i * SLOT, (i + 1) * SLOT), this.#hubId));
      const newest = newestSlot(slots);
      stored = newest.position;
      this.#next = newest.next;
    }
    this.#current = stored ?? this.#fallback();
    return this.#current;
  }

  /** Saves `position` (its `lastSeq` above the current one); resolves once it is on disk. */
  save(position: ReceiptPosition): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    this.position(); // the slot to write next is known
    this.#current = position;
    this.#pending = position;
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ seq: position.lastSeq, resolve, reject }));
    void this.#pump();
    return done;
  }

  /** Writes the pending position while there is one, one write in flight at a time. */
  async #pump(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#pending) {
        const position = this.#pending;
        this.#pending = undefined;
        const handle = await (this.#handle ??= this.#open());
        await handle.write(encodeSlot(this.#hubId, position), 0, SLOT, this.#next * SLOT);
        await handle.datasync();
        this.#next = 1 - this.#next;
        const durable = this.#waiters.filter((w) => w.seq <= position.lastSeq);
        this.#waiters = this.#waiters.filter((w) => w.seq > position.lastSeq);
        for (const w of durable) w.resolve();
      }
    } catch (error) {
      // Fail-stop: what the file holds is no longer known, so no later position is promised either.
      this.#failed = error;
      for (const w of this.#waiters.splice(0)) w.reject(error);
    } finally {
      this.#writing = false;
    }
  }

  /** Opens the file, creating it with blank slots, synced with its directory entry, when new. */
  async #open(): Promise<FileHandle> {
    const created = !existsSync(this.#path);
    const handle = await open(this.#path, created ? "w+" : "r+", 0o600);
    if (created) {
      await handle.write(Buffer.alloc(2 * SLOT, 0x20), 0, 2 * SLOT, 0);
      await handle.sync();
      const dir = await open(dirname(this.#path), "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    }
    return handle;
  }

  /** Closes the file after the write in flight, if any. */
  async close(): Promise<void> {
    while (this.#writing) await new Promise((r) => setImmediate(r));
    const handle = await this.#handle?.catch(() => undefined);
    this.#handle = undefined;
    await handle?.close();
  }
}
