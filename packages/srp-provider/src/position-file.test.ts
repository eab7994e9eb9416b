// The node's durable receipt position (SRP-ATT-006) in real files in a temporary directory:
// saved positions read back after the file is reopened, concurrent saves coalesce and all
// resolve, a slot torn by a power cut leaves the previous position, a damaged file refuses
// to go back to an older position, and a position kept in the older JSON file carries over.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INITIAL_POSITION, sha256Hex, type ReceiptPosition } from "@srp/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { decodeSlot, encodeSlot, newestSlot, PositionFile } from "./position-file.js";
import { FileReceiptStore } from "./receipt-store.js";

const HUB = "hub_test_identity";
const at = (seq: number): ReceiptPosition => ({
  lastSeq: seq,
  totals: { receipts: seq, cost: String(seq * 7), promptTokens: seq * 10, completionTokens: seq * 3 },
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "srp-position-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("PositionFile", () => {
  it("reads back the newest saved position after reopening", async () => {
    const path = join(dir, "p.slots");
    const a = new PositionFile(path, HUB, () => INITIAL_POSITION);
    expect(a.position()).toEqual(INITIAL_POSITION);
    await a.save(at(1));
    await a.save(at(2));
    await a.save(at(3));
    expect(a.position()).toEqual(at(3));
    await a.close();
    const b = new PositionFile(path, HUB, () => INITIAL_POSITION);
    expect(b.position()).toEqual(at(3));
    await b.save(at(4));
    await b.close();
    expect(new PositionFile(path, HUB, () => INITIAL_POSITION).position()).toEqual(at(4));
  });

  it("coalesces saves made while a write is in flight; each resolves, the file holds the last", async () => {
    const path = join(dir, "p.slots");
    const f = new PositionFile(path, HUB, () => INITIAL_POSITION);
    const saves = Array.from({ length: 50 }, (_, i) => f.save(at(i + 1)));
    // The next receipt builds on the newest position at once, durable or not yet.
    expect(f.position()).toEqual(at(50));
    await Promise.all(saves);
    await f.close();
    expect(new PositionFile(path, HUB, () => INITIAL_POSITION).position()).toEqual(at(50));
  });

  it("keeps the previous position when the slot being written is torn", async () => {
    const path = join(dir, "p.slots");
    const f = new PositionFile(path, HUB, () => INITIAL_POSITION);
    await f.save(at(5)); // slot 0
    await f.save(at(6)); // slot 1
    await f.close();
    // A power cut in the middle of writing seq 7 into slot 0: half of it new, the rest old.
    const bytes = readFileSync(path);
    encodeSlot(HUB, at(7)).copy(bytes, 0, 0, 40);
    writeFileSync(path, bytes);
    expect(new PositionFile(path, HUB, () => INITIAL_POSITION).position()).toEqual(at(6));
  });

  it("refuses a file whose every slot is damaged rather than reuse sequence numbers", async () => {
    const path = join(dir, "p.slots");
    const f = new PositionFile(path, HUB, () => INITIAL_POSITION);
    await f.save(at(1));
    await f.save(at(2));
    await f.close();
    writeFileSync(path, Buffer.alloc(2048, 0x41));
    expect(() => new PositionFile(path, HUB, () => INITIAL_POSITION).position()).toThrow(/damaged/);
  });

  it("takes the fallback when the file was created but never written", () => {
    const path = join(dir, "p.slots");
    writeFileSync(path, Buffer.alloc(2048, 0x20));
    expect(new PositionFile(path, HUB, () => at(9)).position()).toEqual(at(9));
  });

  it("slots check their hub and checksum", () => {
    const slot = encodeSlot(HUB, at(3));
    expect(decodeSlot(slot, HUB)).toEqual({ kind: "position", position: at(3) });
    expect(decodeSlot(slot, "another_hub").kind).toBe("invalid");
    const tampered = Buffer.from(slot.toString("utf8").replace('"lastSeq":3', '"lastSeq":4'));
    expect(decodeSlot(tampered, HUB).kind).toBe("invalid");
    expect(newestSlot([decodeSlot(slot, HUB), decodeSlot(encodeSlot(HUB, at(4)), HUB)])).toEqual({ position: at(4), next: 0 });
  });
});

describe("FileReceiptStore", () => {
  it("carries over a position kept in the older position-<hub>.json file, then keeps its own", async () => {
    const name = sha256Hex(HUB).slice(0, 16);
    writeFileSync(join(dir, `position-${name}.json`), JSON.stringify({ hubId: HUB, ...at(12) }));
    const store = new FileReceiptStore(dir);
    expect(store.position(HUB)).toEqual(at(12));
    await store.savePosition(HUB, at(13));
    await store.close();
    expect(new FileReceiptStore(dir).position(HUB)).toEqual(at(13));
  });
});
