/**
 * OpenAI's legacy text completions: `POST /v1/completions` (streamed and not), for
 * code-completion clients. Served natively only, by instances that take `completions` jobs
 * (an OpenAI-compatible server with `/v1/completions`); never translated. The body reaches
 * the node untouched apart from the routing members, `stream_options` and a default
 * `max_tokens`; the answer is the node's, with `usage` the billed one and its cost.
 */
import { describedMeter } from "./meters.js";
import { SrpError } from "@srp/core";
import { checkConsumerBody, CompletionsRequest, type Capability, type Job } from "@srp/core/schema";
import { OutputMeter, type OutputMeasurer } from "@srp/core/metering";
import type { JobEvent } from "../relay.js";
import { errorResponse, readJsonObject } from "./http.js";
import type { PaidResource } from "../payments/x402-policy.js";
import { openAIChunkEncoder, openAIUsage } from "./openai.js";
import { preferences, serve, type Plan, type ConsumerApiContext, type Surface } from "./serve.js";

type Json = Record<string, unknown>;

/** The output limit of a request that sets none: OpenAI's documented default for this API (SRP-CON-045). */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

/** Tokens a server may add around a prompt (a BOS token, a fill-in-the-middle template). */
const PROMPT_OVERHEAD_TOKENS = 64;

/** The request's prompts. */
function prompts(body: Json): string[] {
  return typeof body.prompt === "string" ? [body.prompt] : (body.prompt as string[]);
}

/**
 * An upper bound on a completions request's prompt tokens: the UTF-8 bytes of its prompts and
 * `suffix` (a token covers at least one byte) plus 64 tokens a prompt.
 */
export function completionsPromptBound(body: Json): number {
  const suffix = typeof body.suffix === "string" ? Buffer.byteLength(body.suffix) : 0;
  const list = prompts(body);
  return list.reduce((n, p) => n + Buffer.byteLength(p) + suffix + PROMPT_OVERHEAD_TOKENS, 0);
}

/** Choices a request produces: `n` for each prompt. */
export function completionsChoices(body: Json): number {
  const n = typeof body.n === "number" ? body.n : 1;
  return n * prompts(body).length;
}

/** Whether a completions chunk carries something the consumer would see (text or a finish). */
function commits(e: JobEvent): boolean {
  if (e.type !== "chunk") return true;
  const choices = e.chunk.data.choices;
  if (!Array.isArray(choices)) return false;
  return choices.some((c) => {
    const ch = c as { text?: unknown; finish_reason?: unknown };
    return (typeof ch.text === "string" && ch.text.length > 0) || (ch.finish_reason !== null && ch.finish_reason !== undefined);
  });
}

/**
 * Checks a completions body and plans it for instances with the `completions` capability.
 * A model none of whose online instances has it is refused with `job.unknown_model`.
 */
export function planCompletions(body: Json, ctx: Pick<ConsumerApiContext, "router">): Plan | SrpError {
  const problem = checkConsumerBody(CompletionsRequest, body);
  if (problem) return new SrpError("api.invalid_body", problem);
  const prefs = preferences(body);
  if (prefs instanceof SrpError) return prefs;
  const model = body.model as string;
  // The model's offers in short (per capability set), not a view of every instance.
  const offers = ctx.router.offers(model);
  if (!offers.some((v) => v.capabilities.includes("completions"))) {
    const why =
      offers.length === 0
        ? `model ${model} is not served by any online provider`
        : `no online instance of ${model} serves legacy completions (/v1/completions); use /v1/chat/completions`;
    return new SrpError("job.unknown_model", why);
  }
  const stream = body.stream === true;
  const forwarded: Json = { ...body };
  delete forwarded.srp;
  delete forwarded.provider;
  const maxOut = typeof body.max_tokens === "number" ? body.max_tokens : COMPLETIONS_DEFAULT_MAX_TOKENS;
  forwarded.max_tokens = maxOut;
  if (stream) {
    const so = body.stream_options;
    forwarded.stream_options = { ...(typeof so === "object" && so !== null && !Array.isArray(so) ? so : {}), include_usage: true };
  }
  const capabilities: Capability[] = ["completions"];
  if (stream) capabilities.push("stream");
  const choices = completionsChoices(body);
  return {
    model,
    stream,
    prefs,
    capabilities,
    contextTokens: Math.ceil(completionsPromptBound(body) / 4) + maxOut,
    bound: { promptTokens: completionsPromptBound(body), completionTokens: maxOut * choices },
    job: () => ({ api: "completions", body: forwarded }),
    commits,
    meter: (job: Job): OutputMeasurer =>
      describedMeter(new OutputMeter({ api: "completions", stream: job.stream, choices }), { kind: "completions", choices }),
    respond: (_job, done, ext, headers) =>
      Response.json({ ...done.response, usage: openAIUsage(done.response?.usage, done.usage, ext) }, { headers }),
    // text_completion chunks; the usage chunk is held until the receipt, then extended with the cost (SRP-CON-047).
    encoder: (job) => openAIChunkEncoder(job, "text_completion"),
  };
}

/** The completions surface as an x402 resource. */
export function completionsResource(url: string): PaidResource {
  return {
    url,
    description:
      "Legacy text completion relayed to an SRP provider (OpenAI wire format). The amount is this request's maximum cost; what it does not use stays with the paying wallet as prepaid balance.",
    mimeType: "application/json",
    method: "POST",
    example: { model: "qwen2.5-coder:7b", prompt: "def fib(n):", max_tokens: 64 },
  };
}

/** The legacy completions surface: what `POST /v1/completions` serves and `POST /v1/estimate` plans. */
export const completionsSurface: Surface = {
  resource: completionsResource,
  error: errorResponse,
  read: readJsonObject,
  plan: (body, ctx) => planCompletions(body, ctx),
};

/** `POST /v1/completions`. */
export function postCompletions(request: Request, ctx: ConsumerApiContext): Promise<Response> {
  return serve(request, ctx, completionsSurface);
}
