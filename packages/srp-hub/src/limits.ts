/**
 * What strangers may cost a hub: token buckets keyed by client address, with bounded
 * memory, and the hub's limits on unauthenticated work (spec/v1/security.md, SRP-SEC-014..).
 * The bucket arithmetic is pure; {@link TokenBuckets} keeps one bucket per key with a cap on
 * the keys it tracks, and a clock that tests can inject.
 */
import { isIPv4, isIPv6 } from "node:net";

/** A token bucket's rate: `burst` tokens at most, refilled at `perSecond`. */
export interface Rate {
  /** Most tokens a bucket holds (requests allowed at once after a quiet period). */
  burst: number;
  /** Tokens added per second (the sustained rate). */
  perSecond: number;
}

/** One bucket's state: its tokens when last updated, and when (ms). */
export interface BucketState {
  tokens: number;
  at: number;
}

/** A bucket's tokens at `now` (pure). */
export function refill(state: BucketState, rate: Rate, now: number): number {
  const elapsed = Math.max(0, now - state.at);
  return Math.min(rate.burst, state.tokens + (elapsed * rate.perSecond) / 1000);
}

/** Milliseconds until a bucket holding `tokens` holds `cost` (pure); 0 when it does now. */
export function waitFor(tokens: number, cost: number, rate: Rate): number {
  if (tokens >= cost) return 0;
  if (rate.perSecond <= 0) return Number.POSITIVE_INFINITY;
  return Math.ceil(((cost - tokens) * 1000) / rate.perSecond);
}

/** The value of a `Retry-After` header (whole seconds, at least 1) for a wait in ms. */
export function retryAfterSeconds(waitMs: number): number {
  if (!Number.isFinite(waitMs)) return 3600;
  return Math.max(1, Math.ceil(waitMs / 1000));
}

/** A single token bucket (one per provider session, for its messages). */
export class TokenBucket {
  readonly #rate: Rate;
  readonly #now: () => number;
  #state: BucketState;

  constructor(rate: Rate, now: () => number = Date.now) {
    this.#rate = rate;
    this.#now = now;
    this.#state = { tokens: rate.burst, at: now() };
  }

