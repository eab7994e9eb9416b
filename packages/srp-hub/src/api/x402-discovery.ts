/**
 * x402 discovery: `GET /.well-known/x402` lists what a hub sells for x402 payments and how
 * it is priced. A 402's `bazaar` extension carries the same description per resource;
 * this document is the common convention for finding it before the first request.
 */
import type { Router } from "../routing/router.js";
import type { X402Payments } from "../payments/x402-flow.js";
import { bazaarExtension } from "../payments/x402-policy.js";
import { depositResource, DEPOSIT_LIMITS, DEPOSIT_PATH } from "./futures.js";
import { chatResource } from "./openai.js";

/** Path of the x402 discovery document. */
export const X402_DISCOVERY_PATH = "/.well-known/x402";

/** A model's price as x402 payers are quoted it: the dearest instance online, atomic units per 1M tokens. */
export interface X402ModelPrice {
  model: string;
  input: string;
  output: string;
}

/** A chat request's price: its maximum cost, from the models' prices online. */
export interface X402MaximumCostPrice {
  kind: "maximum_cost";
  description: string;
  /** Where to ask for a request's maximum cost before paying. */
  estimate: string;
  models: X402ModelPrice[];
}

/** A deposit's price: the amount the request asks for, within limits (atomic units). */
export interface X402AmountPrice {
  kind: "amount";
  description: string;
  min: string;
  max: string;
}

/** One paid resource of the discovery document. */
export interface X402DiscoveryResource {
  resource: string;
  type: "http";
  method: "POST";
  description: string;
  mimeType: string;
  /** How the amount of a request is set. */
  price: X402MaximumCostPrice | X402AmountPrice;
  /** The `accepts` entry a request gets, but for its `amount`, which is quoted per request. */
  accepts: Array<Record<string, unknown>>;
  extensions: { bazaar: Record<string, unknown> };
}

/** The `/.well-known/x402` document. */
export interface X402DiscoveryDocument {
  x402Version: 2;
  /** When the hub settles: before or after serving. */
  settlement: "before" | "after";
  settler: string;
  resources: X402DiscoveryResource[];
}

/**
 * The x402 discovery document for a hub's public base URL. With `deposits`, the deposit
 * resource (`POST /v1/futures/deposit`, priced at the amount asked) is listed after the
 * chat completion resource.
 */
export function x402Discovery(
  payments: X402Payments,
  baseUrl: string,
  router: Router,
  options: { deposits?: boolean } = {},
): X402DiscoveryDocument {
  const models: X402ModelPrice[] = [];
  // The router's per-model summaries: O(models) per request, whatever the instances.
  for (const m of router.summaries()) {
    models.push({ model: m.model, input: (m.high.input ?? 0n).toString(), output: (m.high.output ?? 0n).toString() });
  }
  models.sort((a, b) => a.model.localeCompare(b.model));
  const chat = chatResource(`${baseUrl}/v1/chat/completions`);
  const { amount: _perRequest, ...accepts } = payments.offer(0n);
  const deposit = depositResource(`${baseUrl}${DEPOSIT_PATH}`);
  return {
    x402Version: 2,
    settlement: payments.mode,
    settler: payments.settlerName,
    resources: [
      {
        resource: chat.url,
        type: "http",
        method: "POST",
        description: chat.description,
        mimeType: chat.mimeType,
        price: {
          kind: "maximum_cost",
          description:
            "A request is quoted its maximum cost: its prompt bound and output limit (max_tokens) at the dearest price online for its model. What it does not use stays with the wallet's account as prepaid balance.",
          estimate: `${baseUrl}/v1/estimate`,
          models,
        },
        accepts: [accepts],
        extensions: { bazaar: bazaarExtension(chat) },
      },
      ...(options.deposits
        ? [
            {
              resource: deposit.url,
              type: "http" as const,
              method: "POST" as const,
              description: deposit.description,
              mimeType: deposit.mimeType,
              price: {
                kind: "amount" as const,
                description:
                  "A deposit is quoted exactly the `amount` its body asks for (atomic USDC units), credited to the paying wallet's account as prepaid balance.",
                min: DEPOSIT_LIMITS.min.toString(),
                max: DEPOSIT_LIMITS.max.toString(),
              },
              accepts: [accepts],
              extensions: { bazaar: bazaarExtension(deposit) },
            },
          ]
        : []),
    ],
  };
}
