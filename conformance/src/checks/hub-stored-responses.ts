/**
 * Hub-mode checks of stored responses (spec/v1/consumer.md, "Stored responses"): the
 * harness is the provider node serving a model nobody else serves (a plain chat instance,
 * so the hub translates each Responses request into a chat job) and the consumer, which
 * creates responses with `POST /v1/responses`, then reads, lists and deletes them.
 * Each check runs when the discovery document lists `openai.responses`.
 */
import { canonicalize, randomBytes, toHex } from "@srp/core";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { errorProblem, json, post as consumerPost, reportProblems, surfaces, within } from "../harness/consumer.js";
import type { HubContext } from "../harness/hub-session.js";
import { instance, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { ensure, fail } from "../harness/verdict.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The surface these checks need. */
const SURFACE = "openai.responses";

/** Calls `path` of the consumer API with `method`, with the harness's key unless `key` says otherwise (null: no key), 5 s at most. */
function call(base: string, path: string, key: string | null, method = "GET", body?: Json): Promise<Response> {
  const headers: Record<string, string> = key === null ? {} : { authorization: `Bearer ${key}` };
  if (body) headers["content-type"] = "application/json";
  return fetch(`${base}${path}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(5000) });
}

/** Creates a response through `POST /v1/responses` (not streamed), the harness's node answering `answer`; returns the Response object. */
async function create(ctx: HubContext, base: string, node: HarnessNode, body: Json, answer: string): Promise<Json> {
  const pending = consumerPost(ctx, base, "/responses", body, {}, "bearer");
  const job = await node.nextJob(pending);
  await node.countersigned(node.responseAnswer(job, answer).receipt);
  const res = await within(pending.response, 5000, "POST /v1/responses");
  const created = await json(res, "POST /v1/responses");
  ensure(res.status === 200, `POST /v1/responses answered ${res.status}: ${JSON.stringify(created).slice(0, 300)}`);
  ensure(
    typeof created.id === "string" && created.object === "response",
    `POST /v1/responses answered no Response object (id ${JSON.stringify(created.id)}, object ${JSON.stringify(created.object)})`,
  );
  return created;
}

/** `GET /v1/responses/{id}` until it is no longer 404 (a hub may store a turn just after answering it), at most 2 s. */
async function retrieve(ctx: HubContext, base: string, id: string): Promise<Response> {
  const until = Date.now() + 2000;
  for (;;) {
    const res = await call(base, `/responses/${encodeURIComponent(id)}`, ctx.accountKey ?? "");
    if (res.status !== 404 || Date.now() >= until) return res;
    await res.body?.cancel();
    await sleep(100);
  }
}

/** The text of an item's content: a string, or its parts' texts joined. */
function itemText(item: Json): string {
  const c = item.content;
  if (typeof c === "string") return c;
  return Array.isArray(c) ? c.map((p) => (isObject(p) && typeof p.text === "string" ? p.text : "")).join("") : "";
}

/** An id no response has. */
const unknownId = () => `resp_${toHex(randomBytes(12))}`;

/** Hub-mode checks of stored responses, in run order. */
export const HUB_STORED_RESPONSES_CHECKS: Check<HubContext>[] = [
  check(
    "hub.responses.stored",
    "Stores a response by default and serves it at GET /v1/responses/{id} exactly as answered; keeps nothing of a store:false request; refuses other methods with 405 and Allow",
    ["SRP-CON-050", "SRP-CON-053"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, SURFACE);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const unkept = await create(ctx, base, node, { model, input: "Conformance: do not keep this.", store: false }, "Not kept.");
      const kept = await create(ctx, base, node, { model, input: "Conformance: keep this." }, "Kept.");
      const res = await retrieve(ctx, base, kept.id as string);
      const got = await json(res, `GET /v1/responses/${String(kept.id)}`);
      ensure(
        res.status === 200,
        `GET /v1/responses/${String(kept.id)} of a stored response answered ${res.status}: ${JSON.stringify(got).slice(0, 300)}`,
      );
      const differ = [...new Set([...Object.keys(kept), ...Object.keys(got)])].filter(
        (k) => canonicalize(kept[k] ?? null) !== canonicalize(got[k] ?? null),
      );
      const problems: (string | undefined)[] = [];
      if (differ.length > 0)
        problems.push(`GET /v1/responses/${String(kept.id)} differs from the Response object answered at creation in ${differ.join(", ")}`);
      problems.push(
        await errorProblem(
          await call(base, `/responses/${String(unkept.id)}`, ctx.accountKey ?? ""),
          `GET of the store:false response ${String(unkept.id)}`,
          404,
          "api.not_found",
        ),
      );
      const put = await call(base, `/responses/${String(kept.id)}`, ctx.accountKey ?? "", "PUT", {});
      await put.body?.cancel();
      const allow = (put.headers.get("allow") ?? "")
        .split(",")
        .map((m) => m.trim().toUpperCase())
        .sort()
        .join(", ");
      if (put.status !== 405 || allow !== "DELETE, GET")
        problems.push(
          `PUT /v1/responses/{id} answered ${put.status} with Allow ${JSON.stringify(put.headers.get("allow"))}, expected 405 with GET, DELETE`,
        );
      reportProblems(problems);
    },
  ),
  check(
    "hub.responses.own_account",
    "Serves stored responses to an API key only, answering another or unknown id as api.not_found",
    ["SRP-CON-051"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, SURFACE);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const kept = await create(ctx, base, node, { model, input: "Conformance: mine only." }, "Yours.");
      const id = encodeURIComponent(kept.id as string);
      const own = await retrieve(ctx, base, kept.id as string);
      await own.body?.cancel();
      ensure(own.status === 200, `GET /v1/responses/${id} with the account's key answered ${own.status}`);
      const stranger = `srp_conformance_unknown_${toHex(randomBytes(8))}`;
      reportProblems([
        await errorProblem(await call(base, `/responses/${id}`, null), "GET /v1/responses/{id} without a key", 401, "api.unauthorized"),
        await errorProblem(
          await call(base, `/responses/${id}`, stranger),
          "GET /v1/responses/{id} with a key the hub does not know",
          401,
          "api.unauthorized",
        ),
        await errorProblem(
          await call(base, `/responses/${id}/input_items`, null),
          "GET /v1/responses/{id}/input_items without a key",
          401,
          "api.unauthorized",
        ),
        await errorProblem(
          await call(base, `/responses/${id}`, null, "DELETE"),
          "DELETE /v1/responses/{id} without a key",
          401,
          "api.unauthorized",
        ),
        await errorProblem(
          await call(base, `/responses/${unknownId()}`, ctx.accountKey ?? ""),
          "GET /v1/responses/{id} of an id never created",
          404,
          "api.not_found",
        ),
      ]);
      const still = await call(base, `/responses/${id}`, ctx.accountKey ?? "");
      await still.body?.cancel();
      ensure(still.status === 200, `the response is gone (${still.status}) after a DELETE without a key`);
    },
  ),
  check(
    "hub.responses.input_items",
    "Lists a response's input items with ids, newest first by default, in pages of limit with after, oldest first with order=asc",
    ["SRP-CON-054"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, SURFACE);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const input = [
        { role: "user", content: "Conformance: first." },
        { type: "message", role: "assistant", content: "Conformance: second." },
        { role: "user", content: "Conformance: third." },
      ];
      const kept = await create(ctx, base, node, { model, input }, "Listed.");
      const path = `/responses/${encodeURIComponent(kept.id as string)}/input_items`;
      await (await retrieve(ctx, base, kept.id as string)).body?.cancel();
      const page = async (query: string): Promise<Json> => {
        const res = await call(base, `${path}${query}`, ctx.accountKey ?? "");
        const body = await json(res, `GET ${path}${query}`);
        ensure(res.status === 200, `GET ${path}${query} answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
        ensure(
          body.object === "list" && Array.isArray(body.data) && typeof body.has_more === "boolean",
          `GET ${path}${query} is not a list object ({object: "list", data, first_id, last_id, has_more}): ${JSON.stringify(body).slice(0, 300)}`,
        );
        return body;
      };
      const problems: (string | undefined)[] = [];
      const texts = (b: Json) => (b.data as Json[]).map(itemText);
      const ids = (b: Json) => (b.data as Json[]).map((i) => i.id);
      const all = await page("");
      const want = ["Conformance: third.", "Conformance: second.", "Conformance: first."];
      if (canonicalize(texts(all)) !== canonicalize(want))
        problems.push(
          `the default page lists ${JSON.stringify(texts(all))}, expected the three input items newest first ${JSON.stringify(want)}`,
        );
      const allIds = ids(all);
      if (!allIds.every((i) => typeof i === "string" && i.length > 0) || new Set(allIds).size !== allIds.length)
        problems.push(`the input items' ids ${JSON.stringify(allIds)} are not distinct strings`);
      if (all.first_id !== allIds[0] || all.last_id !== allIds.at(-1) || all.has_more !== false)
        problems.push(
          `the default page has first_id ${JSON.stringify(all.first_id)}, last_id ${JSON.stringify(all.last_id)}, has_more ${String(all.has_more)}; expected ${JSON.stringify(allIds[0])}, ${JSON.stringify(allIds.at(-1))}, false`,
        );
      const asc = await page("?order=asc&include[]=message.input_image.image_url");
      if (canonicalize(ids(asc)) !== canonicalize([...allIds].reverse()))
        problems.push(`order=asc lists ${JSON.stringify(ids(asc))}, expected ${JSON.stringify([...allIds].reverse())}`);
      const first = await page("?limit=1");
      const second = await page(`?limit=1&after=${encodeURIComponent(String(allIds[0]))}`);
      const last = await page(`?limit=2&after=${encodeURIComponent(String(allIds[0]))}`);
      if (canonicalize(ids(first)) !== canonicalize([allIds[0]]) || first.has_more !== true)
        problems.push(
          `limit=1 lists ${JSON.stringify(ids(first))} with has_more ${String(first.has_more)}, expected [${JSON.stringify(allIds[0])}] with has_more true`,
        );
      if (canonicalize(ids(second)) !== canonicalize([allIds[1]]) || second.has_more !== true)
        problems.push(
          `limit=1&after=<first> lists ${JSON.stringify(ids(second))} with has_more ${String(second.has_more)}, expected [${JSON.stringify(allIds[1])}] with has_more true`,
        );
      if (canonicalize(ids(last)) !== canonicalize(allIds.slice(1)) || last.has_more !== false)
        problems.push(
          `limit=2&after=<first> lists ${JSON.stringify(ids(last))} with has_more ${String(last.has_more)}, expected ${JSON.stringify(allIds.slice(1))} with has_more false`,
        );
      problems.push(
        await errorProblem(await call(base, `${path}?limit=0`, ctx.accountKey ?? ""), "input_items?limit=0", 400, "api.invalid_body"),
      );
      problems.push(
        await errorProblem(await call(base, `${path}?limit=101`, ctx.accountKey ?? ""), "input_items?limit=101", 400, "api.invalid_body"),
      );
      const postRes = await call(base, path, ctx.accountKey ?? "", "POST", {});
      await postRes.body?.cancel();
      if (postRes.status !== 405 || postRes.headers.get("allow")?.trim().toUpperCase() !== "GET")
        problems.push(
          `POST ${path} answered ${postRes.status} with Allow ${JSON.stringify(postRes.headers.get("allow"))}, expected 405 with GET`,
        );
      reportProblems(problems);
    },
  ),
  check(
    "hub.responses.delete",
    "Deletes a stored response (answering {id, object: response, deleted: true}), after which it is api.not_found everywhere; refuses to continue a conversation missing a turn",
    ["SRP-CON-055", "SRP-CON-057"],
    "MUST",
    async (ctx) => {
      const base = await surfaces(ctx, SURFACE);
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const a = await create(ctx, base, node, { model, input: "Conformance: turn one." }, "One.");
      await (await retrieve(ctx, base, a.id as string)).body?.cancel();
      const b = await create(ctx, base, node, { model, input: "Conformance: turn two.", previous_response_id: a.id }, "Two.");
      await (await retrieve(ctx, base, b.id as string)).body?.cancel();
      const key = ctx.accountKey ?? "";
      const problems: (string | undefined)[] = [];
      const delA = await call(base, `/responses/${String(a.id)}`, key, "DELETE");
      const delABody = await json(delA, `DELETE /v1/responses/${String(a.id)}`);
      const expected = { id: a.id, object: "response", deleted: true };
      if (delA.status !== 200 || canonicalize(delABody) !== canonicalize(expected))
        problems.push(
          `DELETE /v1/responses/{id} answered ${delA.status} ${JSON.stringify(delABody)}, expected 200 ${JSON.stringify(expected)}`,
        );
      problems.push(await errorProblem(await call(base, `/responses/${String(a.id)}`, key), "GET after DELETE", 404, "api.not_found"));
      problems.push(
        await errorProblem(
          await call(base, `/responses/${String(a.id)}/input_items`, key),
          "GET input_items after DELETE",
          404,
          "api.not_found",
        ),
      );
      problems.push(
        await errorProblem(await call(base, `/responses/${String(a.id)}`, key, "DELETE"), "a second DELETE", 404, "api.not_found"),
      );
      // SRP-CON-057: neither the deleted turn nor a turn continuing it can be continued (no job may start).
      for (const [prev, what] of [
        [a.id, "previous_response_id naming a deleted response"],
        [b.id, "previous_response_id naming a response whose earlier turn was deleted"],
      ] as const) {
        const pending = consumerPost(
          ctx,
          base,
          "/responses",
          { model, input: "Conformance: continue.", previous_response_id: prev },
          {},
          "bearer",
        );
        const res = await within(pending.response, 5000, what).catch((e: Error) =>
          fail(`${what}: the hub did not answer within 5 s (${e.message})`),
        );
        problems.push(await errorProblem(res, what, 404, "api.not_found"));
      }
      reportProblems(problems);
    },
  ),
];
