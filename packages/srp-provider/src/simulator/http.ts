/** The simulator's OpenAI-shaped JSON answers and error bodies. */
import type { ServerResponse } from "node:http";

/** An OpenAI error body. */
export function errorBody(message: string, type: string, code: string | null, param: string | null = null) {
  return { error: { message, type, param, code } };
}

/** Sends a JSON answer labelled as the simulator's. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "x-srp-simulator": "1" });
  res.end(text);
}

/** OpenAI's 404 for a model the server does not serve. */
export function sendUnknownModel(res: ServerResponse, model: unknown): void {
  sendJson(res, 404, errorBody(`The model \`${String(model)}\` does not exist.`, "invalid_request_error", "model_not_found", "model"));
}
