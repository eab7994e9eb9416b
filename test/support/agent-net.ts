/**
 * A billed hub for agent clients (the Codex CLI, the OpenAI Agents SDK): a hub on a real
 * SQLite ledger with a funded consumer account, one provider node serving the model
 * simulator, and a recording loopback proxy in front of the hub, so a test can read
 * exactly what the client was shown (each answer's `usage`, with SRP's `cost_units` and
 * `receipt_id`) and compare it with the ledger.
 */
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { generateIdentity } from "@srp/core";
import { createHub, SqliteStore, type Hub } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator, type SimulatorOptions } from "@srp/provider/simulator";

/** The model the node offers. */
export const AGENT_MODEL = "sim-llama-3-8b";
/** $1 per 1M input tokens, $3 per 1M output tokens. */
export const AGENT_PRICE = { input: "1000000", output: "3000000" };
/** What the consumer account starts with: $50, enough to reserve a 200k-token context. */
export const AGENT_CREDITS = 50_000_000n;

/** One request through the recording proxy and the hub's whole answer. */
export interface Exchange {
  method: string;
  path: string;
  status: number;
  contentType: string;
  request: string;
  response: string;
}

/** What a client was shown of one answer: the usage it carried. */
export interface ShownUsage {
  input_tokens: number;
  output_tokens: number;
  cost_units: string;
  receipt_id: string | null;
  measured: boolean;
}

/** A running billed hub with its node, simulator and recording proxy. */
export interface AgentNet {
  hub: Hub;
  store: SqliteStore;
  sim: Simulator;
  provider: Provider;
  /** The proxy's base URL (`http://127.0.0.1:PORT`): point clients here. */
  url: string;
  /** The consumer account and its API key. */
  consumer: { id: string; key: string };
  /** Every request that went through the proxy, in order. */
  exchanges: Exchange[];
  close(): Promise<void>;
}

/** Starts the billed hub, a node on the simulator (with `sim` options) and the proxy. */
export async function startAgentNet(sim: SimulatorOptions = {}): Promise<AgentNet> {
  const store = new SqliteStore(":memory:", { signupCredits: AGENT_CREDITS });
  const hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, drainTimeoutMs: 2000, reconnectAfterMs: 100 });
  const { url: hubUrl } = await hub.listen({ port: 0 });
  const simulator = await startSimulator({ models: [{ id: AGENT_MODEL, contextLength: 200_000 }], defaultMaxTokens: 64, ...sim });
  const providerAccount = await store.createAccount({ name: "provider" });
  const { key: providerKey } = await store.createApiKey(providerAccount.id);
  const provider = createProvider({
    hub: hubUrl,
    identity: generateIdentity(),
    account: providerKey,
    reconnect: false,
    instances: [
      {
        backend: openAICompatibleBackend({ baseUrl: simulator.baseUrl }),
        model: AGENT_MODEL,
        price: AGENT_PRICE,
        contextLength: 200_000,
        capabilities: ["chat", "stream", "tools"],
      },
    ],
  });
  await provider.ready();
  const account = await store.createAccount({ name: "consumer" });
  const { key } = await store.createApiKey(account.id);
  const exchanges: Exchange[] = [];
  const proxy = await startRecordingProxy(hubUrl, exchanges);
  return {
    hub,
    store,
    sim: simulator,
    provider,
    url: proxy.url,
    consumer: { id: account.id, key },
    exchanges,
    async close() {
      await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
      proxy.server.closeAllConnections();
      await provider.close();
      await hub.close();
      await simulator.close();
      await store.close();
    },
  };
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => resolve(Buffer.concat(chunks)));
    stream.once("error", reject);
  });
}

/** A loopback proxy that forwards every request to `target` and records both bodies. */
async function startRecordingProxy(target: string, exchanges: Exchange[]): Promise<{ server: Server; url: string }> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    void readAll(req).then((body) => {
      const headers = { ...req.headers, host: upstream.host };
      const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        const chunks: Buffer[] = [];
        answer.on("data", (c: Buffer) => {
          chunks.push(c);
          res.write(c);
        });
        answer.once("end", () => {
          res.end();
          exchanges.push({
            method: req.method ?? "",
            path: req.url ?? "",
            status: answer.statusCode ?? 0,
            contentType: String(answer.headers["content-type"] ?? ""),
            request: body.toString("utf8"),
            response: Buffer.concat(chunks).toString("utf8"),
          });
        });
      });
      out.once("error", () => res.destroy());
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** The data objects of a server-sent event stream, in order. */
export function sseEvents(text: string): { event?: string; data: Record<string, unknown> }[] {
  const out: { event?: string; data: Record<string, unknown> }[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length === 0 || data.join("\n") === "[DONE]") continue;
    out.push({ ...(event === undefined ? {} : { event }), data: JSON.parse(data.join("\n")) as Record<string, unknown> });
  }
  return out;
}

/**
 * The usage a Responses answer showed its client: the `response.completed` event's
 * `response.usage` of a stream, or the `usage` of a whole Response object.
 */
export function shownUsage(x: Exchange): ShownUsage | undefined {
  if (x.contentType.includes("text/event-stream")) {
    const done = sseEvents(x.response).find((e) => e.data.type === "response.completed");
    return (done?.data.response as { usage?: ShownUsage } | undefined)?.usage;
  }
  return (JSON.parse(x.response) as { usage?: ShownUsage }).usage;
}
