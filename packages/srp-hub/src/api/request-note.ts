/**
 * What a consumer surface tells the hub about one request it answered: the model that
 * served it and what was billed; and what the hub tells the request's jobs: its id and its
 * trace span. The hub's request observer (`hub/requests.ts`) opens a note for a request only
 * while someone listens to its `request` event or a tracer records it; `serve` fills it in
 * and hands it to the relay. Notes are keyed by the request object and vanish with it.
 */
import type { Span } from "@opentelemetry/api";
import type { Usage } from "@srp/core/schema";

/** One request's id and span, and its model and billed usage as far as they are known. */
export interface RequestNote {
  /** The request's `x-request-id`: its jobs carry it (`srp.request_id`, SRP-JOB-037); empty in a note not opened by the request observer. */
  readonly requestId: string;
  /** The request's `srp.request` span while it is traced: its jobs' spans are children of it. */
  readonly span?: Span;
  /** The model that served the request, or the model asked for when some instance serves it. */
  model?: string;
  /** Billed prompt tokens. */
  promptTokens?: number;
  /** Billed completion tokens. */
  completionTokens?: number;
  /** What was charged, atomic units. */
  costUnits?: bigint;
}

const notes = new WeakMap<Request, RequestNote>();

/** Opens a note for a request (the hub's request observer does, while someone listens or a tracer records). */
export function openNote(request: Request, requestId: string, span?: Span): RequestNote {
  const note: RequestNote = span === undefined ? { requestId } : { requestId, span };
  notes.set(request, note);
  return note;
}

/** The note of a request, when one was opened for it. */
export function noteOf(request: Request): RequestNote | undefined {
  return notes.get(request);
}

/** Records on a note what a job was billed (the countersigned receipt's usage, or nothing) and the model that served it. */
export function noteBilled(note: RequestNote | undefined, model: string, usage: Usage, costUnits: string): void {
  if (note === undefined) return;
  note.model = model;
  note.promptTokens = usage.promptTokens;
  note.completionTokens = usage.completionTokens;
  note.costUnits = BigInt(costUnits);
}
