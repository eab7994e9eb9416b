import { describe, expect, it } from "vitest";
import type { Instance, Job } from "@srp/core/schema";
import type { JobHandle } from "../session.js";
import type { LinkMessage } from "./link-protocol.js";
import type { Link } from "./links.js";
import { RemoteHost, type RemoteHostDeps } from "./remote-host.js";
import type { NodeSnapshot } from "./snapshot.js";

const instance = { instanceId: "i1", model: "m", maxConcurrency: 2, price: { input: "1", output: "2" } } as unknown as Instance;
const snapshot = (active: Record<string, number> = {}): NodeSnapshot => ({
  process: "proc_b",
  sessionId: "sess_1",
  nodeId: "node_1",
  accountId: "acct_p",
  instances: [instance],
  active,
  capacity: {},
});
const job = (jobId: string) => ({ type: "job", jobId, instanceId: "i1", model: "m", stream: false }) as unknown as Job;

/** A host over a recording link, and what its handles received. */
function setUp() {
  const sent: LinkMessage[] = [];
  const link: Link = { peer: "proc_b", open: true, send: (m) => (sent.push(m), true) };
  const events: string[] = [];
  const loads: number[] = [];
  let host!: RemoteHost;
  const deps: RemoteHostDeps = {
    link: () => link,
    sent: () => {},
    refused: () => events.push("refused"),
    takeOwner: (jobId) => ({ accountId: "acct_c", reservationId: `res_${jobId}` }),
    loadChanged: () => loads.push(host.active.get("i1") ?? 0),
  };
  host = new RemoteHost(snapshot(), deps);
  const handle = (name: string): JobHandle => ({
    onChunk: () => events.push(`${name} chunk`),
    onDone: (_d, _r, settled) => {
      events.push(`${name} done`);
      settled?.then(
        (v) => events.push(`${name} settled ${JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x))}`),
        () => events.push(`${name} unsettled`),
      );
    },
    onError: (e) => events.push(`${name} error ${e.code}`),
    onLost: (r) => events.push(`${name} lost ${r}`),
    onNotStarted: (r) => events.push(`${name} not started: ${r}`),
  });
  return { host, sent, events, loads, link, handle };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("RemoteHost", () => {
  it("sends a job with its payer, counts its slot until the end, and hands back the settlement with the charge", async () => {
    const { host, sent, events, loads, handle, link } = setUp();
    expect(host.startJob(job("j1"), "hash", handle("j1"))).toBe(true);
    expect(host.active.get("i1")).toBe(1);
    await tick();
    expect(sent).toEqual([
      { t: "job", nodeId: "node_1", job: job("j1"), requestHash: "hash", owner: { accountId: "acct_c", reservationId: "res_j1" } },
    ]);
    host.deliver({ t: "done", done: { jobId: "j1" } as never, settles: true }, "j1", link);
    expect(host.active.get("i1")).toBeUndefined();
    expect(host.pending("j1")).toBe(true);
    host.deliver({ t: "settled", jobId: "j1", ok: true, reservationId: "res_j1", charge: "42" }, "j1", link);
    await tick();
    expect(host.pending("j1")).toBe(false);
    expect(events).toEqual(["j1 done", 'j1 settled {"reservationId":"res_j1","charge":"42n"}']);
    expect(loads).toEqual([1, 0]);
  });

  it("does not send past the instance's slots, and a refusal with a snapshot is a job that did not start", async () => {
    const { host, events, handle, link } = setUp();
    expect(host.startJob(job("j1"), "h", handle("j1"))).toBe(true);
    expect(host.startJob(job("j2"), "h", handle("j2"))).toBe(true);
    expect(host.startJob(job("j3"), "h", handle("j3"))).toBe(false);
    // The process holding the node says every slot is taken (a third job from elsewhere): its snapshot is taken in.
    host.deliver({ t: "refused", jobId: "j2", reason: "every slot is taken", snapshot: snapshot({ i1: 2 }) }, "j2", link);
    expect(events).toEqual(["refused", "j2 not started: every slot is taken"]);
    expect(host.active.get("i1")).toBe(2);
  });

  it("loses the jobs of a closed link and owes no settlement it cannot know", async () => {
    const { host, events, link, handle } = setUp();
    host.startJob(job("j1"), "h", handle("j1"));
    host.startJob(job("j2"), "h", handle("j2"));
    host.deliver({ t: "done", done: { jobId: "j2" } as never, settles: true }, "j2", link);
    host.linkClosed(link);
    await tick();
    expect(events).toEqual(["j2 done", "j1 lost the hub process holding the node went away", "j2 unsettled"]);
    expect(host.pending("j1") || host.pending("j2")).toBe(false);
    expect(host.active.size).toBe(0);
  });

  it("takes a job's events only from the link it was sent on", async () => {
    const { host, events, handle, link } = setUp();
    host.startJob(job("j1"), "h", handle("j1"));
    const other: Link = { peer: "proc_b", open: true, send: () => true };
    host.deliver({ t: "done", done: { jobId: "j1" } as never, settles: false }, "j1", other);
    host.deliver({ t: "lost", jobId: "j1", reason: "forged" }, "j1", other);
    expect(events).toEqual([]);
    host.deliver({ t: "lost", jobId: "j1", reason: "real" }, "j1", link);
    expect(events).toEqual(["j1 lost real"]);
  });

  it("cancels on the link, passing on whether the cancel counts as the instance's failure", async () => {
    const { host, sent, handle } = setUp();
    host.startJob(job("j1"), "h", handle("j1"));
    await tick();
    expect(host.cancelJob("j1", "deadline", undefined, true)).toBe(true);
    expect(host.cancelJob("j1", "deadline")).toBe(false);
    expect(sent.at(-1)).toEqual({ t: "cancel", jobId: "j1", reason: "deadline", failed: true });
  });
});
