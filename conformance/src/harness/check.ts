/** How the check files define a check: its id, title, requirements, level and body in one call. */
import type { Check, CheckVerdict } from "../types.js";
import { skippable } from "./verdict.js";

/**
 * A check whose body may end it as skipped from anywhere (see `skip`). The context type
 * comes from the list the check is in (`Check<HubContext>[]` or `Check<ProviderContext>[]`).
 */
export function check<C>(
  id: string,
  title: string,
  requirements: string[],
  level: "MUST" | "SHOULD",
  body: (ctx: C) => Promise<CheckVerdict>,
): Check<C> {
  return { id, title, requirements, level, run: (ctx) => skippable(() => body(ctx)) };
}
