// Bench helper: the consumer side. One node:http client with keep-alive agents, used for
// direct calls to the simulator and for calls relayed through the hub alike.
import { Agent, request } from "node:http";
import { emit, serve } from "./ipc.mjs";

const now = () => performance.now();
const agents = [];
function agent(maxSockets) {
  const a = new Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
  agents.push(a);
  return a;
}

/** Whether one SSE event's data carries visible content. */
function hasContent(event) {
  for (const line of event.split("\n")) {
    if (!line.startsWith("data: ")) continue;
    const data = line.slice(6);
    if (data === "[DONE]" || !data.includes('"content"')) continue;
    try {
      const c = JSON.parse(data).choices?.[0]?.delta?.content;
      if (typeof c === "string" && c.length > 0) return true;
    } catch {
      /* not JSON: not content */
    }
  }
  return false;
}

/**
 * POSTs a chat completion. Resolves with the status, the total time (until the last
 * byte) and, for streams, the time to the first content chunk; `count` also counts SSE
 * events and remembers the last one.
 */
function post(url, body, { agent: a, headers = {}, stream = false, count = false }) {
  return new Promise((resolve) => {
    const t0 = now();
    const payload = JSON.stringify(body);
    let ttft;
    let firstByte;
    let pending = "";
    let events = 0;
    let last = "";
    const req = request(
      url,
      {
        method: "POST",
        agent: a,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload), ...headers },
      },
      (res) => {
        res.setEncoding("utf8");
        res.on("data", (text) => {
          firstByte ??= now();
          if (!stream || (ttft !== undefined && !count)) return; // drain
          pending += text;
          let i;
          while ((i = pending.indexOf("\n\n")) >= 0) {
            const event = pending.slice(0, i);
            pending = pending.slice(i + 2);
            if (ttft === undefined && hasContent(event)) ttft = now() - t0;
            if (count && event.startsWith("data: ") && event !== "data: [DONE]") {
              events++;
              last = event;
            }
            if (ttft !== undefined && !count) {
              pending = "";
              break;
            }
          }
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode,
            totalMs: now() - t0,
            ttftMs: ttft,
            firstByteMs: firstByte === undefined ? undefined : firstByte - t0,
            events,
            last,
          }),
        );
        res.on("error", (e) => resolve({ status: 0, error: String(e), totalMs: now() - t0 }));
      },
    );
    req.on("error", (e) => resolve({ status: 0, error: String(e), totalMs: now() - t0 }));
    req.end(payload);
  });
}

const ask = (model, extra) => ({
  model,
  messages: [{ role: "user", content: "Say something about spare capacity." }],
  max_tokens: 16,
  ...extra,
});

