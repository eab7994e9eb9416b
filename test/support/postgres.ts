/**
 * A real, throwaway PostgreSQL server for tests: `initdb` into a fresh temporary
 * directory, `pg_ctl start` on a free loopback port with nothing flushed (`fsync`,
 * `full_page_writes` and `synchronous_commit` off), and a `srp_test` database. The server
 * binaries must be installed (CI installs the `postgresql` package); without them this
 * throws rather than letting the tests skip.
 *
 * The server itself (running it as the `postgres` user when root, stopping it on exit) is
 * scripts/postgres.mjs, shared with the bench.
 */
import { DURABLE_SETTINGS, startPostgres as startServer, THROWAWAY_SETTINGS } from "../../scripts/postgres.mjs";

export { createDatabase, freePort } from "../../scripts/postgres.mjs";

/** A running test server. */
export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/srp_test`. */
  url: string;
  /** Stops the server at once and removes its files. */
  stop(): Promise<void>;
  /** Stops the server at once, as a crash would, keeping its data and port: the "PostgreSQL unreachable" scenarios. */
  down(): Promise<void>;
  /** Starts a server stopped by `down()` again on the same port, with its data; resolves once it accepts connections. */
  up(): Promise<void>;
}

/** How to start a test server. */
export interface StartPostgresOptions {
  /**
   * PostgreSQL's durable defaults (every commit flushed) instead of no flushing at all: for
   * tests that stop the server as a crash would (`down()`) and count on what it committed.
   */
  durable?: boolean;
}

/** Starts a throwaway PostgreSQL server with an empty `srp_test` database. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<TestPostgres> {
  const settings = options.durable ? DURABLE_SETTINGS : THROWAWAY_SETTINGS;
  const server = await startServer({ settings, database: "srp_test", prefix: "srp-pg-" });
  if ("skipped" in server) throw new Error(`${server.skipped} to run the PostgreSQL tests`);
  return server;
}
