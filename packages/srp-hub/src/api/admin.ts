/**
 * The HTTP admin API, behind a bearer admin token: accounts, API keys, wallets and the
 * live sessions. The same operations are library calls (`AccountAdmin`) and CLI commands.
 *
 *   GET    /admin/v1/accounts                 list accounts
 *   POST   /admin/v1/accounts                 create one  {id?, name?}
 *   GET    /admin/v1/accounts/{id}            one account and its keys
 *   POST   /admin/v1/accounts/{id}/keys       create a key {label?}; the key is shown once
 *   POST   /admin/v1/accounts/{id}/wallets    bind a wallet {address}
 *   DELETE /admin/v1/keys/{keyId}             revoke a key
 *   GET    /admin/v1/sessions                 provider sessions online
 */
import { timingSafeEqual } from "node:crypto";
import { sha256Hex, SrpError } from "@srp/core";
import type { AccountAdmin } from "../accounts.js";
import { bearer, errorResponse, fail, readJsonObject } from "./http.js";

/** What the admin API needs. */
export interface AdminContext {
  token: string;
  admin: AccountAdmin | undefined;
  sessions(): unknown[];
}

/** The path prefix of the admin API. */
export const ADMIN_PREFIX = "/admin/v1/";

function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  // Compare digests so the comparison takes the same time whatever the lengths.
  return timingSafeEqual(Buffer.from(sha256Hex(given), "hex"), Buffer.from(sha256Hex(expected), "hex"));
}

/** Handles a request under `/admin/v1/`. */
export async function handleAdmin(request: Request, path: string, ctx: AdminContext): Promise<Response> {
  if (!tokenMatches(bearer(request), ctx.token)) return fail("api.unauthorized", "the admin API needs `Authorization: Bearer <admin token>`");
  const admin = ctx.admin;
  const parts = path.slice(ADMIN_PREFIX.length).split("/").map(decodeURIComponent);
  const method = request.method;
  try {
    if (parts[0] === "sessions" && parts.length === 1) {
      return method === "GET" ? Response.json({ data: ctx.sessions() }) : fail("api.method_not_allowed", "use GET");
    }
    if (!admin) return fail("api.not_found", "this hub's account store has no admin operations");
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
      return Response.json({ ...account, keys: await admin.listApiKeys(account.id) });
    }
    if (parts[0] === "accounts" && parts.length === 3 && parts[1] && (parts[2] === "keys" || parts[2] === "wallets")) {
      if (method !== "POST") return fail("api.method_not_allowed", "use POST");
      if (!(await admin.getAccount(parts[1]))) return fail("api.not_found", `no account ${parts[1]}`);
      const body = await readJsonObject(request, 64 * 1024);
      if (body instanceof SrpError) return errorResponse(body);
      if (parts[2] === "keys") {
        const { key, record } = await admin.createApiKey(parts[1], typeof body.label === "string" ? body.label : undefined);
        return Response.json({ key, ...record }, { status: 201 });
      }
      if (typeof body.address !== "string") return fail("api.invalid_body", "`address` is required");
      await admin.addWallet(parts[1], body.address);
      return Response.json({ accountId: parts[1], address: body.address.toLowerCase() }, { status: 201 });
    }
    if (parts[0] === "keys" && parts.length === 2 && parts[1]) {
      if (method !== "DELETE") return fail("api.method_not_allowed", "use DELETE");
      return (await admin.revokeApiKey(parts[1])) ? new Response(null, { status: 204 }) : fail("api.not_found", `no active key ${parts[1]}`);
    }
    return fail("api.not_found", `no admin route ${method} ${path}`);
  } catch (error) {
    if (error instanceof TypeError) return fail("api.invalid_body", error.message);
    throw error;
  }
}
