/**
 * The OpenAI Responses API translated to and from chat completions (spec/v1/consumer.md,
 * "OpenAI Responses"), for instances that do not run the Responses API themselves: a
 * request's input items as chat messages, a chat completion as a Response object, and chat
 * chunks as the Responses event stream. Pure functions; the surface is `responses.ts`.
 */
import { randomBytes, SrpError } from "@srp/core";
import type { Usage } from "@srp/core/schema";
import { chatReasoningText } from "./reasoning.js";
import type { SrpUsageExtension } from "./serve.js";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function invalid(message: string): never {
  throw new SrpError("api.invalid_body", message);
}

/** A new id for an item or a call: `prefix_` and 24 random hex digits (OpenAI's shape). */
export function newId(prefix: string): string {
  return `${prefix}_${Buffer.from(randomBytes(12)).toString("hex")}`;
}

/** The id prefix of an item of `type`, as OpenAI names them. */
const ID_PREFIX: Readonly<Record<string, string>> = { message: "msg", function_call: "fc", function_call_output: "fco", reasoning: "rs" };

/**
 * A request's `input` as item objects (SRP-CON-033): a string is one user message; an item
 * without `type` but with a `role` is a message; a message's string `content` becomes one
 * `input_text` part (`output_text` for an assistant message); every item gets an `id` when it
 * has none. These are the items a stored response keeps as its turn's input.
 *
 * @example
 * inputItems("Hi"); // [{ type: "message", id: "msg_…", role: "user", content: [{ type: "input_text", text: "Hi" }] }]
 */
export function inputItems(input: unknown): Json[] {
  if (input === undefined || input === null) return [];
  if (typeof input === "string")
    return [{ type: "message", id: newId("msg"), role: "user", content: [{ type: "input_text", text: input }] }];
  if (!Array.isArray(input)) return invalid("`input` is a string or an array of items");
  return input.map((item: unknown, i) => {
    if (!isObject(item)) return invalid(`input[${i}] must be an object`);
    const type =
      typeof item.type === "string"
        ? item.type
        : typeof item.role === "string"
          ? "message"
          : invalid(`input[${i}]: an item needs a \`type\` (or a \`role\`, for a message)`);
    const out: Json = { ...item, type };
    if (type === "message" && typeof item.content === "string")
      out.content = [
        {
          type: item.role === "assistant" ? "output_text" : "input_text",
          text: item.content,
          ...(item.role === "assistant" ? { annotations: [] } : {}),
        },
      ];
    if (typeof out.id !== "string" || out.id === "") out.id = newId(ID_PREFIX[type] ?? "item");
    return out;
  });
}

/**
 * A Responses request's members a translated instance cannot honour, with why: a request
 * carrying one of them (not null, not false) is refused for translation (SRP-CON-035).
 */
const UNTRANSLATABLE: Readonly<Record<string, string>> = {
  background: "background responses",
  conversation: "conversations",
  prompt: "prompt templates",
  top_logprobs: "log probabilities",
  max_tool_calls: "a limit on built-in tool calls",
};

/** The text of message content parts (`input_text`, `output_text`, `refusal`), and the chat parts of its images and files. */
function contentParts(content: unknown, where: string): Json[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (content === undefined || content === null) return [];
  if (!Array.isArray(content)) return invalid(`${where}.content must be a string or an array of parts`);
  return content.map((p: unknown, j): Json => {
    const at = `${where}.content[${j}]`;
    if (!isObject(p)) return invalid(`${at} must be an object`);
    if (
      (p.type === "input_text" || p.type === "output_text" || p.type === "text" || p.type === "summary_text") &&
      typeof p.text === "string"
    )
      return { type: "text", text: p.text };
    if (p.type === "refusal" && typeof p.refusal === "string") return { type: "text", text: p.refusal };
    if (p.type === "input_image") {
      if (typeof p.image_url !== "string" || p.image_url === "")
        return invalid(`${at}: only images given by \`image_url\` (a URL or a data URL) are supported for this model's providers`);
      return {
        type: "image_url",
        image_url: { url: p.image_url, ...(typeof p.detail === "string" && p.detail !== "original" ? { detail: p.detail } : {}) },
      };
    }
    if (p.type === "input_file") {
      if (typeof p.file_data !== "string")
        return invalid(`${at}: only files given inline by \`file_data\` are supported for this model's providers`);
      return { type: "file", file: { file_data: p.file_data, ...(typeof p.filename === "string" ? { filename: p.filename } : {}) } };
    }
    return invalid(`${at}: part type ${JSON.stringify(p.type)} is not supported for this model's providers`);
  });
}

