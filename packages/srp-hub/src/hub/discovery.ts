/**
 * The hub's discovery document (`/.well-known/srp`, spec/v1/discovery.md): where nodes
 * connect, where consumers call, and which surfaces and payments this hub offers.
 */
import type { Discovery } from "@srp/core/schema";
import { PROVIDER_PATH } from "./types.js";

/** What a hub offers, as its discovery document lists it. */
export interface DiscoveryFeatures {
  /** The hub id. */
  readonly hubId: string;
  /** Protocol versions offered. */
  readonly versions: readonly number[];
  /** Frame limit of the provider endpoint. */
  readonly maxFrameBytes: number;
  /** Batches (`srp.batch`): the ledger reserves many at once. */
  readonly batch: boolean;
  /** The account API (`srp.account`): the ledger keeps books. */
  readonly account: boolean;
  /** Wallet sign-in and payout wallets (`srp.wallet`). */
  readonly wallet: boolean;
  /** x402 payments. */
  readonly x402: boolean;
  /** Card deposits (`srp.card_deposits`, payments `card`). */
  readonly cards?: boolean;
  /** Async jobs (`openai.videos`, `srp.runs`). */
  readonly asyncJobs?: boolean;
}

/** The discovery document of a hub at a base URL (pure). */
export function discoveryDocument(features: DiscoveryFeatures, baseUrl: string): Discovery {
  return {
    protocol: "srp",
    versions: [...features.versions],
    hubId: features.hubId,
    provider: { url: `${baseUrl.replace(/^http/, "ws")}${PROVIDER_PATH}`, maxFrameBytes: features.maxFrameBytes },
    consumer: {
      baseUrl: `${baseUrl}/v1`,
      openapi: `${baseUrl}/openapi.json`,
      surfaces: [
        "openai.chat.completions",
        "openai.models",
        "anthropic.messages",
        "openai.responses",
        "openai.completions",
        ...(features.batch ? ["srp.batch"] : []),
        ...(features.asyncJobs ? ["openai.videos", "srp.runs"] : []),
        "openai.embeddings",
        "openai.images",
        "openai.audio",
        "srp.receipts",
        "srp.pricing",
        "srp.estimate",
        ...(features.account ? ["srp.account"] : []),
        ...(features.wallet ? ["srp.wallet"] : []),
        ...(features.x402 && features.account && features.wallet ? ["srp.futures"] : []),
        ...(features.cards ? ["srp.card_deposits"] : []),
      ],
    },
    payments: ["account", ...(features.x402 ? ["x402"] : []), ...(features.cards ? ["card"] : [])],
    software: "@srp/hub",
  };
}
