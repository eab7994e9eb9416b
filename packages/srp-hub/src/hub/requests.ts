/**
 * Request ids and the hub's `request` event. Every response of the hub's `fetch` handler
 * carries `x-request-id`: the client's own when it is a short safe token, else one made
 * here. While someone listens to `request`, each request gets a note (`api/request-note.ts`)
 * that the consumer surfaces fill with the served model and billed usage, and the event is
 * emitted once when the response ends: at once for a whole body, at the stream's end (or
 * cancellation) for server-sent events, whose first chunk gives the time to first token.
 */
import { randomUUID } from "node:crypto";
import { openNote, type RequestNote } from "../api/request-note.js";
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
export function requestEvent(o: Observed, status: number, stream: boolean, ended: number, firstChunk?: number): RequestEvent {
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
  };
}

/**
 * A stream's body passed through unchanged, calling `first` at its first chunk and `ended`
 * once when it finishes, fails or is cancelled by the reader.
 */
export function watchedBody(body: ReadableStream<Uint8Array>, first: () => void, ended: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let seen = false;
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    ended();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const r = await reader.read();
          if (r.done) {
            controller.close();
            end();
            return;
          }
          if (!seen) {
            seen = true;
            first();
          }
          controller.enqueue(r.value);
        } catch (error) {
          end();
          controller.error(error);
        }
      },
      async cancel(reason) {
        end();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** What {@link observeRequests} wraps: the hub's own handler. */
export type FetchLike = (request: Request, client?: ClientInfo) => Promise<Response>;

/**
 * The hub's `fetch` with request ids on every response and, while someone listens, the
 * `request` event once per request (`routes` name the surfaces).
 */
export function observeRequests(emitter: HubEmitter, routes: readonly Route[], handle: FetchLike): FetchLike {
  return async (request, client) => {
    const requestId = requestIdOf(request.headers.get(REQUEST_ID_HEADER));
    if (emitter.listenerCount("request") === 0) return withRequestId(await handle(request, client), requestId);
    const o: Observed = {
      requestId,
      surface: surfaceOf(routes, new URL(request.url).pathname),
      started: Date.now(),
      note: openNote(request),
    };
    let response: Response;
    try {
      response = await handle(request, client);
    } catch (error) {
      emitter.emit("request", requestEvent(o, 500, false, Date.now()));
      throw error;
    }
    if (!isStream(response)) {
      emitter.emit("request", requestEvent(o, response.status, false, Date.now()));
      return withRequestId(response, requestId);
    }
    let firstChunk: number | undefined;
    const body = watchedBody(
      response.body!,
      () => (firstChunk = Date.now()),
      () => emitter.emit("request", requestEvent(o, response.status, true, Date.now(), firstChunk)),
    );
    return withRequestId(response, requestId, body);
  };
}
