// The dashboard's HTTP client: the hub's API relative to where the dashboard is served
// (so a hub mounted under a path prefix works), with the signed-in credential, which is
// kept in sessionStorage only (gone when the tab closes).
import { useCallback, useEffect, useState } from "preact/hooks";

const SESSION = "srp.dashboard.session";

/** The hub's base URL: the dashboard lives at `<base>dashboard/`. */
export const apiBase = new URL("../", location.href);

/** The signed-in session ({ role: "account" | "operator", secret, accountId?, address? }), or null. */
export function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) ?? "null");
  } catch {
    return null;
  }
}

/** Keeps (or, with null, forgets) the session for this tab. */
export function saveSession(session) {
  if (session) sessionStorage.setItem(SESSION, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION);
}

/** An error answer of the hub: its status, its error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the hub: `path` relative to its base (`v1/account`); JSON in and out; throws ApiError on a non-2xx answer. */
export async function api(session, path, { method = "GET", body } = {}) {
  const headers = { accept: "application/json" };
  if (session?.secret) headers.authorization = `Bearer ${session.secret}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(new URL(path.replace(/^\//, ""), apiBase), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data?.error?.code ?? `http.${res.status}`, data?.error?.message ?? `HTTP ${res.status}`);
  return data;
}

/** Loads `load()` on mount and when `deps` change: { data, error, loading, reload }. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true });
  const run = useCallback(() => {
    setState((s) => ({ ...s, loading: true }));
    let live = true;
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

/** Every page of the account's history (newest first), up to `max` entries. */
export async function fullHistory(session, max = 2000) {
  const out = [];
  let cursor = null;
  while (out.length < max) {
    const q = new URLSearchParams({ limit: "500" });
    if (cursor) q.set("before", cursor);
    const page = await api(session, `v1/account/history?${q}`);
    out.push(...page.data);
    if (!page.next) break;
    cursor = page.next;
  }
  return out;
}
