import { describe, expect, it } from "vitest";
import { publicUrlProblem, signWebhook, webhookUrlProblem } from "./webhooks.js";

describe("webhook and fetched URLs: public https hosts only, unless the operator allows private ones", () => {
  it("takes https URLs of public names and addresses", () => {
    for (const url of [
      "https://example.com/hook",
      "https://hooks.example.org:8443/a?b=c",
      "https://93.184.216.34/x",
      "https://[2606:4700::1111]/x",
    ])
      expect(webhookUrlProblem(url, false), url).toBeUndefined();
  });

  it("refuses other schemes, credentials and every kind of private host", () => {
    for (const url of [
      "http://example.com/hook",
      "ftp://example.com/x",
      "not a url",
      "https://user:pw@example.com/",
      "https://localhost/x",
      "https://app.localhost/x",
      "https://redis/x",
      "https://db.internal/x",
      "https://printer.local/x",
      "https://nas.home.arpa/x",
      "https://127.0.0.1/x",
      "https://10.1.2.3/x",
      "https://172.20.0.1/x",
      "https://192.168.1.1/x",
      "https://169.254.169.254/latest",
      "https://100.64.0.1/x",
      "https://198.18.0.1/x",
      "https://0.0.0.0/x",
      "https://[::1]/x",
      "https://[::ffff:127.0.0.1]/x",
      "https://[fd00::1]/x",
      "https://[fe80::1]/x",
      "https://[64:ff9b::a00:1]/x",
      "https://[2002:a00:1::]/x",
    ])
      expect(webhookUrlProblem(url, false), url).toBeDefined();
    expect(publicUrlProblem("https://10.0.0.1/x", "input_reference.image_url")).toBe("input_reference.image_url must name a public host");
  });

  it("with allowPrivate, takes http and loopback but still no credentials", () => {
    expect(webhookUrlProblem("http://127.0.0.1:9000/hook", true)).toBeUndefined();
    expect(webhookUrlProblem("https://u:p@127.0.0.1/", true)).toBeDefined();
  });

  it("signs as Standard Webhooks: v1, base64 HMAC-SHA256 of id.timestamp.body under the secret's bytes", () => {
    const secret = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
    const h = signWebhook(secret, "msg_1", 1_700_000_000, '{"a":1}');
    expect(h["webhook-id"]).toBe("msg_1");
    expect(h["webhook-timestamp"]).toBe("1700000000");
    expect(h["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    // Another body or timestamp signs differently.
    expect(signWebhook(secret, "msg_1", 1_700_000_001, '{"a":1}')["webhook-signature"]).not.toBe(h["webhook-signature"]);
  });
});