/** Chat `content` for parts: a string when all are text (joined by newlines), else the parts. */
function chatContent(parts: Json[]): string | Json[] {
  return parts.every((p) => p.type === "text") ? parts.map((p) => p.text as string).join("\n") : parts;
}

/** A `function_call_output`'s `output`: its text, and the images it holds (which follow in a user message). */
function callOutput(output: unknown, where: string): { text: string; images: Json[] } {
  if (typeof output === "string") return { text: output, images: [] };
  const parts = contentParts(output, where.replace(/\.content$/, ""));
  return {
    text: parts
      .filter((p) => p.type === "text")
      .map((p) => p.text as string)
      .join("\n"),
    images: parts.filter((p) => p.type !== "text"),
  };
}

/**
 * Items as chat messages (SRP-CON-034): `instructions` first as a system message; user,
 * system and developer messages (developer as system); an assistant message and the
 * `function_call` items after it as one assistant message with `tool_calls`; each
 * `function_call_output` as a `tool` message (images in it follow as a user message).
 * `reasoning` items are dropped (chat has no place for them).
 *
 * @param items the conversation's items (a stored conversation's, then the request's input), normalized by {@link inputItems}
 * @param stored how many of the items come from the stored conversation (for error messages)
 * @throws SrpError `api.invalid_body` for an item that cannot be translated
 */
export function itemsToMessages(instructions: unknown, items: readonly Json[], stored = 0): Json[] {
  const messages: Json[] = [];
  if (typeof instructions === "string" && instructions !== "") messages.push({ role: "system", content: instructions });
  let assistant: Json | undefined;
  const flush = () => {
    if (assistant) messages.push(assistant);
    assistant = undefined;
  };
  items.forEach((item, i) => {
    const where = i < stored ? `the stored conversation's item ${i}` : `input[${i - stored}]`;
    switch (item.type) {
      case "message": {
        const role = item.role;
        if (role === "assistant") {
          flush();
          const text = contentParts(item.content, where)
            .filter((p) => p.type === "text")
            .map((p) => p.text as string)
            .join("");
          assistant = { role: "assistant", content: text === "" ? null : text };
          return;
        }
        if (role !== "user" && role !== "system" && role !== "developer")
          return invalid(`${where}: a message's role is user, assistant, system or developer`);
        flush();
        messages.push({ role: role === "user" ? "user" : "system", content: chatContent(contentParts(item.content, where)) });
        return;
      }
      case "function_call": {
        if (typeof item.call_id !== "string" || typeof item.name !== "string")
          return invalid(`${where}: a function_call needs call_id and name`);
        assistant ??= { role: "assistant", content: null };
        const calls = (assistant.tool_calls ??= []) as Json[];
        calls.push({
          id: item.call_id,
          type: "function",
          function: {
            name: item.name,
            arguments: typeof item.arguments === "string" ? item.arguments : JSON.stringify(item.arguments ?? {}),
          },
        });
        return;
      }
      case "function_call_output": {
        if (typeof item.call_id !== "string") return invalid(`${where}: a function_call_output needs call_id`);
        flush();
        const { text, images } = callOutput(item.output, `${where}.output`);
        messages.push({ role: "tool", tool_call_id: item.call_id, content: text });
        if (images.length > 0) messages.push({ role: "user", content: images });
        return;
      }
      case "reasoning":
        return;
      default:
        return invalid(`${where}: item type ${JSON.stringify(item.type)} is not supported for this model's providers`);
    }
  });
  flush();
  return messages;
}

/** Whether a tool type is a hosted web search, which a translated request goes without (SRP-CON-035). */
const isWebSearch = (type: unknown) => typeof type === "string" && type.startsWith("web_search");

/** A Responses function tool as a chat tool. */
function chatTool(t: Json, where: string): Json {
  if (typeof t.name !== "string" || t.name === "") return invalid(`${where}: a function tool needs a name`);
  const fn: Json = { name: t.name };
  if (typeof t.description === "string") fn.description = t.description;
  fn.parameters = isObject(t.parameters) ? t.parameters : { type: "object", properties: {} };
  if (t.strict === true) fn.strict = true;
  return { type: "function", function: fn };
}

