/**
 * The web dashboard's static assets, served by the hub's own `fetch` handler under
 * `/dashboard/` (docs/dashboard.md): one page, its bundled script and its style sheet,
 * built into `assets.generated.ts` by `scripts/build-dashboard.mjs` at package build time.
 * The page loads nothing from elsewhere; its Content-Security-Policy says so to the browser.
 */
import { fail } from "../api/http.js";
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from "./assets.generated.js";

/** Where the dashboard is served (the page at `/dashboard/`, `/dashboard` redirects there). */
export const DASHBOARD_PATH = "/dashboard";

/** One asset: its body and content type. */
export interface DashboardAsset {
  readonly body: string;
  readonly type: string;
}

/** The dashboard's assets by the path after `/dashboard/` (`""` is the page). */
const ASSETS: Readonly<Record<string, DashboardAsset>> = Object.freeze({
  "": { body: DASHBOARD_HTML, type: "text/html; charset=utf-8" },
  "app.js": { body: DASHBOARD_JS, type: "text/javascript; charset=utf-8" },
  "app.css": { body: DASHBOARD_CSS, type: "text/css; charset=utf-8" },
});

/** Only this origin: the page, its script, its style and its API calls (no CDN, no fonts, no inline script). */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The asset a path under the dashboard names, `"redirect"` for the bare `/dashboard`, or undefined (pure). */
export function dashboardAsset(path: string): DashboardAsset | "redirect" | undefined {
  if (path === DASHBOARD_PATH) return "redirect";
  if (!path.startsWith(`${DASHBOARD_PATH}/`)) return undefined;
  const rest = path.slice(DASHBOARD_PATH.length + 1);
  return Object.hasOwn(ASSETS, rest) ? ASSETS[rest] : undefined;
}

/** Answers `GET /dashboard…`: the page, an asset, a redirect to `/dashboard/`, or 404. */
export function dashboardResponse(request: Request): Response {
  const asset = dashboardAsset(new URL(request.url).pathname);
  // Relative, so a hub mounted under a path prefix redirects within it.
  if (asset === "redirect") return new Response(null, { status: 308, headers: { location: "dashboard/" } });
  if (asset === undefined) return fail("api.not_found", "no such dashboard asset");
  return new Response(asset.body, {
    headers: {
      "content-type": asset.type,
      "content-security-policy": CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      // The page is small and changes with the hub; the browser revalidates each time.
      "cache-control": "no-cache",
    },
  });
}