serve({
  /**
   * Interleaved, sequential direct and relayed calls: per round a non-stream pair and a
   * stream pair, the order of each pair alternating between rounds.
   */
  async latency({ hubUrl, simBaseUrl, key, model, samples, warmup, budgetMs }) {
    const a = agent(4);
    const relayHeaders = { authorization: `Bearer ${key}` };
    const nsBody = ask(model, { stream: false });
    const stBody = ask(model, { stream: true, stream_options: { include_usage: true } });
    const direct = { url: `${simBaseUrl}/chat/completions`, headers: {} };
    const relayed = { url: `${hubUrl}/v1/chat/completions`, headers: relayHeaders };
    const out = {
      directTotal: [],
      relayedTotal: [],
      directTtft: [],
      relayedTtft: [],
      errors: 0,
      firstError: undefined,
      rounds: 0,
      warmup: 0,
    };
    const one = async (target, body, stream) => {
      const r = await post(target.url, body, { agent: a, headers: target.headers, stream });
      if (r.status !== 200 || (stream && r.ttftMs === undefined)) {
        out.errors++;
        out.firstError ??= `${target === direct ? "direct" : "relayed"} ${stream ? "stream" : "non-stream"}: status ${r.status} ${r.error ?? ""}`;
        return undefined;
      }
      return r;
    };
    const round = async (record, i) => {
      const pairs = [
        [direct, nsBody, false, out.directTotal, "totalMs"],
        [relayed, nsBody, false, out.relayedTotal, "totalMs"],
        [direct, stBody, true, out.directTtft, "ttftMs"],
        [relayed, stBody, true, out.relayedTtft, "ttftMs"],
      ];
      const order = i % 2 === 0 ? [0, 1, 2, 3] : [1, 0, 3, 2];
      for (const k of order) {
        const [target, body, stream, into, field] = pairs[k];
        const r = await one(target, body, stream);
        if (r && record) into.push(r[field]);
      }
    };
    const start = now();
    for (let i = 0; i < warmup && now() - start < budgetMs / 4; i++, out.warmup++) await round(false, i);
    const measureStart = now();
    for (let i = 0; i < samples && now() - start < budgetMs; i++, out.rounds++) await round(true, i);
    out.measureMs = now() - measureStart;
    return out;
  },

  /**
   * Sequential non-stream calls to several targets (`{ name, url, headers }`, `url` the
   * full chat completions URL) over one keep-alive client: one call per target per round,
   * each round starting one target later than the previous, so every target's samples are
   * interleaved in time with the others'. Total times per target, like `latency`.
   */
  async compare({ targets, model, samples, warmup, budgetMs }) {
    const a = agent(4);
    const body = ask(model, { stream: false });
    const out = { totals: Object.fromEntries(targets.map((t) => [t.name, []])), errors: 0, firstError: undefined, rounds: 0, warmup: 0 };
    const round = async (record, i) => {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(i + k) % targets.length];
        const r = await post(t.url, body, { agent: a, headers: t.headers });
        if (r.status !== 200) {
          out.errors++;
          out.firstError ??= `${t.name}: status ${r.status} ${r.error ?? ""}`;
        } else if (record) out.totals[t.name].push(r.totalMs);
      }
    };
    const start = now();
    for (let i = 0; i < warmup && now() - start < budgetMs / 4; i++, out.warmup++) await round(false, i);
    for (let i = 0; i < samples && now() - start < budgetMs; i++, out.rounds++) await round(true, i);
    return out;
  },

  /**
   * `concurrency` requests in flight for `durationMs` after `warmupMs`; counts completions
   * in the window. `headers` replace the default `authorization: Bearer <key>`.
   */
  async throughput({ hubUrl, key, headers: given, model, concurrency, durationMs, warmupMs, drainMs = 15_000 }) {
    const a = agent(concurrency);
    const url = `${hubUrl}/v1/chat/completions`;
    const headers = given ?? { authorization: `Bearer ${key}` };
    const body = ask(model, { stream: false, max_tokens: 8 });
    let phase = "warmup";
    let stop = false;
    const inWindow = { ok: 0, errors: 0, latencies: [], statuses: {} };
    let firstError;
    const worker = async () => {
      while (!stop) {
        const r = await post(url, body, { agent: a, headers });
        if (phase !== "measure") continue;
        inWindow.statuses[r.status] = (inWindow.statuses[r.status] ?? 0) + 1;
        if (r.status === 200) {
          inWindow.ok++;
          inWindow.latencies.push(r.totalMs);
        } else {
          inWindow.errors++;
          firstError ??= `status ${r.status} ${r.error ?? ""}`;
        }
      }
    };
    const started = now();
    const workers = Array.from({ length: concurrency }, worker);
    await new Promise((r) => setTimeout(r, warmupMs));
    phase = "measure";
    emit("measure.start");
    const t0 = now();
    await new Promise((r) => setTimeout(r, durationMs));
    phase = "after";
    const elapsedMs = now() - t0;
    emit("measure.end");
    stop = true;
    await Promise.race([Promise.all(workers), new Promise((r) => setTimeout(r, drainMs))]);
    return { ...inWindow, firstError, elapsedMs, totalMs: now() - started };
  },

  /** One long stream: SSE events received, and the time from the first to the last. */
  async stream({ url, key, model, maxTokens }) {
    const a = agent(1);
    const headers = key ? { authorization: `Bearer ${key}` } : {};
    const body = ask(model, { stream: true, max_tokens: maxTokens, stream_options: { include_usage: true } });
    const r = await post(url, body, { agent: a, headers, stream: true, count: true });
    let lastParsed;
    try {
      lastParsed = JSON.parse(r.last.slice(6));
    } catch {
      /* leave undefined */
    }
    return {
      status: r.status,
      error: r.error ?? (lastParsed?.error ? JSON.stringify(lastParsed.error) : undefined),
      events: r.events,
      totalMs: r.totalMs,
      firstByteMs: r.firstByteMs,
      streamMs: r.totalMs - (r.firstByteMs ?? 0),
      completionTokens: lastParsed?.usage?.completion_tokens,
    };
  },

  close() {
    for (const a of agents.splice(0)) a.destroy();
  },
});
