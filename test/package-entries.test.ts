/**
 * The built packages as users load them: every entry of every package's `exports` map loads
 * with `import` and with `require`, names something, and shares one copy of the code it has
 * in common with the package's other entries, so an error thrown by a book from
 * `@srp/hub/storage` is `instanceof` the class exported by `@srp/hub` (in CommonJS too).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const require = createRequire(import.meta.url);
const PACKAGES = ["packages/srp-core", "packages/srp-hub", "packages/srp-provider", "packages/srp-client", "conformance"];

interface Entry {
  pkg: string;
  subpath: string;
  esm: string;
  cjs: string | undefined;
}

function entries(): Entry[] {
  return PACKAGES.flatMap((dir) => {
    const manifest = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) as {
      name: string;
      exports: Record<string, unknown>;
    };
    return Object.entries(manifest.exports)
      .filter(
        (e): e is [string, { import: { default: string }; require?: { default: string } }] =>
          typeof e[1] === "object" && e[1] !== null && "import" in e[1],
      )
      .map(([subpath, target]) => ({
        pkg: manifest.name,
        subpath,
        esm: join(root, dir, target.import.default),
        cjs: target.require ? join(root, dir, target.require.default) : undefined,
      }));
  });
}

describe("package entries", () => {
  const all = entries();

  it("lists the documented subpaths", () => {
    const names = all.map((e) => `${e.pkg}${e.subpath.slice(1)}`);
    expect(names).toEqual(
      expect.arrayContaining([
        "@srp/core",
        "@srp/core/schema",
        "@srp/core/node",
        "@srp/hub",
        "@srp/hub/storage",
        "@srp/hub/ledger",
        "@srp/provider",
        "@srp/client",
      ]),
    );
  });

  it.each(all.map((e) => [`${e.pkg}${e.subpath.slice(1)}`, e] as const))(
    "%s loads as ESM and as CommonJS with the same names",
    async (_name, e) => {
      const esm = (await import(pathToFileURL(e.esm).href)) as Record<string, unknown>;
      expect(Object.keys(esm).length).toBeGreaterThan(0);
      if (e.cjs) {
        const cjs = require(e.cjs) as Record<string, unknown>;
        expect(Object.keys(cjs).sort()).toEqual(Object.keys(esm).sort());
      }
    },
  );

  describe("one copy of shared code per format", () => {
    const dir = mkdtempSync(join(tmpdir(), "srp-entries-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** A refund while an x402 payment is unsettled, from a ledger book built through `@srp/hub/storage`. */
    async function pendingRefund(hub: Record<string, any>, storage: Record<string, any>, file: string): Promise<unknown> {
      const store = new hub.SqliteStore(file);
      await store.ready();
      await store.createAccount({ id: "acct_a" });
      const db = storage.openSqlite(file);
      await db.run(
        "INSERT INTO x402_payments (id, network, asset, payer, nonce, amount, valid_before, account_id, mode, state, credited, payload, created_at, updated_at) VALUES ('p1','n','a','0x1','n1',1,0,'acct_a','after','locked',1,'{}',0,0)",
      );
      const book = new storage.SqlLedgerBook(db, Promise.resolve(), { signupCredits: 0n, discountTiers: [] });
      try {
        await book.refund("acct_a", "r1");
        return undefined;
      } catch (error) {
        return error;
      } finally {
        await db.close();
        await store.close();
      }
    }

    it("CommonJS: an error from a @srp/hub/storage book is instanceof @srp/hub's class", async () => {
      const hub = require(join(root, "packages/srp-hub/dist/index.cjs"));
      const storage = require(join(root, "packages/srp-hub/dist/storage.cjs"));
      const error = await pendingRefund(hub, storage, join(dir, "cjs.sqlite"));
      expect(error).toBeInstanceOf(hub.RefundPendingError);
    });

    it("ESM: an error from a @srp/hub/storage book is instanceof @srp/hub's class", async () => {
      const hub = await import(pathToFileURL(join(root, "packages/srp-hub/dist/index.js")).href);
      const storage = await import(pathToFileURL(join(root, "packages/srp-hub/dist/storage.js")).href);
      const error = await pendingRefund(hub, storage, join(dir, "esm.sqlite"));
      expect(error).toBeInstanceOf(hub.RefundPendingError);
    });
  });
});
