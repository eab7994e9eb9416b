// The hub's web dashboard (docs/dashboard.md): sign-in with an API key, a wallet or the
// operator's admin token, then the consumer's, the provider's or the operator's pages,
// chosen by the hash of the URL (#/usage). Preact and htm render it; nothing is loaded
// from anywhere but this hub.
import { html } from "htm/preact";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, loadSession, saveSession } from "./api.js";
import { Keys, Overview, Requests, Usage } from "./consumer.js";
import { Accounts, Ledger, Network, Payments, Payouts } from "./operator.js";
import { Provider } from "./provider.js";
import { Problem } from "./ui.js";
import { hasWallet, walletSignIn } from "./wallet.js";

/** The pages per role: [hash, title, component]. */
const PAGES = {
  account: [
    ["account", "Account", Overview],
    ["usage", "Usage", Usage],
    ["keys", "API keys", Keys],
    ["requests", "Requests", Requests],
    ["provider", "Provider", Provider],
  ],
  operator: [
    ["network", "Network", Network],
    ["ledger", "Ledger", Ledger],
    ["accounts", "Accounts", Accounts],
    ["payments", "Payments", Payments],
    ["payouts", "Payouts", Payouts],
  ],
};

/** The page the hash names. */
function useHash() {
  const read = () => location.hash.replace(/^#\/?/, "");
  const [hash, setHash] = useState(read());
  useEffect(() => {
    const on = () => setHash(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

/** The sign-in forms: API key, wallet, admin token. */
function SignIn({ onSession }) {
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const attempt = async (make) => {
    setError(undefined);
    setBusy(true);
    try {
      onSession(await make());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const withKey = (e) => {
    e.preventDefault();
    const secret = new FormData(e.currentTarget).get("key").trim();
    attempt(async () => {
      const me = await api({ secret }, "v1/account");
      return { role: "account", secret, accountId: me.id };
    });
  };
  const withToken = (e) => {
    e.preventDefault();
    const secret = new FormData(e.currentTarget).get("token").trim();
    attempt(async () => {
      await api({ secret }, "admin/v1/sessions");
      return { role: "operator", secret };
    });
  };
  return html`<main id="main" class="signin">
    <h1>SRP hub dashboard</h1>
    <p>Sign in to see your balance, usage, keys and receipts, your nodes and earnings, or, as the operator, the network and its books.</p>
    <${Problem} error=${error} />
    <div class="cards">
      <form onSubmit=${withKey} aria-labelledby="key-title" class="card">
        <h2 id="key-title">API key</h2>
        <label for="signin-key">Your account's API key</label>
        <input id="signin-key" name="key" type="password" autocomplete="off" required />
        <p class="muted">Kept in this tab only (session storage).</p>
        <button type="submit" disabled=${busy}>Sign in</button>
      </form>
      <section aria-labelledby="wallet-title" class="card">
        <h2 id="wallet-title">Wallet</h2>
        <p>Sign in with Ethereum (EIP-4361): your wallet signs a one-time message; no transaction, no fee.</p>
        ${
          hasWallet()
            ? html`<button type="button" disabled=${busy} onClick=${() => attempt(walletSignIn)}>Sign in with a wallet</button>`
            : html`<p class="muted">No wallet found in this browser.</p>`
        }
      </section>
      <form onSubmit=${withToken} aria-labelledby="op-title" class="card">
        <h2 id="op-title">Operator</h2>
        <label for="signin-token">Admin token</label>
        <input id="signin-token" name="token" type="password" autocomplete="off" required />
        <button type="submit" disabled=${busy}>Sign in as operator</button>
      </form>
    </div>
  </main>`;
}

/** The signed-in shell: skip link, header, navigation landmark, the page. */
function Shell({ session, onSignOut }) {
  const hash = useHash();
  const pages = PAGES[session.role];
  const [, , Current] = pages.find(([h]) => h === hash) ?? pages[0];
  const current = (pages.find(([h]) => h === hash) ?? pages[0])[0];
  useEffect(() => {
    // Move focus to the new page's heading, so keyboard and screen-reader users land on it.
    if (hash) document.getElementById("page-title")?.focus();
  }, [hash]);
  return html`<a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <span class="brand">SRP hub</span>
      <span class="who">
        ${session.role === "operator" ? "Operator" : html`Account <code>${session.accountId}</code>`}
        ${session.address ? html` · wallet <code>${session.address}</code>` : ""}
      </span>
      <button type="button" class="secondary" onClick=${onSignOut}>Sign out</button>
    </header>
    <nav aria-label="Dashboard sections" class="nav">
      <ul>
        ${pages.map(
          ([h, title]) => html`<li><a href=${`#/${h}`} aria-current=${h === current ? "page" : undefined} data-page=${h}>${title}</a></li>`,
        )}
      </ul>
    </nav>
    <main id="main"><${Current} session=${session} /></main>`;
}

/** The dashboard. */
function App() {
  const [session, setSession] = useState(loadSession());
  const set = (s) => {
    saveSession(s);
    setSession(s);
    if (s) location.hash = `#/${PAGES[s.role][0][0]}`;
  };
  return session ? html`<${Shell} session=${session} onSignOut=${() => set(null)} />` : html`<${SignIn} onSession=${set} />`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading…" placeholder
render(html`<${App} />`, root);
