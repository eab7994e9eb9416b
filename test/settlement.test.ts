/**
 * Settlement over real sockets: the hub issues signed statements of each node's
 * receipts and earnings; the node verifies them against its own receipts, agrees or
 * disputes, and keeps them; the hub records disputes without closing the session.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import OpenAI from "openai";
import { generateIdentity, parseAmount, verifyStatement } from "@srp/core";
import type { Statement } from "@srp/core/schema";
import { createHub, SqliteStore, type Hub } from "@srp/hub";
import { openSqlite } from "@srp/hub/storage";
import { createProvider, MemoryReceiptStore, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator } from "@srp/provider/simulator";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function network() {
  const dir = mkdtempSync(join(tmpdir(), "srp-settle-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "hub.sqlite");
  const store = new SqliteStore(path);
  cleanups.push(() => store.close());
  const consumer = await store.createAccount({ id: "acct_consumer" });
  const { key } = await store.createApiKey(consumer.id);
  const owner = await store.createAccount({ id: "acct_owner" });
  const { key: ownerKey } = await store.createApiKey(owner.id);
  const hub: Hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, statementIntervalMs: 0 });
  const { url } = await hub.listen({ port: 0 });
  const sim = await startSimulator();
  const receipts = new MemoryReceiptStore();
  const provider: Provider = createProvider({
    hub: url,
    identity: generateIdentity(),
    account: ownerKey,
    receipts,
    reconnect: false,
    instances: [
      { backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: "sim-llama-3-8b", price: { input: "100000", output: "300000" } },
    ],
  });
  cleanups.push(async () => {
    await provider.close();
    await hub.close();
    await sim.close();
  });
  await provider.ready();
  const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
  return { store, path, hub, provider, receipts, openai, owner: owner.id };
}

const nextStatement = (provider: Provider) =>
  new Promise<{ statement: Statement; agreed: boolean; problem?: string }>((resolve) => provider.once("statement", resolve));

describe("statements", () => {
  it("cover exactly the receipts since the last statement, and the node agrees", async () => {
    const net = await network();
    for (let i = 0; i < 3; i++)
      await net.openai.chat.completions.create({
        model: "sim-llama-3-8b",
        messages: [{ role: "user", content: `hello ${i}` }],
        max_tokens: 8,
      });
    // The countersigned copies reach the node after the answers.
    await vi.waitFor(() => expect(net.receipts.receipts).toHaveLength(3));

    const received = nextStatement(net.provider);
    const [issued] = await net.hub.issueStatements();
    const { statement, agreed, problem } = await received;
    expect(problem).toBeUndefined();
    expect(agreed).toBe(true);
    expect(statement).toEqual(issued);
    expect(verifyStatement(statement)).toBe(true);
    expect(statement.nodeId).toBe(net.provider.nodeId);
    expect(statement.accountId).toBe(net.owner);
    expect(statement.receipts).toEqual({ count: 3, firstSeq: 1, lastSeq: 3 });
    // earned = sum over receipts of floor(cost * 0.9) (SRP-SET-006)
    const earned = net.receipts.receipts.reduce((s, r) => s + (parseAmount(r.cost) * 9000n) / 10000n, 0n);
    expect(statement.earned).toBe(earned.toString());
    expect(statement.balance).toBe(earned.toString());
    expect((await net.store.summary(net.owner)).earned).toBe(earned);
    expect(net.provider.stats().earnings.statement).toMatchObject({
      statementId: statement.statementId,
      earned: earned.toString(),
      agreed: true,
    });

    // Nothing new: no statement unless forced; a forced one carries the balance over and covers nothing.
    expect(await net.hub.issueStatements()).toEqual([]);
    const again = nextStatement(net.provider);
    const [empty] = await net.hub.issueStatements(true);
    expect((await again).agreed).toBe(true);
    expect(empty!.receipts).toEqual({ count: 0, firstSeq: 0, lastSeq: 3 });
    expect(empty!.earned).toBe("0");
    expect(empty!.balance).toBe(earned.toString());
    expect(empty!.period.from).toBe(statement.period.to);

    // The next statement covers only the new receipt.
    await net.openai.chat.completions.create({ model: "sim-llama-3-8b", messages: [{ role: "user", content: "one more" }], max_tokens: 8 });
    await vi.waitFor(() => expect(net.receipts.receipts).toHaveLength(4));
    const third = nextStatement(net.provider);
    await net.hub.issueStatements();
    const s3 = (await third).statement;
    expect(s3.receipts).toEqual({ count: 1, firstSeq: 4, lastSeq: 4 });
    expect(BigInt(s3.balance)).toBe(earned + BigInt(s3.earned));
    const all = await net.store.statements.statementsOf(net.provider.nodeId);
    expect(all).toHaveLength(3);
    // The newest two, still oldest first (what the dashboard reads, bounded in SQL).
    expect(await net.store.statements.statementsOf(net.provider.nodeId, 2)).toEqual(all.slice(1));
    expect(await net.store.verify()).toEqual([]);
  });

  it("a node disputes totals that differ from its receipts; the hub records it and keeps the session", async () => {
    const net = await network();
    await net.openai.chat.completions.create({ model: "sim-llama-3-8b", messages: [{ role: "user", content: "hi" }], max_tokens: 8 });
    await vi.waitFor(() => expect(net.receipts.receipts).toHaveLength(1));
    // Corrupt the hub's recorded totals behind its back (what a buggy or dishonest hub would state).
    const raw = openSqlite(net.path);
    await raw.run("UPDATE node_positions SET totals = ? WHERE node_id = ?", [
      JSON.stringify({ receipts: 1, promptTokens: 1, completionTokens: 1, cost: "999" }),
      net.provider.nodeId,
    ]);
    await raw.close();
    const disputed = new Promise<{ nodeId: string; dispute: { kind: string; statementId?: string } }>((resolve) =>
      net.hub.once("dispute", resolve),
    );
    const warning = new Promise<{ code: string }>((resolve) => net.provider.once("warning", resolve));
    const received = nextStatement(net.provider);
    await net.hub.issueStatements();
    const { agreed, statement } = await received;
    expect(agreed).toBe(false);
    expect((await warning).code).toBe("statement.totals_mismatch");
    const d = await disputed;
    expect(d.nodeId).toBe(net.provider.nodeId);
    expect(d.dispute.kind).toBe("totals_mismatch");
    expect(d.dispute.statementId).toBe(statement.statementId);
    await vi.waitFor(async () => expect(await net.store.disputes()).toHaveLength(1));
    // The session goes on: the node still serves.
    const r = await net.openai.chat.completions.create({
      model: "sim-llama-3-8b",
      messages: [{ role: "user", content: "still there?" }],
      max_tokens: 8,
    });
    expect(r.choices[0]?.message.content).toMatch(/\w/);
  });
});
