/**
 * Amounts as the consumer endpoints show them (`GET /v1/account`, `POST /v1/estimate`…):
 * `{ units, usd }`, USDC atomic units as a decimal string and the same in dollars.
 */
import { formatUsdc } from "@srp/core";

/** An amount in both forms. */
export interface Money {
  /** USDC atomic units (1e-6 USD), decimal string. */
  units: string;
  /** The same in USD, decimal string. */
  usd: string;
}

/** An amount in both forms. */
export function money(units: bigint): Money {
  return { units: units.toString(), usd: formatUsdc(units) };
}
