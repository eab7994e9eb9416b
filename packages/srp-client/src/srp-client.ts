/**
 * A small typed client for a hub's consumer API: chat completions (whole or streamed as
 * an async iterator), the model catalog, and signed receipts checked against the hub key
 * published in the hub's discovery document; with a wallet, x402 payments (per request
 * and deposits), wallet sign-in and refunds. Runtime-neutral: `fetch` and Web streams.
 */
import { decodePaymentRequired, decodeSettlementResponse, evmChainId, parseSse, refundMessage, X402_HEADERS, type BatchObject, type Discovery, type PaymentRequired, type Receipt } from "@srp/core";
import { discover, verifyHubReceipt, type ReceiptCheck } from "./client.js";
import { chooseRequirements, createPaymentSignature, signInMessage, type X402Options, type X402PaymentInfo, type X402Policy } from "./x402.js";

/** A chat message as OpenAI's API takes it (content may be text or content parts). */
export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string | Array<Record<string, unknown>> | null;
  name?: string;
  tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
}

/** A chat completions request; members not listed pass through to the provider untouched. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
  tools?: Array<Record<string, unknown>>;
  tool_choice?: unknown;
  response_format?: Record<string, unknown>;
  /** Routing preferences of this request. */
  srp?: { sort?: "load" | "price" | "throughput"; allow_fallbacks?: boolean; max_price?: { input?: string; output?: string } };
  [member: string]: unknown;
}

/** Usage as the hub reports it: OpenAI's counts plus the cost and the receipt id. */
export interface SrpUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Cost in USD (USDC), decimal string. */
  cost: string;
  /** Cost in USDC atomic units, decimal string. */
  cost_units: string;
  /** Receipt id, or null when the job has no countersigned receipt (then it was not billed). */
  receipt_id: string | null;
  /** False when the backend did not report usage. */
  measured: boolean;
  [member: string]: unknown;
}

/** A whole chat completion. */
export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{ index: number; message: { role: "assistant"; content: string | null; tool_calls?: ChatMessage["tool_calls"] }; finish_reason: string | null }>;
  usage: SrpUsage;
  [member: string]: unknown;
}

/** One streamed chunk. The last one has no choices and carries `usage`. */
export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{ index: number; delta: { role?: string; content?: string | null; tool_calls?: unknown[] }; finish_reason: string | null }>;
  usage?: SrpUsage | null;
  [member: string]: unknown;
}

/** A model of the live catalog. */
export interface CatalogModel {
  id: string;
  name: string;
  context_length: number;
  architecture: { input_modalities: string[]; output_modalities: string[] };
  supported_parameters: string[];
  pricing: { prompt: string; completion: string };
  pricing_units_per_million: { input: string; output: string };
  instances_online: number;
  [member: string]: unknown;
}

