// `npm start`: a working local SRP network on embedded defaults.
//  - a hub on http://127.0.0.1:8787 (PORT / HOST to change), state in .srp-data/hub (SQLite)
//  - a demo account whose API key is kept in .srp-data/dev-account.key
//  - one provider node that dials out to the hub and serves a real local model server
//    (Ollama, LM Studio, vLLM, llama.cpp) if one is running, offering each model with
//    the capabilities its server reports (the same detection as `srp-provider setup`),
//    else the SRP model simulator (deterministic filler text, clearly labelled: not a
//    model) for chat with tools and vision, embeddings, images, speech and transcription
// It streams one answer to the terminal, asks one by the Anthropic Messages API, prints a
// curl, an OpenAI SDK and an Anthropic SDK snippet, and serves until Ctrl-C.
// With `--chain` (`npm start -- --chain`, or SRP_CHAIN=1) it also starts an in-process EVM
// (ganache, JSON-RPC on 127.0.0.1:8545) with the test USDC and the settlement contract
// deployed, takes x402 payments, pays one request with the official x402 client, and pays
// the provider out on-chain (90 % to it, 10 % to the protocol).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadOrCreateIdentity } from "../packages/srp-core/dist/node.js";
import { formatUsdc } from "../packages/srp-core/dist/index.js";
import { createHub, directSettler, OnchainPayouts, SqliteStore } from "../packages/srp-hub/dist/index.js";
import {
  cogBackend,
  createProvider,
  FileReceiptStore,
  openAICompatibleBackend,
  videosBackend,
} from "../packages/srp-provider/dist/index.js";
import { describeInstance, detectBackends, planInstances } from "../packages/srp-provider/dist/setup.js";
import { startSimulator } from "../packages/srp-provider/dist/simulator.js";
import { createClient } from "../packages/srp-client/dist/index.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const data = process.env.SRP_DATA_DIR ?? join(root, ".srp-data");
mkdirSync(data, { recursive: true, mode: 0o700 });

const withChain = process.argv.includes("--chain") || process.env.npm_config_chain === "true" || process.env.SRP_CHAIN === "1";
// The local chain lives in this process only, so its ledger starts afresh with it.
let chain;
if (withChain) {
  const { startChain } = await import("./local-chain.mjs");
  // accounts[5], the treasury, gets a float of test USDC too, so it can pay out earnings bought with signup credits.
  chain = await startChain({ serve: true, port: Number(process.env.CHAIN_PORT ?? 8545), mintTo: 6 });
  rmSync(join(data, "chain"), { recursive: true, force: true });
  mkdirSync(join(data, "chain"), { recursive: true, mode: 0o700 });
  console.log(
    `chain     ganache (chain id ${chain.chainId}) on ${chain.rpcUrl}: test USDC ${chain.usdc.address}, settlement ${chain.settlement}`,
  );
}

// Hub with its SQLite store and a demo account.
const store = new SqliteStore(withChain ? join(data, "chain", "hub.sqlite") : join(data, "hub", "hub.sqlite"));
const DEMO = "acct_demo";
if (!(await store.getAccount(DEMO))) await store.createAccount({ id: DEMO, name: "npm start demo" });
const keyFile = join(data, "dev-account.key");
let apiKey = existsSync(keyFile) ? readFileSync(keyFile, "utf8").trim() : "";
if (!apiKey || !(await store.findByApiKey(apiKey))) {
  apiKey = (await store.createApiKey(DEMO, "npm start")).key;
  writeFileSync(keyFile, `${apiKey}\n`, { mode: 0o600 });
}
const onchain = chain && {
  treasuryAccount: chain.accounts[5],
  payouts: new OnchainPayouts({
    publicClient: chain.publicClient,
    treasury: chain.walletFor(chain.accounts[5]),
    signer: chain.hubSigner,
    settlement: chain.settlement,
    token: chain.usdc.address,
    chainId: chain.chainId,
    book: store.payouts,
    payee: (id) => store.wallets.payoutWallet(id),
  }),
};
if (chain) await store.addWallet(DEMO, chain.accounts[6].address); // the demo account's own wallet: its payouts go there
const hub = createHub({
  identity: loadOrCreateIdentity(join(data, "hub", "hub.key")).identity,
  accounts: store,
  storage: store,
  admin: store,
  ...(chain
    ? {
        onchainPayouts: onchain.payouts,
        x402: {
          chainId: chain.chainId,
          asset: { address: chain.usdc.address, name: chain.usdc.name, version: chain.usdc.version },
          payTo: onchain.treasuryAccount.address,
          settler: directSettler({ publicClient: chain.publicClient, walletClient: chain.walletFor(chain.hubSigner) }),
          treasury: chain.walletFor(onchain.treasuryAccount),
        },
      }
    : {}),
});
hub.on("session.open", (s) => console.log(`hub       node ${s.nodeId.slice(0, 12)}… connected (account ${s.accountId})`));
hub.on("session.close", (s) => console.log(`hub       node ${s.nodeId.slice(0, 12)}… disconnected (${s.code})`));
hub.on("breaker", (c) => console.log(`hub       instance ${c.key} ${c.status}${c.lastForModel ? " (the last one for its model)" : ""}`));
const { url } = await hub.listen({ port: Number(process.env.PORT ?? 8787), host: process.env.HOST ?? "127.0.0.1" });

