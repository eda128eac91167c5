/**
 * Primitive readers over one packet body (MQTT 3.1.1 section 1.5, 5.0 section 1.5).
 * A Reader covers bytes [pos, end) of a buffer; reading past `end` is a MalformedPacketError.
 * Binary fields are zero-copy views (subarray) of the buffer.
 */
import { MalformedPacketError } from './errors.js';
import { checkUtf8, decodeUtf8, Utf8Check } from './utf8.js';

const EMPTY = Buffer.alloc(0);

export class Reader {
  buf: Buffer;
  pos: number;
  end: number;

  constructor(buf: Buffer = EMPTY, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** Points the reader at bytes [pos, end) of buf. */
  reset(buf: Buffer, pos: number, end: number): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new MalformedPacketError(`packet ends inside ${what}: ${n} bytes needed, ${this.end - this.pos} left`);
    }
  }

  u8(what = 'a byte field'): number {
    if (this.pos >= this.end) this.need(1, what);
    return this.buf[this.pos++]!;
  }

  u16(what = 'a two byte integer'): number {
    const p = this.pos;
    if (p + 2 > this.end) this.need(2, what);
    this.pos = p + 2;
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  u32(what = 'a four byte integer'): number {
    const p = this.pos;
    if (p + 4 > this.end) this.need(4, what);
    this.pos = p + 4;
    return this.buf.readUInt32BE(p);
  }

  /** Variable Byte Integer: at most 4 bytes, max 268435455 (spec 1.5.5 / 2.2.3). */
  varint(what = 'a variable byte integer'): number {
    let value = 0;
    let mult = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8(what);
      value += (b & 0x7f) * mult;
      if ((b & 0x80) === 0) return value;
      mult *= 128;
    }
    throw new MalformedPacketError(`${what} is longer than 4 bytes`);
  }

  /** UTF-8 Encoded String: u16 length + bytes, checked against the MQTT UTF-8 rules. */
  utf8(what = 'a UTF-8 string'): string {
    const len = this.u16(what);
    const start = this.pos;
    if (start + len > this.end) this.need(len, what);
    const end = start + len;
    this.pos = end;
    const c = checkUtf8(this.buf, start, end);
    if (c < 0) {
      throw new MalformedPacketError(c === Utf8Check.Null
        ? `${what} contains U+0000 [MQTT-1.5.3-2]`
        : `${what} is not well-formed UTF-8 [MQTT-1.5.3-1]`);
    }
    return decodeUtf8(this.buf, start, end);
  }

  /** Binary Data: u16 length + bytes (a view of the buffer). */
  binary(what = 'binary data'): Buffer {
    const len = this.u16(what);
    const start = this.pos;
    if (start + len > this.end) this.need(len, what);
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  /** UTF-8 String Pair. */
  pair(what = 'a string pair'): [string, string] {
    const k = this.utf8(what);
    return [k, this.utf8(what)];
  }

  /** The rest of the body as a view. */
  rest(): Buffer {
    const start = this.pos;
    this.pos = this.end;
    return this.buf.subarray(start, this.end);
  }

  /** Throws unless every byte was consumed. */
  done(what: string): void {
    if (this.pos !== this.end) {
      throw new MalformedPacketError(`${this.end - this.pos} unexpected bytes after the fields of ${what}`);
    }
  }
}
