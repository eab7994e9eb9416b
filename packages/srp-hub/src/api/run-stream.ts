/**
 * The body of a streamed consumer answer: the committed job's chunks in the surface's wire
 * format, then either its clean end with the billed usage (SRP-ATT-019) or, after content,
 * an explicit in-band error and no clean end (SRP-JOB-020). Whichever way the stream ends
 * (done, failure, the events running out, or the consumer cancelling), the request's billing
 * is ended through one once-only step.
 */
import type { JobEvent } from "../relay.js";

/** An event that ends a job without a `done`. */
type Failure = Extract<JobEvent, { type: "error" | "lost" }>;

/** The code of an in-band error that ends a stream. */
export type MidStreamCode = "job.stream_interrupted" | "job.deadline_exceeded";

/** Encodes the stream's text (stateless, shared). */
const UTF8 = new TextEncoder();

/** The headers of every streamed answer, besides the request's own. */
export const STREAM_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
});

/**
 * The in-band error that ends a stream after content (SRP-JOB-020): `job.deadline_exceeded`
 * when the deadline passed (the hub's, or the provider's own report of it), else
 * `job.stream_interrupted`, with a message saying what happened.
 *
 * @example
 * midStreamFailure({ type: "lost", reason: "deadline" }); // { code: "job.deadline_exceeded", message: "the request passed its deadline mid-stream" }
 */
export function midStreamFailure(e: Failure): { code: MidStreamCode; message: string } {
  if (e.type === "error") {
    return {
      code: e.error.code === "job.deadline_exceeded" ? e.error.code : "job.stream_interrupted",
      message: `the provider failed mid-stream: ${e.error.message}`,
    };
  }
  if (e.reason === "deadline") return { code: "job.deadline_exceeded", message: "the request passed its deadline mid-stream" };
  return { code: "job.stream_interrupted", message: `the provider went away mid-stream (${e.reason})` };
}

/** What a streamed answer does at each step, given by the request that runs it. */
export interface StreamSteps {
  /** The wire text of a chunk ("" holds or drops it). */
  chunk(data: Record<string, unknown>): string;
  /** Ends billing for the job's `done` and answers the wire text that ends the stream cleanly. */
  end(e: Extract<JobEvent, { type: "done" }>): Promise<string>;
  /** The wire text of an in-band error. */
  fail(code: MidStreamCode, message: string): string;
  /** Ends the request's billing, once only; `consumerLeft` when the consumer cancelled the stream. */
  endBilling(e: JobEvent | undefined, consumerLeft?: boolean): Promise<unknown>;
  /** Stops the job: the consumer went away. */
  abort(): void;
  /** Removes the request's listener for the consumer going away. */
  detach(): void;
}

/**
 * The stream of a committed job's answer: each pull sends the next chunk with text; a `done`
 * or a failure sends the last text, closes the stream, ends the events and detaches; events
 * that run out end billing and close. Cancelling it stops the job and ends billing as the
 * consumer having left (the reservation is kept for a late `done`: SRP-BIL-003).
 */
export function streamBody(events: AsyncGenerator<JobEvent>, steps: StreamSteps): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: (controller) => pullNext(events, steps, controller),
    async cancel() {
      steps.abort();
      await events.return(undefined);
      await steps.endBilling(undefined, true);
      steps.detach();
    },
  });
}

/** Sends the next text of the stream (skipping chunks without any), or its end. */
async function pullNext(
  events: AsyncGenerator<JobEvent>,
  steps: StreamSteps,
  controller: ReadableStreamDefaultController<Uint8Array>,
): Promise<void> {
  for (;;) {
    const { value: e, done: finished } = await events.next();
    if (finished || !e) {
      await steps.endBilling(undefined);
      controller.close();
      return;
    }
    if (e.type === "chunk") {
      const text = steps.chunk(e.chunk.data);
      if (text === "") continue;
      controller.enqueue(UTF8.encode(text));
      return;
    }
    const last = e.type === "done" ? await steps.end(e) : await failureText(e, steps);
    controller.enqueue(UTF8.encode(last));
    controller.close();
    await events.return(undefined);
    steps.detach();
    return;
  }
}

/** After content: billing ends for the failure, and its in-band error is the stream's last text (SRP-JOB-020). */
async function failureText(e: Failure, steps: StreamSteps): Promise<string> {
  const { code, message } = midStreamFailure(e);
  await steps.endBilling(e);
  return steps.fail(code, message);
}
