/**
 * A response body watched as it is read: who needs to know when a streamed answer starts
 * and ends (the hub's `request` event, an API key's rate limits) wraps it here.
 */

/**
 * A stream's body passed through unchanged, calling `first` at its first chunk and `ended`
 * once when it finishes, fails or is cancelled by the reader.
 */
export function watchedBody(body: ReadableStream<Uint8Array>, first: () => void, ended: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let seen = false;
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    ended();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const r = await reader.read();
          if (r.done) {
            controller.close();
            end();
            return;
          }
          if (!seen) {
            seen = true;
            first();
          }
          controller.enqueue(r.value);
        } catch (error) {
          end();
          controller.error(error);
        }
      },
      async cancel(reason) {
        end();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
