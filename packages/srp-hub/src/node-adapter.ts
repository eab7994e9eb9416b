/**
 * Adapter from a Web-standard `fetch(Request) => Response` handler to a `node:http`
 * request listener, so the hub mounts in a bare `node:http` server, Express, Fastify
 * (raw) or anything else that exposes Node's request and response.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";

/** What the transport knows of a request's client, beyond the request itself. */
export interface ClientInfo {
  /** The socket's remote address (`req.socket.remoteAddress`). */
  remoteAddress?: string | undefined;
}

/** A Web-standard request handler; `client` carries the client's address when the server knows it. */
export type FetchHandler = (request: Request, client?: ClientInfo) => Promise<Response>;

/** Largest request body the adapter buffers by default (the largest SRP frame). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  return headers;
}

function urlOf(req: IncomingMessage): string {
  const host = req.headers.host ?? "localhost";
  const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
  return `${tls ? "https" : "http"}://${host}${req.url ?? "/"}`;
}

/** Converts a Node request into a Web `Request` whose body streams from the Node request. */
export function toWebRequest(req: IncomingMessage, abort?: AbortSignal): Request {
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = { method: req.method ?? "GET", headers: headersOf(req) };
  if (hasBody) {
    init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.duplex = "half";
  }
  if (abort) init.signal = abort;
  return new Request(urlOf(req), init);
}

/** Reads a Node request body into memory, up to `max` bytes (`undefined` beyond). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners("data");
        req.pause();
        resolve(undefined);
        return;
      }
      parts.push(chunk);
    });
    req.once("end", () => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)));
    req.once("error", reject);
  });
}

/** Writes a Web `Response` to a Node response: whole bodies in one write, event streams as they come. */
export async function writeWebResponse(response: Response, res: ServerResponse): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, name) => res.appendHeader(name, value));
  if (!response.body) {
    res.end();
    return;
  }
  const type = response.headers.get("content-type") ?? "";
  if (!type.startsWith("text/event-stream")) {
    const body = Buffer.from(await response.arrayBuffer());
    if (!res.hasHeader("content-length")) res.setHeader("content-length", body.length);
    res.end(body);
    return;
  }
  const reader = response.body.getReader();
  if (res.destroyed || res.closed) {
    // The client left before the response began: release the body (this cancels the job).
    await reader.cancel().catch(() => {});
    return;
  }
  res.flushHeaders();
  res.on("close", () => void reader.cancel().catch(() => {}));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off("drain", go);
            res.off("close", go);
            resolve();
          };
          res.once("drain", go);
          res.once("close", go);
        });
        if (res.destroyed) break;
      }
    }
  } finally {
    res.end();
  }
}

/** Options of {@link toNodeHandler}. */
export interface NodeHandlerOptions {
  /** Largest request body buffered before the handler runs; larger ones get 413. Default 16 MiB. */
  maxBodyBytes?: number;
}

/**
 * Wraps a fetch handler as a `node:http` request listener. Request bodies are read into
 * memory first (bounded by `maxBodyBytes`); the Web request's signal aborts when the
 * client disconnects.
 */
export function toNodeHandler(
  handler: FetchHandler,
  options: NodeHandlerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const max = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const fail = (res: ServerResponse, error: unknown) => {
    if (!res.headersSent) {
      res.statusCode = 500;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ error: { message: "internal error", type: "api_error", param: null, code: "internal" } }));
    } else {
      res.destroy(error instanceof Error ? error : undefined);
    }
  };
  return (req, res) => {
    const controller = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    const run = (body: Buffer | undefined) => {
      const init: RequestInit = { method: req.method ?? "GET", headers: headersOf(req), signal: controller.signal };
      if (body !== undefined) init.body = body;
      handler(new Request(urlOf(req), init), { remoteAddress: req.socket.remoteAddress })
        .then((response) => writeWebResponse(response, res))
        .catch((error: unknown) => fail(res, error));
    };
    if (req.method === "GET" || req.method === "HEAD") return run(undefined);
    readBody(req, max).then(
      (body) => {
        if (body === undefined) {
          // The unread rest of the body must not stall the connection: answer and close it.
          res.writeHead(413, { "content-type": "application/json", connection: "close" });
          res.end(
            JSON.stringify({
              error: {
                message: `the body may be at most ${max} bytes`,
                type: "invalid_request_error",
                param: null,
                code: "api.body_too_large",
              },
            }),
          );
          return;
        }
        run(body);
      },
      (error: unknown) => fail(res, error),
    );
  };
}
