/**
 * The harness hub's side of jobs in provider mode: accepting the provider's offer, sending
 * it chat jobs and collecting what the node sends back, the spec's rules for chunks, done
 * and receipts ({@link jobProblems}), countersigning receipts, and statements.
 */
import {
  addToTotals,
  canonicalize,
  formatAmount,
  INITIAL_POSITION,
  omitFields,
  parseAmount,
  receiptCost,
  requestHash,
  responseHash,
  signDetached,
  signStatement,
  StreamHasher,
  verifyDetached,
  type Identity,
  type ReceiptPosition,
} from "@srp/core";
import type { Instance, Job, Receipt, Statement } from "@srp/core/schema";
import type { FakeHub } from "./fake-hub.js";
import { hex } from "./instances.js";
import { authProblem, hello, openSession, type ProviderContext } from "./provider-session.js";
import { fail, skip } from "./verdict.js";
import { WireTimeoutError, type WirePeer } from "./wire.js";

const sameJson = (a: unknown, b: unknown) => canonicalize(a) === canonicalize(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The messages that end a job. */
export const JOB_END = new Set(["done", "job_error"]);
/** Whether a message is a chunk or the end of the job `jobId`. */
export const ofJob = (jobId: string) => (m: Record<string, unknown>) =>
  m.jobId === jobId && (m.type === "chunk" || JOB_END.has(m.type as string));

/** How long a provider has to send its offer after welcome. */
export const OFFER_WAIT_MS = 10_000;

/** A provider session whose offer the harness accepted. */
export interface Serving {
  peer: WirePeer;
  hub: FakeHub;
  nodeId: string;
  hubId: string;
  instances: Instance[];
  /** The node's receipt position with this (new) hub, as the harness recorded it. */
  position: ReceiptPosition;
  /** Waits for the provider's next connection. */
  accept: (what?: string) => Promise<WirePeer>;
}

/** Launches the provider, completes the handshake and accepts every offered instance. */
export async function serving(ctx: ProviderContext, heartbeatIntervalMs?: number): Promise<Serving> {
  const s = await openSession(ctx, heartbeatIntervalMs);
  const instances = await acceptOffer(s.peer);
  return {
    peer: s.peer,
    hub: s.hub,
    nodeId: String(s.auth.nodeId),
    hubId: s.hub.identity.id,
    instances,
    position: INITIAL_POSITION,
    accept: s.accept,
  };
}

/** Waits for the offer on a session and accepts every instance in it. */
export async function acceptOffer(peer: WirePeer): Promise<Instance[]> {
  const offer = await peer
    .take((m) => m.type === "offer", OFFER_WAIT_MS, 0, "an offer")
    .catch((e: Error) => {
      if (e instanceof WireTimeoutError)
        skip(
          `the provider offered no instance within ${OFFER_WAIT_MS / 1000} s of welcome (see provider.offer); job checks need a provider that serves a model`,
        );
      throw e;
    });
  const instances = offer.instances as Instance[];
  peer.send({ type: "offer_ack", results: instances.map((i) => ({ instanceId: i.instanceId, accepted: true })) });
  return instances;
}

/** An offered instance that can run a chat job (streamed or not). */
export function pick(s: Serving, stream: boolean): Instance {
  const i = s.instances.find((x) => x.capabilities.includes("chat") && (!stream || x.capabilities.includes("stream")));
  if (!i) skip(`the provider offers no instance with the ${stream ? "chat and stream capabilities" : "chat capability"}`);
  return i;
}

/** The messages of the jobs the harness sends. */
export const PROMPT = [{ role: "user", content: "Conformance: write one short sentence about spare capacity." }];

/** A chat.completions job for `inst`, as a hub would send it. */
export function chatJob(inst: Pick<Instance, "instanceId" | "model" | "price">, stream: boolean, maxTokens = 12): Job {
  return {
    type: "job",
    jobId: `job_conf_${hex(8)}`,
    instanceId: inst.instanceId,
    model: inst.model,
    api: "chat.completions",
    stream,
    request: {
      model: inst.model,
      messages: PROMPT,
      max_tokens: maxTokens,
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    },
    deadline: Date.now() + 60_000,
    quote: inst.price,
  };
}

/** A job's messages as the node sent them. */
export interface Ran {
  job: Job;
  chunks: Record<string, unknown>[];
  end: Record<string, unknown>;
}

/** Sends `job` and collects its chunks until done or job_error; an `error` from the node fails the check. */
export async function runJob(s: Serving, job: Job, ms = 20_000): Promise<Ran> {
  const from = s.peer.received.length;
  s.peer.send(job);
  const chunks: Record<string, unknown>[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const m = await s.peer.take(
      (x) => ofJob(job.jobId)(x) || x.type === "error",
      Math.max(1, deadline - Date.now()),
      from,
      `done or job_error for ${job.jobId}`,
    );
    if (m.type === "error") fail(`the node sent error ${String(m.code)} (${String(m.message)}) while running ${job.jobId}`);
    if (m.type === "chunk") chunks.push(m);
    else return { job, chunks, end: m };
  }
}

/** How a job ended, in a few words for details: the message type, and for a job_error its code, chunks and message. */
export function describe(m: Record<string, unknown>): string {
  return m.type === "job_error" ? `job_error ${String(m.code)} (chunks ${String(m.chunks)}): ${String(m.message)}` : String(m.type);
}

/** Runs `job` and requires it to end with done. */
export async function runDone(s: Serving, job: Job): Promise<Ran & { receipt: Receipt }> {
  const ran = await runJob(s, job);
  if (ran.end.type !== "done")
    fail(`${job.stream ? "streamed" : "non-streamed"} job ${job.jobId} on ${job.instanceId} ended with ${describe(ran.end)}`);
  return { ...ran, receipt: ran.end.receipt as Receipt };
}

/** Everything wrong with a job's chunks, done and receipt, given the node's previous position. */
export function jobProblems(s: Serving, ran: Ran, previous: ReceiptPosition): string[] {
  const { job, chunks, end } = ran;
  const p: string[] = [];
  if (job.stream) {
    if (chunks.length === 0) p.push("a streamed job produced no chunk");
    const seqs = chunks.map((c) => c.seq);
    if (seqs.some((q, i) => q !== i))
      p.push(
        `chunk seqs arrived as ${seqs.slice(0, 12).join(", ")}${seqs.length > 12 ? ", ..." : ""}; they must be 0, 1, 2, ... (SRP-JOB-008)`,
      );
    const odd = chunks.find((c) => (c.data as { object?: unknown } | undefined)?.object !== "chat.completion.chunk");
    if (odd) p.push(`a chunk's data is not a chat.completion.chunk object: ${JSON.stringify(odd.data).slice(0, 120)} (SRP-JOB-007)`);
  } else {
    if (chunks.length) p.push(`a non-streamed job got ${chunks.length} chunk(s) (SRP-JOB-009)`);
    if (typeof end.response !== "object" || end.response === null) p.push("done.response is missing for a non-streamed job (SRP-JOB-009)");
  }
  if (end.chunks !== chunks.length) p.push(`done.chunks is ${String(end.chunks)}; ${chunks.length} chunk(s) arrived (SRP-JOB-013)`);
  const r = end.receipt as Receipt;
  if (!sameJson(end.usage, r.usage))
    p.push(`done.usage ${JSON.stringify(end.usage)} differs from receipt.usage ${JSON.stringify(r.usage)} (SRP-JOB-013)`);
  if (r.hubSig !== undefined) p.push("the node's receipt carries hubSig (SRP-ATT-001)");
  if (!verifyDetached("receiptNode", omitFields(r, "nodeSig", "hubSig"), r.nodeSig, r.nodeId))
    p.push("receipt.nodeSig does not verify with receipt.nodeId over the receipt without nodeSig and hubSig (SRP-ATT-001)");
  const fields: Array<[string, unknown, unknown]> = [
    ["v", r.v, 1],
    ["jobId", r.jobId, job.jobId],
    ["hubId", r.hubId, s.hubId],
    ["nodeId", r.nodeId, s.nodeId],
    ["instanceId", r.instanceId, job.instanceId],
    ["model", r.model, job.model],
  ];
  for (const [name, got, want] of fields)
    if (got !== want) p.push(`receipt.${name} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)} (SRP-ATT-003)`);
  if (!sameJson(r.price, job.quote))
    p.push(`receipt.price ${JSON.stringify(r.price)} is not job.quote ${JSON.stringify(job.quote)} (SRP-ATT-003)`);
  if (!(r.startedAt <= r.finishedAt)) p.push(`receipt.startedAt ${r.startedAt} is after finishedAt ${r.finishedAt} (SRP-ATT-003)`);
  if (r.requestHash !== requestHash(job.request))
    p.push("receipt.requestHash is not the SHA-256 of the canonical JSON of job.request (SRP-ATT-004)");
  let expected: string | undefined;
  if (job.stream) {
    const hasher = new StreamHasher();
    for (const c of [...chunks].sort((a, b) => (a.seq as number) - (b.seq as number))) hasher.add(c.data);
    expected = hasher.digest();
  } else if (typeof end.response === "object" && end.response !== null) {
    expected = responseHash(end.response);
  }
  if (expected !== undefined && r.responseHash !== expected) {
    p.push(
      `receipt.responseHash is not the SHA-256 of the canonical JSON of ${job.stream ? "the array of the chunks' data in seq order" : "done.response"} (SRP-ATT-005)`,
    );
  }
  try {
    const cost = formatAmount(receiptCost(r.usage, r.price));
    if (r.cost !== cost)
      p.push(
        `receipt.cost is ${r.cost}; usage at price costs ${cost}${r.usage.measured ? "" : " (unmeasured usage costs 0)"} (SRP-ATT-008)`,
      );
  } catch (e) {
    p.push(`receipt.usage cannot be priced: ${(e as Error).message} (SRP-ATT-008)`);
  }
  if (r.seq !== previous.lastSeq + 1)
    p.push(
      `receipt.seq is ${r.seq}; the node's previous receipt for this hub is ${previous.lastSeq}, so it must be ${previous.lastSeq + 1} (SRP-ATT-006)`,
    );
  let charge: bigint | undefined;
  try {
    charge = parseAmount(r.cost);
  } catch {
    /* reported above */
  }
  if (charge !== undefined && !sameJson(r.totals, addToTotals(previous.totals, r.usage, charge))) {
    p.push(
      `receipt.totals ${JSON.stringify(r.totals)} are not the previous totals ${JSON.stringify(previous.totals)} plus this receipt (SRP-ATT-007)`,
    );
  }
  return p;
}

/** Messages the node sent for a job after it ended (SRP-JOB-012). */
export function afterEnd(peer: WirePeer, ran: Ran): Record<string, unknown>[] {
  const end = peer.arrival(ran.end);
  return end ? peer.matching(ofJob(ran.job.jobId), end.index + 1) : [];
}

/** Sends the receipt back countersigned (by `signer`, default the harness hub), as a hub does. */
export function countersign(s: Serving, receipt: Receipt, signer: Identity = s.hub.identity): void {
  const body = omitFields(receipt, "hubSig");
  s.peer.send({ type: "receipt", receipt: { ...body, hubSig: signDetached("receiptHub", body, signer) } });
  s.position = { lastSeq: receipt.seq, totals: receipt.totals };
}

/**
 * Serves one job on a fresh session, countersigns it, asks the node to come back
 * (goodbye with reconnectAfterMs 0) and completes the handshake of its next session, up
 * to `auth`. Undefined when the node came back with another node id.
 */
export async function servedAndBack(
  ctx: ProviderContext,
): Promise<{ s: Serving; first: Ran & { receipt: Receipt }; peer: WirePeer; auth: Record<string, unknown> } | undefined> {
  const s = await serving(ctx);
  const first = await runDone(s, chatJob(pick(s, false), false, 4));
  countersign(s, first.receipt);
  await sleep(100);
  s.peer.send({ type: "goodbye", reason: "conformance: reconnect please", reconnectAfterMs: 0 });
  s.peer.close(1001, "session.shutdown");
  const peer = await s.accept("the provider to reconnect after goodbye (reconnectAfterMs 0)");
  const h = hello(s.hub);
  peer.send(h);
  const auth = await peer.expect("auth");
  const problem = authProblem(auth, h);
  if (problem) fail(`second session: ${problem}`);
  return auth.nodeId === s.nodeId ? { s, first, peer, auth } : undefined;
}

/** A session whose node served two jobs whose receipts the harness countersigned. */
export async function servedTwice(ctx: ProviderContext): Promise<Serving & { receipts: Receipt[] }> {
  const s = await serving(ctx);
  const inst = pick(s, false);
  const receipts: Receipt[] = [];
  for (let i = 0; i < 2; i++) {
    const ran = await runDone(s, chatJob(inst, false, 4));
    countersign(s, ran.receipt);
    receipts.push(ran.receipt);
  }
  await sleep(200);
  return Object.assign(s, { receipts });
}

/** A statement of the harness hub about the node's receipts so far, with `change` applied before signing (by `signer`, default the hub). */
export function statementFor(
  s: Serving & { receipts: Receipt[] },
  change: Partial<Statement> = {},
  signer: Identity = s.hub.identity,
): Statement {
  const earned = s.receipts.reduce((sum, r) => sum + (parseAmount(r.cost) * 9000n) / 10000n, 0n);
  const now = Date.now();
  const body = {
    v: 1 as const,
    statementId: `stmt_conf_${hex(8)}`,
    nodeId: s.nodeId,
    accountId: "conformance",
    period: { from: now - 60_000, to: now },
    receipts: { count: s.receipts.length, firstSeq: s.receipts[0]!.seq, lastSeq: s.position.lastSeq },
    totals: s.position.totals,
    earned: formatAmount(earned),
    paid: "0",
    balance: formatAmount(earned),
    issuedAt: now,
    ...change,
  };
  // Signed as the harness hub would sign it; a different signer makes the signature fail.
  const signed = signStatement(body, signer);
  return signer === s.hub.identity ? signed : { ...signed, hubId: s.hubId };
}

/** Expects the node to answer a countersigned receipt with `error` `code` for the job, keeping the session. */
export async function expectReceiptError(s: Serving, jobId: string, from: number, code: string): Promise<void> {
  const m = await s.peer
    .take((x) => x.type === "error", 3000, from, `error ${code}`)
    .catch(() => fail(`the node sent no error within 3 s (expected ${code} with jobId ${jobId})`));
  const problems: string[] = [];
  if (m.code !== code) problems.push(`error code ${String(m.code)}, expected ${code}`);
  if (m.jobId !== jobId) problems.push(`error jobId ${String(m.jobId)}, expected ${jobId} (SRP-ERR-003)`);
  const closed = await s.peer.closedWithin(300);
  if (closed) problems.push(`the node closed the session (${closed.code}); a receipt error does not end it (SRP-ERR-003)`);
  if (problems.length) fail(problems.join("; "));
}
