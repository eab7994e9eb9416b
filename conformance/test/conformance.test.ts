import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateIdentity } from "@srp/core";
import { createHub, MemoryAccountStore, SqliteStore, type Hub } from "@srp/hub";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HUB_CHECKS, PROVIDER_CHECKS, runHubSuite, runProviderSuite, toJunit, type Report } from "../src/index.js";
import { startLaxHub } from "./fixtures/lax-hub.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const KEY = "srp_conformance_test_key";
/**
 * SHOULD-level findings against @srp/hub that are known and reported: the hub leaves
 * `stream_options.include_usage` to the node instead of setting it in streamed jobs
 * (SRP-JOB-002). A warning does not fail a run; a fix turns it into a pass.
 */
const KNOWN_HUB_WARNINGS = new Set(["hub.job.include_usage:warning"]);
const fixture = (name: string) => join(root, "conformance/test/fixtures", name);
/** The x402 checks: skipped against a hub that takes no x402 payments (hub-x402.test.ts runs them). */
const X402_CHECKS = new Set(HUB_CHECKS.map((c) => c.id).filter((id) => id.startsWith("hub.x402.") || id === "hub.security.payment_limit"));
/** Checks of wallet sign-in: skipped against a hub without the srp.wallet surface (security-faults.test.ts runs them). */
const WALLET_CHECKS = new Set(["hub.wallet.sign_in", "hub.security.nonce_limit"]);
/**
 * Checks of what a hub without a ledger does not do: list batches (run against a billing hub
 * below) and send statements (hub.statement.content: receipts-faults.test.ts runs it against
 * a SQLite hub that sends them often). Skipped there.
 */
const LEDGER_CHECKS = new Set(["hub.consumer.batch", "hub.consumer.insufficient_credits", "hub.statement.content"]);
const CONSUMER_CHECKS = new Set(HUB_CHECKS.map((c) => c.id).filter((id) => id.startsWith("hub.consumer.")));
/** Checks of API keys' spending controls: skipped against a hub without a key store (keys-faults.test.ts runs them against a billing hub). */
const KEYS_CHECKS = new Set(HUB_CHECKS.map((c) => c.id).filter((id) => id.startsWith("hub.keys.")));
/** Checks that wait for a hub timer: skipped when the hub's timer is too long to wait for (the 15 s heartbeat interval: 45 s; the 15 s park before a probe), run against a hub with short timers below. */
const TIMER_CHECKS = new Set(["hub.session.heartbeat_timeout", "hub.probe.rules"]);
/**
 * The handshake time limit of the hubs that run the whole suite: shorter than the spec's
 * 10 s upper bound so that hub.handshake.timeout does not wait 10 s, long enough for every
 * other check to send its auth.
 */
const HANDSHAKE_TIMEOUT_MS = 3000;

function statuses(report: Report): Record<string, string> {
  return Object.fromEntries(report.results.map((r) => [r.id, r.status]));
}

describe("consumer surface checks against a billing @srp/hub (SQLite ledger)", () => {
  it("passes every hub.consumer check, batches included", async () => {
    const store = new SqliteStore(":memory:", { signupCredits: 10_000_000n });
    const account = await store.createAccount({ name: "conformance" });
    const { key } = await store.createApiKey(account.id);
    const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store });
    const { url } = await hub.listen({ port: 0 });
    try {
      const report = await runHubSuite({ url, accountKey: key, only: CONSUMER_CHECKS });
      expect(report.results.map((r) => [r.id, r.status, r.details ?? ""])).toEqual([...CONSUMER_CHECKS].map((id) => [id, "pass", ""]));
      expect(await store.verify()).toEqual([]);
    } finally {
      await hub.close();
      store.close();
    }
  }, 60_000);
});

