// Types of scripts/postgres.mjs (plain ESM, so that the bench runs it with plain `node`).

/** Server settings passed as `-c name=value` on the server's command line. */
export type ServerSettings = Readonly<Record<string, string>>;

/** `fsync`, `synchronous_commit` and `full_page_writes` on: PostgreSQL's durable defaults, stated explicitly. */
export declare const DURABLE_SETTINGS: Readonly<{ fsync: "on"; synchronous_commit: "on"; full_page_writes: "on" }>;

/** `fsync`, `full_page_writes` and `synchronous_commit` off: for a server whose data may be lost. */
export declare const THROWAWAY_SETTINGS: Readonly<{ fsync: "off"; full_page_writes: "off"; synchronous_commit: "off" }>;

export interface StartPostgresOptions {
  /** Settings for the server's command line; DURABLE_SETTINGS by default. */
  settings?: ServerSettings;
  /** The empty database `url` names; `srp` by default. */
  database?: string;
  /** How the temporary directory's name starts (`srp-…`, directly in the system's temp dir); `srp-pg-` by default. */
  prefix?: string;
  /** Whether a detached guard process stops the server should this process be killed outright; true by default. */
  guard?: boolean;
}

/** A running throwaway server. */
export interface StartedPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/<database>`. */
  url: string;
  /** The same server's `postgres` database. */
  adminUrl: string;
  /** The postmaster's process id. */
  pid: number | undefined;
  /** The temporary directory holding the data directory (`data`), the socket and `server.log`. */
  dir: string;
  /** Stops the server at once and removes its directory; safe to call twice. */
  stop(): Promise<void>;
  /** Stops the server at once (`pg_ctl stop -m immediate`, as a crash would), keeping its data directory and port for `up()`. */
  down(): Promise<void>;
  /** Starts a server stopped by `down()` again, on the same port and data directory; resolves once it accepts connections. */
  up(): Promise<void>;
}

/** `initdb` and `pg_ctl` from one directory, or why there are none. */
export declare function findBinaries(): { initdb: string; pgCtl: string } | { missing: string };

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export declare function freePort(): Promise<number>;

/** Synchronous last resort: SIGQUIT to the postmaster of `dir`, a short wait, then `dir` is removed. */
export declare function killServerSync(dir: string): void;

/** A detached guard that removes `dir` (`<tmpdir>/srp-*`), stopping its server first, once this process is gone. */
export declare function guardDir(dir: string): void;

/** Starts a throwaway server with an empty database; `{ skipped }` when the server binaries are missing. */
export declare function startPostgres(options?: StartPostgresOptions): Promise<StartedPostgres | { skipped: string }>;

/** Creates database `name` on the server of `url` and returns the URL that reaches it. */
export declare function createDatabase(url: string, name: string): Promise<string>;
