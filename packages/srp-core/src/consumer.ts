/**
 * The consumer API as a contract: checking a request body against its schema (what a
 * hub refuses with `api.invalid_body`), and the OpenAPI 3.1 document of the whole
 * surface, made from the same schemas.
 */
import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";
import { CONSUMER_SCHEMAS } from "./schema/consumer.js";

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

/**
 * Checks a consumer request body against its schema. Returns undefined when it conforms,
 * else the first problem as `path: message` (e.g. `/messages: Expected array length to
 * be greater or equal to 1`).
 *
 * @example
 * checkConsumerBody(ChatCompletionRequest, { model: "m", messages: [] }); // "/messages: ..."
 */
export function checkConsumerBody(schema: TSchema, body: unknown): string | undefined {
  let c = compiled.get(schema);
  if (!c) compiled.set(schema, (c = TypeCompiler.Compile(schema)));
  if (c.Check(body)) return undefined;
  const first = c.Errors(body).First();
  if (!first) return "the body does not match its schema";
  return (first.schema.anyOf ? explainUnion(first.schema, first.value, first.path) : undefined) ?? `${first.path || "/"}: ${first.message}`;
}

/** The kind of a JSON value, as the members of a union are told apart. */
function kindOf(value: unknown): string {
  return value === null
    ? "null"
    : Array.isArray(value)
      ? "array"
      : typeof value === "number"
        ? Number.isInteger(value)
          ? "integer"
          : "number"
        : typeof value;
}

/**
 * A clearer message than "Expected union value" for a value that fails every member of
 * a union: the problem inside the one member of the value's kind (an array of parts), or
 * inside the one member whose `type` it names (a typed content part), or the list of
 * `type`s the union allows.
 */
function explainUnion(union: TSchema, value: unknown, path: string): string | undefined {
  const all = union.anyOf as TSchema[];
  const typeOf = (m: TSchema) => (m.properties as Record<string, TSchema> | undefined)?.type;
  const typed = all.every((m) => m.type === "object" && typeOf(m) !== undefined);
  const names = () => {
    const consts = all.flatMap((m) => (typeOf(m)?.const !== undefined ? [String(typeOf(m)!.const)] : []));
    return `${consts.join(", ")}${consts.length < all.length ? ", or a server tool block" : ""}`;
  };
  const members = all.filter((m) => m.type === kindOf(value) || (m.type === "number" && typeof value === "number"));
  if (members.length === 0 && typed) return `${path || "/"}: Expected an object with a \`type\` (${names()})`;
  let member: TSchema | undefined = members.length === 1 ? members[0] : undefined;
  if (kindOf(value) === "object" && typed) {
    const type = (value as { type?: unknown }).type;
    const matching = all.filter((m) => Value.Check(typeOf(m)!, type));
    if (matching.length !== 1) {
      return `${path}/type: ${typeof type === "string" ? JSON.stringify(type.slice(0, 64)) : "a missing type"} is not a type this API defines here (${names()})`;
    }
    member = matching[0];
  }
  if (!member) return undefined;
  const inner = Value.Errors(member, value).First();
  if (!inner) return undefined;
  const at = `${path}${inner.path}`;
  return (inner.schema.anyOf ? explainUnion(inner.schema, inner.value, at) : undefined) ?? `${at || "/"}: ${inner.message}`;
}

/** The job extension member (`ext`) that carries a Messages request's `anthropic-beta` features to a native instance (SRP-CON-004). */
export const ANTHROPIC_BETA_EXT = "anthropic.beta";

/**
 * The well-formed Anthropic beta feature names of a list (at most 16): from the
 * comma-separated `anthropic-beta` header a hub reads, or the job `ext` a node reads.
 *
 * @example
 * anthropicBetas("context-1m-2025-08-07, bad name!"); // ["context-1m-2025-08-07"]
 */
export function anthropicBetas(value: unknown): string[] {
  const names = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : [];
  return names
    .filter((b): b is string => typeof b === "string")
    .map((b) => b.trim())
    .filter((b) => /^[a-z0-9][a-z0-9._-]{0,63}$/i.test(b))
    .slice(0, 16);
}

