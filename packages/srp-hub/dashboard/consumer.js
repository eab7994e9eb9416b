// The consumer's pages: overview (balance and prepaid tier), usage (requests, spend and
// earnings over time), API keys (budgets, limits, create, edit, revoke) and requests with
// their receipts, each verified here in the browser with @srp/core's verifier against the
// hub's key from its discovery document.
import { verifyReceipt } from "@srp/core";
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api, fullHistory, useLoad } from "./api.js";
import { BarChart } from "./chart.js";
import { activity, buckets, intInput, listInput, money, short, usdInput, usdOf, when } from "./format.js";
import { Figures, Loaded, Page, Problem } from "./ui.js";

/** Balance, prepaid tier, spend and earnings (`GET /v1/account`), and the tiers on offer (`GET /v1/pricing`). */
export function Overview({ session }) {
  const account = useLoad(() => api(session, "v1/account"), [session]);
  const pricing = useLoad(() => api(session, "v1/pricing"), [session]);
  return html`<${Page} title="Account">
    <${Loaded} state=${account}>
      ${(a) => html`<${Figures}
          items=${[
            ["Account", html`<code>${a.id}</code>`, "account-id"],
            ["Balance", money(a.balance), "balance"],
            ["Held for requests in flight", money(a.held)],
            ["Prepaid", money(a.prepaid)],
            ["Prepaid tier", a.tier ? `${a.tier.discount_bps / 100} % off (from ${money(a.tier.min_deposit)})` : "none", "tier"],
            ["Spent", money(a.spent), "spent"],
            ["Earned", money(a.earned), "earned"],
            ["Requests", String(a.requests), "requests"],
          ]}
        />`}
    <//>
    <h2>Prepaid tiers</h2>
    <${Loaded} state=${pricing}>
      ${(
        p,
      ) => html`<p>Deposits buy a discount on every request while the prepaid money lasts; the unused balance can be refunded to the depositor.</p>
        <table>
          <caption class="sr-only">Prepaid tiers</caption>
          <thead><tr><th scope="col">Deposit from</th><th scope="col">Discount</th></tr></thead>
          <tbody>
            ${p.prepaid_tiers.map((t) => html`<tr><td>${money(t.min_deposit)}</td><td>${t.discount}</td></tr>`)}
          </tbody>
        </table>
        ${p.signup_credits ? html`<p>New accounts get ${money(p.signup_credits)} of signup credits.</p>` : null}`}
    <//>
  <//>`;
}

/** Requests, spend and earnings over time, from the account's ledger history. */
export function Usage({ session }) {
  const state = useLoad(async () => {
    const [me, history] = await Promise.all([api(session, "v1/account"), fullHistory(session)]);
    return { me, items: activity(history, me.id) };
  }, [session]);
  return html`<${Page} title="Usage">
    <${Loaded} state=${state}>
      ${({ items }) => {
        const { unit, buckets: b } = buckets(items);
        const labels = b.map((x) => x.label);
        return html`<p>Per ${unit}, from the account's ledger (settled requests only; failed requests are never billed).</p>
          <div class="charts">
            <${BarChart} id="requests" title="Requests" values=${b.map((x) => x.requests)} labels=${labels} />
            <${BarChart} id="spend" title="Spend" values=${b.map((x) => x.spent)} labels=${labels} format=${usdOf} />
          </div>`;
      }}
    <//>
  <//>`;
}

/** The hub's id from its discovery document (the key its countersignatures verify with). */
function useHubId() {
  return useLoad(async () => (await api(null, ".well-known/srp.json")).hubId, []);
}

