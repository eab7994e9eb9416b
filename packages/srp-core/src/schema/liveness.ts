/** Liveness and load: `heartbeat` and `probe_result` (node), `probe` (hub). */
import { Type, type Static } from "@sinclair/typebox";
import { ErrorCodeString, Id, message, SCHEMA_LIMITS, Text, Timestamp } from "./primitives.js";

/** Load of one instance. */
export const InstanceLoad = Type.Object(
  { instanceId: Id, active: Type.Integer({ minimum: 0, maximum: 65535 }), capacity: Type.Integer({ minimum: 0, maximum: 65535 }) },
  { additionalProperties: false, title: "InstanceLoad" },
);
/** Load of one instance. */
export type InstanceLoad = Static<typeof InstanceLoad>;

/** Node -> hub, every heartbeat interval. */
export const Heartbeat = message(
  "heartbeat",
  { ts: Timestamp, load: Type.Array(InstanceLoad, { maxItems: SCHEMA_LIMITS.maxInstances }) },
  "Liveness and current load per instance (active jobs and capacity).",
);
/** Node -> hub, every heartbeat interval. */
export type Heartbeat = Static<typeof Heartbeat>;

/** Hub -> node: check that an instance (usually a parked one) can serve. */
export const Probe = message(
  "probe",
  { probeId: Id, instanceId: Id, deadline: Timestamp },
  "Ask the node to exercise one instance's backend with a minimal generation and report the outcome.",
);
/** Hub -> node: check that an instance can serve. */
export type Probe = Static<typeof Probe>;

/** Node -> hub: outcome of a probe. */
export const ProbeResult = message(
  "probe_result",
  {
    probeId: Id,
    instanceId: Id,
    ok: Type.Boolean(),
    latencyMs: Type.Integer({ minimum: 0, maximum: 3_600_000 }),
    error: Type.Optional(Type.Object({ code: ErrorCodeString, message: Text }, { additionalProperties: false })),
  },
  "Whether the probed instance answered, how fast, and why not.",
);
/** Node -> hub: outcome of a probe. */
export type ProbeResult = Static<typeof ProbeResult>;