type Json = Record<string, unknown>;
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** The error answers of a relayed request, by HTTP status (SRP-CON-003, SRP-CON-030). */
const ERRORS: Record<string, string> = {
  "400":
    "The body is invalid (`api.invalid_body`), or the provider refused the consumer's input (`job.invalid_request`, `job.context_length_exceeded`).",
  "401": "Missing or unknown API key (`api.unauthorized`).",
  "402":
    "x402: payment required (`payment.required`; header `PAYMENT-REQUIRED`, body `x402`), or the balance cannot cover the request's maximum cost (`billing.insufficient_credits`, with `required` and `available`; SRP-BIL-016).",
  "404": "No online provider serves the model, or none with the capability the request needs (`job.unknown_model`).",
  "413": "The body is larger than the hub accepts (`api.body_too_large`).",
  "415": "The body is not of the endpoint's content type (`api.unsupported_media_type`).",
  "429": "A limit was reached (`api.rate_limited`); `Retry-After` says when to retry.",
  "502":
    "Every attempt failed before any output reached the consumer: the node's error, or `job.upstream_error` when the node's session was lost or its receipt refused (SRP-CON-030).",
  "503":
    "No capacity now (`job.no_capacity`: every instance busy or parked), the ledger is unavailable (`billing.unavailable`) or the hub is shutting down (`session.shutdown`); `Retry-After` says when to retry (SRP-CON-030).",
  "504": "No output before the request's deadline (`job.deadline_exceeded`; SRP-CON-025).",
};

const RETRY_AFTER = {
  "Retry-After": { description: "Whole seconds to wait before retrying (at least 1).", schema: { type: "integer", minimum: 1 } },
};

function errorAnswers(statuses: readonly string[], anthropic = false): Json {
  const content = { "application/json": { schema: ref(anthropic ? "AnthropicError" : "OpenAIError") } };
  return Object.fromEntries(
    statuses.map((code) => [
      code,
      { description: ERRORS[code], content, ...(code === "429" || code === "503" ? { headers: RETRY_AFTER } : {}) },
    ]),
  );
}

function responses(ok: Json, anthropic = false): Json {
  return { "200": ok, ...errorAnswers(Object.keys(ERRORS), anthropic) };
}

/** The request header that sets a relayed request's time budget (SRP-CON-025). */
const TIMEOUT_HEADER = {
  name: "x-srp-timeout-ms",
  in: "header",
  required: false,
  description:
    "The request's time budget in milliseconds, from its admission: the job's `deadline` is admission time plus this budget (SRP-CON-025). An integer below 1000 counts as 1000, above 3600000 as 3600000; absent or not a positive integer, the hub's default (120000 in the reference hub).",
  schema: { type: "integer", minimum: 1 },
};

/** The request header that sets how long a relayed request may wait for a slot while every instance is busy (SRP-CON-065). */
const QUEUE_TIMEOUT_HEADER = {
  name: "x-srp-queue-timeout-ms",
  in: "header",
  required: false,
  description:
    "How long the request may wait for a slot while every instance that could take it is busy, in milliseconds (SRP-CON-065): 0 for no waiting, capped at the hub's maximum (300000 in the reference hub); absent or not a non-negative integer, the hub's default (30000 in the reference hub). Never past the deadline.",
  schema: { type: "integer", minimum: 0 },
};

function post(
  summary: string,
  schema: string,
  ok: Json,
  options: { anthropic?: boolean; multipart?: boolean; tags: string[]; relayed?: boolean },
): Json {
  return {
    post: {
      summary,
      tags: options.tags,
      ...(options.relayed === false ? {} : { parameters: [TIMEOUT_HEADER, QUEUE_TIMEOUT_HEADER] }),
      requestBody: {
        required: true,
        content: { [options.multipart ? "multipart/form-data" : "application/json"]: { schema: ref(schema) } },
      },
      responses: responses(ok, options.anthropic),
    },
  };
}

const json = (description: string, schema = "ModalityObject"): Json => ({
  description,
  content: { "application/json": { schema: ref(schema) } },
});
const streamOrJson = (description: string, schema: string, events: string): Json => ({
  description,
  content: { "application/json": { schema: ref(schema) }, "text/event-stream": { schema: { type: "string", description: events } } },
});

/** The path parameter of the stored-response routes. */
const RESPONSE_ID = {
  name: "id",
  in: "path",
  required: true,
  description: "The Response's `id` (`resp_...`).",
  schema: { type: "string" },
};

