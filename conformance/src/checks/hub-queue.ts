/**
 * Hub-mode checks of fallbacks across models and of waiting for a slot (spec/v1/consumer.md,
 * SRP-CON-058..069). The harness is both the provider node (serving a model nobody else
 * serves, with one slot where the check needs a busy instance) and the consumer.
 */
import type { Job } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { bodyText, type ConsumerCall, json, post as consumerPost, surfaces, within } from "../harness/consumer.js";
import type { HubContext } from "../harness/hub-session.js";
import { instance, isJob, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { ensure, fail } from "../harness/verdict.js";

type Json = Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Posts a chat completion as the harness's account (`authorization: Bearer`), tracked. */
const post = (ctx: HubContext, base: string, body: Json, headers: Record<string, string> = {}): ConsumerCall =>
  consumerPost(ctx, base, "/chat/completions", body, headers, "bearer");

/** A chat body for `model` whose user message is `marker` (it tells jobs apart at the node). */
const chat = (model: string, marker: string, extra: Json = {}): Json => ({
  model,
  messages: [{ role: "user", content: marker }],
  max_tokens: 4,
  ...extra,
});

/** The user message of a chat job (its marker). */
const markerOf = (job: Job) =>
  String(((job.request as { messages?: { content?: unknown }[] }).messages?.[0]?.content as string | undefined) ?? "");

/** Answers a non-streamed job whole and waits for the hub's countersignature. */
async function answerWhole(node: HarnessNode, job: Job, text: string): Promise<void> {
  await node.countersigned(node.responseAnswer(job, text).receipt);
}

/** Problems of an error answer: status, and `error.code` of an OpenAI error body. */
async function errorProblems(res: Response, what: string, status: number, code: string): Promise<string[]> {
  const body = await json(res, what);
  const out: string[] = [];
  if (res.status !== status) out.push(`${what}: status ${res.status}, expected ${status}`);
  const got = (body.error as Json | undefined)?.code;
  if (got !== code) out.push(`${what}: code ${String(got)}, expected ${code}`);
  if (status === 503) {
    const retry = res.headers.get("retry-after");
    if (retry === null || !/^[1-9][0-9]*$/.test(retry))
      out.push(`${what}: Retry-After ${JSON.stringify(retry)}, not whole seconds of at least 1`);
  }
  return out;
}

/** Whether a call has been answered (headers arrived) by now. */
function tracked(call: ConsumerCall): { answered: () => boolean } {
  let done = false;
  call.response.then(
    () => (done = true),
    () => (done = true),
  );
  return { answered: () => done };
}

/** Hub-mode checks of fallbacks and waiting, in run order. */
export const HUB_QUEUE_CHECKS: Check<HubContext>[] = [
  check(
    "hub.fallbacks.models",
    "`models` lists fallback models: a first model nobody serves falls through to the next, the answer names the model that served, `models` never reaches the node, `allow_fallbacks: false` tries the first only, a bad list is 400",
    ["SRP-CON-058", "SRP-CON-059", "SRP-CON-060", "SRP-CON-061"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions");
      const model = newModel();
      const missing = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const problems: string[] = [];

      const fell = post(ctx, base, chat(missing, "fallback", { models: [model] }));
      const job = await node.nextJob(fell);
      ensure(
        !("models" in (job.request as Json)),
        `the job for the fallback model carries \`models\` (${JSON.stringify((job.request as Json).models)}); it is a routing instruction for the hub only (SRP-CON-058)`,
      );
      if (job.model !== model) problems.push(`the fallback job is for model ${job.model}, not ${model}`);
      await answerWhole(node, job, "served by the fallback");
      const res = await within(fell.response, 5000, "the answer of the request whose first model nobody serves");
      const body = await json(res, "the answer of the request whose first model nobody serves");
      if (res.status !== 200)
        problems.push(
          `a request whose first model nobody serves, with models [${model}], answered ${res.status}, not 200 from the fallback`,
        );
      else if (body.model !== model) problems.push(`the answer served by ${model} names model ${JSON.stringify(body.model)} (SRP-CON-061)`);
      const header = res.headers.get("x-srp-model");
      if (header !== null && header !== model) problems.push(`x-srp-model is ${header}, not the serving model ${model}`);

      // `model` omitted: the first of `models` is the model.
      const only = post(ctx, base, { messages: [{ role: "user", content: "models only" }], max_tokens: 4, models: [model] });
      await answerWhole(node, await node.nextJob(only), "ok");
      const onlyRes = await within(only.response, 5000, "the answer of a request with models and no model");
      if (onlyRes.status !== 200)
        problems.push(
          `a request with models [${model}] and no model answered ${onlyRes.status}: ${(await bodyText(onlyRes)).slice(0, 200)}`,
        );
      else await bodyText(onlyRes);

      // allow_fallbacks false: the first model only.
      const jobsBefore = node.peer.matching(isJob).length;
      const strict = await within(
        post(ctx, base, chat(missing, "strict", { models: [model], provider: { allow_fallbacks: false } })).response,
        5000,
        "the answer with allow_fallbacks false",
      );
      problems.push(
        ...(await errorProblems(strict, "a request with allow_fallbacks false whose first model nobody serves", 404, "job.unknown_model")),
      );
      if (node.peer.matching(isJob).length > jobsBefore)
        problems.push("a job reached the fallback model's node although allow_fallbacks was false (SRP-CON-059)");

      for (const models of [[], "x", Array.from({ length: 9 }, (_, i) => `${model}-${i}`)]) {
        const bad = await within(post(ctx, base, chat(model, "bad", { models })).response, 5000, "the answer to a bad models list");
        problems.push(
          ...(await errorProblems(bad, `a request with models ${JSON.stringify(models).slice(0, 60)}`, 400, "api.invalid_body")),
        );
      }
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.queue.waits_in_order",
    "Requests for a busy instance wait for its slot instead of a 503, are served first in, first out, and one whose consumer left is dropped from the queue and never sent",
    ["SRP-CON-064", "SRP-CON-067", "SRP-CON-069"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { maxConcurrency: 1 })]);
      const wait = { "x-srp-queue-timeout-ms": "10000" };
      const first = post(ctx, base, chat(model, "first"), wait);
      const job1 = await node.nextJob(first);
      // Arrival order at the hub: each one some time after the previous.
      const second = post(ctx, base, chat(model, "second"), wait);
      const watched = [tracked(second)];
      await sleep(250);
      const leaver = post(ctx, base, chat(model, "leaver"), wait);
      await sleep(250);
      const third = post(ctx, base, chat(model, "third"), wait);
      watched.push(tracked(third));
      await sleep(250);
      leaver.abort();
      await sleep(250);
      for (const [i, call] of [second, third].entries()) {
        if (!watched[i]!.answered()) continue;
        const res = await call.response;
        fail(
          `the request for the busy instance (one slot, taken) was answered ${res.status} ${(await bodyText(res)).slice(0, 200)} instead of waiting for the slot (SRP-CON-064)`,
        );
      }
      ensure(node.peer.matching(isJob).length === 1, "a second job reached an instance of maxConcurrency 1 while its first job ran");
      await answerWhole(node, job1, "one");
      await bodyText(await within(first.response, 5000, "the first answer"));
      const order: string[] = [];
      for (const text of ["two", "three"]) {
        const job = (await node.peer.take(isJob, 5000, 0, "the next waiting request's job once the slot freed")) as unknown as Job;
        order.push(markerOf(job));
        await answerWhole(node, job, text);
      }
      ensure(
        order.join(",") === "second,third",
        `the waiting requests reached the node in the order ${order.join(", ")}, not second, third (first in, first out; the leaver left; SRP-CON-067, SRP-CON-069)`,
      );
      for (const [call, what] of [
        [second, "second"],
        [third, "third"],
      ] as const) {
        const res = await within(call.response, 5000, `the ${what} answer`);
        const text = await bodyText(res);
        ensure(res.status === 200, `the ${what} request answered ${res.status} after waiting: ${text.slice(0, 200)}`);
      }
      await sleep(300);
      ensure(
        node.peer.matching(isJob).length === 3,
        "a job reached the node for the request whose consumer left while it waited (SRP-CON-069)",
      );
    },
  ),
  check(
    "hub.queue.wait_runs_out",
    "x-srp-queue-timeout-ms: 0 is answered at once and a short wait when it runs out, 503 job.no_capacity with Retry-After; the default wait is at least 1 s",
    ["SRP-CON-065", "SRP-CON-066"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, "openai.chat.completions");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model, { maxConcurrency: 1 })]);
      const problems: string[] = [];
      const first = post(ctx, base, chat(model, "first"), { "x-srp-queue-timeout-ms": "10000" });
      const job1 = await node.nextJob(first);

      const none = await within(
        post(ctx, base, chat(model, "no wait"), { "x-srp-queue-timeout-ms": "0" }).response,
        2000,
        "the answer to a request that will not wait (x-srp-queue-timeout-ms: 0)",
      );
      problems.push(...(await errorProblems(none, "a request with x-srp-queue-timeout-ms: 0 for a busy instance", 503, "job.no_capacity")));

      const started = Date.now();
      const short = await within(
        post(ctx, base, chat(model, "short wait"), { "x-srp-queue-timeout-ms": "800" }).response,
        5000,
        "the answer to a request whose 800 ms wait runs out",
      );
      const waited = Date.now() - started;
      if (waited < 700)
        problems.push(
          `a request with x-srp-queue-timeout-ms: 800 for a busy instance was answered after ${waited} ms, before its wait ran out (SRP-CON-065)`,
        );
      problems.push(...(await errorProblems(short, "a request whose wait ran out", 503, "job.no_capacity")));

      const plain = post(ctx, base, chat(model, "default wait"));
      const early = tracked(plain);
      await sleep(900);
      if (early.answered()) {
        const res = await plain.response;
        problems.push(
          `a request without x-srp-queue-timeout-ms for a busy instance was answered ${res.status} within 900 ms; the default wait is at least 1000 ms (SRP-CON-065)`,
        );
      }
      plain.abort();
      await sleep(200);
      if (node.peer.matching(isJob).length > 1) problems.push("a job reached the node for a request that did not get the slot");
      await answerWhole(node, job1, "one");
      await bodyText(await within(first.response, 5000, "the first answer"));
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
