/**
 * Hub-mode checks of what a hub countersigns and bills: receipts claiming usage the answer
 * cannot hold or output the consumer never saw, the usage shown to the consumer, the
 * receipt position recorded per node, and disputes. The harness is a provider node and
 * the consumer, as in hub-jobs.ts.
 */
import { canonicalize, generateIdentity, type ReceiptPosition } from "@srp/core";
import type { Job, Receipt, Usage } from "@srp/core/schema";
import type { Check } from "../types.js";
import { chatChunks, chatResponse } from "../harness/answers.js";
import { check } from "../harness/check.js";
import { bodyText, within } from "../harness/consumer.js";
import { openSession, stillServing, type HubContext } from "../harness/hub-session.js";
import { ASK, instance, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { readStream } from "../harness/streams.js";
import { ensure, fail } from "../harness/verdict.js";

const sameJson = (a: unknown, b: unknown) => canonicalize(a) === canonicalize(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Hub-mode receipt and billing checks, in run order. */
export const HUB_RECEIPT_CHECKS: Check<HubContext>[] = [
  check(
    "hub.receipt.implausible_usage",
    "Refuses to countersign a receipt claiming 1,000,000 completion tokens for a short answer to a request with max_tokens 10 (receipt.implausible_usage, session continues), and does not bill the consumer for it",
    ["SRP-ATT-015", "SRP-ATT-017", "SRP-SEC-009"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const problems: string[] = [];
      // Non-streamed: nothing reached the consumer before the done.
      const call = node.chat({ model, messages: ASK, max_tokens: 10 });
      const job = await node.nextJob(call);
      const inflated: Usage = { promptTokens: 11, completionTokens: 1_000_000, measured: true };
      const response = chatResponse(job, "Hi there!", { prompt_tokens: 11, completion_tokens: 1_000_000 });
      node.responseDone(job, response, inflated);
      const answer = await node.answerTo(job.jobId);
      if (answer.type !== "error")
        problems.push(`non-streamed: the hub countersigned a receipt claiming 1000000 completion tokens for max_tokens 10 (SRP-ATT-015)`);
      else if (answer.code !== "receipt.implausible_usage")
        problems.push(
          `non-streamed: the hub refused the receipt with ${String(answer.code)}, expected receipt.implausible_usage (SRP-ATT-017)`,
        );
      const res = await within(call.response, 10_000, "the consumer's response");
      if (res.status === 200) {
        const usage = ((await res.json()) as { usage?: Record<string, unknown> }).usage ?? {};
        if (usage.cost_units !== "0" || usage.receipt_id !== null || usage.completion_tokens !== 0)
          problems.push(
            `non-streamed: the consumer was answered with usage ${JSON.stringify(usage).slice(0, 300)}; an unbilled answer shows 0 tokens, cost_units "0" and receipt_id null (SRP-ATT-019)`,
          );
      } else await bodyText(res).catch(() => "");
      // Streamed: the answer reached the consumer; the bill must still be refused, and the consumer told.
      const call2 = node.chat({ model, messages: ASK, max_tokens: 10, stream: true });
      const job2 = await node.nextJob(call2);
      const datas = chatChunks(job2, ["Hi", " there!"], inflated);
      node.chunks(job2, datas);
      node.streamDone(job2, datas, inflated);
      const answer2 = await node.answerTo(job2.jobId);
      if (answer2.type !== "error" || answer2.code !== "receipt.implausible_usage")
        problems.push(
          `streamed: the hub answered the inflated receipt with ${answer2.type === "error" ? `error ${String(answer2.code)}` : "a countersigned receipt"}, expected error receipt.implausible_usage`,
        );
      const seen = await readStream(call2);
      if (seen.usage && (seen.usage.cost_units !== "0" || seen.usage.receipt_id !== null || seen.usage.completion_tokens !== 0)) {
        problems.push(
          `streamed: the stream's usage ${JSON.stringify(seen.usage).slice(0, 300)} is not the unbilled usage (0 tokens, cost_units "0", receipt_id null) (SRP-ATT-019, SRP-ATT-020)`,
        );
      }
      if (problems.length) fail(problems.join("; "));
      await stillServing(node.peer, "the session whose receipt was refused");
    },
  ),
  check(
    "hub.receipt.hidden_output",
    "Refuses receipts that bill output the consumer never saw: reasoning tokens beyond the relayed text on an instance without the reasoning capability, and an answer padded with unknown members, at positions no chat client reads, or in a choice not asked for (receipt.implausible_usage)",
    ["SRP-ATT-015", "SRP-ATT-016", "SRP-ATT-017"],
    "MUST",
    async (ctx) => {
      // Two instances: three refusals within a minute would park one (its breaker), and the fourth case would find none.
      const [model, other] = [newModel(), newModel()];
      const node = await HarnessNode.open(ctx, [instance(model), instance(other)]);
      const problems: string[] = [];
      const cases: { what: string; usage: Usage; response: (job: Job) => Record<string, unknown>; model?: string }[] = [
        {
          what: "500 completion tokens of which 495 reasoning for the 2-byte answer 'Hi' of an instance that does not offer `reasoning`",
          usage: { promptTokens: 11, completionTokens: 500, reasoningTokens: 495, measured: true },
          response: (job) => chatResponse(job, "Hi", { prompt_tokens: 11, completion_tokens: 500 }),
        },
        {
          what: "2000 completion tokens for the answer 'Hi' padded with 6000 bytes of unknown `x_pad` members",
          usage: { promptTokens: 11, completionTokens: 2000, measured: true },
          response: (job) => {
            const r = chatResponse(job, "Hi", { prompt_tokens: 11, completion_tokens: 2000 }) as Record<string, unknown> & {
              choices: Record<string, unknown>[];
            };
            const choice = r.choices[0]!;
            return {
              ...r,
              x_pad: "a".repeat(2000),
              choices: [
                {
                  ...choice,
                  x_pad: { content: "a".repeat(2000) },
                  message: { ...(choice.message as Record<string, unknown>), x_pad: "a".repeat(2000) },
                },
              ],
            };
          },
        },
        {
          what: "2000 completion tokens for the answer 'Hi' with 6000 bytes at positions no chat client reads (a top-level `message` and `content`, the non-streamed choice's `delta`)",
          model: other,
          usage: { promptTokens: 11, completionTokens: 2000, measured: true },
          response: (job) => {
            const r = chatResponse(job, "Hi", { prompt_tokens: 11, completion_tokens: 2000 }) as Record<string, unknown> & {
              choices: Record<string, unknown>[];
            };
            return {
              ...r,
              message: { content: "a".repeat(2000) },
              content: "a".repeat(2000),
              choices: [{ ...r.choices[0]!, delta: { content: "a".repeat(2000) } }],
            };
          },
        },
        {
          what: "2000 completion tokens for the answer 'Hi' with a second choice (`index: 1`, 6000 bytes) to a request that asked for one",
          model: other,
          usage: { promptTokens: 11, completionTokens: 2000, measured: true },
          response: (job) => {
            const r = chatResponse(job, "Hi", { prompt_tokens: 11, completion_tokens: 2000 }) as Record<string, unknown> & {
              choices: Record<string, unknown>[];
            };
            return {
              ...r,
              choices: [r.choices[0]!, { index: 1, message: { role: "assistant", content: "a".repeat(6000) }, finish_reason: "stop" }],
            };
          },
        },
      ];
      for (const c of cases) {
        const call = node.chat({ model: c.model ?? model, messages: ASK, max_tokens: 4000 });
        const job = await node.nextJob(call);
        const response = c.response(job);
        node.responseDone(job, response, c.usage);
        const answer = await node.answerTo(job.jobId);
        if (answer.type !== "error") problems.push(`the hub countersigned ${c.what} (SRP-ATT-015, SRP-ATT-016)`);
        else if (answer.code !== "receipt.implausible_usage")
          problems.push(`the hub refused ${c.what} with ${String(answer.code)}, expected receipt.implausible_usage (SRP-ATT-017)`);
        await bodyText(await within(call.response, 10_000, "the consumer's response")).catch(() => "");
      }
      if (problems.length) fail(problems.join("; "));
      await stillServing(node.peer, "the session whose receipts were refused");
    },
  ),
  check(
    "hub.consumer.shown_is_billed",
    "Shows the consumer the usage of the countersigned receipt (fetched from /v1/receipts/{id}), not the usage the node's body or usage chunk claims, streamed and not",
    ["SRP-ATT-019", "SRP-CON-002"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const problems: string[] = [];
      const honest: Usage = { promptTokens: 11, completionTokens: 3, measured: true };
      const compare = async (what: string, usage: Record<string, unknown> | undefined, countersigned: Receipt) => {
        if (!usage) return void problems.push(`${what}: no usage reached the consumer`);
        if (usage.prompt_tokens !== countersigned.usage.promptTokens || usage.completion_tokens !== countersigned.usage.completionTokens) {
          problems.push(
            `${what}: the consumer was shown ${String(usage.prompt_tokens)} prompt and ${String(usage.completion_tokens)} completion tokens; the countersigned receipt says ${countersigned.usage.promptTokens} and ${countersigned.usage.completionTokens} (the node's own usage claimed 999999)`,
          );
        }
        if (typeof usage.receipt_id !== "string")
          return void problems.push(`${what}: usage.receipt_id is ${JSON.stringify(usage.receipt_id)} for a countersigned receipt`);
        const res = await fetch(
          new URL(`receipts/${encodeURIComponent(usage.receipt_id)}`, node.consumer.endsWith("/") ? node.consumer : `${node.consumer}/`),
          { headers: { authorization: `Bearer ${node.key}` } },
        );
        if (res.status !== 200) return void problems.push(`${what}: GET /v1/receipts/${usage.receipt_id} answered ${res.status}`);
        const stored = ((await res.json()) as { receipt?: Receipt }).receipt;
        if (!stored || !sameJson(stored.usage, countersigned.usage))
          problems.push(
            `${what}: GET /v1/receipts/${usage.receipt_id} gives usage ${JSON.stringify(stored?.usage)}, not the countersigned ${JSON.stringify(countersigned.usage)}`,
          );
        else if (usage.prompt_tokens !== stored.usage.promptTokens || usage.completion_tokens !== stored.usage.completionTokens)
          problems.push(`${what}: shown usage differs from the stored receipt's`);
      };
      // Non-streamed: the body's usage lies, the receipt is honest.
      const call = node.chat({ model, messages: ASK, max_tokens: 16 });
      const job = await node.nextJob(call);
      const response = chatResponse(job, "Hi there!", { prompt_tokens: 999_999, completion_tokens: 999_999 });
      const sent = node.responseDone(job, response, honest);
      const r1 = await node.countersigned(sent);
      const res = await within(call.response, 5000, "the consumer's response");
      if (res.status !== 200)
        fail(`the consumer's request was answered ${res.status}: ${(await bodyText(res).catch(() => "")).slice(0, 300)}`);
      await compare("non-streamed", ((await res.json()) as { usage?: Record<string, unknown> }).usage, r1);
      // Streamed: the usage chunk lies, the receipt is honest.
      const call2 = node.chat({ model, messages: ASK, max_tokens: 16, stream: true });
      const job2 = await node.nextJob(call2);
      const datas = chatChunks(job2, ["Hi", " there!"], { promptTokens: 999_999, completionTokens: 999_999, measured: true });
      node.chunks(job2, datas);
      const sent2 = node.streamDone(job2, datas, honest);
      const r2 = await node.countersigned(sent2);
      await compare("streamed", (await readStream(call2)).usage, r2);
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.receipt.position",
    "Records each node's receipt position: after countersigned receipts 1 and 2, a new session of the same node is welcomed with lastSeq 2 and the same running totals",
    ["SRP-SET-001", "SRP-ATT-006", "SRP-ATT-007"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const identity = generateIdentity();
      const node = await HarnessNode.open(ctx, [instance(model)], identity);
      ensure(
        node.position.lastSeq === 0,
        `a node the hub never saw is welcomed with receipts.lastSeq ${node.position.lastSeq}; expected 0 (SRP-SET-001)`,
      );
      for (let i = 0; i < 2; i++) {
        const call = node.chat({ model, messages: ASK, max_tokens: 8 });
        const job = await node.nextJob(call);
        const sent = node.responseAnswer(job, `pong ${i}`);
        await node.countersigned(sent.receipt);
        await within(call.response, 5000, "the consumer's response").then((r) => bodyText(r));
      }
      node.peer.send({ type: "goodbye", reason: "conformance: reconnecting to read the recorded position" });
      node.peer.close(1000, "goodbye");
      await sleep(200);
      const again = await openSession(ctx, identity);
      const got = again.welcome.receipts as ReceiptPosition;
      again.peer.close(1000, "done");
      const problems: string[] = [];
      if (got.lastSeq !== node.position.lastSeq)
        problems.push(
          `welcome.receipts.lastSeq is ${got.lastSeq}; the hub countersigned receipts up to ${node.position.lastSeq} (SRP-SET-001)`,
        );
      if (!sameJson(got.totals, node.position.totals))
        problems.push(
          `welcome.receipts.totals ${JSON.stringify(got.totals)} differ from the totals of the last countersigned receipt ${JSON.stringify(node.position.totals)} (SRP-SET-001)`,
        );
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.dispute",
    "Accepts a dispute without closing the session or routing less work to the node",
    ["SRP-SET-011"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      node.peer.send({
        type: "dispute",
        kind: "totals_mismatch",
        hub: { lastSeq: node.position.lastSeq, totals: node.position.totals },
        node: { lastSeq: node.position.lastSeq + 1, totals: { ...node.position.totals, receipts: node.position.totals.receipts + 1 } },
        message: "conformance: a dispute the hub must accept without closing the session",
      });
      const closed = await node.peer.closedWithin(500);
      ensure(!closed, `the hub closed the session after a dispute (${closed?.code} ${closed?.reason}); it must accept it (SRP-SET-011)`);
      const errors = node.peer.matching((m) => m.type === "error");
      ensure(errors.length === 0, `the hub answered the dispute with error ${String(errors[0]?.code)}; v1 defines no reply (SRP-SET-011)`);
      // The node's only instance of this model still gets the next job.
      const call = node.chat({ model, messages: ASK, max_tokens: 8 });
      const job = await node.nextJob(call);
      await node.countersigned(node.responseAnswer(job, "still here").receipt);
      const res = await within(call.response, 5000, "the consumer's response");
      ensure(res.status === 200, `the consumer got ${res.status} after the node's dispute`);
    },
  ),
];
