/**
 * Hub-mode checks of reasoning across translations (spec/v1/consumer.md, "Reasoning across
 * translations"; attestation.md SRP-ATT-025): a Messages request with `thinking` reaches a
 * chat-only instance with a `reasoning_effort` and without the history's thinking blocks,
 * the node's `reasoning_content` comes back as a `thinking` block before the text, and
 * reasoning a consumer did not ask to see is still measured, so the honest receipt that
 * bills it is countersigned. The harness is the node (a chat-only instance of a model nobody
 * else serves) and the consumer.
 */
import type { Job, Usage } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { eventJson, post, SseReader, surfaces, within } from "../harness/consumer.js";
import type { HubContext } from "../harness/hub-session.js";
import { instance, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { fail } from "../harness/verdict.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** A chat.completion.chunk of `job` with one choice. */
function chunk(job: Job, delta: Json, finish: string | null = null): Json {
  return {
    id: "chatcmpl-reason",
    object: "chat.completion.chunk",
    created: 1767225600,
    model: job.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
}

/** The usage chunk that ends a stream that asked for one. */
function usageChunk(job: Job, usage: Usage): Json {
  return {
    id: "chatcmpl-reason",
    object: "chat.completion.chunk",
    created: 1767225600,
    model: job.model,
    choices: [],
    usage: {
      prompt_tokens: usage.promptTokens,
      completion_tokens: usage.completionTokens,
      total_tokens: usage.promptTokens + usage.completionTokens,
    },
  };
}

/** Streams `datas` and the receipt of `usage`; resolves with the hub's countersigned receipt (fails the check when the hub refuses it). */
async function finish(node: HarnessNode, job: Job, datas: Json[], usage: Usage): Promise<void> {
  node.chunks(job, datas);
  await node.countersigned(node.streamDone(job, datas, usage));
}

/** The events of a streamed consumer answer (status 200 required), as JSON. */
async function events(response: Promise<Response>, what: string): Promise<Json[]> {
  const res = await within(response, 10_000, what);
  if (res.status !== 200) fail(`${what} answered ${res.status}`);
  return (await new SseReader(res).rest(10_000)).map((e) => eventJson(e) ?? {});
}

/** Hub-mode checks of reasoning across translations, in run order. */
export const HUB_REASONING_CHECKS: Check<HubContext>[] = [
  check(
    "hub.reasoning.thinking_blocks",
    "Translates Messages `thinking` to the job's reasoning_effort (dropping the history's thinking blocks) and the node's reasoning_content to a thinking block before the text: thinking_delta, then a signature_delta with an empty signature",
    ["SRP-CON-076", "SRP-CON-077", "SRP-CON-079"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "anthropic.messages");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const body = {
        model,
        max_tokens: 2000,
        stream: true,
        thinking: { type: "enabled", budget_tokens: 1024 },
        messages: [
          { role: "user", content: "Conformance: think." },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "Conformance earlier thought.", signature: "c2ln" },
              { type: "text", text: "Earlier answer." },
            ],
          },
          { role: "user", content: "Again." },
        ],
      };
      const call = post(ctx, base, "/messages", body);
      const job = await node.nextJob(call);
      const problems: string[] = [];
      if (job.api !== "chat.completions") fail(`the job's api is ${job.api}, expected chat.completions for a chat-only instance`);
      if (job.request.reasoning_effort !== "low")
        problems.push(
          `the job's reasoning_effort is ${JSON.stringify(job.request.reasoning_effort)} for budget_tokens 1024, expected "low" (SRP-CON-077)`,
        );
      if (JSON.stringify(job.request).includes("Conformance earlier thought."))
        problems.push("the history's thinking block reached the chat job (SRP-CON-079)");
      const usage: Usage = { promptTokens: 20, completionTokens: 5, measured: true };
      const datas = [
        chunk(job, { role: "assistant", content: "" }),
        chunk(job, { reasoning_content: "Reasoning about" }),
        chunk(job, { reasoning_content: " it." }),
        chunk(job, { content: "Answer." }),
        chunk(job, {}, "stop"),
        usageChunk(job, usage),
      ];
      const countersigned = finish(node, job, datas, usage);
      const seen = await events(call.response, "the streamed Messages answer");
      await countersigned;
      const starts = seen.filter((e) => e.type === "content_block_start");
      const first = starts[0]?.content_block as Json | undefined;
      if (first?.type !== "thinking")
        problems.push(`the first content block is ${JSON.stringify(first)}, expected a thinking block (SRP-CON-076)`);
      else {
        const index = starts[0]!.index;
        const deltas = seen
          .filter((e) => e.type === "content_block_delta" && e.index === index)
          .map((e) => (isObject(e.delta) ? e.delta : {}));
        const thought = deltas
          .filter((d) => d.type === "thinking_delta")
          .map((d) => d.thinking)
          .join("");
        if (thought !== "Reasoning about it.")
          problems.push(`the thinking deltas say ${JSON.stringify(thought)}, the node reasoned "Reasoning about it."`);
        const signature = deltas.findIndex((d) => d.type === "signature_delta");
        if (signature < 0 || signature !== deltas.length - 1) problems.push("the thinking block does not end with a signature_delta");
        else if (deltas[signature]!.signature !== "")
          problems.push(`the signature_delta's signature is ${JSON.stringify(deltas[signature]!.signature)}, expected "" (SRP-CON-076)`);
      }
      const text = starts.find((s) => isObject(s.content_block) && s.content_block.type === "text");
      if (!text || (typeof text.index === "number" && typeof starts[0]?.index === "number" && text.index <= starts[0].index))
        problems.push("no text block follows the thinking block");
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.reasoning.billed_shown",
    "Shows reasoning as thinking in a Messages answer that did not ask for thinking, and measures it: a receipt whose output tokens only the reasoning text covers is countersigned and shown",
    ["SRP-CON-078", "SRP-ATT-025"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "anthropic.messages");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = post(ctx, base, "/messages", {
        model,
        max_tokens: 200,
        stream: true,
        messages: [{ role: "user", content: "Conformance: answer." }],
      });
      const job = await node.nextJob(call);
      // 360 bytes of reasoning and 3 of text: 100 output tokens are plausible only with the reasoning measured.
      const usage: Usage = { promptTokens: 20, completionTokens: 100, measured: true };
      const datas = [
        chunk(job, { role: "assistant", content: "" }),
        ...Array.from({ length: 40 }, () => chunk(job, { reasoning_content: "thinking " })),
        chunk(job, { content: "Ok." }),
        chunk(job, {}, "stop"),
        usageChunk(job, usage),
      ];
      const countersigned = finish(node, job, datas, usage);
      const seen = await events(call.response, "the streamed Messages answer");
      await countersigned;
      const problems: string[] = [];
      const thought = seen
        .map((e) =>
          isObject(e.delta) && e.delta.type === "thinking_delta" && typeof e.delta.thinking === "string" ? e.delta.thinking : "",
        )
        .join("");
      if (!thought.includes("thinking thinking"))
        problems.push("the answer does not carry the billed reasoning as thinking_delta events (SRP-CON-078)");
      const delta = seen.find((e) => e.type === "message_delta");
      const u = isObject(delta?.usage) ? delta.usage : {};
      if (u.output_tokens !== 100)
        problems.push(`message_delta's output_tokens is ${JSON.stringify(u.output_tokens)}, the receipt billed 100`);
      if (typeof u.receipt_id !== "string")
        problems.push(
          `message_delta's receipt_id is ${JSON.stringify(u.receipt_id)}${u.receipt_error ? ` (receipt_error ${String(u.receipt_error)})` : ""}`,
        );
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
