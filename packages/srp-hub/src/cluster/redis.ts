/**
 * The hub's connection to Redis, where the processes of one hub keep their live shared
 * state. A thin adapter over ioredis, set up for the request path: a command issued while
 * Redis is unreachable fails at once (no offline queue) or after `commandTimeoutMs` (a hung
 * server) instead of waiting, so the caller falls back or refuses; reconnection is retried
 * for ever with a capped backoff. Subscriptions get a connection of their own, which does
 * queue while offline and subscribes again after a reconnect.
 */
import { Redis } from "ioredis";

/** How to connect. */
export interface RedisConnectOptions {
  /** Prefix of every key this connection names (not of pub/sub channels), e.g. `srp:<hub id>:`; none by default. */
  keyPrefix?: string;
  /** The client name Redis reports for the connection (`CLIENT LIST`); the subscriber's gets `:sub`. */
  name?: string;
  /** Milliseconds a command may wait for its answer before it fails; 1000 by default. */
  commandTimeoutMs?: number;
  /** Told of connection errors (refused, reset...); they repeat while Redis is down. None by default. */
  onError?: (error: Error) => void;
}

/** An open connection to Redis. */
export interface RedisConnection {
  /** For commands: fails fast while Redis is unreachable. */
  readonly commands: Redis;
  /** For `SUBSCRIBE` / `PSUBSCRIBE` only; subscribes again after a reconnect. */
  readonly subscriber: Redis;
  /** Resolves once both connections are ready (at once when they are). */
  ready(): Promise<void>;
  /** Closes both connections; safe to call twice. */
  close(): Promise<void>;
}

/** Milliseconds before reconnection attempt `attempt` (1, 2, ...): doubling from 50 ms, capped at 2 s (pure). */
export function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.max(0, Math.min(attempt - 1, 16)), 2000);
}

/**
 * Connects to the Redis server at `url` (`redis://[user:password@]host:port[/db]`).
 * Connecting goes on in the background: await `ready()` before relying on it.
 */
export function connectRedis(url: string, options: RedisConnectOptions = {}): RedisConnection {
  const commands = new Redis(url, {
    ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    ...(options.name ? { connectionName: options.name } : {}),
    retryStrategy: reconnectDelay,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    connectTimeout: 2000,
  });
  const subscriber = commands.duplicate({
    ...(options.name ? { connectionName: `${options.name}:sub` } : {}),
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
  });
  // Without a listener, ioredis reports every failed reconnection on the console.
  const onError = (error: Error) => options.onError?.(error);
  commands.on("error", onError);
  subscriber.on("error", onError);
  let closed = false;
  return {
    commands,
    subscriber,
    ready: () => Promise.all([whenReady(commands), whenReady(subscriber)]).then(() => undefined),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([quit(commands), quit(subscriber)]);
    },
  };
}

/** Resolves once `client` is ready; rejects if it is closed for good first. */
function whenReady(client: Redis): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      client.off("end", onEnd);
      resolve();
    };
    const onEnd = () => {
      client.off("ready", onReady);
      reject(new Error("the Redis connection was closed before it was ready"));
    };
    client.once("ready", onReady);
    client.once("end", onEnd);
  });
}

/** Says QUIT when connected, else just drops the connection (and its reconnection attempts). */
async function quit(client: Redis): Promise<void> {
  if (client.status === "ready") {
    try {
      await client.quit();
      return;
    } catch {
      // Fall through.
    }
  }
  client.disconnect();
}
