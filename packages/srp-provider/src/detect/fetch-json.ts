/** The one I/O helper of detection: a bounded GET (or other request) whose JSON answer is read, or undefined. */

/** The JSON of `url`'s answer within `timeoutMs`; undefined on a non-2xx answer, a time-out or a body that is not JSON. */
export async function getJson(url: string, timeoutMs: number, init?: RequestInit): Promise<unknown> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return await res.json();
  } catch {
    return undefined;
  }
}