/** One receipt, fetched and verified in the browser. */
function ReceiptCheck({ session, jobId, hubId }) {
  const state = useLoad(async () => {
    const r = await api(session, `v1/receipts/${encodeURIComponent(jobId)}`);
    const problems = verifyReceipt(r.receipt, { hubId });
    if (r.hub_id !== hubId)
      problems.push({ code: "receipt.field_mismatch", message: `the answer names hub ${r.hub_id}, discovery ${hubId}` });
    return { receipt: r.receipt, problems };
  }, [session, jobId, hubId]);
  if (state.error) return html`<td colspan="4"><${Problem} error=${state.error} /></td>`;
  if (!state.data) return html`<td colspan="4" role="status">verifying…</td>`;
  const { receipt: r, problems } = state.data;
  const ok = problems.length === 0;
  return html`<td>${r.model}</td>
    <td>${r.usage.promptTokens} in, ${r.usage.completionTokens} out${r.usage.measured ? "" : " (not measured)"}</td>
    <td>${usdOf(r.cost)}</td>
    <td>
      <span class=${ok ? "ok" : "bad"} data-testid=${`receipt-${jobId}`}
        >${ok ? "✓ verified" : `✗ ${problems.map((p) => p.code).join(", ")}`}</span
      >
      <details>
        <summary>Receipt</summary>
        <dl class="receipt">
          <dt>Node</dt><dd><code>${r.nodeId}</code></dd>
          <dt>Instance</dt><dd><code>${r.instanceId}</code></dd>
          <dt>Sequence</dt><dd>${r.seq}</dd>
          <dt>Price per 1M tokens</dt><dd>${usdOf(r.price.input)} in, ${usdOf(r.price.output)} out</dd>
          <dt>Request hash</dt><dd><code>${r.requestHash}</code></dd>
          <dt>Node signature</dt><dd><code>${r.nodeSig}</code></dd>
          <dt>Hub countersignature</dt><dd><code>${r.hubSig}</code></dd>
        </dl>
        ${problems.map((p) => html`<p class="problem">${p.code}: ${p.message}</p>`)}
      </details>
    </td>`;
}

/** The account's requests (newest first) with their receipts, verified. */
export function Requests({ session }) {
  const hub = useHubId();
  const state = useLoad(async () => {
    const [me, history] = await Promise.all([api(session, "v1/account"), fullHistory(session, 500)]);
    return activity(history, me.id)
      .filter((a) => a.consumer)
      .slice(0, 50);
  }, [session]);
  return html`<${Page} title="Requests">
    <p>
      Each request's receipt is signed by the node that served it and countersigned by the hub; this page checks both signatures,
      the cost against the usage and the price, and that the hub is this one
      ${hub.data ? html` (<code title=${hub.data}>${short(hub.data)}</code>)` : ""}.
    </p>
    <${Loaded} state=${hub}>
      ${(hubId) => html`<${Loaded} state=${state}>
        ${(rows) =>
          rows.length === 0
            ? html`<p>No requests yet.</p>`
            : html`<div class="scroll">
                <table class="requests">
                  <caption class="sr-only">Requests and receipts</caption>
                  <thead>
                    <tr>
                      <th scope="col">When</th><th scope="col">Job</th><th scope="col">Charged</th><th scope="col">Model</th>
                      <th scope="col">Tokens</th><th scope="col">Receipt cost</th><th scope="col">Receipt</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${rows.map(
                      (row) => html`<tr key=${row.jobId}>
                        <td>${when(row.at)}</td>
                        <td><code title=${row.jobId}>${short(row.jobId, 12)}</code></td>
                        <td>${usdOf(row.spent)}</td>
                        <${ReceiptCheck} session=${session} jobId=${row.jobId} hubId=${hubId} />
                      </tr>`,
                    )}
                  </tbody>
                </table>
              </div>`}
      <//>`}
    <//>
  <//>`;
}

/** A key's policy as form fields (strings), from a Key (or empty). */
function fieldsOf(k) {
  const usd = (m) => (m ? m.usd : "");
  return {
    label: k?.label ?? "",
    tags: (k?.tags ?? []).join(", "),
    models: (k?.models ?? []).join(", "),
    expires: k?.expires_at ? new Date(k.expires_at).toISOString().slice(0, 10) : "",
    total: usd(k?.budget?.total),
    day: usd(k?.budget?.day),
    month: usd(k?.budget?.month),
    rpm: k?.limits?.rpm ?? "",
    tpm: k?.limits?.tpm ?? "",
    concurrency: k?.limits?.concurrency ?? "",
  };
}

