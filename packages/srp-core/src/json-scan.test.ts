import { describe, expect, it } from "vitest";
import { JSON_DEPTH_LIMITS, scanJson } from "./json-scan.js";

const dup = (text: string) => scanJson(text, { maxDepth: 128, duplicates: true });
const deep = (n: number) => "[".repeat(n) + "]".repeat(n);

describe("scanJson", () => {
  it("finds duplicate member names at any depth", () => {
    expect(dup('{"type":"heartbeat","type":"x"}')).toMatchObject({ ok: false, problem: "duplicate", name: "type" });
    expect(dup('{"a":{"b":1,"c":[{"d":1,"d":2}]}}')).toMatchObject({ ok: false, problem: "duplicate", name: "d" });
    expect(dup('{ "a" : 1 , "a" : 2 }')).toMatchObject({ ok: false, problem: "duplicate", name: "a" });
  });

  it("compares names after unescaping", () => {
    expect(dup('{"a":1,"\\u0061":2}')).toMatchObject({ ok: false, problem: "duplicate", name: "a" });
    expect(dup('{"a\\"b":1,"a\\u0022b":2}')).toMatchObject({ ok: false, problem: "duplicate", name: 'a"b' });
  });

  it("accepts the same name in different objects, and names that only look alike", () => {
    expect(dup('{"a":{"a":1},"b":[{"a":1},{"a":2}]}').ok).toBe(true);
    expect(dup('{"a":1,"A":2,"a ":3,"\\\\a":4}').ok).toBe(true);
    // Strings in values, escaped quotes and brackets inside strings are not names or nesting.
    expect(dup('{"a":"\\"a\\":1,{[","b":["a","a"],"c":"\\\\","d":"}"}').ok).toBe(true);
  });

  it("switches to a set for large objects and still finds duplicates", () => {
    const members = Array.from({ length: 100 }, (_, i) => `"k${i}":${i}`);
    expect(dup(`{${members.join(",")}}`).ok).toBe(true);
    expect(dup(`{${members.join(",")},"k7":0}`)).toMatchObject({ ok: false, problem: "duplicate", name: "k7" });
  });

  it("ignores duplicates unless asked", () => {
    expect(scanJson('{"a":1,"a":2}', { maxDepth: 4 }).ok).toBe(true);
  });

  it("refuses nesting deeper than the limit, counting the top level as 1", () => {
    expect(scanJson(deep(64), { maxDepth: 64 })).toEqual({ ok: true, depth: 64 });
    expect(scanJson(deep(65), { maxDepth: 64 })).toEqual({ ok: false, problem: "depth", offset: 64, limit: 64 });
    expect(scanJson(`{"a":${deep(100_000)}}`, { maxDepth: JSON_DEPTH_LIMITS.body })).toMatchObject({ ok: false, problem: "depth" });
    // Brackets inside strings do not count.
    expect(scanJson(`["${"[".repeat(100)}"]`, { maxDepth: 2 }).ok).toBe(true);
  });

  it("does not throw on text that is not JSON", () => {
    for (const t of ['{"a', '{"a\\', "}}]]", '"', "", '{"a":1,"a', "\\"]) expect(() => dup(t)).not.toThrow();
  });
});
