/**
 * Wallets on the consumer surface. `GET /v1/auth/nonce` issues a one-time nonce;
 * `POST /v1/auth/wallet` signs a wallet in with an EIP-4361 (Sign-In with Ethereum)
 * message and answers an API key of the wallet's account, the same account its x402
 * payments credit and a node bound by the wallet earns for, so one wallet earns and
 * spends. `POST /v1/nodes/payout-wallet` binds the wallet a node's earnings are paid to
 * (an EIP-191 signature by that wallet over `payoutWalletMessage(nodeId)`), and
 * `GET /v1/nodes/payout-wallet?node_id=` reads the binding back.
 */
import { payoutWalletMessage, SrpError } from "@srp/core";
import { isAddress, verifyMessage } from "viem";
import { parseSiweMessage, validateSiweMessage } from "viem/siwe";
import type { AccountStore, ApiKeyRecord } from "../accounts.js";
import type { PayoutWalletBinding, WalletBook } from "../storage/wallet-book.js";
import { authenticate, errorResponse, fail, readJsonObject } from "./http.js";

/** What the wallet routes need from their hub. */
export interface WalletApiContext {
  accounts: AccountStore;
  /** Nonces and payout wallets; absent when storage keeps none (then these routes are 404). */
  wallets: WalletBook | undefined;
  /** Finds or creates (without signup credits) the account keyed by a wallet; absent without a payment book. */
  walletAccount: ((address: string) => Promise<string>) | undefined;
  /** Creates an API key; absent when the account store issues none. */
  createApiKey: ((accountId: string, label: string) => Promise<{ key: string; record: ApiKeyRecord }>) | undefined;
  /**
   * The host (`host[:port]`) a sign-in message must name as its `domain`: the configured
   * public URL's; without one, only a loopback host (a local hub), since a `Host` header is
   * the client's to choose. Undefined: sign-in is off until a public URL is configured.
   */
  host(request: Request): string | undefined;
  /** The chain id a sign-in message must name; undefined accepts any (no x402 chain configured). */
  chainId: number | undefined;
  /** The account a node is connected under now, or undefined when it is not connected. */
  connectedAccount(nodeId: string): string | undefined;
  /** Largest request body accepted. */
  maxBodyBytes: number;
  /** Reports a storage failure. */
  storageError(what: string, error: unknown): void;
}

/** Longest sign-in message accepted (characters). */
const MAX_MESSAGE_CHARS = 8192;
/** An EOA signature: 65 bytes (or 64, EIP-2098 compact), hex. */
const SIGNATURE = /^0x(?:[0-9a-fA-F]{128}|[0-9a-fA-F]{130})$/;
/** A node id: an Ed25519 public key in base64url. */
const NODE_ID = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
/** What a nonce this hub issues can look like (EIP-4361: at least 8 alphanumerics). */
const NONCE = /^[A-Za-z0-9]{8,64}$/;

const noWallets = () => fail("api.not_found", "this hub keeps no wallets (its storage has no wallet book)");

/** Whether an EOA signed `message` (EIP-191). */
async function signedBy(address: string, message: string, signature: string): Promise<boolean> {
  try {
    return await verifyMessage({ address: address as `0x${string}`, message, signature: signature as `0x${string}` });
  } catch {
    return false;
  }
}

/** `GET /v1/auth/nonce`: `{ nonce, expires_at }` (Unix ms); the nonce can be used once, within 10 minutes. */
export async function getNonce(ctx: WalletApiContext): Promise<Response> {
  if (!ctx.wallets) return noWallets();
  try {
    const { nonce, expiresAt } = await ctx.wallets.issueNonce();
    return Response.json({ nonce, expires_at: expiresAt }, { headers: { "cache-control": "no-store" } });
  } catch (error) {
    ctx.storageError("issue a wallet nonce", error);
    return fail("billing.unavailable", "the hub cannot issue nonces now; retry shortly");
  }
}