/**
 * A request's `tools` as chat tools (SRP-CON-035): `function` tools, and the function tools
 * of a `namespace` tool (as Codex sends them); hosted `web_search` tools are left out; any
 * other type is refused.
 */
export function chatTools(tools: unknown): Json[] {
  if (!Array.isArray(tools)) return [];
  const out: Json[] = [];
  tools.forEach((t: unknown, i) => {
    const where = `tools[${i}]`;
    if (!isObject(t)) return invalid(`${where} must be an object`);
    if (t.type === "function") out.push(chatTool(t, where));
    else if (t.type === "namespace" && Array.isArray(t.tools)) {
      (t.tools as unknown[]).forEach((inner, j) => {
        if (!isObject(inner) || inner.type !== "function") return invalid(`${where}.tools[${j}]: a namespace holds function tools`);
        out.push(chatTool(inner, `${where}.tools[${j}]`));
      });
    } else if (!isWebSearch(t.type))
      invalid(`${where}: tool type ${JSON.stringify(t.type)} is served only by an instance that runs the Responses API itself`);
  });
  return out;
}

/** The namespace of each function tool declared inside a `namespace` tool, by function name. */
export function toolNamespaces(tools: unknown): Map<string, string> {
  const map = new Map<string, string>();
  if (!Array.isArray(tools)) return map;
  for (const t of tools as unknown[]) {
    if (!isObject(t) || t.type !== "namespace" || typeof t.name !== "string" || !Array.isArray(t.tools)) continue;
    for (const inner of t.tools as unknown[]) if (isObject(inner) && typeof inner.name === "string") map.set(inner.name, t.name);
  }
  return map;
}

/** `tool_choice` as chat's. */
function chatToolChoice(choice: unknown): unknown {
  if (choice === "auto" || choice === "none" || choice === "required") return choice;
  if (isObject(choice) && choice.type === "function" && typeof choice.name === "string")
    return { type: "function", function: { name: choice.name } };
  return invalid('`tool_choice` is auto, none, required or {type: "function", name} for this model\'s providers');
}

/** `text.format` as chat's `response_format` (undefined for plain text). */
function responseFormat(text: unknown): Json | undefined {
  if (!isObject(text) || !isObject(text.format)) return undefined;
  const f = text.format;
  if (f.type === "text") return undefined;
  if (f.type === "json_object") return { type: "json_object" };
  if (f.type === "json_schema") {
    if (typeof f.name !== "string" || !isObject(f.schema)) return invalid("`text.format` of type json_schema needs name and schema");
    const schema: Json = { name: f.name, schema: f.schema };
    if (typeof f.description === "string") schema.description = f.description;
    if (typeof f.strict === "boolean") schema.strict = f.strict;
    return { type: "json_schema", json_schema: schema };
  }
  return invalid("`text.format.type` is text, json_object or json_schema");
}

/**
 * Translates a Responses request to a chat completions body (SRP-CON-034, SRP-CON-035):
 * the items ({@link itemsToMessages}), tools ({@link chatTools}), `tool_choice`,
 * `parallel_tool_calls`, `text.format` as `response_format`, `reasoning.effort` as
 * `reasoning_effort`, `max_output_tokens` as `max_completion_tokens`, `temperature`,
 * `top_p`, `user` and `stream` (with usage in the stream). `store`, `metadata`, `include`,
 * `prompt_cache_key`, `client_metadata`, `safety_identifier`, `service_tier`, `truncation`,
 * `text.verbosity` and `reasoning.summary` have no chat counterpart and are not carried.
 *
 * @param items the conversation's items, normalized ({@link inputItems}), a stored conversation's first
 * @param stored how many of `items` come from the stored conversation
 * @throws SrpError `api.invalid_body` naming what cannot be translated
 */