// A provider: a real local model server if one runs here, else the simulator.
const PRICE = { input: "100000", output: "300000" };
// SRP_BACKEND_URL (comma-separated) names model servers on other ports, beside the well-known ones.
const extraUrls = (process.env.SRP_BACKEND_URL ?? "").split(",").filter(Boolean);
const found = process.env.SRP_SIMULATOR === "1" ? [] : (await detectBackends(extraUrls, 800)).filter((b) => b.models.length > 0);
let simulator;
let instances = [];
if (found.length > 0) {
  // What `srp-provider setup` would offer: canonical ids, the server's own names upstream, detected capabilities.
  const backends = new Map();
  for (const b of found) {
    console.log(`provider  found ${b.kind} at ${b.baseUrl} with ${b.models.length} model(s)`);
    for (const i of planInstances([b], { defaultPrice: PRICE })) {
      console.log(`provider    ${describeInstance(i)}`);
      if (!backends.has(b.baseUrl)) backends.set(b.baseUrl, openAICompatibleBackend({ baseUrl: b.baseUrl, kind: b.kind }));
      const { backend: _, ...rest } = i;
      instances.push({ ...rest, backend: backends.get(b.baseUrl) });
    }
  }
}
if (!instances.some((i) => i.capabilities.includes("chat"))) {
  // The simulator stands in for every surface the hub serves (it is not a model).
  const SIM = [
    { id: "sim-llama-3-8b", capabilities: ["chat", "stream", "tools", "vision", "json_mode"], price: PRICE },
    { id: "sim-embed", capabilities: ["embeddings"], price: { input: "20000", output: "0" } },
    { id: "sim-image", capabilities: ["images"], price: { input: "0", output: "0", image: "40000000000" } },
    { id: "sim-tts", capabilities: ["speech"], price: { input: "0", output: "0", character: "15000000" } },
    { id: "sim-whisper", capabilities: ["transcription"], price: { input: "0", output: "0", second: "100000000" } },
  ];
  // Its video mode (a 4 s video renders in 3 s) and Cog-like run mode stand in for async jobs.
  simulator = await startSimulator({
    tokensPerSecond: 40,
    models: SIM.map((m) => ({ id: m.id })),
    videoRenderMs: 3000,
    videoBytes: 200_000,
    runMs: 500,
  });
  console.log(
    `provider  no local model server found; serving the SRP model SIMULATOR at ${simulator.baseUrl} (deterministic filler text, not a model)`,
  );
  const backend = openAICompatibleBackend({ baseUrl: simulator.baseUrl });
  instances = SIM.map((m) => ({ backend, model: m.id, price: m.price, capabilities: m.capabilities, maxConcurrency: 8 }));
  for (const m of SIM) console.log(`provider    ${m.id}  ${m.capabilities.join(",")}`);
  const cog = cogBackend({ baseUrl: simulator.url });
  instances.push(
    {
      backend: videosBackend({ baseUrl: simulator.baseUrl, pollMs: 500 }),
      model: "sim-video",
      capabilities: ["video"],
      price: { input: "0", output: "0", second: "25000000000", run: "10000000000" },
      maxConcurrency: 2,
    },
    {
      backend: cog,
      model: "sim-run",
      capabilities: ["run"],
      io: await cog.io(),
      price: { input: "0", output: "0", second: "1000000000", run: "5000000000" },
      maxConcurrency: 2,
    },
  );
  console.log("provider    sim-video  video (async)");
  console.log("provider    sim-run  run (async, Cog-like)");
}
const provider = createProvider({
  hub: url,
  identity: loadOrCreateIdentity(join(data, "provider", "node.key")).identity,
  account: apiKey,
  instances,
  receipts: new FileReceiptStore(join(data, "provider", "receipts")),
  expectedHubId: hub.id,
  agent: "srp-provider/0.1.0 (npm start)",
});
provider.on("warning", (w) => console.log(`provider  warning ${w.code}: ${w.message}`));
await provider.ready();
const model = instances.find((i) => i.capabilities.includes("chat")).model;
const other = (cap) => instances.find((i) => i.capabilities.includes(cap))?.model;