/** Errors of every stored-response route (SRP-CON-051). */
const STORED_ERRORS: Json = {
  "401": { description: ERRORS["401"], content: { "application/json": { schema: ref("OpenAIError") } } },
  "404": {
    description: "`api.not_found`: unknown, another account's, past its retention, deleted, or never stored.",
    content: { "application/json": { schema: ref("OpenAIError") } },
  },
};

/** The path parameter of the async-job routes. */
const JOB_ID = {
  name: "id",
  in: "path",
  required: true,
  description: "The job's `id` (`video_...`, `run_...`; a batch's `batch_...`).",
  schema: { type: "string" },
};

/** Errors of the routes that read a kept async job (SRP-CON-090). */
const JOB_READ_ERRORS: Json = {
  "401": { description: ERRORS["401"], content: { "application/json": { schema: ref("OpenAIError") } } },
  "404": {
    description: "`api.not_found`: unknown, another account's, expired or deleted.",
    content: { "application/json": { schema: ref("OpenAIError") } },
  },
};

/** The answers of `GET` or `DELETE` on a kept async job. */
const jobAnswer = (description: string, schema: Json): Json => ({
  "200": { description, content: { "application/json": { schema } } },
  ...JOB_READ_ERRORS,
});

/** What deleting an async job answers (SRP-CON-091). */
const JOB_DELETED = {
  type: "object",
  required: ["id", "object", "deleted"],
  properties: { id: { type: "string" }, object: { enum: ["video.deleted", "srp.run.deleted"] }, deleted: { const: true } },
};

/** An artifact's bytes, as served once its job has completed (SRP-CON-091). */
const ARTIFACT_BYTES: Json = {
  "200": {
    description: "The artifact's bytes with its `content_type`, byte for byte what the node's manifest hashed (`ETag` its sha256).",
    content: { "*/*": { schema: { type: "string", format: "binary" } } },
  },
  "400": {
    description: "`api.invalid_body`: the job has not completed (its result is served once it has).",
    content: { "application/json": { schema: ref("OpenAIError") } },
  },
  ...JOB_READ_ERRORS,
};

/** `POST /v1/videos` and `POST /v1/runs`: admitted like any request, answered 202 with the queued job (SRP-CON-088, SRP-CON-089). */
function asyncPost(summary: string, schema: string, tags: string[], multipart = false): Json {
  const body = { schema: ref(schema) };
  return {
    post: {
      summary,
      tags,
      requestBody: {
        required: true,
        content: { "application/json": body, ...(multipart ? { "multipart/form-data": body } : {}) },
      },
      responses: {
        "202": {
          description:
            "Admitted (its worst case reserved, SRP-CON-089): the job, `queued`; with `webhook_url`, also `webhook_secret` (shown only here; SRP-CON-093). Poll `Location`.",
          headers: { Location: { description: "`/v1/jobs/{id}`.", schema: { type: "string" } } },
          content: { "application/json": { schema: ref("AsyncJobObject") } },
        },
        ...errorAnswers(["400", "401", "402", "404", "413", "415", "429", "503"]),
      },
    },
  };
}

/**
 * The OpenAPI 3.1 document of a hub's consumer API, its components made from the
 * schemas the hub validates request bodies with.
 *
 * @example
 * const doc = consumerOpenApi("https://hub.example");
 * doc.openapi; // "3.1.0"
 */
