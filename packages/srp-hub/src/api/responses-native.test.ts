/**
 * The native Responses plan's answers (SRP-CON-042, SRP-ATT-019, SRP-CON-050): a streamed
 * snapshot before the terminal event shows no usage of the node's own, and a non-streamed
 * Response with `status: "failed"` is answered but not stored.
 */
import { describe, expect, it } from "vitest";
import type { Done, Job } from "@srp/core/schema";
import { planResponses } from "./responses.js";
import { MemoryResponseStore } from "./response-store.js";
import type { Plan, SrpUsageExtension } from "./serve.js";

const ACCOUNT = "acct_native";
const ext: SrpUsageExtension = { cost: "0.000001", cost_units: "1", receipt_id: "rcpt_1", measured: true };

async function plan(store: MemoryResponseStore, body: Record<string, unknown>): Promise<Plan> {
  const ctx = { router: { views: () => [] } as never, responses: store, storageError: () => {}, maxBodyBytes: 1_000_000 };
  const p = await planResponses({ model: "m", input: "Hi", ...body }, ctx, ACCOUNT);
  if (!("respond" in p)) throw p;
  return p;
}

const job = (stream: boolean): Job =>
  ({
    type: "job",
    jobId: "job_0123456789abcdef0123456789abcdef",
    instanceId: "i",
    model: "m",
    api: "responses",
    stream,
    request: {},
    deadline: Date.now() + 60_000,
    quote: { input: "1", output: "1" },
  }) as Job;
const done = (response: Record<string, unknown>): Done =>
  ({ type: "done", jobId: job(false).jobId, usage: { promptTokens: 3, completionTokens: 2 }, response }) as unknown as Done;

describe("native Responses answers", () => {
  it("streamed snapshots before the terminal event carry usage null, not the node's usage", async () => {
    const p = await plan(new MemoryResponseStore(), { stream: true });
    const encoder = p.encoder!(job(true), ACCOUNT);
    const nodeUsage = { input_tokens: 999_999, output_tokens: 888_888, total_tokens: 1_888_887 };
    const text = encoder.chunk({
      type: "response.created",
      sequence_number: 0,
      response: { id: "resp_upstream", object: "response", status: "in_progress", output: [], usage: nodeUsage },
    });
    const data = JSON.parse(/^data: (.*)$/m.exec(text)![1]!) as { response: { id: string; usage: unknown } };
    expect(data.response.usage).toBeNull();
    expect(data.response.id).toMatch(/^resp_0123456789abcdef/);
    // The failure event built from that snapshot shows none either.
    const failed = JSON.parse(/^data: (.*)$/m.exec(encoder.fail("job.stream_interrupted", "gone"))![1]!) as {
      response: { usage: unknown };
    };
    expect(failed.response.usage).toBeNull();
  });

  it("a non-streamed Response with status failed is answered but not stored; a completed one is stored", async () => {
    const store = new MemoryResponseStore();
    const p = await plan(store, {});
    const failed = await p.respond(
      job(false),
      done({ object: "response", status: "failed", error: { code: "server_error", message: "x" }, output: [] }),
      ext,
      {},
      ACCOUNT,
    );
    const answered = (await failed.json()) as { id: string; status: string };
    expect(answered.status).toBe("failed");
    expect(await store.get(ACCOUNT, answered.id)).toBeUndefined();

    const ok = await (await p.respond(job(false), done({ object: "response", status: "completed", output: [] }), ext, {}, ACCOUNT)).json();
    expect((await store.get(ACCOUNT, (ok as { id: string }).id))?.response.status).toBe("completed");
  });
});