// Stream one answer.
const client = createClient({ hub: url, apiKey });
process.stdout.write(`\nconsumer  streaming one answer from ${model}${simulator ? " (simulator)" : ""}:\n\n  `);
let usage;
for await (const chunk of client.chat.stream({
  model,
  messages: [{ role: "user", content: "Say hello to the Spare Relay Protocol." }],
  max_tokens: 40,
})) {
  process.stdout.write(chunk.choices[0]?.delta.content ?? "");
  if (chunk.usage) usage = chunk.usage;
}
const { check } = await client.receipt(usage.receipt_id);
console.log(
  `\n\nconsumer  ${usage.prompt_tokens} + ${usage.completion_tokens} tokens, cost $${usage.cost} (${usage.cost_units} units), receipt ${usage.receipt_id} ${check.valid ? "verified against the hub key" : `INVALID: ${JSON.stringify(check.problems)}`}`,
);
const books = await store.summary(DEMO);
const problems = await store.verify();
console.log(
  `ledger    ${DEMO}: balance $${formatUsdc(books.balance)}, spent $${formatUsdc(books.spent)}, earned $${formatUsdc(books.earned)} (this demo account is both the consumer and the provider: 90 % of each charge comes back to it)`,
);
console.log(`ledger    verify: ${problems.length === 0 ? "every invariant holds" : `PROBLEMS ${JSON.stringify(problems)}`}`);

// The same hub speaks Anthropic Messages (the Anthropic SDK, Claude Code), translated for this OpenAI-compatible node.
const messages = await fetch(`${url}/v1/messages`, {
  method: "POST",
  headers: { "x-api-key": apiKey, "content-type": "application/json", "anthropic-version": "2023-06-01" },
  body: JSON.stringify({ model, max_tokens: 24, messages: [{ role: "user", content: "Hello from the Anthropic Messages API." }] }),
});
const message = await messages.json();
console.log(
  `consumer  Anthropic Messages (POST /v1/messages): HTTP ${messages.status}, a ${message.content?.[0]?.type} block of ${message.usage?.output_tokens} tokens, stop_reason ${message.stop_reason}, cost $${message.usage?.cost}`,
);

if (chain) {
  // An agent with a wallet and no account pays per call with the official x402 client.
  const { wrapFetchWithPaymentFromConfig } = await import("@x402/fetch");
  const { ExactEvmScheme } = await import("@x402/evm");
  const payer = chain.accounts[3];
  const pay = wrapFetchWithPaymentFromConfig(fetch, {
    schemes: [{ network: "eip155:*", client: new ExactEvmScheme(payer) }],
    spendControls: { allowedAssets: [{ network: `eip155:${chain.chainId}`, asset: chain.usdc.address }] },
  });
  const res = await pay(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "Paid per call." }], max_tokens: 24 }),
  });
  const paid = await res.json();
  const settled = JSON.parse(Buffer.from(res.headers.get("payment-response") ?? "e30=", "base64").toString("utf8"));
  const wallet = await store.findByWallet(payer.address);
  const prepaid = wallet ? (await store.summary(wallet.id)).prepaid : 0n;
  console.log(
    `x402      ${payer.address} paid by x402 (HTTP ${res.status}, transaction ${settled.transaction}); cost $${paid.usage?.cost}; the rest, $${formatUsdc(prepaid)}, is its prepaid balance`,
  );
  const run = await onchain.payouts.run();
  for (const p of run.paid)
    console.log(
      `payouts   ${p.payee} paid $${formatUsdc(p.provider)} and the protocol $${formatUsdc(p.protocol)} on-chain (batch ${run.batchTx})`,
    );
  console.log(`ledger    verify after payouts: ${(await store.verify()).length === 0 ? "every invariant holds" : "PROBLEMS"}`);
}

