/**
 * UTF-8 rules of MQTT (3.1.1 section 1.5.3, 5.0 section 1.5.4): well-formed UTF-8 (no overlong
 * forms, nothing above U+10FFFF), no surrogate code points U+D800..U+DFFF [MQTT-1.5.3-1] and no
 * U+0000 [MQTT-1.5.3-2]. Shared with src/topic and the broker.
 */

/** Result of {@link checkUtf8}. */
export const Utf8Check = { Ascii: 0, Multibyte: 1, Invalid: -1, Null: -2 } as const;
export type Utf8Check = (typeof Utf8Check)[keyof typeof Utf8Check];

/**
 * Checks bytes [start, end) against the MQTT UTF-8 rules (Unicode table 3-7 well-formed sequences).
 * Returns Ascii or Multibyte when valid, Invalid for ill-formed UTF-8 (including overlongs and
 * encoded surrogates), Null when U+0000 occurs.
 */
export function checkUtf8(buf: Uint8Array, start: number, end: number): Utf8Check {
  let i = start;
  // ASCII fast path
  while (i < end) {
    const b = buf[i]!;
    if (b >= 0x80) break;
    if (b === 0) return Utf8Check.Null;
    i++;
  }
  if (i === end) return Utf8Check.Ascii;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      if (b === 0) return Utf8Check.Null;
      i++;
      continue;
    }
    let need: number, lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;          // overlong
      else if (b === 0xed) hi = 0x9f;     // surrogates U+D800..U+DFFF
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;          // overlong
      else if (b === 0xf4) hi = 0x8f;     // above U+10FFFF
    } else return Utf8Check.Invalid;      // 0x80..0xc1 (continuation or overlong lead), 0xf5..0xff
    if (i + need >= end) return Utf8Check.Invalid; // truncated sequence
    const b1 = buf[i + 1]!;
    if (b1 < lo || b1 > hi) return Utf8Check.Invalid;
    for (let k = 2; k <= need; k++) {
      const c = buf[i + k]!;
      if (c < 0x80 || c > 0xbf) return Utf8Check.Invalid;
    }
    i += need + 1;
  }
  return Utf8Check.Multibyte;
}

/** True if the bytes are a valid MQTT UTF-8 string (well-formed, no surrogates, no U+0000). */
export function isValidUtf8String(buf: Uint8Array, start = 0, end = buf.length): boolean {
  return checkUtf8(buf, start, end) >= 0;
}

interface StringOps { isWellFormed(): boolean }

/**
 * True if a JavaScript string can be sent as an MQTT UTF-8 string: no lone surrogates (which
 * would be replaced by U+FFFD on encoding) and no U+0000. The 65535-byte limit is checked by the writer.
 */
export function isValidMqttString(s: string): boolean {
  return s.indexOf('\0') === -1 && (s as unknown as StringOps).isWellFormed();
}

type SliceBuffer = Buffer & { utf8Slice(start: number, end: number): string };

/** Decodes bytes already checked by {@link checkUtf8}. */
export function decodeUtf8(buf: Buffer, start: number, end: number): string {
  return start === end ? '' : (buf as SliceBuffer).utf8Slice(start, end);
}
