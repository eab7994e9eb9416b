/** @srp/client against a real hub, provider and simulator. */
import { afterEach, expect, it } from "vitest";
import { createClient, SrpApiError } from "@srp/client";
import { KEY, MODEL, startNet, type Net } from "./helpers.js";

let net: Net | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

it("creates, streams, lists models and verifies receipts against the discovered hub key", async () => {
  net = await startNet();
  const sim = await net.sim();
  await net.addProvider(sim, { price: { input: "250000", output: "500000" } });
  const srp = createClient({ hub: net.url, apiKey: KEY });

  const whole = await srp.chat.create({ model: MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 4 });
  expect(whole.usage.completion_tokens).toBe(4);
  expect(whole.receiptId).toBe(whole.usage.receipt_id);

  let text = "";
  let usage;
  for await (const chunk of srp.chat.stream({ model: MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 6 })) {
    text += chunk.choices[0]?.delta.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  expect(text.length).toBeGreaterThan(0);
  expect(usage!.completion_tokens).toBe(6);

  const { receipt, check } = await srp.receipt(usage!.receipt_id!);
  expect(check).toEqual({ valid: true, problems: [] });
  expect(receipt.hubId).toBe(net.hub.id);
  expect(receipt.cost).toBe(usage!.cost_units);

  const models = await srp.models();
  expect(models).toEqual([
    expect.objectContaining({
      id: MODEL,
      instances_online: 1,
      pricing_units_per_million: { input: "250000", output: "500000" },
      pricing: { prompt: "0.00000025", completion: "0.0000005" },
    }),
  ]);

  await expect(srp.chat.create({ model: "nope", messages: [{ role: "user", content: "x" }] })).rejects.toMatchObject({
    status: 404,
    code: "job.unknown_model",
  });

  sim.setFault({ kind: "drop_mid_stream", afterTokens: 2 });
  const failing = (async () => {
    for await (const _ of srp.chat.stream({ model: MODEL, messages: [{ role: "user", content: "hello" }] })) void _;
  })();
  await expect(failing).rejects.toBeInstanceOf(SrpApiError);
  await expect(failing).rejects.toMatchObject({ code: "job.stream_interrupted" });
});
