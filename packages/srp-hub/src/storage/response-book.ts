/**
 * Stored responses of the Responses surface on SQLite and PostgreSQL (`store.responses` of
 * a `SqlStore`), in the `responses` table of migration 6. Each row is one turn: its input
 * items and its Response object as JSON, the turn it continued, and, kept at save time,
 * its depth and the bytes of its whole conversation, so the bounds of a continuation are
 * known from one row. A conversation is read with one recursive query.
 */
import { chainBoundsError, conversationItems, responseStorePolicy, turnBytes, type ResponseStore, type ResponseStoreOptions, type StoredResponse } from "../api/response-store.js";
import { int, text, type SqlDriver, type SqlExecutor, type SqlRow } from "./sql.js";
import { sweepInBatches } from "./wallet-book.js";

/** The ids of a turn's conversation, newest (`n` = 0) first, at most `limit` turns: params `id, accountId, accountId, limit`. */
const CHAIN = `WITH RECURSIVE chain(id, previous_id, n) AS (
    SELECT id, previous_id, 0 FROM responses WHERE id = ? AND account_id = ?
    UNION ALL
    SELECT r.id, r.previous_id, chain.n + 1 FROM responses r JOIN chain ON r.id = chain.previous_id WHERE r.account_id = ? AND chain.n < ?
  )`;

function stored(r: SqlRow): StoredResponse {
  const out: StoredResponse = {
    id: String(r.id),
    accountId: String(r.account_id),
    createdAt: int(r.created_at),
    response: JSON.parse(String(r.body)) as Record<string, unknown>,
    input: JSON.parse(String(r.input)) as Record<string, unknown>[],
  };
  const previous = text(r.previous_id);
  if (previous !== null) out.previousResponseId = previous;
  return out;
}

/** The stored responses of a `SqlStore`. */
export class SqlResponseBook implements ResponseStore {
  readonly #db: SqlDriver;
  readonly #ready: Promise<void>;
  readonly #policy: Required<ResponseStoreOptions>;

  /** @param ready resolves once the store's migrations have run. */
  constructor(db: SqlDriver, ready: Promise<void>, options: ResponseStoreOptions = {}) {
    this.#db = db;
    this.#ready = ready;
    this.#policy = responseStorePolicy(options);
  }

  /** The same book with other retention and bounds (the hub's `responses` options). */
  withOptions(options: ResponseStoreOptions): SqlResponseBook {
    return new SqlResponseBook(this.#db, this.#ready, options);
  }

  async save(r: StoredResponse): Promise<void> {
    await this.#ready;
    const bytes = turnBytes(r);
    const expiresAt = r.createdAt + this.#policy.retentionMs;
    await this.#db.transaction(async (tx) => {
      const prev = r.previousResponseId === undefined ? undefined : (await tx.all("SELECT depth, chain_bytes FROM responses WHERE id = ? AND account_id = ? AND expires_at > ?", [r.previousResponseId, r.accountId, r.createdAt]))[0];
      const depth = prev ? int(prev.depth) + 1 : 1;
      const chainBytes = (prev ? int(prev.chain_bytes) : 0) + bytes;
      const changed = await tx.run(
        `INSERT INTO responses (id, account_id, previous_id, depth, bytes, chain_bytes, input, body, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET previous_id = excluded.previous_id, depth = excluded.depth, bytes = excluded.bytes, chain_bytes = excluded.chain_bytes,
           input = excluded.input, body = excluded.body, created_at = excluded.created_at, expires_at = excluded.expires_at
         WHERE responses.account_id = excluded.account_id`,
        [r.id, r.accountId, r.previousResponseId ?? null, depth, bytes, chainBytes, JSON.stringify(r.input), JSON.stringify(r.response), r.createdAt, expiresAt],
      );
      if (changed !== 1) throw new Error(`response id ${r.id} belongs to another account`);
      // The conversation is kept as long as its newest turn.
      if (prev) await touch(tx, r.previousResponseId!, r.accountId, expiresAt, this.#policy.maxTurns);
    });
  }

  async get(accountId: string, id: string, now = Date.now()): Promise<StoredResponse | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM responses WHERE id = ? AND account_id = ? AND expires_at > ?", [id, accountId, now]);
    return rows[0] ? stored(rows[0]) : undefined;
  }

  async history(accountId: string, id: string, now = Date.now()): Promise<Record<string, unknown>[] | undefined> {
    await this.#ready;
    const top = (await this.#db.all("SELECT depth, chain_bytes FROM responses WHERE id = ? AND account_id = ? AND expires_at > ?", [id, accountId, now]))[0];
    if (!top) return undefined;
    const depth = int(top.depth);
    const bounds = chainBoundsError(depth, int(top.chain_bytes), this.#policy);
    if (bounds) throw bounds;
    const rows = await this.#db.all(
      `${CHAIN} SELECT r.id, r.previous_id, r.input, r.body, r.expires_at, chain.n FROM chain JOIN responses r ON r.id = chain.id ORDER BY chain.n DESC`,
      [id, accountId, accountId, depth],
    );
    // Complete: every turn down to the first (which continued nothing) is there and unexpired.
    if (rows.length !== depth || text(rows[0]?.previous_id) !== null || rows.some((r) => int(r.expires_at) <= now)) return undefined;
    return conversationItems(rows.map((r) => ({ input: JSON.parse(String(r.input)) as Record<string, unknown>[], response: JSON.parse(String(r.body)) as Record<string, unknown> })));
  }

  async delete(accountId: string, id: string): Promise<boolean> {
    await this.#ready;
    return (await this.#db.run("DELETE FROM responses WHERE id = ? AND account_id = ?", [id, accountId])) > 0;
  }

  async sweep(now = Date.now()): Promise<number> {
    await this.#ready;
    return sweepInBatches(this.#db, "DELETE FROM responses WHERE id IN (SELECT id FROM responses WHERE expires_at <= ? LIMIT ?)", [now]);
  }
}

/** Extends the expiry of a turn and every turn before it in its conversation to `expiresAt`. */
async function touch(tx: SqlExecutor, id: string, accountId: string, expiresAt: number, maxTurns: number): Promise<void> {
  await tx.run(`UPDATE responses SET expires_at = ? WHERE account_id = ? AND expires_at < ? AND id IN (${CHAIN} SELECT id FROM chain)`, [expiresAt, accountId, expiresAt, id, accountId, accountId, maxTurns]);
}
