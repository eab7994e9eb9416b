/**
 * The embedded default database: one SQLite file (better-sqlite3) in WAL mode, durable on
 * commit. Statements are prepared once and cached. better-sqlite3 is synchronous, so
 * transactions simply run one at a time: an async queue keeps a statement from another
 * caller out of an open transaction. When another connection (another process, such as
 * the admin CLI) holds the write lock, the driver waits for it asynchronously, retrying for
 * up to {@link BUSY_WAIT_MS}, and never blocks the event loop.
 *
 * Durability without stalling the event loop: SQLite itself runs with `synchronous =
 * NORMAL` (a commit is written to the WAL, not synced), and the driver syncs the WAL file
 * itself in libuv's thread pool after each group commit ({@link WalSync}) before it tells
 * the callers, which is what SQLite's `FULL` does, minus the blocked event loop. A
 * transaction opened with `{ durable: false }` is told at commit (see
 * {@link TransactionOptions}).
 */
import { chmodSync, closeSync, existsSync, fdatasync, mkdirSync, open, close as closeFd, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { SqlDriver, SqlExecutor, SqlRow, SqlValue, TransactionOptions } from "./sql.js";

/** Options of {@link openSqlite}. */
export interface SqliteOptions {
  /**
   * `FULL` (default) syncs the WAL before a commit is reported (one sync per group commit,
   * off the event loop), so a committed movement of money survives a power cut; `NORMAL`
   * never syncs on commit and survives a crash of the process only.
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

/**
 * Group sync of one file (the WAL): `sync()` resolves once everything written to the file
 * before the call is on disk. Calls made while a sync runs share the next one, so a busy
 * hub pays one `fdatasync` per sync in flight, in libuv's thread pool, never on the event
 * loop. A failed sync is final (fail-stop): that and every later `sync()` rejects, since
 * what the file holds on disk is no longer known.
 */
export class WalSync {
  readonly #path: string;
  #fd: Promise<number | undefined> | undefined;
  #inFlight: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #failed: unknown;

  constructor(path: string) {
    this.#path = path;
  }

  /** The error of a sync that failed: after it nothing written may be trusted to be on disk, and the driver takes nothing more. */
  get failed(): unknown {
    return this.#failed;
  }

  /** Resolves once everything written to the file before this call is on disk. */
  sync(): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#queued) return this.#queued;
    if (!this.#inFlight) return this.#begin();
    // The sync in flight may have started before the caller's write: wait for the next one.
    const queued = this.#inFlight
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#begin();
      });
    this.#queued = queued;
    return queued;
  }

  #begin(): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const run = this.#syncOnce().catch((error: unknown) => {
      this.#failed = new Error(`the database could not be synced to disk (${String((error as Error)?.message ?? error)})`, {
        cause: error,
      });
      throw this.#failed;
    });
    const inFlight = run.finally(() => {
      if (this.#inFlight === inFlight) this.#inFlight = undefined;
    });
    this.#inFlight = inFlight;
    return inFlight;
  }

  async #syncOnce(): Promise<void> {
    // Opened once: SQLite keeps the WAL file (same inode) while a connection is open.
    this.#fd ??= new Promise((resolve, reject) =>
      open(this.#path, "r+", (error, fd) => (error ? (error.code === "ENOENT" ? resolve(undefined) : reject(error)) : resolve(fd))),
    );
    const fd = await this.#fd;
    if (fd === undefined) {
      this.#fd = undefined; // nothing written yet: no WAL file to sync
      return;
    }
    await new Promise<void>((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
  }

  /** Closes the file (after the sync in flight, if any). */
  async close(): Promise<void> {
    await this.#queued?.catch(() => undefined);
    await this.#inFlight?.catch(() => undefined);
    const fd = await this.#fd?.catch(() => undefined);
    this.#fd = undefined;
    if (fd !== undefined) await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
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
  readonly #batch: Array<{
    fn: (tx: SqlExecutor) => Promise<unknown>;
    durable: boolean;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
  }> = [];
  #flushQueued = false;
  /** Syncs the WAL before a commit is reported (`synchronous: "FULL"` on a file); undefined when SQLite syncs itself or nothing needs to. */
  readonly #wal: WalSync | undefined;

  constructor(db: Database.Database, wal: WalSync | undefined) {
    this.#db = db;
    this.#wal = wal;
    this.#direct = { all: async (sql, params) => this.#all(sql, params), run: async (sql, params) => this.#run(sql, params) };
  }

  /** Resolves once what was committed so far is on disk (at once when the driver does not sync). */
  #synced(): Promise<void> {
    return this.#wal ? this.#wal.sync() : Promise.resolve();
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
    const broken = this.#wal?.failed;
    if (broken !== undefined) return Promise.reject(broken);
    if (!this.#inTransaction) {
      try {
        return Promise.resolve(statement());
      } catch (error) {
        if (!isBusy(error)) return Promise.reject(error);
      }
    }
    return this.#serial(() => whenFree(statement));
  }

  /** Whether a statement only reads (a write outside a transaction is synced before it is reported). */
  #reads(sql: string): boolean {
    return this.#prepare(sql).readonly;
  }

  async all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> {
    const rows = await this.#now(() => this.#all(sql, params));
    if (this.#wal && !this.#reads(sql)) await this.#synced();
    return rows;
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    const changes = await this.#now(() => this.#run(sql, params));
    if (this.#wal && !this.#reads(sql)) await this.#synced();
    return changes;
  }

  /**
   * Group commit: transactions asked for during one turn of the event loop run together
   * in one database transaction, each inside its own savepoint (a failing one rolls back
   * alone and only its caller sees the error), and are committed with one fsync. No
   * caller hears of its transaction before that commit is on disk (unless it asked for
   * `durable: false`), and a busy hub pays one sync per batch instead of one per request.
   * The sync runs off the event loop, and the next batch may commit meanwhile.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#batch.push({ fn, durable: options.durable !== false, resolve: resolve as (v: unknown) => void, reject });
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
    // A sync failed: what was committed since may not be on disk, so nothing more is committed (fail-stop; a restart recovers).
    const broken = this.#wal?.failed;
    if (broken !== undefined) {
      for (const it of items) it.reject(broken);
      return;
    }
    try {
      await whenFree(() => this.#db.exec("BEGIN IMMEDIATE"));
    } catch (error) {
      for (const it of items) it.reject(error);
      return;
    }
    this.#inTransaction = true;
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      // A batch of one needs no savepoint: when it fails, the whole transaction rolls back.
      const alone = items.length === 1;
      for (const it of items) {
        if (!alone) this.#db.exec("SAVEPOINT srp_tx");
        try {
          const value = await it.fn(this.#direct);
          if (!alone) this.#db.exec("RELEASE srp_tx");
          outcomes.push({ ok: true, value });
        } catch (error) {
          if (alone) this.#db.exec("ROLLBACK");
          else {
            this.#db.exec("ROLLBACK TO srp_tx");
            this.#db.exec("RELEASE srp_tx");
          }
          outcomes.push({ ok: false, error });
        }
      }
      if (this.#db.inTransaction) this.#db.exec("COMMIT");
    } catch (error) {
      // The batch could not commit: nothing of it happened, and every caller hears so.
      if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
      for (const it of items) it.reject(error);
      return;
    } finally {
      this.#inTransaction = false;
    }
    // Committed. Who asked for durability hears once the commit is on disk; the sync runs
    // in the thread pool, so the queue moves on to the next batch meanwhile.
    const tell = (i: number) => {
      const o = outcomes[i]!;
      if (o.ok) items[i]!.resolve(o.value);
      else items[i]!.reject(o.error);
    };
    const waits = items.map((it, i) => this.#wal !== undefined && it.durable && outcomes[i]!.ok);
    waits.forEach((wait, i) => !wait && tell(i));
    if (waits.includes(true))
      this.#synced().then(
        () => waits.forEach((wait, i) => wait && tell(i)),
        (error: unknown) => waits.forEach((wait, i) => wait && items[i]!.reject(error)),
      );
  }

  exec(sql: string): Promise<void> {
    return this.#serial(() => {
      this.#db.exec(sql);
    }).then(() => this.#synced());
  }

  close(): Promise<void> {
    return this.#serial(async () => {
      await this.#wal?.close();
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
  const full = (options.synchronous ?? "FULL") === "FULL";
  // FULL on a plain file: the driver syncs the WAL itself, off the event loop (WalSync);
  // on a URI it lets SQLite sync (it cannot name the WAL file for sure); `:memory:` has no disk.
  const plainFile = path !== ":memory:" && !path.startsWith("file:") && path !== "";
  const wal = full && plainFile && db.pragma("journal_mode", { simple: true }) === "wal" ? new WalSync(`${path}-wal`) : undefined;
  db.pragma(`synchronous = ${full && !wal ? "FULL" : "NORMAL"}`);
  db.pragma("foreign_keys = ON");
  // Never wait for a lock synchronously (that would stall the event loop): the driver retries asynchronously.
  db.pragma("busy_timeout = 0");
  return new SqliteDriver(db, wal);
}
