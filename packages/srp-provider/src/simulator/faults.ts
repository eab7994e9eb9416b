/**
 * The simulator's fault injection: the fault `Simulator.setFault` arms, handed to each
 * request that takes one until its count runs out (the kinds are `SimulatorFault` in
 * `context.ts`).
 */
import type { SimulatorFault } from "./context.js";

/** The armed fault of a simulator. */
export interface FaultSlot {
  /** The fault to inject into this request, if any (counts it down, and disarms it at zero). */
  takeFault(): SimulatorFault | undefined;
  /** Arms `fault` for the next `count` requests (default: every request until cleared), or clears it. */
  setFault(fault: SimulatorFault | undefined, count?: number): void;
}

/** A slot with no fault armed. */
export function createFaultSlot(): FaultSlot {
  let fault: SimulatorFault | undefined;
  let remaining = Infinity;
  return {
    takeFault() {
      if (!fault) return undefined;
      const taken = fault;
      if (--remaining <= 0) fault = undefined;
      return taken;
    },
    setFault(next, count) {
      fault = next;
      remaining = count ?? Infinity;
    },
  };
}