/** Reads `{ message, signature }`, or the error to answer. */
async function signedBody(request: Request, maxBytes: number): Promise<{ message: string; signature: string } | SrpError> {
  const body = await readJsonObject(request, maxBytes);
  if (body instanceof SrpError) return body;
  if (typeof body.message !== "string" || body.message.length === 0 || body.message.length > MAX_MESSAGE_CHARS) {
    return new SrpError("api.invalid_body", `\`message\` is the signed text (at most ${MAX_MESSAGE_CHARS} characters)`);
  }
  if (typeof body.signature !== "string" || !SIGNATURE.test(body.signature))
    return new SrpError("api.invalid_body", "`signature` is a 0x-prefixed 65-byte hex EIP-191 signature");
  return { message: body.message, signature: body.signature };
}

/**
 * `POST /v1/auth/wallet` with `{ message, signature }`: an EIP-4361 message naming this
 * hub's host as its `domain`, a nonce from `GET /v1/auth/nonce`, and (on a hub taking x402
 * payments) its chain id, signed by the wallet (EIP-191). Answers
 * `{ object: "srp.wallet_session", account_id, address, api_key, key_id }`: a new API key
 * of the wallet's account. Errors: 400 `api.invalid_body` (not an EIP-4361 message),
 * 403 `auth.bad_account_proof` (signature, domain, chain or validity window), 401
 * `auth.replayed_nonce` (a nonce not issued here, expired, or used).
 */
export async function postWalletSignIn(request: Request, ctx: WalletApiContext): Promise<Response> {
  if (!ctx.wallets) return noWallets();
  if (!ctx.walletAccount || !ctx.createApiKey)
    return fail(
      "api.not_found",
      "this hub does not sign wallets in (it needs storage that keeps wallet accounts and `admin` operations to issue keys)",
    );
  const body = await signedBody(request, ctx.maxBodyBytes);
  if (body instanceof SrpError) return errorResponse(body);
  const fields = parseSiweMessage(body.message);
  const dates = [fields.issuedAt, fields.expirationTime, fields.notBefore];
  if (
    !fields.address ||
    !isAddress(fields.address, { strict: false }) ||
    !fields.domain ||
    !fields.nonce ||
    !fields.uri ||
    fields.version !== "1" ||
    fields.chainId === undefined ||
    !fields.issuedAt ||
    dates.some((d) => d !== undefined && Number.isNaN(d.getTime()))
  ) {
    return fail(
      "api.invalid_body",
      "`message` is not an EIP-4361 (Sign-In with Ethereum) message: it needs domain, address, URI, version 1, chain ID, nonce and issued-at",
    );
  }
  const now = new Date();
  const configured = ctx.host(request);
  if (configured === undefined)
    return fail(
      "api.forbidden",
      "wallet sign-in needs the hub's public URL (publicUrl / --public-url): a message's domain cannot be checked against a Host header",
    );
  const host = configured.toLowerCase();
  const proof = (why: string) => fail("auth.bad_account_proof", why);
  if (fields.domain.toLowerCase() !== host) return proof(`the message signs in to ${fields.domain}, not to this hub (${host})`);
  if (ctx.chainId !== undefined && fields.chainId !== ctx.chainId)
    return proof(`the message is for chain ${fields.chainId}; this hub is on chain ${ctx.chainId}`);
  if (fields.expirationTime && now >= fields.expirationTime) return proof(`the message expired at ${fields.expirationTime.toISOString()}`);
  if (fields.notBefore && now < fields.notBefore) return proof(`the message is valid only from ${fields.notBefore.toISOString()}`);
  if (!NONCE.test(fields.nonce))
    return fail("auth.replayed_nonce", "the nonce was not issued by this hub; get one from GET /v1/auth/nonce");
  if (!validateSiweMessage({ message: fields, domain: fields.domain, time: now }))
    return proof("the message does not validate as EIP-4361");
  if (!(await signedBy(fields.address, body.message, body.signature))) return proof(`the signature does not recover to ${fields.address}`);
  const address = fields.address.toLowerCase();
  try {
    // Last, so a refused message leaves the nonce usable; the UPDATE makes one use win.
    if (!(await ctx.wallets.consumeNonce(fields.nonce, now.getTime()))) {
      return fail("auth.replayed_nonce", "the nonce is unknown, expired or already used; get a fresh one from GET /v1/auth/nonce");
    }
    const accountId = await ctx.walletAccount(address);
    const { key, record } = await ctx.createApiKey(accountId, "wallet sign-in");
    return Response.json(
      { object: "srp.wallet_session", account_id: accountId, address, api_key: key, key_id: record.keyId },
      { headers: { "cache-control": "no-store" } },
    );
  } catch (error) {
    ctx.storageError("wallet sign-in", error);
    return fail("billing.unavailable", "the hub cannot sign wallets in now; retry shortly");
  }
}

