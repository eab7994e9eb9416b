// The operator's pages (admin token): the network (models, supply and demand, breakers,
// requests waiting, sessions), the ledger (verification of every invariant, top earners
// and spenders, disputes), accounts, x402 payments and on-chain payouts.
import { html } from "htm/preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, useLoad } from "./api.js";
import { money, short, when } from "./format.js";
import { Figures, Loaded, Page } from "./ui.js";

/** Models, supply and demand per model, and every instance with its breaker. */
export function Network({ session }) {
  const network = useLoad(() => api(session, "admin/v1/network"), [session]);
  const pricing = useLoad(() => api(session, "v1/pricing"), [session]);
  return html`<${Page} title="Network" actions=${html`<button type="button" class="secondary" onClick=${network.reload}>Refresh</button>`}>
    <${Loaded} state=${network}>
      ${(n) => html`<${Figures}
          items=${[
            ["Provider sessions", String(n.sessions), "sessions"],
            ["Models online", String(n.models.length), "models-online"],
            ["Instances", String(n.instances.length)],
            ["Requests waiting", String(n.models.reduce((a, m) => a + m.waiting, 0))],
          ]}
        />
        <h2>Supply and demand</h2>
        <div class="scroll">
          <table class="network">
            <caption class="sr-only">Supply and demand per model</caption>
            <thead>
              <tr>
                <th scope="col">Model</th><th scope="col">Instances</th><th scope="col">Slots</th><th scope="col">Running</th>
                <th scope="col">Waiting</th><th scope="col">Breakers (closed / parked / probing)</th>
              </tr>
            </thead>
            <tbody>
              ${n.models.map(
                (m) => html`<tr data-model=${m.model}>
                  <td>${m.model}</td><td>${m.instances}</td><td>${m.capacity}</td><td>${m.active}</td><td>${m.waiting}</td>
                  <td>${m.breakers.closed} / ${m.breakers.parked} / ${m.breakers.probing + m.breakers.probe_due}</td>
                </tr>`,
              )}
            </tbody>
          </table>
        </div>
        <h2>Instances</h2>
        <div class="scroll">
          <table>
            <caption class="sr-only">Instances online</caption>
            <thead>
              <tr><th scope="col">Instance</th><th scope="col">Model</th><th scope="col">Jobs / slots</th><th scope="col">Breaker</th><th scope="col">Health</th><th scope="col">Since</th></tr>
            </thead>
            <tbody>
              ${n.instances.map(
                (i) => html`<tr>
                  <td><code title=${i.key}>${short(i.key, 14)}</code></td><td>${i.model}</td><td>${i.active} / ${i.capacity}</td>
                  <td class=${i.breaker === "closed" ? "ok" : "bad"}>${i.breaker}</td><td>${Math.round(i.health * 100)} %</td>
                  <td>${when(i.first_seen)}</td>
                </tr>`,
              )}
            </tbody>
          </table>
        </div>`}
    <//>
    <h2>Prices</h2>
    <${Loaded} state=${pricing}>
      ${(p) => html`<table>
        <caption class="sr-only">Prices per model</caption>
        <thead><tr><th scope="col">Model</th><th scope="col">Input per 1M</th><th scope="col">Output per 1M</th></tr></thead>
        <tbody>
          ${p.models.map(
            (m) => html`<tr>
              <td>${m.model}</td>
              <td>${money(m.per_million_tokens.input.min)}–${money(m.per_million_tokens.input.max)}</td>
              <td>${money(m.per_million_tokens.output.min)}–${money(m.per_million_tokens.output.max)}</td>
            </tr>`,
          )}
        </tbody>
      </table>`}
    <//>
  <//>`;
}

