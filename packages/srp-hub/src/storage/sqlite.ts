/**
 * The embedded default storage: one SQLite file (WAL mode) in the hub's data directory.
 * Several processes (a running `srp-hub serve` and the admin CLI) may open the same file.
 */
import { openSqlite, type SqliteOptions } from "./sqlite-driver.js";
import { SqlStore, type SqlStoreOptions } from "./sql-store.js";

/** {@link SqlStore} on one SQLite file; `:memory:` for a throwaway database. */
export class SqliteStore extends SqlStore {
  constructor(path: string, options: SqlStoreOptions & SqliteOptions = {}) {
    super(openSqlite(path, options), options);
  }
}
