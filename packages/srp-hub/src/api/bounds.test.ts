import { describe, expect, it } from "vitest";
import { IMAGE_TOKEN_ALLOWANCE, promptTokenBound } from "./openai.js";
import { audioSecondsBound } from "./modalities.js";

describe("worst-case bounds", () => {
  it("gives every image part its allowance, inline or by URL, on both APIs", () => {
    const text = promptTokenBound({ messages: [{ role: "user", content: "x" }] });
    const openaiUrl = promptTokenBound({
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "x" },
            { type: "image_url", image_url: { url: "https://e.x/a.png" } },
          ],
        },
      ],
    });
    const anthropicUrl = promptTokenBound({
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "x" },
            { type: "image", source: { type: "url", url: "https://e.x/a.png" } },
          ],
        },
      ],
    });
    const inline = promptTokenBound({
      messages: [
        { role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "A".repeat(100_000) } }] },
      ],
    });
    expect(openaiUrl - text).toBeGreaterThanOrEqual(IMAGE_TOKEN_ALLOWANCE);
    expect(anthropicUrl - text).toBeGreaterThanOrEqual(IMAGE_TOKEN_ALLOWANCE);
    // Inline data does not count by its bytes (100,000 here): an image is an image.
    expect(inline).toBeLessThan(IMAGE_TOKEN_ALLOWANCE + 1000);
  });

  it("adds an allowance for the tool-use instructions a backend adds when tools are declared", () => {
    const bare = promptTokenBound({ messages: [{ role: "user", content: "x" }] });
    const tools = promptTokenBound({ messages: [{ role: "user", content: "x" }], tools: [{ name: "t" }] });
    expect(tools - bare).toBeGreaterThanOrEqual(1024);
  });

  it("bounds audio seconds by a PCM WAV header, else by the size at 4 kbit/s", () => {
    expect(audioSecondsBound(new Uint8Array(5000))).toBe(11);
  });
});