/** The policy body of a form: on create, empty fields are left out; on edit, empty fields clear (null). Throws on bad input. */
function policyOf(f, editing) {
  const opt = (v) => (v === undefined ? (editing ? null : undefined) : v);
  const expires = f.expires.trim() ? Date.parse(`${f.expires.trim()}T23:59:59Z`) : undefined;
  if (Number.isNaN(expires)) throw new Error("the expiry is a date (YYYY-MM-DD)");
  const body = {
    label: f.label.trim() || (editing ? null : undefined),
    tags: listInput(f.tags) ?? (editing ? [] : undefined),
    models: opt(listInput(f.models)),
    expires_at: opt(expires),
    budget: { total: opt(usdInput(f.total)), day: opt(usdInput(f.day)), month: opt(usdInput(f.month)) },
    limits: { rpm: opt(intInput(f.rpm)), tpm: opt(intInput(f.tpm)), concurrency: opt(intInput(f.concurrency)) },
  };
  return JSON.parse(JSON.stringify(body));
}

/** The create / edit form of a key's policy. */
function KeyForm({ initial, submitLabel, onSubmit, onCancel, idPrefix }) {
  const [f, setF] = useState(fieldsOf(initial));
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const field = (name, label, hint, type = "text") => html`<label for=${`${idPrefix}-${name}`}
    >${label}${hint ? html` <span class="muted">${hint}</span>` : ""}
    <input
      id=${`${idPrefix}-${name}`}
      name=${name}
      type=${type}
      value=${f[name]}
      onInput=${(e) => setF({ ...f, [name]: e.currentTarget.value })}
    />
  </label>`;
  const submit = async (e) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      await onSubmit(policyOf(f, initial !== undefined));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="key-form" onSubmit=${submit} aria-describedby=${`${idPrefix}-help`}>
    <p id=${`${idPrefix}-help`} class="muted">Amounts in USD; empty means no limit. Budgets run per UTC day and calendar month.</p>
    <fieldset>
      <legend>Key</legend>
      ${field("label", "Label")} ${field("tags", "Tags", "(comma-separated)")} ${field("models", "Allowed models", "(empty: any)")}
      ${field("expires", "Expires", "(date)", "date")}
    </fieldset>
    <fieldset>
      <legend>Budget (USD)</legend>
      ${field("total", "Total")} ${field("day", "Per day")} ${field("month", "Per month")}
    </fieldset>
    <fieldset>
      <legend>Rate limits</legend>
      ${field("rpm", "Requests per minute")} ${field("tpm", "Tokens per minute")} ${field("concurrency", "Requests in flight")}
    </fieldset>
    <${Problem} error=${error} />
    <div class="row">
      <button type="submit" disabled=${busy}>${submitLabel}</button>
      ${onCancel ? html`<button type="button" class="secondary" onClick=${onCancel}>Cancel</button>` : null}
    </div>
  </form>`;
}

/** A budget of a key: spent of budget. */
function budgetText(spent, budget) {
  return budget ? `${money(spent)} of ${money(budget)}` : `${money(spent)}`;
}

/** API keys with their budgets and limits (`/v1/account/keys`): create, edit, revoke. */
export function Keys({ session }) {
  const keys = useLoad(() => api(session, "v1/account/keys"), [session]);
  const tags = useLoad(() => api(session, "v1/account/spend?by=tag"), [session]);
  const [created, setCreated] = useState(undefined);
  const [editing, setEditing] = useState(undefined);
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState(undefined);
  const refresh = () => {
    keys.reload();
    tags.reload();
  };
  const create = async (policy) => {
    const k = await api(session, "v1/account/keys", { method: "POST", body: policy });
    setCreated(k);
    setCreating(false);
    refresh();
  };
  const update = async (id, policy) => {
    await api(session, `v1/account/keys/${encodeURIComponent(id)}`, { method: "PATCH", body: policy });
    setEditing(undefined);
    refresh();
  };
  const revoke = async (k) => {
    if (!confirm(`Revoke ${k.label || k.prefix}? Requests with it fail from now on.`)) return;
    setError(undefined);
    try {
      await api(session, `v1/account/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
      refresh();
    } catch (err) {
      setError(err);
    }
  };
  if (keys.error?.status === 404)
    return html`<${Page} title="API keys"><p>This hub does not manage keys over its API (<code>${keys.error.code}</code>).</p><//>`;
  return html`<${Page}
    title="API keys"
    actions=${html`<button type="button" onClick=${() => setCreating(!creating)} aria-expanded=${creating}>New key</button>`}
  >
    ${
      created &&
      html`<div class="notice" role="status">
        <p>Key <strong>${created.label || created.prefix}</strong> created. Copy it now: it is not shown again.</p>
        <p><code data-testid="new-key" class="secret">${created.api_key}</code></p>
        <button type="button" class="secondary" onClick=${() => setCreated(undefined)}>Done</button>
      </div>`
    }
    ${creating && html`<${KeyForm} idPrefix="new" submitLabel="Create key" onSubmit=${create} onCancel=${() => setCreating(false)} />`}
    <${Problem} error=${error} />
    <${Loaded} state=${keys}>
      ${(list) => html`<div class="scroll">
        <table class="keys">
          <caption class="sr-only">API keys</caption>
          <thead>
            <tr>
              <th scope="col">Key</th><th scope="col">Tags</th><th scope="col">Spent / budget</th><th scope="col">Limits</th>
              <th scope="col">Models</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            ${list.data.map(
              (k) => html`<tr key=${k.id} data-key=${k.id} class=${k.revoked_at ? "revoked" : ""}>
                <td>
                  <strong>${k.label || "—"}</strong>
                  <div><code>${k.prefix}</code></div>
                  ${session.secret.startsWith(k.prefix.replace(/…$/, "")) ? html`<div class="muted">this session's key</div>` : null}
                </td>
                <td>${k.tags.join(", ") || "—"}</td>
                <td>
                  <div>total ${budgetText(k.spent?.total, k.budget?.total)}</div>
                  <div>day ${budgetText(k.spent?.day, k.budget?.day)}</div>
                  <div>month ${budgetText(k.spent?.month, k.budget?.month)}</div>
                </td>
                <td>
                  <div>${k.limits?.rpm ?? "∞"} req/min</div>
                  <div>${k.limits?.tpm ?? "∞"} tokens/min</div>
                  <div>${k.limits?.concurrency ?? "∞"} in flight</div>
                </td>
                <td>${k.models ? k.models.join(", ") : "any"}</td>
                <td>${k.revoked_at ? `revoked ${when(k.revoked_at)}` : when(k.expires_at)}</td>
                <td class="actions">
                  ${
                    k.revoked_at
                      ? null
                      : html`<button type="button" class="secondary" onClick=${() => setEditing(editing === k.id ? undefined : k.id)}
                            aria-label=${`Edit ${k.label || k.prefix}`}>Edit</button>
                          <button type="button" class="danger" onClick=${() => revoke(k)} aria-label=${`Revoke ${k.label || k.prefix}`}>
                            Revoke
                          </button>`
                  }
                </td>
              </tr>
              ${
                editing === k.id &&
                html`<tr>
                  <td colspan="7">
                    <${KeyForm}
                      idPrefix=${`edit-${k.id}`}
                      initial=${k}
                      submitLabel="Save"
                      onSubmit=${(p) => update(k.id, p)}
                      onCancel=${() => setEditing(undefined)}
                    />
                  </td>
                </tr>`
              }`,
            )}
          </tbody>
        </table>
      </div>`}
    <//>
    <h2>Spend by tag</h2>
    <${Loaded} state=${tags}>
      ${(t) =>
        t.data.length === 0
          ? html`<p>No tagged spend yet.</p>`
          : html`<table>
              <caption class="sr-only">Spend by tag</caption>
              <thead><tr><th scope="col">Tag</th><th scope="col">Today</th><th scope="col">This month</th><th scope="col">Total</th><th scope="col">Requests</th></tr></thead>
              <tbody>
                ${t.data.map(
                  (r) =>
                    html`<tr><td>${r.tag}</td><td>${money(r.spent.day)}</td><td>${money(r.spent.month)}</td><td>${money(r.spent.total)}</td><td>${r.requests}</td></tr>`,
                )}
              </tbody>
            </table>`}
    <//>
  <//>`;
}
