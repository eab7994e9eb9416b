/**
 * The one fact about audio files SRP needs: how long a WAV file lasts, read from its
 * header, so a hub can bound a transcription's seconds before it runs.
 */

/**
 * Seconds of audio in a PCM WAV (RIFF/WAVE) file, from its `fmt ` sample rate and block
 * size and the size of its `data` chunk (at most what the file holds). Undefined when it
 * is not PCM WAV, or when its header contradicts itself (a byte rate that is not sample
 * rate times block size would tell another duration than a decoder plays).
 *
 * @example
 * wavSeconds(bytes); // 3.2 for 3.2 s of 8 kHz 16-bit mono
 */
export function wavSeconds(bytes: Uint8Array): number | undefined {
  const b = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
  if (bytes.length < 44 || tag(0) !== "RIFF" || tag(8) !== "WAVE") return undefined;
  let at = 12;
  let byteRate = 0;
  while (at + 8 <= bytes.length) {
    const id = tag(at);
    const size = b.getUint32(at + 4, true);
    if (id === "fmt " && at + 24 <= bytes.length) {
      const format = b.getUint16(at + 8, true);
      const sampleRate = b.getUint32(at + 12, true);
      const declared = b.getUint32(at + 16, true);
      const blockAlign = b.getUint16(at + 20, true);
      // PCM (1), IEEE float (3) or extensible (0xFFFE): the rate is what the samples say.
      if (
        (format !== 1 && format !== 3 && format !== 0xfffe) ||
        sampleRate === 0 ||
        blockAlign === 0 ||
        declared !== sampleRate * blockAlign
      )
        return undefined;
      byteRate = declared;
    }
    if (id === "data") return byteRate > 0 ? Math.min(size, bytes.length - at - 8) / byteRate : undefined;
    at += 8 + size + (size % 2);
  }
  return undefined;
}
