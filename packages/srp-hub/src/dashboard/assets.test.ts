import { describe, expect, it } from "vitest";
import { dashboardAsset, dashboardResponse } from "./assets.js";

describe("dashboard assets", () => {
  it("names the page, its script and style under /dashboard/, redirects the bare path, and nothing else", () => {
    expect(dashboardAsset("/dashboard")).toBe("redirect");
    expect(dashboardAsset("/dashboard/")).toMatchObject({ type: "text/html; charset=utf-8" });
    expect(dashboardAsset("/dashboard/app.js")).toMatchObject({ type: "text/javascript; charset=utf-8" });
    expect(dashboardAsset("/dashboard/app.css")).toMatchObject({ type: "text/css; charset=utf-8" });
    for (const path of ["/dashboardx", "/dashboard/x.js", "/dashboard/toString", "/dashboard/__proto__", "/dashboard/../v1/account"])
      expect(dashboardAsset(path), path).toBeUndefined();
  });

  it("serves the page with a policy that allows this origin only, and a page that loads only its own assets", async () => {
    const page = dashboardResponse(new Request("http://127.0.0.1/dashboard/"));
    expect(page.status).toBe(200);
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    const html = await page.text();
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(urls.sort()).toEqual(["./app.css", "./app.js"]);
    const script = await dashboardResponse(new Request("http://127.0.0.1/dashboard/app.js")).text();
    // No address of another origin in the bundle (no CDN, no fonts); XML namespace names are names, never fetched.
    const hosts = (script.match(/https?:\/\/[a-z0-9.-]+/gi) ?? []).filter((u) => u !== "http://www.w3.org");
    expect(hosts).toEqual([]);
    const redirect = dashboardResponse(new Request("http://127.0.0.1/dashboard"));
    expect([redirect.status, redirect.headers.get("location")]).toEqual([308, "dashboard/"]);
    expect(dashboardResponse(new Request("http://127.0.0.1/dashboard/nope")).status).toBe(404);
  });
});
