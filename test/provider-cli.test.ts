/** `srp-provider` as a real child process: setup, start (daemon), status, logs, stop. */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import OpenAI from "openai";
import { KEY, runProviderCli, startNet, until, type Net } from "./helpers.js";

let net: Net | undefined;
let dir: string | undefined;

afterEach(async () => {
  if (dir) await cli("stop", "--dir", dir);
  await net?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  net = undefined;
  dir = undefined;
});

const cli = runProviderCli;

it("sets up a node from a detected Ollama-compatible server, runs it as a daemon and stops it", async () => {
  net = await startNet();
  const sim = await net.sim({ models: [{ id: "llama3.1:8b" }] });
  dir = mkdtempSync(join(tmpdir(), "srp-provider-"));

  const setup = await cli(
    "setup",
    "--hub",
    net.url,
    "--dir",
    dir,
    "--no-detect",
    "--backend-url",
    sim.url,
    "--price-input",
    "200000",
    "--price-output",
    "600000",
  );
  expect(setup.stderr).toBe("");
  expect(setup.status).toBe(0);
  expect(setup.stdout).toMatch(/backend {6}ollama at http:\/\/127\.0\.0\.1:\d+\/v1: llama3\.1:8b \([0-9a-f]{12}\)/);
  expect(setup.stdout).toContain("account      acct_test (bound with a signed handshake)");
  expect(setup.stdout).toMatch(/latency {6}discovery [\d.]+ ms, handshake [\d.]+ ms/);
  const config = JSON.parse(readFileSync(join(dir, "provider.json"), "utf8")) as {
    hubId: string;
    instances: { backend: { kind: string }; digest: string; price: unknown }[];
  };
  expect(config.hubId).toBe(net.hub.id);
  expect(config.instances).toEqual([
    expect.objectContaining({
      backend: expect.objectContaining({ kind: "ollama" }),
      digest: expect.stringMatching(/^[0-9a-f]{64}$/),
      price: { input: "200000", output: "600000" },
    }),
  ]);
  // Offered under its canonical id, the Ollama tag kept for the backend; this server has no
  // /api/show (an Ollama before capabilities), so a one-token probe found that it takes tools.
  expect(config.instances[0]).toMatchObject({
    model: "llama-3.1-8b-instruct",
    upstreamModel: "llama3.1:8b",
    quantization: "Q4_0",
    maxConcurrency: 2,
    capabilities: ["chat", "stream", "tools", "json_mode", "responses", "completions"],
  });
  expect(setup.stdout).toContain("model        llama3.1:8b -> llama-3.1-8b-instruct  Q4_0");
  // The account key is sealed, never written in the clear.
  expect(readFileSync(join(dir, "provider.json"), "utf8")).not.toContain(KEY);
  expect(readFileSync(join(dir, "forwarded-keys.json"), "utf8")).not.toContain(KEY);
  expect(statSync(join(dir, "forwarded-keys.json")).mode & 0o777).toBe(0o600);

  const started = await cli("start", "--dir", dir);
  expect(started.status).toBe(0);
  expect(started.stdout).toMatch(/started in the background \(pid \d+\)/);
  expect((await cli("start", "--dir", dir)).stderr).toMatch(/already runs/);
  await until(() => net!.hub.router.all().length === 1, 10_000, "the daemon to offer its instance");

  const answer = await new OpenAI({ baseURL: `${net.url}/v1`, apiKey: KEY, maxRetries: 0 }).chat.completions.create({
    model: "llama3.1:8b",
    messages: [{ role: "user", content: "hi" }],
  });
  expect(answer.choices[0]!.message.content).toBeTruthy();
  expect(sim.requests.at(-1)).toMatchObject({ model: "llama3.1:8b" });
  // Agents' requests carry tools: the node offers them.
  const tool = await new OpenAI({ baseURL: `${net.url}/v1`, apiKey: KEY, maxRetries: 0 }).chat.completions.create({
    model: "llama-3.1-8b-instruct",
    messages: [{ role: "user", content: "Weather?" }],
    tools: [
      { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } },
    ],
  });
  expect(tool.choices[0]!.message.tool_calls?.[0]).toMatchObject({ type: "function", function: { name: "get_weather" } });

  const deadline = Date.now() + 5000;
  while (!/"served": 2/.test((await cli("status", "--dir", dir)).stdout) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  const status = JSON.parse((await cli("status", "--dir", dir)).stdout) as {
    running: boolean;
    connection: string;
    served: number;
    earnings: { receipts: number; cost: string };
  };
  expect(status).toMatchObject({ running: true, connection: "open", served: 2 });
  // Earnings as the node's own receipts show them: one receipt per job, priced at the node's price.
  expect(status.earnings.receipts).toBe(2);
  expect(status.earnings.cost).toMatch(/^[1-9][0-9]*$/);
  expect((await cli("logs", "--dir", dir, "-n", "200")).stdout).toContain('"event":"job.end"');

  const stopped = await cli("stop", "--dir", dir);
  expect(stopped.stdout).toMatch(/stopped \(pid \d+\)/);
  await until(() => net!.hub.router.all().length === 0, 5000, "the node to leave the hub");
  expect(JSON.parse((await cli("status", "--dir", dir)).stdout)).toMatchObject({ running: false });
});

it("setup fails clearly when nothing serves models and when the account key is wrong", async () => {
  net = await startNet();
  dir = mkdtempSync(join(tmpdir(), "srp-provider-"));
  const none = await cli("setup", "--hub", net.url, "--dir", dir, "--no-detect");
  expect(none.status).toBe(1);
  expect(none.stderr).toContain("found no local model server");
  const sim = await net.sim();
  const wrong = await cli(
    "setup",
    "--hub",
    net.url,
    "--dir",
    dir,
    "--no-detect",
    "--backend-url",
    sim.url,
    "--account-key",
    "srp_wrong_key_1234567890",
  );
  expect(wrong.status).toBe(1);
  expect(wrong.stderr).toContain("auth.unknown_account");
});
