import { describe, expect, it } from "vitest";
import { wavSeconds } from "./audio.js";
import { measureResponse, StreamMeter, usageFromAnthropic, usageFromResponses } from "./usage.js";

/** A PCM WAV header and `seconds` of silence at 8 kHz, 16-bit mono; `byteRate` overrides the header's. */
function wav(seconds: number, byteRate?: number): Uint8Array {
  const data = Math.round(seconds * 8000) * 2;
  const b = new Uint8Array(44 + data);
  const v = new DataView(b.buffer);
  const put = (at: number, s: string) => [...s].forEach((c, i) => (b[at + i] = c.charCodeAt(0)));
  put(0, "RIFF");
  v.setUint32(4, 36 + data, true);
  put(8, "WAVEfmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, 8000, true);
  v.setUint32(28, byteRate ?? 16000, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  put(36, "data");
  v.setUint32(40, data, true);
  return b;
}

describe("wavSeconds", () => {
  it("reads a PCM WAV's duration from its header", () => {
    expect(wavSeconds(wav(3.5))).toBe(3.5);
  });
  it("refuses a header whose byte rate contradicts its sample rate and block size, and what is not WAV", () => {
    expect(wavSeconds(wav(60, 0xffffffff))).toBeUndefined();
    expect(wavSeconds(new TextEncoder().encode("ID3 not a wav file at all, just some bytes here."))).toBeUndefined();
    expect(wavSeconds(new Uint8Array(10))).toBeUndefined();
  });
});

describe("measuring usage", () => {
  it("counts Anthropic cache reads and writes as prompt tokens", () => {
    expect(usageFromAnthropic({ input_tokens: 10, cache_read_input_tokens: 90, cache_creation_input_tokens: 5, output_tokens: 7 })).toEqual(
      { promptTokens: 105, completionTokens: 7, cachedTokens: 90, cacheWriteTokens: 5, measured: true },
    );
    expect(usageFromAnthropic({ output_tokens: 7 })).toBeUndefined();
  });

  it("knows a Messages stream's usage only at message_delta (message_start's output count is a placeholder)", () => {
    const m = new StreamMeter("messages");
    expect(m.chunk({ type: "message_start", message: { usage: { input_tokens: 12, output_tokens: 1 } } })).toBeUndefined();
    expect(m.chunk({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "hi" } })).toBeUndefined();
    expect(m.chunk({ type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 9 } })).toEqual({
      promptTokens: 12,
      completionTokens: 9,
      measured: true,
    });
  });

  it("bills images by count, speech by code points, transcription by seconds (the answer's, else the WAV's)", () => {
    expect(measureResponse("images.generations", {}, { data: [{}, {}] })).toEqual({
      promptTokens: 0,
      completionTokens: 0,
      images: 2,
      measured: true,
    });
    expect(measureResponse("audio.speech", { input: "héllo 👋" }, {})).toEqual({
      promptTokens: 0,
      completionTokens: 0,
      characters: 7,
      measured: true,
    });
    expect(measureResponse("audio.transcriptions", {}, { text: "x", usage: { type: "duration", seconds: 2.2 } })).toMatchObject({
      seconds: 3,
    });
    const file = { filename: "a.wav", content_type: "audio/wav", data: btoa(String.fromCharCode(...wav(4))) };
    expect(
      measureResponse("audio.transcriptions", { file }, { text: "x", usage: { type: "tokens", input_tokens: 50, output_tokens: 5 } }),
    ).toEqual({ promptTokens: 0, completionTokens: 0, seconds: 4, measured: true });
    expect(measureResponse("audio.transcriptions", {}, { text: "x" })).toBeUndefined();
    expect(measureResponse("embeddings", {}, { usage: { prompt_tokens: 8, total_tokens: 8 } })).toEqual({
      promptTokens: 8,
      completionTokens: 0,
      measured: true,
    });
  });
});

describe("Responses API and legacy completions usage", () => {
  it("reads a Responses usage object: cached part of the input, reasoning part of the output", () => {
    expect(
      usageFromResponses({
        input_tokens: 100,
        input_tokens_details: { cached_tokens: 90 },
        output_tokens: 7,
        output_tokens_details: { reasoning_tokens: 5 },
        total_tokens: 107,
      }),
    ).toEqual({
      promptTokens: 100,
      completionTokens: 7,
      cachedTokens: 90,
      reasoningTokens: 5,
      measured: true,
    });
    expect(usageFromResponses({ input_tokens: 3 })).toBeUndefined();
    expect(usageFromResponses({ input_tokens: 3, output_tokens: 1, input_tokens_details: { cached_tokens: 9 } })).toEqual({
      promptTokens: 3,
      completionTokens: 1,
      measured: true,
    });
  });

  it("measures a whole response of each API", () => {
    expect(measureResponse("responses", {}, { object: "response", usage: { input_tokens: 10, output_tokens: 2 } })).toEqual({
      promptTokens: 10,
      completionTokens: 2,
      measured: true,
    });
    expect(
      measureResponse(
        "completions",
        {},
        { object: "text_completion", usage: { prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 } },
      ),
    ).toEqual({ promptTokens: 4, completionTokens: 6, measured: true });
  });

  it("reads a Responses stream's usage from its final event only", () => {
    const meter = new StreamMeter("responses");
    expect(meter.chunk({ type: "response.created", response: { usage: { input_tokens: 1, output_tokens: 1 } } })).toBeUndefined();
    expect(meter.chunk({ type: "response.output_text.delta", delta: "hi" })).toBeUndefined();
    expect(meter.chunk({ type: "response.completed", response: { usage: { input_tokens: 12, output_tokens: 3 } } })).toEqual({
      promptTokens: 12,
      completionTokens: 3,
      measured: true,
    });
    expect(
      new StreamMeter("responses").chunk({ type: "response.incomplete", response: { usage: { input_tokens: 12, output_tokens: 9 } } }),
    ).toEqual({ promptTokens: 12, completionTokens: 9, measured: true });
    expect(
      new StreamMeter("completions").chunk({ object: "text_completion", choices: [], usage: { prompt_tokens: 2, completion_tokens: 5 } }),
    ).toEqual({ promptTokens: 2, completionTokens: 5, measured: true });
  });
});