function bindingJson(b: PayoutWalletBinding) {
  return {
    object: "srp.payout_wallet",
    node_id: b.nodeId,
    account_id: b.accountId,
    address: b.address,
    signature: b.signature,
    bound_at: b.boundAt,
  };
}

/**
 * `POST /v1/nodes/payout-wallet` (API key of the node's account) with
 * `{ node_id, address, signature }`: `signature` is `address`'s EIP-191 signature over
 * `payoutWalletMessage(node_id)`. The node must belong to the caller: connected now under
 * its account, or (when not connected) with receipts crediting it. Binds or rebinds the
 * node's payout wallet; answers `{ object: "srp.payout_wallet", node_id, account_id,
 * address, signature, bound_at }`.
 */
export async function postPayoutWallet(request: Request, ctx: WalletApiContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  if (!ctx.wallets) return noWallets();
  const body = await readJsonObject(request, ctx.maxBodyBytes);
  if (body instanceof SrpError) return errorResponse(body);
  const { node_id: nodeId, address, signature } = body;
  if (typeof nodeId !== "string" || !NODE_ID.test(nodeId))
    return fail("api.invalid_body", "`node_id` is the node's id (its Ed25519 public key, base64url)");
  if (typeof address !== "string" || !isAddress(address, { strict: false }))
    return fail("api.invalid_body", "`address` is a 0x-prefixed 20-byte hex wallet address");
  if (typeof signature !== "string" || !SIGNATURE.test(signature))
    return fail("api.invalid_body", "`signature` is a 0x-prefixed 65-byte hex EIP-191 signature");
  try {
    const connected = ctx.connectedAccount(nodeId);
    const owns = connected !== undefined ? connected === account.id : await ctx.wallets.nodeServedAccount(nodeId, account.id);
    if (!owns)
      return fail(
        "api.forbidden",
        `node ${nodeId} does not belong to this account: it is not connected under it and has no receipts crediting it`,
      );
    if (!(await signedBy(address, payoutWalletMessage(nodeId), signature))) {
      return fail("auth.bad_account_proof", `the signature is not ${address}'s over the payout wallet text of node ${nodeId}`);
    }
    const bound = await ctx.wallets.bindPayoutWallet({ nodeId, accountId: account.id, address, signature });
    return Response.json(bindingJson(bound));
  } catch (error) {
    ctx.storageError("bind a payout wallet", error);
    return fail("billing.unavailable", "the hub cannot bind payout wallets now; retry shortly");
  }
}

/** `GET /v1/nodes/payout-wallet?node_id=` (API key of the node's account): the node's binding, as `POST` answers it; 404 when it has none bound by this account. */
export async function getPayoutWallet(request: Request, ctx: WalletApiContext): Promise<Response> {
  const account = await authenticate(request, ctx.accounts);
  if (account instanceof SrpError) return errorResponse(account);
  if (!ctx.wallets) return noWallets();
  const nodeId = new URL(request.url).searchParams.get("node_id");
  if (nodeId === null || !NODE_ID.test(nodeId)) return fail("api.invalid_body", "`node_id` (query) is the node's id");
  try {
    const bound = await ctx.wallets.payoutBinding(nodeId);
    if (!bound || bound.accountId !== account.id) return fail("api.not_found", `node ${nodeId} has no payout wallet bound by this account`);
    return Response.json(bindingJson(bound));
  } catch (error) {
    ctx.storageError("read a payout wallet", error);
    return fail("billing.unavailable", "the hub cannot read payout wallets now; retry shortly");
  }
}