export function responsesToChat(body: Json, items: readonly Json[], stored = 0): Json {
  for (const [member, what] of Object.entries(UNTRANSLATABLE)) {
    const v = body[member];
    if (v !== undefined && v !== null && v !== false && v !== 0)
      invalid(`\`${member}\` (${what}) is served only by an instance that runs the Responses API itself`);
  }
  const out: Json = { model: body.model, messages: itemsToMessages(body.instructions, items, stored) };
  const tools = chatTools(body.tools);
  if (tools.length > 0) {
    out.tools = tools;
    if (body.tool_choice !== undefined && body.tool_choice !== null) out.tool_choice = chatToolChoice(body.tool_choice);
    if (typeof body.parallel_tool_calls === "boolean") out.parallel_tool_calls = body.parallel_tool_calls;
  }
  const format = responseFormat(body.text);
  if (format) out.response_format = format;
  if (isObject(body.reasoning) && typeof body.reasoning.effort === "string") out.reasoning_effort = body.reasoning.effort;
  if (typeof body.max_output_tokens === "number") out.max_completion_tokens = body.max_output_tokens;
  for (const k of ["temperature", "top_p"] as const) if (typeof body[k] === "number") out[k] = body[k];
  if (typeof body.user === "string") out.user = body.user;
  if (body.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  return out;
}

/**
 * The members of a Response that echo the request (SRP-CON-038), with `status`
 * `in_progress`, no output and no usage yet: what `response.created` carries.
 */
export function responseShell(request: Json, id: string, model: string, createdAt = Math.floor(Date.now() / 1000)): Json {
  const reasoning = isObject(request.reasoning) ? request.reasoning : {};
  return {
    id,
    object: "response",
    created_at: createdAt,
    status: "in_progress",
    background: false,
    error: null,
    incomplete_details: null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    model,
    output: [],
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id: request.previous_response_id ?? null,
    reasoning: { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null },
    store: request.store !== false,
    temperature: request.temperature ?? null,
    text: isObject(request.text) ? request.text : { format: { type: "text" } },
    tool_choice: request.tool_choice ?? "auto",
    tools: Array.isArray(request.tools) ? request.tools : [],
    top_p: request.top_p ?? null,
    truncation: "disabled",
    usage: null,
    user: request.user ?? null,
    metadata: isObject(request.metadata) ? request.metadata : {},
  };
}

/**
 * A Responses `usage` for the billed usage (SRP-CON-039): `input_tokens` (cached ones
 * included) with `cached_tokens`, `output_tokens` (reasoning ones included) with
 * `reasoning_tokens`, `total_tokens`, then SRP's cost and receipt.
 */
export function responsesUsage(usage: Usage, ext: SrpUsageExtension): Json {
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedTokens ?? 0 },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: usage.reasoningTokens ?? 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
    ...ext,
  };
}

/** A Response's `status` and `incomplete_details` for a chat `finish_reason` (SRP-CON-038). */
export function finishStatus(finish: unknown): { status: "completed" | "incomplete"; incomplete_details: Json | null } {
  if (finish === "length") return { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } };
  if (finish === "content_filter") return { status: "incomplete", incomplete_details: { reason: "content_filter" } };
  return { status: "completed", incomplete_details: null };
}

const outputText = (text: string): Json => ({ type: "output_text", text, annotations: [], logprobs: [] });

/** A function_call item for a chat tool call. */
function callItem(call: { id?: unknown; name: string; arguments: string }, namespaces: ReadonlyMap<string, string>, status: string): Json {
  const ns = namespaces.get(call.name);
  return {
    id: newId("fc"),
    type: "function_call",
    status,
    call_id: typeof call.id === "string" && call.id !== "" ? call.id : newId("call"),
    name: call.name,
    arguments: call.arguments,
    ...(ns !== undefined ? { namespace: ns } : {}),
  };
}

/**
 * The output items a chat completion becomes (SRP-CON-038): the first choice's reasoning
 * (`reasoning_content` or `reasoning`) as a `reasoning` item with one `reasoning_text` part,
 * its text as a `message` item with one `output_text` part, each tool call as a
 * `function_call` item (its `namespace` when the function was declared in one).
 */
export function chatToOutput(response: Json, namespaces: ReadonlyMap<string, string> = new Map()): Json[] {
  const choice = Array.isArray(response.choices) && isObject(response.choices[0]) ? response.choices[0] : {};
  const message = isObject(choice.message) ? choice.message : {};
  const itemStatus = choice.finish_reason === "length" ? "incomplete" : "completed";
  const out: Json[] = [];
  const reasoning = chatReasoningText(message);
  if (reasoning !== "")
    out.push({
      id: newId("rs"),
      type: "reasoning",
      summary: [],
      content: [{ type: "reasoning_text", text: reasoning }],
      status: "completed",
    });
  if (typeof message.content === "string" && message.content !== "")
    out.push({ id: newId("msg"), type: "message", role: "assistant", status: itemStatus, content: [outputText(message.content)] });
  if (Array.isArray(message.tool_calls)) {
    for (const c of message.tool_calls as unknown[]) {
      if (!isObject(c) || !isObject(c.function) || typeof c.function.name !== "string") continue;
      const args = c.function.arguments;
      out.push(
        callItem(
          { id: c.id, name: c.function.name, arguments: typeof args === "string" ? args : JSON.stringify(args ?? {}) },
          namespaces,
          "completed",
        ),
      );
    }
  }
  return out;
}

