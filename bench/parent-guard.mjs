// Preloaded (`node --import`) into the programs the bench starts with `Command`
// (bench/ipc.mjs): they are not bench helpers and do not watch the orchestrator, so this
// ends them (SIGTERM, their own shutdown if they have one; exit after 3 s at the latest) when the
// orchestrator's IPC channel closes, even if the orchestrator was killed outright. Then it
// also removes the directory named by BENCH_GUARD_REMOVE_DIR (the program's temporary
// data), which the orchestrator could not. It changes nothing else in the program.
import { rmSync } from "node:fs";

if (process.channel) {
  const dir = process.env.BENCH_GUARD_REMOVE_DIR;
  process.on("disconnect", () => {
    if (dir) process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    // A program without its own SIGTERM handler would die at once, exit hooks skipped: exit instead.
    if (process.listenerCount("SIGTERM") === 0) process.exit(1);
    setTimeout(() => process.exit(1), 3000).unref();
    process.kill(process.pid, "SIGTERM");
  });
  process.channel.unref(); // the channel alone must not keep the program alive
}
