/**
 * `@srp/core/metering`: reading and checking usage. How a node reads the usage an
 * upstream reports (OpenAI, Anthropic, Responses wire formats) or measures it from the
 * output it relayed, and how a hub checks that reported usage is plausible for what it
 * saw (`spec/v1/jobs.md`, `spec/v1/attestation.md`, `spec/v1/security.md`). Nodes and hubs use
 * this entry; clients do not.
 *
 * Every export of this entry is public API: a new export is a promise to keep it.
 *
 * @module @srp/core/metering
 */
export { usageFromOpenAI, openAIErrorType, type OpenAIUsage, type OpenAIErrorBody } from "./openai.js";
export { usageFromAnthropic, usageFromResponses, measureResponse, StreamMeter } from "./usage.js";
export {
  OutputMeter,
  measureOutput,
  chatChoices,
  chatContentText,
  thinkingBudget,
  reasoningEffortBudget,
  REASONING_EFFORT_BUDGETS,
  checkUsagePlausibility,
  outputTokenLimit,
  PLAUSIBILITY_ALLOWANCE,
  CONTENT_KEYS,
  type OutputShape,
  type OutputMeasurer,
  type RelayedOutput,
  type UsageBounds,
  type PlausibilityVerdict,
} from "./plausibility.js";
export { wavSeconds } from "./audio.js";
export { mp4Seconds } from "./mp4.js";
