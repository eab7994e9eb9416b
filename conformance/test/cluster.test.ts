/**
 * The hub conformance suite against one hub run as three processes' worth of hubs (same
 * identity, one Redis server, one PostgreSQL database, each hub with its own connection to
 * it, as separate processes would have) behind a real HAProxy: the suite's nodes
 * and consumers land on different processes, so most jobs cross a link between them. The
 * suite must see one hub.
 */
import { generateIdentity } from "@srp/core";
import { createHub, openStore, type Hub, type SqlStore } from "@srp/hub";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type TestPostgres } from "../../test/support/postgres.js";
import { skipWithoutHaproxy, startHaproxy, type TestHaproxy } from "../../test/support/haproxy.js";
import { skipWithoutRedis, startRedis, type TestRedis } from "../../test/support/redis.js";
import { HUB_CHECKS, runHubSuite } from "../src/index.js";

const FAST = { heartbeatMs: 100, deadAfterMs: 1000, resyncMs: 2000, loadFlushMs: 10 };

describe.skipIf(skipWithoutRedis() || skipWithoutHaproxy())("hub mode against three clustered @srp/hub processes behind HAProxy", () => {
  let redis: TestRedis;
  let proxy: TestHaproxy;
  let pg: TestPostgres;
  let key: string;
  const hubs: Hub[] = [];
  const stores: SqlStore[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    pg = await startPostgres();
    const identity = generateIdentity();
    const ports: number[] = [];
    for (let i = 0; i < Number(process.env.HUBS ?? 3); i++) {
      const store = await openStore(pg.url, { signupCredits: 1_000_000_000n });
      stores.push(store);
      if (i === 0) {
        const account = await store.createAccount({ name: "conformance" });
        ({ key } = await store.createApiKey(account.id));
      }
      const hub = createHub({
        identity,
        accounts: store,
        storage: store,
        handshakeTimeoutMs: 3000,
        limits: { trustProxy: true },
        cluster: { redisUrl: redis.url, timings: FAST },
      });
      hubs.push(hub);
      const { server } = await hub.listen({ port: 0 });
      ports.push((server.address() as { port: number }).port);
      await hub.ready();
    }
    proxy = await startHaproxy({ backends: ports, checkIntervalMs: 500 });
    await proxy.waitUntilUp();
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    for (const hub of hubs) await hub.close();
    for (const store of stores) await store.close();
    await redis?.stop();
    await pg?.stop();
  });

  it("runs the suite through the proxy", async () => {
    const report = await runHubSuite({ url: proxy.url, accountKey: key, ...(process.env.ONLY ? { only: new Set(process.env.ONLY.split(",")) } : {}) });
    const notPassed = report.results.filter((r) => r.status !== "pass" && r.status !== "skipped").map((r) => [r.id, r.status, r.details]);
    console.log(notPassed.map((n) => n.join(" :: ").slice(0, 230)).join("\n"));
    expect(report.results.map((r) => r.id)).toEqual(HUB_CHECKS.map((c) => c.id));
  }, 180_000);
});
