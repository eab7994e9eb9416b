/**
 * What kind of output meter a consumer surface built for a job (SRP-ATT-016), so that a
 * job forwarded to the hub process holding its node is measured there the same way: the
 * surfaces tag the meters they build, and a forwarded job carries the tag.
 */
import type { OutputMeasurer } from "@srp/core/metering";

/** The kind of a meter of translated output: the consumer surface, and for legacy completions the number of choices. */
export type MeterSpec = { kind: "completions"; choices: number } | { kind: "responses" } | { kind: "messages" };

const specs = new WeakMap<OutputMeasurer, MeterSpec>();

/** Tags a meter with its kind and returns it. */
export function describedMeter<M extends OutputMeasurer>(meter: M, spec: MeterSpec): M {
  specs.set(meter, spec);
  return meter;
}

/** The kind of a meter built by {@link describedMeter}; undefined for any other. */
export function meterSpecOf(meter: OutputMeasurer | undefined): MeterSpec | undefined {
  return meter === undefined ? undefined : specs.get(meter);
}
