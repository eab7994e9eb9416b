/**
 * The hub's web dashboard in a real browser: headless Chromium (Debian's `chromium`, or
 * `SRP_CHROMIUM`) driven by `puppeteer-core`, against a real hub on a SQLite ledger with a
 * provider node serving the model simulator and the official `openai` SDK as the consumer.
 * A consumer signs in with an API key and with a wallet (EIP-4361, the wallet injected as
 * `window.ethereum` and signing with a real key), sees its balance, its usage chart, a request
 * and its receipt verified in the page, and manages keys; the provider sees its node and
 * earnings; the operator sees the network, a ledger verification, accounts, an x402 payment
 * (written through the payment book) and a payout voucher for the provider's earnings. The
 * page never asks any origin but the hub's. With `SRP_DASHBOARD_SCREENSHOTS=1` it saves a
 * screenshot of each page in docs/dashboard/. Skipped (with a message) only when no Chromium is found.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import { signPayout } from "@srp/core/chain";
import { createHub, SqliteStore, type Hub } from "@srp/hub";
import { createProvider, openAICompatibleBackend, type Provider } from "@srp/provider";
import { startSimulator, type Simulator } from "@srp/provider/simulator";

/** The little of the browser the functions run in the page use (this file compiles without the DOM library). */
interface InPage {
  querySelector(selector: string): { textContent: string | null } | null;
  documentElement: { scrollWidth: number };
}
declare const document: InPage;
declare const window: Record<string, unknown>;

const MODEL = "sim-llama-3-8b";
const ADMIN_TOKEN = "admin-token-for-dashboard-tests-1";
const CHROMIUM = [process.env.SRP_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => p && existsSync(p));
const SHOTS = process.env.SRP_DASHBOARD_SCREENSHOTS === "1" ? new URL("../docs/dashboard/", import.meta.url).pathname : undefined;
if (!CHROMIUM) console.warn("test/dashboard.test.ts skipped: no Chromium found (set SRP_CHROMIUM, or apt-get install chromium)");

let dir = "";
let store: SqliteStore;
let hub: Hub;
let url = "";
let sim: Simulator;
let provider: Provider;
let browser: Browser;
let consumerKey = "";
let consumerId = "";
let providerKey = "";
/** Every URL the pages asked for. */
const requested: string[] = [];

/** A new tab at the dashboard (its own session storage), recording what it asks for and any page error. */
async function open(before?: (page: Page) => Promise<void>): Promise<Page & { errors: string[] }> {
  const page = (await browser.newPage()) as Page & { errors: string[] };
  page.errors = [];
  await page.setViewport({ width: 1200, height: 820 });
  page.on("request", (r) => requested.push(r.url()));
  page.on("pageerror", (e) => page.errors.push(String(e)));
  await before?.(page);
  await page.goto(`${url}/dashboard`, { waitUntil: "load" });
  return page;
}

/** Signs a tab in with an API key. */
async function signInWithKey(page: Page, key: string): Promise<void> {
  await page.type("#signin-key", key);
  await page.click("#signin-key ~ button[type=submit]");
  await page.waitForSelector("nav[aria-label='Dashboard sections']");
}

/** Goes to a page of the dashboard by its navigation link (as a keyboard user would: focus and Enter). */
async function go(page: Page, name: string): Promise<void> {
  await page.focus(`a[data-page='${name}']`);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`a[data-page='${name}'][aria-current='page']`);
}

/** The text of the first element matching a selector, once it contains `text`. */
async function textOf(page: Page, selector: string, text: string | RegExp, timeout = 10_000): Promise<string> {
  const pattern = typeof text === "string" ? text : text.source;
  const isRegex = typeof text !== "string";
  await page.waitForFunction(
    (sel: string, p: string, re: boolean) => {
      const el = document.querySelector(sel);
      if (!el) return false;
      return re ? new RegExp(p).test(el.textContent ?? "") : (el.textContent ?? "").includes(p);
    },
    { timeout },
    selector,
    pattern,
    isRegex,
  );
  return page.$eval(selector, (el) => el.textContent ?? "");
}

/** Atomic units as the page shows them (`$0.000026`, `$1.00`). */
function usd(units: bigint): string {
  const frac = (units % 1_000_000n).toString().padStart(6, "0").replace(/0+$/, "").padEnd(2, "0");
  return `$${units / 1_000_000n}.${frac}`;
}

