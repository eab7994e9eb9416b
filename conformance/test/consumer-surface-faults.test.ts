// The consumer surface checks (hub-consumer-surfaces.ts, hub-models.ts, hub-lifecycle.ts's model list)
// against faulty hubs (fixtures/faulty-hub.ts): each fails against a hub that breaks exactly
// its rule, saying which, and passes through the unchanged relay, consumer requests relayed
// or not (the relayed path is the one the http faults rewrite).
import { describe, expect, it } from "vitest";
import { runAgainstFault as run } from "./fixtures/faulty-hub.js";

/** check id -> the fault that must fail it, what the failure says, and whether the hub needs a ledger. */
const CHECK_FAULTS: [string, string, RegExp, boolean][] = [
  ["hub.consumer.messages.translated", "messages_stop_reason_raw", /stop_reason stop for finish_reason stop, expected end_turn/, false],
  [
    "hub.consumer.messages.stream",
    "messages_events_unnamed",
    /the first event is \(unnamed\), not message_start.*an event named undefined carries type message_start/,
    false,
  ],
  ["hub.consumer.messages.native", "messages_never_native", /the job's api is chat\.completions, expected messages/, false],
  [
    "hub.consumer.messages.errors",
    "messages_errors_openai_shape",
    /an unknown key: body .* is not \{type: error, error: \{type: authentication_error, message, code\}\}/,
    false,
  ],
  [
    "hub.consumer.openai.errors",
    "openai_errors_anthropic_shape",
    /an unknown key: body .* is not \{error: \{message, type, param, code\}\}/,
    false,
  ],
  [
    "hub.consumer.embeddings",
    "embeddings_usage_plain",
    /the embeddings answer\.usage\.cost is not a string.*cost_units is not a decimal string/,
    false,
  ],
  ["hub.consumer.images", "images_billed_by_tokens", /should cost 40000 units, the answer says 0$/, false],
  ["hub.consumer.speech", "speech_type_fixed", /^content-type audio\/mpeg, the node said audio\/wav$/, false],
  [
    "hub.consumer.transcription",
    "transcription_file_bare",
    /request\.file "[A-Za-z0-9+/=]+" is not \{filename: clip\.ogg, content_type: audio\/ogg/,
    false,
  ],
  ["hub.consumer.batch", "batch_no_location", /^Location null is not \/v1\/jobs\/batch_/, true],
  [
    "hub.consumer.hostile_bodies",
    "deep_body_crashes",
    /^content nested 100 000 levels deep: 500 internal, expected 400 api\.invalid_body$/,
    false,
  ],
  [
    "hub.consumer.models.alias_and_quantization",
    "models_names_apart",
    /^GET \/v1\/models lists qwen3:32b apart from its canonical id qwen3-32b$/,
    false,
  ],
  ["hub.consumer.models.list", "models_per_instance", /^ids listed more than once: \["/, false],
  ["hub.estimate.every_surface", "estimate_chat_only", /POST \/v1\/estimate for \/v1\/embeddings answered 400/, false],
];

const checks = (ledger: boolean) => [...new Set(CHECK_FAULTS.filter(([, , , l]) => l === ledger).map(([c]) => c))];

describe("consumer surface checks against faulty hubs", () => {
  for (const relay of ["none", "consumer_relayed"]) {
    it(`the unchanged relay (${relay}) passes every check listed here`, async () => {
      const results = { ...(await run(relay, checks(false))), ...(await run(relay, checks(true), {}, { ledger: true })) };
      expect(Object.keys(results).sort()).toEqual(CHECK_FAULTS.map(([c]) => c).sort());
      expect(Object.entries(results).filter(([, [s]]) => s !== "pass")).toEqual([]);
    }, 120_000);
  }

  for (const [check, fault, why, ledger] of CHECK_FAULTS) {
    it(`${check} fails against the fault ${fault}`, async () => {
      const results = await run(fault, [check], {}, { ledger });
      expect(results[check]?.[0]).toBe("fail");
      expect(results[check]?.[1]).toMatch(why);
    }, 30_000);
  }
});
