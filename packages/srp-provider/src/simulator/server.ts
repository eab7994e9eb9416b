/**
 * The SRP model simulator: a stand-in for a local model server, **not a model**. It
 * speaks OpenAI's chat completions wire format byte for byte (plus Ollama's `/api/tags`,
 * OpenAI's embeddings, image generation, speech and transcription endpoints, a slow
 * video mode in the shape of OpenAI's Videos API, and a Cog-like generic run mode),
 * answers with deterministic text, reports honest usage for that text, and can inject the
 * faults the relay must survive. Tests, benchmarks and `npm start` use it when no real
 * Ollama, vLLM, LM Studio or llama.cpp server is running.
 *
 * This module wires the parts: the options become a `SimulatorContext` (`context.ts`) with
 * a fault slot (`faults.ts`), `router.ts` dispatches each request to its endpoint module,
 * and `lifecycle.ts` listens and closes.
 */
import { createServer } from "node:http";
import type { SimulatorFlavor } from "./flavors.js";
import type { SimulatorContext, SimulatorFault, SimulatorModel } from "./context.js";
import type { ReasoningMember } from "./reasoning.js";
import { PrefixCache } from "./prefix-cache.js";
import { createFaultSlot } from "./faults.js";
import { createRouter } from "./router.js";
import { closer, listen } from "./lifecycle.js";

/** Options of {@link startSimulator}. */
export interface SimulatorOptions {
  /** Port; default 0 (any free port). */
  port?: number;
  /** Host; default 127.0.0.1. */
  host?: string;
  /** Models served; default one model, `sim-llama-3-8b`. */
  models?: readonly SimulatorModel[];
  /** Generation speed in tokens per second; 0 means as fast as possible. Default 0. */
  tokensPerSecond?: number;
  /** Delay before the first byte of every answer, in ms; default 0. */
  latencyMs?: number;
  /** Completion length when the request sets no `max_tokens`; default 24. */
  defaultMaxTokens?: number;
  /**
   * Stand in for this server's metadata endpoints (`ollama`, `lmstudio`, `vllm`,
   * `llamacpp`); default none (then it answers `/v1/models` and Ollama's `/api/tags`).
   * As real Ollama does, the `ollama` flavour's chat endpoint ignores `max_completion_tokens`
   * (only `max_tokens` limits its answer).
   */
  flavor?: SimulatorFlavor;
  /** Slots a `llamacpp` flavour reports (`total_slots`); default 1. */
  slots?: number;
  /**
   * Simulator feature: model a prefix cache (`prefix-cache.ts`), reporting as
   * `usage.prompt_tokens_details.cached_tokens` the tokens a prompt shares from its start with
   * one of the last prompts served (`true`: the last 64; a number: that many), as vLLM with
   * prefix caching and llama.cpp do. Default off (cached tokens are always 0).
   */
  prefixCache?: boolean | number;
  /**
   * Arguments the simulated model passes when it calls a tool, by tool name (e.g.
   * `{ exec_command: { cmd: "cat answer.txt" } }` to have an agent run one command); a tool
   * not named here gets placeholder arguments built from its schema.
   */
  toolArguments?: Readonly<Record<string, Record<string, unknown>>>;
  /**
   * Reasoning mode (`reasoning.ts`): every chat request thinks first (as at this effort, when
   * one is named: `low` 8 tokens, `medium` 16, `high` 32) unless it sets a `reasoning_effort`
   * itself (`none`: no thinking) or `think: false`. Without it, a request reasons when it sets
   * a `reasoning_effort` (or `think: true`), or its model has `thinking: true`.
   */
  reasoning?: boolean | "low" | "medium" | "high";
  /** The member reasoning is streamed in; default `reasoning` for the `ollama` flavour, else `reasoning_content` (vLLM, DeepSeek). */
  reasoningMember?: ReasoningMember;
  /** Slow video mode (`videos.ts`): the models `POST /v1/videos` takes; default `["sim-video"]`. */
  videoModels?: readonly string[];
  /** Slow video mode: the render time of one video in ms (progress 0, 25, 50, 75, then completed); default 0. */
  videoRenderMs?: number;
  /** Slow video mode: the size of each video's MP4 in bytes; default 65 536. */
  videoBytes?: number;
  /** Generic run mode (`predictions.ts`, a Cog-like `POST /predictions`): the run time of one prediction in ms; default 0. */
  runMs?: number;
}

/** A running simulator. */
export interface Simulator {
  /** Base URL of its OpenAI-compatible API, e.g. `http://127.0.0.1:11500/v1`. */
  readonly baseUrl: string;
  /** Root URL (where `/api/tags` lives). */
  readonly url: string;
  /** Bodies of the chat requests received, oldest first (the last 100). */
  readonly requests: Record<string, unknown>[];
  /** Requests currently open (streams in progress, hung requests). */
  readonly openRequests: number;
  /** Injects a fault into the next `count` chat requests (default: every request until cleared). */
  setFault(fault: SimulatorFault | undefined, count?: number): void;
  /** Changes the generation speed. */
  setTokensPerSecond(tps: number): void;
  /** Stops the server and drops every open connection. */
  close(): Promise<void>;
}

/**
 * Starts the simulator on loopback.
 *
 * @example
 * const sim = await startSimulator({ tokensPerSecond: 50 });
 * const res = await fetch(`${sim.baseUrl}/chat/completions`, {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ model: "sim-llama-3-8b", messages: [{ role: "user", content: "hi" }] }),
 * });
 * await sim.close();
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  let tps = options.tokensPerSecond ?? 0;
  const requests: Record<string, unknown>[] = [];
  const faults = createFaultSlot();
  const context: SimulatorContext = {
    flavor: options.flavor,
    models: options.models ?? [{ id: "sim-llama-3-8b" }],
    defaultMaxTokens: options.defaultMaxTokens ?? 24,
    latencyMs: options.latencyMs ?? 0,
    tokensPerSecond: () => tps,
    takeFault: faults.takeFault,
    record: (body) => {
      requests.push(body);
      if (requests.length > 100) requests.shift();
    },
    reasoning: options.reasoning,
    reasoningMember: options.reasoningMember,
    toolArguments: options.toolArguments,
    videos: { models: options.videoModels ?? ["sim-video"], renderMs: options.videoRenderMs ?? 0, bytes: options.videoBytes ?? 65_536 },
    runs: { runMs: options.runMs ?? 0 },
    prefixCache: options.prefixCache
      ? new PrefixCache(typeof options.prefixCache === "number" ? options.prefixCache : undefined)
      : undefined,
  };
  const route = createRouter(context, options.slots ?? 1, Math.floor(Date.now() / 1000));
  let open = 0;
  const server = createServer((req, res) => {
    open++;
    res.on("close", () => open--);
    route(req, res);
  });
  const close = closer(server);
  const url = await listen(server, options.port ?? 0, options.host ?? "127.0.0.1");
  return {
    url,
    baseUrl: `${url}/v1`,
    requests,
    get openRequests() {
      return open;
    },
    setFault: faults.setFault,
    setTokensPerSecond(next) {
      tps = next;
    },
    close,
  };
}
