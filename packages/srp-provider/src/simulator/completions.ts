/**
 * The simulator's legacy text completions (`POST /v1/completions`), in OpenAI's wire
 * format and **not a model**: `text_completion` objects with `choices[].text`,
 * `finish_reason` and usage; streamed as `text_completion` chunks ending in `data: [DONE]`,
 * with a usage chunk (`choices: []`) when `stream_options.include_usage` is set (in every
 * chunk with vLLM's `continuous_usage_stats`).
 *
 * `suffix` (fill-in-the-middle) is honoured where the real server honours it (OpenAI,
 * Ollama): the text is then a recognisable echo, `/* fill-in-the-middle before "<the first
 * characters of the suffix>" *\/` followed by the usual filler, so a test can tell that the
 * suffix arrived. The vLLM flavour refuses `suffix` as vLLM does; llama.cpp and LM Studio
 * flavours ignore it. Ollama's flavour takes only a string `prompt`.
 *
 * `n` (default 1) completions of each prompt, as OpenAI and vLLM return them: choice
 * `index` = prompt number × `n` + completion number, each a different filler; the usage
 * counts each prompt once and every choice's text. Ollama's flavour ignores `n` (one
 * choice), as Ollama does; llama.cpp's refuses `n` other than 1, as llama.cpp does.
 */
import type { ServerResponse } from "node:http";
import { randomBytes, toBase64Url } from "@srp/core";
import { errorBody, sendJson } from "./http.js";
import { flavorRefusal } from "./flavors.js";
import { countTokens, generateTokens } from "./text.js";
import { fitTokens, pacer, sleep, type SimulatorContext } from "./context.js";

type Json = Record<string, unknown>;

const FINGERPRINT = "fp_srpsim01";

/** The text of one completion: the filler for the prompt, or the fill-in-the-middle echo for a suffix; `variant` > 0 for the further choices of `n` (each a different filler). */
export function completionText(prompt: string, suffix: string | undefined, maxTokens: number, variant = 0): string[] {
  const filler = generateTokens(`${prompt}\u0000${suffix ?? ""}${variant > 0 ? `\u0000${variant}` : ""}`, maxTokens).join("");
  const text = suffix === undefined ? filler : `/* fill-in-the-middle before ${JSON.stringify(suffix.slice(0, 24))} */ ${filler}`;
  return fitTokens(text, maxTokens, countTokens);
}