/** Ledger verification, top earners and spenders, disputes. */
export function Ledger({ session }) {
  const verify = useLoad(() => api(session, "admin/v1/ledger/verify"), [session]);
  const earners = useLoad(() => api(session, "admin/v1/ledger/top?by=earned&limit=10"), [session]);
  const spenders = useLoad(() => api(session, "admin/v1/ledger/top?by=spent&limit=10"), [session]);
  const disputes = useLoad(() => api(session, "admin/v1/disputes"), [session]);
  const top = (title, state) => html`<div>
    <h2>${title}</h2>
    <${Loaded} state=${state}>
      ${(t) => html`<table>
        <caption class="sr-only">${title}</caption>
        <thead><tr><th scope="col">Account</th><th scope="col">Amount</th><th scope="col">Jobs</th></tr></thead>
        <tbody>
          ${t.data.map((r) => html`<tr><td><code>${r.account}</code></td><td>${money(r.amount)}</td><td>${r.jobs}</td></tr>`)}
        </tbody>
      </table>`}
    <//>
  </div>`;
  return html`<${Page} title="Ledger" actions=${html`<button type="button" onClick=${verify.reload}>Verify again</button>`}>
    <${Loaded} state=${verify}>
      ${(v) => html`<p class=${v.ok ? "ok big" : "bad big"} data-testid="ledger-verify" role="status">
          ${v.ok ? "✓ The books balance: every invariant holds." : `✗ ${v.problems.length} problem(s)`}
        </p>
        ${v.problems.length > 0 && html`<ul>${v.problems.map((p) => html`<li>${typeof p === "string" ? p : JSON.stringify(p)}</li>`)}</ul>`}`}
    <//>
    <div class="two">${top("Top earners", earners)} ${top("Top spenders", spenders)}</div>
    <h2>Disputes</h2>
    <${Loaded} state=${disputes}>
      ${(d) =>
        d.data.length === 0
          ? html`<p>No disputes.</p>`
          : html`<table>
              <caption class="sr-only">Disputes</caption>
              <thead><tr><th scope="col">Received</th><th scope="col">Node</th><th scope="col">Account</th><th scope="col">Dispute</th></tr></thead>
              <tbody>
                ${d.data.map(
                  (x) =>
                    html`<tr><td>${when(x.received_at)}</td><td><code>${short(x.node_id)}</code></td><td><code>${x.account_id}</code></td><td><code>${JSON.stringify(x.dispute)}</code></td></tr>`,
                )}
              </tbody>
            </table>`}
    <//>
  <//>`;
}

/** Accounts and their money. */
export function Accounts({ session }) {
  const accounts = useLoad(() => api(session, "admin/v1/accounts"), [session]);
  return html`<${Page} title="Accounts">
    <${Loaded} state=${accounts}>
      ${(a) => html`<div class="scroll">
        <table>
          <caption class="sr-only">Accounts</caption>
          <thead><tr><th scope="col">Account</th><th scope="col">Name</th><th scope="col">Created</th></tr></thead>
          <tbody>
            ${a.data.map(
              (x) => html`<tr><td><code>${x.id}</code></td><td>${x.name ?? "—"}</td><td>${when(x.createdAt ?? x.created_at)}</td></tr>`,
            )}
          </tbody>
        </table>
      </div>
      <p class="muted">x402 payments and on-chain payouts have pages of their own: <a href="#/payments">Payments</a>, <a href="#/payouts">Payouts</a>.</p>`}
    <//>
  <//>`;
}

/** Rows per page of the paged lists. */
const PAGE = 50;

