// A small bar chart in SVG (no library): one series of whole numbers over labelled
// buckets, with its data also as a table for screen readers and keyboard users.
import { html } from "htm/preact";

/**
 * `<BarChart title values labels format />`: `values` are numbers (or bigints), `format`
 * turns one into text for the table and the tooltip.
 */
export function BarChart({ id, title, values, labels, format = String }) {
  const width = 600;
  const height = 160;
  const pad = { top: 10, bottom: 22, left: 8, right: 8 };
  const nums = values.map((v) => Number(v));
  const max = Math.max(1, ...nums);
  const slot = (width - pad.left - pad.right) / Math.max(1, nums.length);
  const plot = height - pad.top - pad.bottom;
  const every = Math.ceil(nums.length / 8);
  const total = values.reduce((a, v) => a + v, typeof values[0] === "bigint" ? 0n : 0);
  return html`<figure class="chart" aria-labelledby=${`${id}-title`}>
    <figcaption id=${`${id}-title`}>${title} <span class="muted">(total ${format(total)})</span></figcaption>
    <svg viewBox=${`0 0 ${width} ${height}`} role="img" aria-labelledby=${`${id}-title`} data-chart=${id} preserveAspectRatio="none">
      <line x1=${pad.left} x2=${width - pad.right} y1=${height - pad.bottom} y2=${height - pad.bottom} class="axis" />
      ${nums.map((n, i) => {
        const h = (n / max) * plot;
        return html`<rect
          x=${pad.left + i * slot + slot * 0.15}
          y=${height - pad.bottom - h}
          width=${slot * 0.7}
          height=${h}
          class="bar"
          data-value=${String(values[i])}
        >
          <title>${labels[i]}: ${format(values[i])}</title>
        </rect>`;
      })}
      ${labels.map((l, i) =>
        i % every === 0 ? html`<text x=${pad.left + i * slot + slot / 2} y=${height - 6} class="tick">${l}</text>` : null,
      )}
    </svg>
    <details>
      <summary>Data as a table</summary>
      <table>
        <thead><tr><th scope="col">When</th><th scope="col">${title}</th></tr></thead>
        <tbody>
          ${labels.map((l, i) => html`<tr><td>${l}</td><td>${format(values[i])}</td></tr>`)}
        </tbody>
      </table>
    </details>
  </figure>`;
}
