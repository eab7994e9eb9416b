/**
 * x402 discovery: `GET /.well-known/x402` lists what a hub sells for x402 payments and how
 * it is priced. A 402's `bazaar` extension carries the same description per resource;
 * this document is the common convention for finding it before the first request.
 */
import { RUNS_PATH, runsSurface, VIDEOS_PATH, videosSurface } from "./async-surfaces.js";
import { v1NetworkOf } from "@srp/core/x402";
import type { Router } from "../routing/router.js";
import type { X402Payments } from "../payments/x402-flow.js";
import { bazaarExtension, type PaidResource } from "../payments/x402-policy.js";
import { messagesResource } from "./anthropic.js";
import { BATCH_PATH, batchResource } from "./batch.js";
import { completionsResource } from "./completions.js";
import { depositResource, DEPOSIT_LIMITS, DEPOSIT_PATH } from "./futures.js";
import { MODALITY_SURFACES } from "./modalities.js";
import { chatResource } from "./openai.js";
import { responsesResource } from "./responses.js";

/** Path of the x402 discovery document. */
export const X402_DISCOVERY_PATH = "/.well-known/x402";
/** The same document under the name some payers look for. */
export const X402_DISCOVERY_JSON_PATH = "/.well-known/x402.json";

/** A model's price as x402 payers are quoted it: the dearest instance online, atomic units per 1M tokens. */
export interface X402ModelPrice {
  model: string;
  input: string;
  output: string;
}

/** A metered request's price: its maximum cost, from the models' prices online. */
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
  /** The x402 versions a payment may use: 2, and 1 when the hub's chain has a version-1 name. */
  x402Versions: number[];
  /** The networks payments are taken on, the EVM one first: when each settles, and the smallest amount offered on it (atomic units). */
  networks: Array<{ network: string; settlement: "before" | "after"; minAmount: string }>;
  /** When the hub settles: before or after serving. */
  settlement: "before" | "after";
  settler: string;
  resources: X402DiscoveryResource[];
}

/** A metered resource's price: its maximum cost at the dearest price online (one text for every surface). */
const MAXIMUM_COST =
  "A request is quoted its maximum cost: what admission would reserve for its body (its prompt bound and output limit, images, characters or seconds) at the dearest price online for its model. What it does not use stays with the wallet's account as prepaid balance.";

/** The paid resources of a hub whose price is a request's maximum cost, by path, with their descriptions. */
const METERED: ReadonlyArray<readonly [string, (url: string) => PaidResource]> = [
  ["/v1/chat/completions", chatResource],
  ["/v1/completions", completionsResource],
  ["/v1/messages", messagesResource],
  ["/v1/responses", responsesResource],
  ...Object.entries(MODALITY_SURFACES).map(([path, surface]) => [path, surface.resource] as const),
  [BATCH_PATH, batchResource],
  [VIDEOS_PATH, videosSurface.resource],
  [RUNS_PATH, runsSurface.resource],
];

/**
 * The x402 discovery document for a hub's public base URL (served at `/.well-known/x402`
 * and `/.well-known/x402.json`): every resource a payer can buy, each with the `accepts`
 * entry it is offered (but for its `amount`, quoted per request) and its `bazaar`
 * extension. With `deposits`, the deposit resource (`POST /v1/futures/deposit`, priced at
 * the amount asked) comes last. `x402Versions` lists 1 when the hub's chain has an x402
 * version-1 name (version-1 clients may pay with `X-PAYMENT`).
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
  // One entry per network, as a 402 lists them, without the amount (quoted per request).
  const accepts = payments.offers(0n).map(({ amount: _perRequest, ...terms }) => terms);
  const listed = (r: PaidResource, price: X402DiscoveryResource["price"]): X402DiscoveryResource => ({
    resource: r.url,
    type: "http",
    method: "POST",
    description: r.description,
    mimeType: r.mimeType,
    price,
    accepts,
    extensions: { bazaar: bazaarExtension(r) },
  });
  const estimate = `${baseUrl}/v1/estimate`;
  const resources = METERED.map(([path, resource]) =>
    listed(resource(`${baseUrl}${path}`), { kind: "maximum_cost", description: MAXIMUM_COST, estimate, models }),
  );
  if (options.deposits) {
    resources.push(
      listed(depositResource(`${baseUrl}${DEPOSIT_PATH}`), {
        kind: "amount",
        description:
          "A deposit is quoted exactly the `amount` its body asks for (atomic USDC units), credited to the paying wallet's account as prepaid balance.",
        min: DEPOSIT_LIMITS.min.toString(),
        max: DEPOSIT_LIMITS.max.toString(),
      }),
    );
  }
  return {
    x402Version: 2,
    x402Versions: v1NetworkOf(payments.terms.chainId) === undefined ? [2] : [2, 1],
    networks: payments.rails.map((r) => ({
      network: r.network,
      settlement: r.settlesFirst ? "before" : payments.mode,
      minAmount: r.minAmount.toString(),
    })),
    settlement: payments.mode,
    settler: payments.settlerName,
    resources,
  };
}
