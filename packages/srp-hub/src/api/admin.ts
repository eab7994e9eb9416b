/**
 * The HTTP admin API, behind a bearer admin token: accounts, API keys, wallets and the
 * live sessions. The same operations are library calls (`AccountAdmin`) and CLI commands.
 *
 *   GET    /admin/v1/accounts                 list accounts
 *   POST   /admin/v1/accounts                 create one  {id?, name?}
 *   GET    /admin/v1/accounts/{id}            one account and its keys
 *   POST   /admin/v1/accounts/{id}/keys       create a key {label?, tags?, expires_at?, models?, budget?, limits?}
 *                                             (the body of `POST /v1/account/keys`); the key is shown once
 *   POST   /admin/v1/accounts/{id}/wallets    bind a wallet {address}
 *   DELETE /admin/v1/keys/{keyId}             revoke a key (and close the node sessions bound with it)
 *   GET    /admin/v1/sessions                 provider sessions online
 *   GET    /admin/v1/accounts/{id}/balance    the account's money (ledger summary)
 *   POST   /admin/v1/accounts/{id}/deposits   credit a deposit {amount (units), reference}
 *   POST   /admin/v1/accounts/{id}/refund     refund the unused prepaid balance {reference}
 *   GET    /admin/v1/ledger/verify            check every invariant of the books
 *   GET    /admin/v1/ledger/top?by=earned|spent&limit=N   top earners or spenders
 */
import { timingSafeEqual } from "node:crypto";
import { sha256Hex, SrpError } from "@srp/core";
import type { AccountAdmin } from "../accounts.js";
import { applyPolicyPatch, NO_POLICY, PolicyError } from "../keys/policy.js";
import type { LedgerBooks } from "../ledger/ledger.js";
import { money } from "./account.js";
import { bearer, errorResponse, fail, readJsonObject } from "./http.js";
import { keyRecordJson, parseKeyBody } from "./keys.js";

/** What the admin API needs. */
export interface AdminContext {
  token: string;
  admin: AccountAdmin | undefined;
  books: LedgerBooks | undefined;
  sessions(): unknown[];
  /** Told after a key was revoked: the hub then closes the sessions bound with it (SRP-SEC-022); the answer waits for it. */
  revoked?(): Promise<unknown> | void;
}

/** The path prefix of the admin API. */
export const ADMIN_PREFIX = "/admin/v1/";

function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  // Compare digests so the comparison takes the same time whatever the lengths.
  return timingSafeEqual(Buffer.from(sha256Hex(given), "hex"), Buffer.from(sha256Hex(expected), "hex"));
}

/** Whether a request carries the admin token (`Authorization: Bearer <token>`), compared in constant time. */
export function adminAuthorized(request: Request, token: string): boolean {
  return tokenMatches(bearer(request), token);
}