describe("hub mode against @srp/hub", () => {
  let hub: Hub;
  let url: string;
  beforeAll(async () => {
    const accounts = new MemoryAccountStore();
    accounts.add({ id: "acct_conformance", apiKeys: [KEY] });
    hub = createHub({ identity: generateIdentity(), accounts, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS });
    ({ url } = await hub.listen({ port: 0 }));
  });
  afterAll(() => hub.close());

  it("passes every check", async () => {
    const report = await runHubSuite({ url, accountKey: KEY });
    expect(report.results.map((r) => r.id)).toEqual(HUB_CHECKS.map((c) => c.id));
    expect(
      report.results.filter(
        (r) =>
          r.status !== "pass" &&
          !KNOWN_HUB_WARNINGS.has(`${r.id}:${r.status}`) &&
          !X402_CHECKS.has(r.id) &&
          !LEDGER_CHECKS.has(r.id) &&
          !TIMER_CHECKS.has(r.id) &&
          !WALLET_CHECKS.has(r.id) &&
          !KEYS_CHECKS.has(r.id),
      ),
    ).toEqual([]);
    expect(report.results.filter((r) => WALLET_CHECKS.has(r.id)).map((r) => r.status)).toEqual([...WALLET_CHECKS].map(() => "skipped"));
    expect(report.results.filter((r) => LEDGER_CHECKS.has(r.id)).map((r) => r.status)).toEqual([...LEDGER_CHECKS].map(() => "skipped"));
    expect(report.results.filter((r) => KEYS_CHECKS.has(r.id)).map((r) => r.status)).toEqual([...KEYS_CHECKS].map(() => "skipped"));
    expect(report.results.filter((r) => TIMER_CHECKS.has(r.id)).map((r) => [r.status, r.details])).toEqual(
      [...TIMER_CHECKS].map(() => ["skipped", expect.stringMatching(/heartbeatIntervalMs is 15000|no probe within 4 s/)]),
    );
    // This hub takes no x402 payments: those checks are skipped, saying why.
    expect(report.results.filter((r) => X402_CHECKS.has(r.id)).map((r) => r.status)).toEqual([...X402_CHECKS].map(() => "skipped"));
    expect(report.ok).toBe(true);
  }, 60_000);

  it("skips the checks that need an account when no key is given, and still runs the rest", async () => {
    const report = await runHubSuite({ url, only: new Set(["hub.handshake.ok", "hub.auth.unknown_account", "hub.job.stream_relay"]) });
    expect(statuses(report)).toEqual({
      "hub.handshake.ok": "skipped",
      "hub.auth.unknown_account": "pass",
      "hub.job.stream_relay": "skipped",
    });
  });

  it("an expected failure that passes fails the run, so the file cannot go stale", async () => {
    const report = await runHubSuite({
      url,
      accountKey: KEY,
      only: new Set(["hub.discovery"]),
      expectedFailures: new Set(["hub.discovery"]),
    });
    expect(report.results[0]).toMatchObject({ status: "fail", details: expect.stringMatching(/remove it/) });
    expect(report.summary.unexpectedPasses).toBe(1);
    expect(report.ok).toBe(false);
  });
});

describe("timer checks against @srp/hub with short timers", () => {
  it("closes a silent connection with protocol.handshake_timeout and a silent session with protocol.heartbeat_timeout", async () => {
    const accounts = new MemoryAccountStore();
    accounts.add({ id: "acct_conformance", apiKeys: [KEY] });
    const hub = createHub({
      identity: generateIdentity(),
      accounts,
      handshakeTimeoutMs: 1000,
      heartbeatIntervalMs: 1000,
      routingConfig: { parkMs: 500 },
      probeTimeoutMs: 1000,
    });
    const { url } = await hub.listen({ port: 0 });
    try {
      const report = await runHubSuite({ url, accountKey: KEY, only: new Set(["hub.handshake.timeout", ...TIMER_CHECKS]) });
      expect(report.results.map((r) => [r.id, r.status, r.details ?? ""])).toEqual(
        ["hub.handshake.timeout", ...TIMER_CHECKS].map((id) => [id, "pass", ""]),
      );
    } finally {
      await hub.close();
    }
  });
});

