import { describe, expect, it } from "vitest";
import { checkConsumerBody } from "../consumer.js";
import { ChatCompletionRequest, CountTokensRequest, MessagesRequest } from "./consumer.js";

const chat = (content: unknown, role = "user") => checkConsumerBody(ChatCompletionRequest, { model: "m", messages: [{ role, content }] });
const messages = (content: unknown) =>
  checkConsumerBody(MessagesRequest, { model: "m", max_tokens: 5, messages: [{ role: "user", content }] });

describe("chat message content (SRP-CON-022)", () => {
  it("accepts text, null, and OpenAI's typed parts with members the schema does not name", () => {
    expect(chat("hi")).toBeUndefined();
    expect(chat(null, "assistant")).toBeUndefined();
    expect(
      checkConsumerBody(ChatCompletionRequest, {
        model: "m",
        messages: [{ role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }] }],
      }),
    ).toBeUndefined();
    expect(
      chat([
        { type: "text", text: "look", cache_control: { type: "ephemeral" } },
        { type: "image_url", image_url: { url: "data:image/png;base64,AA==", detail: "low" } },
        { type: "input_audio", input_audio: { data: "AA==", format: "wav" } },
        { type: "file", file: { file_data: "data:application/pdf;base64,AA==", filename: "a.pdf" } },
      ]),
    ).toBeUndefined();
    expect(chat([{ type: "refusal", refusal: "no" }], "assistant")).toBeUndefined();
  });

  it("refuses nested arrays and other non-parts, naming where", () => {
    expect(chat([[["hi"]]])).toBe("/messages/0/content/0: Expected an object with a `type` (text, image_url, input_audio, file, refusal)");
    expect(chat(5)).toMatch(/^\/messages\/0\/content: /);
    expect(chat({ type: "text", text: "hi" })).toMatch(/^\/messages\/0\/content: /);
  });

  it("refuses an unknown part type with the list of known ones", () => {
    expect(chat([{ type: "video", video: {} }])).toBe(
      '/messages/0/content/0/type: "video" is not a type this API defines here (text, image_url, input_audio, file, refusal)',
    );
    expect(chat([{ text: "no type" }])).toMatch(/^\/messages\/0\/content\/0\/type: a missing type is not/);
  });

  it("names the missing member of a known part", () => {
    expect(chat([{ type: "text", content: "hi" }])).toBe("/messages/0/content/0/text: Expected required property");
    expect(chat([{ type: "image_url", image_url: "https://x/y.png" }])).toBe("/messages/0/content/0/image_url: Expected object");
  });
});

describe("Messages content blocks (SRP-CON-023)", () => {
  it("accepts the blocks Claude Code and the SDKs send, with cache_control and citations", () => {
    expect(
      messages([
        { type: "text", text: "hi", cache_control: { type: "ephemeral" }, citations: null },
        { type: "image", source: { type: "base64", media_type: "image/png", data: "AA==" } },
        { type: "document", source: { type: "base64", media_type: "application/pdf", data: "JVBERi0=" } },
        { type: "tool_result", tool_use_id: "t1", content: [{ type: "text", text: "18 degrees" }], is_error: false },
        { type: "tool_result", tool_use_id: "t2", content: "rain" },
        { type: "search_result", source: "https://x", title: "x", content: [{ type: "text", text: "x" }] },
      ]),
    ).toBeUndefined();
    expect(
      checkConsumerBody(MessagesRequest, {
        model: "m",
        max_tokens: 5,
        system: [{ type: "text", text: "be brief", cache_control: { type: "ephemeral" } }],
        messages: [
          { role: "user", content: "q" },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "hmm", signature: "sig" },
              { type: "redacted_thinking", data: "xx" },
              { type: "tool_use", id: "t1", name: "get_weather", input: { city: "Paris" } },
              { type: "server_tool_use", id: "s1", name: "web_search", input: { query: "x" } },
              { type: "web_search_tool_result", tool_use_id: "s1", content: [] },
              { type: "mcp_tool_use", id: "m1", name: "x", server_name: "s", input: {} },
            ],
          },
        ],
      }),
    ).toBeUndefined();
  });

  it("refuses nested arrays, unknown block types and a system that is not text", () => {
    expect(messages([[["hi"]]])).toMatch(/^\/messages\/0\/content\/0: Expected an object with a `type` \(text, image, /);
    expect(messages([{ type: "teleport" }])).toMatch(
      /^\/messages\/0\/content\/0\/type: "teleport" is not a type this API defines here \(text, image, .*, or a server tool block\)$/,
    );
    expect(messages([{ type: "tool_use", id: "t", name: "f", input: "{}" }])).toBe("/messages/0/content/0/input: Expected object");
    expect(
      checkConsumerBody(CountTokensRequest, {
        model: "m",
        system: [{ type: "image", source: {} }],
        messages: [{ role: "user", content: "q" }],
      }),
    ).toMatch(/^\/system\/0\/(type|text): /);
  });
});
