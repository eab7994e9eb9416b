import { describe, expect, it } from "vitest";
import { boundedModelLabels, MAX_MODEL_LABELS } from "./metrics.js";

describe("model labels of the metrics", () => {
  it("keeps the first distinct models as their own label and counts every later one as other", () => {
    const label = boundedModelLabels(3);
    expect(["a", "b", "a", "c"].map(label)).toEqual(["a", "b", "a", "c"]);
    // A fourth name, however many times and however long, adds no label.
    expect(label("d")).toBe("other");
    expect(label(`${"x".repeat(240)}/a`)).toBe("other");
    expect(label("b")).toBe("b");
  });

  it("is bounded by default", () => {
    const label = boundedModelLabels();
    const labels = new Set(Array.from({ length: MAX_MODEL_LABELS + 50 }, (_, i) => label(`m${i}`)));
    expect(labels.size).toBe(MAX_MODEL_LABELS + 1);
    expect(labels.has("other")).toBe(true);
  });
});
