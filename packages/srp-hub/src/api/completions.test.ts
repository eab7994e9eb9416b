import { describe, expect, it } from "vitest";
import { SrpError } from "@srp/core";
import { completionsChoices, completionsPromptBound, COMPLETIONS_DEFAULT_MAX_TOKENS, planCompletions } from "./completions.js";
import type { Router } from "../routing/router.js";

/** A router whose model `m` has instances with these capabilities (its offers in short, one per capability set). */
const routerWith = (...caps: string[][]) =>
  ({ offers: (model: string) => (model === "m" ? caps.map((capabilities) => ({ capabilities })) : []) }) as unknown as Router;

describe("legacy completions plan", () => {
  it("bounds the prompt by its bytes and the suffix per prompt, and the output by max_tokens x n x prompts", () => {
    expect(completionsPromptBound({ prompt: "abcd", suffix: "xy" })).toBe(4 + 2 + 64);
    expect(completionsPromptBound({ prompt: ["a", "bb"] })).toBe(1 + 64 + 2 + 64);
    expect(completionsChoices({ prompt: ["a", "b", "c"], n: 2 })).toBe(6);
    const plan = planCompletions(
      { model: "m", prompt: ["a", "b"], n: 3, max_tokens: 10, stream: true, provider: { sort: "price" } },
      { router: routerWith(["chat", "completions"]) },
    );
    if (plan instanceof SrpError) throw plan;
    expect(plan.bound).toEqual({ promptTokens: 1 + 64 + 1 + 64, completionTokens: 60 });
    expect(plan.capabilities).toEqual(["completions", "stream"]);
    const job = plan.job({} as never);
    expect(job.api).toBe("completions");
    expect(job.body).toEqual({
      model: "m",
      prompt: ["a", "b"],
      n: 3,
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("sets OpenAI's default max_tokens, and refuses bodies and models it cannot serve", () => {
    const plan = planCompletions({ model: "m", prompt: "p" }, { router: routerWith(["chat", "completions"]) });
    if (plan instanceof SrpError) throw plan;
    expect(plan.job({} as never).body.max_tokens).toBe(COMPLETIONS_DEFAULT_MAX_TOKENS);
    expect(plan.bound.completionTokens).toBe(16);
    const chatOnly = planCompletions({ model: "m", prompt: "p" }, { router: routerWith(["chat"]) });
    expect(chatOnly).toBeInstanceOf(SrpError);
    expect((chatOnly as SrpError).code).toBe("job.unknown_model");
    expect((chatOnly as SrpError).message).toMatch(/legacy completions/);
    for (const bad of [{ prompt: "p", echo: true }, { prompt: "p", best_of: 3 }, { prompt: [] }, { prompt: 5 }, { prompt: "p", n: 17 }]) {
      const e = planCompletions({ model: "m", ...bad }, { router: routerWith(["chat", "completions"]) });
      expect((e as SrpError).code).toBe("api.invalid_body");
    }
  });
});
