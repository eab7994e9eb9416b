import { afterEach, describe, expect, it } from "vitest";
import { generateIdentity } from "@srp/core";
import WebSocket from "ws";
import { checkLinkToken, decodeLink, encodeLink, LINK_TOKEN_TTL_MS, linkKey, linkToken, type LinkMessage } from "./link-protocol.js";
import { PeerLinks, type Link } from "./links.js";

describe("link credentials", () => {
  const key = linkKey(generateIdentity().secretKey);
  const now = 1_800_000_000_000;

  it("accepts a fresh credential made with the hub's key, and nothing else", () => {
    const token = linkToken(key, "proc_a", "proc_b", "n1", now);
    expect(checkLinkToken(key, token, now + 1000, "proc_b")).toEqual({ processId: "proc_a", nonce: "n1" });
    // Made for another process (seen on the wire, replayed elsewhere), expired, from the future, another hub's key, altered.
    expect(checkLinkToken(key, token, now, "proc_c")).toBeUndefined();
    expect(checkLinkToken(key, token, now + LINK_TOKEN_TTL_MS + 1, "proc_b")).toBeUndefined();
    expect(checkLinkToken(key, linkToken(key, "proc_a", "proc_b", "n1", now + LINK_TOKEN_TTL_MS + 1), now, "proc_b")).toBeUndefined();
    expect(checkLinkToken(linkKey(generateIdentity().secretKey), token, now, "proc_b")).toBeUndefined();
    expect(checkLinkToken(key, token.replace("proc_a", "proc_x"), now, "proc_b")).toBeUndefined();
    expect(checkLinkToken(key, "a.b.c", now, "proc_b")).toBeUndefined();
  });

  it("decodes only the messages it knows", () => {
    const m: LinkMessage = { t: "cancel", jobId: "job_1", reason: "deadline", failed: true };
    expect(decodeLink(encodeLink(m))).toEqual(m);
    expect(decodeLink("{")).toBeUndefined();
    expect(decodeLink('{"t":"explode"}')).toBeUndefined();
    expect(decodeLink("[1]")).toBeUndefined();
  });
});

describe("links between processes", () => {
  const open: PeerLinks[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((l) => l.close()));
  });

  it("carries messages both ways on one link, refuses strangers and replayed credentials", async () => {
    const identity = generateIdentity();
    const key = linkKey(identity.secretKey);
    const got: { at: string; m: LinkMessage; peer: string }[] = [];
    let replied: Link | undefined;
    const b = new PeerLinks({
      processId: "proc_b",
      key,
      onMessage: (m, link) => {
        got.push({ at: "b", m, peer: link.peer });
        replied = link;
        link.send({ t: "lost", jobId: "job_1", reason: "test" });
      },
      onClose: () => {},
    });
    const a = new PeerLinks({
      processId: "proc_a",
      key,
      onMessage: (m, link) => got.push({ at: "a", m, peer: link.peer }),
      onClose: () => {},
    });
    open.push(a, b);
    const url = await b.listen("127.0.0.1", 0);
    await a.listen("127.0.0.1", 0);
    const link = a.to("proc_b", url);
    expect(a.to("proc_b", url)).toBe(link);
    // Sent while connecting: delivered once open.
    expect(link.send({ t: "cancel", jobId: "job_1", reason: "consumer_gone" })).toBe(true);
    for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([
      { at: "b", m: { t: "cancel", jobId: "job_1", reason: "consumer_gone" }, peer: "proc_a" },
      { at: "a", m: { t: "lost", jobId: "job_1", reason: "test" }, peer: "proc_b" },
    ]);
    expect(replied?.peer).toBe("proc_a");

    // No credential, another hub's credential, a replayed one: 401, no link.
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, { headers });
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => {
          ws.close();
          resolve(101);
        });
        ws.on("error", () => resolve(-1));
      });
    expect(await status({})).toBe(401);
    const foreign = linkToken(linkKey(generateIdentity().secretKey), "proc_x", "proc_b", "n", Date.now());
    expect(await status({ "x-srp-cluster-link": foreign })).toBe(401);
    expect(await status({ "x-srp-cluster-link": linkToken(key, "proc_x", "proc_c", "n", Date.now()) })).toBe(401);
    const token = linkToken(key, "proc_x", "proc_b", "once", Date.now());
    expect(await status({ "x-srp-cluster-link": token })).toBe(101);
    expect(await status({ "x-srp-cluster-link": token })).toBe(401);
  });
});
