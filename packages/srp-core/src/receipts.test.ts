import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { identityFromSeed } from "./identity.js";
import { countersignReceipt, createReceipt, INITIAL_POSITION, verifyReceipt, verifyReceiptChain, type ReceiptDraft } from "./receipts.js";
import type { Receipt } from "./schema/attestation.js";
import { compareReceiptPositions, signStatement, verifyStatement } from "./statements.js";
import { validateMessage } from "./codec.js";

const hub = identityFromSeed(new Uint8Array(32).fill(1));
const node = identityFromSeed(new Uint8Array(32).fill(2));

function draft(i: number, promptTokens = 100, completionTokens = 50): ReceiptDraft {
  return {
    jobId: `job-${i}`,
    hubId: hub.id,
    instanceId: "inst-1",
    model: "llama3.1:8b",
    requestHash: "a".repeat(64),
    responseHash: "b".repeat(64),
    usage: { promptTokens, completionTokens, measured: true },
    price: { input: "200000", output: "800000" },
    startedAt: 1000 + i,
    finishedAt: 2000 + i,
  };
}

function chain(n: number): Receipt[] {
  const out: Receipt[] = [];
  let pos = INITIAL_POSITION;
  for (let i = 0; i < n; i++) {
    const r = countersignReceipt(createReceipt(draft(i), pos, node), hub);
    out.push(r);
    pos = { lastSeq: r.seq, totals: r.totals };
  }
  return out;
}

describe("receipts", () => {
  it("a countersigned receipt verifies and matches the wire schema", () => {
    const [r] = chain(1);
    expect(r!.cost).toBe("60");
    expect(verifyReceipt(r!)).toEqual([]);
    expect(validateMessage({ type: "receipt", receipt: r })).toBeUndefined();
  });

  it("never bills unmeasured usage", () => {
    const d = draft(0);
    const r = createReceipt({ ...d, usage: { ...d.usage, measured: false } }, INITIAL_POSITION, node);
    expect(r.cost).toBe("0");
    expect(r.totals.cost).toBe("0");
  });

  it("names each kind of tampering", () => {
    const [r] = chain(1);
    const codes = (x: Receipt) => verifyReceipt(x).map((p) => p.code);
    expect(codes({ ...r!, cost: "61" })).toEqual(["receipt.bad_node_signature", "receipt.bad_hub_signature", "receipt.cost_mismatch"]);
    expect(codes({ ...r!, hubSig: r!.nodeSig })).toEqual(["receipt.bad_hub_signature"]);
    const { hubSig: _drop, ...unsigned } = r!;
    expect(codes(unsigned)).toEqual(["receipt.missing_hub_signature"]);
    expect(verifyReceipt(unsigned, { requireHubSignature: false })).toEqual([]);
    expect(verifyReceipt(r!, { nodeId: hub.id }).map((p) => p.code)).toEqual(["receipt.field_mismatch"]);
  });

  it("a chain verifies; a dropped receipt is a sequence gap and breaks the totals", () => {
    const receipts = chain(4);
    expect(verifyReceiptChain(receipts)).toEqual([]);
    const problems = verifyReceiptChain([receipts[0]!, receipts[2]!, receipts[3]!]);
    expect(problems.map((p) => [p.code, p.index])).toEqual([
      ["receipt.sequence_gap", 1],
      ["receipt.totals_mismatch", 1],
    ]);
  });

  it("running totals always equal the sum of the receipts (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(100_000), fc.nat(100_000)), { minLength: 1, maxLength: 12 }), (usages) => {
        let pos = INITIAL_POSITION;
        let sum = 0n;
        const receipts: Receipt[] = [];
        usages.forEach(([p, c], i) => {
          const r = countersignReceipt(createReceipt(draft(i, p, c), pos, node), hub);
          receipts.push(r);
          sum += BigInt(r.cost);
          pos = { lastSeq: r.seq, totals: r.totals };
        });
        expect(BigInt(pos.totals.cost)).toBe(sum);
        expect(verifyReceiptChain(receipts)).toEqual([]);
      }),
      { numRuns: 10 },
    );
  });
});

describe("statements", () => {
  it("sign, verify, and detect tampering", () => {
    const receipts = chain(2);
    const last = receipts[1]!;
    const s = signStatement(
      {
        v: 1,
        statementId: "st-1",
        nodeId: node.id,
        accountId: "acct-1",
        period: { from: 0, to: 10_000 },
        receipts: { count: 2, firstSeq: 1, lastSeq: 2 },
        totals: last.totals,
        earned: "108",
        paid: "0",
        balance: "108",
        issuedAt: 10_000,
      },
      hub,
    );
    expect(verifyStatement(s)).toBe(true);
    expect(verifyStatement({ ...s, earned: "1000" })).toBe(false);
    expect(validateMessage({ type: "statement", statement: s })).toBeUndefined();
  });

  it("compares the hub's view with the node's receipts", () => {
    const receipts = chain(3);
    const at = (i: number) => ({ lastSeq: receipts[i]!.seq, totals: receipts[i]!.totals });
    expect(compareReceiptPositions(at(2), at(2))).toBeUndefined();
    expect(compareReceiptPositions(at(1), at(2))).toMatch(/1 receipt\(s\) missing at the hub/);
    expect(compareReceiptPositions(at(2), at(1))).toMatch(/claims/);
    expect(compareReceiptPositions({ lastSeq: 3, totals: at(1).totals }, at(2))).toMatch(/totals differ/);
  });
});
