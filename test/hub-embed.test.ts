/**
 * Embedding the hub: mounted in a plain node:http server and in Express, the admin API
 * behind its token, SQLite-backed accounts, and the `srp-hub` CLI as a real child process.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import express from "express";
import OpenAI from "openai";
import { generateIdentity } from "@srp/core";
import { createHub, SqliteStore, toNodeHandler, type Hub } from "@srp/hub";
import { openSqlite } from "@srp/hub/storage";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), "srp-hub-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function serveOne(hub: Hub, url: string, key: string): Promise<{ sim: Simulator; provider: Provider }> {
  const sim = await startSimulator();
  const provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: key,
    instances: [
      { backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: "sim-llama-3-8b", price: { input: "1", output: "1" } },
    ],
  });
  cleanups.push(async () => {
    await provider.close();
    await hub.close();
    await sim.close();
  });
  await provider.ready();
  return { sim, provider };
}

describe("mounting", () => {
  it("works in a plain node:http server via toNodeHandler and handleUpgrade", async () => {
    const store = new SqliteStore(join(tmp(), "hub.sqlite"));
    cleanups.push(() => store.close());
    const account = await store.createAccount({ name: "plain" });
    const { key } = await store.createApiKey(account.id);
    const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store });
    const server = createServer(toNodeHandler(hub.fetch));
    server.on("upgrade", (req, socket, head) => {
      if (!hub.handleUpgrade(req, socket, head)) socket.destroy();
    });
    const url = await listen(server);
    await serveOne(hub, url, key);
    const r = await new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 }).chat.completions.create({
      model: "sim-llama-3-8b",
      messages: [{ role: "user", content: "hi" }],
    });
    const id = (r.usage as unknown as { receipt_id: string }).receipt_id;
    expect((await store.get(id))?.consumerAccountId).toBe(account.id);
    // The hub bills through the same store: the account paid, and the books balance.
    expect((await store.summary(account.id)).spent).toBeGreaterThan(0n);
    expect(await store.verify()).toEqual([]);
  });

  it("takes a SQL store as `storage`, with its admin operations, and refuses it as `receipts` (which would bill nobody)", async () => {
    const store = new SqliteStore(":memory:");
    cleanups.push(() => store.close());
    expect(() => createHub({ identity: generateIdentity(), accounts: store, receipts: store })).toThrow(/as `storage`/);
    const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store });
    cleanups.push(() => hub.close());
    // Every book comes from the store by name: billing, the account API, and the admin operations.
    expect(hub.ledger).toBe(store.ledger);
    expect(hub.books).toBe(store.books);
    expect(hub.receipts).toBe(store.receipts);
    expect(hub.admin).toBe(store.admin);
  });

  it("works mounted under Express next to the application's own routes", async () => {
    const store = new SqliteStore(":memory:");
    cleanups.push(() => store.close());
    const account = await store.createAccount();
    const { key } = await store.createApiKey(account.id);
    const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store });
    const app = express();
    app.get("/health", (_req, res) => {
      res.json({ ok: true });
    });
    const srp = toNodeHandler(hub.fetch);
    app.use((req, res) => srp(req, res));
    const server = createServer(app);
    server.on("upgrade", (req, socket, head) => {
      if (!hub.handleUpgrade(req, socket, head)) socket.destroy();
    });
    const url = await listen(server);
    await serveOne(hub, url, key);
    expect(await (await fetch(`${url}/health`)).json()).toEqual({ ok: true });
    expect(((await (await fetch(`${url}/.well-known/srp.json`)).json()) as { hubId: string }).hubId).toBe(hub.id);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "sim-llama-3-8b",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    expect(text).toMatch(/\w+/);
  });
});

describe("admin", () => {
  it("HTTP admin API: token required; accounts, keys, revocation, wallets, sessions", async () => {
    const store = new SqliteStore(":memory:");
    cleanups.push(() => store.close());
    const token = "admin-token-for-tests-0001";
    const hub = createHub({ identity: generateIdentity(), accounts: store, admin: store, adminToken: token });
    const { url } = await hub.listen({ port: 0 });
    cleanups.push(() => hub.close());
    const admin = (path: string, init: RequestInit = {}, t = token) =>
      fetch(`${url}/admin/v1/${path}`, {
        ...init,
        headers: { authorization: `Bearer ${t}`, "content-type": "application/json", ...(init.headers as object) },
      });
    expect((await admin("accounts", {}, "wrong-token-wrong-token")).status).toBe(401);
    expect((await fetch(`${url}/admin/v1/accounts`)).status).toBe(401);
    const created = await admin("accounts", { method: "POST", body: JSON.stringify({ name: "alice" }) });
    expect(created.status).toBe(201);
    const account = (await created.json()) as { id: string; name: string };
    expect(account.name).toBe("alice");
    const keyRes = await admin(`accounts/${account.id}/keys`, { method: "POST", body: JSON.stringify({ label: "laptop" }) });
    const { key, keyId } = (await keyRes.json()) as { key: string; keyId: string };
    expect(key).toMatch(/^srp_/);
    const detail = (await (await admin(`accounts/${account.id}`)).json()) as { keys: { keyId: string; label: string; prefix: string }[] };
    expect(detail.keys).toEqual([expect.objectContaining({ keyId, label: "laptop", prefix: `${key.slice(0, 8)}…` })]);
    expect(JSON.stringify(detail)).not.toContain(key);
    expect(await store.findByApiKey(key)).toMatchObject({ id: account.id, key: { keyId } });
    expect((await admin(`keys/${keyId}`, { method: "DELETE" })).status).toBe(204);
    expect(await store.findByApiKey(key)).toBeUndefined();
    expect((await admin(`keys/${keyId}`, { method: "DELETE" })).status).toBe(404);
    expect(
      (
        await admin(`accounts/${account.id}/wallets`, {
          method: "POST",
          body: JSON.stringify({ address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" }),
        })
      ).status,
    ).toBe(201);
    expect(await store.findByWallet("0x70997970c51812dc3a010c7d01b50e0d17dc79c8")).toEqual({ id: account.id });
    expect((await admin("accounts", { method: "POST", body: JSON.stringify({ id: "bad id!" }) })).status).toBe(400);
    expect(((await (await admin("sessions")).json()) as { data: unknown[] }).data).toEqual([]);
    expect((await admin("nope")).status).toBe(404);
  });

  it("the srp-hub CLI creates accounts and keys in the data dir that a running hub accepts", async () => {
    const dir = tmp();
    const cli = new URL("../packages/srp-hub/dist/cli.js", import.meta.url).pathname;
    // Commands run as child processes without blocking this event loop (a blocked loop would miss the hub closing idle keep-alive sockets).
    const exec = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
        const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d));
        child.stderr.on("data", (d: Buffer) => (stderr += d));
        child.on("close", (status) => done({ status, stdout, stderr }));
      });
    const run = async (...args: string[]) => {
      const r = await exec([...args, "--data-dir", dir]);
      if (r.status !== 0) throw new Error(`srp-hub ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const created = (await run("accounts", "create", "--name", "bob")) as { account: { id: string }; apiKey: string };
    const server = spawn(process.execPath, [cli, "serve", "--port", "0", "--data-dir", dir], { stdio: ["ignore", "pipe", "pipe"] });
    cleanups.push(() => {
      server.kill("SIGTERM");
    });
    const url = await new Promise<string>((resolve, reject) => {
      server.stdout.on("data", (d: Buffer) => {
        const m = /listening on (http:\/\/\S+)/.exec(d.toString());
        if (m) resolve(m[1]!);
      });
      server.once("exit", (code) => reject(new Error(`serve exited ${code}`)));
    });
    const get = (key: string) => fetch(`${url}/v1/receipts/job_none`, { headers: { authorization: `Bearer ${key}` } });
    expect((await get(created.apiKey)).status).toBe(404); // authenticated; no such receipt
    // A key created while the hub runs works at once; a revoked one stops working.
    const second = (await run("keys", "create", created.account.id, "--label", "ci")) as { apiKey: string; keyId: string };
    expect((await get(second.apiKey)).status).toBe(404);
    await run("keys", "revoke", second.keyId);
    expect((await get(second.apiKey)).status).toBe(401);
    expect(((await run("accounts", "list")) as unknown as { id: string }[]).map((a) => a.id)).toContain(created.account.id);
    // The admin token was created in the data dir and opens the admin API.
    const token = readFileSync(join(dir, "admin.token"), "utf8").trim();
    expect((await fetch(`${url}/admin/v1/accounts`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const bad = await exec(["keys", "create", "acct_missing", "--data-dir", dir]);
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain("no account acct_missing");

    // The ledger from the command line, while the hub runs.
    const id = created.account.id;
    expect(await run("ledger", "deposit", id, "12000000", "--ref", "wire-1")).toMatchObject({
      posted: true,
      deposited: { units: "12000000", usd: "12.00" },
    });
    expect(await run("ledger", "deposit", id, "12000000", "--ref", "wire-1")).toMatchObject({ posted: false }); // idempotent by --ref
    expect(await run("ledger", "show", id)).toMatchObject({
      balance: { units: "13000000" },
      prepaid: { units: "12000000" },
      discountBps: 500,
    });
    const account = (await (await fetch(`${url}/v1/account`, { headers: { authorization: `Bearer ${created.apiKey}` } })).json()) as Record<
      string,
      unknown
    >;
    expect(account).toMatchObject({
      balance: { units: "13000000" },
      discount_bps: 500,
      tier: { min_deposit: { units: "10000000" }, discount_bps: 500 },
    });
    expect(await run("ledger", "verify")).toMatchObject({ ok: true });
    // Books tampered with behind the hub's back: verify exits 1 and names what is wrong.
    const raw = openSqlite(join(dir, "hub.sqlite"));
    await raw.run("UPDATE ledger_accounts SET balance = balance + 1 WHERE id = ?", [`user:${id}`]);
    await raw.close();
    const broken = await exec(["ledger", "verify", "--data-dir", dir]);
    expect(broken.status).toBe(1);
    expect(JSON.parse(broken.stdout)).toMatchObject({
      ok: false,
      problems: [{ check: "balance differs from the sum of its entries", ids: [`user:${id}`] }],
    });
  });
});