function usage(prompt: number, completion: number) {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** Serves one `POST /v1/completions`. */
export async function serveCompletions(ctx: SimulatorContext, res: ServerResponse, body: Json): Promise<void> {
  ctx.record(body);
  const served = typeof body.model === "string" ? ctx.models.find((m) => m.id === body.model) : undefined;
  if (!served)
    return sendJson(
      res,
      404,
      errorBody(`The model \`${String(body.model)}\` does not exist.`, "invalid_request_error", "model_not_found", "model"),
    );
  const refused = flavorRefusal(ctx.flavor, served, {});
  if (refused) return sendJson(res, refused.status, refused.body);
  const raw = body.prompt;
  const prompts =
    typeof raw === "string"
      ? [raw]
      : Array.isArray(raw) && raw.length > 0 && raw.every((p) => typeof p === "string") && ctx.flavor !== "ollama"
        ? (raw as string[])
        : undefined;
  if (!prompts)
    return sendJson(
      res,
      400,
      errorBody(
        ctx.flavor === "ollama"
          ? "json: cannot unmarshal array into Go struct field CompletionRequest.prompt of type string"
          : "'prompt' must be a string or an array of strings.",
        "invalid_request_error",
        null,
        "prompt",
      ),
    );
  const wantsSuffix = typeof body.suffix === "string" && body.suffix.length > 0;
  if (wantsSuffix && ctx.flavor === "vllm") {
    return sendJson(res, 400, {
      object: "error",
      message: "suffix is not currently supported",
      type: "BadRequestError",
      param: null,
      code: 400,
    });
  }
  const suffix = wantsSuffix && (ctx.flavor === undefined || ctx.flavor === "ollama") ? (body.suffix as string) : undefined;
  const asked = ctx.flavor === "ollama" ? 1 : (body.n ?? 1); // Ollama reads no `n`
  if (typeof asked !== "number" || !Number.isSafeInteger(asked) || asked < 1 || asked > 128) {
    return sendJson(
      res,
      400,
      errorBody(
        `Invalid 'n': integer between 1 and 128 expected, got ${JSON.stringify(asked)}.`,
        "invalid_request_error",
        "invalid_value",
        "n",
      ),
    );
  }
  if (asked !== 1 && ctx.flavor === "llamacpp")
    return sendJson(res, 400, { error: { code: 400, message: "Only one completion choice is allowed", type: "invalid_request_error" } });
  const n = asked;
  const f = ctx.takeFault();
  if (f?.kind === "hang") return;
  if (ctx.latencyMs > 0) await sleep(ctx.latencyMs);
  if (f?.kind === "status") {
    const status = f.status ?? 500;
    return sendJson(
      res,
      status,
      errorBody("The simulator was told to fail this request.", status === 429 ? "rate_limit_error" : "server_error", null),
    );
  }
  // OpenAI's and vLLM's default length for text completions is 16 tokens.
  const fallback = ctx.flavor === undefined || ctx.flavor === "vllm" ? 16 : ctx.defaultMaxTokens;
  const maxTokens =
    typeof body.max_tokens === "number" && Number.isSafeInteger(body.max_tokens) && body.max_tokens > 0 ? body.max_tokens : fallback;
  const echo = body.echo === true;
  // Choice i answers prompt ⌊i / n⌋, as its (i mod n)-th completion.
  const answers = prompts.flatMap((p) => Array.from({ length: n }, (_, j) => completionText(p, suffix, maxTokens, j)));
  const promptOf = (i: number) => prompts[Math.floor(i / n)]!;
  const promptTokens = prompts.reduce((n, p) => n + countTokens(p) + (suffix === undefined ? 0 : countTokens(suffix)), 0);
  const counts = answers.map((a) => countTokens(a.join("")));
  const completionTokens = counts.reduce((a, b) => a + b, 0);
  const finish = (i: number) => (counts[i]! >= maxTokens ? "length" : "stop");
  const id = `cmpl-${toBase64Url(randomBytes(18))}`;
  const created = Math.floor(Date.now() / 1000);
  const tps = ctx.tokensPerSecond();

  if (body.stream !== true) {
    if (tps > 0) await sleep((completionTokens * 1000) / tps);
    if (f?.kind === "error_before_first_token" || f?.kind === "drop_mid_stream") return void res.socket?.destroy();
    return sendJson(res, 200, {
      id,
      object: "text_completion",
      created,
      model: body.model,
      choices: answers.map((a, i) => ({
        text: (echo ? promptOf(i) : "") + a.join(""),
        index: i,
        logprobs: null,
        finish_reason: finish(i),
      })),
      usage: usage(promptTokens, completionTokens),
      system_fingerprint: FINGERPRINT,
    });
  }

  const so = typeof body.stream_options === "object" && body.stream_options !== null ? (body.stream_options as Json) : {};
  const includeUsage = so.include_usage === true;
  const continuous = includeUsage && so.continuous_usage_stats === true;
  let produced = 0;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-srp-simulator": "1",
  });
  const write = (obj: unknown) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  const chunk = (index: number, text: string, finishReason: string | null) =>
    write({
      id,
      object: "text_completion",
      created,
      choices: [{ text, index, logprobs: null, finish_reason: finishReason }],
      model: body.model,
      system_fingerprint: FINGERPRINT,
      ...(includeUsage ? { usage: continuous ? usage(promptTokens, produced) : null } : {}),
    });
  if (f?.kind === "error_before_first_token") {
    write(errorBody("The simulator was told to fail before the first token.", "server_error", null));
    return void res.end();
  }
  const pace = pacer(res, tps, f?.kind === "drop_mid_stream" ? (f.afterTokens ?? 3) : Infinity);
  for (const [i, pieces] of answers.entries()) {
    if (echo) chunk(i, promptOf(i), null);
    for (const piece of pieces) {
      if (pace.closed()) return;
      produced += countTokens(piece);
      chunk(i, piece, null);
      if (!(await pace.next())) return;
    }
    chunk(i, "", finish(i));
  }
  if (pace.closed()) return;
  if (includeUsage)
    write({
      id,
      object: "text_completion",
      created,
      choices: [],
      model: body.model,
      system_fingerprint: FINGERPRINT,
      usage: usage(promptTokens, completionTokens),
    });
  res.write("data: [DONE]\n\n");
  res.end();
}
