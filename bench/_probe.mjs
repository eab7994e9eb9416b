import { mkdtempSync, rmSync } from "node:fs"; import { tmpdir } from "node:os"; import { join } from "node:path";
import { countersignReceipt, createReceipt, generateIdentity, INITIAL_POSITION, randomBytes, toBase64Url, toHex } from "@srp/core";
import { openStore, worstCase } from "@srp/hub";
import Database from "better-sqlite3";
const sync = process.argv[2] ?? "FULL";
const dir = mkdtempSync(join(tmpdir(), "probe-")); const file = join(dir, "hub.sqlite");
const store = await openStore(`sqlite:${file}`, { synchronous: sync });
await store.createAccount({ id: "c" }); await store.createAccount({ id: "p" }); await store.deposit("c", 10n**12n, "f");
const hub = generateIdentity(), node = generateIdentity(); let pos = INITIAL_POSITION;
const W = worstCase(64, 8, { input: "100000", output: "300000" });
const ro = new Database(file, { readonly: true });
const q = ro.prepare(`SELECT COALESCE(SUM(CASE WHEN t.kind = 'deposit' THEN e.amount ELSE 0 END), 0) AS deposited, COALESCE(SUM(CASE WHEN t.kind = 'refund' THEN -e.amount ELSE 0 END), 0) AS refunded FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx_id WHERE e.account_id = ?`);
for (let batch = 0; batch < 8; batch++) {
  const rs = [];
  for (let i = 0; i < 500; i++) { const r = countersignReceipt(createReceipt({ jobId: `job_${toBase64Url(randomBytes(16))}`, hubId: hub.id, instanceId: "m.0", model: "m", requestHash: toHex(randomBytes(32)), responseHash: "1".repeat(64), usage: { promptTokens: 12, completionTokens: 8, measured: true }, price: { input: "100000", output: "300000" }, startedAt: Date.now(), finishedAt: Date.now() }, pos, node), hub); pos = { lastSeq: r.seq, totals: r.totals }; rs.push(r); }
  let tr = 0, tc = 0;
  for (const receipt of rs) { const a = performance.now(); const r = await store.reserve("c", W); const b = performance.now(); await store.record({ receipt, providerAccountId: "p", consumerAccountId: "c", reservationId: r.reservationId }); tr += b - a; tc += performance.now() - b; }
  const a = performance.now(); for (let i = 0; i < 50; i++) q.get("user:c"); const pq = (performance.now() - a) / 50;
  console.log(`${sync} after ${(batch + 1) * 500} jobs: reserve ${(tr / 500).toFixed(3)} ms, record ${(tc / 500).toFixed(3)} ms, prepaid query ${pq.toFixed(3)} ms`);
}
console.log(ro.prepare(`EXPLAIN QUERY PLAN SELECT COALESCE(SUM(CASE WHEN t.kind = 'deposit' THEN e.amount ELSE 0 END), 0) AS deposited FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.tx_id WHERE e.account_id = ?`).all("user:c"));
await store.close(); rmSync(dir, { recursive: true });
