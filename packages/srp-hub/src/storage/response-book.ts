/**
 * Stored responses of the Responses surface on SQLite and PostgreSQL (`store.responses` of
 * a `SqlStore`), in the `responses` table of migration 6. Each row is one turn: its input
 * items and its Response object as JSON, the turn it continued, and, kept at save time,
 * its depth and the bytes of its whole conversation, so the bounds of a continuation are
 * known from one row. A conversation is read with one recursive query. `response_items`
 * indexes each turn's item ids for `item_reference`s (its rows go with their turn), and an
 * account past its bounds loses its turns that would expire soonest, in the transaction
 * that stored the turn that passed them.
 */
import {
  accountOverBounds,
  chainBoundsError,
  conversationItems,
  responseStorePolicy,
  turnBytes,
  turnItem,
  turnItemIds,
  type ResponseStore,
  type ResponseStoreOptions,
  type StoredResponse,
} from "../api/response-store.js";
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
      const prev =
        r.previousResponseId === undefined
          ? undefined
          : (
              await tx.all("SELECT depth, chain_bytes FROM responses WHERE id = ? AND account_id = ? AND expires_at > ?", [
                r.previousResponseId,
                r.accountId,
                r.createdAt,
              ])
            )[0];
      const depth = prev ? int(prev.depth) + 1 : 1;
      const chainBytes = (prev ? int(prev.chain_bytes) : 0) + bytes;
      const changed = await tx.run(
        `INSERT INTO responses (id, account_id, previous_id, depth, bytes, chain_bytes, input, body, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET previous_id = excluded.previous_id, depth = excluded.depth, bytes = excluded.bytes, chain_bytes = excluded.chain_bytes,
           input = excluded.input, body = excluded.body, created_at = excluded.created_at, expires_at = excluded.expires_at
         WHERE responses.account_id = excluded.account_id`,
        [
          r.id,
          r.accountId,
          r.previousResponseId ?? null,
          depth,
          bytes,
          chainBytes,
          JSON.stringify(r.input),
          JSON.stringify(r.response),
          r.createdAt,
          expiresAt,
        ],
      );
      if (changed !== 1) throw new Error(`response id ${r.id} belongs to another account`);
      await tx.run("DELETE FROM response_items WHERE response_id = ?", [r.id]);
      await indexItems(tx, r.accountId, r.id, turnItemIds(r));
      // The conversation is kept as long as its newest turn.
      if (prev) await touch(tx, r.previousResponseId!, r.accountId, expiresAt, this.#policy.maxTurns);
      await boundAccount(tx, r.accountId, r.id, this.#policy);
    });
  }

  async items(accountId: string, ids: readonly string[], now = Date.now()): Promise<Map<string, Record<string, unknown>>> {
    await this.#ready;
    const holder = new Map<string, string>();
    for (const chunk of chunks([...new Set(ids)], IN_CHUNK)) {
      const rows = await this.#db.all(
        `SELECT i.item_id, i.response_id FROM response_items i JOIN responses r ON r.id = i.response_id
         WHERE i.account_id = ? AND r.account_id = ? AND r.expires_at > ? AND i.item_id IN (${marks(chunk.length)}) ORDER BY r.created_at DESC, r.id DESC`,
        [accountId, accountId, now, ...chunk],
      );
      for (const row of rows) if (!holder.has(String(row.item_id))) holder.set(String(row.item_id), String(row.response_id));
    }
    const turns = new Map<string, Pick<StoredResponse, "input" | "response">>();
    for (const chunk of chunks([...new Set(holder.values())], IN_CHUNK)) {
      for (const row of await this.#db.all(`SELECT id, input, body FROM responses WHERE id IN (${marks(chunk.length)})`, chunk)) {
        turns.set(String(row.id), {
          input: JSON.parse(String(row.input)) as Record<string, unknown>[],
          response: JSON.parse(String(row.body)) as Record<string, unknown>,
        });
      }
    }
    const found = new Map<string, Record<string, unknown>>();
    for (const [itemId, responseId] of holder) {
      const turn = turns.get(responseId);
      const item = turn ? turnItem(turn, itemId) : undefined;
      if (item) found.set(itemId, item);
    }
    return found;
  }

  async get(accountId: string, id: string, now = Date.now()): Promise<StoredResponse | undefined> {
    await this.#ready;
    const rows = await this.#db.all("SELECT * FROM responses WHERE id = ? AND account_id = ? AND expires_at > ?", [id, accountId, now]);
    return rows[0] ? stored(rows[0]) : undefined;
  }

  async history(accountId: string, id: string, now = Date.now()): Promise<Record<string, unknown>[] | undefined> {
    await this.#ready;
    const top = (
      await this.#db.all("SELECT depth, chain_bytes FROM responses WHERE id = ? AND account_id = ? AND expires_at > ?", [
        id,
        accountId,
        now,
      ])
    )[0];
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
    return conversationItems(
      rows.map((r) => ({
        input: JSON.parse(String(r.input)) as Record<string, unknown>[],
        response: JSON.parse(String(r.body)) as Record<string, unknown>,
      })),
    );
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