  /** Takes `cost` tokens: 0 when taken, else the ms until they would be there (nothing taken). */
  take(cost = 1): number {
    const now = this.#now();
    const tokens = refill(this.#state, this.#rate, now);
    const wait = waitFor(tokens, cost, this.#rate);
    this.#state = { tokens: wait === 0 ? tokens - cost : tokens, at: now };
    return wait;
  }
}

/** Options of {@link TokenBuckets}. */
export interface TokenBucketsOptions {
  /** Most keys tracked; the least recently used is dropped beyond it (default 100,000). */
  maxKeys?: number;
  /** Clock (ms); default `Date.now`. */
  now?: () => number;
  /** Told of the tokens each use spends (taken, charged; negative when given back to a tracked key), for sharing them with other processes. */
  onSpend?: (key: string, tokens: number) => void;
}

/**
 * Token buckets by key with bounded memory: a key whose bucket is full again is the same
 * as one never seen, so idle keys are dropped (a few at each use); beyond `maxKeys` the
 * least recently used key is dropped (it then starts over with a full bucket).
 */
export class TokenBuckets {
  readonly rate: Rate;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #onSpend: ((key: string, tokens: number) => void) | undefined;
  /** In least-recently-used order (a use moves a key to the end). */
  readonly #buckets = new Map<string, BucketState>();

  constructor(rate: Rate, options: TokenBucketsOptions = {}) {
    if (!(rate.burst >= 1) || !(rate.perSecond >= 0)) throw new RangeError("a rate needs burst >= 1 and perSecond >= 0");
    this.rate = rate;
    this.#maxKeys = Math.max(1, options.maxKeys ?? 100_000);
    this.#now = options.now ?? Date.now;
    this.#onSpend = options.onSpend;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** The key's tokens now (a full bucket for an unknown key). */
  #tokens(key: string, now: number): number {
    const s = this.#buckets.get(key);
    return s ? refill(s, this.rate, now) : this.rate.burst;
  }

  /** Ms until `key` could take `cost` tokens; 0 when it can now. Takes nothing. */
  peek(key: string, cost = 1): number {
    return waitFor(this.#tokens(key, this.#now()), cost, this.rate);
  }

  /** Takes `cost` tokens from `key`: 0 when taken, else the ms until they would be there (nothing taken). */
  take(key: string, cost = 1): number {
    const now = this.#now();
    const tokens = this.#tokens(key, now);
    const wait = waitFor(tokens, cost, this.rate);
    this.#buckets.delete(key);
    this.#buckets.set(key, { tokens: wait === 0 ? tokens - cost : tokens, at: now });
    this.#trim(now);
    if (wait === 0 && cost !== 0) this.#onSpend?.(key, cost);
    return wait;
  }

  /** Takes `cost` tokens, or all there are when fewer are there. */
  charge(key: string, cost = 1): void {
    const now = this.#now();
    const tokens = Math.max(0, this.#tokens(key, now) - cost);
    this.#buckets.delete(key);
    this.#buckets.set(key, { tokens, at: now });
    this.#trim(now);
    if (cost !== 0) this.#onSpend?.(key, cost);
  }

  /** Gives `cost` tokens back (a taken token whose attempt did not count), up to `burst`. */
  give(key: string, cost = 1): void {
    const s = this.#buckets.get(key);
    if (!s) return;
    const now = this.#now();
    s.tokens = Math.min(this.rate.burst, refill(s, this.rate, now) + cost);
    s.at = now;
    if (cost !== 0) this.#onSpend?.(key, -cost);
  }

  /**
   * Applies tokens another process of the hub spent on `key` (negative: gave back), without
   * telling `onSpend`: charged as of `at` (ms, when they were spent) when this bucket was last
   * used before then, else as of its last use; given back only to a key tracked here.
   */
  absorb(key: string, tokens: number, at?: number): void {
    const now = this.#now();
    const s = this.#buckets.get(key);
    if (tokens < 0) {
      if (s) this.#buckets.set(key, { tokens: Math.min(this.rate.burst, refill(s, this.rate, now) - tokens), at: now });
      return;
    }
    const when = Math.max(s?.at ?? Number.NEGATIVE_INFINITY, Math.min(at ?? now, now));
    const before = s ? refill(s, this.rate, when) : this.rate.burst;
    this.#buckets.delete(key);
    this.#buckets.set(key, { tokens: Math.max(0, before - tokens), at: when });
    this.#trim(now);
  }

  /** Drops idle keys from the least recently used end (a few per call), then keeps within `maxKeys`. */
  #trim(now: number): void {
    let checked = 0;
    for (const [key, s] of this.#buckets) {
      if (checked++ >= 8 || refill(s, this.rate, now) < this.rate.burst) break;
      this.#buckets.delete(key);
    }
    while (this.#buckets.size > this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest === undefined) break;
      this.#buckets.delete(oldest);
    }
  }

  /** Drops every idle key (a periodic sweep; bounded by the keys tracked). */
  sweep(): number {
    const now = this.#now();
    let dropped = 0;
    for (const [key, s] of this.#buckets) {
      if (refill(s, this.rate, now) >= this.rate.burst) {
        this.#buckets.delete(key);
        dropped++;
      }
    }
    return dropped;
  }
}

/** Expands an IPv6 address into its eight 16-bit groups, or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  let a = address;
  const zone = a.indexOf("%");
  if (zone >= 0) a = a.slice(0, zone);
  // A trailing dotted IPv4 part becomes two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    const b = dotted[1]!.split(".").map(Number);
    a = `${a.slice(0, dotted.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = a.split("::");
  if (halves.length > 2) return undefined;
  const part = (s: string) => (s === "" ? [] : s.split(":").map((h) => parseInt(h, 16)));
  const head = part(halves[0]!);
  const tail = halves.length === 2 ? part(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  const groups = [...head, ...Array<number>(fill).fill(0), ...tail];
  return groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff) ? undefined : groups;
}

/**
 * The key a client address is limited under (pure): an IPv4 address as it is (also when
 * IPv4-mapped, `::ffff:a.b.c.d`), an IPv6 address by its /64 network (`2001:db8:1:2::/64`:
 * one subscriber usually holds a whole /64), anything else as given (`unknown` when empty).
 */
export function clientKey(address: string | undefined): string {
  if (!address) return "unknown";
  const a = address.trim();
  if (isIPv4(a)) return a;
  if (!isIPv6(a)) return a.slice(0, 64) || "unknown";
  const g = ipv6Groups(a);
  if (!g) return a;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`;
  }
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(":")}::/64`;
}

/**
 * The IP address of one `X-Forwarded-For` entry (pure), without the port some proxies add
 * (`203.0.113.5:5678`, `[2001:db8::1]:5678`) and the brackets of IPv6; undefined when it is
 * no IP address.
 */
export function forwardedAddress(entry: string): string | undefined {
  const e = entry.trim();
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?$/.exec(e);
  const bracketed = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(e);
  const bare = v4 ? v4[1]! : bracketed ? bracketed[1]! : e;
  return isIPv4(bare) || isIPv6(bare) ? bare : undefined;
}

/**
 * A client's address (pure): the socket's remote address; with `trustProxy`, the last
 * address in `X-Forwarded-For` (the one the trusted proxy in front of the hub appended:
 * addresses further left are the client's to choose), when it is an IP address (a port
 * after it is ignored).
 */
export function clientAddress(
  remoteAddress: string | undefined,
  forwardedFor: string | null | undefined,
  trustProxy: boolean,
): string | undefined {
  if (trustProxy && forwardedFor) {
    const bare = forwardedAddress(forwardedFor.split(",").pop() ?? "");
    if (bare !== undefined) return bare;
  }
  return remoteAddress;
}

/**
 * Whether a failed x402 payment proves its payer signed it (pure): the codes a hub answers
 * only after the authorization's signature verified (no funds, replayed, not settled, the
 * wallet blocked). Any other failure says nothing about the wallet its `from` names, so it
 * must not count against that payer (SRP-SEC-020).
 */
export function failureProvesPayer(code: string | undefined): boolean {
  return (
    code === "payment.insufficient_funds" ||
    code === "payment.replayed" ||
    code === "payment.settlement_failed" ||
    code === "payment.wallet_blocked"
  );
}

/**
 * The hub's limits on what strangers can make it do (`createHub({ limits })`). Each rate
 * is per client address (IPv6 by /64) unless said otherwise; `false` turns a limit off.
 */
export interface HubLimits {
  /** Read the client address from `X-Forwarded-For` (its last entry) rather than the socket; default false. Only behind a proxy that sets it. */
  trustProxy?: boolean;
  /** `GET /v1/auth/nonce` (each issues a stored nonce); default 30 at once, 0.5/s. */
  nonces?: Rate | false;
  /** x402 payment attempts that fail (402, or a `payment.*` error), per client address and per payer; default 20 at once, 0.1/s. */
  paymentFailures?: Rate | false;
  /** New provider WebSocket connections (upgrades); default 60 at once, 5/s. */
  connections?: Rate | false;
  /** Provider handshakes that fail (rejected `auth`, time-out); default 20 at once, 0.2/s. */
  handshakeFailures?: Rate | false;
  /** Provider connections not yet authenticated, at once; default 32. */
  unauthenticatedConnections?: number | false;
  /** Provider connections not yet authenticated, at once, from all addresses together; default 1024. */
  unauthenticatedConnectionsTotal?: number | false;
  /** Messages per authenticated provider session (not per address); default 200,000 at once, 100,000/s. */
  sessionMessages?: Rate | false;
  /** Client addresses (and payers) tracked per limit; the least recently seen beyond it are forgotten; default 100,000. */
  maxTrackedClients?: number;
  /** How often open sessions bound with an API key or wallet are checked against the account store (revocation by another process); default 60 s; 0 turns it off. */
  bindingCheckIntervalMs?: number;
}

/** The defaults of {@link HubLimits}. */
export const LIMIT_DEFAULTS = {
  trustProxy: false,
  nonces: { burst: 30, perSecond: 0.5 },
  paymentFailures: { burst: 20, perSecond: 0.1 },
  connections: { burst: 60, perSecond: 5 },
  handshakeFailures: { burst: 20, perSecond: 0.2 },
  unauthenticatedConnections: 32,
  unauthenticatedConnectionsTotal: 1024,
  sessionMessages: { burst: 200_000, perSecond: 100_000 },
  maxTrackedClients: 100_000,
  bindingCheckIntervalMs: 60_000,
} as const satisfies Required<HubLimits>;

/** The limits whose spending the processes of one hub share: each a set of token buckets by client key (by payer for `paymentsByPayer`). */
export type SharedLimit = "nonces" | "paymentsByClient" | "paymentsByPayer" | "connections" | "handshakeFailures";

/** Every {@link SharedLimit}. */
export const SHARED_LIMITS: readonly SharedLimit[] = ["nonces", "paymentsByClient", "paymentsByPayer", "connections", "handshakeFailures"];

/** Told of the tokens a limiter spends: the limit, its key, the tokens (negative when given back). */
export type SpendListener = (limit: SharedLimit, key: string, tokens: number) => void;

/** A refusal: the error code to answer and how long to wait. */
export interface Refusal {
  retryAfterMs: number;
  reason: string;
}

/**
 * The limits of one hub, by client key: what the HTTP surface, the WebSocket upgrade and
 * the provider handshake consult. Holds only buckets and counters, no I/O. In a hub of
 * several processes, {@link ClientLimiter.observeSpending} and {@link ClientLimiter.absorb}
 * let the processes share what their rate limits spent (`cluster/shared-limits.ts`); the
 * counts of connections in their handshake stay per process.
 */
export class ClientLimiter {
  readonly trustProxy: boolean;
  readonly sessionMessages: Rate | undefined;
  readonly bindingCheckIntervalMs: number;
  readonly #nonces: TokenBuckets | undefined;
  readonly #paymentsByClient: TokenBuckets | undefined;
  readonly #paymentsByPayer: TokenBuckets | undefined;
  readonly #connections: TokenBuckets | undefined;
  readonly #handshakeFailures: TokenBuckets | undefined;
  readonly #maxUnauthenticated: number | undefined;
  readonly #maxUnauthenticatedTotal: number | undefined;
  /** Unauthenticated connections open now, by client key (an entry exists only while one is open). */
  readonly #unauthenticated = new Map<string, number>();
  /** Unauthenticated connections open now, from all addresses. */
  #unauthenticatedTotal = 0;
  /** The rate limits by name, for sharing. */
  readonly #shared = new Map<SharedLimit, TokenBuckets>();
  #listener: SpendListener | undefined;

  constructor(limits: HubLimits = {}, now: () => number = Date.now) {
    const l = { ...LIMIT_DEFAULTS, ...limits };
    const buckets = (name: SharedLimit, rate: Rate | false) => {
      if (rate === false) return undefined;
      const b = new TokenBuckets(rate, {
        maxKeys: l.maxTrackedClients,
        now,
        onSpend: (key, tokens) => this.#listener?.(name, key, tokens),
      });
      this.#shared.set(name, b);
      return b;
    };
    this.trustProxy = l.trustProxy;
    this.#nonces = buckets("nonces", l.nonces);
    this.#paymentsByClient = buckets("paymentsByClient", l.paymentFailures);
    this.#paymentsByPayer = buckets("paymentsByPayer", l.paymentFailures);
    this.#connections = buckets("connections", l.connections);
    this.#handshakeFailures = buckets("handshakeFailures", l.handshakeFailures);
    this.#maxUnauthenticated = l.unauthenticatedConnections === false ? undefined : l.unauthenticatedConnections;
    this.#maxUnauthenticatedTotal = l.unauthenticatedConnectionsTotal === false ? undefined : l.unauthenticatedConnectionsTotal;
    this.sessionMessages = l.sessionMessages === false ? undefined : l.sessionMessages;
    this.bindingCheckIntervalMs = l.bindingCheckIntervalMs;
  }

  /** The client key of a request or upgrade: its remote address, or with `trustProxy` its `X-Forwarded-For`. */
  keyOf(remoteAddress: string | undefined, forwardedFor: string | null | undefined): string {
    return clientKey(clientAddress(remoteAddress, forwardedFor, this.trustProxy));
  }

  /** A nonce for `client`, or the refusal. */
  nonce(client: string): Refusal | undefined {
    const wait = this.#nonces?.take(client) ?? 0;
    return wait === 0 ? undefined : { retryAfterMs: wait, reason: "too many sign-in nonces asked from this address" };
  }

  /**
   * Whether a payment attempt from `client` (paying as `payer`, when known) may be tried
   * now. An attempt holds one token of each until it ends: {@link paymentEnded} gives them
   * back unless it failed, so concurrent attempts cannot outrun the limit.
   */
  payment(client: string, payer: string | undefined): Refusal | undefined {
    const byPayer = payer === undefined ? 0 : (this.#paymentsByPayer?.peek(payer) ?? 0);
    if (byPayer > 0) return { retryAfterMs: byPayer, reason: `too many failed payments by ${payer}` };
    const byClient = this.#paymentsByClient?.take(client) ?? 0;
    if (byClient > 0) return { retryAfterMs: byClient, reason: "too many failed payments from this address" };
    if (payer !== undefined) this.#paymentsByPayer?.take(payer);
    return undefined;
  }

  /**
   * A payment attempt {@link payment} let through ended: its tokens are given back unless it
   * `failed`; the payer's token is given back also when the failure does not prove the payer
   * signed it (`payerProven` false: a bad signature, a malformed or mismatched payment), so
   * forged authorizations naming a wallet cannot lock that wallet out.
   */
  paymentEnded(client: string, payer: string | undefined, failed: boolean, payerProven = true): void {
    if (!failed) this.#paymentsByClient?.give(client);
    if (payer !== undefined && (!failed || !payerProven)) this.#paymentsByPayer?.give(payer);
  }

  /** Whether `client` may open a provider connection now (counts it when it may). */
  connect(client: string): Refusal | undefined {
    const failures = this.#handshakeFailures?.peek(client) ?? 0;
    if (failures > 0) return { retryAfterMs: failures, reason: "too many failed handshakes from this address" };
    if (this.#maxUnauthenticated !== undefined && (this.#unauthenticated.get(client) ?? 0) >= this.#maxUnauthenticated) {
      return {
        retryAfterMs: 1000,
        reason: `at most ${this.#maxUnauthenticated} connections from one address may be in their handshake at once`,
      };
    }
    if (this.#maxUnauthenticatedTotal !== undefined && this.#unauthenticatedTotal >= this.#maxUnauthenticatedTotal) {
      return { retryAfterMs: 1000, reason: `at most ${this.#maxUnauthenticatedTotal} connections may be in their handshake at once` };
    }
    const wait = this.#connections?.take(client) ?? 0;
    if (wait > 0) return { retryAfterMs: wait, reason: "too many new connections from this address" };
    this.#unauthenticated.set(client, (this.#unauthenticated.get(client) ?? 0) + 1);
    this.#unauthenticatedTotal++;
    return undefined;
  }

  /** A connection of `client` left its handshake (authenticated, rejected or closed); `failed` when it was rejected. */
  handshakeEnded(client: string, failed: boolean): void {
    if (this.#unauthenticated.has(client)) this.#unauthenticatedTotal = Math.max(0, this.#unauthenticatedTotal - 1);
    const n = (this.#unauthenticated.get(client) ?? 1) - 1;
    if (n <= 0) this.#unauthenticated.delete(client);
    else this.#unauthenticated.set(client, n);
    if (failed) this.#handshakeFailures?.charge(client);
  }

  /** Whether `client` may have its `auth` checked now (refused once its failed handshakes are over the limit). */
  auth(client: string): Refusal | undefined {
    const failures = this.#handshakeFailures?.peek(client) ?? 0;
    return failures > 0 ? { retryAfterMs: failures, reason: "too many failed handshakes from this address" } : undefined;
  }

  /** Unauthenticated connections open now from `client`. */
  unauthenticated(client: string): number {
    return this.#unauthenticated.get(client) ?? 0;
  }

  /** Tells `listener` of every token the rate limits spend or give back from now on (one listener; undefined stops telling). */
  observeSpending(listener: SpendListener | undefined): void {
    this.#listener = listener;
  }

  /** Applies tokens another process of the hub spent under `limit` on `key` at `at` (ms; negative tokens: given back); nothing when the limit is off here. */
  absorb(limit: SharedLimit, key: string, tokens: number, at?: number): void {
    this.#shared.get(limit)?.absorb(key, tokens, at);
  }

  /** The rate of a shared limit, or undefined when it is off. */
  rateOf(limit: SharedLimit): Rate | undefined {
    return this.#shared.get(limit)?.rate;
  }

  /** Drops idle keys of every limit (the hub calls this periodically). */
  sweep(): void {
    for (const b of [this.#nonces, this.#paymentsByClient, this.#paymentsByPayer, this.#connections, this.#handshakeFailures]) b?.sweep();
  }
}

/** The rate limits `srp-hub serve --limit NAME=...` can set. */
const RATE_NAMES = ["nonces", "paymentFailures", "connections", "handshakeFailures", "sessionMessages"] as const;

/**
 * Parses one `--limit` value (pure): `NAME=BURST:PER_SECOND` for a rate (`nonces`,
 * `paymentFailures`, `connections`, `handshakeFailures`, `sessionMessages`),
 * `unauthenticatedConnections=N`, `unauthenticatedConnectionsTotal=N`, `bindingCheckIntervalMs=MS`, or `NAME=off`.
 * Throws a `RangeError` naming what is wrong.
 */
export function parseLimit(text: string): HubLimits {
  const eq = text.indexOf("=");
  const name = text.slice(0, eq);
  const value = text.slice(eq + 1).trim();
  if (eq <= 0) throw new RangeError(`--limit takes NAME=VALUE, got ${JSON.stringify(text)}`);
  const number = (s: string) => {
    const n = Number(s);
    if (s === "" || !Number.isFinite(n) || n < 0)
      throw new RangeError(`--limit ${name}: ${JSON.stringify(s)} is not a non-negative number`);
    return n;
  };
  if ((RATE_NAMES as readonly string[]).includes(name)) {
    if (value === "off") return { [name]: false };
    const m = /^([^:]+):([^:]+)$/.exec(value);
    if (!m) throw new RangeError(`--limit ${name} takes BURST:PER_SECOND (e.g. 30:0.5) or off, got ${JSON.stringify(value)}`);
    const burst = number(m[1]!);
    if (burst < 1) throw new RangeError(`--limit ${name}: the burst must be at least 1`);
    return { [name]: { burst, perSecond: number(m[2]!) } };
  }
  if (name === "unauthenticatedConnections") return { unauthenticatedConnections: value === "off" ? false : Math.floor(number(value)) };
  if (name === "unauthenticatedConnectionsTotal")
    return { unauthenticatedConnectionsTotal: value === "off" ? false : Math.floor(number(value)) };
  if (name === "bindingCheckIntervalMs") return { bindingCheckIntervalMs: value === "off" ? 0 : number(value) };
  throw new RangeError(
    `--limit: unknown limit ${JSON.stringify(name)} (known: ${[...RATE_NAMES, "unauthenticatedConnections", "unauthenticatedConnectionsTotal", "bindingCheckIntervalMs"].join(", ")})`,
  );
}
