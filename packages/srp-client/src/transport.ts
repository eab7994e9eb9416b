/**
 * The client's HTTP to one hub: its base URL, the `fetch` in use, the API key in force
 * (a wallet sign-in replaces it), JSON calls that throw `SrpApiError` for an error answer,
 * and the hub's discovery document, fetched once.
 */
import type { Discovery } from "@srp/core/schema";
import { apiError } from "./api-error.js";
import { discover } from "./client.js";

/** One hub as the client's parts call it. */
export interface HubTransport {
  /** The hub's base URL, without a trailing slash. */
  readonly base: string;
  /** Fetches `path` of the hub with the client's `fetch`. */
  request(path: string, init: RequestInit): Promise<Response>;
  /** The `authorization` header of the key in force (none without a key). */
  auth(): Record<string, string>;
  /** Whether the client has a key now. */
  hasKey(): boolean;
  /** Uses `key` for every later call. */
  useKey(key: string): void;
  /** GETs `path` with `headers` and returns its JSON. */
  getJson<T>(path: string, headers: Record<string, string>, signal?: AbortSignal): Promise<T>;
  /** POSTs `body` as JSON (without the key) and returns the JSON answered. */
  postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T>;
  /** The hub's discovery document (fetched once; fetched again after a failure). */
  discovery(): Promise<Discovery>;
}

/** A transport to the hub at `hub` (a trailing slash is dropped). */
export function createTransport(hub: string, apiKey: string | undefined, doFetch: typeof fetch): HubTransport {
  const base = hub.replace(/\/+$/, "");
  let key = apiKey;
  let doc: Promise<Discovery> | undefined;
  const request = (path: string, init: RequestInit) => doFetch(`${base}${path}`, init);
  const json = async <T>(res: Response): Promise<T> => {
    if (!res.ok) throw await apiError(res);
    return (await res.json()) as T;
  };
  return {
    base,
    request,
    auth: () => (key === undefined ? {} : { authorization: `Bearer ${key}` }),
    hasKey: () => key !== undefined,
    useKey(next) {
      key = next;
    },
    getJson: async (path, headers, signal) => json(await request(path, { headers, ...(signal ? { signal } : {}) })),
    postJson: async (path, body, signal) =>
      json(
        await request(path, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          ...(signal ? { signal } : {}),
        }),
      ),
    discovery: () =>
      (doc ??= discover(base).catch((e: unknown) => {
        doc = undefined;
        throw e;
      })),
  };
}

/** Drops a response's body unread. */
export async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/** Waits `ms`, or rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
