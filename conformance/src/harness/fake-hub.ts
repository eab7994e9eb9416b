/**
 * The harness's stand-in hub for provider mode: an HTTP server on loopback that serves
 * a discovery document and accepts provider WebSockets, handing each connection to the
 * running check, and a launcher for the provider command under test.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { generateIdentity, type Identity } from "@srp/core";
import { WebSocketServer } from "ws";
import type { SchemaValidator } from "../schema.js";
import { WIRE_OPTIONS, WirePeer } from "./wire.js";

/** A hub the harness controls. */
export class FakeHub {
  readonly identity: Identity = generateIdentity();
  baseUrl = "";
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #validator: SchemaValidator;
  readonly #pending: WirePeer[] = [];
  readonly #waiters: Array<(p: WirePeer) => void> = [];
  readonly peers: WirePeer[] = [];

  constructor(validator: SchemaValidator, maxFrameBytes = 1_048_576) {
    this.#validator = validator;
    this.#wss = new WebSocketServer({ noServer: true, ...WIRE_OPTIONS });
    this.#server = createServer((req, res) => {
      if (req.url === "/.well-known/srp.json") {
        res.setHeader("content-type", "application/json");
        res.end(
          JSON.stringify({
            protocol: "srp",
            versions: [1],
            hubId: this.identity.id,
            provider: { url: `${this.baseUrl.replace(/^http/, "ws")}/srp/v1/provider`, maxFrameBytes },
            payments: [],
            software: "srp-conformance",
          }),
        );
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    this.#server.on("upgrade", (req, socket, head) => {
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        const peer = new WirePeer(ws, this.#validator);
        this.peers.push(peer);
        const w = this.#waiters.shift();
        if (w) w(peer);
        else this.#pending.push(peer);
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address();
    this.baseUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  }

  /** The next provider connection, or undefined after `timeoutMs`. */
  accept(timeoutMs: number): Promise<WirePeer | undefined> {
    const ready = this.#pending.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => {
      const waiter = (p: WirePeer) => {
        clearTimeout(t);
        resolve(p);
      };
      const t = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(undefined);
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  async stop(): Promise<void> {
    for (const p of this.peers) p.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Launches `command` with `url` appended as its last argument, in its own process group. */
export function launch(command: string, url: string): { child: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const child = spawn(`${command} ${url}`, { shell: true, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-8192);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        /* already gone */
      }
    };
    kill("SIGTERM");
    const t = setTimeout(() => kill("SIGKILL"), 2000);
    await exited;
    clearTimeout(t);
  };
  return { child, output: () => output, stop };
}