/** A list the admin API pages (`data`, `next`): the rows so far, and the next page on demand. */
function usePaged(session, path) {
  const [state, setState] = useState({ data: undefined, next: null, error: undefined, loading: true });
  const page = useCallback(
    (before) => api(session, `${path}?${new URLSearchParams(before ? { limit: String(PAGE), before } : { limit: String(PAGE) })}`),
    [session, path],
  );
  const reload = useCallback(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    page(null).then(
      (p) => live && setState({ data: p.data, next: p.next, error: undefined, loading: false }),
      (error) => live && setState({ data: undefined, next: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [page]);
  useEffect(reload, [reload]);
  const more = async () => {
    if (!state.next || state.loading) return;
    setState((s) => ({ ...s, loading: true }));
    try {
      const p = await page(state.next);
      setState((s) => ({ data: [...s.data, ...p.data], next: p.next, error: undefined, loading: false }));
    } catch (error) {
      setState((s) => ({ ...s, error, loading: false }));
    }
  };
  return { ...state, reload, more };
}

/** A paged table: its caption, header cells, one row per item (or the empty note), and "Show more" while there is more. */
function PagedTable({ state, caption, head, row, empty, testid }) {
  return html`<${Loaded} state=${state}>
    ${(rows) => html`<div class="scroll">
        <table data-testid=${testid}>
          <caption class="sr-only">${caption}</caption>
          <thead><tr>${head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
          <tbody>
            ${rows.length === 0 ? html`<tr><td colspan=${head.length} class="muted">${empty}</td></tr>` : rows.map(row)}
          </tbody>
        </table>
      </div>
      <p class="muted" role="status">${rows.length} listed${state.next ? ", more to show" : ""}.</p>
      ${state.next && html`<button type="button" class="secondary" disabled=${state.loading} onClick=${state.more}>Show more</button>`}`}
  <//>`;
}

/** A transaction hash, short, with the whole of it as its title; or a dash. */
function txCell(hash) {
  return hash ? html`<code title=${hash}>${short(hash, 12)}</code>` : "—";
}

/** The hub's x402 payments, newest first: payer, amount, settlement state, network. */
export function Payments({ session }) {
  const payments = usePaged(session, "admin/v1/payments");
  const tone = (state) => (state === "settled" ? "ok" : state === "failed" ? "bad" : undefined);
  return html`<${Page} title="Payments" actions=${html`<button type="button" class="secondary" onClick=${payments.reload}>Refresh</button>`}>
    <p class="muted">x402 payments the hub accepted, newest first: each one's payer, the account it credited, and its settlement.</p>
    <${PagedTable}
      state=${payments}
      testid="payments"
      caption="x402 payments"
      head=${["Created", "Payment", "Payer", "Account", "Amount", "State", "Network", "Settlement"]}
      empty="No x402 payments yet."
      row=${(p) => html`<tr data-id=${p.id}>
        <td>${when(p.created_at)}</td><td><code title=${p.id}>${short(p.id, 12)}</code></td><td><code title=${p.payer}>${short(p.payer, 10)}</code></td>
        <td><code>${p.account_id}</code></td><td>${money(p.amount)}</td>
        <td class=${tone(p.state)} title=${p.error ?? undefined}>${p.state}</td><td>${p.network}</td><td>${txCell(p.tx_hash)}</td>
      </tr>`}
    />
  <//>`;
}

/** The payout vouchers the hub issued, newest first: payee, amount, protocol fee, where each is on-chain. */
export function Payouts({ session }) {
  const payouts = usePaged(session, "admin/v1/payouts");
  return html`<${Page} title="Payouts" actions=${html`<button type="button" class="secondary" onClick=${payouts.reload}>Refresh</button>`}>
    <p class="muted">
      Hub-signed payout vouchers, newest first. A voucher carries its payee's running total; it is issued, then funded (its money moved into
      the settlement contract), then claimed.
    </p>
    <${PagedTable}
      state=${payouts}
      testid="payouts"
      caption="Payout vouchers"
      head=${["Created", "Voucher", "Account", "Payee", "Amount", "Protocol fee", "Running total", "State", "Funding", "Claim"]}
      empty="No payouts yet."
      row=${(p) => html`<tr data-id=${p.id}>
        <td>${when(p.created_at)}</td><td><code title=${p.id}>${short(p.id, 12)}</code></td><td><code>${p.account_id}</code></td>
        <td><code title=${p.payee}>${short(p.payee, 10)}</code></td><td>${money(p.amount)}</td><td>${money(p.fee)}</td><td>${money(p.total)}</td>
        <td class=${p.state === "claimed" ? "ok" : undefined}>${p.state}</td><td>${txCell(p.funded_tx)}</td><td>${txCell(p.claim_tx)}</td>
      </tr>`}
    />
  <//>`;
}
