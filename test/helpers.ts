/** Shared set-up for integration tests: a hub, simulators and providers on loopback. */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { generateIdentity, type Identity } from "@srp/core";
import { createHub, MemoryAccountStore, type Hub, type HubOptions } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type InstanceConfig, type Provider } from "@srp/provider";
import { startSimulator, type Simulator, type SimulatorOptions } from "@srp/provider/simulator";

export const KEY = "srp_test_consumer_key_000001";
export const MODEL = "sim-llama-3-8b";

export interface Net {
  hub: Hub;
  url: string;
  identity: Identity;
  accounts: MemoryAccountStore;
  sims: Simulator[];
  providers: Provider[];
  children: ChildProcess[];
  addProvider(sim: Simulator, instance?: Partial<InstanceConfig>): Promise<Provider>;
  addChildProvider(sim: Simulator, price?: { input: string; output: string }): Promise<ChildProcess & { jobs: string[] }>;
  sim(options?: SimulatorOptions): Promise<Simulator>;
  close(): Promise<void>;
}

export async function startNet(options: Partial<HubOptions> & { port?: number } = {}): Promise<Net> {
  const accounts = new MemoryAccountStore();
  accounts.add({ id: "acct_test", apiKeys: [KEY] });
  const identity = options.identity ?? generateIdentity();
  const hub = createHub({ identity, accounts, reconnectAfterMs: 100, drainTimeoutMs: 2000, ...options });
  const { url } = await hub.listen({ port: options.port ?? 0 });
  const net: Net = {
    hub,
    url,
    identity,
    accounts,
    sims: [],
    providers: [],
    children: [],
    async sim(o = {}) {
      const s = await startSimulator(o);
      net.sims.push(s);
      return s;
    },
    async addProvider(sim, instance = {}) {
      const p = createProvider({
        hub: url,
        identity: generateIdentity(),
        account: KEY,
        reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
        instances: [
          {
            backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }),
            model: MODEL,
            price: { input: "100000", output: "300000" },
            ...instance,
          },
        ],
      });
      net.providers.push(p);
      await p.ready();
      return p;
    },
    async addChildProvider(sim, price = { input: "100000", output: "300000" }) {
      const child = spawn(
        process.execPath,
        [new URL("./fixtures/provider-child.mjs", import.meta.url).pathname, url, KEY, sim.baseUrl, MODEL, price.input, price.output],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      ) as ChildProcess & { jobs: string[] };
      child.jobs = [];
      net.children.push(child);
      await new Promise<void>((resolve, reject) => {
        const rl = createInterface({ input: child.stdout! });
        rl.on("line", (line) => {
          const m = JSON.parse(line) as { event: string; jobId?: string };
          if (m.event === "ready") resolve();
          if (m.event === "job.start") child.jobs.push(m.jobId!);
        });
        child.once("exit", (code) => reject(new Error(`provider child exited with ${code}`)));
      });
      return child;
    },
    async close() {
      for (const c of net.children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      await Promise.all(net.providers.map((p) => p.close()));
      await hub.close();
      await Promise.all(net.sims.map((s) => s.close()));
    },
  };
  return net;
}

/** Polls until `check` returns true or `ms` pass. */
export async function until(check: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What a CLI run printed and how it ended. */
export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built `srp-provider` CLI as a child process without blocking this one (the hub
 * and the simulators live here), with `SRP_ACCOUNT_KEY` set to {@link KEY} unless the
 * arguments give `--account-key`.
 */
export function runProviderCli(...args: string[]): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, SRP_ACCOUNT_KEY: KEY };
  if (args.includes("--account-key")) delete env.SRP_ACCOUNT_KEY;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [new URL("../packages/srp-provider/dist/cli.js", import.meta.url).pathname, ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}
