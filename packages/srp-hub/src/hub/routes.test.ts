import { describe, expect, it } from "vitest";
import { dispatch, pathId, type Route } from "./routes.js";

const ok = (body: string) => () => new Response(body, { headers: { "content-type": "text/plain" } });
const ROUTES: Route[] = [
  { method: ["GET", "HEAD"], path: "/doc", handle: ok("doc") },
  { method: "POST", path: "/work", draining: "refuse", handle: ok("worked") },
  { method: "POST", path: "/count", handle: ok("counted") },
  { method: ["GET", "POST"], path: "/both", handle: (r) => new Response(r.method) },
  { method: "GET", path: "/list", handle: ok("list") },
  { method: "GET", path: { prefix: "/items/" }, handle: (_r, { id }) => new Response(id) },
  { method: "*", path: { prefix: "/any/" }, handle: (r, { path }) => new Response(`${r.method} ${path}`) },
];
const request = (method: string, path: string) => new Request(`http://hub.test${path}`, { method });
const error = async (r: Response) => ((await r.json()) as { error: { code: string; message: string } }).error;

describe("dispatch", () => {
  it("answers 404 api.not_found naming the method and path when no route matches", async () => {
    const r = await dispatch(ROUTES, request("GET", "/nope"));
    expect(r.status).toBe(404);
    expect(await error(r)).toMatchObject({ code: "api.not_found", message: "no route for GET /nope" });
  });

  it("answers 405 api.method_not_allowed with the route's methods in Allow", async () => {
    const one = await dispatch(ROUTES, request("GET", "/work"));
    expect(one.status).toBe(405);
    expect(one.headers.get("allow")).toBe("POST");
    expect(await error(one)).toMatchObject({ code: "api.method_not_allowed", message: "use POST" });
    const two = await dispatch(ROUTES, request("DELETE", "/both"));
    expect(two.headers.get("allow")).toBe("GET, POST");
    expect(await error(two)).toMatchObject({ message: "use GET or POST" });
    expect((await dispatch(ROUTES, request("HEAD", "/list"))).status).toBe(405);
  });

  it("answers HEAD like GET without a body where the route takes HEAD", async () => {
    const get = await dispatch(ROUTES, request("GET", "/doc"));
    expect(await get.text()).toBe("doc");
    const head = await dispatch(ROUTES, request("HEAD", "/doc"));
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("text/plain");
    expect(head.body).toBeNull();
  });

  it("refuses routes marked to refuse with session.shutdown while draining, and only those", async () => {
    const refused = await dispatch(ROUTES, request("POST", "/work"), { draining: true });
    expect(refused.status).toBe(503);
    expect(await error(refused)).toMatchObject({ code: "session.shutdown" });
    expect(await (await dispatch(ROUTES, request("POST", "/count"), { draining: true })).text()).toBe("counted");
    expect(await (await dispatch(ROUTES, request("POST", "/work"), { draining: false })).text()).toBe("worked");
    // A wrong method is still a 405 while draining.
    expect((await dispatch(ROUTES, request("GET", "/work"), { draining: true })).status).toBe(405);
  });

  it("passes the percent-decoded id after a prefix, and leaves a malformed escape as it came", async () => {
    expect(await (await dispatch(ROUTES, request("GET", "/items/job%2F1%20a"))).text()).toBe("job/1 a");
    expect(await (await dispatch(ROUTES, request("GET", "/items/bad%E0%A4"))).text()).toBe("bad%E0%A4");
    expect(pathId("/items/", "/items/")).toBe("");
  });

  it("lets a route that takes every method answer for itself", async () => {
    expect(await (await dispatch(ROUTES, request("PUT", "/any/x/y"))).text()).toBe("PUT /any/x/y");
  });
});
