// Pure helpers of the dashboard: money in exact decimal (bigint atomic units, never
// floating point for amounts shown), times, and the account's activity drawn from its
// ledger history (spend and earnings per job, bucketed over time for the charts).

/** USD of atomic units (1 unit = 0.000001 USD), at least two decimals, exact. */
export function usdOf(units) {
  const n = BigInt(units);
  const sign = n < 0n ? "-" : "";
  const abs = n < 0n ? -n : n;
  const whole = abs / 1_000_000n;
  let frac = (abs % 1_000_000n).toString().padStart(6, "0").replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${sign}$${whole}.${frac}`;
}

/** A Money `{ units, usd }` as `$1.23`, or an em dash. */
export function money(m) {
  return m ? usdOf(m.units) : "—";
}

/** A time (ms) as `2026-12-06 18:46 UTC`. */
export function when(ms) {
  if (ms === null || ms === undefined) return "—";
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** A short id for tables: the first and last characters. */
export function short(id, keep = 10) {
  return id && id.length > keep + 4 ? `${id.slice(0, keep)}…${id.slice(-4)}` : (id ?? "—");
}

/**
 * The account's jobs from its ledger history: one entry per settled job with what the
 * account spent on it (it was the consumer: its hold moved) and earned (it was the provider).
 */
export function activity(history, accountId) {
  const out = [];
  for (const h of history) {
    if (h.kind !== "settle" || !h.memo || typeof h.memo.jobId !== "string") continue;
    const spent = h.held && h.held.units !== "0" ? BigInt(h.memo.charge ?? "0") : 0n;
    const earned = h.memo.provider === accountId ? BigInt(h.memo.providerShare ?? "0") : 0n;
    out.push({ at: h.created_at, jobId: h.memo.jobId, spent, earned, consumer: spent > 0n || (h.held && h.held.units !== "0") });
  }
  return out;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Activity in time buckets for the charts: hours over the last day when everything is that
 * recent, else days over the last 30; each bucket with its requests, spend and earnings.
 */
export function buckets(items, now = Date.now()) {
  const oldest = items.reduce((m, i) => Math.min(m, i.at), now);
  const hourly = now - oldest < DAY;
  const size = hourly ? HOUR : DAY;
  const count = hourly ? 24 : 30;
  const end = Math.floor(now / size) * size + size;
  const out = [];
  for (let i = count; i > 0; i--) {
    const start = end - i * size;
    const iso = new Date(start).toISOString();
    out.push({ start, label: hourly ? `${iso.slice(11, 13)}h` : iso.slice(5, 10), requests: 0, spent: 0n, earned: 0n });
  }
  for (const item of items) {
    const index = Math.floor((item.at - (end - count * size)) / size);
    const b = out[index];
    if (!b) continue;
    if (item.consumer) b.requests += 1;
    b.spent += item.spent;
    b.earned += item.earned;
  }
  return { unit: hourly ? "hour" : "day", buckets: out };
}

/** Parses a USD amount typed by a person (`5`, `5.25`) into the API's `{ usd }`, or undefined when empty; throws on nonsense. */
export function usdInput(text) {
  const t = String(text ?? "").trim();
  if (t === "") return undefined;
  if (!/^[0-9]{1,9}(\.[0-9]{1,6})?$/.test(t)) throw new Error(`${t} is not an amount in USD`);
  return { usd: t };
}

/** A whole number typed by a person, or undefined when empty; throws on nonsense. */
export function intInput(text) {
  const t = String(text ?? "").trim();
  if (t === "") return undefined;
  if (!/^[0-9]{1,9}$/.test(t)) throw new Error(`${t} is not a whole number`);
  return Number(t);
}

/** A comma- or space-separated list typed by a person, or undefined when empty. */
export function listInput(text) {
  const items = String(text ?? "")
    .split(/[\s,]+/)
    .filter(Boolean);
  return items.length ? items : undefined;
}
