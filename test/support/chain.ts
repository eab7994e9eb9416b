/**
 * A throwaway in-process Ethereum chain for tests: ganache with TestUSDC and SrpSettlement
 * deployed and USDC minted to the first accounts. The chain itself is scripts/local-chain.mjs,
 * shared with `npm start -- --chain`.
 */
export {
  startChain,
  serveRpc,
  testChain,
  TEST_CHAIN_ID,
  type ChainOptions,
  type TestChain,
  type TestWallet,
  type RpcServer,
} from "../../scripts/local-chain.mjs";
