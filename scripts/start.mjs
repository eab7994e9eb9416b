// `npm start`: a working local SRP network on embedded defaults: a hub on
// http://127.0.0.1:8787 (PORT to change it) with a development account, and one provider
// node that dials out to it. State lives in .srp-data/. Stop with Ctrl-C.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadOrCreateIdentity } from "../packages/srp-core/dist/node.js";
import { createHub, generateApiKey, MemoryAccountStore } from "../packages/srp-hub/dist/index.js";
import { connectToHub } from "../packages/srp-provider/dist/index.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const data = join(root, ".srp-data");
mkdirSync(data, { recursive: true, mode: 0o700 });
const keyFile = join(data, "dev-account.key");
if (!existsSync(keyFile)) writeFileSync(keyFile, `${generateApiKey()}\n`, { mode: 0o600 });
const apiKey = readFileSync(keyFile, "utf8").trim();

const accounts = new MemoryAccountStore();
accounts.add({ id: "acct_dev", apiKeys: [apiKey] });
const hub = createHub({ identity: loadOrCreateIdentity(join(data, "hub", "hub.key")).identity, accounts });
hub.on("session.open", (s) => console.log(`hub: node ${s.nodeId.slice(0, 12)}… connected (session ${s.sessionId}, account ${s.accountId})`));
hub.on("session.close", (s) => console.log(`hub: node ${s.nodeId.slice(0, 12)}… disconnected (${s.code} ${s.reason})`));
hub.on("handshake.rejected", (d) => console.log(`hub: handshake rejected: ${d.code}`));
const { url } = await hub.listen({ port: Number(process.env.PORT ?? 8787), host: process.env.HOST ?? "127.0.0.1" });

const node = connectToHub({
  hub: url,
  identity: loadOrCreateIdentity(join(data, "provider", "node.key")).identity,
  account: { kind: "api_key", key: apiKey },
  expectedHubId: hub.id,
  agent: "srp-provider/0.1.0 (npm start)",
});
node.on("welcome", (w) => console.log(`provider: session open, heartbeat every ${w.heartbeatIntervalMs / 1000} s`));
node.on("disconnected", (d) => console.log(`provider: disconnected (${d.code}), retry in ${d.retryInMs ?? "-"} ms`));
await node.ready();

console.log(`
SRP local network is up.
  hub          ${url}   (id ${hub.id})
  discovery    ${url}/.well-known/srp.json
  dev account  acct_dev, API key in .srp-data/dev-account.key
  test it      npx srp-conformance hub --url ${url} --account-key "$(cat .srp-data/dev-account.key)"
Ctrl-C stops it.`);

const stop = async () => {
  await node.close();
  await hub.close();
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
