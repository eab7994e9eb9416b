// Bench helper: a throwaway Redis server for the gateway phase's multi-process hub
// (bench/gateways.mjs `startSrpCluster`). `redis-server` (Debian's package: on PATH or in
// /usr/bin, /usr/local/bin) runs as this helper's child on a free loopback port, its files
// in a fresh `<tmpdir>/srp-bench-redis-*` directory, nothing persisted (`--save ""`,
// `--appendonly no`). The server is stopped and the directory removed by `close`, and when
// this helper exits for any reason it can hook (the orchestrator's IPC channel closing
// included: bench/ipc.mjs `serve`). `command` sends one command and returns its reply, so
// the orchestrator can read the hub's live directory (docs/deployment.md) without a client
// library.
import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { serve } from "./ipc.mjs";
import { freePort } from "../scripts/postgres.mjs";

let server; // { child, dir, port }

/** Where `redis-server` is: on PATH, else /usr/bin or /usr/local/bin; undefined when missing. */
function findRedisServer() {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/bin", "/usr/local/bin"];
  for (const dir of dirs) {
    try {
      accessSync(join(dir, "redis-server"), constants.X_OK);
      return join(dir, "redis-server");
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** One command in Redis's wire format (an array of bulk strings; pure). */
export function encodeCommand(args) {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join("")}`;
}

/**
 * The first complete reply in `text` (pure): `{ value, rest }`, or undefined while
 * incomplete. Simple strings, errors (as `{ error }`), integers, bulk strings and arrays.
 */
export function decodeReply(text) {
  const eol = text.indexOf("\r\n");
  if (eol < 0) return undefined;
  const head = text.slice(1, eol);
  const after = text.slice(eol + 2);
  switch (text[0]) {
    case "+":
      return { value: head, rest: after };
    case "-":
      return { value: { error: head }, rest: after };
    case ":":
      return { value: Number(head), rest: after };
    case "$": {
      const n = Number(head);
      if (n < 0) return { value: null, rest: after };
      const bytes = Buffer.from(after, "utf8");
      if (bytes.length < n + 2) return undefined;
      return { value: bytes.subarray(0, n).toString("utf8"), rest: bytes.subarray(n + 2).toString("utf8") };
    }
    case "*": {
      const n = Number(head);
      if (n < 0) return { value: null, rest: after };
      const items = [];
      let rest = after;
      for (let i = 0; i < n; i++) {
        const item = decodeReply(rest);
        if (!item) return undefined;
        items.push(item.value);
        rest = item.rest;
      }
      return { value: items, rest };
    }
    default:
      throw new Error(`unexpected reply from Redis: ${JSON.stringify(text.slice(0, 40))}`);
  }
}

/** Sends one command to the server on `port`; resolves with its decoded reply (5 s at most). */
function command(port, args) {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let text = "";
    const done = (error, value) => {
      socket.destroy();
      if (error) reject(error);
      else resolve(value);
    };
    socket.setEncoding("utf8");
    socket.setTimeout(5000, () => done(new Error(`redis ${args[0]}: no reply within 5 s`)));
    socket.once("error", (error) => done(error));
    socket.once("connect", () => socket.write(encodeCommand(args)));
    socket.on("data", (data) => {
      text += data;
      try {
        const reply = decodeReply(text);
        if (reply) done(undefined, reply.value);
      } catch (error) {
        done(error);
      }
    });
  });
}

function stopNow() {
  if (!server) return;
  const { child, dir } = server;
  server = undefined;
  try {
    child.kill("SIGKILL");
  } catch {
    /* already gone */
  }
  rmSync(dir, { recursive: true, force: true });
}
process.on("exit", stopNow);

async function launch(binary, dir) {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--logfile", join(dir, "redis.log")];
  const child = spawn(binary, [...args, "--daemonize", "no", "--save", "", "--appendonly", "no"], { cwd: dir, stdio: "ignore" });
  server = { child, dir, port };
  const end = performance.now() + 10_000;
  while (performance.now() < end && child.exitCode === null && child.signalCode === null) {
    if ((await command(port, ["PING"]).catch(() => undefined)) === "PONG") return port;
    await new Promise((r) => setTimeout(r, 20));
  }
  let log = "";
  try {
    log = readFileSync(join(dir, "redis.log"), "utf8").trim().split("\n").slice(-5).join("\n");
  } catch {
    /* no log */
  }
  child.kill("SIGKILL");
  server = undefined;
  throw new Error(`redis-server on port ${port} did not answer PING\n${log}`);
}

serve({
  /** Starts the server; `{ url, pid }`, or `{ skipped }` when `redis-server` is not installed. */
  async start() {
    const binary = findRedisServer();
    if (!binary) return { skipped: "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)" };
    const dir = mkdtempSync(join(tmpdir(), "srp-bench-redis-"));
    // A port found free may be taken before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      try {
        const port = await launch(binary, dir);
        return { url: `redis://127.0.0.1:${port}`, pid: server.child.pid };
      } catch (error) {
        if (attempt >= 3) {
          rmSync(dir, { recursive: true, force: true });
          throw error;
        }
      }
    }
  },
  /** One command (`args`: strings) and its reply. */
  command({ args }) {
    if (!server) throw new Error("redis-server is not running");
    return command(server.port, args);
  },
  close() {
    stopNow();
  },
});
