import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { decode, ERROR_TABLE, identityFromSeed, omitFields, verifyDetached, verifyReceipt, verifyStatement } from "@srp/core";
import { MESSAGES, type Receipt, type Statement } from "@srp/core/schema";
import { Ajv2020 } from "ajv/dist/2020.js";
import { verifyMessage } from "viem";
import { nodeBindingText } from "@srp/core";
import { describe, expect, it } from "vitest";

const spec = fileURLToPath(new URL("../spec/v1", import.meta.url));
const schema = JSON.parse(readFileSync(join(spec, "schema.json"), "utf8")) as { $id: string; $defs: Record<string, unknown> };
const ajv = new Ajv2020({ strict: false });
ajv.addSchema(schema);

const examples = readdirSync(join(spec, "examples")).flatMap((dir) =>
  readdirSync(join(spec, "examples", dir)).map((f) => ({
    dir,
    file: f,
    value: JSON.parse(readFileSync(join(spec, "examples", dir, f), "utf8")) as Record<string, unknown>,
  })),
);
const hubId = identityFromSeed(new Uint8Array(32).fill(1)).id;
const nodeId = identityFromSeed(new Uint8Array(32).fill(2)).id;

describe("spec/v1/examples", () => {
  it("has an example for every message", () => {
    const dirs = new Set(examples.map((e) => e.dir));
    for (const m of Object.values(MESSAGES)) expect(dirs.has(m.name), m.name).toBe(true);
  });

  for (const { dir, file, value } of examples) {
    it(`${dir}/${file} matches schema.json#/$defs/${dir} and decodes`, () => {
      const validate = ajv.getSchema(`${schema.$id}#/$defs/${dir}`);
      expect(validate, `no $defs/${dir}`).toBeDefined();
      expect(validate!(value), JSON.stringify(validate!.errors)).toBe(true);
      const r = decode(JSON.stringify(value));
      expect(r.ok && r.message.type).toBe(value.type);
    });
  }

  it("signed examples verify with the published test keys", () => {
    const get = (dir: string, file: string) => examples.find((e) => e.dir === dir && e.file === file)!.value;
    const hello = get("Hello", "basic.json");
    expect(hello.hubId).toBe(hubId);
    expect(verifyDetached("hello", omitFields(hello, "sig"), hello.sig as string, hubId)).toBe(true);
    const auth = get("Auth", "api-key.json");
    expect(auth.nodeId).toBe(nodeId);
    expect(verifyDetached("auth", omitFields(auth, "sig"), auth.sig as string, nodeId)).toBe(true);
    expect(verifyReceipt(get("ReceiptMessage", "countersigned.json").receipt as Receipt)).toEqual([]);
    expect(verifyReceipt(get("Done", "stream.json").receipt as Receipt, { requireHubSignature: false })).toEqual([]);
    expect(verifyStatement(get("StatementMessage", "daily.json").statement as Statement)).toBe(true);
  });

  it("the wallet example carries a real EIP-191 binding of the test node", async () => {
    const account = examples.find((e) => e.dir === "Auth" && e.file === "wallet.json")!.value.account as {
      address: `0x${string}`;
      signature: `0x${string}`;
    };
    expect(await verifyMessage({ address: account.address, message: nodeBindingText(nodeId), signature: account.signature })).toBe(true);
  });

  it("a tampered example fails its signature", () => {
    const hello = examples.find((e) => e.dir === "Hello")!.value;
    expect(verifyDetached("hello", { ...omitFields(hello, "sig"), ts: (hello.ts as number) + 1 }, hello.sig as string, hubId)).toBe(false);
  });
});

describe("spec/v1/errors.md", () => {
  it("lists every code of the error table", () => {
    const text = readFileSync(join(spec, "errors.md"), "utf8");
    for (const code of Object.keys(ERROR_TABLE)) expect(text).toContain(`\`${code}\``);
  });
});