describe("hub mode against a hub that skips signature and timestamp checks", () => {
  it("fails exactly the checks that catch it; listing them as expected failures makes the run pass", async () => {
    const { url, server } = await startLaxHub(KEY);
    try {
      const report = await runHubSuite({
        url,
        accountKey: KEY,
        only: new Set(["hub.handshake.ok", "hub.auth.bad_signature", "hub.auth.stale_timestamp", "hub.auth.unknown_account"]),
      });
      expect(statuses(report)).toEqual({
        "hub.handshake.ok": "pass",
        "hub.auth.bad_signature": "fail",
        "hub.auth.stale_timestamp": "fail",
        "hub.auth.unknown_account": "pass",
      });
      expect(report.results.find((r) => r.id === "hub.auth.bad_signature")?.details).toMatch(/no error message \(got welcome\)/);
      const xfail = await runHubSuite({
        url,
        accountKey: KEY,
        only: new Set(["hub.auth.bad_signature"]),
        expectedFailures: new Set(["hub.auth.bad_signature"]),
      });
      expect(xfail.ok).toBe(true);
      expect(xfail.results[0]?.status).toBe("xfail");
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }, 60_000);
});

describe("hub mode against a hub that accepts the subscription tier", () => {
  it("fails hub.offer.ack and nothing else among the offer and job checks", async () => {
    const accounts = new MemoryAccountStore();
    accounts.add({ id: "acct_conformance", apiKeys: [KEY] });
    const hub = createHub({ identity: generateIdentity(), accounts, refusedTiers: [] });
    const { url } = await hub.listen({ port: 0 });
    try {
      const only = new Set(HUB_CHECKS.map((c) => c.id).filter((id) => /^hub\.(offer|job)\./.test(id)));
      const report = await runHubSuite({ url, accountKey: KEY, only });
      const failed = report.results.filter((r) => r.status === "fail");
      expect(failed.map((r) => r.id)).toEqual(["hub.offer.ack"]);
      expect(failed[0]?.details).toMatch(/subscription-tier instance .* was accepted/);
      expect(
        report.results.filter((r) => r.status !== "pass" && r.status !== "fail" && !KNOWN_HUB_WARNINGS.has(`${r.id}:${r.status}`)),
      ).toEqual([]);
    } finally {
      await hub.close();
    }
  }, 60_000);
});

describe("provider mode", () => {
  // Our provider node (built) serving the model simulator in its process.
  const provider = `SRP_ACCOUNT_KEY=srp_any_key_123 node ${fixture("sim-provider.mjs")}`;
  const faulty = (fault: string) => `SRP_ACCOUNT_KEY=srp_any_key_123 node ${fixture("faulty-provider.mjs")} ${fault}`;
  const JOB_CHECKS = [
    "provider.offer",
    "provider.job.stream",
    "provider.job.nonstream",
    "provider.job.cancel",
    "provider.receipt.countersign",
  ];

  it("our provider passes every check", async () => {
    const report = await runProviderSuite({ command: provider });
    expect(report.results.map((r) => r.id)).toEqual(PROVIDER_CHECKS.map((c) => c.id));
    expect(report.results.filter((r) => r.status !== "pass")).toEqual([]);
    // Every provider check in one run, the async jobs' (videos, runs, resume) included: about 100 s on a loaded 2-core machine.
  }, 300_000);

  it("a node on a backend too fast for a 1.5 s deadline is still given a job it cannot finish, and passes provider.job.deadline", async () => {
    const report = await runProviderSuite({ command: `SRP_SIM_TPS=0 ${provider}`, only: new Set(["provider.job.deadline"]) });
    expect(statuses(report)).toEqual({ "provider.job.deadline": "pass" });
    // The simulator at full speed finishes the first job in time; the harness then shortened the deadline itself.
    expect(report.results[0]?.details).toMatch(
      /^ended with job\.deadline_exceeded after the node finished \d+ ms with a deadline 1500 ms ahead/,
    );
  }, 60_000);

  it("a provider that sends a streamed job's chunks out of order fails provider.job.stream only", async () => {
    const report = await runProviderSuite({ command: faulty("swapped_seq"), only: new Set(JOB_CHECKS) });
    expect(statuses(report)).toEqual({ ...Object.fromEntries(JOB_CHECKS.map((id) => [id, "pass"])), "provider.job.stream": "fail" });
    const details = report.results.find((r) => r.id === "provider.job.stream")?.details;
    expect(details).toMatch(/chunk seqs arrived as 0, 2, 1, 3/);
    expect(details).toMatch(/SRP-JOB-008/);
  }, 90_000);

  it("a provider whose done.response does not match its receipt's responseHash fails provider.job.nonstream only", async () => {
    const report = await runProviderSuite({ command: faulty("response_hash"), only: new Set(JOB_CHECKS) });
    expect(statuses(report)).toEqual({ ...Object.fromEntries(JOB_CHECKS.map((id) => [id, "pass"])), "provider.job.nonstream": "fail" });
    expect(report.results.find((r) => r.id === "provider.job.nonstream")?.details).toMatch(/responseHash .*done\.response \(SRP-ATT-005\)/);
  }, 90_000);

  it("a provider that never disputes fails provider.statement.dispute only", async () => {
    const report = await runProviderSuite({
      command: faulty("no_disputes"),
      only: new Set(["provider.statement.agree", "provider.statement.dispute"]),
    });
    expect(statuses(report)).toEqual({ "provider.statement.agree": "pass", "provider.statement.dispute": "fail" });
    expect(report.results.find((r) => r.id === "provider.statement.dispute")?.details).toMatch(/no dispute within 3 s .* bad_signature/);
  }, 60_000);

  it("a provider that answers the wrong nonce fails the named checks", async () => {
    const report = await runProviderSuite({
      command: `node ${join(root, "conformance/test/fixtures/wrong-nonce-provider.mjs")}`,
      only: new Set(["provider.handshake.ok", "provider.auth.bad_signature"]),
    });
    expect(statuses(report)).toEqual({ "provider.handshake.ok": "fail", "provider.auth.bad_signature": "fail" });
    expect(report.results[0]?.details).toMatch(/does not echo this session's nonce/);
  }, 60_000);
});

describe("the srp-conformance CLI", () => {
  /** Runs a CLI of this repository as a child process; resolves with its exit code and output. */
  const child = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      c.on("close", (code) => resolve({ code, stdout, stderr }));
    });

  it("runs as the implementer's guide says against `srp-hub serve --limit handshakeFailures=1000:10 --limit connections=1000:100`, writes JSON and JUnit reports and exits 0", async () => {
    const hubCli = join(root, "packages/srp-hub/dist/cli.js");
    const data = mkdtempSync(join(tmpdir(), "srp-conf-serve-"));
    const created = await child([hubCli, "accounts", "create", "--name", "conformance", "--data-dir", data]);
    expect(created.code, created.stderr).toBe(0);
    const { apiKey, account } = JSON.parse(created.stdout) as { apiKey: string; account: { id: string } };
    // The suite's requests cost a few dollars at its made-up prices: the guide asks for an account with
    // credit, and without a prepaid discount (the cost checks compare the charge with the receipt's cost).
    const deposited = await child([hubCli, "ledger", "deposit", account.id, "9000000", "--ref", "conformance", "--data-dir", data]);
    expect(deposited.code, deposited.stderr).toBe(0);
    const server = spawn(
      process.execPath,
      [hubCli, "serve", "--port", "0", "--data-dir", data, "--limit", "handshakeFailures=1000:10", "--limit", "connections=1000:100"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const out = mkdtempSync(join(tmpdir(), "srp-conf-cli-"));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        server.stdout.on("data", (d: Buffer) => {
          const m = /listening on (http:\/\/\S+)/.exec(d.toString());
          if (m) resolve(m[1]!);
        });
        server.once("exit", (code) => reject(new Error(`srp-hub serve exited ${code}`)));
      });
      const run = await child([
        join(root, "conformance/dist/cli.js"),
        "hub",
        "--url",
        url,
        "--account-key",
        apiKey,
        "--json",
        join(out, "r.json"),
        "--junit",
        join(out, "r.xml"),
      ]);
      const report = JSON.parse(readFileSync(join(out, "r.json"), "utf8")) as Report;
      expect(report.results.filter((r) => r.status === "fail").map((r) => [r.id, r.details])).toEqual([]);
      expect(run.code).toBe(0);
      expect(report.summary).toMatchObject({ total: HUB_CHECKS.length, fail: 0 });
      // With the per-address limits raised, their checks find no limit within their bounds and say so.
      expect(report.results.find((r) => r.id === "hub.security.failed_handshakes")).toMatchObject({
        status: "skipped",
        details: expect.stringMatching(/refused no upgrade/),
      });
      // A hub with a ledger runs the ledger checks (statements come hourly: that one is skipped).
      expect(
        report.results.filter((r) => r.id === "hub.consumer.batch" || r.id === "hub.consumer.insufficient_credits").map((r) => r.status),
      ).toEqual(["pass", "pass"]);
      // ... and, with its key store, the checks of API keys' spending controls.
      expect(report.results.filter((r) => r.id.startsWith("hub.keys.")).map((r) => r.status)).toEqual(
        HUB_CHECKS.filter((c) => c.id.startsWith("hub.keys.")).map(() => "pass"),
      );
      const junit = readFileSync(join(out, "r.xml"), "utf8");
      expect(junit).toContain(`tests="${HUB_CHECKS.length}" failures="0"`);
      expect(junit.match(/<testcase /g)?.length).toBe(HUB_CHECKS.length);
    } finally {
      server.kill("SIGTERM");
    }
  }, 300_000);
});

