// The provider's pages: its connected nodes with their instances and health, earnings
// over time (from the ledger), signed statements and disputes, payout wallets, and
// claiming earnings on-chain with a payout voucher.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api, fullHistory, useLoad } from "./api.js";
import { BarChart } from "./chart.js";
import { activity, buckets, money, short, usdOf, when } from "./format.js";
import { Figures, Loaded, Page, Problem } from "./ui.js";

/** An instance's health (0..1) as a percentage. */
const pct = (x) => `${Math.round(x * 100)} %`;

/** One node: its instances, payout wallet and statements. */
function Node({ node }) {
  return html`<article class="node" aria-labelledby=${`node-${node.node_id}`}>
    <h3 id=${`node-${node.node_id}`}>Node <code title=${node.node_id}>${short(node.node_id, 12)}</code></h3>
    <p class="muted">Protocol v${node.version}, last seen ${when(node.last_seen)}.</p>
    <p>
      ${"Payout wallet: "}
      ${node.payout_wallet ? html`<code>${node.payout_wallet.address}</code> (since ${when(node.payout_wallet.bound_at)})` : "none bound"}
    </p>
    <div class="scroll">
      <table>
        <caption class="sr-only">Instances of this node</caption>
        <thead>
          <tr>
            <th scope="col">Instance</th><th scope="col">Model</th><th scope="col">Price per 1M (in / out)</th><th scope="col">Jobs / slots</th>
            <th scope="col">Breaker</th><th scope="col">Health</th>
          </tr>
        </thead>
        <tbody>
          ${node.instances.map(
            (i) => html`<tr>
              <td><code>${i.key.split("/").pop()}</code></td>
              <td>${i.model}</td>
              <td>${usdOf(i.price.input ?? "0")} / ${usdOf(i.price.output ?? "0")}</td>
              <td>${i.active} / ${i.capacity}</td>
              <td class=${i.breaker === "closed" ? "ok" : "bad"}>${i.breaker}</td>
              <td>${pct(i.health)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <h4>Statements</h4>
    ${
      node.statements.length === 0
        ? html`<p class="muted">No statement yet (the hub issues them periodically).</p>`
        : html`<table>
            <caption class="sr-only">Statements of this node</caption>
            <thead><tr><th scope="col">Issued</th><th scope="col">Receipts</th><th scope="col">Earned</th><th scope="col">Paid</th><th scope="col">Balance</th></tr></thead>
            <tbody>
              ${node.statements.map(
                (s) => html`<tr>
                  <td>${when(s.issued_at)}</td>
                  <td>${s.receipts.count} (seq ${s.receipts.firstSeq}–${s.receipts.lastSeq})</td>
                  <td>${money(s.earned)}</td>
                  <td>${money(s.paid)}</td>
                  <td>${money(s.balance)}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
    }
  </article>`;
}

/** Earnings and the claim of a payout voucher. */
function Earnings({ session }) {
  const state = useLoad(async () => {
    const [me, history] = await Promise.all([api(session, "v1/account"), fullHistory(session)]);
    return { me, items: activity(history, me.id).filter((a) => a.earned > 0n) };
  }, [session]);
  const [voucher, setVoucher] = useState(undefined);
  const [error, setError] = useState(undefined);
  const claim = async () => {
    setError(undefined);
    try {
      setVoucher(await api(session, "v1/payouts/voucher", { method: "POST" }));
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Loaded} state=${state}>
    ${({ me, items }) => {
      const { unit, buckets: b } = buckets(items);
      return html`<${Figures}
          items=${[
            ["Earned", money(me.earned), "provider-earned"],
            ["Jobs served", String(items.length), "provider-jobs"],
            ["Balance", money(me.balance)],
          ]}
        />
        <${BarChart} id="earnings" title=${`Earnings per ${unit}`} values=${b.map((x) => x.earned)} labels=${b.map((x) => x.label)} format=${usdOf} />
        <h2>Claim on-chain</h2>
        <p>
          A payout voucher lets a node's payout wallet claim the earnings from the settlement contract itself
          (<code>srp-provider claim</code>).
        </p>
        <button type="button" onClick=${claim}>Get a payout voucher</button>
        <${Problem} error=${error} />
        ${voucher && html`<pre class="voucher">${JSON.stringify(voucher, null, 2)}</pre>`}`;
    }}
  <//>`;
}

/** The provider page: nodes, earnings, statements, disputes, payout wallets, claims. */
export function Provider({ session }) {
  const nodes = useLoad(() => api(session, "v1/provider/nodes"), [session]);
  return html`<${Page} title="Provider">
    <h2>Earnings</h2>
    <${Earnings} session=${session} />
    <h2>Nodes online</h2>
    <${Loaded} state=${nodes}>
      ${(n) => html`${
        n.data.length === 0
          ? html`<p>No node of this account is connected. Start one with <code>srp-provider start</code>.</p>`
          : n.data.map((node) => html`<${Node} key=${node.node_id} node=${node} />`)
      }
        <h2>Disputes</h2>
        ${
          n.disputes.length === 0
            ? html`<p>No disputes raised by this account's nodes.</p>`
            : html`<table>
                <caption class="sr-only">Disputes</caption>
                <thead><tr><th scope="col">Received</th><th scope="col">Node</th><th scope="col">Dispute</th></tr></thead>
                <tbody>
                  ${n.disputes.map(
                    (d) =>
                      html`<tr><td>${when(d.received_at)}</td><td><code>${short(d.node_id)}</code></td><td><code>${JSON.stringify(d.dispute)}</code></td></tr>`,
                  )}
                </tbody>
              </table>`
        }`}
    <//>
  <//>`;
}
