import { resolveModelAlias, SrpError } from "@srp/core";
import { describe, expect, it } from "vitest";
import { fallbackError, fallsThrough, modelList, modelsToTry, waitingModelIndex } from "./fallbacks.js";

describe("modelList", () => {
  it("reads 1 to 8 model ids and refuses anything else with api.invalid_body", () => {
    expect(modelList({})).toBeUndefined();
    expect(modelList({ models: null })).toBeUndefined();
    expect(modelList({ models: ["a", "b"] })).toEqual(["a", "b"]);
    for (const bad of [[], "a", [1], [""], ["x".repeat(257)], Array.from({ length: 9 }, (_, i) => `m${i}`), {}]) {
      const e = modelList({ models: bad });
      expect(e).toBeInstanceOf(SrpError);
      expect((e as SrpError).code).toBe("api.invalid_body");
    }
  });
});

describe("modelsToTry", () => {
  it("tries model first, then models in order, each once", () => {
    expect(modelsToTry("a", ["b", "c"], true)).toEqual(["a", "b", "c"]);
    expect(modelsToTry("a", ["b", "a", "c", "b"], true)).toEqual(["a", "b", "c"]);
    expect(modelsToTry(undefined, ["b", "c"], true)).toEqual(["b", "c"]);
    expect(modelsToTry("a", undefined, true)).toEqual(["a"]);
  });

  it("counts two names of one model once (aliases resolve to one canonical id)", () => {
    const alias = "llama3.1:8b";
    const canonical = resolveModelAlias(alias);
    expect(canonical).not.toBe(alias); // the alias table knows this name
    expect(modelsToTry(alias, [canonical, "other"], true)).toEqual([alias, "other"]);
  });

  it("with allow_fallbacks false, only the first", () => {
    expect(modelsToTry("a", ["b"], false)).toEqual(["a"]);
    expect(modelsToTry(undefined, ["b", "c"], false)).toEqual(["b"]);
  });
});

describe("fallsThrough / fallbackError", () => {
  it("goes on after a model's failure to serve, not after the consumer left, the deadline, shutdown or a bad body", () => {
    for (const c of ["job.unknown_model", "job.no_capacity", "job.upstream_error", "job.context_length_exceeded"] as const)
      expect(fallsThrough(new SrpError(c))).toBe(true);
    for (const c of ["job.cancelled", "job.deadline_exceeded", "session.shutdown", "api.invalid_body"] as const)
      expect(fallsThrough(new SrpError(c))).toBe(false);
  });

  it("reports the last error that says more than unknown model", () => {
    const busy = new SrpError("job.no_capacity");
    const unknown = new SrpError("job.unknown_model");
    expect(fallbackError([busy, unknown])).toBe(busy);
    expect(fallbackError([unknown, unknown])).toBe(unknown);
    expect(fallbackError([])).toBeUndefined();
  });
});

describe("waitingModelIndex", () => {
  it("waits on the last model the request can reach, not on an unserved model after it", () => {
    const served = new Set(["busy", "free"]);
    const reachable = (m: string) => served.has(m);
    expect(waitingModelIndex(["busy", "offline"], reachable)).toBe(0);
    expect(waitingModelIndex(["busy", "free", "offline", "gone"], reachable)).toBe(1);
    expect(waitingModelIndex(["offline", "busy"], reachable)).toBe(1);
    expect(waitingModelIndex(["busy", "free"], reachable)).toBe(1);
    // None reachable: the last of the list (it is refused at once, as before).
    expect(waitingModelIndex(["x", "y"], reachable)).toBe(1);
    expect(waitingModelIndex(["only"], () => false)).toBe(0);
  });
});
