/**
 * The parts the multi-process tests stand on, each run for real: a throwaway `redis-server`
 * (started, restarted on the same port with and without its append-only file, stopped), the
 * hub's Redis connection (fails fast while Redis is down, comes back by itself), and HAProxy
 * balancing HTTP requests and WebSocket upgrades over two backends, taking one out by hand
 * and going on when one dies.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { connectRedis, reconnectDelay, type RedisConnection } from "../packages/srp-hub/src/cluster/redis.js";
import { haproxyConfig, serverStates, skipWithoutHaproxy, startHaproxy, type TestHaproxy } from "./support/haproxy.js";
import { serverArgs, skipWithoutRedis, startRedis, type TestRedis } from "./support/redis.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function redisServer(options: { appendonly?: boolean } = {}): Promise<TestRedis> {
  const redis = await startRedis(options);
  cleanups.push(() => redis.stop());
  return redis;
}

function connection(url: string, prefix = "t:"): RedisConnection & { errors: Error[] } {
  const errors: Error[] = [];
  const c = connectRedis(url, { keyPrefix: prefix, name: "test", onError: (e) => errors.push(e) });
  cleanups.push(() => c.close());
  return Object.assign(c, { errors });
}

describe("the Redis test server's command line", () => {
  it("binds loopback, writes no snapshot, and keeps an append-only file only when asked", () => {
    const plain = serverArgs(6390, "/tmp/x");
    expect(plain.join(" ")).toContain("--bind 127.0.0.1");
    expect(plain[plain.indexOf("--save") + 1]).toBe("");
    expect(plain[plain.indexOf("--appendonly") + 1]).toBe("no");
    const durable = serverArgs(6390, "/tmp/x", { appendonly: true });
    expect(durable[durable.indexOf("--appendonly") + 1]).toBe("yes");
    expect(durable[durable.indexOf("--appendfsync") + 1]).toBe("always");
  });

  it("reconnection waits double from 50 ms up to 2 s", () => {
    expect([1, 2, 3, 6, 7, 100, 10_000].map(reconnectDelay)).toEqual([50, 100, 200, 1600, 2000, 2000, 2000]);
  });
});

describe.skipIf(skipWithoutRedis())("a throwaway redis-server and the hub's connection to it", () => {
  it("answers on its port through the hub's connection, under the key prefix", async () => {
    const redis = await redisServer();
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    const c = connection(redis.url, "srp:hub1:");
    await c.ready();
    await c.commands.set("k", "v");
    expect(await c.commands.get("k")).toBe("v");
    const bare = connection(redis.url, "");
    await bare.ready();
    expect(await bare.commands.get("srp:hub1:k")).toBe("v");
    expect(await bare.commands.get("k")).toBeNull();
    // The subscriber connection carries pub/sub (channels are not prefixed).
    const got = new Promise<string>((resolve) => c.subscriber.once("message", (_channel: string, message: string) => resolve(message)));
    await c.subscriber.subscribe("events");
    await bare.commands.publish("events", "hello");
    expect(await got).toBe("hello");
  });

  it("while down, commands fail at once instead of queueing; after a restart on the same port the connection is back by itself, keys gone", async () => {
    const redis = await redisServer();
    const c = connection(redis.url);
    await c.ready();
    await c.commands.set("k", "v");
    await redis.down();
    await expect(c.commands.get("k")).rejects.toThrow(/enableOfflineQueue|Connection is closed/);
    // Reconnection goes on in the background; its failures are reported, not thrown.
    while (c.errors.length === 0) await new Promise((r) => setTimeout(r, 20));
    await redis.up();
    await c.ready();
    expect(await c.commands.get("k")).toBeNull(); // no persistence by default
    await c.commands.set("k", "again");
    expect(await c.commands.get("k")).toBe("again");
  });

  it("with appendonly, keys survive a crash (SIGKILL) and restart; stop() removes its directory", async () => {
    const redis = await redisServer({ appendonly: true });
    const c = connection(redis.url);
    await c.ready();
    await c.commands.set("durable", "yes");
    await redis.restart("SIGKILL");
    await c.ready();
    expect(await c.commands.get("durable")).toBe("yes");
    await c.close();
    await redis.stop();
    expect(existsSync(redis.dir)).toBe(false);
    await redis.stop(); // twice is fine
  });
});

/** A tiny backend: answers `GET /who` with its name and the X-Forwarded-For it saw, the health path with 200, and greets WebSockets on /srp/v1/provider. */
async function backend(name: string): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((req: IncomingMessage, res) => {
    if (req.url === "/.well-known/srp.json") return res.end("{}");
    if (req.url === "/who") return res.end(JSON.stringify({ name, forwardedFor: req.headers["x-forwarded-for"] ?? null }));
    res.statusCode = 404;
    res.end();
  });
  server.on("upgrade", (req, socket, head) => {
    if (req.url !== "/srp/v1/provider") return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(`hello from ${name}`);
      ws.on("message", (data) => ws.send(`${name} echoes ${String(data)}`));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const ws of wss.clients) ws.terminate();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  cleanups.push(close);
  return { server, port, close };
}

