/**
 * Adapter from a Web-standard `fetch(Request) => Response` handler to a `node:http`
 * request listener, so the hub mounts in a bare `node:http` server, Express, Fastify
 * (raw) or anything else that exposes Node's request and response.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";

/** A Web-standard request handler. */
export type FetchHandler = (request: Request) => Promise<Response>;

/** Converts a Node request into a Web `Request`. */
export function toWebRequest(req: IncomingMessage, abort?: AbortSignal): Request {
  const host = req.headers.host ?? "localhost";
  const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
  const url = new URL(req.url ?? "/", `${tls ? "https" : "http"}://${host}`);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = { method: req.method ?? "GET", headers };
  if (hasBody) {
    init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.duplex = "half";
  }
  if (abort) init.signal = abort;
  return new Request(url, init);
}

/** Writes a Web `Response` to a Node response, streaming the body. */
export async function writeWebResponse(response: Response, res: ServerResponse): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, name) => res.appendHeader(name, value));
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
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

/**
 * Wraps a fetch handler as a `node:http` request listener. The Web request's signal
 * aborts when the client disconnects.
 */
export function toNodeHandler(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const controller = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    handler(toWebRequest(req, controller.signal))
      .then((response) => {
        // A response sent before the request body was read (e.g. 413) ends the connection,
        // so the unread rest of the body cannot stall it.
        if (!req.complete && !res.headersSent) res.setHeader("connection", "close");
        return writeWebResponse(response, res);
      })
      .catch((error: unknown) => {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ error: { code: "internal", message: "internal error" } }));
        } else {
          res.destroy(error instanceof Error ? error : undefined);
        }
      });
  };
}
