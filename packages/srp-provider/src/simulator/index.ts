/**
 * `@srp/provider/simulator`: the SRP model simulator, an OpenAI-compatible stand-in for a
 * local model server (chat, embeddings, images, speech, transcription), and the
 * Anthropic Messages simulator, a stand-in for a forwarded Anthropic key. It is **not a model**: its answers are deterministic filler text
 * with honest token counts, meant for tests, benchmarks and demos.
 *
 * @packageDocumentation
 * @module @srp/provider/simulator
 */
export { startSimulator, type Simulator, type SimulatorOptions } from "./server.js";
export type { SimulatorModel, SimulatorFault } from "./context.js";
export { type SimulatorFlavor, type FlavorModelMetadata } from "./flavors.js";
export { countTokens, countPromptTokens } from "./text.js";
export { startAnthropicSimulator, type AnthropicSimulator, type AnthropicSimulatorOptions } from "./anthropic.js";
export { SIMULATED_THINKING_TOKENS, type ReasoningMember } from "./reasoning.js";
