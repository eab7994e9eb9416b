/**
 * Request ids and the hub's `request` event. Every response of the hub's `fetch` handler
 * carries `x-request-id`: the client's own when it is a short safe token, else one made
 * here. While someone listens to `request` or a tracer records (`../tracing.ts`), each
 * request gets a note (`api/request-note.ts`) that carries its id and span to its jobs and
 * that the consumer surfaces fill with the served model and billed usage; the event is
 * emitted (and the `srp.request` span ended) once when the response ends: at once for a
 * whole body, at the stream's end (or cancellation) for server-sent events, whose first
 * chunk gives the time to first token.
 */
import { randomUUID } from "node:crypto";
import { context, trace } from "@opentelemetry/api";
import { errorCodeOf } from "../api/error-code.js";
import { openNote, type RequestNote } from "../api/request-note.js";
import { watchedBody } from "../api/watched-body.js";
import { endRequestSpan, startRequestSpan } from "../tracing.js";
import type { ClientInfo } from "../node-adapter.js";
import { findRoute, type Route } from "./routes.js";
import type { HubEmitter, RequestEvent } from "./types.js";

/** The header that carries a request's id, both ways. */
export const REQUEST_ID_HEADER = "x-request-id";

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A fresh request id: `req_` and 32 hex digits. */
export function newRequestId(): string {
  return `req_${randomUUID().replaceAll("-", "")}`;
}

/**
 * The id of a request (pure but for `make`): the client's `x-request-id` when it is 1 to 128
 * characters of `A-Z a-z 0-9 . _ : -`, else a new one.
 *
 * @example
 * requestIdOf("trace-42"); // "trace-42"
 * requestIdOf("bad id\n"); // "req_…"
 */
export function requestIdOf(given: string | null | undefined, make: () => string = newRequestId): string {
  return given != null && SAFE_ID.test(given) ? given : make();
}

/** The surface label of a path (pure): the matching route's path or prefix, else `other`. Bounded by the route table. */
export function surfaceOf(routes: readonly Route[], path: string): string {
  const route = findRoute(routes, path);
  if (!route) return "other";
  return typeof route.path === "string" ? route.path : route.path.prefix;
}

/** A response carrying `x-request-id` (the same object when its headers may be changed). */
function withRequestId(response: Response, id: string, body: ReadableStream<Uint8Array> | null = response.body): Response {
  if (body === response.body) {
    try {
      response.headers.set(REQUEST_ID_HEADER, id);
      return response;
    } catch {
      // Immutable headers (a response fetched from elsewhere): copied below.
    }
  }
  const out = new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  out.headers.set(REQUEST_ID_HEADER, id);
  return out;
}

/** Whether a response is a stream of server-sent events (pure). */
function isStream(response: Response): boolean {
  return response.body !== null && (response.headers.get("content-type") ?? "").startsWith("text/event-stream");
}

/** What a request's event is built from besides its note. */
interface Observed {
  requestId: string;
  surface: string;
  started: number;
  note: RequestNote;
}

/** The `request` event of an answered request (pure). */
export function requestEvent(
  o: Observed,
  status: number,
  stream: boolean,
  ended: number,
  firstChunk?: number,
  errorCode?: string,
): RequestEvent {
  const { note } = o;
  return {
    requestId: o.requestId,
    surface: o.surface,
    ...(note.model !== undefined ? { model: note.model } : {}),
    status,
    durationMs: ended - o.started,
    ...(firstChunk !== undefined ? { ttftMs: firstChunk - o.started } : {}),
    ...(note.promptTokens !== undefined ? { promptTokens: note.promptTokens } : {}),
    ...(note.completionTokens !== undefined ? { completionTokens: note.completionTokens } : {}),
    ...(note.costUnits !== undefined ? { costUnits: note.costUnits } : {}),
    stream,
    ...(errorCode !== undefined ? { errorCode } : {}),
  };
}

/** What {@link observeRequests} wraps: the hub's own handler. */
export type FetchLike = (request: Request, client?: ClientInfo) => Promise<Response>;

/**
 * The hub's `fetch` with request ids on every response and, while someone listens or a
 * tracer records, the `request` event and the `srp.request` span once per request (`routes`
 * name the surfaces).
 */
export function observeRequests(emitter: HubEmitter, routes: readonly Route[], handle: FetchLike): FetchLike {
  return async (request, client) => {
    const requestId = requestIdOf(request.headers.get(REQUEST_ID_HEADER));
    const listening = emitter.listenerCount("request") > 0;
    const span = startRequestSpan(request, requestId);
    if (!listening && span === undefined) return withRequestId(await handle(request, client), requestId);
    const surface = surfaceOf(routes, new URL(request.url).pathname);
    const o: Observed = { requestId, surface, started: Date.now(), note: openNote(request, requestId, span) };
    const ended = (e: RequestEvent) => {
      if (listening) emitter.emit("request", e);
      if (span) endRequestSpan(span, e);
    };
    let response: Response;
    try {
      response = span
        ? await context.with(trace.setSpan(context.active(), span), () => handle(request, client))
        : await handle(request, client);
    } catch (error) {
      ended(requestEvent(o, 500, false, Date.now()));
      throw error;
    }
    if (!isStream(response)) {
      ended(requestEvent(o, response.status, false, Date.now(), undefined, errorCodeOf(response)));
      return withRequestId(response, requestId);
    }
    let firstChunk: number | undefined;
    const body = watchedBody(
      response.body!,
      () => (firstChunk = Date.now()),
      () => ended(requestEvent(o, response.status, true, Date.now(), firstChunk)),
    );
    return withRequestId(response, requestId, body);
  };
}
