/**
 * A node as the processes of one hub tell each other about it: the process holding its
 * session, its offers and its load (pure).
 */
import type { Instance } from "@srp/core/schema";
import type { ProviderSession } from "../session.js";

/** What the directory knows of a node connected to some process. */
export interface NodeSnapshot {
  /** The process holding the node's session. */
  process: string;
  sessionId: string;
  nodeId: string;
  accountId: string;
  instances: Instance[];
  /** Jobs running per instance id. */
  active: Record<string, number>;
  /** Capacity per instance id as the node last reported it. */
  capacity: Record<string, number>;
}

/** The snapshot of a session here (pure). */
export function snapshotOf(session: ProviderSession, processId: string): NodeSnapshot {
  return {
    process: processId,
    sessionId: session.sessionId,
    nodeId: session.nodeId!,
    accountId: session.account?.id ?? "",
    instances: [...session.instances.values()],
    active: Object.fromEntries(session.active),
    capacity: Object.fromEntries(session.reportedCapacity),
  };
}
