/**
 * Hub-mode checks of API keys' spending controls (spec/v1/consumer.md, "API keys and
 * spending controls", SRP-CON-083..087): managing keys, expiry, budgets, allowed models and
 * rate limits. The harness creates each key it needs with the suite's account key through
 * `POST /v1/account/keys` and revokes it when the check ends; it is also the provider node,
 * serving models nobody else serves, so it can tell whether a refused request reached a
 * node. A hub that answers 404 there offers no spending controls: the checks are skipped.
 */
import type { Check, CheckVerdict } from "../types.js";
import { check } from "../harness/check.js";
import {
  bodyText,
  type ConsumerCall,
  errorProblem,
  type Json,
  json,
  postChat,
  reportProblems,
  surfaces,
  within,
} from "../harness/consumer.js";
import { type HubContext, needKey } from "../harness/hub-session.js";
import { hex, instance, isJob, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { ensure, fail, skip } from "../harness/verdict.js";

/** How long the checks give a hub to answer one management or account request. */
const ANSWER_MS = 5000;
/** How long the checks wait after a refusal before concluding that no job reached the node. */
const SETTLE_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where a check talks to the hub: the consumer base URL (`.../v1`) and the suite's account key. */
interface KeysTarget {
  ctx: HubContext;
  base: string;
  key: string;
}

/** A key a check created: its id and its secret. */
interface CreatedKey {
  id: string;
  secret: string;
  body: Json;
}

/** Sends `method path` of the consumer API with `key` as `authorization: Bearer`, with a time limit. */
function call(t: KeysTarget, method: string, path: string, key: string, body?: unknown): Promise<Response> {
  return fetch(`${t.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(ANSWER_MS),
  });
}

/**
 * The target, or a skip: without an account key, without the chat surface, or when the hub
 * answers 404 on `GET /v1/account/keys` (it offers no spending controls, SRP-CON-083).
 */
async function keysTarget(ctx: HubContext): Promise<KeysTarget> {
  const key = needKey(ctx);
  const base = await surfaces(ctx, "openai.chat.completions");
  const t = { ctx, base, key };
  const res = await call(t, "GET", "/account/keys", key);
  const text = await bodyText(res);
  if (res.status === 404) skip("the hub answers 404 on GET /v1/account/keys: it offers no spending controls on API keys (SRP-CON-083)");
  ensure(res.status === 200, `GET /v1/account/keys with the account's key answered ${res.status}: ${text.slice(0, 200)}`);
  return t;
}

/** Creates a key with `policy` (revoked when the check ends); fails the check unless the hub answers 201 with its secret. */
async function createKey(t: KeysTarget, policy: Json): Promise<CreatedKey> {
  const res = await call(t, "POST", "/account/keys", t.key, policy);
  const body = await json(res, "POST /v1/account/keys");
  ensure(
    res.status === 201,
    `POST /v1/account/keys ${JSON.stringify(policy)} answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`,
  );
  ensure(
    typeof body.id === "string" && typeof body.api_key === "string",
    `the created key has no string \`id\` and \`api_key\`: ${JSON.stringify(body).slice(0, 300)}`,
  );
  const created = { id: body.id, secret: body.api_key, body };
  t.ctx.tracker.cleanups.push(async () => {
    await call(t, "DELETE", `/account/keys/${encodeURIComponent(created.id)}`, t.key).then(
      (r) => r.body?.cancel(),
      () => undefined,
    );
  });
  return created;
}

/** The account's `held` money in atomic units, or a skip when the hub keeps no ledger (`GET /v1/account` 404). */
async function heldUnits(t: KeysTarget): Promise<bigint> {
  const res = await call(t, "GET", "/account", t.key);
  if (res.status === 404) {
    await bodyText(res);
    skip("the hub answers 404 on GET /v1/account: it keeps no ledger, so it bills nothing and no budget applies");
  }
  const body = await json(res, "GET /v1/account");
  const units = (body.held as { units?: unknown } | undefined)?.units;
  ensure(typeof units === "string" && /^[0-9]+$/.test(units), `GET /v1/account has no held.units: ${JSON.stringify(body).slice(0, 300)}`);
  return BigInt(units);
}

/** The worst case of `body` in atomic units, as `POST /v1/estimate` answers it for `key` (SRP-BIL-003). */
async function worstCase(t: KeysTarget, key: string, body: Json): Promise<bigint> {
  const res = await call(t, "POST", "/estimate", key, body);
  const answer = await json(res, "POST /v1/estimate");
  const units = (answer.maximum as { units?: unknown } | undefined)?.units;
  ensure(
    res.status === 200 && typeof units === "string" && /^[1-9][0-9]*$/.test(units),
    `POST /v1/estimate answered ${res.status} without a positive maximum.units: ${JSON.stringify(answer).slice(0, 300)}`,
  );
  return BigInt(units);
}

/** A short chat body for `model`. */
const chat = (model: string, extra: Json = {}): Json => ({
  model,
  messages: [{ role: "user", content: "Conformance: spending controls." }],
  max_tokens: 4,
  ...extra,
});

/** Posts a chat completion as `key` (a key a check created). */
const postAs = (t: KeysTarget, key: string, body: Json): ConsumerCall => postChat(t.ctx.tracker, t.base, key, body);

/** Serves one request as `key` through the harness node and returns its answer (status 200 required). */
async function served(t: KeysTarget, node: HarnessNode, key: string, body: Json, what: string): Promise<Response> {
  const request = postAs(t, key, body);
  const job = await node.nextJob(request);
  await node.countersigned(node.responseAnswer(job, "served").receipt);
  const res = await within(request.response, ANSWER_MS, what);
  if (res.status !== 200) fail(`${what} answered ${res.status}: ${(await bodyText(res)).slice(0, 300)}`);
  return res;
}

/** A problem when a job reached `node` beyond the `expected` it had received (checked a moment after a refusal). */
async function noNewJob(node: HarnessNode, expected: number, what: string): Promise<string | undefined> {
  await sleep(SETTLE_MS);
  const got = node.peer.matching(isJob).length;
  return got > expected ? `${what}: a job reached the node although the request was refused` : undefined;
}

/** `policy` member `name` of a key as the hub shows it. */
const member = (key: Json, name: string) => key[name] as Json | null | undefined;

/** Hub-mode checks of API keys' spending controls, in run order. */
export const HUB_KEYS_CHECKS: Check<HubContext>[] = [
  check(
    "hub.keys.manage",
    "An account's owner creates a key with a policy (its secret answered once), lists the account's keys without secrets, patches one (null clears a member), revokes it; an unknown key id is 404 api.not_found, a body that is not a policy 400 api.invalid_body",
    ["SRP-CON-083"],
    "SHOULD",
    async (ctx): Promise<CheckVerdict> => {
      const t = await keysTarget(ctx);
      const model = newModel();
      const problems: (string | undefined)[] = [];
      const policy = {
        label: "conformance",
        tags: ["conformance", "team:spec"],
        models: [model],
        budget: { total: { units: "1000000" }, day: null, month: { usd: "2" } },
        limits: { rpm: 100, tpm: null, concurrency: 3 },
      };
      const made = await createKey(t, policy);
      const b = made.body;
      const budget = member(b, "budget");
      const limits = member(b, "limits");
      if (JSON.stringify(b.tags) !== JSON.stringify(policy.tags)) problems.push(`the created key's tags are ${JSON.stringify(b.tags)}`);
      if (JSON.stringify(b.models) !== JSON.stringify([model])) problems.push(`the created key's models are ${JSON.stringify(b.models)}`);
      if ((budget?.total as Json | null | undefined)?.units !== "1000000")
        problems.push(`the created key's budget.total is ${JSON.stringify(budget?.total)}, not 1000000 units`);
      if ((budget?.month as Json | null | undefined)?.units !== "2000000")
        problems.push(`the created key's budget.month is ${JSON.stringify(budget?.month)}, not USD 2 (2000000 units)`);
      if (budget?.day !== null) problems.push(`the created key's budget.day is ${JSON.stringify(budget?.day)}, not null`);
      if (limits?.rpm !== 100 || limits?.concurrency !== 3 || limits?.tpm !== null)
        problems.push(`the created key's limits are ${JSON.stringify(limits)}`);

      // Listed, never with a secret; any live key of the account manages its keys.
      const listed = await call(t, "GET", "/account/keys", made.secret);
      const listText = await bodyText(listed);
      if (listed.status !== 200)
        problems.push(`GET /v1/account/keys with the new key answered ${listed.status}: ${listText.slice(0, 200)}`);
      else {
        const data = (JSON.parse(listText) as { data?: Json[] }).data;
        if (!Array.isArray(data) || !data.some((k) => k.id === made.id)) problems.push("GET /v1/account/keys does not list the new key");
        if (listText.includes(made.secret) || listText.includes(t.key)) problems.push("GET /v1/account/keys shows a key's secret");
      }

      // PATCH: members given replace the key's, null clears one, the rest stays.
      const patched = await call(t, "PATCH", `/account/keys/${encodeURIComponent(made.id)}`, t.key, {
        models: null,
        limits: { rpm: null },
      });
      const p = await json(patched, "PATCH /v1/account/keys/{id}");
      if (patched.status !== 200)
        problems.push(`PATCH /v1/account/keys/{id} answered ${patched.status}: ${JSON.stringify(p).slice(0, 200)}`);
      else {
        if (p.models !== null) problems.push(`after PATCH {"models": null} the key's models are ${JSON.stringify(p.models)}, not null`);
        const pl = member(p, "limits");
        if (pl?.rpm !== null) problems.push(`after PATCH {"limits": {"rpm": null}} limits.rpm is ${JSON.stringify(pl?.rpm)}, not null`);
        if (pl?.concurrency !== 3) problems.push(`PATCH of limits.rpm changed limits.concurrency to ${JSON.stringify(pl?.concurrency)}`);
        if ((member(p, "budget")?.total as Json | null | undefined)?.units !== "1000000")
          problems.push("PATCH of models and limits changed budget.total");
        if (JSON.stringify(p.tags) !== JSON.stringify(policy.tags))
          problems.push(`PATCH of other members changed tags to ${JSON.stringify(p.tags)}`);
      }

      // Bodies that are not a policy.
      for (const bad of [
        { limits: { rpm: 0 } },
        { tags: ["not a tag!"] },
        { budget: { total: { units: "-5" } } },
        { expires_at: "soon" },
      ]) {
        const res = await call(t, "POST", "/account/keys", t.key, bad);
        if (res.status === 201) {
          const id = (await json(res, "POST /v1/account/keys")).id;
          if (typeof id === "string") await call(t, "DELETE", `/account/keys/${encodeURIComponent(id)}`, t.key).then((r) => bodyText(r));
          problems.push(`POST /v1/account/keys ${JSON.stringify(bad)} created a key`);
        } else problems.push(await errorProblem(res, `POST /v1/account/keys ${JSON.stringify(bad)}`, 400, "api.invalid_body"));
      }
      const badPatch = await call(t, "PATCH", `/account/keys/${encodeURIComponent(made.id)}`, t.key, { limits: { concurrency: 0 } });
      problems.push(await errorProblem(badPatch, "PATCH /v1/account/keys/{id} {limits: {concurrency: 0}}", 400, "api.invalid_body"));

      // A key id that is not the account's.
      const unknown = `key_conformance_${hex(8)}`;
      const pu = await call(t, "PATCH", `/account/keys/${unknown}`, t.key, { label: "x" });
      problems.push(await errorProblem(pu, "PATCH of an unknown key id", 404, "api.not_found"));
      const du = await call(t, "DELETE", `/account/keys/${unknown}`, t.key);
      problems.push(await errorProblem(du, "DELETE of an unknown key id", 404, "api.not_found"));

      // Spending per key and per tag.
      for (const by of ["key", "tag"]) {
        const res = await call(t, "GET", `/account/spend?by=${by}`, t.key);
        const body = await json(res, `GET /v1/account/spend?by=${by}`);
        if (res.status !== 200 || !Array.isArray(body.data))
          problems.push(`GET /v1/account/spend?by=${by} answered ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
      }

      // Revoked: the key no longer authenticates.
      const del = await call(t, "DELETE", `/account/keys/${encodeURIComponent(made.id)}`, t.key);
      const delText = await bodyText(del);
      if (del.status !== 200) problems.push(`DELETE /v1/account/keys/{id} answered ${del.status}: ${delText.slice(0, 200)}`);
      else {
        const after = await call(t, "GET", "/account/keys", made.secret);
        await bodyText(after);
        if (after.status !== 401) problems.push(`the revoked key still authenticates: GET /v1/account/keys answered ${after.status}`);
      }
      reportProblems(problems);
    },
  ),
  check(
    "hub.keys.expired",
    "A key past its expires_at is refused with 401 api.key_expired on a chat completion, on GET /v1/account and on key management; no job reaches a node",
    ["SRP-CON-084"],
    "MUST",
    async (ctx) => {
      const t = await keysTarget(ctx);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const expired = await createKey(t, { label: "conformance expired", expires_at: Date.now() - 60_000 });
      const problems: (string | undefined)[] = [];
      const res = await within(
        postAs(t, expired.secret, chat(model)).response,
        ANSWER_MS,
        "the answer to a chat completion with an expired key",
      );
      problems.push(await errorProblem(res, "a chat completion with an expired key", 401, "api.key_expired"));
      problems.push(await noNewJob(node, 0, "a chat completion with an expired key"));
      for (const path of ["/account", "/account/keys"]) {
        const r = await call(t, "GET", path, expired.secret);
        problems.push(await errorProblem(r, `GET /v1${path} with an expired key`, 401, "api.key_expired"));
      }
      reportProblems(problems);
    },
  ),
  check(
    "hub.keys.budget_refused",
    "A request whose worst case does not fit its key's total budget is refused with 402 api.key_budget_exceeded naming the period, holding nothing and sending no job",
    ["SRP-CON-085"],
    "MUST",
    async (ctx) => {
      const t = await keysTarget(ctx);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const before = await heldUnits(t);
      const tiny = await createKey(t, { label: "conformance budget", budget: { total: { units: "1" } } });
      const res = await within(postAs(t, tiny.secret, chat(model)).response, ANSWER_MS, "the answer to a request over its key's budget");
      const text = await bodyText(res);
      const problems: (string | undefined)[] = [];
      let code: unknown;
      let message: unknown;
      try {
        ({ code, message } = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error ?? {});
      } catch {
        code = undefined;
      }
      if (res.status !== 402 || code !== "api.key_budget_exceeded")
        problems.push(
          `a request over a key's total budget of 1 unit: status ${res.status} and code ${String(code)}, expected 402 api.key_budget_exceeded (${text.slice(0, 200)})`,
        );
      else if (typeof message !== "string" || !/\btotal\b/.test(message))
        problems.push(`the refusal's message does not name the period \`total\`: ${JSON.stringify(message)}`);
      problems.push(await noNewJob(node, 0, "a request over its key's budget"));
      const after = await heldUnits(t);
      if (after !== before) problems.push(`the account's held money went from ${before} to ${after} units with a refused request`);
      reportProblems(problems);
    },
  ),
  check(
    "hub.keys.budget_one_request",
    "A key whose total budget is exactly one request's worst case (POST /v1/estimate) is served once, then refused with 402 api.key_budget_exceeded without a job",
    ["SRP-CON-085"],
    "MUST",
    async (ctx) => {
      const t = await keysTarget(ctx);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      await heldUnits(t);
      const body = chat(model);
      const probe = await createKey(t, { label: "conformance estimate" });
      const worst = await worstCase(t, probe.secret, body);
      const key = await createKey(t, { label: "conformance one request", budget: { total: { units: worst.toString() } } });
      await bodyText(await served(t, node, key.secret, body, "the first request within its key's budget of one worst case"));
      const second = await within(postAs(t, key.secret, body).response, ANSWER_MS, "the answer to the second request");
      reportProblems([
        await errorProblem(
          second,
          `a second request once the first was charged against a budget of one worst case (${worst} units)`,
          402,
          "api.key_budget_exceeded",
        ),
        await noNewJob(node, 1, "the second request over its key's budget"),
      ]);
    },
  ),
  check(
    "hub.keys.models",
    "A key that lists models is served for a listed model and refused with 403 api.model_not_allowed, sending no job, for another model and for a fallback list naming one",
    ["SRP-CON-086"],
    "MUST",
    async (ctx) => {
      const t = await keysTarget(ctx);
      const allowed = newModel();
      const other = newModel();
      const node = await HarnessNode.open(ctx, [instance(allowed), instance(other)]);
      const key = await createKey(t, { label: "conformance models", models: [allowed] });
      await bodyText(await served(t, node, key.secret, chat(allowed), "a request for the model the key lists"));
      const problems: (string | undefined)[] = [];
      for (const [what, body] of [
        ["a request for a model the key does not list", chat(other)],
        ["a request whose fallback list names a model the key does not list", chat(allowed, { models: [allowed, other] })],
      ] as const) {
        const res = await within(postAs(t, key.secret, body).response, ANSWER_MS, `the answer to ${what}`);
        problems.push(await errorProblem(res, what, 403, "api.model_not_allowed"));
        problems.push(await noNewJob(node, 1, what));
      }
      reportProblems(problems);
    },
  ),
  check(
    "hub.keys.rate_limit",
    "A key limited to 2 requests per minute has its third refused with 429 api.rate_limited and a Retry-After of whole seconds >= 1, sending no job; answers carry x-ratelimit-limit-requests and x-ratelimit-remaining-requests (a warning without them)",
    ["SRP-CON-087"],
    "MUST",
    async (ctx): Promise<CheckVerdict> => {
      const t = await keysTarget(ctx);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const key = await createKey(t, { label: "conformance rate", limits: { rpm: 2 } });
      const headerProblems: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await served(t, node, key.secret, chat(model), `request ${i + 1} of 2 within the key's 2 requests per minute`);
        await bodyText(res);
        const limit = res.headers.get("x-ratelimit-limit-requests");
        const remaining = res.headers.get("x-ratelimit-remaining-requests");
        if (limit !== "2") headerProblems.push(`admitted answer ${i + 1}: x-ratelimit-limit-requests is ${JSON.stringify(limit)}, not "2"`);
        if (remaining !== String(1 - i))
          headerProblems.push(`admitted answer ${i + 1}: x-ratelimit-remaining-requests is ${JSON.stringify(remaining)}, not "${1 - i}"`);
      }
      const over = await within(postAs(t, key.secret, chat(model)).response, ANSWER_MS, "the answer to the third request");
      const retry = over.headers.get("retry-after");
      const problems: (string | undefined)[] = [
        await errorProblem(over, "the third request within a minute to a key limited to 2 per minute", 429, "api.rate_limited"),
      ];
      if (over.status === 429 && (retry === null || !/^[1-9][0-9]*$/.test(retry)))
        problems.push(`the 429's Retry-After is ${JSON.stringify(retry)}, not whole seconds of at least 1`);
      problems.push(await noNewJob(node, 2, "the request over its key's rate limit"));
      reportProblems(problems);
      if (over.headers.get("x-ratelimit-limit-requests") !== "2")
        headerProblems.push(
          `the 429's x-ratelimit-limit-requests is ${JSON.stringify(over.headers.get("x-ratelimit-limit-requests"))}, not "2"`,
        );
      if (over.headers.get("x-ratelimit-remaining-requests") !== "0")
        headerProblems.push(
          `the 429's x-ratelimit-remaining-requests is ${JSON.stringify(over.headers.get("x-ratelimit-remaining-requests"))}, not "0"`,
        );
      if (headerProblems.length > 0) return { status: "warning", details: `${headerProblems.join("; ")} (SHOULD, SRP-CON-087)` };
    },
  ),
];
