/**
 * Where a server does not say whether a model takes tools (vLLM, older LM Studio and
 * llama.cpp builds, unknown OpenAI-compatible servers), one short request decides: a
 * one-token chat request offering a trivial tool. A 2xx answer means tools work; a 4xx
 * that names tools means they do not; anything else leaves it unknown (and unoffered).
 */

/** What a probe found. */
export type ProbeVerdict = "yes" | "no" | "unknown";

/** The verdict of a tools probe from the server's status and body. */
export function toolProbeVerdict(status: number, body: string): ProbeVerdict {
  if (status >= 200 && status < 300) return "yes";
  if (status >= 400 && status < 500 && status !== 401 && status !== 403 && status !== 404 && status !== 429 && /tool/i.test(body))
    return "no";
  return "unknown";
}

/** The probe request's body: one token, a trivial tool. */
export function toolProbeBody(model: string): Record<string, unknown> {
  return {
    model,
    messages: [{ role: "user", content: "ping" }],
    max_tokens: 1,
    stream: false,
    tools: [{ type: "function", function: { name: "noop", description: "Does nothing.", parameters: { type: "object", properties: {} } } }],
    tool_choice: "auto",
  };
}

/** Sends the tools probe to `baseUrl` (with `/v1`), bounded by `timeoutMs`. */
export async function probeTools(baseUrl: string, model: string, timeoutMs = 10_000): Promise<ProbeVerdict> {
  try {
    const res = await fetch(`${baseUrl.replace(/\/+$/, "")}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(toolProbeBody(model)),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return toolProbeVerdict(res.status, text.slice(0, 4096));
  } catch {
    return "unknown";
  }
}
