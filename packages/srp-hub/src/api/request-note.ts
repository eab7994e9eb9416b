/**
 * What a consumer surface tells the hub about one request it answered: the model that
 * served it and what was billed. The hub's request observer (`hub/requests.ts`) opens a
 * note for a request only while someone listens to its `request` event; `serve` fills it
 * in. Notes are keyed by the request object and vanish with it.
 */
import type { Usage } from "@srp/core/schema";

/** One request's model and billed usage, as far as they are known. */
export interface RequestNote {
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

/** Opens a note for a request (the hub's request observer does, while someone listens). */
export function openNote(request: Request): RequestNote {
  const note: RequestNote = {};
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
