/**
 * Hub-mode checks of a session's edges: an `auth` addressed to another hub or answering a
 * nonce the hub never issued, a binary frame, a node's `goodbye`, the handshake and
 * heartbeat timers; and of two consumer answers about what the hub holds: the catalog
 * (`GET /v1/models`) and a stored receipt (`GET /v1/receipts/{id}`).
 */
import { canonicalize, createAuth, generateIdentity, omitFields, signDetached, verifyReceipt, type Identity } from "@srp/core";
import type { Auth, Receipt } from "@srp/core/schema";
import type { Check } from "../types.js";
import { check } from "../harness/check.js";
import { bodyText, within } from "../harness/consumer.js";
import { connect, discovery, type HubContext, needKey, openSession, stillServing } from "../harness/hub-session.js";
import { ASK, instance, newModel } from "../harness/instances.js";
import { HarnessNode } from "../harness/node.js";
import { ensure, fail, skip } from "../harness/verdict.js";
import { expectRejection, type WirePeer } from "../harness/wire.js";

/** The handshake time limit of SRP-HS-005. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** The longest a timer check waits for a hub's timer; a hub whose timer is longer skips it. */
export const MAX_TIMER_WAIT_MS = 15_000;
/** Leeway on top of a timer before a check counts the hub late. */
const TIMER_SLACK_MS = 2_000;

/** An auth answering `hello`, with `changes` applied and signed again by the node. */
function alteredAuth(
  ctx: HubContext,
  hello: Parameters<typeof createAuth>[0]["hello"],
  identity: Identity,
  changes: Partial<Auth>,
): Record<string, unknown> {
  const auth = createAuth({ identity, hello, account: { kind: "api_key", key: needKey(ctx) } });
  const unsigned = omitFields({ ...auth, ...changes }, "sig");
  return { ...unsigned, sig: signDetached("auth", unsigned, identity) };
}

/** Sends a correctly signed auth with `changes` and expects `code` with close 4401. */
async function rejectsAltered(ctx: HubContext, changes: Partial<Auth>, code: string): Promise<void> {
  const identity = generateIdentity();
  const { peer, hello } = await connect(ctx);
  peer.send(alteredAuth(ctx, hello, identity, changes));
  const problem = await expectRejection(peer, code, 4401);
  if (problem) fail(problem);
}

/** Sends a binary frame and expects frame.binary with close 1003. */
async function rejectsBinary(peer: WirePeer, when: string): Promise<void> {
  peer.sendRaw(Buffer.from('{"type":"heartbeat","ts":0,"load":[]}'));
  const problem = await expectRejection(peer, "frame.binary", 1003);
  if (problem) fail(`${when}: ${problem}`);
}

/** The consumer base URL for `surface`, or a skip when the discovery document does not list it. */
async function surfaceBase(ctx: HubContext, surface: string): Promise<string> {
  const doc = await discovery(ctx);
  if (!doc.consumer?.surfaces.includes(surface)) skip(`the discovery document does not list the ${surface} consumer surface`);
  return doc.consumer.baseUrl.replace(/\/+$/, "");
}

/** The catalog's model ids. */
async function catalogIds(ctx: HubContext, base: string): Promise<string[]> {
  const res = await fetch(`${base}/models`, { headers: { authorization: `Bearer ${ctx.accountKey ?? ""}` } });
  ensure(res.ok, `GET /v1/models answered ${res.status}`);
  const list = (await res.json()) as { data?: { id?: unknown }[] };
  return (list.data ?? []).map((m) => String(m.id));
}

/** Problems with one `GET /v1/models` entry (SRP-CON-001: the OpenAI model object; SRP-CON-018: quantizations, aliases). */
export function modelEntryProblems(entry: unknown): string[] {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return [`entry ${JSON.stringify(entry)} is not an object`];
  const m = entry as Record<string, unknown>;
  const name = typeof m.id === "string" ? m.id : JSON.stringify(m.id);
  const problems: string[] = [];
  if (typeof m.id !== "string" || m.id === "") problems.push(`entry id ${name} is not a non-empty string`);
  if (m.object !== "model") problems.push(`${name}: object is ${JSON.stringify(m.object)}, not "model"`);
  if (!Number.isInteger(m.created)) problems.push(`${name}: created ${JSON.stringify(m.created)} is not an integer (Unix seconds)`);
  if (typeof m.owned_by !== "string") problems.push(`${name}: owned_by is not a string`);
  for (const k of ["quantizations", "aliases"] as const) {
    const v = m[k];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
      problems.push(`${name}: ${k} ${JSON.stringify(v)} is not an array of strings`);
  }
  return problems;
}