/** An error answered by the hub (or raised in-band mid-stream). */
export class SrpApiError extends Error {
  override readonly name = "SrpApiError";
  constructor(
    /** HTTP status (200 for an in-band stream error). */
    readonly status: number,
    /** SRP error code, e.g. `job.unknown_model`. */
    readonly code: string,
    message: string,
    /** Seconds to wait, from `Retry-After`, when given. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** An amount as the hub reports it: USDC atomic units (1e-6 USD) and the same in USD, both decimal strings. */
export interface SrpMoney {
  /** Atomic units, decimal string. */
  units: string;
  /** USD, decimal string. */
  usd: string;
}

/** The account's money, as `GET /v1/account` answers it. */
export interface AccountBalance {
  object: "srp.account";
  /** The account id. */
  id: string;
  /** What the account can spend now (prepaid and credits, less what is held). */
  balance: SrpMoney;
  /** Held for requests in flight. */
  held: SrpMoney;
  /** Prepaid (deposited, refundable) balance. */
  prepaid: SrpMoney;
  /** The prepaid discount in force, basis points. */
  discount_bps: number;
  /** The prepaid tier in force, or null. */
  tier: { min_deposit: SrpMoney; discount_bps: number } | null;
  spent: SrpMoney;
  earned: SrpMoney;
  deposited: SrpMoney;
  refunded: SrpMoney;
  /** Requests billed. */
  requests: number;
  [member: string]: unknown;
}

/** A wallet signed in (`POST /v1/auth/wallet`): a new API key of the wallet's account. */
export interface WalletSession {
  object: "srp.wallet_session";
  /** The wallet's account: the one its x402 payments credit. */
  account_id: string;
  /** The wallet address (lower case). */
  address: string;
  /** The API key the client uses from now on. */
  api_key: string;
  /** The key's id. */
  key_id: string;
  [member: string]: unknown;
}

/** A deposit (`POST /v1/futures/deposit`), paid with x402 and settled on-chain before the answer. */
export interface X402Deposit {
  object: "srp.deposit";
  /** The paying wallet's account, which holds the deposit. */
  account_id: string;
  /** The paying wallet (lower case). */
  address: string;
  /** The amount deposited. */
  amount: SrpMoney;
  /** The account's balance after the deposit (null when the hub could not read it). */
  balance: SrpMoney | null;
  /** The account's prepaid balance after the deposit (null when the hub could not read it). */
  prepaid: SrpMoney | null;
  /** The prepaid discount now in force, basis points (null when the hub could not read it). */
  discount_bps: number | null;
  /** The settlement transaction, or null when the hub does not know it. */
  transaction: string | null;
  /** The payment made. */
  payment?: X402PaymentInfo;
  [member: string]: unknown;
}

/** A refund (`POST /v1/futures/refund`): the account's unused prepaid balance, paid back on-chain. */
export interface X402Refund {
  object: "srp.refund";
  account_id: string;
  /** The wallet paid (the one that signed the refund). */
  address: string;
  /** The amount refunded (zero when there was nothing to refund). */
  amount: SrpMoney;
  /** The transfer transaction, or null when nothing was refunded. */
  transaction: string | null;
  [member: string]: unknown;
}

/**
 * A streamed completion: an async generator of chunks that also tells how it was paid.
 * `payment` is set once the hub has answered (before the first chunk is yielded); it stays
 * undefined when the request was not paid with x402.
 */
export interface ChatStream extends AsyncGenerator<ChatCompletionChunk> {
  /** The x402 payment of this request, once known; undefined when it was not paid with x402. */
  readonly payment: X402PaymentInfo | undefined;
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** The hub's base URL, e.g. `http://127.0.0.1:8787`. */
  hub: string;
  /**
   * The account's API key. Optional with `x402`: requests are then paid per call, and
   * {@link X402Client.signIn} obtains a key of the wallet's account.
   */
  apiKey?: string;
  /** `fetch` implementation; default the global one. */
  fetch?: typeof fetch;
  /**
   * Pay with x402 from a wallet (viem, an optional peer dependency). Without an API key,
   * chat requests the hub answers with 402 are paid within these limits and sent again;
   * with a key, a request the account cannot cover (`billing.insufficient_credits`) is
   * sent again without the key and paid the same way.
   */
  x402?: X402Options;
}

/** The wallet side of a client: deposits, sign-in and refunds (needs `ClientOptions.x402`). */
export interface X402Client {
  /**
   * Deposits `amount` atomic USDC units as prepaid balance of the wallet's account
   * (`POST /v1/futures/deposit`, paid with x402, settled before the answer). Pays exactly
   * `amount`, whatever `maxAmount` says; `networks` and `assets` apply.
   */
  deposit(amount: bigint, init?: { signal?: AbortSignal }): Promise<X402Deposit>;
  /**
   * Signs the wallet in (`GET /v1/auth/nonce`, then `POST /v1/auth/wallet` with an
   * EIP-4361 message signed by the wallet): the client uses the API key answered for all
   * later calls. The chain id of the message is the hub's x402 chain.
   */
  signIn(init?: { signal?: AbortSignal }): Promise<WalletSession>;
  /**
   * Has the account's unused prepaid balance paid back on-chain to the wallet
   * (`POST /v1/futures/refund` with the refund text signed by the wallet). The account is
   * the signed-in one (signs in first when there is no key).
   */
  refund(init?: { signal?: AbortSignal }): Promise<X402Refund>;
}

/** An embeddings request (`POST /v1/embeddings`). */
export interface EmbeddingsRequest {
  model: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: "float" | "base64";
  dimensions?: number;
  /** Routing preferences (spec/v1/consumer.md, SRP-CON-014). */
  provider?: Record<string, unknown>;
  [member: string]: unknown;
}

/** An embeddings answer, with SRP usage. */
export interface Embeddings {
  object: "list";
  data: Array<{ object: "embedding"; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number } & SrpUsage;
}

/** One item of a batch: a non-streamed request to one of the batchable endpoints. */
export interface BatchItem {
  custom_id?: string;
  url: "/v1/chat/completions" | "/v1/messages" | "/v1/embeddings" | "/v1/images/generations";
  body: Record<string, unknown>;
}

/** A batch as the hub reports it (`GET /v1/jobs/{id}`): the `BatchObject` schema of `@srp/core`. */
export type Batch = BatchObject;

/** A typed SRP hub client. */
export interface SrpClient {
  /** Embeddings, billed per prompt token. */
  embeddings: {
    create(request: EmbeddingsRequest, init?: { signal?: AbortSignal }): Promise<Embeddings & { receiptId: string | null; payment?: X402PaymentInfo }>;
  };
  /** Batches of up to 50 mixed requests, run asynchronously at a 10 % discount. */
  batches: {
    /** Submits a batch (one reservation of every item's worst case, or one x402 payment of their sum). */
    create(requests: BatchItem[], init?: { signal?: AbortSignal }): Promise<Batch & { payment?: X402PaymentInfo }>;
    /** The batch now. */
    get(id: string, init?: { signal?: AbortSignal }): Promise<Batch>;
    /** Polls until the batch has finished (`completed` or `failed`); default every 250 ms for at most 10 minutes. */
    wait(id: string, options?: { intervalMs?: number; timeoutMs?: number; signal?: AbortSignal }): Promise<Batch>;
  };
  chat: {
    /**
     * Creates a whole (non-streamed) completion. `payment` is set when the request was
     * paid with x402 (the requirements paid and the hub's decoded `PAYMENT-RESPONSE`).
     */
    create(request: ChatRequest, init?: { signal?: AbortSignal }): Promise<ChatCompletion & { receiptId: string | null; payment?: X402PaymentInfo }>;
    /** Streams a completion; throws {@link SrpApiError} if the stream ends with an in-band error. */
    stream(request: ChatRequest, init?: { signal?: AbortSignal }): ChatStream;
  };
  /** The live model catalog. */
  models(): Promise<CatalogModel[]>;
  /**
   * Fetches a receipt and checks it against the hub's key from discovery. Needs a key: a
   * client paying with x402 and no key signs in first ({@link X402Client.signIn}).
   */
  receipt(id: string): Promise<{ receipt: Receipt; check: ReceiptCheck }>;
  /** The hub's discovery document (fetched once). */
  discovery(): Promise<Discovery>;
  /** The account's money (`GET /v1/account`). Needs a key: a client with `x402` and no key signs in first. */
  balance(): Promise<AccountBalance>;
  /** Deposits, sign-in and refunds with the `x402` wallet; each throws a `TypeError` when the client has none. */
  x402: X402Client;
}

async function apiError(res: Response): Promise<SrpApiError> {
  const retry = res.headers.get("retry-after");
  let code = "internal";
  let message = res.statusText;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    /* not JSON */
  }
  return new SrpApiError(res.status, code, message, retry === null ? undefined : Number(retry));
}

/** Drops a response's body unread. */
async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/** Waits `ms`, or rejects when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Waits before each new try of a payment whose settlement is pending (the same payment, never a new one). */
const PENDING_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15_000] as const;
/** How long, in all, a client keeps trying a pending payment. */
const PENDING_RETRY_BUDGET_MS = 30_000;

