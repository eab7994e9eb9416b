// Deterministic example messages for spec/v1/examples, signed with the spec's published
// test keys (spec/v1/test-vectors.md). Imported by scripts/spec.mjs and by the tests.
import { privateKeyToAccount } from "viem/accounts";
import {
  canonicalize,
  countersignReceipt,
  createAuth,
  createHello,
  createReceipt,
  identityFromSeed,
  INITIAL_POSITION,
  nodeBindingText,
  sha256Hex,
  signStatement,
  toHex,
} from "../packages/srp-core/dist/index.js";

/** Test key seeds published in the spec. Never use them for anything real. */
export const TEST_SEEDS = {
  hub: new Uint8Array(32).fill(0x01),
  node: new Uint8Array(32).fill(0x02),
};

export const TEST_KEYS = {
  hub: identityFromSeed(TEST_SEEDS.hub),
  node: identityFromSeed(TEST_SEEDS.node),
};

export function testKeyTable() {
  return Object.entries(TEST_SEEDS).map(([role, seed]) => ({ role, seedHex: toHex(seed), id: TEST_KEYS[role].id }));
}

const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const NONCE = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // bytes 0x00..0x1f

/** The well-known Hardhat/Anvil development account #1; a public test key, never for real funds. */
export const TEST_WALLET_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/** Returns { MessageName: { exampleName: message } }. */
export async function buildExamples() {
  const { hub, node } = TEST_KEYS;
  const hello = createHello({ identity: hub, now: T0, nonce: NONCE });
  const auth = createAuth({
    identity: node,
    hello,
    account: { kind: "api_key", key: "srp_test_0123456789abcdef" },
    agent: "srp-provider/0.1.0",
    now: T0 + 150,
  });
  const wallet = privateKeyToAccount(TEST_WALLET_KEY);
  const walletAuth = createAuth({
    identity: node,
    hello,
    account: { kind: "wallet", address: wallet.address, signature: await wallet.signMessage({ message: nodeBindingText(node.id) }) },
    now: T0 + 150,
  });
  const instance = {
    instanceId: "ollama-llama3.1-8b",
    model: "llama3.1:8b",
    tier: "gpu",
    backend: { kind: "ollama", digest: "sha256:46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e" },
    price: { input: "50000", output: "150000" },
    maxConcurrency: 2,
    tokensPerSecond: 45,
    contextLength: 131072,
    maxOutputTokens: 8192,
    capabilities: ["chat", "stream", "tools", "json_mode"],
  };
  const request = {
    model: "llama3.1:8b",
    messages: [{ role: "user", content: "Say hello" }],
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 64,
  };
  const chunk = {
    id: "chatcmpl-job_01JH4Z6Q0000000000000001",
    object: "chat.completion.chunk",
    created: 1767225601,
    model: "llama3.1:8b",
    choices: [{ index: 0, delta: { role: "assistant", content: "Hello!" }, finish_reason: null }],
  };
  const usage = { promptTokens: 11, completionTokens: 3, measured: true };
  const unsigned = createReceipt(
    {
      jobId: "job_01JH4Z6Q0000000000000001",
      hubId: hub.id,
      instanceId: instance.instanceId,
      model: instance.model,
      requestHash: sha256Hex(canonicalize(request)),
      responseHash: sha256Hex(canonicalize([chunk])),
      usage,
      price: instance.price,
      startedAt: T0 + 1000,
      finishedAt: T0 + 1420,
    },
    INITIAL_POSITION,
    node,
  );
  const receipt = countersignReceipt(unsigned, hub);
  // An async job (jobs.md#async-jobs): a 4-second video delivered as one artifact of 12 bytes
  // (a real video is larger; the bytes here are the example's result stream).
  const videoInstance = {
    instanceId: "sim-video",
    model: "sora-2",
    tier: "key",
    backend: { kind: "openai-compatible" },
    price: { input: "0", output: "0", second: "100000000000", run: "0" },
    maxConcurrency: 4,
    tokensPerSecond: 1,
    contextLength: 1,
    capabilities: ["video"],
  };
  const runInstance = {
    instanceId: "cog-sim-upscaler",
    model: "sim-upscaler",
    tier: "gpu",
    backend: { kind: "other" },
    price: { input: "0", output: "0", second: "1000000000", run: "1000000000" },
    maxConcurrency: 1,
    tokensPerSecond: 1,
    contextLength: 1,
    capabilities: ["run"],
    io: {
      input: {
        type: "object",
        properties: { prompt: { type: "string", maxLength: 1000 }, steps: { type: "integer", minimum: 1, maximum: 50, default: 4 } },
        required: ["prompt"],
        additionalProperties: false,
      },
      output: { type: "object", properties: { image: { type: "string", format: "uri" } } },
    },
  };
  const videoRequest = { model: "sora-2", prompt: "A lighthouse at dusk, waves rolling in", seconds: "4", size: "720x1280" };
  const videoBytes = new TextEncoder().encode("not-a-video!");
  const videoResponse = {
    object: "srp.result",
    artifacts: [{ name: "video", content_type: "video/mp4", bytes: videoBytes.length, sha256: sha256Hex(videoBytes) }],
    video: { seconds: "4", size: "720x1280" },
    output: null,
  };
  const videoUsage = { promptTokens: 0, completionTokens: 0, seconds: 4, runs: 1, measured: true };
  const videoReceipt = createReceipt(
    {
      jobId: "job_01JH4Z6Q0000000000000002",
      hubId: hub.id,
      instanceId: videoInstance.instanceId,
      model: videoInstance.model,
      requestHash: sha256Hex(canonicalize(videoRequest)),
      responseHash: sha256Hex(canonicalize(videoResponse)),
      usage: videoUsage,
      price: videoInstance.price,
      startedAt: T0 + 1000,
      finishedAt: T0 + 61_000,
    },
    { lastSeq: receipt.seq, totals: receipt.totals },
    node,
  );
  const statement = signStatement(
    {
      v: 1,
      statementId: "stmt_2026-01-01",
      nodeId: node.id,
      accountId: "acct_test",
      period: { from: T0, to: T0 + 86_400_000 },
      receipts: { count: 1, firstSeq: 1, lastSeq: 1 },
      totals: receipt.totals,
      earned: "0",
      paid: "0",
      balance: "0",
      issuedAt: T0 + 86_400_000,
    },
    hub,
  );
  // The next day's statement of an empty period (SRP-SET-005): no receipt in it, the position unchanged.
  const emptyStatement = signStatement(
    {
      v: 1,
      statementId: "stmt_2026-01-02",
      nodeId: node.id,
      accountId: "acct_test",
      period: { from: T0 + 86_400_000, to: T0 + 2 * 86_400_000 },
      receipts: { count: 0, firstSeq: 0, lastSeq: 1 },
      totals: receipt.totals,
      earned: "0",
      paid: "0",
      balance: "0",
      issuedAt: T0 + 2 * 86_400_000,
    },
    hub,
  );
  return {
    Hello: { basic: hello },
    Auth: { "api-key": auth, wallet: walletAuth },
    Welcome: {
      basic: {
        type: "welcome",
        version: 1,
        sessionId: "sess_01JH4Z6Q00000000000000AA",
        nodeId: node.id,
        accountId: "acct_test",
        heartbeatIntervalMs: 15000,
        limits: { maxFrameBytes: 4194304, maxInstances: 64, maxConcurrentJobs: 256 },
        replaced: false,
        receipts: { lastSeq: 0, totals: { receipts: 0, cost: "0", promptTokens: 0, completionTokens: 0 } },
      },
      "async-jobs": {
        type: "welcome",
        version: 1,
        sessionId: "sess_01JH4Z6Q00000000000000AB",
        nodeId: node.id,
        accountId: "acct_test",
        heartbeatIntervalMs: 15000,
        limits: { maxFrameBytes: 4194304, maxInstances: 64, maxConcurrentJobs: 256 },
        replaced: false,
        receipts: { lastSeq: 0, totals: { receipts: 0, cost: "0", promptTokens: 0, completionTokens: 0 } },
        ext: { "srp.async_jobs": { partBytes: 262144, maxResultBytes: 67108864, resumeWindowMs: 120000 } },
      },
    },
    Offer: { ollama: { type: "offer", instances: [instance] }, async: { type: "offer", instances: [videoInstance, runInstance] } },
    OfferAck: {
      mixed: {
        type: "offer_ack",
        results: [
          { instanceId: "ollama-llama3.1-8b", accepted: true },
          {
            instanceId: "sub-claude",
            accepted: false,
            reason: { code: "offer.tier_refused", message: "this hub refuses the subscription tier" },
          },
        ],
      },
    },
    Withdraw: { basic: { type: "withdraw", instanceIds: ["ollama-llama3.1-8b"], reason: "operator is gaming" } },
    Job: {
      chat: {
        type: "job",
        jobId: "job_01JH4Z6Q0000000000000001",
        instanceId: instance.instanceId,
        model: instance.model,
        api: "chat.completions",
        stream: true,
        request,
        deadline: T0 + 301_000,
        quote: instance.price,
      },
      video: {
        type: "job",
        jobId: "job_01JH4Z6Q0000000000000002",
        instanceId: videoInstance.instanceId,
        model: videoInstance.model,
        api: "videos",
        stream: false,
        request: videoRequest,
        deadline: T0 + 3_601_000,
        quote: videoInstance.price,
      },
    },
    Chunk: { first: { type: "chunk", jobId: "job_01JH4Z6Q0000000000000001", seq: 0, data: chunk } },
    Done: {
      stream: { type: "done", jobId: "job_01JH4Z6Q0000000000000001", chunks: 1, usage, receipt: unsigned },
      video: {
        type: "done",
        jobId: "job_01JH4Z6Q0000000000000002",
        chunks: 0,
        usage: videoUsage,
        response: videoResponse,
        receipt: videoReceipt,
      },
    },
    Progress: { rendering: { type: "progress", jobId: "job_01JH4Z6Q0000000000000002", progress: 40, message: "in_progress" } },
    Result: {
      first: {
        type: "result",
        jobId: "job_01JH4Z6Q0000000000000002",
        offset: 0,
        data: Buffer.from(videoBytes.subarray(0, 8)).toString("base64"),
      },
      rest: {
        type: "result",
        jobId: "job_01JH4Z6Q0000000000000002",
        offset: 8,
        data: Buffer.from(videoBytes.subarray(8)).toString("base64"),
      },
    },
    Resume: { "after-reconnect": { type: "resume", jobId: "job_01JH4Z6Q0000000000000002", received: 8 } },
    JobError: {
      upstream: {
        type: "job_error",
        jobId: "job_01JH4Z6Q0000000000000001",
        code: "job.upstream_error",
        message: "backend answered 500",
        retryable: true,
        upstreamStatus: 500,
        chunks: 0,
      },
    },
    Cancel: { "consumer-gone": { type: "cancel", jobId: "job_01JH4Z6Q0000000000000001", reason: "consumer_gone" } },
    Heartbeat: { basic: { type: "heartbeat", ts: T0 + 15_000, load: [{ instanceId: instance.instanceId, active: 1, capacity: 2 }] } },
    Probe: { basic: { type: "probe", probeId: "probe_01", instanceId: instance.instanceId, deadline: T0 + 20_000 } },
    ProbeResult: {
      ok: { type: "probe_result", probeId: "probe_01", instanceId: instance.instanceId, ok: true, latencyMs: 184 },
      failed: {
        type: "probe_result",
        probeId: "probe_02",
        instanceId: instance.instanceId,
        ok: false,
        latencyMs: 5000,
        error: { code: "job.upstream_timeout", message: "no answer in 5 s" },
      },
    },
    ReceiptMessage: { countersigned: { type: "receipt", receipt } },
    StatementMessage: { daily: { type: "statement", statement }, empty: { type: "statement", statement: emptyStatement } },
    Dispute: {
      missing: {
        type: "dispute",
        kind: "missing_receipt",
        hub: { lastSeq: 0, totals: { receipts: 0, cost: "0", promptTokens: 0, completionTokens: 0 } },
        node: { lastSeq: 1, totals: receipt.totals },
        message: "hub has receipts up to seq 0, node issued up to 1",
      },
    },
    Error: {
      "bad-signature": {
        type: "error",
        code: "auth.bad_signature",
        message: "auth signature does not verify with the node id",
        retryable: false,
      },
    },
    Goodbye: { maintenance: { type: "goodbye", reason: "hub restarting for an upgrade", reconnectAfterMs: 5000 } },
  };
}
