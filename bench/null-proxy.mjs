// Bench helper: a do-nothing HTTP reverse proxy in its own process. Two of them in series
// (loadgen -> proxy -> proxy -> simulator) have the relay's process layout (loadgen -> hub
// -> provider -> simulator) with none of its work: no auth, no routing, no WebSocket
// framing, no JSON, no receipts. What they add over a direct call is this machine's floor
// for two extra Node processes on the path; the report prints it beside the relay's
// figures.
import { Agent, createServer, request } from "node:http";
import { serve } from "./ipc.mjs";

let server;
let agent;

serve({
  async start({ target }) {
    const upstream = new URL(target);
    agent = new Agent({ keepAlive: true, maxSockets: 256 });
    server = createServer((req, res) => {
      const out = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      out.on("error", () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(out);
    });
    server.keepAliveTimeout = 30_000;
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${server.address().port}`, pid: process.pid };
  },
  async close() {
    agent?.destroy();
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  },
});
