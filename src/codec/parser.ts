/**
 * The streaming framer: chunks in, packets out, any split of the bytes allowed.
 *
 * Complete packets are decoded straight out of the chunk (payloads are zero-copy views of it, so
 * a caller must not reuse a chunk's memory after handing it over). Only a packet split across
 * chunks is copied, once, into a buffer allocated at its exact size when its length is known.
 * The fixed header is checked (type, flags, maximum packet size) before any body byte is kept.
 */
import { MAX_PACKET_SIZE } from './constants.js';
import { checkFixedHeader, decodeBody } from './decode.js';
import { MalformedPacketError, PacketTooLargeError, ProtocolError } from './errors.js';
import { Reader } from './reader.js';

/** Decoding is synchronous and never re-enters a parser, so one reader serves every parser (less memory per connection). */
const sharedReader = new Reader();
import type { Packet, ProtocolVersion } from './types.js';

export interface ParserOptions {
  /** default 4; decoding a CONNECT sets it to the CONNECT's level */
  protocolVersion?: ProtocolVersion;
  /** max bytes of a whole packet (fixed header + body); default 268435460 */
  maxPacketSize?: number;
  /** server side: the first packet must be CONNECT, judged from its first byte -> ProtocolError */
  firstPacketConnect?: boolean;
}

/** first allocation for a packet split across chunks; it doubles as the rest arrives */
const INITIAL_BODY = 64 * 1024;
/** the first packet (CONNECT) of a server-side connection may not be larger than this, whatever max_packet_size says */
export const MAX_CONNECT_SIZE = 1024 * 1024;

const LENGTH = 1;    // inside the remaining length
const BODY = 2;      // inside a body that is being copied

/**
 * A packet split across chunks, kept only while one is: most connections read whole packets, and an
 * idle connection should cost as little memory as possible.
 */
interface Split {
  /** LENGTH: inside the remaining length; BODY: inside a body that is being copied */
  state: typeof LENGTH | typeof BODY;
  byte0: number;
  lenValue: number;
  lenMult: number;
  lenBytes: number;
  body: Buffer | null;
  bodyPos: number;
  bodySize: number;
  bodyTotal: number;
}

const F_FIRST_CONNECT = 1;  // server side: the first packet must be CONNECT
const F_SAW_FIRST = 2;      // the first byte has been seen
const F_FAILED = 4;         // a parse failed: every later call rethrows `error`

export class Parser {
  /** Version used to decode; set by a decoded CONNECT, settable by the client. */
  protocolVersion: ProtocolVersion;
  /** Maximum whole-packet size; the broker sets it after CONNECT. */
  maxPacketSize: number;
  /** Bytes of the last packet delivered (fixed header + body), for byte counters. */
  lastPacketSize = 0;

  private flags: number;
  private error: unknown = undefined;
  private split: Split | null = null;

  constructor(opts: ParserOptions = {}) {
    this.protocolVersion = opts.protocolVersion ?? 4;
    this.maxPacketSize = opts.maxPacketSize ?? MAX_PACKET_SIZE;
    this.flags = opts.firstPacketConnect === true ? F_FIRST_CONNECT : 0;
  }

  /**
   * Feeds one chunk; calls onPacket for each complete packet, in order. Throws one MqttError
   * subclass on bad input; after that (or after onPacket throws) the parser is dead and every
   * later call rethrows the same error.
   */
  parse(chunk: Buffer, onPacket: (packet: Packet) => void): void {
    if ((this.flags & F_FAILED) !== 0) throw this.error;
    try {
      this.run(chunk, onPacket);
    } catch (err) {
      this.flags |= F_FAILED;
      this.error = err;
      this.split = null;
      throw err;
    }
  }

  private run(chunk: Buffer, onPacket: (packet: Packet) => void): void {
    const len = chunk.length;
    let pos = 0;
    if (this.split !== null) {
      pos = this.resume(this.split, chunk, onPacket);
      if (pos < 0) return;
    }
    while (pos < len) {
      const byte0 = chunk[pos]!;
      this.checkHeader(byte0);
      let p = pos + 1;
      let value = 0;
      let mult = 1;
      let n = 0;
      let b = 0x80;
      while ((b & 0x80) !== 0) {
        if (p >= len) {
          this.saveLength(byte0, value, mult, n);
          return;
        }
        b = chunk[p++]!;
        value += (b & 0x7f) * mult;
        mult *= 128;
        if (++n === 4 && (b & 0x80) !== 0) throw tooLongLength();
      }
      const total = this.checkSize(byte0, 1 + n + value);
      const end = p + value;
      if (end > len) {
        this.startBody(byte0, value, total, chunk, p);
        return;
      }
      this.deliver(byte0, chunk, p, end, total, onPacket);
      pos = end;
    }
  }

