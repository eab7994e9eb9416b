import { describe, expect, it } from "vitest";
import { LocalError } from "./local-error.js";

class OuterError extends LocalError {
  override readonly name = "OuterError";
}

describe("LocalError", () => {
  it("keeps a stable name, the short message and details", () => {
    const e = new OuterError("quota reached", { details: { used: 10 } });
    expect(e).toBeInstanceOf(LocalError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("OuterError");
    expect(e.shortMessage).toBe("quota reached");
    expect(e.message).toBe("quota reached");
    expect(e.details).toEqual({ used: 10 });
  });

  it("walks the cause chain to the deepest cause or the first match", () => {
    const root = new TypeError("socket closed");
    const middle = new LocalError("write failed", { cause: root });
    const outer = new OuterError("record failed", { cause: middle });
    expect(outer.walk()).toBe(root);
    expect(outer.walk((e) => e instanceof LocalError && e !== outer)).toBe(middle);
    expect(outer.walk((e) => e instanceof RangeError)).toBeUndefined();
    expect(new OuterError("alone").walk()).toBeInstanceOf(OuterError);
  });

  it("stops on a cyclic cause chain", () => {
    const a = new LocalError("a");
    const b = new LocalError("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect([a, b]).toContain(a.walk());
  });
});
