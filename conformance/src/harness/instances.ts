/**
 * What the harness offers a hub in hub mode: instances of models nobody else serves, and
 * the short request it sends for them as a consumer.
 */
import { randomBytes, toHex } from "@srp/core";
import type { Instance } from "@srp/core/schema";

/** `bytes` random bytes as hex, for ids the harness makes up. */
export const hex = (bytes: number) => toHex(randomBytes(bytes));

/** A model id no other provider serves, so the hub can route it only to the harness. */
export const newModel = () => `conformance-${hex(6)}`;

/** An instance the harness offers: a plain chat model with streaming. */
export function instance(model: string, overrides: Partial<Instance> = {}): Instance {
  return {
    instanceId: `conf-${hex(6)}`,
    model,
    tier: "gpu",
    backend: { kind: "other" },
    price: { input: "1500000", output: "2500000" },
    maxConcurrency: 4,
    tokensPerSecond: 50,
    contextLength: 8192,
    capabilities: ["chat", "stream"],
    ...overrides,
  };
}

/** Whether a received message is a `job`. */
export const isJob = (m: Record<string, unknown>) => m.type === "job";

/** The consumer request of most job checks: one short user message. */
export const ASK = [{ role: "user", content: "Conformance ping: say something short." }];
