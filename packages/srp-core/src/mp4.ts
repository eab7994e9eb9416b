/**
 * The one fact about video files SRP needs: how long an ISO BMFF (MP4, MOV) file lasts, read
 * from its `moov/mvhd` box, so a hub can check a `videos` receipt's seconds against the video
 * it carries (SRP-ATT-028).
 */

/** The boxes directly inside `bytes[from..to)`: type, start of the payload, end. */
function* boxes(view: DataView, from: number, to: number): Generator<{ type: string; body: number; end: number }> {
  let at = from;
  while (at + 8 <= to) {
    let size = view.getUint32(at);
    const type = String.fromCharCode(view.getUint8(at + 4), view.getUint8(at + 5), view.getUint8(at + 6), view.getUint8(at + 7));
    let body = at + 8;
    if (size === 1) {
      if (at + 16 > to) return;
      const big = view.getBigUint64(at + 8);
      if (big > BigInt(to - at)) return;
      size = Number(big);
      body = at + 16;
    } else if (size === 0) size = to - at;
    if (size < body - at || at + size > to) return;
    yield { type, body, end: at + size };
    at += size;
  }
}

/**
 * Seconds of an ISO BMFF file (MP4, MOV): `duration / timescale` of its movie header
 * (`moov/mvhd`, version 0 or 1). Undefined when the file does not start with an `ftyp` box,
 * has no well-formed `mvhd`, or its timescale is 0.
 *
 * @example
 * mp4Seconds(bytes); // 4 for a 4-second video
 */
export function mp4Seconds(bytes: Uint8Array): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const top = [...boxes(view, 0, bytes.length)];
  if (top[0]?.type !== "ftyp") return undefined;
  const moov = top.find((b) => b.type === "moov");
  if (!moov) return undefined;
  for (const b of boxes(view, moov.body, moov.end)) {
    if (b.type !== "mvhd") continue;
    const version = view.getUint8(b.body);
    const need = version === 1 ? 4 + 28 : 4 + 16;
    if ((version !== 0 && version !== 1) || b.body + need > b.end) return undefined;
    const timescale = view.getUint32(b.body + (version === 1 ? 20 : 12));
    const duration = version === 1 ? Number(view.getBigUint64(b.body + 24)) : view.getUint32(b.body + 16);
    return timescale === 0 ? undefined : duration / timescale;
  }
  return undefined;
}
