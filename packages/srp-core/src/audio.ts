/**
 * The one fact about audio files SRP needs: how long a WAV file lasts, read from its
 * header, so a hub can bound a transcription's seconds before it runs.
 */

/**
 * Seconds of audio in a WAV (RIFF/WAVE) file, from its `fmt ` byte rate and the size of
 * its `data` chunk (at most what the file holds), or undefined when it is not WAV.
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
    if (id === "fmt " && at + 20 <= bytes.length) byteRate = b.getUint32(at + 16, true);
    if (id === "data" && byteRate > 0) return Math.min(size, bytes.length - at - 8) / byteRate;
    at += 8 + size + (size % 2);
  }
  return undefined;
}
