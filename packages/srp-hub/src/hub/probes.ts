/**
 * Probes of parked instances (spec/v1/routing.md): sends a `probe` to each instance whose
 * breaker is due for one, reports each `probe_result` to the router, and counts a probe
 * unanswered by its deadline as failed.
 */
import { randomBytes, toBase64Url } from "@srp/core";
import type { ProbeResult } from "@srp/core/schema";
import type { LiveInstance, Router } from "../routing/router.js";
import type { ProviderSession } from "../session.js";

/** How often due probes are sent and late ones failed. */
const PROBE_TICK_MS = 250;

/** Probes in flight. */
export interface Probes {
  /** A session answered a probe (the session's `onProbeResult`). */
  onResult(session: ProviderSession, result: ProbeResult): void;
  /** Stops sending probes. */
  stop(): void;
}

/** A probe in flight. */
interface PendingProbe {
  readonly live: LiveInstance;
  readonly deadline: number;
}

/** Fails the probes past their deadline, then sends the probes now due. */
function tick(router: Router, pending: Map<string, PendingProbe>, timeoutMs: number, now: number): void {
  for (const [id, p] of pending) {
    if (now <= p.deadline) continue;
    pending.delete(id);
    router.probeResult(p.live.key, p.live.instance.model, false, now);
  }
  for (const live of router.dueProbes(now)) {
    const probeId = `probe_${toBase64Url(randomBytes(12))}`;
    pending.set(probeId, { live, deadline: now + timeoutMs });
    // dueProbes returns instances of local sessions only.
    (live.session as ProviderSession).send({ type: "probe", probeId, instanceId: live.instance.instanceId, deadline: now + timeoutMs });
  }
}

/** Starts probing the router's parked instances; each probe may take `timeoutMs`. */
export function startProbes(router: Router, timeoutMs: number): Probes {
  const pending = new Map<string, PendingProbe>();
  const timer = setInterval(() => tick(router, pending, timeoutMs, Date.now()), PROBE_TICK_MS);
  timer.unref();
  return {
    onResult(session, result) {
      const p = pending.get(result.probeId);
      if (!p || p.live.session !== session) return;
      pending.delete(result.probeId);
      router.probeResult(p.live.key, p.live.instance.model, result.ok);
    },
    stop() {
      clearInterval(timer);
    },
  };
}
