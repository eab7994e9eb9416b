/**
 * Hub-mode checks of receipts, money and settlement beyond the job checks: every refusal
 * code a hub reports, what the consumer of a refused receipt gets, late output after a
 * cancel, exact integer money, the wire form of amounts, and the statements a hub sends.
 * The harness is a provider node (and the consumer of its own model), as in hub-jobs.ts.
 */
import {
  addToTotals,
  canonicalize,
  createAuth,
  formatAmount,
  generateIdentity,
  parseAmount,
  responseHash,
  StreamHasher,
  verifyStatement,
} from "@srp/core";
import type { Job, ReceiptTotals, Statement, Usage } from "@srp/core/schema";
import type { Check } from "../types.js";
import { chatChunks, chatResponse, usageOf } from "../harness/answers.js";
import { check } from "../harness/check.js";
import { bodyText, deltaContent, eventJson, SseReader, within } from "../harness/consumer.js";
import { connect, type HubContext, needKey, stillServing } from "../harness/hub-session.js";
import { ASK, instance, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { cancelMidStream, drain, readStream, type StreamSeen, summarize } from "../harness/streams.js";
import { ensure, fail, skip } from "../harness/verdict.js";
import { expectRejection } from "../harness/wire.js";

const sameJson = (a: unknown, b: unknown) => canonicalize(a) === canonicalize(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What an answer the hub billed nothing for shows in its `usage` (SRP-ATT-019, SRP-ATT-020, SRP-ATT-023); empty when it does. */
function unbilledProblems(usage: Record<string, unknown> | undefined, code: string): string[] {
  if (!usage) return ["no usage reached the consumer"];
  const p: string[] = [];
  if (usage.prompt_tokens !== 0 || usage.completion_tokens !== 0)
    p.push(
      `usage shows ${String(usage.prompt_tokens)} prompt and ${String(usage.completion_tokens)} completion tokens; nothing was billed, so 0 and 0 (SRP-ATT-019)`,
    );
  if (usage.cost_units !== "0") p.push(`usage.cost_units is ${JSON.stringify(usage.cost_units)}, expected "0" (SRP-ATT-019)`);
  if (usage.receipt_id !== null) p.push(`usage.receipt_id is ${JSON.stringify(usage.receipt_id)}, expected null (SRP-ATT-019)`);
  if (usage.measured !== false) p.push(`usage.measured is ${JSON.stringify(usage.measured)}, expected false (SRP-ATT-019)`);
  if (usage.receipt_error !== code)
    p.push(`usage.receipt_error is ${JSON.stringify(usage.receipt_error)}, expected ${JSON.stringify(code)} (SRP-ATT-020)`);
  return p;
}

/** The hub's answer to a `done` for `jobId` must be `error` with `code` naming the job; returns what differs. */
async function refusal(node: HarnessNode, jobId: string, code: string, what: string): Promise<string | undefined> {
  const answer = await node.answerTo(jobId).catch((e: Error) => ({ type: "timeout", message: e.message }) as Record<string, unknown>);
  if (answer.type === "receipt") return `${what}: the hub countersigned it (expected error ${code})`;
  if (answer.type !== "error") return `${what}: ${String(answer.message)}`;
  if (answer.code !== code) return `${what}: error ${String(answer.code)}, expected ${code}`;
  if (answer.jobId !== jobId) return `${what}: the error carries jobId ${String(answer.jobId)}, not the job's`;
  return undefined;
}

/** Prices whose cost overflows the 53-bit integers of an IEEE 754 double (money.md, SRP-MON-002). */
export const HUGE_PRICE = {
  input: "123456789012345678901234567",
  output: "98765432109876543210987654321",
} as const;

/** Amount forms a receiver must refuse (SRP-MON-001), each with what it is. */
const BAD_AMOUNTS: Array<[unknown, string]> = [
  ["01", "a leading zero"],
  ["1.5", "a fraction"],
  ["1e3", "an exponent"],
  ["-1", "a sign"],
  [" 1", "whitespace"],
  [450, "a JSON number"],
  [`1${"0".repeat(39)}`, "40 digits"],
];

/** Hub-mode receipt, money and settlement checks, in run order. */
export const HUB_SETTLEMENT_CHECKS: Check<HubContext>[] = [
  check(
    "hub.receipt.codes",
    "Refuses receipts with the code of each problem: running totals one unit off (receipt.totals_mismatch), another hub's id, finishedAt before startedAt, a wrong requestHash (receipt.field_mismatch), cachedTokens or cachedTokens + cacheWriteTokens above promptTokens (receipt.cost_mismatch); countersigns nothing of them and keeps the node's position",
    ["SRP-ATT-009", "SRP-ATT-014", "SRP-ATT-002", "SRP-ATT-003", "SRP-MON-004"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const start = node.position;
      const unpriceable = (usage: Usage) => (b: Record<string, unknown>) => {
        b.usage = usage;
        b.cost = "1";
        b.totals = addToTotals(start.totals, usage, 1n);
      };
      const cases: Array<{
        what: string;
        code: string;
        mutate: (b: Record<string, unknown>) => void;
        usage?: Usage;
      }> = [
        {
          what: "totals whose cost is one unit more than the recorded totals plus this receipt",
          code: "receipt.totals_mismatch",
          mutate: (b) =>
            void (b.totals = {
              ...(b.totals as ReceiptTotals),
              cost: formatAmount(parseAmount((b.totals as ReceiptTotals).cost) + 1n),
            }),
        },
        {
          what: "a receipt naming another hub (SRP-ATT-002)",
          code: "receipt.field_mismatch",
          mutate: (b) => void (b.hubId = generateIdentity().id),
        },
        {
          what: "finishedAt before startedAt",
          code: "receipt.field_mismatch",
          mutate: (b) => void (b.finishedAt = (b.startedAt as number) - 1),
        },
        {
          what: "a requestHash that is not the hash of the job's request",
          code: "receipt.field_mismatch",
          mutate: (b) => void (b.requestHash = "0".repeat(64)),
        },
        {
          what: "cachedTokens 12 above promptTokens 11 (SRP-MON-004)",
          code: "receipt.cost_mismatch",
          usage: {
            promptTokens: 11,
            completionTokens: 1,
            cachedTokens: 12,
            measured: true,
          },
          mutate: () => undefined,
        },
        {
          what: "cachedTokens 6 + cacheWriteTokens 6 above promptTokens 11 (SRP-MON-004)",
          code: "receipt.cost_mismatch",
          usage: {
            promptTokens: 11,
            completionTokens: 1,
            cachedTokens: 6,
            cacheWriteTokens: 6,
            measured: true,
          },
          mutate: () => undefined,
        },
      ];
      const problems: string[] = [];
      for (const c of cases) {
        const call = node.chat({ model, messages: ASK, max_tokens: 8 });
        const job = await node.nextJob(call);
        node.position = start;
        const response = chatResponse(job, "pong", {
          prompt_tokens: 11,
          completion_tokens: 1,
        });
        const usage = c.usage ?? usageOf(["pong"]);
        const mutate = c.usage ? unpriceable(c.usage) : c.mutate;
        const receipt = node.receipt(job, usageOf(["pong"]), responseHash(response), { mutate });
        node.peer.send({
          type: "done",
          jobId: job.jobId,
          chunks: 0,
          usage,
          response,
          receipt,
        });
        const p = await refusal(node, job.jobId, c.code, c.what);
        if (p) problems.push(p);
        await drain(call);
        if (!node.peer.open)
          fail(
            `${problems.join("; ")}${problems.length ? "; " : ""}the hub closed the session after ${c.what} (${node.peer.closed?.code})`,
          );
      }
      await sleep(100);
      const late = node.peer.matching((m) => m.type === "receipt");
      if (late.length) problems.push(`the hub countersigned ${late.length} refused receipt(s) after all`);
      // The position did not move: the next receipt in sequence verifies.
      node.position = start;
      const call = node.chat({ model, messages: ASK, max_tokens: 8 });
      const job = await node.nextJob(call);
      await node
        .countersigned(node.responseAnswer(job, "pong").receipt)
        .catch((e: Error) => problems.push(`a valid receipt after the refused ones: ${e.message}`));
      await drain(call);
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.receipt.refused_answer",
    "Answers the consumer of a refused receipt as specified: the answer unbilled with usage.receipt_error (non-streamed and streamed, [DONE] last, no error event); a non-streamed answer whose receipt is implausible is failed over or answered 502 job.upstream_error, a streamed one already under way ends unbilled with receipt_error",
    ["SRP-ATT-023", "SRP-ATT-020", "SRP-ATT-019", "SRP-ATT-017"],
    "MUST",
    async (ctx) => {
      // One model per implausible case: each refusal counts against its instance (SRP-ATT-017).
      const [model, streamed, single] = [newModel(), newModel(), newModel()];
      const node = await HarnessNode.open(ctx, [instance(model), instance(streamed), instance(single)]);
      const problems: string[] = [];
      const inflated: Usage = {
        promptTokens: 11,
        completionTokens: 1_000_000,
        measured: true,
      };
      /** What is wrong with a stream whose receipt was refused with `code`, given the text the node streamed. */
      const streamProblems = (what: string, seen: StreamSeen, code: string, text: string) => {
        if (seen.text !== text)
          problems.push(`${what}: the consumer's text is ${JSON.stringify(seen.text)}, the node streamed ${JSON.stringify(text)}`);
        if (seen.errors.length)
          problems.push(
            `${what}: the stream carries an error event ${JSON.stringify(seen.errors[0]).slice(0, 200)}; the answer succeeded and only its bill was refused (SRP-ATT-023)`,
          );
        if (!seen.lastIsDone || seen.doneMarkers !== 1)
          problems.push(`${what}: the stream does not end with exactly one data: [DONE] (SRP-ATT-020)`);
        problems.push(...unbilledProblems(seen.usage, code).map((x) => `${what}: ${x}`));
      };
      /** Runs one case; a case that cannot finish is a problem, and the next still runs. */
      const step = async (what: string, body: () => Promise<void>) => {
        await body().catch((e: Error) => problems.push(`${what}: ${e.message}`));
      };

      // 1. Not streamed, a receipt signed by another key: the answer, unbilled.
      await step("not streamed, bad node signature", async () => {
        const call = node.chat({ model, messages: ASK, max_tokens: 8 });
        const job = await node.nextJob(call);
        const text = "An answer whose receipt is refused.";
        node.responseAnswer(job, text, { signer: generateIdentity() });
        const p1 = await refusal(node, job.jobId, "receipt.bad_node_signature", "a receipt signed by another key");
        if (p1) problems.push(p1);
        const res = await within(call.response, 5000, "the consumer's response");
        const raw = await bodyText(res);
        if (res.status !== 200)
          problems.push(
            `not streamed, bad node signature: the consumer got ${res.status} ${raw.slice(0, 200)}; expected 200 with the answer unbilled (SRP-ATT-023)`,
          );
        else {
          const body = JSON.parse(raw) as {
            choices?: Array<{ message?: { content?: unknown } }>;
            usage?: Record<string, unknown>;
          };
          if (body.choices?.[0]?.message?.content !== text)
            problems.push(
              `not streamed, bad node signature: the consumer's content is ${JSON.stringify(body.choices?.[0]?.message?.content)}, not the node's answer (SRP-ATT-023)`,
            );
          problems.push(...unbilledProblems(body.usage, "receipt.bad_node_signature").map((x) => `not streamed, bad node signature: ${x}`));
        }
      });
      // 2. Streamed, a receipt whose cost is one unit off: the stream as relayed, ended unbilled.
      await step("streamed, cost mismatch", async () => {
        const call2 = node.chat({
          model,
          messages: ASK,
          max_tokens: 8,
          stream: true,
        });
        const job2 = await node.nextJob(call2);
        const usage2 = usageOf(["Hi", " there"]);
        const datas2 = chatChunks(job2, ["Hi", " there"], usage2);
        node.chunks(job2, datas2);
        node.streamDone(job2, datas2, usage2, {
          mutate: (b) => void (b.cost = formatAmount(parseAmount(b.cost as string) + 1n)),
        });
        const p2 = await refusal(node, job2.jobId, "receipt.cost_mismatch", "a receipt whose cost is one unit off");
        if (p2) problems.push(p2);
        const seen2 = await readStream(call2);
        streamProblems("streamed, cost mismatch", seen2, "receipt.cost_mismatch", "Hi there");
      });
      // 3. Streamed, the content reached the consumer, then an implausible receipt.
      await step("streamed, implausible after content", async () => {
        const call3 = node.chat({
          model: streamed,
          messages: ASK,
          max_tokens: 10,
          stream: true,
        });
        const job3 = await node.nextJob(call3);
        const datas3 = chatChunks(job3, ["Seen ", "already."], inflated);
        node.chunks(job3, datas3.slice(0, 3));
        const res3 = await within(call3.response, 5000, "the consumer's response");
        ensure(res3.status === 200, `the consumer's streamed request was answered ${res3.status}`);
        const reader = new SseReader(res3);
        let got = "";
        while (got !== "Seen already.") {
          const e = await reader.next(5000);
          if (!e) fail(`the stream ended after ${JSON.stringify(got)} before the node's done`);
          got += deltaContent(eventJson(e)) ?? "";
        }
        node.chunks(job3, datas3.slice(3), 3);
        node.streamDone(job3, datas3, inflated);
        const p3 = await refusal(
          node,
          job3.jobId,
          "receipt.implausible_usage",
          "an implausible receipt after the content reached the consumer",
        );
        if (p3) problems.push(p3);
        await reader.rest(5000).catch((e: Error) => problems.push(`streamed, implausible: the stream did not end: ${e.message}`));
        streamProblems(
          "streamed, implausible after content",
          summarize(res3, [...reader.events]),
          "receipt.implausible_usage",
          "Seen already.",
        );
      });
      // 4. Not streamed, implausible, on the model's only instance: no failover is possible.
      await step("not streamed, implausible", async () => {
        const call4 = node.chat({
          model: single,
          messages: ASK,
          max_tokens: 10,
        });
        const job4 = await node.nextJob(call4);
        const response4 = chatResponse(job4, "Hi", {
          prompt_tokens: 11,
          completion_tokens: 1_000_000,
        });
        node.responseDone(job4, response4, inflated);
        const p4 = await refusal(node, job4.jobId, "receipt.implausible_usage", "a non-streamed implausible receipt");
        if (p4) problems.push(p4);
        // A hub may try the request again (here it can only come back to the same instance): answer it honestly.
        const again = node.peer.take((m) => m.type === "job" && m.jobId !== job4.jobId && (m as unknown as Job).model === single, 5000);
        again.catch(() => undefined);
        const first = await Promise.race([
          again.then((j) => ({ job: j as unknown as Job })),
          within(call4.response, 5000, "the consumer's response").then((r) => ({
            res: r,
          })),
        ]);
        if ("job" in first) {
          node.responseAnswer(first.job, "Hi again");
          const r = await within(call4.response, 5000, "the consumer's response");
          const t = await bodyText(r);
          if (r.status !== 200 || t.includes("1000000"))
            problems.push(
              `not streamed, implausible, retried: the consumer got ${r.status} ${t.slice(0, 200)}; expected the retry's answer`,
            );
        } else {
          const t = await bodyText(first.res);
          let code: unknown;
          try {
            code = (JSON.parse(t) as { error?: { code?: unknown } }).error?.code;
          } catch {
            code = undefined;
          }
          if (first.res.status !== 502 || code !== "job.upstream_error")
            problems.push(
              `not streamed, implausible, no other instance: the consumer got ${first.res.status} ${t.slice(0, 200)}; expected 502 with error code job.upstream_error (SRP-ATT-023)`,
            );
        }
      });
      if (problems.length) fail(problems.join("; "));
      await stillServing(node.peer, "the session whose receipts were refused");
    },
  ),
  check(
    "hub.receipt.after_cancel",
    "After a cancel, refuses a late done whose responseHash leaves out a chunk that arrived after the cancel (receipt.field_mismatch), and closes the session with protocol.unexpected_message (1002) on a late chunk out of seq order",
    ["SRP-ATT-018", "SRP-ATT-024", "SRP-JOB-016"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const problems: string[] = [];
      // 1. A late chunk, then a done whose hash covers only the chunks sent before the cancel.
      const a = await cancelMidStream(node, model);
      node.chunks(a.job, [a.datas[3]!], 3);
      const before = new StreamHasher();
      for (const d of a.datas.slice(0, 3)) before.add(d);
      node.peer.send({
        type: "done",
        jobId: a.job.jobId,
        chunks: 4,
        usage: a.usage,
        receipt: node.receipt(a.job, a.usage, before.digest()),
      });
      const p = await refusal(
        node,
        a.job.jobId,
        "receipt.field_mismatch",
        "a late done whose responseHash leaves out the chunk sent after the cancel",
      );
      if (p) problems.push(`${p} (SRP-ATT-018, SRP-ATT-024)`);
      if (!node.peer.open) fail(`${problems.join("; ")}; the hub closed the session (${node.peer.closed?.code})`);
      // 2. A late chunk that skips a seq.
      const b = await cancelMidStream(node, model);
      const mark = node.peer.received.length;
      node.peer.send({ type: "chunk", jobId: b.job.jobId, seq: 5, data: b.datas[3] });
      const error = await node.peer.take((m) => m.type === "error", 5000, mark, "an error").catch(() => undefined);
      const closed = await node.peer.closedWithin(error ? 5000 : 500);
      const what = "a chunk with seq 5 after the cancel of a job whose chunks 0..2 arrived";
      if (!error) problems.push(`${what}: no error (SRP-ATT-018)`);
      else if (error.code !== "protocol.unexpected_message")
        problems.push(`${what}: error ${String(error.code)}, expected protocol.unexpected_message (SRP-ATT-018)`);
      if (!closed) problems.push(`${what}: the session is still open; expected a close with 1002 (SRP-ATT-018)`);
      else if (closed.code !== 1002) problems.push(`${what}: closed with ${closed.code}, expected 1002 (SRP-ATT-018)`);
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.money.exact",
    "Computes costs and totals exactly: countersigns receipts whose cost at prices of 27 and 29 digits is exact beyond 2^53 (float arithmetic gives another cost), and their running totals",
    ["SRP-MON-002", "SRP-MON-005", "SRP-ATT-008"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { price: { ...HUGE_PRICE } })]);
      const problems: string[] = [];
      for (let i = 0; i < 2; i++) {
        const call = node.chat({ model, messages: ASK, max_tokens: 8 });
        const job = await node.nextJob(call).catch((e: Error) => {
          if (/\b402\b|insufficient|credit/i.test(e.message))
            skip(`the hub bills the consumer, and the account cannot pay this check's prices: ${e.message.slice(0, 200)}`);
          throw e;
        });
        const usage: Usage = {
          promptTokens: 11,
          completionTokens: 3,
          measured: true,
        };
        const response = chatResponse(job, "exact", {
          prompt_tokens: 11,
          completion_tokens: 3,
        });
        const receipt = node.responseDone(job, response, usage);
        await node
          .countersigned(receipt)
          .catch((e: Error) =>
            problems.push(`receipt ${i + 1} with cost ${receipt.cost} and totals cost ${receipt.totals.cost}: ${e.message}`),
          );
        await drain(call);
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.money.amount_format",
    "Refuses an offer whose price holds an amount in another form than the decimal string of SRP-MON-001 (leading zero, fraction, exponent, sign, whitespace, a JSON number, 40 digits) with frame.invalid and close 4422 (every amount the hub sends is schema-checked in every check)",
    ["SRP-MON-001", "SRP-FRM-004"],
    "MUST",
    async (ctx) => {
      const key = needKey(ctx);
      const problems: string[] = [];
      for (const [value, what] of BAD_AMOUNTS) {
        const { peer, hello } = await connect(ctx);
        peer.send(
          createAuth({
            identity: generateIdentity(),
            hello,
            account: { kind: "api_key", key },
          }),
        );
        await peer.expect("welcome");
        const inst = instance(newModel());
        peer.send({
          type: "offer",
          instances: [{ ...inst, price: { ...inst.price, input: value } }],
        });
        const problem = await expectRejection(peer, "frame.invalid", 4422, 1500);
        if (problem) {
          problems.push(`a price input of ${JSON.stringify(value)} (${what}): ${problem}`);
          break; // one accepted form is enough to fail, and each waits
        }
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.statement.content",
    "When the hub sends a statement within 2 s of two countersigned receipts (a hub with a short statement interval), it is signed with the hub's key and names the node and account; its lastSeq and totals are a recorded position, count and firstSeq fit the range, and balance = earned - paid (skipped when no statement arrives)",
    ["SRP-SET-004", "SRP-SET-005", "SRP-SET-006"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const accountId = (node.peer.matching((m) => m.type === "welcome")[0] as { accountId?: unknown } | undefined)?.accountId;
      // Totals after each receipt the hub countersigned, and each receipt's provider share.
      const positions = new Map<number, ReceiptTotals>([[0, node.position.totals]]);
      const shares = new Map<number, bigint>();
      for (let i = 0; i < 2; i++) {
        const call = node.chat({ model, messages: ASK, max_tokens: 8 });
        const job = await node.nextJob(call);
        const r = await node.countersigned(node.responseAnswer(job, `receipt ${i + 1}`).receipt);
        positions.set(r.seq, r.totals);
        shares.set(r.seq, (parseAmount(r.cost) * 9000n) / 10000n);
        await drain(call);
      }
      const message = await node.peer.take((m) => m.type === "statement", 2000, 0, "a statement").catch(() => undefined);
      if (!message)
        skip(
          "the hub sent no statement within 2 s of two receipts; run this check against a hub configured to send statements often (the spec asks for one a day)",
        );
      const s = message.statement as Statement;
      const p: string[] = [];
      if (s.hubId !== node.hello.hubId) p.push(`statement.hubId ${s.hubId} is not the hub's id ${node.hello.hubId} (SRP-SET-004)`);
      else if (!verifyStatement(s)) p.push("statement.sig does not verify with the hub's id over the statement without sig (SRP-SET-004)");
      if (s.nodeId !== node.identity.id) p.push(`statement.nodeId ${s.nodeId} is not the node's id`);
      if (accountId !== undefined && s.accountId !== accountId)
        p.push(`statement.accountId ${s.accountId} is not welcome.accountId ${String(accountId)}`);
      if (!(s.period.from <= s.period.to && s.period.to <= s.issuedAt))
        p.push(`period ${s.period.from}..${s.period.to} issued at ${s.issuedAt}: expected from <= to <= issuedAt`);
      const { count, firstSeq, lastSeq } = s.receipts;
      const at = positions.get(lastSeq);
      if (!at) p.push(`receipts.lastSeq ${lastSeq} is no position the hub recorded (the node's receipts were 1 and 2) (SRP-SET-005)`);
      else if (!sameJson(at, s.totals))
        p.push(`totals ${JSON.stringify(s.totals)} are not the recorded totals at seq ${lastSeq} ${JSON.stringify(at)} (SRP-SET-005)`);
      if (count === 0 && firstSeq !== 0)
        p.push(`a statement with count 0 has firstSeq ${firstSeq}; an empty period has firstSeq 0 (SRP-SET-005)`);
      if (count > 0 && (firstSeq < 1 || firstSeq > lastSeq || count !== lastSeq - firstSeq + 1)) {
        p.push(
          `receipts ${JSON.stringify(s.receipts)}: the hub holds every receipt ${firstSeq}..${lastSeq}, so count must be ${lastSeq - firstSeq + 1} (SRP-SET-005)`,
        );
      }
      const balance = parseAmount(s.earned) - parseAmount(s.paid);
      if (balance < 0n || parseAmount(s.balance) !== balance)
        p.push(
          `balance ${s.balance} is not earned ${s.earned} minus paid ${s.paid} (the node's first statement starts from 0) (SRP-SET-006)`,
        );
      if (p.length) fail(p.join("; "));
      let share = 0n;
      for (let q = firstSeq; count > 0 && q <= lastSeq; q++) share += shares.get(q) ?? 0n;
      if (parseAmount(s.earned) !== share)
        return {
          status: "warning",
          details: `earned ${s.earned} differs from the sum of the covered receipts' provider shares ${share}; only a payout adjustment may explain it (SRP-SET-006)`,
        };
      await stillServing(node.peer, "the session that received a statement");
    },
  ),
];
