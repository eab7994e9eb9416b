/**
 * The harness as a consumer of a hub: it posts chat completions (and requests to the other
 * consumer surfaces the discovery document lists) with the account key and reads the
 * answer, JSON or server-sent events, with time limits. Every call registers its abort
 * with the check's tracker, so nothing outlives the check.
 */
import { parseSse, type SseEvent } from "@srp/core";
import type { Tracker } from "../runner.js";
import { discovery, type HubContext } from "./hub-session.js";
import { fail, skip } from "./verdict.js";
import { WireTimeoutError } from "./wire.js";

/** A consumer request in flight. */
export interface ConsumerCall {
  /** Resolves with the response as soon as its headers arrive. */
  readonly response: Promise<Response>;
  /** Drops the request (the consumer goes away). */
  abort(): void;
}

/** Posts `body` to `${baseUrl}/chat/completions` with `Authorization: Bearer <key>`. */
export function postChat(
  tracker: Tracker,
  baseUrl: string,
  key: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): ConsumerCall {
  const controller = new AbortController();
  const url = `${baseUrl.replace(/\/+$/, "")}/chat/completions`;
  const response = fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${key}`,
      accept: body.stream === true ? "text/event-stream" : "application/json",
      ...headers,
    },
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

/** Resolves with `promise`, or throws WireTimeoutError after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new WireTimeoutError(`${what} did not happen within ${ms} ms`)), ms);
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

  /** Reads until the stream ends; throws WireTimeoutError when it does not end within `ms`. */
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

/** Checks a hub's HTTP error answer: a 4xx/5xx with an error object carrying a code. */
export async function codedError(res: Response): Promise<string | undefined> {
  const text = await bodyText(res).catch(() => "");
  if (res.status < 400) return `status ${res.status}, expected an error status`;
  let code: unknown;
  try {
    code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
  } catch {
    return `status ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`;
  }
  if (typeof code !== "string" || code.length === 0) return `status ${res.status} without error.code: ${text.slice(0, 200)}`;
  return undefined;
}

/** A JSON object in a consumer request or answer. */
export type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Skips unless the hub lists every one of `names`; returns the consumer base URL (`.../v1`). */
export async function surfaces(ctx: HubContext, ...names: string[]): Promise<string> {
  const doc = await discovery(ctx);
  for (const name of names)
    if (!doc.consumer?.surfaces.includes(name)) skip(`the discovery document does not list the ${name} consumer surface`);
  return doc.consumer!.baseUrl.replace(/\/+$/, "");
}

/** How a consumer request carries the harness's account key: Anthropic's `x-api-key` header, or OpenAI's `authorization: Bearer`. */
export type KeyHeader = "x-api-key" | "bearer";

/** Posts `body` to `path` of the consumer API as the harness's account (its key as `keyHeader` says, then `headers`), with the call tracked. */
export function post(
  ctx: HubContext,
  base: string,
  path: string,
  body: Json,
  headers: Record<string, string> = {},
  keyHeader: KeyHeader = "x-api-key",
): ConsumerCall {
  const controller = new AbortController();
  const key = ctx.accountKey ?? "";
  const auth = keyHeader === "bearer" ? { authorization: `Bearer ${key}` } : { "x-api-key": key };
  const response = fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth, "anthropic-version": "2023-06-01", ...headers },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  response.catch(() => {
    /* reported where it is awaited */
  });
  ctx.tracker.cleanups.push(() => controller.abort());
  return { response, abort: () => controller.abort() };
}

/** GETs `url` (with `authorization: Bearer <key>` when a key is given), with a 5 s limit. */
export async function get(url: string, key: string | undefined): Promise<Response> {
  return fetch(url, { headers: key === undefined ? {} : { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(5000) });
}

/** The body of `res` as a JSON object; fails the check (saying `what` and the status) when it is none. */
export async function json(res: Response, what: string): Promise<Json> {
  const text = await bodyText(res);
  try {
    const v = JSON.parse(text) as unknown;
    if (isObject(v)) return v;
  } catch {
    /* below */
  }
  fail(`${what}: status ${res.status}, a body that is not a JSON object: ${text.slice(0, 200)}`);
}