/** A response, and the x402 payment that bought it (if one did). */
interface Answer {
  res: Response;
  payment?: X402PaymentInfo;
}

/**
 * Creates a client for one hub and account (an API key, a wallet paying with x402, or
 * both).
 *
 * @example
 * const srp = createClient({ hub: "http://127.0.0.1:8787", apiKey: process.env.SRP_API_KEY! });
 * for await (const chunk of srp.chat.stream({ model: "llama3.1:8b", messages: [{ role: "user", content: "Hi" }] })) {
 *   process.stdout.write(chunk.choices[0]?.delta.content ?? "");
 * }
 *
 * @example
 * // Pay per request from a wallet (x402), in USDC only, at most 0.10 USD a request.
 * const srp = createClient({ hub, x402: { account: privateKeyToAccount(key), assets: [USDC], maxAmount: 100_000n } });
 * const answer = await srp.chat.create({ model: "llama3.1:8b", messages: [{ role: "user", content: "Hi" }] });
 * console.log(answer.payment?.response?.transaction);
 */
export function createClient(options: ClientOptions): SrpClient {
  const base = options.hub.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const wallet = options.x402;
  let apiKey = options.apiKey;
  let session: WalletSession | undefined;
  let signingIn: Promise<WalletSession> | undefined;
  /** The x402 chain id, as last seen in a hub's offer. */
  let x402ChainId: number | undefined;
  const auth = (): Record<string, string> => (apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` });
  let doc: Promise<Discovery> | undefined;
  const discovery = () => (doc ??= discover(base).catch((e: unknown) => {
    doc = undefined;
    throw e;
  }));

  const limits: X402Policy = {
    ...(wallet?.networks ? { networks: wallet.networks } : {}),
    ...(wallet?.assets ? { assets: wallet.assets } : {}),
  };
  const perRequest: X402Policy = { ...limits, ...(wallet?.maxAmount !== undefined ? { maxAmount: wallet.maxAmount } : {}) };

  const needWallet = (): X402Options => {
    if (!wallet) throw new TypeError("this client has no wallet: pass `x402: { account }` to createClient");
    return wallet;
  };

  const tell = (info: X402PaymentInfo) => {
    try {
      wallet?.onPayment?.(info);
    } catch {
      // an observer's failure does not undo a payment
    }
  };

  /**
   * POSTs JSON to `path`. With `useKey` and a key, the account is billed; without (or when
   * the account cannot cover it), a 402 is paid with the wallet within `policy`, and sent
   * again with the signed payment. A pending settlement is retried with the same payment.
   */
  const postPaying = async (path: string, body: string, signal: AbortSignal | undefined, policy: X402Policy, useKey: boolean): Promise<Answer> => {
    const send = (headers: Record<string, string>) =>
      doFetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body, ...(signal ? { signal } : {}) });
    const keyed = useKey && apiKey !== undefined;
    let res = await send(useKey ? auth() : {});
    if (res.ok) return { res };
    if (!wallet || res.status !== 402) throw await apiError(res);
    if (keyed) {
      // The account cannot cover this request: the wallet pays for it instead.
      const refused = await apiError(res);
      if (refused.code !== "billing.insufficient_credits") throw refused;
      res = await send({});
      if (res.ok) return { res };
      if (res.status !== 402) throw await apiError(res);
    }
    const header = res.headers.get(X402_HEADERS.required);
    if (header === null) throw await apiError(res);
    let required: PaymentRequired;
    try {
      required = decodePaymentRequired(header);
    } catch (error) {
      await discard(res);
      throw new SrpApiError(402, "payment.invalid", `the hub's ${X402_HEADERS.required} header does not decode: ${(error as Error).message}`);
    }
    await discard(res);
    const choice = chooseRequirements(required, policy);
    if ("reason" in choice) throw new SrpApiError(402, "payment.required", `${choice.reason}; nothing was signed`);
    const { requirements } = choice;
    x402ChainId = evmChainId(requirements.network) ?? x402ChainId;
    const payment = await createPaymentSignature(wallet.account, required, requirements);
    const started = Date.now();
    res = await send({ [X402_HEADERS.signature]: payment });
    // The settlement's outcome is not known yet: the same payment again, never a new one (that could pay twice).
    for (let tries = 1; res.status === 503; tries++) {
      const pending = await apiError(res);
      if (pending.code !== "payment.settlement_pending") throw pending;
      const delay = PENDING_RETRY_DELAYS_MS[tries - 1];
      const wait = delay === undefined ? undefined : Math.max(delay, (pending.retryAfter ?? 0) * 1000);
      if (wait === undefined || Date.now() - started + wait > PENDING_RETRY_BUDGET_MS) {
        throw new SrpApiError(
          503,
          pending.code,
          `${pending.message} (still pending after ${tries} tries; the hub reconciles it on-chain: money that moved is the wallet account's prepaid balance)`,
          pending.retryAfter,
        );
      }
      await sleep(wait, signal);
      res = await send({ [X402_HEADERS.signature]: payment });
    }
    const settlement = res.headers.get(X402_HEADERS.response);
    const info: X402PaymentInfo = { requirements };
    if (settlement !== null) {
      try {
        info.response = decodeSettlementResponse(settlement);
      } catch {
        // not a settlement document: reported without it
      }
    }
    if (res.ok || settlement !== null) tell(info);
    if (!res.ok) throw await apiError(res);
    return { res, payment: info };
  };

  /** GETs `path` (with the key, if any) and returns its JSON. */
  const getJson = async <T>(path: string, headers: Record<string, string>, signal?: AbortSignal): Promise<T> => {
    const res = await doFetch(`${base}${path}`, { headers, ...(signal ? { signal } : {}) });
    if (!res.ok) throw await apiError(res);
    return (await res.json()) as T;
  };
  const postJson = async <T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> => {
    const res = await doFetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
    if (!res.ok) throw await apiError(res);
    return (await res.json()) as T;
  };

  /** The hub's x402 chain: from an offer seen, else from `/.well-known/x402`; a hub without x402 accepts any. */
  const chainId = async (signal?: AbortSignal): Promise<number> => {
    if (x402ChainId !== undefined) return x402ChainId;
    const allowed = wallet?.networks;
    const res = await doFetch(`${base}/.well-known/x402`, signal ? { signal } : {});
    if (res.ok) {
      const x402 = (await res.json()) as { resources?: Array<{ accepts?: Array<{ network?: unknown }> }> };
      for (const r of x402.resources ?? []) {
        for (const a of r.accepts ?? []) {
          if (typeof a.network !== "string" || (allowed && !allowed.includes(a.network))) continue;
          const id = evmChainId(a.network);
          if (id !== undefined) return (x402ChainId = id);
        }
      }
    } else {
      await discard(res);
    }
    return allowed?.map(evmChainId).find((id) => id !== undefined) ?? 1;
  };

  const nonce = async (signal?: AbortSignal): Promise<string> => (await getJson<{ nonce: string }>("/v1/auth/nonce", { "cache-control": "no-store" }, signal)).nonce;

  const signIn = async (init: { signal?: AbortSignal } = {}): Promise<WalletSession> => {
    const { account } = needWallet();
    const [id, fresh] = await Promise.all([chainId(init.signal), nonce(init.signal)]);
    const message = await signInMessage({ hub: base, address: account.address, chainId: id, nonce: fresh });
    const signature = await account.signMessage({ message });
    const s = await postJson<WalletSession>("/v1/auth/wallet", { message, signature }, init.signal);
    session = s;
    apiKey = s.api_key;
    return s;
  };

  /** A key for calls that need one: a client with a wallet and no key signs in (once, however many ask). */
  const ensureKey = async (): Promise<void> => {
    if (apiKey !== undefined || !wallet) return;
    await (signingIn ??= signIn().finally(() => {
      signingIn = undefined;
    }));
  };

  const balance = async (): Promise<AccountBalance> => {
    await ensureKey();
    return getJson<AccountBalance>("/v1/account", auth());
  };

  const getBatch = (id: string, signal?: AbortSignal) => getJson<Batch>(`/v1/jobs/${encodeURIComponent(id)}`, auth(), signal);

  return {
    embeddings: {
      async create(request, init = {}) {
        const { res, payment } = await postPaying("/v1/embeddings", JSON.stringify(request), init.signal, perRequest, true);
        const body = (await res.json()) as Embeddings;
        return { ...body, receiptId: res.headers.get("x-srp-receipt"), ...(payment ? { payment } : {}) };
      },
    },
    batches: {
      async create(requests, init = {}) {
        const { res, payment } = await postPaying("/v1/batch", JSON.stringify({ requests }), init.signal, perRequest, true);
        const body = (await res.json()) as Batch;
        return { ...body, ...(payment ? { payment } : {}) };
      },
      get: (id, init = {}) => getBatch(id, init.signal),
      async wait(id, options = {}) {
        const until = Date.now() + (options.timeoutMs ?? 600_000);
        for (;;) {
          const batch = await getBatch(id, options.signal);
          if (batch.status === "completed" || batch.status === "failed") return batch;
          if (Date.now() > until) throw new SrpApiError(504, "job.deadline_exceeded", `batch ${id} is still ${batch.status}`);
          await sleep(options.intervalMs ?? 250, options.signal);
        }
      },
    },
    chat: {
      async create(request, init = {}) {
        const { res, payment } = await postPaying("/v1/chat/completions", JSON.stringify({ ...request, stream: false }), init.signal, perRequest, true);
        const body = (await res.json()) as ChatCompletion;
        return { ...body, receiptId: res.headers.get("x-srp-receipt"), ...(payment ? { payment } : {}) };
      },
      stream(request, init = {}) {
        let paid: X402PaymentInfo | undefined;
        const chunks = (async function* () {
          const { res, payment } = await postPaying("/v1/chat/completions", JSON.stringify({ ...request, stream: true }), init.signal, perRequest, true);
          paid = payment;
          if (!res.body) throw new SrpApiError(502, "job.upstream_error", "the hub sent no stream");
          let finished = false;
          for await (const event of parseSse(res.body)) {
            if (event.data === "[DONE]") {
              finished = true;
              break;
            }
            const data = JSON.parse(event.data) as ChatCompletionChunk & { error?: { code?: string; message?: string } };
            if (data.error) throw new SrpApiError(200, data.error.code ?? "job.stream_interrupted", data.error.message ?? "stream failed");
            yield data;
          }
          if (!finished) throw new SrpApiError(200, "job.stream_interrupted", "the stream ended without [DONE]");
        })();
        return Object.defineProperty(chunks, "payment", { get: () => paid, enumerable: true }) as ChatStream;
      },
    },
    async models() {
      const res = await doFetch(`${base}/v1/models`, { headers: auth() });
      if (!res.ok) throw await apiError(res);
      return ((await res.json()) as { data: CatalogModel[] }).data;
    },
    async receipt(id) {
      await ensureKey();
      const [res, d] = await Promise.all([doFetch(`${base}/v1/receipts/${encodeURIComponent(id)}`, { headers: auth() }), discovery()]);
      if (!res.ok) throw await apiError(res);
      const { receipt } = (await res.json()) as { receipt: Receipt };
      return { receipt, check: verifyHubReceipt(receipt, d.hubId) };
    },
    discovery,
    balance,
    x402: {
      async deposit(amount, init = {}) {
        needWallet();
        if (typeof amount !== "bigint" || amount <= 0n) throw new RangeError("a deposit is a positive bigint of atomic USDC units");
        const { res, payment } = await postPaying("/v1/futures/deposit", JSON.stringify({ amount: amount.toString() }), init.signal, { ...limits, amount }, false);
        const body = (await res.json()) as X402Deposit;
        return { ...body, ...(payment ? { payment } : {}) };
      },
      signIn,
      async refund(init = {}) {
        const { account } = needWallet();
        const accountId = session?.account_id ?? (apiKey !== undefined ? (await balance()).id : (await signIn(init)).account_id);
        const [d, fresh] = await Promise.all([discovery(), nonce(init.signal)]);
        const message = refundMessage(d.hubId, accountId, fresh);
        const signature = await account.signMessage({ message });
        return postJson<X402Refund>("/v1/futures/refund", { message, signature }, init.signal);
      },
    },
  };
}