/** Hub-mode checks of handshake edges, binary frames, goodbye and the hub's timers. */
export const HUB_LIFECYCLE_CHECKS: Check<HubContext>[] = [
  check(
    "hub.auth.wrong_hub",
    "Rejects a correctly signed auth naming another hub id with auth.wrong_hub and closes with 4401",
    ["SRP-AUTH-004", "SRP-AUTH-005"],
    "MUST",
    // Another hub's id: the check precedes the nonce, timestamp and signature checks.
    (ctx) => rejectsAltered(ctx, { hubId: generateIdentity().id }, "auth.wrong_hub"),
  ),
  check(
    "hub.auth.nonce_mismatch",
    "Rejects a correctly signed auth answering a nonce the hub never issued with auth.nonce_mismatch and closes with 4401",
    ["SRP-AUTH-003", "SRP-AUTH-005"],
    "MUST",
    // 32 random bytes in the nonce encoding (an id has the same shape).
    (ctx) => rejectsAltered(ctx, { nonce: generateIdentity().id }, "auth.nonce_mismatch"),
  ),
  {
    id: "hub.frame.binary",
    title: "Answers a binary frame, before and after the handshake, with frame.binary and closes with 1003",
    requirements: ["SRP-FRM-002", "SRP-FRM-005", "SRP-TR-002"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await connect(ctx);
      await rejectsBinary(peer, "before auth");
      if (!ctx.accountKey) return { status: "pass", details: "checked before auth only (no --account-key for a session)" };
      const open = await openSession(ctx);
      await rejectsBinary(open.peer, "after welcome");
    },
  },
  check(
    "hub.session.goodbye",
    "Closes a session whose node says goodbye with 1000 and no error; its offers end with it, and the node's next session is not a replacement",
    ["SRP-TR-014", "SRP-HS-008", "SRP-FRM-006", "SRP-HS-022"],
    "MUST",
    async (ctx) => {
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const base = node.consumer.replace(/\/+$/, "");
      const bystander = await openSession(ctx);
      ensure((await catalogIds(ctx, base)).includes(model), `GET /v1/models does not list the offered model ${model}`);
      const from = node.peer.received.length;
      node.peer.send({ type: "goodbye", reason: "conformance: leaving" });
      const closed = await node.peer.closedWithin(5000);
      const problems: string[] = [];
      if (!closed) problems.push("the hub did not close the session within 5 s of goodbye");
      else if (closed.code !== 1000) problems.push(`the hub closed with ${closed.code} ${closed.reason}, expected 1000`);
      const errors = node.peer.matching((m) => m.type === "error", from);
      if (errors.length) problems.push(`the hub answered goodbye with error ${String(errors[0]!.code)}`);
      if (!closed) node.peer.close();
      // The session is over: its instance leaves the catalog (the close may take a moment to be handled).
      let listed = true;
      for (let i = 0; i < 20 && listed; i++) {
        listed = (await catalogIds(ctx, base)).includes(model);
        if (listed) await new Promise((r) => setTimeout(r, 100));
      }
      if (listed) problems.push(`GET /v1/models still lists ${model}, offered only by the session that ended`);
      const again = await openSession(ctx, node.identity);
      if (again.welcome.replaced !== false)
        problems.push("the node's next session has welcome.replaced true: the goodbye session was kept");
      await stillServing(again.peer, "the node's next session");
      await stillServing(bystander.peer);
      if (problems.length) fail(problems.join("; "));
    },
  ),
  {
    id: "hub.handshake.timeout",
    title: "Closes a connection that sends no auth within 10 s of the upgrade with protocol.handshake_timeout and 4408",
    requirements: ["SRP-HS-005"],
    level: "MUST",
    async run(ctx) {
      const { peer } = await connect(ctx);
      const problem = await expectRejection(peer, "protocol.handshake_timeout", 4408, HANDSHAKE_TIMEOUT_MS + TIMER_SLACK_MS);
      if (problem) fail(problem);
    },
  },
  check(
    "hub.session.heartbeat_timeout",
    `Closes a session that sends nothing for three heartbeat intervals with protocol.heartbeat_timeout and 4408 (skipped when that is over ${MAX_TIMER_WAIT_MS / 1000} s)`,
    ["SRP-LIV-002"],
    "MUST",
    async (ctx) => {
      const { peer, welcome } = await openSession(ctx);
      const interval = Number(welcome.heartbeatIntervalMs);
      if (3 * interval > MAX_TIMER_WAIT_MS)
        skip(`welcome.heartbeatIntervalMs is ${interval}: three intervals are longer than the ${MAX_TIMER_WAIT_MS} ms this check waits`);
      const problem = await expectRejection(peer, "protocol.heartbeat_timeout", 4408, 3 * interval + TIMER_SLACK_MS);
      if (problem) fail(problem);
    },
  ),
];

