/**
 * PostgreSQL through node-postgres (`pg`): a pool of connections, and each transaction
 * checks out one for itself, so transactions run side by side and row locks decide.
 * Statements keep the shared `?` placeholders and are translated to `$1, $2, ...` once.
 * BIGINT columns come back as `bigint`, set on this pool only (never on the global
 * `pg.types`), so other users of `pg` in the same process are not affected.
 */
import pg from "pg";
import type { SqlDriver, SqlExecutor, SqlRow, SqlValue } from "./sql.js";

/** Options of {@link openPostgres}. */
export interface PostgresOptions {
  /** Most connections open at once (default 10). */
  max?: number;
  /**
   * How long opening a connection may take before it fails (default 3000 ms), so that a
   * database that cannot be reached is answered with a quick 503 `billing.unavailable`
   * rather than a request that hangs (SRP-BIL-017).
   */
  connectTimeoutMs?: number;
}

/** Default of {@link PostgresOptions.connectTimeoutMs}. */
const POSTGRES_CONNECT_TIMEOUT_MS = 3000;

/** The type OID of `int8` (BIGINT). */
const INT8 = 20;
/** SQLSTATEs after which re-running the whole transaction can succeed: serialization_failure, deadlock_detected. */
const RETRYABLE = new Set(["40001", "40P01"]);
/** Attempts at a transaction that keeps failing with a {@link RETRYABLE} error. */
const ATTEMPTS = 5;

/** The pool's type parsers: pg's own, except int8 as an exact `bigint`. */
const types: pg.CustomTypesConfig = {
  getTypeParser: (oid, format) =>
    oid === INT8 && format !== "binary" ? (text: string) => BigInt(text) : pg.types.getTypeParser(oid, format),
};

/** pg does not serialize `bigint`: send it as its decimal string. */
function values(params: readonly SqlValue[] = []): unknown[] {
  return params.map((p) => (typeof p === "bigint" ? p.toString() : p));
}

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Error codes of a connection that could not be opened or broke (Node's network errors). */
const NETWORK_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

/**
 * Whether an error says the database could not be reached or the connection broke (a
 * network error, SQLSTATE class `08`, the server shutting down, or the pool's connection
 * timeout), rather than PostgreSQL refusing a statement: work retried in smaller pieces
 * would only wait for the database again, once per piece.
 */
export function lostDatabase(error: unknown): boolean {
  const code = sqlState(error);
  if (code !== undefined) return NETWORK_ERRORS.has(code) || code.startsWith("08") || /^57P0[1-3]$/.test(code);
  const message = error instanceof Error ? error.message : "";
  return /timeout exceeded when trying to connect|connection terminated/i.test(message);
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Something that runs a query: the pool, or one checked-out client. */
type Queryable = Pick<pg.Pool, "query">;

class PostgresDriver implements SqlDriver {
  readonly dialect = "postgres" as const;
  readonly #pool: pg.Pool;
  readonly #translated = new Map<string, { name: string; text: string }>();

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /**
   * `?` placeholders as `$1, $2, ...` (our SQL has no `?` inside string literals), and a
   * statement name: each connection parses and plans a statement once, then reuses it.
   */
  #translate(sql: string): { name: string; text: string } {
    let out = this.#translated.get(sql);
    if (out === undefined) {
      let n = 0;
      out = { name: `srp_${this.#translated.size}`, text: sql.replace(/\?/g, () => `$${++n}`) };
      this.#translated.set(sql, out);
    }
    return out;
  }

  async #all(on: Queryable, sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> {
    const result = await on.query<SqlRow>({ ...this.#translate(sql), values: values(params) });
    return result.rows;
  }

  async #run(on: Queryable, sql: string, params?: readonly SqlValue[]): Promise<number> {
    const result = await on.query({ ...this.#translate(sql), values: values(params) });
    return result.rowCount ?? 0;
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> {
    return this.#all(this.#pool, sql, params);
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.#run(this.#pool, sql, params);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(fn);
      } catch (error) {
        if (attempt >= ATTEMPTS || !RETRYABLE.has(sqlState(error) ?? "")) throw error;
        await pause(Math.random() * 10 * attempt);
      }
    }
  }

  /** One attempt at a transaction on its own connection. */
  async #once<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    // A connection that breaks while checked out emits "error" on the client; keep it
    // from crashing the process and hand it back to the pool to be discarded.
    let broken: Error | undefined;
    const onError = (error: Error) => {
      broken = error;
    };
    client.on("error", onError);
    const tx: SqlExecutor = {
      all: (sql, params) => this.#all(client, sql, params),
      run: (sql, params) => this.#run(client, sql, params),
    };
    try {
      await client.query("BEGIN");
      const out = await fn(tx);
      await client.query("COMMIT");
      return out;
    } catch (error) {
      try {
        await client.query("ROLLBACK");
      } catch (rollbackError) {
        broken ??= rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw error;
    } finally {
      client.off("error", onError);
      client.release(broken);
    }
  }

  async exec(sql: string): Promise<void> {
    // No parameters: the simple query protocol, which runs several statements at once.
    await this.#pool.query(sql);
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}

/** Connects to the PostgreSQL database at `url` (`postgres://user@host:port/db`) through a pool of up to `max` connections. */
export function openPostgres(url: string, options: PostgresOptions = {}): SqlDriver {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    types,
    connectionTimeoutMillis: options.connectTimeoutMs ?? POSTGRES_CONNECT_TIMEOUT_MS,
    // A connection whose server vanished without closing it (a network partition) is found dead by TCP keepalive.
    keepAlive: true,
  });
  // An idle connection that breaks (server restart, network) is dropped by the pool and
  // replaced on demand; without a listener the "error" event would end the process.
  pool.on("error", () => undefined);
  return new PostgresDriver(pool);
}
