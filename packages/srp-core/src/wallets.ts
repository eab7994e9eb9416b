/**
 * The texts wallets sign for a hub (EIP-191 `personal_sign`), built in one place so hubs,
 * providers and clients sign and check exactly the same bytes.
 */

/**
 * The text a wallet signs to become the payout wallet of a node: `SRP payout wallet`, a
 * newline, then `node: <nodeId>`.
 *
 * @example
 * const signature = await account.signMessage({ message: payoutWalletMessage(identity.id) });
 */
export function payoutWalletMessage(nodeId: string): string {
  return `SRP payout wallet\nnode: ${nodeId}`;
}

/**
 * The text a depositor's wallet signs to have an account's unused prepaid balance paid
 * back on-chain: `SRP refund`, then `hub: <hubId>`, `account: <accountId>` and
 * `nonce: <nonce>` (a nonce from the hub's `GET /v1/auth/nonce`), one per line.
 */
export function refundMessage(hubId: string, accountId: string, nonce: string): string {
  return `SRP refund\nhub: ${hubId}\naccount: ${accountId}\nnonce: ${nonce}`;
}
