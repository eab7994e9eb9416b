// Small shared pieces of the dashboard's pages: headings, the loading and error states,
// and a definition list of figures.
import { html } from "htm/preact";

/** A page: its heading (focused on navigation, for screen readers) and content. */
export function Page({ title, children, actions }) {
  return html`<section aria-labelledby="page-title" class="page">
    <header class="page-head">
      <h1 id="page-title" tabindex="-1">${title}</h1>
      ${actions}
    </header>
    ${children}
  </section>`;
}

/** What a load shows while loading or failed, or its content. */
export function Loaded({ state, children }) {
  if (state.error) return html`<${Problem} error=${state.error} />`;
  if (state.data === undefined) return html`<p class="loading" role="status">Loading…</p>`;
  return children(state.data);
}

/** An error answer, readable. */
export function Problem({ error }) {
  if (!error) return null;
  return html`<p class="problem" role="alert">${error.code ? html`<code>${error.code}</code> ` : ""}${error.message ?? String(error)}</p>`;
}

/** Figures as a definition list: [[label, value, testId?], ...]. */
export function Figures({ items }) {
  return html`<dl class="figures">
    ${items.map(([label, value, id]) => html`<div><dt>${label}</dt><dd data-testid=${id}>${value}</dd></div>`)}
  </dl>`;
}
