/** Fetching and validating a hub's discovery document (Web-standard `fetch`, any runtime). */
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Discovery, DISCOVERY_PATH } from "./schema/discovery.js";

const checkDiscovery = TypeCompiler.Compile(Discovery);

/**
 * Fetches `/.well-known/srp.json` from a hub's base URL and validates it.
 * @throws Error when the hub answers an error status or the document does not match the schema.
 *
 * @example
 * const doc = await fetchDiscovery("http://127.0.0.1:8787");
 * console.log(doc.hubId, doc.provider.url);
 */
export async function fetchDiscovery(baseUrl: string, init: RequestInit = {}): Promise<Discovery> {
  const url = new URL(DISCOVERY_PATH, baseUrl);
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const doc: unknown = await response.json();
  if (!checkDiscovery.Check(doc)) throw new Error(`${url} is not an SRP discovery document`);
  return doc;
}
