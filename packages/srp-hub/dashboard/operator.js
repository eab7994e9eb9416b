// The operator's pages (admin token): the network (models, supply and demand, breakers,
// requests waiting, sessions), the ledger (verification of every invariant, top earners
// and spenders, disputes) and accounts.
import { html } from "htm/preact";
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
      <p class="muted">
        Payments (x402 settlements) and on-chain payouts are in the ledger's history per account and in the hub's metrics; the admin API
        lists no payments of its own yet.
      </p>`}
    <//>
  <//>`;
}
