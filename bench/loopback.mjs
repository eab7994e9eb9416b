// Preloaded (`node --import`) into the Portkey gateway (bench/gateways.mjs): its Node
// server entry takes `--port=N` but no host and listens on every interface. The bench binds
// only to 127.0.0.1, so a `listen` that names no host gets 127.0.0.1. Nothing else changes.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && typeof args[1] !== "string") {
    if (args.length > 1 && (args[1] === undefined || args[1] === null)) args[1] = "127.0.0.1";
    else args.splice(1, 0, "127.0.0.1"); // (port), (port, callback), (port, backlog, callback)
  } else if (args[0] && typeof args[0] === "object" && args[0].path === undefined && !args[0].host) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