  /** Continues a packet split across chunks; returns the position after it, or -1 if the chunk ran out. */
  private resume(sp: Split, chunk: Buffer, onPacket: (packet: Packet) => void): number {
    const len = chunk.length;
    let pos = 0;
    const byte0 = sp.byte0;
    if (sp.state === LENGTH) {
      let value = sp.lenValue;
      let mult = sp.lenMult;
      let n = sp.lenBytes;
      let b = 0x80;
      while ((b & 0x80) !== 0) {
        if (pos >= len) {
          this.saveLength(byte0, value, mult, n);
          return -1;
        }
        b = chunk[pos++]!;
        value += (b & 0x7f) * mult;
        mult *= 128;
        if (++n === 4 && (b & 0x80) !== 0) throw tooLongLength();
      }
      const total = this.checkSize(byte0, 1 + n + value);
      const end = pos + value;
      if (end > len) {
        this.startBody(byte0, value, total, chunk, pos);
        return -1;
      }
      this.split = null;
      this.deliver(byte0, chunk, pos, end, total, onPacket);
      return end;
    }
    // BODY
    let body = sp.body!;
    const take = Math.min(sp.bodySize - sp.bodyPos, len);
    if (sp.bodyPos + take > body.length) {
      // grow with the bytes that really arrived, never to a size only claimed by the header
      const grown = Buffer.allocUnsafe(Math.min(sp.bodySize, Math.max(body.length * 2, sp.bodyPos + take)));
      body.copy(grown, 0, 0, sp.bodyPos);
      sp.body = body = grown;
    }
    chunk.copy(body, sp.bodyPos, 0, take);
    sp.bodyPos += take;
    if (sp.bodyPos < sp.bodySize) return -1;
    this.split = null;
    this.deliver(byte0, body, 0, sp.bodySize, sp.bodyTotal, onPacket);
    return take;
  }

  /** The size limits, judged from the fixed header before any of the body is buffered. */
  private checkSize(byte0: number, total: number): number {
    if (total > this.maxPacketSize) throw new PacketTooLargeError(total, this.maxPacketSize);
    if ((this.flags & F_FIRST_CONNECT) !== 0 && (byte0 >> 4) === 1 && total > MAX_CONNECT_SIZE) throw new PacketTooLargeError(total, MAX_CONNECT_SIZE);
    return total;
  }

  private checkHeader(byte0: number): void {
    if ((this.flags & F_SAW_FIRST) === 0) {
      this.flags |= F_SAW_FIRST;
      if ((this.flags & F_FIRST_CONNECT) !== 0 && (byte0 >> 4) !== 1) {
        throw new ProtocolError(`the first packet must be CONNECT, got type ${byte0 >> 4} [MQTT-3.1.0-1]`);
      }
    }
    checkFixedHeader(byte0, this.protocolVersion);
  }

  private splitState(byte0: number): Split {
    const sp = (this.split ??= { state: LENGTH, byte0, lenValue: 0, lenMult: 1, lenBytes: 0, body: null, bodyPos: 0, bodySize: 0, bodyTotal: 0 });
    sp.byte0 = byte0;
    return sp;
  }

  private saveLength(byte0: number, value: number, mult: number, n: number): void {
    const sp = this.splitState(byte0);
    sp.state = LENGTH;
    sp.lenValue = value;
    sp.lenMult = mult;
    sp.lenBytes = n;
  }

  private startBody(byte0: number, size: number, total: number, chunk: Buffer, from: number): void {
    // start small and grow as bytes arrive: a header claiming 100 MB costs nothing until they come
    const have = chunk.length - from;
    const body = Buffer.allocUnsafe(Math.min(size, Math.max(INITIAL_BODY, have * 2)));
    const sp = this.splitState(byte0);
    sp.bodySize = size;
    sp.bodyTotal = total;
    sp.bodyPos = chunk.copy(body, 0, from, chunk.length);
    sp.body = body;
    sp.state = BODY;
  }

  private deliver(byte0: number, buf: Buffer, start: number, end: number, total: number,
    onPacket: (packet: Packet) => void): void {
    const packet = decodeBody(byte0, sharedReader.reset(buf, start, end), this.protocolVersion);
    if (packet.type === 'connect') this.protocolVersion = packet.protocolVersion;
    this.lastPacketSize = total;
    onPacket(packet);
  }
}

function tooLongLength(): MalformedPacketError {
  return new MalformedPacketError('the remaining length is longer than 4 bytes');
}