async function who(proxy: TestHaproxy): Promise<{ name: string; forwardedFor: string | null }> {
  const res = await fetch(`${proxy.url}/who`);
  expect(res.status).toBe(200);
  return (await res.json()) as { name: string; forwardedFor: string | null };
}

/** Opens a WebSocket through the proxy; resolves with it and its first message. */
function openSocket(proxy: TestHaproxy): Promise<{ ws: WebSocket; greeting: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/srp/v1/provider`);
    ws.once("error", reject);
    ws.once("message", (data) => resolve({ ws, greeting: String(data) }));
  });
}

function reply(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once("message", (data) => resolve(String(data)));
    ws.send(text);
  });
}

describe("the HAProxy configuration", () => {
  it("balances round-robin over every backend, health-checks the given path, keeps WebSockets open as tunnels", () => {
    const cfg = haproxyConfig({ port: 8000, backends: [9001, 9002], adminSocket: "/tmp/a.sock", healthPath: "/h", checkIntervalMs: 100 });
    expect(cfg).toContain("balance roundrobin");
    expect(cfg).toContain("http-check send meth GET uri /h");
    expect(cfg).toContain("server h0 127.0.0.1:9001 check");
    expect(cfg).toContain("server h1 127.0.0.1:9002 check");
    expect(cfg).toContain("timeout tunnel 1h");
    expect(() => haproxyConfig({ port: 1, backends: [2], adminSocket: "/a", healthPath: "/x y", checkIntervalMs: 1 })).toThrow();
  });

  it("reads each server's status from show stat", () => {
    const csv = "# pxname,svname,qcur,status,x\nhub,FRONTEND,,OPEN,\nhubs,h0,0,UP,\nhubs,h1,0,DOWN,\nhubs,BACKEND,0,UP,\n";
    expect(serverStates(csv, "hubs")).toEqual({ h0: "UP", h1: "DOWN" });
  });
});

describe.skipIf(skipWithoutHaproxy())("a real HAProxy in front of two backends", () => {
  it("spreads requests and WebSocket sessions over both, takes one out by hand, and keeps serving when one dies", async () => {
    const a = await backend("a");
    const b = await backend("b");
    const proxy = await startHaproxy({ backends: [a.port, b.port] });
    cleanups.push(() => proxy.stop());
    await proxy.waitUntilUp();
    expect(await proxy.states()).toEqual({ h0: "UP", h1: "UP" });

    // HTTP: each request is balanced on its own, keep-alive or not; the client's address is forwarded.
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) {
      const answer = await who(proxy);
      expect(answer.forwardedFor).toBe("127.0.0.1");
      seen.push(answer.name);
    }
    expect(seen.filter((n) => n === "a").length).toBeGreaterThanOrEqual(3);
    expect(seen.filter((n) => n === "b").length).toBeGreaterThanOrEqual(3);

    // WebSocket upgrades reach both backends and stay open both ways.
    const sockets = [await openSocket(proxy), await openSocket(proxy), await openSocket(proxy), await openSocket(proxy)];
    expect(new Set(sockets.map((s) => s.greeting))).toEqual(new Set(["hello from a", "hello from b"]));
    for (const { ws, greeting } of sockets) expect(await reply(ws, "ping")).toBe(`${greeting.slice(-1)} echoes ping`);
    for (const { ws } of sockets) ws.close();

    // Taken out by hand (maint): everything goes to the other; back in (ready): both again.
    await proxy.setState(0, "maint");
    for (let i = 0; i < 4; i++) expect((await who(proxy)).name).toBe("b");
    await proxy.setState(0, "ready");
    await proxy.waitUntilUp();
    const again = new Set<string>();
    for (let i = 0; i < 4; i++) again.add((await who(proxy)).name);
    expect(again).toEqual(new Set(["a", "b"]));

    // A backend that dies: every request is still answered (a refused connection goes to the
    // other), and the health checks mark it DOWN.
    await a.close();
    for (let i = 0; i < 6; i++) expect((await who(proxy)).name).toBe("b");
    for (;;) {
      const states = await proxy.states();
      if (states.h0?.startsWith("DOWN")) break;
      await new Promise((r) => setTimeout(r, 50));
    }

    // Pointed at a new port (a process restarted elsewhere), it comes back UP.
    const c = await backend("c");
    await proxy.setPort(0, c.port);
    await proxy.waitUntilUp();
    const last = new Set<string>();
    for (let i = 0; i < 4; i++) last.add((await who(proxy)).name);
    expect(last).toEqual(new Set(["b", "c"]));
  });
});
