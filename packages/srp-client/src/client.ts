/** Discovery and receipt verification for consumers. */
import { fetchDiscovery, verifyReceipt, type ReceiptProblem } from "@srp/core";
import { Receipt, type Discovery } from "@srp/core/schema";
import { TypeCompiler } from "@sinclair/typebox/compiler";

const checkReceipt = TypeCompiler.Compile(Receipt);

/**
 * Fetches and validates a hub's `/.well-known/srp.json`.
 *
 * @example
 * const hub = await discover("http://127.0.0.1:8787");
 * console.log(hub.hubId, hub.versions);
 */
export function discover(baseUrl: string, init: RequestInit = {}): Promise<Discovery> {
  return fetchDiscovery(baseUrl, init);
}

/** Outcome of {@link verifyHubReceipt}. */
export interface ReceiptCheck {
  /** True when the receipt is well-formed, both signatures verify, the cost adds up and it names the expected hub. */
  valid: boolean;
  /** Everything found wrong. */
  problems: Array<Pick<ReceiptProblem, "code" | "message">>;
}

/**
 * Checks a receipt as a consumer: schema, node signature, hub countersignature, cost,
 * and (when given) that it was issued by the hub you talked to.
 */
export function verifyHubReceipt(receipt: unknown, expectedHubId?: string): ReceiptCheck {
  if (!checkReceipt.Check(receipt)) {
    const first = checkReceipt.Errors(receipt).First();
    return {
      valid: false,
      problems: [{ code: "receipt.field_mismatch", message: `not a receipt: ${first?.path ?? "/"}: ${first?.message ?? "invalid"}` }],
    };
  }
  const problems = verifyReceipt(receipt, expectedHubId === undefined ? {} : { hubId: expectedHubId }).map(({ code, message }) => ({
    code,
    message,
  }));
  return { valid: problems.length === 0, problems };
}