/** Hub-mode checks of the consumer answers about the catalog and stored receipts. */
export const HUB_RECORD_CHECKS: Check<HubContext>[] = [
  check(
    "hub.consumer.models.list",
    "Answers GET /v1/models with an OpenAI model list carrying aliases_version, one entry per model id, each with quantizations and aliases, the offered model included",
    ["SRP-CON-001", "SRP-CON-018"],
    "MUST",
    async (ctx) => {
      const base = await surfaceBase(ctx, "openai.models");
      const model = newModel();
      await HarnessNode.open(ctx, [instance(model)]);
      const res = await fetch(`${base}/models`, { headers: { authorization: `Bearer ${ctx.accountKey ?? ""}` } });
      if (res.status !== 200) fail(`GET /v1/models answered ${res.status}: ${(await bodyText(res).catch(() => "")).slice(0, 200)}`);
      ensure(
        (res.headers.get("content-type") ?? "").startsWith("application/json"),
        `GET /v1/models answered content-type ${res.headers.get("content-type")}`,
      );
      const list = (await res.json()) as Record<string, unknown>;
      const problems: string[] = [];
      if (list.object !== "list") problems.push(`object is ${JSON.stringify(list.object)}, not "list"`);
      if (typeof list.aliases_version !== "string") problems.push("the list carries no aliases_version string");
      if (!Array.isArray(list.data)) fail(`data is ${JSON.stringify(list.data)?.slice(0, 80)}, not an array`);
      for (const entry of list.data) problems.push(...modelEntryProblems(entry));
      const ids = list.data.map((m) => (m as { id?: unknown }).id);
      const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
      if (twice.length) problems.push(`ids listed more than once: ${JSON.stringify([...new Set(twice)])}`);
      if (!ids.includes(model)) problems.push(`the offered model ${model} is not listed`);
      if (problems.length) fail(problems.join("; "));
    },
  ),
  check(
    "hub.consumer.receipt",
    "Serves the countersigned receipt named by usage.receipt_id at GET /v1/receipts/{id} to the paying account: unchanged, node and hub signatures verifying",
    ["SRP-ATT-012", "SRP-CON-002"],
    "SHOULD",
    async (ctx) => {
      const base = await surfaceBase(ctx, "srp.receipts");
      const model = newModel();
      const node = await HarnessNode.open(ctx, [instance(model)]);
      const call = node.chat({ model, messages: ASK, max_tokens: 16 });
      const job = await node.nextJob(call);
      const { receipt: sent } = node.responseAnswer(job, "Hi there!");
      const countersigned = await node.countersigned(sent);
      const res = await within(call.response, 5000, "the consumer's response");
      if (res.status !== 200)
        fail(`the consumer's request was answered ${res.status}: ${(await bodyText(res).catch(() => "")).slice(0, 200)}`);
      const id = ((await res.json()) as { usage?: { receipt_id?: unknown } }).usage?.receipt_id;
      ensure(
        typeof id === "string" && id !== "",
        `usage.receipt_id is ${JSON.stringify(id)} for an answer backed by a countersigned receipt`,
      );
      const got = await fetch(`${base}/receipts/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${node.key}` } });
      if (got.status !== 200) fail(`GET /v1/receipts/${id} answered ${got.status}: ${(await bodyText(got).catch(() => "")).slice(0, 200)}`);
      const stored = ((await got.json()) as { receipt?: Receipt }).receipt;
      ensure(stored !== undefined && typeof stored === "object", `GET /v1/receipts/${id} has no member receipt`);
      const problems: string[] = [];
      if (canonicalize(stored) !== canonicalize(countersigned))
        problems.push(`the stored receipt differs from the one countersigned on the session: ${canonicalize(stored).slice(0, 300)}`);
      for (const p of verifyReceipt(stored, { hubId: node.hello.hubId, nodeId: node.identity.id }))
        problems.push(`${p.code}: ${p.message}`);
      if (problems.length) fail(problems.join("; "));
    },
  ),
];
