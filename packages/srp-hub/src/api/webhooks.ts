/**
 * Webhooks of finished async jobs (consumer.md "Async jobs"): which URLs a consumer may name
 * (no SSRF into the hub's own network unless the operator allows it), the Standard Webhooks
 * signature (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`
 * over `id.timestamp.body` with the secret's bytes), and delivery with a few bounded retries.
 */
import { createHmac, randomBytes } from "node:crypto";
import { isIP } from "node:net";

/** A new webhook secret: `whsec_` and 24 random bytes in base64. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

/** The Standard Webhooks headers of `body`, signed with `secret` (`whsec_...`), sent at `timestamp` (Unix seconds). */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): Record<string, string> {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
  const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${signature}` };
}

/** Whether an IP literal is loopback, private, link-local, unspecified or otherwise not a public address. */
function privateAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  const kind = isIP(h);
  if (kind === 4) {
    const [a = 0, b = 0] = h.split(".").map(Number);
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 198 && (b === 18 || b === 19)) ||
      a >= 224
    );
  }
  if (kind === 6) {
    if (h === "::" || h === "::1") return true;
    if (h.startsWith("::ffff:")) return privateAddress(h.slice(7)) || !isIP(h.slice(7));
    // Unique local, link-local, NAT64, 6to4 and IPv4-compatible addresses may reach private IPv4 hosts.
    return /^(fc|fd|fe[89ab])/.test(h) || h.startsWith("64:ff9b:") || h.startsWith("2002:") || h.startsWith("::");
  }
  return false;
}

/**
 * What is wrong with a webhook URL, or undefined: it is an absolute `https:` URL without
 * credentials whose host is a name or a public address. With `allowPrivate` (an operator's
 * choice, and tests on loopback), `http:` and private or loopback hosts are taken too.
 * (A name is not resolved here: a hub exposed to strangers keeps `allowPrivate` off and
 * should reach the internet through an egress proxy that refuses its own network.)
 */
export function webhookUrlProblem(url: string, allowPrivate: boolean): string | undefined {
  return publicUrlProblem(url, "webhook_url", allowPrivate);
}

/** Host names that never name a public host: no dot, or a suffix kept for private networks. */
const PRIVATE_SUFFIXES = [".localhost", ".internal", ".local", ".lan", ".home.arpa", ".svc", ".corp"];

/**
 * What is wrong with a URL that a consumer asks the hub or a node to fetch or post to, named
 * `what` in the message: not an absolute `https:` URL, with credentials, or naming a host
 * that is not public (loopback, private, link-local or reserved address literals; `localhost`,
 * names without a dot, private suffixes). With `allowPrivate`, `http:` and such hosts pass.
 */
export function publicUrlProblem(url: string, what: string, allowPrivate = false): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${what} is not an absolute URL`;
  }
  if (u.protocol !== "https:" && !(allowPrivate && u.protocol === "http:")) return `${what} must be an https: URL`;
  if (u.username || u.password) return `${what} must not carry credentials`;
  if (allowPrivate) return undefined;
  const host = u.hostname.toLowerCase().replace(/\.$/, "");
  const literal = isIP(host.replace(/^\[|\]$/g, "")) !== 0;
  if (host === "localhost" || (!literal && !host.includes(".")) || PRIVATE_SUFFIXES.some((s) => host.endsWith(s)) || privateAddress(host))
    return `${what} must name a public host`;
  return undefined;
}

/** How a webhook is delivered. */
export interface WebhookDelivery {
  url: string;
  secret: string;
  /** The message id (`webhook-id`): the same on every attempt, so a receiver can drop repeats. */
  id: string;
  /** The JSON payload. */
  payload: unknown;
}

/** Waits between attempts, ms: 3 attempts in all. */
const RETRY_DELAYS_MS = [1_000, 5_000] as const;
/** Time one attempt may take, ms. */
const ATTEMPT_TIMEOUT_MS = 10_000;

/**
 * Posts a webhook: up to three attempts (the first at once, then after 1 s and 5 s) until
 * one answers 2xx; redirects are not followed. Resolves with whether one was delivered;
 * never rejects. `signal` stops the retries (the hub is closing).
 */
export async function deliverWebhook(d: WebhookDelivery, signal?: AbortSignal): Promise<boolean> {
  const body = JSON.stringify(d.payload);
  for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt++) {
    if (signal?.aborted) return false;
    try {
      const res = await fetch(d.url, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/json", ...signWebhook(d.secret, d.id, Math.floor(Date.now() / 1000), body) },
        body,
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]) : AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 300) return true;
    } catch {
      // A refused connection or time-out: retried like a non-2xx answer.
    }
    const wait = RETRY_DELAYS_MS[attempt];
    if (wait === undefined) break;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, wait);
      t.unref?.();
      signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
  }
  return false;
}
