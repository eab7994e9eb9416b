/**
 * The SRP error code of an error answer the hub built, remembered by the response object
 * itself (nothing added to its headers, its body never read again): the request observer
 * (`hub/requests.ts`) puts it on the `request` event, which the metrics count by code.
 */

const codes = new WeakMap<Response, string>();

/** Remembers the SRP error code of an error response; returns the response. */
export function markErrorCode(response: Response, code: string): Response {
  codes.set(response, code);
  return response;
}

/** The SRP error code of a response built by {@link markErrorCode}'s callers, if any. */
export function errorCodeOf(response: Response): string | undefined {
  return codes.get(response);
}
