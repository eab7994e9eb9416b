/**
 * Reading a streamed answer as the consumer in hub mode: what it saw (text, `[DONE]`
 * markers, in-band errors, usage), reading or draining an answer, and a stream whose
 * consumer goes away mid-way.
 */
import type { SseEvent } from "@srp/core";
import { chatChunks, usageOf } from "./answers.js";
import { bodyText, deltaContent, eventJson, SseReader, within, type ConsumerCall } from "./consumer.js";
import { ASK } from "./instances.js";
import type { HarnessNode } from "./node.js";
import { ensure, fail } from "./verdict.js";

/** What a consumer saw in a streamed answer. */
export interface StreamSeen {
  status: number;
  contentType: string;
  events: SseEvent[];
  text: string;
  doneMarkers: number;
  lastIsDone: boolean;
  errors: Record<string, unknown>[];
  usage: Record<string, unknown> | undefined;
}

/** What a consumer saw in the streamed answer `res` whose events were `events`. */
export function summarize(res: Response, events: SseEvent[]): StreamSeen {
  const json = events.map(eventJson);
  return {
    status: res.status,
    contentType: res.headers.get("content-type") ?? "",
    events,
    text: json
      .map(deltaContent)
      .filter((t) => t !== undefined)
      .join(""),
    doneMarkers: events.filter((e) => e.data.trim() === "[DONE]").length,
    lastIsDone: events.at(-1)?.data.trim() === "[DONE]",
    errors: json.filter((j): j is Record<string, unknown> => typeof j?.error === "object" && j.error !== null),
    usage: json.filter((j) => typeof j?.usage === "object" && j.usage !== null).at(-1)?.usage as Record<string, unknown> | undefined,
  };
}

/** Reads the consumer's answer to its end and drops it, whatever it is (or that it never came). */
export async function drain(call: ConsumerCall): Promise<void> {
  await within(call.response, 5000, "the consumer's response")
    .then((r) => bodyText(r))
    .catch(() => "");
}

/**
 * Streams three chunks of a new job of `model`, lets its consumer go away once the first
 * event reached it, and waits for the hub's cancel. Returns the job, all its chunks' data
 * (the fourth not sent yet), their usage, the cancel, and `mark`: where the node's received
 * messages stood just before the consumer went away.
 */
export async function cancelMidStream(node: HarnessNode, model: string) {
  const call = node.chat({ model, messages: ASK, stream: true, max_tokens: 64 });
  const job = await node.nextJob(call);
  const usage = usageOf(["a", "b", "c", "d"]);
  const datas = chatChunks({ ...job, request: {} }, ["Hello", " there", " late"], usage);
  node.chunks(job, datas.slice(0, 3));
  const res = await within(call.response, 5000, "the consumer's response");
  ensure(res.status === 200, `the consumer's streamed request was answered ${res.status}`);
  const reader = new SseReader(res);
  ensure((await reader.next(5000)) !== undefined, "the stream ended before any event reached the consumer");
  const mark = node.peer.received.length;
  call.abort();
  const cancel = await node.peer.take(
    (m) => m.type === "cancel" && m.jobId === job.jobId,
    5000,
    0,
    `cancel for ${job.jobId} after the consumer disconnected`,
  );
  return { job, datas, usage, cancel, mark };
}

/** Reads a streamed answer to its end. */
export async function readStream(call: ConsumerCall, ms = 5000): Promise<StreamSeen> {
  const res = await within(call.response, ms, "the consumer's response");
  if (res.status !== 200)
    fail(`the consumer's streamed request was answered ${res.status}: ${(await bodyText(res).catch(() => "")).slice(0, 300)}`);
  const reader = new SseReader(res);
  const events = await reader.rest(ms);
  return summarize(res, events);
}
