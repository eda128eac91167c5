/**
 * Primitive writers. Encoders compute the exact packet size first (the *Size helpers, which also
 * validate values and throw CodecError), then write into one Buffer.allocUnsafe of that size.
 */
import { CodecError } from './errors.js';
import { MAX_VARINT } from './constants.js';
import { isValidMqttString } from './utf8.js';

type WriteBuffer = Buffer & { utf8Write(s: string, offset: number): number };

/** Bytes taken by a Variable Byte Integer. */
export function varintSize(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > MAX_VARINT) {
    throw new CodecError(`${n} cannot be encoded as a variable byte integer (0..${MAX_VARINT})`);
  }
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Bytes taken by a UTF-8 Encoded String (2 + its length); validates it. */
export function utf8Size(s: string, what = 'string'): number {
  if (typeof s !== 'string') throw new CodecError(`${what} must be a string`);
  const n = Buffer.byteLength(s, 'utf8');
  if (n > 65_535) throw new CodecError(`${what} is ${n} bytes long; the limit is 65535`);
  // byte length = string length only for ASCII, which cannot hold a lone surrogate
  if (n === s.length ? s.indexOf('\0') !== -1 : !isValidMqttString(s)) {
    throw new CodecError(`${what} contains U+0000 or a lone surrogate`);
  }
  return 2 + n;
}

/** Bytes taken by Binary Data (2 + its length). */
export function binarySize(b: Uint8Array, what = 'binary data'): number {
  if (!(b instanceof Uint8Array)) throw new CodecError(`${what} must be a Buffer`);
  if (b.length > 65_535) throw new CodecError(`${what} is ${b.length} bytes long; the limit is 65535`);
  return 2 + b.length;
}

export function checkInt(v: number, max: number, what: string, min = 0): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new CodecError(`${what} must be an integer in ${min}..${max}, got ${v}`);
  }
  return v;
}

/** Packet identifier 1..65535 [MQTT-2.3.1-1]. */
export function checkPacketId(id: number | undefined): number {
  if (id === undefined) throw new CodecError('packet identifier is missing');
  return checkInt(id, 65_535, 'packet identifier', 1);
}

export class Writer {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** A writer for a whole packet: allocates the exact size and writes the fixed header. */
  static packet(firstByte: number, remainingLength: number): Writer {
    const w = new Writer(1 + varintSize(remainingLength) + remainingLength);
    w.buf[0] = firstByte;
    w.pos = 1;
    w.varint(remainingLength);
    return w;
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    const b = this.buf, p = this.pos;
    b[p] = v >>> 8;
    b[p + 1] = v & 0xff;
    this.pos = p + 2;
  }

  u32(v: number): void {
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  varint(v: number): void {
    const b = this.buf;
    do {
      let byte = v % 128;
      v = Math.floor(v / 128);
      if (v > 0) byte |= 0x80;
      b[this.pos++] = byte;
    } while (v > 0);
  }

  /** A UTF-8 string already checked by utf8Size. */
  utf8(s: string): void {
    const b = this.buf, p = this.pos, len = s.length;
    let n = 0;
    if (len < 64) {
      // short ASCII strings: a loop beats the native call
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p + 2 + i] = c;
      }
      n = i === len ? len : (b as WriteBuffer).utf8Write(s, p + 2);
    } else {
      n = (b as WriteBuffer).utf8Write(s, p + 2);
    }
    b[p] = n >>> 8;
    b[p + 1] = n & 0xff;
    this.pos = p + 2 + n;
  }

  binary(b: Uint8Array): void {
    this.u16(b.length);
    this.bytes(b);
  }

  /** Raw bytes without a length prefix. */
  bytes(b: Uint8Array): void {
    const n = b.length, buf = this.buf, p = this.pos;
    if (n < 32) for (let i = 0; i < n; i++) buf[p + i] = b[i]!;
    else buf.set(b, p);
    this.pos = p + n;
  }

  /** Returns the buffer, checking that the size computed up front was exact. */
  finish(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new CodecError(`internal error: wrote ${this.pos} bytes into a ${this.buf.length} byte packet`);
    }
    return this.buf;
  }
}
