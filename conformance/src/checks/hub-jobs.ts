/**
 * Hub-mode checks of offers and jobs. The harness is a provider node (`../harness/node.ts`):
 * it offers instances of a model nobody else serves (`conformance-<random>`), then acts as
 * a consumer of the hub's OpenAI-compatible surface (with the same account key) so that
 * the hub sends its node jobs, and plays the node's part of each job: chunks, `done` with
 * a signed receipt, `job_error`, late messages.
 */
import {
  addToTotals,
  canonicalize,
  formatAmount,
  generateIdentity,
  omitFields,
  receiptCost,
  StreamHasher,
  verifyDetached,
} from "@srp/core";
import type { Instance, Job, Receipt, Usage } from "@srp/core/schema";
import type { Check } from "../types.js";
import { chatChunks, usageOf } from "../harness/answers.js";
import { check } from "../harness/check.js";
import { bodyText, codedError, deltaContent, eventJson, SseReader, within } from "../harness/consumer.js";
import { openSession, stillServing, type HubContext } from "../harness/hub-session.js";
import { ASK, hex, instance, isJob, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { cancelMidStream, drain, readStream, summarize } from "../harness/streams.js";
import { ensure, fail } from "../harness/verdict.js";
import { expectRejection } from "../harness/wire.js";

const sameJson = (a: unknown, b: unknown) => canonicalize(a) === canonicalize(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The request members a hub may set to route and meter a job (SRP-JOB-002). */
function withoutRoutingMembers(body: Record<string, unknown>): Record<string, unknown> {
  return omitFields(body, "model", "stream", "stream_options");
}

/** What differs between the job a hub sent and the consumer request it answers. */
function dispatchProblems(job: Job, inst: Instance, body: Record<string, unknown>, stream: boolean): string[] {
  const p: string[] = [];
  if (job.instanceId !== inst.instanceId) p.push(`job.instanceId ${job.instanceId} is not the offered instance ${inst.instanceId}`);
  if (job.model !== inst.model) p.push(`job.model ${job.model} is not the instance's model ${inst.model} (SRP-JOB-001)`);
  if (job.api !== "chat.completions") p.push(`job.api is ${String(job.api)} for a /chat/completions request (SRP-JOB-001)`);
  if (job.stream !== stream) p.push(`job.stream is ${String(job.stream)} for a consumer request with stream ${stream}`);
  if (!sameJson(job.quote, inst.price))
    p.push(`job.quote ${JSON.stringify(job.quote)} differs from the accepted price ${JSON.stringify(inst.price)} (SRP-JOB-003)`);
  if (typeof job.deadline !== "number" || job.deadline < Date.now() - 60_000)
    p.push(`job.deadline ${String(job.deadline)} is already in the past`);
  const req = job.request;
  if (!sameJson(withoutRoutingMembers(req), withoutRoutingMembers(body))) {
    p.push(
      `job.request differs from the consumer's body beyond model/stream/stream_options (SRP-JOB-002): sent ${canonicalize(withoutRoutingMembers(body)).slice(0, 300)}, got ${canonicalize(withoutRoutingMembers(req)).slice(0, 300)}`,
    );
  }
  if (req.model !== undefined && req.model !== body.model && req.model !== inst.model) p.push(`job.request.model is ${String(req.model)}`);
  if (req.stream !== undefined && req.stream !== job.stream)
    p.push(`job.request.stream ${String(req.stream)} differs from job.stream ${String(job.stream)}`);
  const so = req.stream_options;
  if (
    so !== undefined &&
    !sameJson(
      omitFields(so as Record<string, unknown>, "include_usage"),
      omitFields((body.stream_options ?? {}) as Record<string, unknown>, "include_usage"),
    )
  ) {
    p.push(`job.request.stream_options ${JSON.stringify(so)} changes more than include_usage`);
  }
  return p;
}

/** Hub-mode offer and job checks, in run order. */
export const HUB_JOB_CHECKS: Check<HubContext>[] = [
  check(
    "hub.offer.ack",
    "Answers each offer with one offer_ack in order, one result per instance; refuses a duplicate instance id, an inconsistent instance and the subscription tier, without ending the session",
    ["SRP-OFF-004", "SRP-OFF-005", "SRP-OFF-006", "SRP-SEC-013"],
    "MUST",
    async (ctx) => {
      const { peer } = await openSession(ctx);
      const model = newModel();
      const ok = instance(model);
      const dup = { ...instance(model), instanceId: ok.instanceId, price: { input: "1", output: "1" } };
      const sub = instance(model, { tier: "subscription" });
      const bad = instance(model, { contextLength: 4096, maxOutputTokens: 9000 });
      const second = instance(newModel());
      peer.send({ type: "offer", instances: [ok, dup, sub, bad] });
      peer.send({ type: "offer", instances: [second] });
      const acks = [
        await peer.take((m) => m.type === "offer_ack", 5000, 0, "offer_ack for the first offer"),
        await peer.take((m) => m.type === "offer_ack", 5000, 0, "offer_ack for the second offer"),
      ];
      const first = acks[0]!.results as Array<{ instanceId: string; accepted: boolean; reason?: { code: string } }>;
      const next = acks[1]!.results as typeof first;
      const problems: string[] = [];
      if (!Array.isArray(first) || first.length !== 4)
        problems.push(`the first offer_ack has ${Array.isArray(first) ? first.length : "no"} results for 4 instances`);
      else {
        const ids = first.map((r) => r.instanceId);
        if (!sameJson(ids, [ok.instanceId, ok.instanceId, sub.instanceId, bad.instanceId])) {
          problems.push(
            next?.[0]?.instanceId === ok.instanceId
              ? "the offer_acks arrived out of order"
              : `results are not in instance order: ${ids.join(", ")}`,
          );
        } else {
          const expect = (i: number, accepted: boolean, code: string | undefined, what: string) => {
            const r = first[i]!;
            if (r.accepted !== accepted) problems.push(`${what} was ${r.accepted ? "accepted" : `refused (${r.reason?.code})`}`);
            else if (accepted && r.reason !== undefined) problems.push(`${what} was accepted but carries a reason`);
            else if (!accepted && r.reason?.code !== code)
              problems.push(`${what} was refused with ${String(r.reason?.code)}, expected ${code}`);
          };
          expect(0, true, undefined, "a valid gpu instance");
          expect(1, false, "offer.duplicate_instance", "the second occurrence of an instance id in one offer");
          expect(
            2,
            false,
            "offer.tier_refused",
            "a subscription-tier instance (list this check as an expected failure if the operator enabled the subscription tier)",
          );
          expect(3, false, "offer.invalid", "an instance with maxOutputTokens > contextLength");
        }
      }
      if (!Array.isArray(next) || next.length !== 1 || next[0]?.instanceId !== second.instanceId || next[0]?.accepted !== true) {
        problems.push(`the second offer_ack does not accept the second offer's one instance: ${JSON.stringify(next).slice(0, 200)}`);
      }
      if (problems.length) fail(problems.join("; "));
      await stillServing(peer, "the session whose offer was partly refused");
    },
  ),
  check(
    "hub.offer.withdraw",
    "After withdraw (with an id that was never offered among the ids), sends no job for the withdrawn instance and answers its consumers with an error",
    ["SRP-OFF-009", "SRP-OFF-008"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const inst = instance(model);
      const node = await HarnessNode.open(ctx, [inst]);
      node.peer.send({ type: "withdraw", instanceIds: [inst.instanceId, `conf-never-offered-${hex(4)}`], reason: "conformance" });
      // A message the hub must answer, so that the withdraw has been processed when the answer arrives.
      const probeId = `job_conformance_sync_${hex(6)}`;
      node.peer.send({
        type: "job_error",
        jobId: probeId,
        code: "job.upstream_error",
        message: "conformance sync",
        retryable: true,
        chunks: 0,
      });
      // (hub.job.unknown checks that answer; here it only orders the withdraw before the request.)
      await node.peer.take((m) => m.type === "error" && m.jobId === probeId, 1000).catch(() => undefined);
      const call = node.chat({ model, messages: ASK, max_tokens: 8 });
      // A job fails the check as soon as it arrives (this node does not answer it, so the consumer would wait).
      const jobSent = node.peer.take(isJob, 10_000, 0, "a job").then(
        () => "job" as const,
        () => new Promise<never>(() => undefined),
      );
      const res = await Promise.race([within(call.response, 10_000, "the consumer's response"), jobSent]);
      if (res !== "job") await sleep(200);
      const jobs = node.peer.matching(isJob);
      if (res === "job" || jobs.length) fail(`the hub sent a job for the withdrawn instance ${inst.instanceId}`);
      const problem = await codedError(res);
      if (problem) fail(`consumer request for a model whose only instance was withdrawn: ${problem}`);
      await stillServing(node.peer, "the session that withdrew its instance");
    },
  ),
  check(
    "hub.job.dispatch",
    "Sends a consumer's request as a job to the offered instance: model, api, stream, body passed through, quote equal to the price accepted at the time (also after a re-offer), fresh job ids",
    ["SRP-JOB-001", "SRP-JOB-002", "SRP-JOB-003", "SRP-OFF-007", "SRP-OFF-008"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const inst = instance(model, { price: { input: "1500000", output: "2500000" } });
      const node = await HarnessNode.open(ctx, [inst]);
      const body = {
        model,
        messages: [
          { role: "system", content: "You are a conformance probe." },
          { role: "user", content: "héllo ☃ — ping" },
        ],
        stream: true,
        max_tokens: 16,
        temperature: 0.25,
        top_p: 0.9,
        seed: 7,
        stop: ["\n\n"],
        user: "srp-conformance",
      };
      const call = node.chat(body);
      const job = await node.nextJob(call);
      const problems = dispatchProblems(job, inst, body, true);
      node.streamAnswer(job, ["Spare ", "relay."]);
      await readStream(call);
      // Re-offer the same instance at a new price: later jobs are quoted at it.
      const repriced = { ...inst, price: { input: "1700000", output: "2900000", cachedInput: "900000" } };
      const ack = await node.offer([repriced]);
      ensure(
        (ack.results as Array<{ accepted: boolean }>)[0]?.accepted === true,
        "the hub refused a re-offer of an accepted instance at a new price",
      );
      const body2 = { model, messages: ASK, max_tokens: 8, temperature: 0 };
      const call2 = node.chat(body2);
      const job2 = await node.nextJob(call2);
      problems.push(...dispatchProblems(job2, repriced, body2, false).map((p) => `after re-offer, non-streamed: ${p}`));
      if (job2.jobId === job.jobId) problems.push(`the hub reused job id ${job.jobId}`);
      node.responseAnswer(job2, "pong");
      const res2 = await within(call2.response, 5000, "the consumer's response");
      await bodyText(res2).catch(() => "");
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.job.concurrency",
    "Never has more jobs running on an instance than its maxConcurrency: a second request for an instance of maxConcurrency 1 gets no job while the first runs",
    ["SRP-JOB-004"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { maxConcurrency: 1 })]);
      const first = node.chat({ model, messages: ASK, max_tokens: 8 });
      const job = await node.nextJob(first);
      const second = node.chat({ model, messages: ASK, max_tokens: 8 });
      const early = await node.peer.take((m) => isJob(m) && m.jobId !== job.jobId, 1000).catch(() => undefined);
      node.responseAnswer(job, "one");
      await within(first.response, 5000, "the first consumer's response").then((r) => bodyText(r));
      if (early) {
        node.responseAnswer(early as unknown as Job, "two");
        fail(`the hub sent job ${String(early.jobId)} to an instance with maxConcurrency 1 while job ${job.jobId} was running`);
      }
      // The second request either waited for the slot or was answered (busy); either is fine.
      const later = node.peer.take((m) => isJob(m) && m.jobId !== job.jobId, 5000);
      later.catch(() => undefined);
      const next = await Promise.race([
        later.then((j) => ({ job: j as unknown as Job })),
        within(second.response, 5000, "the second consumer's response").then((res) => ({ res })),
      ]);
      if ("job" in next) {
        node.responseAnswer(next.job, "two");
        await within(second.response, 5000, "the second consumer's response").then((r) => bodyText(r));
      } else await bodyText(next.res).catch(() => "");
    },
  ),
  check(
    "hub.job.include_usage",
    "Sets stream_options.include_usage to true in the request of a streamed chat.completions job",
    ["SRP-JOB-002"],
    "SHOULD",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = node.chat({ model, messages: ASK, stream: true, max_tokens: 8 });
      const job = await node.nextJob(call);
      const so = job.request.stream_options as { include_usage?: unknown } | undefined;
      node.streamAnswer(job, ["ok"]);
      await readStream(call).catch(() => undefined);
      ensure(
        so?.include_usage === true,
        `job.request.stream_options is ${JSON.stringify(so)}; include_usage should be true so that the backend reports usage`,
      );
    },
  ),
  check(
    "hub.job.stream_relay",
    "Relays a streamed job's chunks to the consumer in order as server-sent events, then usage and [DONE]; answers done with the receipt countersigned by the hub and otherwise unchanged",
    ["SRP-JOB-007", "SRP-ATT-002", "SRP-ATT-011"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = node.chat({ model, messages: ASK, stream: true, max_tokens: 16 });
      const job = await node.nextJob(call);
      const pieces = ["Spare ", "capacity ", "relayed ", "in ", "order."];
      const { receipt, usage } = node.streamAnswer(job, pieces);
      const seen = await readStream(call);
      const problems: string[] = [];
      if (!/^text\/event-stream/i.test(seen.contentType)) problems.push(`content-type is ${seen.contentType}, not text/event-stream`);
      if (seen.text !== pieces.join(""))
        problems.push(`the consumer's text is ${JSON.stringify(seen.text)}, the node streamed ${JSON.stringify(pieces.join(""))}`);
      if (seen.errors.length) problems.push(`the stream carries an error event: ${JSON.stringify(seen.errors[0]).slice(0, 200)}`);
      if (!seen.lastIsDone || seen.doneMarkers !== 1)
        problems.push(
          `the stream does not end with exactly one data: [DONE] (${seen.doneMarkers} seen${seen.lastIsDone ? "" : ", not last"})`,
        );
      if (!seen.usage) problems.push("no event carries usage");
      else if (seen.usage.prompt_tokens !== usage.promptTokens || seen.usage.completion_tokens !== usage.completionTokens) {
        problems.push(
          `usage ${JSON.stringify(seen.usage)} does not report the node's ${usage.promptTokens} prompt and ${usage.completionTokens} completion tokens`,
        );
      }
      await node.countersigned(receipt).catch((e: Error) => problems.push(e.message));
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.job.nonstream_relay",
    "Answers a non-streamed request with the node's done.response; countersigns the receipt",
    ["SRP-JOB-009", "SRP-ATT-002", "SRP-ATT-011"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = node.chat({ model, messages: ASK, max_tokens: 8 });
      const job = await node.nextJob(call);
      const text = "A complete non-streamed answer.";
      const { receipt, usage } = node.responseAnswer(job, text);
      const res = await within(call.response, 5000, "the consumer's response");
      const raw = await bodyText(res);
      const problems: string[] = [];
      if (res.status !== 200) problems.push(`the consumer got ${res.status}: ${raw.slice(0, 200)}`);
      else {
        let parsed: { object?: unknown; choices?: Array<{ message?: { content?: unknown } }>; usage?: Record<string, unknown> } = {};
        try {
          parsed = JSON.parse(raw) as typeof parsed;
        } catch {
          problems.push("the consumer's body is not JSON");
        }
        if (parsed.choices?.[0]?.message?.content !== text)
          problems.push(
            `the consumer's message content is ${JSON.stringify(parsed.choices?.[0]?.message?.content)}, the node answered ${JSON.stringify(text)}`,
          );
        if (parsed.usage?.prompt_tokens !== usage.promptTokens || parsed.usage?.completion_tokens !== usage.completionTokens)
          problems.push(`usage ${JSON.stringify(parsed.usage)} does not report the node's usage`);
      }
      await node.countersigned(receipt).catch((e: Error) => problems.push(e.message));
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.job.receipt_rejected",
    "Answers a done whose receipt has a bad node signature, a wrong cost or a wrong price with error receipt.* naming the job, countersigns nothing, keeps the session and the node's position",
    ["SRP-ATT-009", "SRP-ERR-003", "SRP-ERR-001"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const start = node.position;
      const cases: Array<[string, string, Parameters<HarnessNode["receipt"]>[3]]> = [
        ["a receipt signed by another key", "receipt.bad_node_signature", { signer: generateIdentity() }],
        [
          "a receipt whose cost is one unit more than usage at price",
          "receipt.cost_mismatch",
          { mutate: (b) => void (b.cost = formatAmount(BigInt(b.cost as string) + 1n)) },
        ],
        [
          "a receipt whose price is not the job's quote (cost consistent with it)",
          "receipt.field_mismatch",
          {
            mutate: (b) => {
              const price = {
                ...(b.price as Instance["price"]),
                input: formatAmount(BigInt((b.price as Instance["price"]).input) + 1000n),
              };
              const cost = receiptCost(b.usage as Usage, price);
              b.price = price;
              b.cost = formatAmount(cost);
              b.totals = addToTotals(start.totals, b.usage as Usage, cost);
            },
          },
        ],
      ];
      const problems: string[] = [];
      for (const [what, code, options] of cases) {
        const call = node.chat({ model, messages: ASK, max_tokens: 8 });
        const job = await node.nextJob(call);
        node.responseAnswer(job, "pong", options);
        const answer = await node.answerTo(job.jobId);
        if (answer.type === "receipt") problems.push(`${what}: the hub countersigned it`);
        else {
          if (answer.code !== code) problems.push(`${what}: error code ${String(answer.code)}, expected ${code}`);
          if (answer.jobId !== job.jobId) problems.push(`${what}: the error does not carry the jobId`);
          if (answer.retryable !== false)
            problems.push(`${what}: error retryable is ${String(answer.retryable)}; receipt.* codes are not retryable`);
        }
        await drain(call);
        await sleep(100);
        if (node.peer.matching((m) => m.type === "receipt" && (m.receipt as Receipt).jobId === job.jobId).length) {
          if (answer.type !== "receipt") problems.push(`${what}: the hub sent a receipt for it after the error`);
        }
        if (!node.peer.open)
          fail(`${problems.join("; ")}${problems.length ? "; " : ""}the hub closed the session after ${what} (${node.peer.closed?.code})`);
      }
      // The position did not move: a valid receipt numbered after the start verifies.
      node.position = start;
      const call = node.chat({ model, messages: ASK, max_tokens: 8 });
      const job = await node.nextJob(call);
      const { receipt } = node.responseAnswer(job, "pong");
      await node.countersigned(receipt).catch((e: Error) => problems.push(`a valid receipt after the rejected ones: ${e.message}`));
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.job.receipt_sequence",
    "Reports a receipt that skips a seq with receipt.sequence_gap (and should still countersign it); never countersigns a receipt that repeats a seq",
    ["SRP-ATT-010", "SRP-ATT-009", "SRP-ERR-003"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const serve = async (options: Parameters<HarnessNode["receipt"]>[3] = {}) => {
        const call = node.chat({ model, messages: ASK, max_tokens: 8 });
        const job = await node.nextJob(call);
        const sent = node.responseAnswer(job, "pong", options);
        void drain(call);
        return { job, receipt: sent.receipt };
      };
      const problems: string[] = [];
      let warning: string | undefined;
      await node.countersigned((await serve()).receipt);
      // A gap: one receipt is missing before this one.
      const gap = await serve({
        mutate: (b) => {
          b.seq = node.position.lastSeq + 2;
        },
      });
      const gapAnswer = await node.peer
        .take((m) => m.type === "error" && m.jobId === gap.job.jobId, 5000, 0, `error receipt.sequence_gap for ${gap.job.jobId}`)
        .catch((e: Error) => {
          problems.push(`a receipt that skips seq ${node.position.lastSeq + 1}: ${e.message}`);
          return undefined;
        });
      if (gapAnswer && gapAnswer.code !== "receipt.sequence_gap")
        problems.push(`a receipt that skips a seq was answered with ${String(gapAnswer.code)}, expected receipt.sequence_gap`);
      const gapReceipt = await node.peer
        .take((m) => m.type === "receipt" && (m.receipt as Receipt).jobId === gap.job.jobId, 1000)
        .catch(() => undefined);
      if (gapReceipt) {
        const r = gapReceipt.receipt as Receipt;
        if (
          typeof r.hubSig !== "string" ||
          !verifyDetached("receiptHub", omitFields(r, "hubSig"), r.hubSig, node.hello.hubId) ||
          !sameJson(omitFields(r, "hubSig"), gap.receipt)
        ) {
          problems.push("the countersigned gap receipt does not verify or differs from the node's");
        }
        node.position = { lastSeq: r.seq, totals: r.totals };
      } else {
        warning =
          "the hub did not countersign a receipt whose only problem is a gap; it should, so that the node's later receipts verify (SRP-ATT-010)";
      }
      // A repeat of the last recorded seq is never countersigned.
      const repeat = await serve({
        mutate: (b) => {
          b.seq = node.position.lastSeq;
        },
      });
      const repeatAnswer = await node.answerTo(repeat.job.jobId).catch((e: Error) => {
        problems.push(`a receipt that repeats seq ${node.position.lastSeq}: ${e.message}`);
        return undefined;
      });
      if (repeatAnswer?.type === "receipt") problems.push(`the hub countersigned a receipt that repeats seq ${node.position.lastSeq}`);
      else if (repeatAnswer && repeatAnswer.code !== "receipt.sequence_gap")
        problems.push(`a receipt that repeats a seq was answered with ${String(repeatAnswer.code)}, expected receipt.sequence_gap`);
      await sleep(200);
      if (
        node.peer.matching((m) => m.type === "receipt" && (m.receipt as Receipt).jobId === repeat.job.jobId).length &&
        repeatAnswer?.type !== "receipt"
      ) {
        problems.push("the hub countersigned a receipt that repeats a seq after reporting it");
      }
      // The next receipt in sequence verifies.
      await node.countersigned((await serve()).receipt).catch((e: Error) => problems.push(`the next receipt in sequence: ${e.message}`));
      if (problems.length) fail(problems.join("; "));
      if (warning) return { status: "warning", details: warning };
    },
  ),
  check(
    "hub.job.chunk_order",
    "Closes the session with protocol.unexpected_message (1002) on a chunk whose seq skips one, and on a done whose chunks count differs from the chunks received",
    ["SRP-JOB-010", "SRP-JOB-008"],
    "MUST",
    async (ctx) => {
      const problems: string[] = [];
      for (const variant of ["skipped seq", "wrong done.chunks"] as const) {
        const model = newModel();
        const node = await HarnessNode.open(ctx, [instance(model)]);
        const call = node.chat({ model, messages: ASK, stream: true, max_tokens: 8 });
        const job = await node.nextJob(call);
        const datas = chatChunks(job, ["one ", "two ", "three"], usageOf(["one", "two", "three"]));
        if (variant === "skipped seq") {
          node.chunks(job, datas.slice(0, 2));
          node.peer.send({ type: "chunk", jobId: job.jobId, seq: 3, data: datas[2] });
        } else {
          node.chunks(job, datas.slice(0, 2));
          const hasher = new StreamHasher();
          for (const d of datas.slice(0, 2)) hasher.add(d);
          const usage = usageOf(["one", "two"]);
          node.peer.send({ type: "done", jobId: job.jobId, chunks: 3, usage, receipt: node.receipt(job, usage, hasher.digest()) });
        }
        const problem = await expectRejection(node.peer, "protocol.unexpected_message", 1002);
        if (problem) problems.push(`${variant}: ${problem}`);
        call.abort();
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.job.unknown",
    "Answers chunk, done and job_error for a job it never sent, and a chunk for a job that already ended, with error job.unknown and the jobId; the session continues",
    ["SRP-JOB-016", "SRP-ERR-003"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const problems: string[] = [];
      const expectUnknown = async (what: string, jobId: string) => {
        const m = await node.peer
          .take((x) => x.type === "error" || x.type === "receipt", 3000, 0, `the hub's answer to ${what}`)
          .catch((e: Error) => {
            problems.push(`${what}: ${e.message}`);
            return undefined;
          });
        if (!m) return;
        if (m.type !== "error") problems.push(`${what}: the hub answered ${String(m.type)}`);
        else if (m.code !== "job.unknown" || m.jobId !== jobId)
          problems.push(`${what}: error ${String(m.code)} with jobId ${String(m.jobId)}, expected job.unknown with ${jobId}`);
      };
      const fake = {
        jobId: `job_conformance_${hex(8)}`,
        instanceId: "conf-unknown",
        model,
        quote: instance(model).price,
        request: { model, messages: ASK },
      } as unknown as Job;
      node.peer.send({ type: "chunk", jobId: fake.jobId, seq: 0, data: { object: "chat.completion.chunk", choices: [] } });
      await expectUnknown("a chunk for a job never sent", fake.jobId);
      const fake2 = { ...fake, jobId: `job_conformance_${hex(8)}` };
      node.peer.send({
        type: "job_error",
        jobId: fake2.jobId,
        code: "job.upstream_error",
        message: "conformance",
        retryable: true,
        chunks: 0,
      });
      await expectUnknown("a job_error for a job never sent", fake2.jobId);
      const fake3 = { ...fake, jobId: `job_conformance_${hex(8)}` };
      const usage = usageOf(["x"]);
      node.responseDone(fake3, { object: "chat.completion", choices: [] }, usage);
      await expectUnknown("a done for a job never sent", fake3.jobId);
      // A job that ended with done.
      const call = node.chat({ model, messages: ASK, max_tokens: 8 });
      const job = await node.nextJob(call);
      const { receipt } = node.responseAnswer(job, "pong");
      await node.countersigned(receipt).catch((e: Error) => problems.push(e.message));
      await drain(call);
      node.peer.send({ type: "chunk", jobId: job.jobId, seq: 0, data: { object: "chat.completion.chunk", choices: [] } });
      await expectUnknown("a chunk for a job that already ended with done", job.jobId);
      if (problems.length) fail(problems.join("; "));
      await stillServing(node.peer, "the session that sent messages for unknown jobs");
    },
  ),
  check(
    "hub.job.cancel",
    "Sends cancel (consumer_gone) when the consumer disconnects mid-stream; then discards a late chunk silently and still countersigns a late done",
    ["SRP-JOB-017", "SRP-JOB-016", "SRP-ATT-009"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const { job, datas, usage, cancel, mark } = await cancelMidStream(node, model);
      const problems: string[] = [];
      if (cancel.reason !== "consumer_gone") problems.push(`cancel.reason is ${String(cancel.reason)}, expected consumer_gone`);
      // Late messages for the cancelled job.
      node.chunks(job, [datas[3]!], 3);
      const receipt = node.streamDone(job, datas.slice(0, 4), usage);
      const answer = await node.answerTo(job.jobId).catch((e: Error) => {
        problems.push(`late done: ${e.message}`);
        return undefined;
      });
      if (answer?.type === "error")
        problems.push(`the hub answered a late message for the cancelled job with error ${String(answer.code)}: ${String(answer.message)}`);
      else if (answer) {
        const r = answer.receipt as Receipt;
        if (typeof r.hubSig !== "string" || !verifyDetached("receiptHub", omitFields(r, "hubSig"), r.hubSig, node.hello.hubId))
          problems.push("the late done's receipt: hubSig does not verify");
        else if (!sameJson(omitFields(r, "hubSig"), receipt))
          problems.push("the late done's countersigned receipt differs from the node's");
      }
      const errors = node.peer.matching((m) => m.type === "error", mark);
      if (errors.length && answer?.type !== "error") problems.push(`the hub sent error ${String(errors[0]!.code)} after the cancel`);
      if (problems.length) fail(problems.join("; "));
      await stillServing(node.peer, "the session of the cancelled job");
    },
  ),
  check(
    "hub.job.deadline",
    "Cancels a job that outlives its deadline with reason deadline, and ends the consumer's stream with an in-band error and no [DONE] (needs a hub that lets a consumer ask for a short deadline with x-srp-timeout-ms)",
    ["SRP-JOB-006", "SRP-JOB-017", "SRP-JOB-020"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = node.chat({ model, messages: ASK, stream: true, max_tokens: 64 }, { "x-srp-timeout-ms": "1500" });
      const job = await node.nextJob(call);
      const left = job.deadline - Date.now();
      if (left > 10_000) {
        call.abort();
        return {
          status: "skipped",
          details: `job.deadline is ${Math.round(left / 1000)} s away; this check waits for a deadline only when the hub honours x-srp-timeout-ms`,
        };
      }
      node.chunks(job, chatChunks({ ...job, request: {} }, ["Slow ", "start"], usageOf(["x"])).slice(0, 3));
      const res = await within(call.response, 5000, "the consumer's response");
      ensure(res.status === 200, `the consumer's streamed request was answered ${res.status}`);
      const reader = new SseReader(res);
      const cancel = await node.peer.take(
        (m) => m.type === "cancel" && m.jobId === job.jobId,
        Math.max(0, left) + 3000,
        0,
        `cancel for ${job.jobId} after its deadline`,
      );
      const problems: string[] = [];
      if (cancel.reason !== "deadline") problems.push(`cancel.reason is ${String(cancel.reason)}, expected deadline`);
      const at = node.peer.arrival(cancel)?.at ?? Date.now();
      if (at < job.deadline - 1000) problems.push(`the cancel came ${job.deadline - at} ms before the job's deadline`);
      await reader.rest(5000).catch((e: Error) => problems.push(`the consumer's stream did not end after the deadline: ${e.message}`));
      const seen = summarize(res, [...reader.events]);
      if (seen.doneMarkers > 0) problems.push("the stream of a job that passed its deadline carries data: [DONE]");
      if (seen.errors.length === 0) problems.push("no in-band error event after the deadline passed");
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.job.error_failover",
    "After a retryable job_error before any content, either runs the request on another instance (the consumer sees one clean response) or answers the consumer with a coded HTTP error",
    ["SRP-JOB-019"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model), instance(model)]);
      const call = node.chat({ model, messages: ASK, stream: true, max_tokens: 16 });
      const job = await node.nextJob(call);
      node.peer.send({
        type: "job_error",
        jobId: job.jobId,
        code: "job.upstream_error",
        message: "conformance: backend failed before any output",
        retryable: true,
        upstreamStatus: 503,
        chunks: 0,
      });
      const retry = node.peer.take((m) => m.type === "job" && m.jobId !== job.jobId, 5000, 0, "a retry");
      retry.catch(() => undefined);
      const first = await Promise.race([
        retry.then((j) => ({ job: j as unknown as Job })),
        within(call.response, 5000, "the consumer's response").then((res) => ({ res })),
      ]);
      if ("job" in first) {
        ensure(first.job.jobId !== job.jobId, "the retry reused the failed job's id");
        const pieces = ["Recovered ", "elsewhere."];
        node.streamAnswer(first.job, pieces);
        const seen = await readStream(call);
        const problems: string[] = [];
        if (seen.text !== pieces.join(""))
          problems.push(`after failover the consumer's text is ${JSON.stringify(seen.text)}, expected ${JSON.stringify(pieces.join(""))}`);
        if (seen.errors.length)
          problems.push(`the consumer saw an error event although the retry succeeded: ${JSON.stringify(seen.errors[0]).slice(0, 200)}`);
        if (!seen.lastIsDone) problems.push("the retried stream does not end with [DONE]");
        if (problems.length) fail(problems.join("; "));
        return;
      }
      const problem = await codedError(first.res);
      if (problem) fail(`no retry, and the consumer's answer is not a coded error: ${problem}`);
    },
  ),
  check(
    "hub.job.error_midstream",
    "After content reached the consumer, a job_error ends the stream with an in-band error event and no [DONE], and the request is not retried",
    ["SRP-JOB-020"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model), instance(model)]);
      const call = node.chat({ model, messages: ASK, stream: true, max_tokens: 16 });
      const job = await node.nextJob(call);
      const datas = chatChunks({ ...job, request: {} }, ["Partial ", "answer"], usageOf(["x"])).slice(0, 3);
      node.chunks(job, datas);
      const res = await within(call.response, 5000, "the consumer's response");
      ensure(res.status === 200, `the consumer's streamed request was answered ${res.status}`);
      const reader = new SseReader(res);
      let text = "";
      while (text !== "Partial answer") {
        const e = await reader.next(5000);
        if (!e) fail(`the stream ended after ${JSON.stringify(text)} before the node failed`);
        text += deltaContent(eventJson(e)) ?? "";
      }
      node.peer.send({
        type: "job_error",
        jobId: job.jobId,
        code: "job.upstream_error",
        message: "conformance: backend failed mid-stream",
        retryable: true,
        chunks: datas.length,
      });
      const rest = await reader.rest(5000).catch((e: Error) => fail(`the stream did not end after the job failed: ${e.message}`));
      await sleep(200);
      const seen = summarize(res, [...reader.events]);
      const problems: string[] = [];
      if (seen.doneMarkers > 0) problems.push("the failed stream carries data: [DONE]");
      if (seen.errors.length === 0)
        problems.push(
          `no in-band error event after the failure (events after it: ${rest.map((e) => e.data.slice(0, 80)).join(" | ") || "none"})`,
        );
      if (node.peer.matching((m) => m.type === "job" && m.jobId !== job.jobId).length)
        problems.push("the hub retried the request after content had reached the consumer");
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
