/**
 * Hub-mode checks of `POST /v1/estimate` for every surface (spec/v1/billing.md, SRP-BIL-018):
 * the harness offers an embeddings model and a chat model nobody else serves, at known
 * prices, and asks the hub (without a key: an estimate is free) for the estimate of an
 * embeddings body and a Messages body in the `{ endpoint, body }` form, and of an endpoint
 * that does not exist. No job runs.
 */
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { errorProblem, type Json, json, surfaces } from "../harness/consumer.js";
import type { HubContext } from "../harness/hub-session.js";
import { ASK, instance, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { fail } from "../harness/verdict.js";

/** How long the checks give a hub to answer one estimate. */
const ANSWER_MS = 5000;
/** The harness's prices, atomic units per million tokens: the output price bounds a request's maximum from below. */
const PRICE = { input: "1500000", output: "2500000" };

/** Posts `body` to `POST /v1/estimate` without a key. */
function estimate(base: string, body: Json): Promise<Response> {
  return fetch(`${base}/estimate`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(ANSWER_MS),
  });
}

const isMoney = (v: unknown): v is { units: string; usd: string } =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as { units?: unknown }).units === "string" &&
  /^(0|[1-9][0-9]*)$/.test((v as { units: string }).units) &&
  typeof (v as { usd?: unknown }).usd === "string";

/**
 * The problems of an estimate answer for `endpoint` and `model`: its shape (`object`, `endpoint`,
 * `model`, `maximum` and `expected` as `{ units, usd }`, `discount_bps`, `basis`), a positive
 * maximum of at least `floor` units, and an expected cost not above the maximum.
 */
function answerProblems(answer: Json, endpoint: string, model: string, floor: bigint): string[] {
  const what = `the estimate of a ${endpoint} body`;
  const problems: string[] = [];
  if (answer.object !== "srp.estimate") problems.push(`${what}: object is ${String(answer.object)}, not srp.estimate`);
  if (answer.endpoint !== endpoint) problems.push(`${what}: endpoint is ${String(answer.endpoint)}`);
  if (answer.model !== model) problems.push(`${what}: model is ${String(answer.model)}, not ${model}`);
  if (!isMoney(answer.maximum) || !isMoney(answer.expected)) {
    problems.push(`${what}: maximum and expected are not { units, usd } amounts: ${JSON.stringify(answer).slice(0, 300)}`);
    return problems;
  }
  const max = BigInt(answer.maximum.units);
  if (max <= 0n || max < floor) problems.push(`${what}: maximum ${max} units is below ${floor}, the output limit at the output price`);
  if (BigInt(answer.expected.units) > max) problems.push(`${what}: expected ${answer.expected.units} units exceeds the maximum ${max}`);
  if (typeof answer.discount_bps !== "number" || !Number.isInteger(answer.discount_bps))
    problems.push(`${what}: discount_bps is not an integer`);
  if (typeof answer.basis !== "object" || answer.basis === null) problems.push(`${what}: no basis`);
  return problems;
}

/** Hub-mode checks of estimates. */
export const HUB_ESTIMATE_CHECKS: Check<HubContext>[] = [
  check(
    "hub.estimate.every_surface",
    "POST /v1/estimate answers { endpoint, body } for an embeddings and a Messages body with the srp.estimate shape and a maximum covering the output limit, and refuses an unknown endpoint with 400 api.invalid_body",
    ["SRP-BIL-018"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "srp.estimate", "openai.embeddings", "anthropic.messages");
      const embed = newModel();
      const chat = newModel();
      await HarnessNode.open(ctx, [
        instance(embed, { capabilities: ["embeddings"], price: PRICE }),
        instance(chat, { capabilities: ["chat", "stream"], price: PRICE }),
      ]);
      const problems: string[] = [];
      const asked: Array<[string, Json, string, bigint]> = [
        ["/v1/embeddings", { model: embed, input: "Conformance: estimate me." }, embed, 1n],
        // 64 output tokens at 2.5 units per thousand: at least 160 units.
        ["/v1/messages", { model: chat, max_tokens: 64, messages: ASK }, chat, (64n * BigInt(PRICE.output)) / 1_000_000n],
      ];
      for (const [endpoint, body, model, floor] of asked) {
        const res = await estimate(base, { endpoint, body });
        const answer = await json(res, `POST /v1/estimate for ${endpoint}`);
        if (res.status !== 200) {
          problems.push(`POST /v1/estimate for ${endpoint} answered ${res.status}: ${JSON.stringify(answer).slice(0, 300)}`);
          continue;
        }
        problems.push(...answerProblems(answer, endpoint, model, floor));
      }
      const unknown = await errorProblem(
        await estimate(base, { endpoint: "/v1/conformance-no-such-endpoint", body: { model: chat } }),
        "POST /v1/estimate for an unknown endpoint",
        400,
        "api.invalid_body",
      );
      if (unknown) problems.push(unknown);
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
