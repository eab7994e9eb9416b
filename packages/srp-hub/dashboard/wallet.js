// Wallet sign-in from the browser: an EIP-4361 (Sign-In with Ethereum) message for this
// hub, signed by the wallet the browser provides (`window.ethereum`, EIP-1193), exchanged
// at the hub's `POST /v1/auth/wallet` for an API key of the wallet's account.
import { api, apiBase } from "./api.js";

/** Whether the browser has a wallet. */
export function hasWallet() {
  return typeof window.ethereum?.request === "function";
}

/** The EIP-4361 message text (pure). */
export function siweMessage({ domain, address, uri, chainId, nonce, issuedAt, expirationTime }) {
  return [
    `${domain} wants you to sign in with your Ethereum account:`,
    address,
    "",
    "Sign in to the SRP hub dashboard.",
    "",
    `URI: ${uri}`,
    "Version: 1",
    `Chain ID: ${chainId}`,
    `Nonce: ${nonce}`,
    `Issued At: ${issuedAt}`,
    `Expiration Time: ${expirationTime}`,
  ].join("\n");
}

/** UTF-8 text as 0x-hex, as `personal_sign` takes it. */
function hexOf(text) {
  return `0x${[...new TextEncoder().encode(text)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The chain a hub that takes x402 payments signs wallets in on (its x402 discovery's `eip155:N`), or undefined. */
async function hubChain() {
  try {
    const d = await api(null, ".well-known/x402");
    for (const a of d?.accepts ?? []) {
      const m = /^eip155:([0-9]+)$/.exec(String(a.network ?? ""));
      if (m) return Number(m[1]);
    }
  } catch {
    // no x402 on this hub: any chain signs in
  }
  return undefined;
}

/** Signs in with the browser's wallet; resolves to the session ({ role: "account", secret, accountId, address }). */
export async function walletSignIn() {
  const eth = window.ethereum;
  const [address] = await eth.request({ method: "eth_requestAccounts" });
  let chainId = Number.parseInt(await eth.request({ method: "eth_chainId" }), 16);
  const wanted = await hubChain();
  if (wanted !== undefined && wanted !== chainId) {
    // The hub takes payments on one chain and signs in on that chain only: ask the wallet to switch.
    await eth.request({ method: "wallet_switchEthereumChain", params: [{ chainId: `0x${wanted.toString(16)}` }] });
    chainId = wanted;
  }
  const { nonce } = await api(null, "v1/auth/nonce");
  const now = Date.now();
  const message = siweMessage({
    domain: apiBase.host,
    address,
    uri: apiBase.origin,
    chainId,
    nonce,
    issuedAt: new Date(now).toISOString(),
    expirationTime: new Date(now + 5 * 60_000).toISOString(),
  });
  const signature = await eth.request({ method: "personal_sign", params: [hexOf(message), address] });
  const s = await api(null, "v1/auth/wallet", { method: "POST", body: { message, signature } });
  return { role: "account", secret: s.api_key, accountId: s.account_id, address: s.address };
}
