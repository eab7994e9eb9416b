/**
 * The EVM payment rail: x402's `exact` scheme on an EVM network, an EIP-3009
 * `transferWithAuthorization` of the hub's token to its treasury (spec/v1/payments.md). The
 * checks are {@link checkPayment}'s and the EIP-712 signature's; settling is the
 * {@link Settler}'s (the hub's own key, or a facilitator).
 */
import { verifyTypedData } from "viem";
import { SrpError } from "@srp/core";
import { exactEvmPayload, type PaymentPayload, type PaymentRequirements } from "@srp/core/x402";
import { transferWithAuthorizationTypes } from "@srp/core/chain";
import type { SettleInput, Settler } from "./authorization-settlers.js";
import type { PaymentLock, PaymentRail, RailPayment } from "./rail.js";
import { checkPayment, requirementsFor, requirementsV1For, type CheckedPayment, type X402Terms } from "./x402-policy.js";

/** Whether an EIP-712 `TransferWithAuthorization` signature is the payer's: by an EOA, or with the settler's chain, a contract wallet. */
async function authorizationSigned(terms: X402Terms, settler: Settler, input: CheckedPayment): Promise<boolean> {
  const a = input.authorization;
  const args = {
    address: a.from as `0x${string}`,
    domain: {
      name: terms.asset.name,
      version: terms.asset.version,
      chainId: terms.chainId,
      verifyingContract: terms.asset.address as `0x${string}`,
    },
    types: transferWithAuthorizationTypes,
    primaryType: "TransferWithAuthorization" as const,
    message: {
      from: a.from as `0x${string}`,
      to: a.to as `0x${string}`,
      value: BigInt(a.value),
      validAfter: BigInt(a.validAfter),
      validBefore: BigInt(a.validBefore),
      nonce: a.nonce as `0x${string}`,
    },
    signature: input.signature,
  };
  try {
    if (await verifyTypedData(args)) return true;
  } catch {
    // not an EOA signature
  }
  // With a chain client, smart-contract wallets (ERC-1271, ERC-6492) verify too.
  if (!settler.chain) return false;
  try {
    return await settler.chain.verifyTypedData(args);
  } catch {
    return false;
  }
}

/** What an EIP-3009 authorization locks: the payer's nonce on the token, until its `validBefore`. */
function lockOf(network: string, checked: CheckedPayment): PaymentLock {
  const a = checked.authorization;
  const before = BigInt(a.validBefore);
  return {
    network,
    asset: checked.requirements.asset,
    payer: a.from,
    nonce: a.nonce,
    amount: BigInt(a.value),
    validBefore: Number(before > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : before),
  };
}

/** The settler's input for a checked payment. */
function settleInput(p: RailPayment): SettleInput {
  const payload = exactEvmPayload(p.payment);
  return {
    payment: p.payment,
    requirements: p.requirements,
    authorization: payload.authorization,
    signature: payload.signature as `0x${string}`,
  };
}

/** The EVM rail of a hub's terms, settled by `settler`. */
export function evmRail(terms: X402Terms, settler: Settler): PaymentRail {
  const network = `eip155:${terms.chainId}`;
  return {
    network,
    settlerName: settler.name,
    settlesFirst: false,
    minAmount: 0n,
    offer: (amount) => requirementsFor(terms, amount),
    offerV1: (amount, resource) => requirementsV1For(terms, amount, resource),
    async check(payment: PaymentPayload, offered: PaymentRequirements, nowSeconds: number): Promise<RailPayment | SrpError> {
      const checked = checkPayment(payment, offered, terms, nowSeconds);
      if (checked instanceof SrpError) return checked;
      if (!(await authorizationSigned(terms, settler, checked)))
        return new SrpError("payment.bad_signature", "the authorization's EIP-712 signature does not recover to its `from`");
      return { payment, requirements: checked.requirements, lock: lockOf(network, checked) };
    },
    restore(payment) {
      try {
        const ev = exactEvmPayload(payment);
        const checked = { authorization: ev.authorization, signature: ev.signature as `0x${string}`, requirements: payment.accepted };
        return { payment, requirements: payment.accepted, lock: lockOf(network, checked) };
      } catch {
        return undefined;
      }
    },
    preflight: (p) => settler.preflight(settleInput(p)),
    settle: (p) => settler.settle(settleInput(p)),
    outcome: (lock) =>
      settler.outcome({ asset: lock.asset, payer: lock.payer, nonce: lock.nonce, payTo: terms.payTo, amount: lock.amount }),
  };
}
