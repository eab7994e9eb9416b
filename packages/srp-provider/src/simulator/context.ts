/**
 * What the simulator's endpoint handlers (`chat.ts`, `completions.ts`, `responses.ts`,
 * `modalities.ts`) share with the server: its models and flavour, its pace, its faults and
 * its request log.
 */
import type { ServerResponse } from "node:http";
import type { FlavorModelMetadata, SimulatorFlavor } from "./flavors.js";
import type { PrefixCache } from "./prefix-cache.js";
import type { ReasoningMember } from "./reasoning.js";

/** A fault the simulator injects into the requests it serves. */
export type SimulatorFault =
  /** HTTP 200 and a stream that carries an `error` event before any token. */
  | { kind: "error_before_first_token" }
  /** The connection is destroyed after `afterTokens` tokens (default 3). */
  | { kind: "drop_mid_stream"; afterTokens?: number }
  /** An HTTP error status with an OpenAI error body (default 500). */
  | { kind: "status"; status?: number }
  /** The request is accepted and never answered (a video: it never completes). */
  | { kind: "hang" }
  /** A video ends `failed` with the error code `moderation_blocked` (`videos.ts`). */
  | { kind: "video_failed" };

/**
 * One model the simulator serves. The metadata members (family, quantization, tools,
 * vision, embedding...) are what a flavoured simulator reports through its server's
 * metadata endpoints; with a `flavor`, a chat request the real server would refuse
 * (tools for a model with `tools: false`, images for `vision: false`, any chat for an
 * embedding model) gets that server's 400.
 */
export interface SimulatorModel extends FlavorModelMetadata {
  /** Model id, e.g. `sim-llama-3-8b`. */
  id: string;
  /** Context length reported to setup; default 8192. */
  contextLength?: number;
}

/** How the slow video mode renders (`videos.ts`). */
export interface VideoMode {
  /** Models it serves. */
  readonly models: readonly string[];
  /** Render time of one video, in ms (0: completed at the second retrieve). */
  readonly renderMs: number;
  /** Size of each video's MP4, in bytes. */
  readonly bytes: number;
}

/** How the generic run mode runs (`predictions.ts`). */
export interface RunMode {
  /** Run time of one prediction, in ms. */
  readonly runMs: number;
}

/** The running simulator, as its endpoint handlers see it. */
export interface SimulatorContext {
  readonly flavor: SimulatorFlavor | undefined;
  readonly models: readonly SimulatorModel[];
  /** Output length when a request sets no limit. */
  readonly defaultMaxTokens: number;
  /** Delay before the first byte of every answer, in ms. */
  readonly latencyMs: number;
  /** Generation speed now (0: as fast as possible). */
  tokensPerSecond(): number;
  /** The fault to inject into this request, if any (counts it down). */
  takeFault(): SimulatorFault | undefined;
  /** Logs a request body (the last 100 are kept). */
  record(body: Record<string, unknown>): void;
  /** The simulator's `reasoning` option: requests reason unless they turn it off (`reasoning.ts`). */
  readonly reasoning?: boolean | "low" | "medium" | "high" | undefined;
  /** The simulator's prefix cache, when enabled (`prefix-cache.ts`). */
  readonly prefixCache?: PrefixCache | undefined;
  /** The simulator's `reasoningMember` option: the member chat streams reasoning in. */
  readonly reasoningMember?: ReasoningMember | undefined;
  /** The simulator's `toolArguments` option: scripted arguments of tool calls, by tool name. */
  readonly toolArguments?: Readonly<Record<string, Record<string, unknown>>> | undefined;
  /** The slow video mode (`videos.ts`). */
  readonly videos: VideoMode;
  /** The generic run mode (`predictions.ts`). */
  readonly runs: RunMode;
}

/** Waits `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Paces a stream: after each token, waits 1/tps seconds (or yields to the event loop now
 * and then), and destroys the connection after `dropAfter` tokens (the `drop_mid_stream`
 * fault). Returns false once the connection is gone.
 */
export function pacer(res: ServerResponse, tps: number, dropAfter: number): { closed(): boolean; next(): Promise<boolean> } {
  let closed = false;
  let sent = 0;
  res.on("close", () => (closed = true));
  const delay = tps > 0 ? 1000 / tps : 0;
  return {
    closed: () => closed,
    async next() {
      sent++;
      if (sent >= dropAfter) {
        res.socket?.destroy();
        closed = true;
        return false;
      }
      if (delay >= 1) await sleep(delay);
      else if (sent % 64 === 0) await new Promise<void>((r) => setImmediate(r));
      return !closed;
    },
  };
}

/** Pieces of text (each a word with its leading space) whose tokens fit in `max`. */
export function fitTokens(text: string, max: number, count: (s: string) => number): string[] {
  const out: string[] = [];
  let used = 0;
  for (const piece of text.match(/\s*\S+/g) ?? []) {
    const n = count(piece);
    if (used + n > max) break;
    out.push(piece);
    used += n;
  }
  return out;
}