describe("reports", () => {
  it("JUnit marks failures, skips and warnings and escapes text", () => {
    const report: Report = {
      suite: "srp-conformance",
      version: "0",
      protocolVersion: 1,
      mode: "hub",
      target: "http://x?a=1&b=<2>",
      startedAt: new Date(0).toISOString(),
      durationMs: 10,
      summary: { pass: 1, fail: 1, warning: 1, skipped: 1, xfail: 0, total: 4, unexpectedPasses: 0 },
      ok: false,
      results: [
        { id: "a", title: "A", requirements: ["SRP-X-001"], level: "MUST", status: "pass", durationMs: 1 },
        { id: "b", title: "B", requirements: ["SRP-X-002"], level: "MUST", status: "fail", durationMs: 1, details: 'got "<welcome>"' },
        { id: "c", title: "C", requirements: [], level: "SHOULD", status: "warning", durationMs: 1, details: "late" },
        { id: "d", title: "D", requirements: [], level: "MUST", status: "skipped", durationMs: 1, details: "needs key" },
      ],
    };
    const xml = toJunit(report);
    expect(xml).toContain('<failure message="got &quot;&lt;welcome&gt;&quot;">');
    expect(xml).toContain('<skipped message="needs key"/>');
    expect(xml).toContain("WARNING (SHOULD)");
    expect(xml).toContain("a=1&amp;b=&lt;2&gt;");
  });

  it("every check id is unique and every cited requirement is defined in spec/v1", () => {
    const ids = [...HUB_CHECKS, ...PROVIDER_CHECKS].map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    const specDir = join(root, "spec/v1");
    const spec = readdirSync(specDir)
      .filter((f) => f.endsWith(".md"))
      .map((f) => readFileSync(join(specDir, f), "utf8"))
      .join("\n");
    const defined = new Set([...spec.matchAll(/\*\*(SRP-[A-Z]+-\d{3})\*\*/g)].map((m) => m[1]));
    const cited = new Set([...HUB_CHECKS, ...PROVIDER_CHECKS].flatMap((c) => c.requirements));
    expect([...cited].filter((r) => !defined.has(r))).toEqual([]);
  });

  it("the implementer's guide names every check in a step (by id, or by a family such as hub.frame.*) and no check that does not exist", () => {
    const guide = readFileSync(join(root, "spec/v1/implementing.md"), "utf8");
    const named = [...guide.matchAll(/`((?:hub|provider)\.[a-z0-9_.]+?)(\.\*)?`/g)]
      .map((m) => ({ id: m[1]!, family: m[2] !== undefined }))
      .filter((n) => !["provider.url", "provider.maxFrameBytes"].includes(n.id)); // discovery members, not checks
    const ids = [...HUB_CHECKS, ...PROVIDER_CHECKS].map((c) => c.id);
    const covers = (n: { id: string; family: boolean }, id: string) => (n.family ? id.startsWith(`${n.id}.`) : id === n.id);
    expect(ids.filter((id) => !named.some((n) => covers(n, id)))).toEqual([]);
    expect(named.filter((n) => !ids.some((id) => covers(n, id))).map((n) => n.id)).toEqual([]);
  });

  it("every MUST check is run against a faulty target that fails it (a fault test names it)", () => {
    const dir = join(root, "conformance/test");
    const tests = readdirSync(dir)
      .filter((f) => f.endsWith(".test.ts"))
      .map((f) => readFileSync(join(dir, f), "utf8"))
      .join("\n");
    // This file's own fault tests name the failing checks in statuses(...) maps.
    const musts = [...HUB_CHECKS, ...PROVIDER_CHECKS].filter((c) => c.level === "MUST").map((c) => c.id);
    expect(musts.filter((id) => !tests.includes(`"${id}"`))).toEqual([]);
  });

  it("schema.json is valid JSON Schema 2020-12", () => {
    const ajv = new Ajv2020({ strict: false });
    expect(() => ajv.compile(JSON.parse(readFileSync(join(root, "spec/v1/schema.json"), "utf8")))).not.toThrow();
  });
});
