/**
 * How a check ends early: {@link fail} and {@link ensure} fail it with a message,
 * {@link skip} ends it as skipped (the target cannot run it), from anywhere in its body or
 * in a helper it calls. The runner turns the errors they throw into the check's result.
 */
import { LocalError } from "@srp/core";
import type { CheckVerdict } from "../types.js";

/** A failure found by a check; its message is the check's details. */
export class CheckFailureError extends LocalError {
  override readonly name = "CheckFailureError";
}

/** Ends a check as skipped: it cannot run against this target; its message says why. */
export class SkipCheckError extends LocalError {
  override readonly name = "SkipCheckError";
}

/** Fails the running check with a message. */
export function fail(details: string): never {
  throw new CheckFailureError(details);
}

/** Fails the running check unless `condition` holds. */
export function ensure(condition: unknown, details: string): asserts condition {
  if (!condition) throw new CheckFailureError(details);
}

/** Ends the running check as skipped, saying why it cannot run against this target. */
export function skip(details: string): never {
  throw new SkipCheckError(details);
}

/** Runs a check body, turning a {@link SkipCheckError} into a skipped verdict. */
export async function skippable(fn: () => Promise<CheckVerdict>): Promise<CheckVerdict> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof SkipCheckError) return { status: "skipped", details: e.message };
    throw e;
  }
}
