/**
 * Fallbacks across models (SRP-CON-058..063): a request may name further models in
 * `models`; when no instance of one can serve it before any output, the next is tried.
 * Pure functions: reading the list, and the order in which models are tried.
 */
import { resolveModelAlias, SrpError } from "@srp/core";

/** Most models a request may list in `models`. */
export const MAX_FALLBACK_MODELS = 8;

/**
 * Reads a body's `models` member: undefined when absent (or null), else 1 to 8 model ids
 * of 1 to 256 characters each, or the `api.invalid_body` error that says what is wrong.
 *
 * @example
 * modelList({ models: ["a", "b"] }); // ["a", "b"]
 * modelList({ models: [] }); // SrpError api.invalid_body
 */
export function modelList(body: Record<string, unknown>): string[] | SrpError | undefined {
  const v = body.models;
  if (v === undefined || v === null) return undefined;
  if (
    !Array.isArray(v) ||
    v.length === 0 ||
    v.length > MAX_FALLBACK_MODELS ||
    !v.every((m) => typeof m === "string" && m.length > 0 && m.length <= 256)
  ) {
    return new SrpError(
      "api.invalid_body",
      `\`models\` is an array of 1 to ${MAX_FALLBACK_MODELS} model ids (strings of 1 to 256 characters), tried in order after \`model\``,
    );
  }
  return v as string[];
}

/**
 * The models a request tries, in order: `model` first (when given), then `models` in
 * their order, each once (two names of one model, aliases included, count once). With
 * `allowFallbacks` false, only the first.
 *
 * @example
 * modelsToTry("a", ["b", "a", "c"], true); // ["a", "b", "c"]
 * modelsToTry(undefined, ["b", "c"], false); // ["b"]
 */
export function modelsToTry(model: string | undefined, models: readonly string[] | undefined, allowFallbacks: boolean): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const m of [...(model === undefined ? [] : [model]), ...(models ?? [])]) {
    const canonical = resolveModelAlias(m);
    if (seen.has(canonical)) continue;
    seen.add(canonical);
    out.push(m);
  }
  return allowFallbacks ? out : out.slice(0, 1);
}

/**
 * Which of the models a request tries waits for a slot (SRP-CON-066): the last one that
 * `reachable` says the request can be served by, now or once a slot frees (an instance of it
 * is online, matches the request's needs and preferences, and is not parked after failures);
 * when none is, the last of the list. The models after it have nothing to wait for, so a
 * list that ends in a model nobody serves still waits on the busy one before it.
 *
 * @example
 * waitingModelIndex(["busy", "offline"], (m) => m === "busy"); // 0
 * waitingModelIndex(["a", "b"], () => false); // 1
 */
export function waitingModelIndex(models: readonly string[], reachable: (model: string) => boolean): number {
  for (let i = models.length - 1; i >= 0; i--) if (reachable(models[i]!)) return i;
  return models.length - 1;
}

/**
 * Whether an error that ended a model's attempts lets the request go on to its next model:
 * any failure to be served before output does, except the consumer leaving, the deadline,
 * the hub closing, or a body no model could take.
 */
export function fallsThrough(error: SrpError): boolean {
  return !["job.cancelled", "job.deadline_exceeded", "session.shutdown", "api.invalid_body"].includes(error.code);
}

/**
 * The error a request gets when every model it tried failed: the last one that says more
 * than "not served" (`job.unknown_model`), else the last.
 */
export function fallbackError(errors: readonly SrpError[]): SrpError | undefined {
  return [...errors].reverse().find((e) => e.code !== "job.unknown_model") ?? errors[errors.length - 1];
}
