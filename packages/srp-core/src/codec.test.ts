import { describe, expect, it } from "vitest";
import { decode, encode, errorMessage } from "./codec.js";
import { SrpError } from "./errors.js";
import { createHello } from "./handshake.js";
import { identityFromSeed } from "./identity.js";

const hub = identityFromSeed(new Uint8Array(32).fill(1));

function codeOf(frame: string | Uint8Array, opts = {}): string {
  const r = decode(frame, opts);
  if (r.ok) throw new Error("expected an error");
  return r.error.code;
}

describe("decode", () => {
  it("returns a typed message for a valid frame", () => {
    const hello = createHello({ identity: hub });
    const r = decode(JSON.stringify(hello));
    expect(r.ok).toBe(true);
    if (r.ok && r.message.type === "hello") expect(r.message.nonce).toBe(hello.nonce);
  });

  it("accepts UTF-8 bytes as well as strings", () => {
    const r = decode(new TextEncoder().encode('{"type":"goodbye","reason":"bye"}'));
    expect(r.ok && r.message.type).toBe("goodbye");
  });

  it("gives each kind of bad frame its own code", () => {
    expect(codeOf("{not json")).toBe("frame.malformed");
    expect(codeOf("[1,2]")).toBe("frame.malformed");
    expect(codeOf("null")).toBe("frame.malformed");
    expect(codeOf(new Uint8Array([0x7b, 0xff, 0x7d]))).toBe("frame.malformed");
    expect(codeOf('{"kind":"hello"}')).toBe("frame.invalid");
    expect(codeOf('{"type":"teleport"}')).toBe("frame.unknown_type");
    expect(codeOf('{"type":"heartbeat","ts":"now","load":[]}')).toBe("frame.invalid");
    expect(codeOf('{"type":"goodbye","reason":"x","surprise":1}')).toBe("frame.invalid");
    expect(codeOf("{}", { binary: true })).toBe("frame.binary");
    expect(codeOf(`{"type":"goodbye","reason":"${"x".repeat(100)}"}`, { maxFrameBytes: 64 })).toBe("frame.too_large");
  });

  it("refuses duplicate member names at any depth (SRP-FRM-016)", () => {
    expect(codeOf('{"type":"goodbye","reason":"a","type":"goodbye"}')).toBe("frame.malformed");
    expect(codeOf('{"type":"heartbeat","ts":1,"load":[{"instanceId":"a","instanceId":"b","active":0,"capacity":1}]}')).toBe(
      "frame.malformed",
    );
    expect(codeOf(new TextEncoder().encode('{"type":"goodbye","reason":"a","re\\u0061son":"b"}'))).toBe("frame.malformed");
    const r = decode('{"type":"goodbye","type":"goodbye","reason":"a"}');
    expect(!r.ok && r.error.message).toContain('"type"');
  });

  it("refuses nesting deeper than 128 levels before parsing (SRP-FRM-017)", () => {
    const nest = (n: number) => `{"type":"goodbye","reason":"x","ext":{"a.b":${"[".repeat(n - 2)}${"]".repeat(n - 2)}}}`;
    expect(decode(nest(128)).ok).toBe(true);
    expect(codeOf(nest(129))).toBe("frame.malformed");
    expect(codeOf(nest(1_000_000), { maxFrameBytes: 16 * 1024 * 1024 })).toBe("frame.malformed");
  });

  it("checks UTF-8 itself, for a transport that does not (SRP-FRM-014)", () => {
    expect(codeOf(new Uint8Array([...new TextEncoder().encode('{"type":"goodbye","reason":"'), 0xc3, 0x28, 0x22, 0x7d]))).toBe(
      "frame.malformed",
    );
    // An overlong encoding and a UTF-16 surrogate encoded as UTF-8 are not UTF-8 either.
    expect(codeOf(new Uint8Array([0x7b, 0xc0, 0xaf, 0x7d]))).toBe("frame.malformed");
    expect(codeOf(new Uint8Array([0x7b, 0xed, 0xa0, 0x80, 0x7d]))).toBe("frame.malformed");
  });

  it("counts the limit in UTF-8 bytes, not characters", () => {
    const frame = `{"type":"goodbye","reason":"${"é".repeat(30)}"}`; // 57 chars, 87 bytes
    expect(frame.length).toBeLessThan(64);
    expect(codeOf(frame, { maxFrameBytes: 64 })).toBe("frame.too_large");
  });

  it("names the schema path of a violation", () => {
    const r = decode('{"type":"heartbeat","ts":1,"load":[{"instanceId":"a","active":-1,"capacity":1}]}');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.details).toMatchObject({ type: "heartbeat", path: "/load/0/active" });
  });

  it("rejects handshakes without a common version", () => {
    const hello = createHello({ identity: hub, versions: [7, 9] });
    expect(codeOf(JSON.stringify(hello))).toBe("version.unsupported");
    expect(decode(JSON.stringify(hello), { versions: [9] }).ok).toBe(true);
  });
});

describe("encode", () => {
  it("refuses to send an invalid message", () => {
    expect(() => encode({ type: "goodbye", reason: 5 } as never)).toThrow(SrpError);
  });

  it("round-trips with decode", () => {
    const msg = errorMessage(new SrpError("auth.bad_signature", undefined, { jobId: "j1" }));
    const r = decode(encode(msg));
    expect(r.ok && r.message).toEqual({
      type: "error",
      code: "auth.bad_signature",
      message: "Signature does not verify",
      retryable: false,
      jobId: "j1",
    });
  });
});
