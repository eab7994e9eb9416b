/**
 * Opens the hub's storage from one connection string, as `srp-hub serve --db` takes it:
 * `sqlite:PATH` (or a bare path ending in `.sqlite`/`.db`) for the embedded default, and
 * `postgres://...` / `postgresql://...` for a PostgreSQL server. `sqlite:PATH?synchronous=normal`
 * trades durability for latency (see `SqliteOptions.synchronous`); `full` is the default.
 */
import { openPostgres, type PostgresOptions } from "./postgres-driver.js";
import { SqlStore, type SqlStoreOptions } from "./sql-store.js";
import { openSqlite, type SqliteOptions } from "./sqlite-driver.js";
import type { SqlDriver } from "./sql.js";

/** Options of {@link openStore}. */
export type OpenStoreOptions = SqlStoreOptions & SqliteOptions & PostgresOptions;

/** Opens a {@link SqlStore} on the database `spec` names, migrated and ready. */
export async function openStore(spec: string, options: OpenStoreOptions = {}): Promise<SqlStore> {
  let driver: SqlDriver;
  if (/^postgres(ql)?:\/\//.test(spec)) driver = openPostgres(spec, options);
  else if (spec.startsWith("sqlite:")) {
    const { path, synchronous } = sqliteSpec(spec.slice("sqlite:".length));
    driver = openSqlite(path, synchronous ? { ...options, synchronous } : options);
  } else if (/\.(sqlite3?|db)$/.test(spec) || spec === ":memory:") driver = openSqlite(spec, options);
  else throw new TypeError(`--db takes sqlite:PATH or postgres://..., got ${JSON.stringify(spec)}`);
  let store: SqlStore;
  try {
    store = new SqlStore(driver, options);
  } catch (error) {
    await driver.close().catch(() => {});
    throw error;
  }
  try {
    await store.ready();
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  return store;
}

/** `PATH` or `PATH?synchronous=normal|full` (case-insensitive) of a `sqlite:` spec. */
export function sqliteSpec(rest: string): { path: string; synchronous?: "FULL" | "NORMAL" } {
  const m = /^(.*)\?synchronous=(normal|full)$/i.exec(rest);
  if (!m) {
    if (/\?synchronous=/i.test(rest)) throw new TypeError(`synchronous= takes normal or full, got ${JSON.stringify(rest)}`);
    return { path: rest };
  }
  return { path: m[1]!, synchronous: m[2]!.toUpperCase() as "FULL" | "NORMAL" };
}
