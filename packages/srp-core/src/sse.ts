/**
 * Server-sent events (the WHATWG `text/event-stream` format) as OpenAI- and
 * Anthropic-style streaming APIs use them: a parser over any byte stream, and a
 * formatter. Runtime-neutral: Web streams and `TextDecoder` only.
 */

/** One dispatched server-sent event. */
export interface SseEvent {
  /** The `event:` field, when the event named one. */
  event?: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The `id:` field, when present. */
  id?: string;
}

/** Options of {@link parseSse}. */
export interface ParseSseOptions {
  /** Largest event (sum of its field lines) accepted, in characters; default 16 MiB. */
  maxEventChars?: number;
}

/**
 * Parses a `text/event-stream` body into events, as they arrive.
 * Throws `RangeError` when one event exceeds `maxEventChars`.
 *
 * @example
 * const response = await fetch(url, { method: "POST", body });
 * for await (const event of parseSse(response.body!)) {
 *   if (event.data === "[DONE]") break;
 *   console.log(JSON.parse(event.data));
 * }
 */
export async function* parseSse(
  body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  options: ParseSseOptions = {},
): AsyncGenerator<SseEvent> {
  const maxChars = options.maxEventChars ?? 16 * 1024 * 1024;
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let dataChars = 0;
  let event: string | undefined;
  let id: string | undefined;
  let first = true;

  const line = (text: string): SseEvent | undefined => {
    if (text === "") {
      if (data.length === 0) {
        event = undefined;
        return undefined;
      }
      const out: SseEvent = { data: data.join("\n") };
      if (event !== undefined) out.event = event;
      if (id !== undefined) out.id = id;
      data = [];
      dataChars = 0;
      event = undefined;
      return out;
    }
    if (text.startsWith(":")) return undefined;
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      dataChars += value.length;
      if (dataChars > maxChars) throw new RangeError(`server-sent event exceeds ${maxChars} characters`);
      data.push(value);
    } else if (field === "event") event = value;
    else if (field === "id" && !value.includes("\0")) id = value;
    return undefined;
  };

  for await (const bytes of iterate(body)) {
    buffer += decoder.decode(bytes, { stream: true });
    if (first && buffer.length > 0) {
      if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
      first = false;
    }
    let start = 0;
    for (;;) {
      const nl = nextBreak(buffer, start);
      if (nl === -1) break;
      // A CR at the very end may be the first half of CRLF: wait for the next bytes.
      if (buffer[nl] === "\r" && nl === buffer.length - 1) break;
      const out = line(buffer.slice(start, nl));
      start = buffer[nl] === "\r" && buffer[nl + 1] === "\n" ? nl + 2 : nl + 1;
      if (out) yield out;
    }
    buffer = buffer.slice(start);
    if (buffer.length > maxChars) throw new RangeError(`server-sent event line exceeds ${maxChars} characters`);
  }
  buffer += decoder.decode();
  if (buffer.length > 0) line(buffer); // an unterminated last line never dispatches an event
}

function nextBreak(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) return i;
  }
  return -1;
}

async function* iterate(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (Symbol.asyncIterator in body) {
    yield* body as AsyncIterable<Uint8Array>;
    return;
  }
  const reader = (body as ReadableStream<Uint8Array>).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Formats one server-sent event: `data: <text>` lines, an optional `event:` line, and
 * the blank line that dispatches it. Objects are serialized as JSON on one line.
 *
 * @example
 * formatSse({ id: "c1" }); // 'data: {"id":"c1"}\n\n'
 * formatSse("[DONE]");     // 'data: [DONE]\n\n'
 */
export function formatSse(data: unknown, event?: string): string {
  const text = typeof data === "string" ? data : JSON.stringify(data);
  const head = event === undefined ? "" : `event: ${event}\n`;
  // JSON.stringify never emits raw line breaks: the common case is one data line.
  if (text.indexOf("\n") === -1 && text.indexOf("\r") === -1) return `${head}data: ${text}\n\n`;
  return `${head}${text
    .split(/\r\n|\r|\n/)
    .map((l) => `data: ${l}`)
    .join("\n")}\n\n`;
}
