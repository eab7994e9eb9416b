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
  "SRP-TR-004": "a deployment rule (TLS outside loopback); the suite runs over loopback ws, where no certificate is presented to validate",
  // FRM: frames
  // HS, AUTH: handshake
  // OFF: offers
  "SRP-OFF-001": "where an instance's capacity comes from (a GPU, a key, credits, a subscription) is not visible on the wire",
  "SRP-OFF-010": "the model name a node sends its backend travels between node and backend; a peer sees only the offered name",
  "SRP-OFF-011": "the weights a backend loaded are not visible on the wire; a peer sees only the stated quantization",
  "SRP-OFF-012":
    "the backend's metadata and what the model can do are not visible on the wire; a job that fails can fail for other reasons",
  "SRP-OFF-021":
    "what the backend refuses travels between node and backend; a peer sees only the declared io (provider.async.run runs an input the io accepts)",
  // JOB: jobs
  "SRP-JOB-026": "the backend's own usage report travels between node and backend; a peer sees only the usage the node derived from it",
  "SRP-JOB-027":
    "whether the backend reported both counts is visible only between node and backend; a peer cannot tell an estimate from a count",
  "SRP-JOB-049":
    "a hub that countersigned a done keeps nothing of the job to resume: a done sent again after a resume arises only when the first done and the session's end cross on the wire, which a peer cannot arrange",
  // LIV: liveness
  // ATT: attestation
  // SET: settlement
  // MON: money
  // BIL: billing
  "SRP-BIL-001": "ledger bookkeeping inside the hub's database (entries, idempotency keys, balance column); not observable by a peer",
  "SRP-BIL-002": "how a balance is guarded inside the hub's database under concurrency across processes; not observable by a peer",
  "SRP-BIL-011":
    "a check would have to attempt a refund with a limited key, and a hub that wrongly allowed it would pay out the suite account's prepaid money (packages/srp-hub/test/card-deposits.test.ts covers the refusal)",
  "SRP-BIL-015": "recovery after a hub process crashed, inside its database; not observable by a peer",
  "SRP-BIL-017":
    "needs the hub's database taken away and brought back, which a peer cannot do; tested with a real PostgreSQL server in test/cluster-faults.test.ts",
  "SRP-BIL-019":
    "needs a hub configured with a card processor account, which the suite is not given (packages/srp-hub/test/card-deposits.test.ts covers it with a stand-in API)",
  "SRP-BIL-020":
    "needs the hub's webhook secret to sign the processor's events, which only the operator has (packages/srp-hub/test/card-deposits.test.ts covers it)",
  "SRP-BIL-021":
    "needs paid card deposits and the processor's refunds, which only the operator's processor account can make (packages/srp-hub/test/card-deposits.test.ts covers it)",
  // CON: consumer API
  "SRP-CON-052": "retention runs for days (30 by default, the hub's configuration); a check cannot wait for a stored response to expire",
  "SRP-CON-056":
    "the bounds of a conversation are the hub's configuration (1,000 turns by default); a check cannot learn them, nor build such a conversation in its time",
  "SRP-CON-070":
    "which instance serves a request, and what another account sent, are hidden from a peer given one consumer key and no node (test/prefix-affinity.test.ts covers it)",
  "SRP-CON-062":
    "needs an account whose balance lies between two models' worst cases; the suite is given one key with a balance it cannot set (test/fallbacks.test.ts covers it)",
  "SRP-CON-068":
    "the bound is the hub's configuration (256 waiting requests per model by default), which a check cannot learn, nor fill in its time (test/queue.test.ts covers it)",
  // PAY, WAL: payments and wallets
  "SRP-PAY-012":
    "needs a settlement that fails after the hub's checks passed, which no peer can cause on purpose; the credit is internal ledger state",
  "SRP-PAY-013":
    "whether an unserved payment was given up unused shows only on the chain, which the suite (given a hub URL, not an RPC) cannot read",
  "SRP-PAY-014": "needs a settlement that fails after serving; the reversal and the wallet's debt are internal ledger state",
  "SRP-PAY-016": "needs a settlement whose outcome stays unknown, which no peer can cause on purpose",
  "SRP-PAY-017": "reconciliation runs inside the hub, against its own chain client and books",
  "SRP-PAY-018": "the credit of a payment as prepaid money is internal ledger state",
  "SRP-PAY-020": "needs a credited payment whose settlement is still pending, which no peer can hold open",
  "SRP-PAY-029":
    "each step but the first needs a transaction signed on the hub's Solana cluster by a funded payer, which the suite does not hold; the reference hub tests every step against an in-process Solana VM (test/svm-rail.test.ts, test/x402-solana.test.ts)",
  "SRP-PAY-033":
    "needs prepaid money paid in from Solana by a funded payer whose key the suite holds, and the hub's cluster to see the transfer back; the reference hub tests it against an in-process Solana VM (test/solana-refund.test.ts)",
  "SRP-PAY-034":
    "needs provider earnings paid for with Solana money, the provider account's key, and the hub's cluster to see the transfer; the suite is given neither earnings nor a cluster; the reference hub tests it against an in-process Solana VM (test/solana-payout.test.ts)",
  "SRP-WAL-005": "vouchers are signed against the operator's settlement contract and books; the suite has no earnings to pay out",
  // ERR: errors
  "SRP-ERR-007":
    "whether a failure has a more specific code depends on a cause inside the sender, which no peer can see; each check that provokes a failure expects its specific code",
  // SEC: security
  "SRP-SEC-001": "what else a key signs is not visible to any peer",
  "SRP-SEC-003": "key storage at rest; not observable by a peer",
  "SRP-SEC-005":
    "whether a deployment is production is not visible on the wire (the suite runs against test hubs over plain HTTP), and a node's choice of transport is between it and its hub",
  "SRP-SEC-010": "what a node forwards to its backend is between node and backend; no SRP peer sees it",
  "SRP-SEC-012": "revoking a binding needs the account owner's or operator's action, for which the spec defines no wire API",
  "SRP-SEC-014": "the memory a hub spends on tracking clients is internal",
  "SRP-SEC-017": "file modes at rest; not observable by a peer",
  "SRP-SEC-022": "revocation goes through the operator's admin surface or shared storage, which the suite is not given",
  "SRP-SEC-023":
    "needs a revocation (operator's admin surface or storage, not given to the suite); what is billed is internal ledger state",
  // VER: versioning
};
