// Bench helper: many idle, authenticated provider sessions (one offered instance each),
// opened from this process so that their memory is not counted in the hub's.
import { generateKeyPairSync } from "node:crypto";
import { generateIdentity, identityFromSeed } from "@srp/core";
import { createProvider, openAICompatibleBackend } from "@srp/provider";
import { serve } from "./ipc.mjs";

const providers = [];

// Ed25519 key generation in @srp/core (tweetnacl) is slow; node:crypto makes the same
// keypair shape (secretKey = seed || publicKey) in microseconds. Checked once against
// identityFromSeed; the library's own generator is used if the shapes ever disagree.
function nativeIdentity() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const seed = Buffer.from(privateKey.export({ format: "jwk" }).d, "base64url");
  const pub = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url");
  const secretKey = new Uint8Array(64);
  secretKey.set(seed, 0);
  secretKey.set(pub, 32);
  return Object.freeze({ id: pub.toString("base64url"), publicKey: new Uint8Array(pub), secretKey });
}
const probe = nativeIdentity();
const reference = identityFromSeed(probe.secretKey.subarray(0, 32));
const fastIds = reference.id === probe.id && Buffer.compare(Buffer.from(reference.secretKey), Buffer.from(probe.secretKey)) === 0;
const newIdentity = fastIds ? nativeIdentity : generateIdentity;

serve({
  /** Opens `count` sessions with at most `concurrency` handshakes in flight. */
  async open({ hub, key, model, count, concurrency = 8 }) {
    const started = performance.now();
    let next = 0;
    let failed = 0;
    let firstError;
    const worker = async () => {
      while (next < count) {
        next++;
        const p = createProvider({
          hub,
          identity: newIdentity(),
          account: key,
          reconnect: false,
          instances: [
            {
              backend: openAICompatibleBackend({ baseUrl: "http://127.0.0.1:9/v1" }),
              model,
              price: { input: "100000", output: "300000" },
              maxConcurrency: 4,
            },
          ],
        });
        try {
          await p.ready();
          providers.push(p);
        } catch (error) {
          failed++;
          firstError ??= String(error?.message ?? error);
          await p.close().catch(() => {});
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
    return {
      opened: count - failed,
      failed,
      firstError,
      elapsedMs: performance.now() - started,
      total: providers.length,
      nativeIdentities: fastIds,
    };
  },
  async close() {
    // Terminate rather than say goodbye one by one: the hub is about to go away too.
    await Promise.all(providers.splice(0).map((p) => p.close().catch(() => {})));
  },
});
