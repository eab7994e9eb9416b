/**
 * Provider-mode checks of what a node does with the hub's views of its receipts: receipts
 * it is not awaiting or that name another hub (SRP-ATT-021), the positions and the one
 * dispute of a statement it disputes (SRP-SET-012, SRP-SET-013), and a statement of an
 * empty period (SRP-SET-014). The harness is the hub, as in provider-jobs.ts.
 */
import { canonicalize, formatAmount, generateIdentity, omitFields, parseAmount, signDetached, type ReceiptPosition } from "@srp/core";
import type { Receipt, Statement } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import type { ProviderContext } from "../harness/provider-session.js";
import { chatJob, countersign, expectReceiptError, pick, runDone, servedTwice, serving, statementFor } from "../harness/serving.js";
import { fail } from "../harness/verdict.js";

const sameJson = (a: unknown, b: unknown) => canonicalize(a) === canonicalize(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A statement's position, as a dispute's `hub` carries it. */
const viewOf = (st: Statement): ReceiptPosition => ({
  lastSeq: st.receipts.lastSeq,
  totals: st.totals,
});

/** Provider-mode receipt and statement checks, in run order. */
export const PROVIDER_RECEIPT_CHECKS: Check<ProviderContext>[] = [
  check(
    "provider.statement.dispute_positions",
    "Disputes a statement with a bad signature, and one about another node, as bad_signature with the statement's position as hub and its own as node; disputes a statement whose totals and count both differ once, as totals_mismatch",
    ["SRP-SET-012", "SRP-SET-013", "SRP-SET-008", "SRP-SET-009"],
    "MUST",
    async (ctx) => {
      const s = await servedTwice(ctx);
      const own = s.position;
      const off = {
        ...own.totals,
        cost: formatAmount(parseAmount(own.totals.cost) + 7n),
      };
      const cases: Array<{ what: string; kind: string; statement: Statement }> = [
        {
          what: "a statement signed by another key (its totals off by 7)",
          kind: "bad_signature",
          statement: statementFor(s, { totals: off }, generateIdentity()),
        },
        {
          what: "a validly signed statement about another node",
          kind: "bad_signature",
          statement: statementFor(s, { nodeId: generateIdentity().id }),
        },
        {
          what: "a statement whose totals are off by 7 and whose count is short by one",
          kind: "totals_mismatch",
          statement: statementFor(s, {
            totals: off,
            receipts: {
              count: s.receipts.length - 1,
              firstSeq: 1,
              lastSeq: own.lastSeq,
            },
          }),
        },
      ];
      const p: string[] = [];
      for (const c of cases) {
        const from = s.peer.received.length;
        s.peer.send({ type: "statement", statement: c.statement });
        const d = await s.peer.take((m) => m.type === "dispute", 3000, from, `a dispute of ${c.what}`).catch(() => undefined);
        await sleep(700);
        if (!d) {
          p.push(`no dispute within 3 s of ${c.what}`);
          continue;
        }
        if (d.kind !== c.kind) p.push(`${c.what} was disputed as ${String(d.kind)}, expected ${c.kind} (SRP-SET-013)`);
        if (d.statementId !== c.statement.statementId)
          p.push(
            `the dispute of ${c.what} carries statementId ${String(d.statementId)}, expected ${c.statement.statementId} (SRP-SET-012)`,
          );
        if (!sameJson(d.hub, viewOf(c.statement)))
          p.push(
            `the dispute of ${c.what} has hub ${JSON.stringify(d.hub)}; expected the statement's lastSeq and totals ${JSON.stringify(viewOf(c.statement))} (SRP-SET-012)`,
          );
        if (!sameJson(d.node, own))
          p.push(
            `the dispute of ${c.what} has node ${JSON.stringify(d.node)}; expected the node's own position ${JSON.stringify(own)} (SRP-SET-012)`,
          );
        const all = s.peer.matching((m) => m.type === "dispute" && m.statementId === c.statement.statementId, from);
        if (all.length > 1)
          p.push(
            `${c.what} was disputed ${all.length} times (${all.map((m) => String(m.kind)).join(", ")}); at most one dispute per statement (SRP-SET-013)`,
          );
      }
      const closed = await s.peer.closedWithin(100);
      if (closed) p.push(`the node closed the session after disputing (${closed.code})`);
      if (p.length) fail(p.join("; "));
    },
  ),
  check(
    "provider.statement.empty",
    "Accepts a correct statement of an empty period (count 0, firstSeq 0, lastSeq and totals its position) without a dispute",
    ["SRP-SET-014", "SRP-SET-005"],
    "MUST",
    async (ctx) => {
      const s = await servedTwice(ctx);
      const from = s.peer.received.length;
      s.peer.send({
        type: "statement",
        statement: statementFor(s, {
          receipts: { count: 0, firstSeq: 0, lastSeq: s.position.lastSeq },
          earned: "0",
          balance: "0",
        }),
      });
      await sleep(1000);
      const said = s.peer.matching((m) => m.type === "dispute" || m.type === "error", from);
      if (said.length)
        fail(
          `the node answered a correct statement of an empty period with ${said.map((m) => `${String(m.type)} ${String(m.kind ?? m.code)}`).join(", ")} (SRP-SET-014)`,
        );
      const closed = await s.peer.closedWithin(100);
      if (closed) fail(`the node closed the session after a statement of an empty period (${closed.code})`);
    },
  ),
  check(
    "provider.receipt.not_awaited",
    "Answers a duplicate countersigned receipt, one for a job it never ended with done, and one naming another hub (countersigned by that hub's key) with receipt.field_mismatch and the jobId, and still accepts the correct countersignature afterwards",
    ["SRP-ATT-021", "SRP-ATT-013", "SRP-ATT-014"],
    "SHOULD",
    async (ctx) => {
      const s = await serving(ctx);
      const inst = pick(s, false);
      const first = await runDone(s, chatJob(inst, false, 4));
      countersign(s, first.receipt);
      await sleep(300);
      // A duplicate of the receipt just countersigned.
      let from = s.peer.received.length;
      countersign(s, first.receipt);
      await expectReceiptError(s, first.job.jobId, from, "receipt.field_mismatch");
      // A receipt for a job the node never ran.
      const stranger = `job_conf_never_${first.job.jobId.slice(-8)}`;
      from = s.peer.received.length;
      countersign(s, { ...first.receipt, jobId: stranger });
      await expectReceiptError(s, stranger, from, "receipt.field_mismatch");
      // A receipt re-pointed at another hub, whose key countersigns it.
      const second = await runDone(s, chatJob(inst, false, 4));
      const other = generateIdentity();
      const body = omitFields({ ...second.receipt, hubId: other.id }, "hubSig");
      from = s.peer.received.length;
      s.peer.send({
        type: "receipt",
        receipt: {
          ...body,
          hubSig: signDetached("receiptHub", body, other),
        } as Receipt,
      });
      await expectReceiptError(s, second.job.jobId, from, "receipt.field_mismatch");
      // The node still awaits its own receipt's countersignature.
      from = s.peer.received.length;
      countersign(s, second.receipt);
      await sleep(500);
      const errors = s.peer.matching((m) => m.type === "error", from);
      if (errors.length)
        fail(
          `after refusing a receipt naming another hub, the node answered the correct countersignature with error ${String(errors[0]!.code)} (SRP-ATT-021)`,
        );
    },
  ),
];
