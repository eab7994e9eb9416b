/**
 * The embedded default database: one SQLite file (better-sqlite3) in WAL mode with full
 * fsync on commit. Statements are prepared once and cached. better-sqlite3 is
 * synchronous, so transactions simply run one at a time: an async queue keeps a
 * statement from another caller out of an open transaction.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { SqlDriver, SqlExecutor, SqlRow, SqlValue } from "./sql.js";

/** Options of {@link openSqlite}. */
export interface SqliteOptions {
  /**
   * `FULL` (default) syncs the WAL on every commit, so a committed movement of money
   * survives a power cut; `NORMAL` survives a crash of the process only.
   */
  synchronous?: "FULL" | "NORMAL";
}

class SqliteDriver implements SqlDriver {
  readonly dialect = "sqlite" as const;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  #queue: Promise<unknown> = Promise.resolve();
  #inTransaction = false;
  readonly #direct: SqlExecutor;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#direct = { all: async (sql, params) => this.#all(sql, params), run: async (sql, params) => this.#run(sql, params) };
  }

  #prepare(sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      s.safeIntegers(true);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #all(sql: string, params: readonly SqlValue[] = []): SqlRow[] {
    const s = this.#prepare(sql);
    if (!s.reader) {
      s.run(...params);
      return [];
    }
    return s.all(...params) as SqlRow[];
  }

  #run(sql: string, params: readonly SqlValue[] = []): number {
    return this.#prepare(sql).run(...params).changes;
  }

  /** Runs `fn` after everything queued before it. */
  #serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> {
    if (!this.#inTransaction) {
      // Nothing is queued behind an open transaction: run now (the common, fast case).
      try {
        return Promise.resolve(this.#all(sql, params));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#serial(() => this.#all(sql, params));
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    if (!this.#inTransaction) {
      try {
        return Promise.resolve(this.#run(sql, params));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#serial(() => this.#run(sql, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#serial(async () => {
      this.#inTransaction = true;
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        const out = await fn(this.#direct);
        this.#db.exec("COMMIT");
        return out;
      } catch (error) {
        if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
        throw error;
      } finally {
        this.#inTransaction = false;
      }
    });
  }

  exec(sql: string): Promise<void> {
    return this.#serial(() => {
      this.#db.exec(sql);
    });
  }

  close(): Promise<void> {
    return this.#serial(() => {
      this.#statements.clear();
      this.#db.close();
    });
  }
}

/** Opens (creating if needed) the SQLite database at `path`; `:memory:` for a throwaway one. */
export function openSqlite(path: string, options: SqliteOptions = {}): SqlDriver {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  return new SqliteDriver(db);
}
