// Preloaded (`node --import`) into `srp-hub serve --workers N` by the gateway phase
// (bench/gateways.mjs `startSrpCluster`); node:cluster passes the primary's Node flags on to
// every worker, so it runs in each of them too. In a worker it notes which ledger holder id
// (`reservations.holder`, logged as `ledgerProcess` in the worker's `hub.listening` line)
// belongs to which process id, appending `<pid> <holder>` to the file named by
// BENCH_WORKER_IDS: the bench then tells, per answered request, which worker admitted it.
// Every write passes through unchanged; it changes nothing else in the program.
import cluster from "node:cluster";
import { appendFileSync } from "node:fs";

const file = process.env.BENCH_WORKER_IDS;
if (file && cluster.isWorker) {
  const write = process.stderr.write.bind(process.stderr);
  let noted = false;
  process.stderr.write = (chunk, ...rest) => {
    if (!noted && typeof chunk === "string" && chunk.includes('"event":"hub.listening"')) {
      const holder = /"ledgerProcess":"([^"]+)"/.exec(chunk)?.[1];
      if (holder) {
        noted = true;
        appendFileSync(file, `${process.pid} ${holder}\n`);
      }
    }
    return write(chunk, ...rest);
  };
}