provider.on("job.end", (o) =>
  console.log(
    `provider  job ${o.jobId} ${o.ok ? `done, ${o.usage?.completionTokens ?? 0} tokens, cost ${o.cost} units` : `failed: ${o.code}`}`,
  ),
);
console.log(`
SRP local network is up.${simulator ? "  (The model is the SRP simulator, not a real model.)" : ""}
  hub          ${url}   (id ${hub.id})
  discovery    ${url}/.well-known/srp.json
  models       ${url}/v1/models
  dashboard    ${url}/dashboard/   (sign in with the API key below)
  API key      ${apiKey}   (account ${DEMO}, kept in ${keyFile})

Try it with curl:

  curl -N ${url}/v1/chat/completions \\
    -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" \\
    -d '{"model":"${model}","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'

Or with the OpenAI SDK (npm install openai):

  import OpenAI from "openai";
  const client = new OpenAI({ baseURL: "${url}/v1", apiKey: "${apiKey}" });
  const r = await client.chat.completions.create({ model: "${model}", messages: [{ role: "user", content: "Hello!" }] });
  console.log(r.choices[0].message.content, r.usage);

Or with the Anthropic SDK (npm install @anthropic-ai/sdk), or Claude Code:

  import Anthropic from "@anthropic-ai/sdk";
  const claude = new Anthropic({ baseURL: "${url}", apiKey: "${apiKey}" });
  const m = await claude.messages.create({ model: "${model}", max_tokens: 256, messages: [{ role: "user", content: "Hello!" }] });

  ANTHROPIC_BASE_URL=${url} ANTHROPIC_API_KEY=${apiKey} claude

${[
  ["embeddings", "POST /v1/embeddings"],
  ["images", "POST /v1/images/generations"],
  ["speech", "POST /v1/audio/speech"],
  ["transcription", "POST /v1/audio/transcriptions"],
]
  .filter(([cap]) => other(cap))
  .map(([cap, path]) => `Also served: ${cap.padEnd(13)} ${path.padEnd(30)} model "${other(cap)}"`)
  .join("\n")}
Batches of up to 50 of these requests: POST /v1/batch, then GET /v1/jobs/{id}.
${
  other("video")
    ? `Async jobs, answered 202 with an id to poll at GET /v1/jobs/{id}:
  curl -s ${url}/v1/videos -H "authorization: Bearer ${apiKey}" -H "content-type: application/json" \\
    -d '{"model":"${other("video")}","prompt":"a lighthouse at dusk","seconds":"4"}'
${
  other("run")
    ? `  curl -s ${url}/v1/runs -H "authorization: Bearer ${apiKey}" -H "content-type: application/json" \\
    -d '{"model":"${other("run")}","input":{"prompt":"a red square"}}'
`
    : ""
}`
    : ""
}
Every model, its capabilities, prices and aliases: ${url}/v1/models

The consumer API's OpenAPI document: ${url}/openapi.json

The account's money (balance, spend, earnings) and its ledger:

  curl ${url}/v1/account -H "Authorization: Bearer ${apiKey}"
  npx srp-hub ledger show ${DEMO} --data-dir ${join(data, "hub")}      # and: ledger history, ledger verify

${
  chain
    ? `On-chain (a throwaway local chain: keys and tokens are for testing only):
  RPC          ${chain.rpcUrl}   (chain id ${chain.chainId})
  test USDC    ${chain.usdc.address}   (EIP-712 "USD Coin" version 2, EIP-3009)
  settlement   ${chain.settlement}
  x402 payer   ${chain.accounts[3].address}   private key ${chain.privateKeys[3]}
  x402 list    ${url}/.well-known/x402

`
    : ""
}Ctrl-C stops it.`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await provider.close();
  await hub.close();
  await simulator?.close();
  store.close();
  await chain?.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
