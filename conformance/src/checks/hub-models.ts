/**
 * Hub-mode checks of model names (spec/v1/offer.md "Model names", consumer.md "Model names
 * and quantizations"): the harness offers one model of the alias table under two of its
 * names with two quantizations, and asks for it by a third name, filtered by quantization.
 */
import { responseHash } from "@srp/core";
import type { Job, Usage } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { bodyText } from "../harness/consumer.js";
import { discovery, type HubContext } from "../harness/hub-session.js";
import { instance } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { ensure, fail, skip } from "../harness/verdict.js";

type Json = Record<string, unknown>;

async function chatBase(ctx: HubContext): Promise<string> {
  const doc = await discovery(ctx);
  if (!doc.consumer?.surfaces.includes("openai.chat.completions"))
    skip("the discovery document does not list the openai.chat.completions consumer surface");
  return doc.consumer.baseUrl.replace(/\/+$/, "");
}

function chat(ctx: HubContext, base: string, body: Json) {
  const controller = new AbortController();
  const response = fetch(`${base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ctx.accountKey ?? ""}` },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  response.catch(() => {
    /* reported where it is awaited */
  });
  ctx.tracker.cleanups.push(() => controller.abort());
  return { response, abort: () => controller.abort() };
}

function answer(node: HarnessNode, job: Job): void {
  const usage: Usage = { promptTokens: 5, completionTokens: 1, measured: true };
  const response = {
    id: "chatcmpl-conformance",
    object: "chat.completion",
    created: 1,
    model: job.model,
    choices: [{ index: 0, message: { role: "assistant", content: "ok" }, logprobs: null, finish_reason: "stop" }],
    usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
  };
  node.peer.send({ type: "done", jobId: job.jobId, chunks: 0, usage, response, receipt: node.receipt(job, usage, responseHash(response)) });
}

/** Hub-mode model-name checks. */
export const HUB_MODEL_CHECKS: Check<HubContext>[] = [
  check(
    "hub.consumer.models.alias_and_quantization",
    "Routes a request naming an alias to the instances of the canonical id, whatever names they were offered under; provider.quantizations picks the instance; the catalog lists the quantizations",
    ["SRP-CON-017", "SRP-CON-018", "SRP-CON-019", "SRP-CON-020", "SRP-OFF-013"],
    "MUST",
    async (ctx) => {
      const base = await chatBase(ctx);
      const q4 = instance("qwen3:32b", { quantization: "Q4_K_M" });
      const q8 = instance("qwen3-32b", { quantization: "Q8_0" });
      const node = await HarnessNode.open(ctx, [q4, q8]);
      const call = chat(ctx, base, {
        model: "Qwen/Qwen3-32B",
        max_tokens: 1,
        messages: [{ role: "user", content: "hi" }],
        provider: { quantizations: ["q8_0"] },
      });
      const job = await node.nextJob(call);
      const problems: string[] = [];
      if (job.instanceId !== q8.instanceId) problems.push(`the job went to ${job.instanceId}, not the Q8_0 instance ${q8.instanceId}`);
      if (job.model !== "qwen3-32b") problems.push(`the job names model ${job.model}, not the offered qwen3-32b`);
      if (job.request.provider !== undefined) problems.push("the routing member `provider` reached the node");
      answer(node, job);
      const res = await call.response;
      if (res.status !== 200) problems.push(`the aliased request answered ${res.status}: ${(await bodyText(res)).slice(0, 200)}`);
      const none = await chat(ctx, base, {
        model: "qwen3-32b",
        max_tokens: 1,
        messages: [{ role: "user", content: "hi" }],
        provider: { quantizations: ["BF16"] },
      }).response;
      if (none.status !== 404) problems.push(`a request for a quantization nobody offers answered ${none.status}, not 404`);
      const models = await fetch(`${base}/models`, { headers: { authorization: `Bearer ${ctx.accountKey ?? ""}` } });
      ensure(models.ok, `GET /v1/models answered ${models.status}`);
      const list = (await models.json()) as {
        aliases_version?: unknown;
        data?: { id: string; quantizations?: unknown; aliases?: unknown }[];
      };
      if (typeof list.aliases_version !== "string") problems.push("GET /v1/models carries no aliases_version");
      const entry = list.data?.find((m) => m.id === "qwen3-32b");
      if (!entry) problems.push("GET /v1/models has no entry qwen3-32b");
      else {
        const qs = Array.isArray(entry.quantizations) ? entry.quantizations : [];
        if (!qs.includes("Q4_K_M") || !qs.includes("Q8_0"))
          problems.push(`qwen3-32b lists quantizations ${JSON.stringify(entry.quantizations)}, not Q4_K_M and Q8_0`);
        if (!Array.isArray(entry.aliases) || !entry.aliases.includes("qwen3:32b"))
          problems.push(`qwen3-32b lists aliases ${JSON.stringify(entry.aliases)} without qwen3:32b`);
      }
      if (list.data?.some((m) => m.id === "qwen3:32b"))
        problems.push("GET /v1/models lists qwen3:32b apart from its canonical id qwen3-32b");
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
