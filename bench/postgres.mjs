// A throwaway PostgreSQL server for the bench: scripts/postgres.mjs (shared with the
// tests) with PostgreSQL's durable defaults stated explicitly (fsync, synchronous_commit
// and full_page_writes on), unlike the test server, and an empty `srp_bench` database.
//
// The server is always stopped: by `stop()`; when the helper that started it exits, is
// interrupted or loses its IPC channel; and, if the helper is killed outright, by the
// detached guard of scripts/postgres.mjs (`guardDir`), which bench/ledger.mjs also uses
// for its SQLite directory.
import { DURABLE_SETTINGS, startPostgres as startServer } from "../scripts/postgres.mjs";

export { DURABLE_SETTINGS, findBinaries, guardDir, killServerSync } from "../scripts/postgres.mjs";

/**
 * Starts a throwaway PostgreSQL server. Resolves to `{ url, adminUrl, pid, dir, stop() }`
 * (`url` names database `srp_bench`), or `{ skipped: reason }` when the binaries are missing.
 */
export function startPostgres() {
  return startServer({ settings: DURABLE_SETTINGS, database: "srp_bench", prefix: "srp-bench-pg-", guard: true });
}
