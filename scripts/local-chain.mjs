// An in-process Ethereum chain for tests and `npm start -- --chain`: ganache (chain id 1337,
// Shanghai rules, instant mining, deterministic accounts) wrapped in viem clients, with
// TestUSDC ("USD Coin", version "2", a test stand-in for USDC) and SrpSettlement deployed
// from the contracts compiled by solc, and USDC minted to the first accounts. Transactions
// are signed locally by viem accounts and sent raw, as on a real network. Plain ESM (types
// in local-chain.d.mts) so that scripts run it with plain `node`; it needs @srp/core built.
//
// Roles: accounts[0] deploys both contracts (it owns them and may mint), accounts[1] is the
// hub key that signs settlement vouchers, accounts[2] receives the protocol's share.
import { createServer } from "node:http";
import ganache from "ganache";
import { createPublicClient, createWalletClient, custom, defineChain } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deploySettlement, deployTestUsdc, testUsdcAbi } from "../packages/srp-core/dist/chain.js";

/** The chain id of the local chain. */
export const TEST_CHAIN_ID = 1337;

/** The viem chain definition of the local chain. */
export const testChain = defineChain({
  id: TEST_CHAIN_ID,
  name: "SRP local chain (ganache)",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: ["http://127.0.0.1:8545"] } },
});

/** Starts a fresh chain with both contracts deployed (`options.chainId`: another chain id than 1337). */
export async function startChain(options = {}) {
  const totalAccounts = Math.max(3, options.accounts ?? 10);
  const chainId = options.chainId ?? TEST_CHAIN_ID;
  const chain = chainId === TEST_CHAIN_ID ? testChain : defineChain({ ...testChain, id: chainId });
  const provider = ganache.provider({
    logging: { quiet: true },
    chain: { chainId, hardfork: "shanghai" },
    wallet: { deterministic: true, totalAccounts, defaultBalance: 1000 },
    miner: { instamine: "eager" },
  });
  const transport = custom({
    request: async ({ method, params }) => {
      try {
        return await provider.request({ method, params });
      } catch (err) {
        throw withRpcCode(err);
      }
    },
  });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 });
  const privateKeys = Object.values(provider.getInitialAccounts()).map((a) => a.secretKey);
  const accounts = privateKeys.map((key) => privateKeyToAccount(key));
  const walletFor = (account) => createWalletClient({ account, chain, transport, pollingInterval: 20 });
  const [deployer, hubSigner, protocol] = accounts;

  const usdc = { name: "USD Coin", version: "2", chainId };
  const admin = walletFor(deployer);
  let usdcAddress;
  let settlement;
  let server;
  try {
    usdcAddress = await deployTestUsdc(admin, publicClient, usdc);
    settlement = await deploySettlement(admin, publicClient, { token: usdcAddress, signer: hubSigner.address, protocol: protocol.address });
    const mint = options.mint ?? 1_000_000n * 10n ** 6n;
    for (const account of accounts.slice(0, options.mintTo ?? 5)) {
      const hash = await admin.writeContract({
        address: usdcAddress,
        abi: testUsdcAbi,
        functionName: "mint",
        args: [account.address, mint],
      });
      await publicClient.waitForTransactionReceipt({ hash });
    }
    if (options.serve) server = await serveRpc(provider, { port: options.port });
  } catch (err) {
    await provider.disconnect().catch(() => undefined);
    throw err;
  }
  return {
    chainId,
    provider,
    publicClient,
    accounts,
    privateKeys,
    deployer,
    hubSigner,
    protocol,
    walletFor,
    usdc: { address: usdcAddress, ...usdc },
    settlement,
    rpcUrl: server?.url,
    usdcBalance: (address) =>
      publicClient.readContract({ address: usdcAddress, abi: testUsdcAbi, functionName: "balanceOf", args: [address] }),
    async snapshot() {
      const id = await provider.request({ method: "evm_snapshot", params: [] });
      return async () => {
        const ok = await provider.request({ method: "evm_revert", params: [id] });
        if (!ok) throw new Error(`evm_revert ${id} failed`);
      };
    },
    async stop() {
      await server?.close();
      await provider.disconnect();
    },
  };
}

/**
 * Gives ganache's errors for methods it lacks (it throws a bare "The method X does not
 * exist/is not available") the JSON-RPC code -32601, so viem treats them as "method not
 * found": it does not retry them and falls back at once (viem first tries
 * `eth_fillTransaction`, which ganache 7.9 lacks, before every transaction).
 */
function withRpcCode(err) {
  if (err instanceof Error && !("code" in err) && /does not exist\/is not available/.test(err.message)) {
    return Object.assign(new Error(err.message), { code: -32601 });
  }
  return err;
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Serves `provider` as HTTP JSON-RPC on a free loopback port, so child processes can reach the
 * in-process chain. Handles single and batch requests.
 */
export async function serveRpc(provider, options = {}) {
  const answer = async (call) => {
    const id = call.id ?? null;
    try {
      if (typeof call.method !== "string") throw Object.assign(new Error("invalid request"), { code: -32600 });
      const result = await provider.request({ method: call.method, params: call.params ?? [] });
      return { jsonrpc: "2.0", id, result: result ?? null };
    } catch (caught) {
      const err = withRpcCode(caught);
      const e = err;
      return {
        jsonrpc: "2.0",
        id,
        error: {
          code: typeof e.code === "number" ? e.code : -32603,
          message: String(e.message ?? err),
          ...(e.data === undefined ? {} : { data: e.data }),
        },
      };
    }
  };
  const server = createServer((req, res) => {
    void (async () => {
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } }));
        return;
      }
      const reply = Array.isArray(body) ? await Promise.all(body.map((c) => answer(c))) : await answer(body);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(reply, (_k, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));
    })();
  });
  await new Promise((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