export function consumerOpenApi(baseUrl: string, version = "1"): Json {
  const schemas = JSON.parse(JSON.stringify(CONSUMER_SCHEMAS)) as Json;
  const openai = ["OpenAI-compatible"];
  const anthropic = ["Anthropic-compatible"];
  const srp = ["SRP"];
  return {
    openapi: "3.1.0",
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    info: {
      title: "SRP hub consumer API",
      version,
      description:
        "The consumer API of an SRP (Spare Relay Protocol) hub: OpenAI and Anthropic wire formats, relayed to provider nodes, metered per token (or image, character, second), every answer backed by a signed usage receipt. Authenticate with an API key, or pay per call with x402 version 2.",
    },
    servers: [{ url: baseUrl }],
    security: [{ bearer: [] }, { apiKey: [] }],
    components: {
      schemas,
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An API key of a hub account." },
        apiKey: { type: "apiKey", in: "header", name: "x-api-key", description: "The same key, as the Anthropic SDK sends it." },
      },
    },
    paths: {
      "/v1/chat/completions": post(
        "Chat completion (streamed or not)",
        "ChatCompletionRequest",
        streamOrJson(
          "A chat.completion, or chat.completion.chunk events ending in a usage chunk and [DONE].",
          "ChatCompletionObject",
          "Server-sent `data:` events: the node's chunks (any `usage` on a content chunk set to null), then exactly one chunk with `choices: []` and `usage` (an `OpenAIUsage`, whether or not `stream_options.include_usage` was asked), then `data: [DONE]` (SRP-CON-028). A stream that fails after content ends with one `data:` event whose JSON is an `OpenAIError` (`code` `job.stream_interrupted` or `job.deadline_exceeded`) and no [DONE] (SRP-CON-029).",
        ),
        { tags: openai },
      ),
      "/v1/messages": post(
        "Anthropic Messages (streamed or not)",
        "MessagesRequest",
        streamOrJson(
          "A Message, or the Messages event stream (message_start ... message_stop).",
          "MessageObject",
          "Named server-sent events (SRP-CON-006): message_start, ping, content blocks, one message_delta whose `usage` is an `AnthropicUsage` (SRP-CON-028), message_stop. A stream that fails after content ends with an `error` event whose data is an `AnthropicError` and no message_stop (SRP-CON-007, SRP-CON-029).",
        ),
        { tags: anthropic, anthropic: true },
      ),
      "/v1/messages/count_tokens": post(
        "Estimated input tokens of a Messages request",
        "CountTokensRequest",
        {
          description: "`{input_tokens}` (an estimate: header `x-srp-estimated: true`).",
          content: {
            "application/json": {
              schema: { type: "object", required: ["input_tokens"], properties: { input_tokens: { type: "integer", minimum: 0 } } },
            },
          },
        },
        { tags: anthropic, anthropic: true, relayed: false },
      ),
      "/v1/responses": post(
        "OpenAI Responses (streamed or not; SRP-CON-032)",
        "ResponsesRequest",
        streamOrJson(
          'A Response (`object: "response"`), natively relayed or translated from a chat completion; stored unless `store` is false (SRP-CON-037).',
          "ResponseObject",
          "Named server-sent events, each `data` carrying `type` and `sequence_number` (0, 1, 2, ...): response.created, response.in_progress, per output item response.output_item.added, its content events and response.output_item.done, then one response.completed (or response.incomplete) whose `response.usage` is a `ResponsesUsage` (SRP-CON-040). A stream that fails after content ends with response.failed, whose `response.error.code` is the SRP code, and no response.completed (SRP-CON-041).",
        ),
        { tags: openai },
      ),
      "/v1/responses/{id}": {
        get: {
          summary: "A stored Response of this account (SRP-CON-053)",
          tags: openai,
          parameters: [
            RESPONSE_ID,
            {
              name: "stream",
              in: "query",
              required: false,
              description: "`true` is `api.invalid_body`: stored responses are not replayed as streams.",
              schema: { type: "boolean" },
            },
          ],
          responses: {
            "200": {
              description: "The Response object as it was answered when created.",
              content: { "application/json": { schema: ref("ResponseObject") } },
            },
            "400": { description: "`api.invalid_body`: `stream=true`.", content: { "application/json": { schema: ref("OpenAIError") } } },
            ...STORED_ERRORS,
          },
        },
        delete: {
          summary: "Deletes a stored Response of this account (SRP-CON-055)",
          tags: openai,
          parameters: [RESPONSE_ID],
          responses: {
            "200": {
              description: "Deleted: from now on the id is `api.not_found`.",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    required: ["id", "object", "deleted"],
                    properties: { id: { type: "string" }, object: { const: "response" }, deleted: { const: true } },
                  },
                },
              },
            },
            ...STORED_ERRORS,
          },
        },
      },
      "/v1/responses/{id}/input_items": {
        get: {
          summary: "A page of a stored Response's input items (SRP-CON-054)",
          tags: openai,
          parameters: [
            RESPONSE_ID,
            {
              name: "limit",
              in: "query",
              required: false,
              description: "Items per page, 1 to 100.",
              schema: { type: "integer", minimum: 1, maximum: 100, default: 20 },
            },
            {
              name: "order",
              in: "query",
              required: false,
              description: "`desc` (newest first) or `asc`.",
              schema: { type: "string", enum: ["asc", "desc"], default: "desc" },
            },
            {
              name: "after",
              in: "query",
              required: false,
              description: "The id of the item the page starts after, in this order (an id not in the turn is `api.not_found`).",
              schema: { type: "string" },
            },
            {
              name: "include",
              in: "query",
              required: false,
              description: "Accepted and ignored.",
              schema: { type: "array", items: { type: "string" } },
            },
          ],
          responses: {
            "200": {
              description: "The page: that turn's input items only, each an item object with an `id`.",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    required: ["object", "data", "first_id", "last_id", "has_more"],
                    properties: {
                      object: { const: "list" },
                      data: {
                        type: "array",
                        items: {
                          type: "object",
                          required: ["id", "type"],
                          properties: { id: { type: "string" }, type: { type: "string" } },
                        },
                      },
                      first_id: { type: ["string", "null"] },
                      last_id: { type: ["string", "null"] },
                      has_more: { type: "boolean" },
                    },
                  },
                },
              },
            },
            "400": {
              description: "`api.invalid_body`: a `limit` or `order` out of range.",
              content: { "application/json": { schema: ref("OpenAIError") } },
            },
            ...STORED_ERRORS,
          },
        },
      },
      "/v1/completions": post(
        "Legacy text completion (streamed or not; SRP-CON-044)",
        "CompletionsRequest",
        streamOrJson(
          "A text_completion from an instance that serves legacy completions.",
          "CompletionObject",
          "Server-sent `data:` events: the node's text_completion chunks, then exactly one chunk with `choices: []` and `usage` (an `OpenAIUsage`), then `data: [DONE]` (SRP-CON-047). A stream that fails after content ends with one `data:` event whose JSON is an `OpenAIError` and no [DONE].",
        ),
        { tags: openai },
      ),
      "/v1/embeddings": post(
        "Embeddings, billed per prompt token",
        "EmbeddingsRequest",
        json("An embeddings list; `usage` carries `prompt_tokens`, `total_tokens` and SRP's members."),
        { tags: openai },
      ),
      "/v1/images/generations": post(
        "Image generation, billed per image",
        "ImageGenerationRequest",
        json("Generated images; `usage` carries SRP's members."),
        { tags: openai },
      ),
      "/v1/audio/speech": post(
        "Speech synthesis, billed per character",
        "SpeechRequest",
        {
          description: "The audio; cost in `x-srp-cost` and `x-srp-cost-units`.",
          content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
        },
        { tags: openai },
      ),
      "/v1/audio/transcriptions": post(
        "Transcription, billed per second of audio",
        "TranscriptionRequest",
        json("The transcription (for `response_format: text`, the text, with the cost in `x-srp-cost` and `x-srp-cost-units`)."),
        { tags: openai, multipart: true },
      ),
      "/v1/batch": post(
        "Up to 50 mixed requests, run asynchronously at a 10 % discount",
        "BatchRequest",
        {
          description: "Accepted: 202 with the batch (poll `GET /v1/jobs/{id}`).",
          content: { "application/json": { schema: ref("BatchObject") } },
        },
        { tags: srp, relayed: false },
      ),
      "/v1/videos": {
        ...asyncPost("Video generation (OpenAI Videos API), run asynchronously (SRP-CON-088)", "VideoCreateRequest", openai, true),
        get: {
          summary: "This account's kept videos, newest first, in OpenAI's list shape (SRP-CON-091)",
          tags: openai,
          parameters: [
            { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 100, default: 20 } },
            { name: "after", in: "query", required: false, description: "The id the page starts after.", schema: { type: "string" } },
            { name: "order", in: "query", required: false, schema: { type: "string", enum: ["asc", "desc"], default: "desc" } },
          ],
          responses: {
            "200": {
              description: "A page of videos.",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    required: ["object", "data", "first_id", "last_id", "has_more"],
                    properties: {
                      object: { const: "list" },
                      data: { type: "array", items: ref("AsyncJobObject") },
                      first_id: { type: ["string", "null"] },
                      last_id: { type: ["string", "null"] },
                      has_more: { type: "boolean" },
                    },
                  },
                },
              },
            },
            "401": JOB_READ_ERRORS["401"],
          },
        },
      },
      "/v1/videos/{id}": {
        get: {
          summary: "A video job (SRP-CON-090)",
          tags: openai,
          parameters: [JOB_ID],
          responses: jobAnswer("The video as the hub keeps it.", ref("AsyncJobObject")),
        },
        delete: {
          summary: "Cancels a running video (never billed) and forgets it and its artifacts (SRP-CON-091)",
          tags: openai,
          parameters: [JOB_ID],
          responses: jobAnswer("Deleted.", JOB_DELETED),
        },
      },
      "/v1/videos/{id}/content": {
        get: {
          summary: "A completed video's file (SRP-CON-091)",
          tags: openai,
          parameters: [
            JOB_ID,
            {
              name: "variant",
              in: "query",
              required: false,
              schema: { type: "string", enum: ["video", "thumbnail", "spritesheet"], default: "video" },
            },
          ],
          responses: ARTIFACT_BYTES,
        },
      },
      "/v1/runs": asyncPost(
        "Runs any model a node offers under its declared input schema, asynchronously (SRP-CON-088)",
        "RunCreateRequest",
        srp,
      ),
      "/v1/jobs/{id}": {
        get: {
          summary: "A batch's status, per-item results and costs; or an async job (video, run; SRP-CON-090)",
          tags: srp,
          parameters: [JOB_ID],
          responses: {
            "200": {
              description:
                "The batch, or the async job: its status and progress; once completed its artifacts (with their URLs), output, usage, cost and receipt id; once failed its error.",
              content: { "application/json": { schema: { oneOf: [ref("BatchObject"), ref("AsyncJobObject")] } } },
            },
            "404": {
              description: "`api.not_found`: no such job (or expired, or another account's).",
              content: { "application/json": { schema: ref("OpenAIError") } },
            },
          },
        },
        delete: {
          summary: "Cancels a running async job (never billed) and forgets it and its artifacts (SRP-CON-091)",
          tags: srp,
          parameters: [JOB_ID],
          responses: jobAnswer("Deleted.", JOB_DELETED),
        },
      },
      "/v1/jobs/{id}/artifacts/{name}": {
        get: {
          summary: "One artifact of a completed async job (SRP-CON-091)",
          tags: srp,
          parameters: [
            JOB_ID,
            { name: "name", in: "path", required: true, description: "The artifact's `name`.", schema: { type: "string" } },
          ],
          responses: ARTIFACT_BYTES,
        },
      },
      "/v1/models": {
        get: {
          summary: "The live catalog: models, endpoints, modalities, prices, providers online (SRP-CON-018, SRP-CON-027)",
          tags: openai,
          security: [],
          responses: {
            "200": {
              description: "One entry per canonical model id with an instance online.",
              content: { "application/json": { schema: ref("ModelList") } },
            },
          },
        },
      },
      "/v1/estimate": {
        post: {
          summary: "What a request to any consumer endpoint may cost (free; SRP-BIL-003, SRP-BIL-018)",
          description:
            "The body is `{ endpoint, body }`: a consumer endpoint's path and the JSON body a request to it would carry (a transcription: its form's fields with `duration_seconds` or `file_bytes` instead of the file; a batch: `POST /v1/batch`'s body). A body with `messages` and no `endpoint` is a chat completions body. An endpoint that cannot be estimated is answered 400 `api.invalid_body`.",
          tags: srp,
          security: [],
          responses: { "200": { description: "The maximum (exactly what admission reserves) and the expected cost, with their basis." } },
        },
      },
      "/v1/receipts/{id}": {
        get: {
          summary: "The countersigned usage receipt of a job (SRP-CON-026)",
          tags: srp,
          parameters: [
            {
              name: "id",
              in: "path",
              required: true,
              description: "A `usage.receipt_id` (or `x-srp-receipt`): the job id.",
              schema: { type: "string" },
            },
          ],
          responses: {
            "200": {
              description: "The receipt, signed by the node and countersigned by the hub.",
              content: { "application/json": { schema: ref("ReceiptObject") } },
            },
            "401": { description: ERRORS["401"], content: { "application/json": { schema: ref("OpenAIError") } } },
            "404": {
              description: "`api.not_found`: no stored receipt with this id that the key's account paid for or served.",
              content: { "application/json": { schema: ref("OpenAIError") } },
            },
          },
        },
      },
      "/v1/account": {
        get: {
          summary: "Balance, held money, prepaid part, discount, spend and earnings",
          tags: srp,
          responses: { "200": { description: "The account." } },
        },
      },
    },
  };
}