/** Translates a chat.completion to a Response object (SRP-CON-038), its usage the billed one. */
export function chatToResponse(
  response: Json,
  shell: Json,
  usage: Usage,
  ext: SrpUsageExtension,
  namespaces: ReadonlyMap<string, string> = new Map(),
): Json {
  const choice = Array.isArray(response.choices) && isObject(response.choices[0]) ? response.choices[0] : {};
  return { ...shell, ...finishStatus(choice.finish_reason), output: chatToOutput(response, namespaces), usage: responsesUsage(usage, ext) };
}

/** The item being streamed. */
interface OpenItem {
  kind: "reasoning" | "message" | "call";
  index: number;
  text: string;
}

/**
 * Chat chunks translated to the Responses event sequence (SRP-CON-040), in order and
 * without `sequence_number` (the encoder numbers them): `response.created` and
 * `response.in_progress` once; then per output item `response.output_item.added`, its
 * content (`response.content_part.added`, `response.reasoning_text.delta` or
 * `response.output_text.delta`, their `.done`, `response.content_part.done`; for a call
 * `response.function_call_arguments.delta` and `.done`) and `response.output_item.done`.
 * One item streams at a time: a reasoning item, a message item, then each tool call (chat
 * servers stream calls one after another; arguments for a call already closed are not
 * relayed). Only the first choice is kept. The closing event ({@link ChatToResponsesEvents.end})
 * waits for the receipt.
 */
export class ChatToResponsesEvents {
  /** The output items so far (closed ones final). */
  readonly output: Json[] = [];
  /** The last `finish_reason`. */
  finish: unknown = null;
  #started = false;
  #open: OpenItem | undefined;
  /** Chat tool call (its index, else its id) -> output index. */
  readonly #calls = new Map<number | string, number>();
  #lastCall: number | string | undefined;
  readonly #shell: Json;
  readonly #namespaces: ReadonlyMap<string, string>;

  /** @param shell the Response's echoed members ({@link responseShell}) */
  constructor(shell: Json, namespaces: ReadonlyMap<string, string> = new Map()) {
    this.#shell = shell;
    this.#namespaces = namespaces;
  }