/** Saves a screenshot of a tab in docs/dashboard/ when SRP_DASHBOARD_SCREENSHOTS=1. */
async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

describe.skipIf(!CHROMIUM)("the dashboard in headless Chromium", () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "srp-dashboard-"));
    store = new SqliteStore(join(dir, "hub.sqlite"));
    hub = createHub({ identity: generateIdentity(), accounts: store, storage: store, adminToken: ADMIN_TOKEN, statementIntervalMs: 0 });
    ({ url } = await hub.listen({ port: 0, host: "127.0.0.1" }));
    sim = await startSimulator();
    const providerAccount = await store.createAccount({ name: "provider" });
    providerKey = (await store.createApiKey(providerAccount.id)).key;
    provider = createProvider({
      hub: url,
      identity: generateIdentity(),
      account: providerKey,
      reconnect: false,
      instances: [
        { backend: openAICompatibleBackend({ baseUrl: sim.baseUrl }), model: MODEL, price: { input: "1000000", output: "3000000" } },
      ],
    });
    await provider.ready();
    const consumer = await store.createAccount({ name: "consumer" });
    consumerId = consumer.id;
    consumerKey = (await store.createApiKey(consumer.id)).key;
    browser = await puppeteer.launch({ executablePath: CHROMIUM!, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await provider?.close();
    await hub?.close();
    await sim?.close();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    // Nothing but the hub was asked for: no CDN, no fonts, no analytics.
    expect(requested.length).toBeGreaterThan(0);
    // (data: URLs are the browser's own, such as a date input's icon, not requests.)
    expect(requested.filter((u) => !u.startsWith(`${url}/`) && !u.startsWith("data:"))).toEqual([]);
  }, 30_000);

  it("serves its page and assets from the hub, with a policy that allows nothing else", async () => {
    const page = await fetch(`${url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await page.text()).toContain('<script type="module" src="./app.js">');
    const bare = await fetch(`${url}/dashboard`, { redirect: "manual" });
    expect(bare.status).toBe(308);
    expect(bare.headers.get("location")).toBe("dashboard/");
    expect((await fetch(`${url}/dashboard/app.js`)).headers.get("content-type")).toMatch(/^text\/javascript/);
    expect((await fetch(`${url}/dashboard/nope.js`)).status).toBe(404);
  });

  it("signs a consumer in with a key: balance, a usage chart, and a real request's receipt verified in the page", async () => {
    const page = await open();
    await shot(page, "sign-in");
    await signInWithKey(page, consumerKey);
    expect(await textOf(page, "[data-testid=account-id]", consumerId)).toContain(consumerId);
    expect(await textOf(page, "[data-testid=balance]", "$")).toBe("$1.00");

    const sdk = new OpenAI({ baseURL: `${url}/v1`, apiKey: consumerKey, maxRetries: 0 });
    const done = await sdk.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Hello there." }], max_tokens: 12 });
    const usage = done.usage as unknown as { receipt_id: string; cost_units: string };
    expect(usage.receipt_id).toMatch(/^job_/);

    await page.reload({ waitUntil: "load" });
    const charged = BigInt(usage.cost_units);
    const balance = await textOf(page, "[data-testid=requests]", "1");
    expect(balance).toBe("1");
    await shot(page, "account");
    // Narrow screens get one column (responsive), nothing wider than the viewport.
    await page.setViewport({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(page, "account-narrow");
    await page.setViewport({ width: 1200, height: 820 });

    await go(page, "usage");
    await page.waitForSelector("svg[data-chart=requests] rect[data-value='1']");
    await page.waitForSelector(`svg[data-chart=spend] rect[data-value='${charged}']`);
    await shot(page, "usage");

    await go(page, "requests");
    const status = await textOf(page, `[data-testid='receipt-${usage.receipt_id}']`, /verified|✗/);
    expect(status).toBe("✓ verified");
    await page.click(`tr:has([data-testid='receipt-${usage.receipt_id}']) summary`);
    await shot(page, "requests");
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it("creates a key with a budget and a rate limit in the page, which the SDK then uses; edits and revokes it", async () => {
    const page = await open();
    page.on("dialog", (d) => void d.accept());
    await signInWithKey(page, consumerKey);
    await go(page, "keys");
    await page.click("button[aria-expanded]");
    await page.type("#new-label", "ci bot");
    await page.type("#new-tags", "team-a, ci");
    await page.type("#new-total", "0.50");
    await page.type("#new-rpm", "100");
    await page.click("form.key-form button[type=submit]");
    await page.waitForSelector("[data-testid=new-key], [role=alert]");
    expect(await page.$eval("main", (m) => m.querySelector("[role=alert]")?.textContent ?? "")).toBe("");
    const secret = (await textOf(page, "[data-testid=new-key]", /\S{16}/)).trim();
    const created = (await (await fetch(`${url}/v1/account/keys`, { headers: { authorization: `Bearer ${consumerKey}` } })).json()) as {
      data: { id: string; label: string | null; budget: { total: { usd: string } | null }; limits: { rpm: number | null } }[];
    };
    const key = created.data.find((k) => k.label === "ci bot")!;
    expect(key).toMatchObject({ budget: { total: { usd: "0.50" } }, limits: { rpm: 100 } });
    await shot(page, "keys-created");

    // The SDK uses the key the page created; the page then shows what it spent.
    const sdk = new OpenAI({ baseURL: `${url}/v1`, apiKey: secret, maxRetries: 0 });
    const done = await sdk.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Budgeted." }], max_tokens: 8 });
    const cost = (done.usage as unknown as { cost: string }).cost;
    await page.reload({ waitUntil: "load" });
    const row = `tr[data-key='${key.id}']`;
    expect(await textOf(page, row, `total $${cost.replace(/0+$/, "").replace(/\.$/, ".00")} of $0.50`)).toContain("100 req/min");
    await shot(page, "keys");

    // A key whose budget cannot cover a request is refused with 402 before anything runs.
    await page.click("button[aria-expanded]");
    await page.type("#new-label", "tiny");
    await page.type("#new-total", "0.000001");
    await page.click("form.key-form button[type=submit]");
    await page.waitForFunction(
      (before: string) => {
        const shown = document.querySelector("[data-testid=new-key]")?.textContent ?? "";
        return shown.length > 16 && shown !== before;
      },
      {},
      secret,
    );
    const tiny = (await page.$eval("[data-testid=new-key]", (el) => el.textContent ?? "")).trim();
    expect(tiny).not.toBe(secret);
    const refused = await new OpenAI({ baseURL: `${url}/v1`, apiKey: tiny, maxRetries: 0 }).chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "Too dear." }], max_tokens: 8 })
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      );
    expect(refused?.status).toBe(402);

    // Edit: a daily budget; then revoke.
    await page.click(`${row} button[aria-label^='Edit']`);
    await page.type(`#edit-${key.id}-day`, "0.25");
    await page.click(`#edit-${key.id}-day`);
    await page.click(`tr:has(#edit-${key.id}-day) button[type=submit]`);
    await textOf(page, row, "of $0.25");
    await page.click(`${row} button[aria-label^='Revoke']`);
    await page.waitForSelector(`${row}.revoked`);
    const after = await sdk.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "Revoked." }], max_tokens: 8 })
      .then(
        () => undefined,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      );
    expect(after?.status).toBe(401);
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it("signs a wallet in (EIP-4361) with the browser's wallet and shows its account", async () => {
    const wallet = privateKeyToAccount(generatePrivateKey());
    const page = await open(async (p) => {
      // An EIP-1193 wallet in the page whose signatures are made here by a real key.
      await p.exposeFunction("srpTestSign", (hex: string) => wallet.signMessage({ message: { raw: hex as `0x${string}` } }));
      await p.evaluateOnNewDocument((address: string) => {
        (window as unknown as { ethereum: unknown }).ethereum = {
          request: async ({ method, params }: { method: string; params?: unknown[] }) => {
            if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
            if (method === "eth_chainId") return "0x2105";
            if (method === "personal_sign")
              return (window as unknown as { srpTestSign(h: unknown): Promise<string> }).srpTestSign(params![0]);
            throw new Error(`unsupported ${method}`);
          },
        };
      }, wallet.address);
    });
    await page.click("#wallet-title ~ button");
    await page.waitForSelector("nav[aria-label='Dashboard sections']");
    expect((await textOf(page, "header.top", "wallet")).toLowerCase()).toContain(wallet.address.toLowerCase());
    const accountId = await textOf(page, "[data-testid=account-id]", "acct_");
    // The wallet's own account, which the hub keys by the wallet.
    expect(accountId).not.toBe(consumerId);
    expect(await store.payments.walletAccount(wallet.address.toLowerCase())).toBe(accountId);
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it("shows the provider its node, instance and earnings after the job", async () => {
    await hub.issueStatements(true);
    const earned = (await store.summary((await store.findByApiKey(providerKey))!.id)).earned;
    expect(earned).toBeGreaterThan(0n);
    const page = await open();
    await signInWithKey(page, providerKey);
    await go(page, "provider");
    const shown = await textOf(page, "[data-testid=provider-earned]", "$");
    expect(shown).toBe(usd(earned));
    await textOf(page, "article.node", MODEL);
    expect(await textOf(page, "article.node", "Statements")).toMatch(/closed/);
    await page.waitForSelector("svg[data-chart=earnings] rect:not([data-value='0'])");
    await shot(page, "provider");
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it("signs the operator in with the admin token: the network, a ledger verification, accounts, payments and payouts", async () => {
    // An x402 payment as the flow leaves it once settled, and a voucher for the provider's earnings.
    const payer = privateKeyToAccount(generatePrivateKey());
    const paid = await store.payments.lock({
      network: "eip155:1337",
      asset: "0x00000000000000000000000000000000000000aa",
      payer: payer.address,
      nonce: `0x${"7".repeat(64)}`,
      amount: 250_000n,
      validBefore: Math.floor(Date.now() / 1000) + 600,
      accountId: await store.payments.walletAccount(payer.address),
      mode: "before",
      resource: `${url}/v1/chat/completions`,
      payload: "{}",
    });
    await store.payments.settled(paid.record.id, `0x${"ab".repeat(32)}`);
    const signer = privateKeyToAccount(generatePrivateKey());
    const settlement = "0x00000000000000000000000000000000000000dd" as const;
    const payee = privateKeyToAccount(generatePrivateKey()).address;
    const voucher = await store.payouts.issue({
      accountId: (await store.findByApiKey(providerKey))!.id,
      payee,
      settlement,
      chainId: 1337,
      sign: (to, total) => signPayout(signer, { chainId: 1337, settlement, payee: to as `0x${string}`, total }),
    });
    expect(voucher).toBeDefined();

    const page = await open();
    await page.type("#signin-token", ADMIN_TOKEN);
    await page.click("#signin-token ~ button[type=submit]");
    await page.waitForSelector("nav[aria-label='Dashboard sections']");
    expect(await textOf(page, "[data-testid=sessions]", "1")).toBe("1");
    await textOf(page, `tr[data-model='${MODEL}']`, MODEL);
    await shot(page, "network");
    await go(page, "ledger");
    expect(await textOf(page, "[data-testid=ledger-verify]", "books")).toContain("The books balance");
    await shot(page, "ledger");
    await go(page, "accounts");
    await textOf(page, "main table", consumerId);
    await shot(page, "accounts");
    await go(page, "payments");
    const payment = await textOf(page, `[data-testid=payments] tr[data-id='${paid.record.id}']`, "settled");
    expect(payment).toContain(usd(250_000n));
    expect(payment).toContain("eip155:1337");
    await shot(page, "payments");
    await go(page, "payouts");
    const payout = await textOf(page, `[data-testid=payouts] tr[data-id='${voucher!.id}']`, "issued");
    expect(payout).toContain(usd(voucher!.amount));
    await shot(page, "payouts");
    expect(requested).toContain(`${url}/admin/v1/payments?limit=50`);
    expect(requested).toContain(`${url}/admin/v1/payouts?limit=50`);
    expect(page.errors).toEqual([]);
    await page.close();
  });

  it("refuses a wrong key and a wrong admin token in the page", async () => {
    const page = await open();
    await page.type("#signin-key", "sk-not-a-key");
    await page.click("#signin-key ~ button[type=submit]");
    expect(await textOf(page, "[role=alert]", "unauthorized")).toContain("not known");
    await page.type("#signin-token", "wrong-token");
    await page.click("#signin-token ~ button[type=submit]");
    expect(await textOf(page, "[role=alert]", "api.unauthorized")).toContain("admin");
    await page.close();
  });
});
