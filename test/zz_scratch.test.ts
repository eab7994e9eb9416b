import { it, expect } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "@srp/hub";

it("two sqlite stores race", async () => {
  const path = join(mkdtempSync(join(tmpdir(), "x-")), "db.sqlite");
  const a = await openStore("sqlite:" + path, { signupCredits: 0n });
  const b = await openStore("sqlite:" + path, { signupCredits: 0n });
  await a.createAccount({ id: "acct_race" });
  await a.deposit("acct_race", 1000n, "d1");
  const t0 = Date.now();
  const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).reserve("acct_race", 10n)));
  console.log(Date.now() - t0, results.map((r) => r.status === "fulfilled" ? (r.value.ok ? "ok" : "no") : String(r.reason)));
  const z = await a.reserve("acct_race", 0n);
  console.log(z, await a.verify());
  await a.close(); await b.close();
});
