/**
 * The harness as a consumer of a hub's OpenAI-compatible surface: it posts chat
 * completions with the account key and reads the answer, JSON or server-sent events,
 * with time limits. Every call registers its abort with the check's tracker, so nothing
 * outlives the check.
 */
import { parseSse, type SseEvent } from "@srp/core";
import type { Tracker } from "./runner.js";
import { fail } from "./types.js";
import { WireTimeout } from "./wire.js";

/** A consumer request in flight. */
export interface ConsumerCall {
  /** Resolves with the response as soon as its headers arrive. */
  readonly response: Promise<Response>;
  /** Drops the request (the consumer goes away). */
  abort(): void;
}

/** Posts `body` to `${baseUrl}/chat/completions` with `Authorization: Bearer <key>`. */
export function postChat(tracker: Tracker, baseUrl: string, key: string, body: Record<string, unknown>, headers: Record<string, string> = {}): ConsumerCall {
  const controller = new AbortController();
  const url = `${baseUrl.replace(/\/+$/, "")}/chat/completions`;
  const response = fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}`, accept: body.stream === true ? "text/event-stream" : "application/json", ...headers },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  response.catch(() => {
    /* reported where it is awaited */
  });
  const abort = () => controller.abort();
  tracker.cleanups.push(abort);
  return { response, abort };
}

/** Resolves with `promise`, or throws WireTimeout after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new WireTimeout(`${what} did not happen within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a response body as text with a time limit. */
export function bodyText(res: Response, ms = 5000): Promise<string> {
  return within(res.text(), ms, "reading the response body");
}

/** Server-sent events of a streamed response, one at a time, with time limits. */
export class SseReader {
  readonly #events: AsyncIterator<SseEvent>;
  #pending: Promise<IteratorResult<SseEvent>> | undefined;
  /** Every event read so far. */
  readonly events: SseEvent[] = [];
  /** True once the stream has ended. */
  ended = false;

  constructor(res: Response) {
    if (!res.body) throw new Error("the response has no body");
    this.#events = parseSse(res.body)[Symbol.asyncIterator]();
  }

  /** The next event, or undefined at the end of the stream. */
  async next(ms = 5000): Promise<SseEvent | undefined> {
    if (this.ended) return undefined;
    this.#pending ??= this.#events.next();
    this.#pending.catch(() => {
      /* reported below */
    });
    const r = await within(this.#pending, ms, "the next server-sent event");
    this.#pending = undefined;
    if (r.done) {
      this.ended = true;
      return undefined;
    }
    this.events.push(r.value);
    return r.value;
  }

  /** Reads until the stream ends; throws WireTimeout when it does not end within `ms`. */
  async rest(ms = 5000): Promise<SseEvent[]> {
    const deadline = Date.now() + ms;
    const out: SseEvent[] = [];
    for (;;) {
      const e = await this.next(Math.max(1, deadline - Date.now()));
      if (!e) return out;
      out.push(e);
    }
  }
}

/** The JSON object in an event's data, or undefined (for `[DONE]` and for text that is not a JSON object). */
export function eventJson(e: SseEvent): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(e.data);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The text content of a chat completion chunk's first choice, if any. */
export function deltaContent(chunk: Record<string, unknown> | undefined): string | undefined {
  const choices = chunk?.choices;
  if (!Array.isArray(choices) || choices.length === 0) return undefined;
  const delta = (choices[0] as { delta?: { content?: unknown } }).delta;
  return typeof delta?.content === "string" ? delta.content : undefined;
}

/**
 * Problems with an error answer: undefined when its status is `status` and its OpenAI-shaped
 * `error.code` is `code`, else one line saying what came instead (`what` names the request).
 */
export async function errorProblem(res: Response, what: string, status: number, code: string): Promise<string | undefined> {
  const text = await bodyText(res).catch(() => "");
  let got: unknown;
  try {
    got = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
  } catch {
    got = undefined;
  }
  if (res.status === status && got === code) return undefined;
  return `${what}: status ${res.status} and code ${String(got)}, expected ${status} ${code} (${text.slice(0, 200)})`;
}

/** Throws a check failure listing every problem found (the strings among `problems`), if any. */
export function reportProblems(problems: readonly (string | undefined | false)[]): void {
  const found = problems.filter((p): p is string => typeof p === "string");
  if (found.length > 0) fail(found.join("; "));
}
