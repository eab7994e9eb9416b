import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { noteOf } from "../api/request-note.js";
import { watchedBody } from "../api/watched-body.js";
import { observeRequests, requestIdOf, surfaceOf } from "./requests.js";
import type { Route } from "./routes.js";
import type { HubEvents, RequestEvent } from "./types.js";

const ROUTES: Route[] = [
  { method: "POST", path: "/v1/chat/completions", handle: () => new Response("") },
  { method: "GET", path: { prefix: "/v1/receipts/" }, handle: () => new Response("") },
];

describe("request ids", () => {
  it("keeps a client's short safe id and replaces anything else", () => {
    const make = () => "req_new";
    for (const ok of ["a", "trace-1", "A.b_c:d-e", "x".repeat(128)]) expect(requestIdOf(ok, make)).toBe(ok);
    for (const bad of [null, undefined, "", "x".repeat(129), "has space", "semi;colon", "a/b", "ü", "a\tb"])
      expect(requestIdOf(bad, make)).toBe("req_new");
    expect(requestIdOf(null)).toMatch(/^req_[0-9a-f]{32}$/);
    expect(requestIdOf(null)).not.toBe(requestIdOf(null));
  });

  it("labels a request by the route that answers it, or other", () => {
    expect(surfaceOf(ROUTES, "/v1/chat/completions")).toBe("/v1/chat/completions");
    expect(surfaceOf(ROUTES, "/v1/receipts/job_123")).toBe("/v1/receipts/");
    expect(surfaceOf(ROUTES, "/v1/made-up/x")).toBe("other");
  });
});

describe("observeRequests", () => {
  it("sets x-request-id and opens no note while nobody listens", async () => {
    const emitter = new EventEmitter<HubEvents>();
    let noted: unknown = "unset";
    const fetch = observeRequests(emitter, ROUTES, async (r) => ((noted = noteOf(r)), Response.json({})));
    const r = await fetch(new Request("http://hub/v1/chat/completions", { method: "POST", headers: { "x-request-id": "t1" } }));
    expect(r.headers.get("x-request-id")).toBe("t1");
    expect(noted).toBeUndefined();
  });

  it("emits once for a stream the reader cancels, with its first chunk's time", async () => {
    const emitter = new EventEmitter<HubEvents>();
    const events: RequestEvent[] = [];
    emitter.on("request", (e) => events.push(e));
    const fetch = observeRequests(emitter, ROUTES, async (r) => {
      noteOf(r)!.model = "m";
      const body = new ReadableStream<Uint8Array>({
        pull: (c) => c.enqueue(new TextEncoder().encode("data: {}\n\n")),
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    });
    const r = await fetch(new Request("http://hub/v1/chat/completions", { method: "POST" }));
    expect(events).toHaveLength(0);
    const reader = r.body!.getReader();
    await reader.read();
    await reader.cancel();
    await reader.cancel().catch(() => {});
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      requestId: r.headers.get("x-request-id"),
      surface: "/v1/chat/completions",
      model: "m",
      stream: true,
    });
    expect(events[0]!.ttftMs).toBeDefined();
  });

  it("emits a 500 for a handler that throws, and rethrows", async () => {
    const emitter = new EventEmitter<HubEvents>();
    const events: RequestEvent[] = [];
    emitter.on("request", (e) => events.push(e));
    const fetch = observeRequests(emitter, ROUTES, async () => {
      throw new Error("boom");
    });
    await expect(fetch(new Request("http://hub/x"))).rejects.toThrow("boom");
    expect(events).toMatchObject([{ surface: "other", status: 500, stream: false }]);
  });

  it("passes a stream's bytes through unchanged and ends once", async () => {
    let ended = 0;
    let firsts = 0;
    const source = new Response("abc").body!;
    const out = watchedBody(
      source,
      () => firsts++,
      () => ended++,
    );
    expect(await new Response(out).text()).toBe("abc");
    expect([firsts, ended]).toEqual([1, 1]);
  });
});
