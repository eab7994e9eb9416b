/**
 * What the simulator's text endpoints beyond chat (`completions.ts`, `responses.ts`) share
 * with the server: its models and flavour, its pace, its faults and its request log.
 */
import type { ServerResponse } from "node:http";
import type { SimulatorFlavor } from "./flavors.js";
import type { SimulatorFault, SimulatorModel } from "./server.js";
import type { PrefixCache } from "./prefix-cache.js";

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