/** Handles a request under `/admin/v1/`. */
export async function handleAdmin(request: Request, path: string, ctx: AdminContext): Promise<Response> {
  if (!adminAuthorized(request, ctx.token)) return fail("api.unauthorized", "the admin API needs `Authorization: Bearer <admin token>`");
  const admin = ctx.admin;
  const parts = path.slice(ADMIN_PREFIX.length).split("/").map(decodeURIComponent);
  const method = request.method;
  try {
    if (parts[0] === "sessions" && parts.length === 1) {
      return method === "GET" ? Response.json({ data: ctx.sessions() }) : fail("api.method_not_allowed", "use GET");
    }
    const books = ctx.books;
    if (parts[0] === "ledger" && parts.length === 2) {
      if (!books) return fail("api.not_found", "this hub keeps no ledger");
      if (method !== "GET") return fail("api.method_not_allowed", "use GET");
      if (parts[1] === "verify") {
        const problems = await books.verify();
        return Response.json({ ok: problems.length === 0, problems });
      }
      if (parts[1] === "top") {
        const q = new URL(request.url).searchParams;
        const by = q.get("by") ?? "earned";
        const limit = Number(q.get("limit") ?? "10");
        if ((by !== "earned" && by !== "spent") || !Number.isInteger(limit) || limit < 1 || limit > 1000)
          return fail("api.invalid_body", "by=earned|spent, limit=1..1000");
        return Response.json({
          by,
          data: (await books.top(by, limit)).map((t) => ({ account: t.accountId, amount: money(t.amount), jobs: t.jobs })),
        });
      }
    }
    if (
      parts[0] === "accounts" &&
      parts.length === 3 &&
      parts[1] &&
      (parts[2] === "balance" || parts[2] === "deposits" || parts[2] === "refund")
    ) {
      if (!books) return fail("api.not_found", "this hub keeps no ledger");
      if (admin && !(await admin.getAccount(parts[1]))) return fail("api.not_found", `no account ${parts[1]}`);
      if (parts[2] === "balance") {
        if (method !== "GET") return fail("api.method_not_allowed", "use GET");
        const s = await books.summary(parts[1]);
        return Response.json({
          account: s.accountId,
          balance: money(s.balance),
          held: money(s.held),
          prepaid: money(s.prepaid),
          discount_bps: s.discountBps,
          spent: money(s.spent),
          earned: money(s.earned),
          deposited: money(s.deposited),
          refunded: money(s.refunded),
          requests: s.requests,
        });
      }
      if (method !== "POST") return fail("api.method_not_allowed", "use POST");
      const body = await readJsonObject(request, 64 * 1024);
      if (body instanceof SrpError) return errorResponse(body);
      if (typeof body.reference !== "string" || !/^[\x21-\x7e]{1,128}$/.test(body.reference))
        return fail("api.invalid_body", "`reference` (1-128 visible ASCII characters) makes the movement idempotent");
      if (parts[2] === "deposits") {
        if (typeof body.amount !== "string" || !/^[1-9][0-9]{0,17}$/.test(body.amount))
          return fail("api.invalid_body", "`amount` is a positive whole number of atomic units, as a string");
        const posted = await books.deposit(parts[1], BigInt(body.amount), body.reference, { by: "admin API" });
        return Response.json(
          { account: parts[1], deposited: money(BigInt(body.amount)), reference: body.reference, posted },
          { status: posted ? 201 : 200 },
        );
      }
      return Response.json({ account: parts[1], refunded: money(await books.refund(parts[1], body.reference)), reference: body.reference });
    }
    if (!admin) return fail("api.not_found", "this hub has no admin operations (the `admin` option)");
    if (parts[0] === "accounts" && parts.length === 1) {
      if (method === "GET") return Response.json({ data: await admin.listAccounts() });
      if (method !== "POST") return fail("api.method_not_allowed", "use GET or POST");
      const body = await readJsonObject(request, 64 * 1024);
      if (body instanceof SrpError) return errorResponse(body);
      const input: { id?: string; name?: string } = {};
      if (typeof body.id === "string") input.id = body.id;
      if (typeof body.name === "string") input.name = body.name;
      return Response.json(await admin.createAccount(input), { status: 201 });
    }
    if (parts[0] === "accounts" && parts.length === 2 && parts[1]) {
      if (method !== "GET") return fail("api.method_not_allowed", "use GET");
      const account = await admin.getAccount(parts[1]);
      if (!account) return fail("api.not_found", `no account ${parts[1]}`);
      return Response.json({ ...account, keys: (await admin.listApiKeys(account.id)).map((k) => keyRecordJson(k)) });
    }
    if (parts[0] === "accounts" && parts.length === 3 && parts[1] && (parts[2] === "keys" || parts[2] === "wallets")) {
      if (method !== "POST") return fail("api.method_not_allowed", "use POST");
      if (!(await admin.getAccount(parts[1]))) return fail("api.not_found", `no account ${parts[1]}`);
      const body = await readJsonObject(request, 64 * 1024);
      if (body instanceof SrpError) return errorResponse(body);
      if (parts[2] === "keys") {
        const { label, ...patch } = parseKeyBody(body);
        const { key, record } = await admin.createApiKey(parts[1], label ?? undefined, applyPolicyPatch(NO_POLICY, patch));
        return Response.json({ key, ...keyRecordJson(record) }, { status: 201, headers: { "cache-control": "no-store" } });
      }
      if (typeof body.address !== "string") return fail("api.invalid_body", "`address` is required");
      await admin.addWallet(parts[1], body.address);
      return Response.json({ accountId: parts[1], address: body.address.toLowerCase() }, { status: 201 });
    }
    if (parts[0] === "keys" && parts.length === 2 && parts[1]) {
      if (method !== "DELETE") return fail("api.method_not_allowed", "use DELETE");
      if (!(await admin.revokeApiKey(parts[1]))) return fail("api.not_found", `no active key ${parts[1]}`);
      await ctx.revoked?.();
      return new Response(null, { status: 204 });
    }
    return fail("api.not_found", `no admin route ${method} ${path}`);
  } catch (error) {
    if (error instanceof TypeError || error instanceof PolicyError) return fail("api.invalid_body", error.message);
    throw error;
  }
}
