/**
 * The small SQL surface the hub's storage is written against, so one implementation of
 * accounts, receipts and the ledger runs on SQLite and on PostgreSQL alike. Statements
 * use `?` placeholders and the subset of SQL both engines share (`BIGINT`, `TEXT`,
 * `INSERT ... ON CONFLICT`, `RETURNING`); a driver translates what it must.
 */

/** A value bound to a placeholder or read from a column. Arrays (of decimal strings or text) are for PostgreSQL's `unnest` only. */
export type SqlValue = string | number | bigint | null | readonly (string | null)[];

/** One result row, by column name. Integer columns arrive as `number` or `bigint` depending on the driver: read them with {@link int} or {@link big}. */
export type SqlRow = Record<string, SqlValue>;

/** Runs statements: a database connection, or one open transaction. */
export interface SqlExecutor {
  /** The rows a statement returns. */
  all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]>;
  /** Runs a statement and returns the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

/** Options of {@link SqlDriver.transaction}. */
export interface TransactionOptions {
  /**
   * `false`: the caller may hear of the commit before it is on disk (a power cut right
   * after could undo it; a crash of the process could not). Only for transactions whose
   * loss the hub's recovery already covers, such as a reservation: every reservation a
   * dead process held is released when the hub starts (SRP-BIL-015), and the settlement
   * that closes it is durable, which makes the reservation durable too (commits reach the
   * disk in order). Default `true`. The SQLite driver honours it; PostgreSQL commits
   * durably either way.
   */
  durable?: boolean;
}

/** A database the hub's storage can use. */
export interface SqlDriver extends SqlExecutor {
  /** Which SQL engine this is, for the few statements that differ. */
  readonly dialect: "sqlite" | "postgres";
  /**
   * Runs `fn` in one transaction and commits it, or rolls it back if `fn` throws.
   * Transactions are isolated from each other: on SQLite they run one at a time
   * (`BEGIN IMMEDIATE`); on PostgreSQL each has its own connection and row locks decide.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  /** Closes the connection(s). */
  close(): Promise<void>;
}

/** An integer column as a `number` (throws beyond 2^53). */
export function int(value: SqlValue | undefined): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint" || typeof value === "string") {
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new RangeError(`integer column value ${value} is not a safe integer`);
    return n;
  }
  throw new TypeError(`expected an integer column, got ${value === null ? "null" : typeof value}`);
}

/** An integer column as a `bigint` (money). */
export function big(value: SqlValue | undefined): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new RangeError(`integer column value ${value} is not a safe integer`);
    return BigInt(value);
  }
  if (typeof value === "string" && /^-?[0-9]+$/.test(value)) return BigInt(value);
  throw new TypeError(`expected an integer column, got ${value === null ? "null" : typeof value}`);
}

/** A text column, or null. */
export function text(value: SqlValue | undefined): string | null {
  if (value === null || value === undefined) return null;
  return String(value);
}

/** Where a newest-first page starts: after the row with this creation time and id. */
export interface PageCursor {
  createdAt: number;
  id: string;
}

/**
 * One page of `table`'s rows, newest first by (`created_at`, `id`), after `before` when
 * given; `limit` is clamped to 1..500. `table` is a name of ours, never input.
 */
export function newestFirst(db: SqlExecutor, table: string, limit: number, before?: PageCursor): Promise<SqlRow[]> {
  const n = Math.max(1, Math.min(Math.trunc(limit), 500));
  return db.all(
    `SELECT * FROM ${table} ${before ? "WHERE created_at <= ? AND (created_at < ? OR id < ?)" : ""} ORDER BY created_at DESC, id DESC LIMIT ?`,
    before ? [before.createdAt, before.createdAt, before.id, n] : [n],
  );
}