  /** `response.created` and `response.in_progress`, once. */
  start(): Json[] {
    if (this.#started) return [];
    this.#started = true;
    return [
      { type: "response.created", response: { ...this.#shell, output: [] } },
      { type: "response.in_progress", response: { ...this.#shell, output: [] } },
    ];
  }

  /** Opens a new output item (closing the open one). */
  #openItem(kind: OpenItem["kind"], item: Json): Json[] {
    const out = this.close();
    const index = this.output.length;
    this.output.push(item);
    this.#open = { kind, index, text: "" };
    out.push({ type: "response.output_item.added", output_index: index, item: structuredClone(item) });
    if (kind === "message")
      out.push({ type: "response.content_part.added", item_id: item.id, output_index: index, content_index: 0, part: outputText("") });
    if (kind === "reasoning")
      out.push({
        type: "response.content_part.added",
        item_id: item.id,
        output_index: index,
        content_index: 0,
        part: { type: "reasoning_text", text: "" },
      });
    return out;
  }

  /** The events that close the open item. */
  close(): Json[] {
    const open = this.#open;
    if (!open) return [];
    this.#open = undefined;
    const item = this.output[open.index]!;
    const base = { item_id: item.id, output_index: open.index };
    const status = this.finish === "length" ? "incomplete" : "completed";
    const out: Json[] = [];
    if (open.kind === "reasoning") {
      const part = { type: "reasoning_text", text: open.text };
      Object.assign(item, { content: [part], status: "completed" });
      out.push(
        { type: "response.reasoning_text.done", ...base, content_index: 0, text: open.text },
        { type: "response.content_part.done", ...base, content_index: 0, part },
      );
    } else if (open.kind === "message") {
      const part = outputText(open.text);
      Object.assign(item, { content: [part], status });
      out.push(
        { type: "response.output_text.done", ...base, content_index: 0, text: open.text, logprobs: [] },
        { type: "response.content_part.done", ...base, content_index: 0, part },
      );
    } else {
      Object.assign(item, { arguments: open.text, status: "completed" });
      out.push({ type: "response.function_call_arguments.done", ...base, name: item.name, arguments: open.text });
    }
    out.push({ type: "response.output_item.done", output_index: open.index, item: structuredClone(item) });
    return out;
  }

  /** The events of one chat chunk. */
  chunk(data: Json): Json[] {
    if (data.usage !== null && data.usage !== undefined && Array.isArray(data.choices) && data.choices.length === 0) return [];
    const out = this.start();
    const choice = Array.isArray(data.choices) && isObject(data.choices[0]) ? data.choices[0] : undefined;
    if (!choice) return out;
    const delta = isObject(choice.delta) ? choice.delta : {};
    const reasoning = chatReasoningText(delta);
    if (reasoning !== "") {
      if (this.#open?.kind !== "reasoning")
        out.push(...this.#openItem("reasoning", { id: newId("rs"), type: "reasoning", summary: [], content: [], status: "in_progress" }));
      out.push(this.#delta("response.reasoning_text.delta", reasoning));
    }
    if (typeof delta.content === "string" && delta.content !== "") {
      if (this.#open?.kind !== "message")
        out.push(
          ...this.#openItem("message", { id: newId("msg"), type: "message", role: "assistant", status: "in_progress", content: [] }),
        );
      out.push(this.#delta("response.output_text.delta", delta.content));
    }
    if (Array.isArray(delta.tool_calls)) for (const tc of delta.tool_calls as unknown[]) if (isObject(tc)) out.push(...this.#toolCall(tc));
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
      this.finish = choice.finish_reason;
      out.push(...this.close());
    }
    return out;
  }

  /** A text delta of the open item. */
  #delta(type: string, delta: string): Json {
    const open = this.#open!;
    open.text += delta;
    const item = this.output[open.index]!;
    if (type === "response.function_call_arguments.delta") return { type, item_id: item.id, output_index: open.index, delta };
    return {
      type,
      item_id: item.id,
      output_index: open.index,
      content_index: 0,
      delta,
      ...(type === "response.output_text.delta" ? { logprobs: [] } : {}),
    };
  }

  /** The events of one chat tool call delta. */
  #toolCall(tc: Json): Json[] {
    const out: Json[] = [];
    const fn = isObject(tc.function) ? tc.function : {};
    // OpenAI numbers every call; a server that does not is followed by id (a delta without either continues the last call).
    const key = typeof tc.index === "number" ? tc.index : typeof tc.id === "string" ? tc.id : (this.#lastCall ?? 0);
    this.#lastCall = key;
    if (!this.#calls.has(key)) {
      const name = typeof fn.name === "string" ? fn.name : "";
      out.push(...this.#openItem("call", callItem({ id: tc.id, name, arguments: "" }, this.#namespaces, "in_progress")));
      this.#calls.set(key, this.#open!.index);
    }
    if (
      typeof fn.arguments === "string" &&
      fn.arguments !== "" &&
      this.#open?.kind === "call" &&
      this.#calls.get(key) === this.#open.index
    ) {
      out.push(this.#delta("response.function_call_arguments.delta", fn.arguments));
    }
    return out;
  }

  /**
   * The events that end a stream: the open item closed, then `response.completed` (or
   * `response.incomplete` when the output limit or a content filter cut it) with the whole
   * Response and the billed usage.
   */
  end(usage: Usage, ext: SrpUsageExtension): { events: Json[]; response: Json } {
    const events = [...this.start(), ...this.close()];
    const status = finishStatus(this.finish);
    const response = { ...this.#shell, ...status, output: structuredClone(this.output), usage: responsesUsage(usage, ext) };
    events.push({ type: status.status === "completed" ? "response.completed" : "response.incomplete", response });
    return { events, response };
  }

  /** The event that ends a stream which failed after output began: `response.failed` with the SRP code (SRP-CON-041). */
  fail(code: string, message: string): Json[] {
    return [
      ...this.start(),
      {
        type: "response.failed",
        response: { ...this.#shell, status: "failed", error: { code, message }, output: structuredClone(this.output) },
      },
    ];
  }
}
