/**
 * The embedded default database: one SQLite file (better-sqlite3) in WAL mode with full
 * fsync on commit. Statements are prepared once and cached. better-sqlite3 is
 * synchronous, so transactions simply run one at a time: an async queue keeps a
 * statement from another caller out of an open transaction. When another connection
 * (another process, such as the admin CLI) holds the write lock, the driver waits for it
 * asynchronously, retrying for up to {@link BUSY_WAIT_MS}, and never blocks the event loop.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
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

/** Most transactions committed together. */
const MAX_BATCH = 256;

/** How long a statement waits for another connection's write lock before failing with SQLITE_BUSY. */
export const BUSY_WAIT_MS = 5000;

const isBusy = (error: unknown) =>
  typeof (error as { code?: unknown })?.code === "string" && (error as { code: string }).code.startsWith("SQLITE_BUSY");
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn`, retrying after short random pauses while the database is locked by another connection. */
async function whenFree<T>(fn: () => T): Promise<T> {
  const until = Date.now() + BUSY_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (error) {
      if (!isBusy(error) || Date.now() >= until) throw error;
      await pause(1 + Math.floor(Math.random() * Math.min(50, 2 ** attempt)));
    }
  }
}

class SqliteDriver implements SqlDriver {
  readonly dialect = "sqlite" as const;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  #queue: Promise<unknown> = Promise.resolve();
  #inTransaction = false;
  readonly #direct: SqlExecutor;
  /** Transactions waiting for the next group commit. */
  readonly #batch: Array<{ fn: (tx: SqlExecutor) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void }> = [];
  #flushQueued = false;

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

  /**
   * Runs one statement outside a transaction: at once when no transaction is open (the
   * common, fast case); otherwise, or while another connection holds the lock, after the
   * queue and retrying asynchronously.
   */
  #now<T>(statement: () => T): Promise<T> {
    if (!this.#inTransaction) {
      try {
        return Promise.resolve(statement());
      } catch (error) {
        if (!isBusy(error)) return Promise.reject(error);
      }
    }
    return this.#serial(() => whenFree(statement));
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> {
    return this.#now(() => this.#all(sql, params));
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.#now(() => this.#run(sql, params));
  }

  /**
   * Group commit: transactions asked for during one turn of the event loop run together
   * in one database transaction, each inside its own savepoint (a failing one rolls back
   * alone and only its caller sees the error), and are committed with one fsync. No
   * caller hears of its transaction before that commit: durability is unchanged, and a
   * busy hub pays one fsync per batch instead of one per request.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#batch.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        setImmediate(() => void this.#serial(() => this.#flush()));
      }
    });
  }

  async #flush(): Promise<void> {
    this.#flushQueued = false;
    const items = this.#batch.splice(0, MAX_BATCH);
    if (this.#batch.length > 0 && !this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => void this.#serial(() => this.#flush()));
    }
    if (items.length === 0) return;
    try {
      await whenFree(() => this.#db.exec("BEGIN IMMEDIATE"));
    } catch (error) {
      for (const it of items) it.reject(error);
      return;
    }
    this.#inTransaction = true;
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      for (const it of items) {
        this.#db.exec("SAVEPOINT srp_tx");
        try {
          const value = await it.fn(this.#direct);
          this.#db.exec("RELEASE srp_tx");
          outcomes.push({ ok: true, value });
        } catch (error) {
          this.#db.exec("ROLLBACK TO srp_tx");
          this.#db.exec("RELEASE srp_tx");
          outcomes.push({ ok: false, error });
        }
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      // The batch could not commit: nothing of it happened, and every caller hears so.
      if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
      for (const it of items) it.reject(error);
      return;
    } finally {
      this.#inTransaction = false;
    }
    outcomes.forEach((o, i) => (o.ok ? items[i]!.resolve(o.value) : items[i]!.reject(o.error)));
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

/**
 * Makes the database file owner-only (0600) before SQLite opens it: a new file is created
 * so, an existing one (and its `-wal` / `-shm`) is narrowed to it. SQLite creates the
 * `-wal` and `-shm` files with the database file's permissions (SRP-SEC-017).
 */
function ownerOnly(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, "a", 0o600));
  for (const f of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if (existsSync(f)) chmodSync(f, 0o600);
    } catch {
      // Not ours to change (another user's file): SQLite reports what matters when it opens it.
    }
  }
}

/** Opens (creating if needed, owner-only) the SQLite database at `path`; `:memory:` for a throwaway one. */
export function openSqlite(path: string, options: SqliteOptions = {}): SqlDriver {
  if (path !== ":memory:" && !path.startsWith("file:")) ownerOnly(path);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
  db.pragma("foreign_keys = ON");
  // Never wait for a lock synchronously (that would stall the event loop): the driver retries asynchronously.
  db.pragma("busy_timeout = 0");
  return new SqliteDriver(db);
}
