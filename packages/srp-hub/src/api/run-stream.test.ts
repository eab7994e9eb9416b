import { describe, expect, it } from "vitest";
import type { JobEvent } from "../relay.js";
import { midStreamFailure, streamBody, type StreamSteps } from "./run-stream.js";

async function* events(list: JobEvent[]): AsyncGenerator<JobEvent> {
  yield* list;
}

const chunk = (text: string): JobEvent => ({ type: "chunk", chunk: { data: { text } } as never, at: 0 });

function steps() {
  const log: string[] = [];
  const s: StreamSteps = {
    chunk: (data) => String(data.text),
    end: async () => (log.push("bill done"), "END"),
    fail: (code, message) => `FAIL ${code}: ${message}`,
    endBilling: async (e, left) => void log.push(`bill ${e?.type ?? "nothing"}${left ? " (left)" : ""}`),
    abort: () => void log.push("abort"),
    detach: () => void log.push("detach"),
  };
  return { s, log };
}

describe("midStreamFailure", () => {
  it("says deadline_exceeded for a passed deadline, else stream_interrupted", () => {
    expect(midStreamFailure({ type: "lost", reason: "deadline" })).toEqual({
      code: "job.deadline_exceeded",
      message: "the request passed its deadline mid-stream",
    });
    expect(midStreamFailure({ type: "lost", reason: "node_gone" })).toEqual({
      code: "job.stream_interrupted",
      message: "the provider went away mid-stream (node_gone)",
    });
    expect(
      midStreamFailure({ type: "error", error: { code: "job.deadline_exceeded", message: "late" } } as JobEvent & { type: "error" }).code,
    ).toBe("job.deadline_exceeded");
    expect(
      midStreamFailure({ type: "error", error: { code: "job.upstream_error", message: "boom" } } as JobEvent & { type: "error" }),
    ).toEqual({ code: "job.stream_interrupted", message: "the provider failed mid-stream: boom" });
  });
});

describe("streamBody", () => {
  it("sends chunks with text, then the clean end, and detaches", async () => {
    const { s, log } = steps();
    const text = await new Response(streamBody(events([chunk("a"), chunk(""), chunk("b"), { type: "done" } as JobEvent]), s)).text();
    expect(text).toBe("abEND");
    expect(log).toEqual(["bill done", "detach"]);
  });

  it("ends in an in-band error after content (never a clean end)", async () => {
    const { s, log } = steps();
    const text = await new Response(streamBody(events([chunk("a"), { type: "lost", reason: "deadline" }]), s)).text();
    expect(text).toBe("aFAIL job.deadline_exceeded: the request passed its deadline mid-stream");
    expect(log).toEqual(["bill lost", "detach"]);
  });

  it("ends billing when the events run out, and as the consumer leaving on cancel", async () => {
    const ran = steps();
    expect(await new Response(streamBody(events([chunk("a")]), ran.s)).text()).toBe("a");
    expect(ran.log).toEqual(["bill nothing"]);
    const left = steps();
    const reader = streamBody(events([chunk("a"), chunk("b")]), left.s).getReader();
    await reader.read();
    await reader.cancel();
    expect(left.log).toEqual(["abort", "bill nothing (left)", "detach"]);
  });
});
