/**
 * The simulator's video files: a minimal ISO BMFF (MP4) byte string, **not a playable
 * video**: an `ftyp` box, a `moov` box holding a movie header (`mvhd`) that states the
 * duration, and an `mdat` box of deterministic filler up to the size asked for. Enough for a
 * reader of `moov/mvhd` (`mp4Seconds` in `@srp/core/metering`, SRP-ATT-028) and for moving
 * megabytes through a relay.
 */
import { createHash } from "node:crypto";

/** One ISO BMFF box: 32-bit size, 4-character type, payload. */
function box(type: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, "latin1");
  return Buffer.concat([head, body]);
}

/** A version-0 movie header of `seconds` at a timescale of 1000. */
function mvhd(seconds: number): Buffer {
  const b = Buffer.alloc(100);
  b.writeUInt32BE(1000, 12); // timescale
  b.writeUInt32BE(Math.round(seconds * 1000), 16); // duration
  b.writeUInt32BE(0x00010000, 20); // rate 1.0
  b.writeUInt16BE(0x0100, 24); // volume 1.0
  // Unity matrix.
  b.writeUInt32BE(0x00010000, 36);
  b.writeUInt32BE(0x00010000, 52);
  b.writeUInt32BE(0x40000000, 68);
  b.writeUInt32BE(2, 96); // next track id
  return box("mvhd", b);
}

/** Deterministic filler bytes derived from `seed`. */
function filler(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash("sha256").update(seed).digest();
  for (let at = 0; at < length; at += block.length) {
    block.copy(out, at);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

/**
 * A minimal MP4 of `seconds` that is exactly `bytes` long (at least its headers, 148 bytes),
 * its `mdat` filler derived from `seed`.
 *
 * @example
 * simulatedMp4("video_abc", 4, 65536).length; // 65536
 */
export function simulatedMp4(seed: string, seconds: number, bytes: number): Buffer {
  const head = Buffer.concat([box("ftyp", Buffer.from("isom\0\0\x02\0isomiso2mp41", "latin1")), box("moov", mvhd(seconds))]);
  const rest = Math.max(0, bytes - head.length - 8);
  return Buffer.concat([head, box("mdat", filler(seed, rest))]);
}
