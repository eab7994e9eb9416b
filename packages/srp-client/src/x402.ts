/**
 * `@srp/client/x402`: paying x402 without `createClient`. Choosing which of a `402`
 * answer's payment requirements to pay, signing the `PAYMENT-SIGNATURE` header with a viem
 * account, and the EIP-4361 sign-in text a wallet signs for a hub (`spec/v1/payments.md`).
 * `createClient` with an `x402` option does all of this for you; this entry is for those
 * who make the HTTP requests themselves. viem is loaded the first time a payment or a
 * sign-in is made.
 *
 * Every export of this entry is public API: a new export is a promise to keep it.
 *
 * @module @srp/client/x402
 */
export { chooseRequirements, createPaymentSignature, signInMessage, DEFAULT_X402_MAX_AMOUNT, SIGN_IN_STATEMENT } from "./wallet-signing.js";