/** Ids bound in one `IN (...)` list. */
const IN_CHUNK = 500;
/** Turns looked at per query when an account sheds turns. */
const EVICT_PAGE = 500;

const marks = (n: number) => Array.from({ length: n }, () => "?").join(", ");

function chunks<T>(values: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.slice(i, i + size));
  return out;
}

/** Indexes a turn's item ids (for `item_reference`s). */
async function indexItems(tx: SqlExecutor, accountId: string, responseId: string, itemIds: readonly string[]): Promise<void> {
  for (const chunk of chunks(itemIds, 300)) {
    await tx.run(
      `INSERT INTO response_items (account_id, item_id, response_id) VALUES ${chunk.map(() => "(?, ?, ?)").join(", ")} ON CONFLICT DO NOTHING`,
      chunk.flatMap((itemId) => [accountId, itemId, responseId]),
    );
  }
}

/**
 * Deletes the account's turns that would expire soonest (the oldest created among equals),
 * never `keep`, until the account is within its bounds (SRP-CON-056).
 */
async function boundAccount(tx: SqlExecutor, accountId: string, keep: string, policy: Required<ResponseStoreOptions>): Promise<void> {
  const held = (
    await tx.all("SELECT COUNT(*) AS turns, COALESCE(SUM(bytes), 0) AS bytes FROM responses WHERE account_id = ?", [accountId])
  )[0];
  let turns = int(held?.turns);
  let bytes = int(held?.bytes);
  while (accountOverBounds(turns, bytes, policy)) {
    const rows = await tx.all(
      "SELECT id, bytes FROM responses WHERE account_id = ? AND id <> ? ORDER BY expires_at, created_at, id LIMIT ?",
      [accountId, keep, EVICT_PAGE],
    );
    if (rows.length === 0) return;
    const drop: string[] = [];
    for (const row of rows) {
      if (!accountOverBounds(turns, bytes, policy)) break;
      drop.push(String(row.id));
      turns--;
      bytes -= int(row.bytes);
    }
    await tx.run(`DELETE FROM responses WHERE id IN (${marks(drop.length)})`, drop);
  }
}

/** Extends the expiry of a turn and every turn before it in its conversation to `expiresAt`. */
async function touch(tx: SqlExecutor, id: string, accountId: string, expiresAt: number, maxTurns: number): Promise<void> {
  await tx.run(`UPDATE responses SET expires_at = ? WHERE account_id = ? AND expires_at < ? AND id IN (${CHAIN} SELECT id FROM chain)`, [
    expiresAt,
    accountId,
    expiresAt,
    id,
    accountId,
    accountId,
    maxTurns,
  ]);
}
