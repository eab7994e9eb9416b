/**
 * A route table and its dispatcher: each route names its methods, its path (exact, or a
 * prefix followed by an id) and its handler; `dispatch` answers what every route would
 * otherwise repeat, once: 404 `api.not_found`, 405 `api.method_not_allowed` with `Allow`,
 * HEAD without a body, and `session.shutdown` while the hub drains.
 */
import { fail } from "../api/http.js";

/** An HTTP method a route answers. */
export type Method = "GET" | "HEAD" | "POST" | "PATCH" | "DELETE";

/** What a route handler gets besides the request. */
export interface RouteParams {
  /** The request's path. */
  readonly path: string;
  /** For a prefix route: the rest of the path after the prefix, percent-decoded. */
  readonly id: string;
}

/** One entry of a route table. */
export interface Route {
  /**
   * The methods answered; others get 405 with `Allow`. `"*"`: every method reaches the
   * handler, which answers for itself (sub-dispatchers such as the admin API).
   */
  readonly method: Method | readonly Method[] | "*";
  /** The exact path, or a prefix whose rest is the route's `id`. */
  readonly path: string | { readonly prefix: string };
  /** Answers the request. A HEAD request's answer is sent without its body. */
  handle(request: Request, params: RouteParams): Promise<Response> | Response;
  /** `"refuse"`: while the hub drains, answer `session.shutdown` instead of starting new work. */
  readonly draining?: "refuse";
}

/** The state of the hub a dispatch depends on. */
export interface DispatchState {
  /** The hub is closing: routes marked `draining: "refuse"` refuse. */
  readonly draining: boolean;
}

/** The rest of a path after a prefix, percent-decoded (a malformed escape is left as it came, and then names nothing). */
export function pathId(path: string, prefix: string): string {
  const raw = path.slice(prefix.length);
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Whether a route's path matches (pure). */
function matches(route: Route, path: string): boolean {
  return typeof route.path === "string" ? route.path === path : path.startsWith(route.path.prefix);
}

/** The methods a route lists (pure). */
function methodsOf(route: Route): readonly Method[] {
  return route.method === "*" ? [] : typeof route.method === "string" ? [route.method] : route.method;
}

/** The 405 answer for a route (pure): `use GET`, `use GET or POST`, and the `Allow` header. */
function notAllowed(methods: readonly Method[]): Response {
  return fail("api.method_not_allowed", `use ${methods.join(" or ")}`, { allow: methods.join(", ") });
}

/** A response without its body, for HEAD. */
function withoutBody(response: Response): Response {
  return response.body === null
    ? response
    : new Response(null, { status: response.status, statusText: response.statusText, headers: response.headers });
}

/** The first route of a table whose path matches, or undefined (pure). */
export function findRoute(routes: readonly Route[], path: string): Route | undefined {
  return routes.find((route) => matches(route, path));
}

/**
 * Answers a request from a route table: the first route whose path matches handles it;
 * none: 404 `api.not_found`; a method it does not list: 405 with `Allow`; a route that
 * refuses while draining: `session.shutdown`.
 */
export async function dispatch(routes: readonly Route[], request: Request, state: DispatchState = { draining: false }): Promise<Response> {
  const path = new URL(request.url).pathname;
  const route = findRoute(routes, path);
  if (!route) return fail("api.not_found", `no route for ${request.method} ${path}`);
  const methods = methodsOf(route);
  if (route.method !== "*" && !methods.includes(request.method as Method)) return notAllowed(methods);
  if (route.draining === "refuse" && state.draining) return fail("session.shutdown", "the hub is shutting down");
  const id = typeof route.path === "string" ? "" : pathId(path, route.path.prefix);
  const response = await route.handle(request, { path, id });
  return request.method === "HEAD" ? withoutBody(response) : response;
}
