/**
 * Requirements of spec/v1 that no conformance check can enforce over the wire, each with
 * the reason. `npm run spec:gen` writes the coverage table (spec/v1/coverage.md) from the
 * checks' `requirements` and this list; `npm run spec:check` fails when a MUST is neither
 * cited by a check nor listed here, or when an id here is cited by a check or not defined.
 *
 * Entries are grouped by prefix; keep each group sorted by id.
 */
export const NOT_WIRE_TESTABLE: Readonly<Record<string, string>> = {
  // TR: transport
  // FRM: frames
  // HS, AUTH: handshake
  // OFF: offers
  // JOB: jobs
  // LIV: liveness
  // ATT: attestation
  // SET: settlement
  // MON: money
  // BIL: billing
  // CON: consumer API
  // PAY, WAL: payments and wallets
  // ERR: errors
  // SEC: security
  // VER: versioning
};
