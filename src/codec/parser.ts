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

const IDLE = 0;      // at a packet boundary
const LENGTH = 1;    // inside the remaining length
const BODY = 2;      // inside a body that is being copied

export class Parser {
  /** Version used to decode; set by a decoded CONNECT, settable by the client. */
  protocolVersion: ProtocolVersion;
  /** Maximum whole-packet size; the broker sets it after CONNECT. */
  maxPacketSize: number;
  /** Bytes of the last packet delivered (fixed header + body), for byte counters. */
  lastPacketSize = 0;

  private readonly firstPacketConnect: boolean;
  private sawFirstByte = false;
  private failed = false;
  private error: unknown = undefined;
  private state = IDLE;
  private byte0 = 0;
  private lenValue = 0;
  private lenMult = 1;
  private lenBytes = 0;
  private body: Buffer | null = null;
  private bodyPos = 0;
  private bodySize = 0;
  private bodyTotal = 0;

  constructor(opts: ParserOptions = {}) {
    this.protocolVersion = opts.protocolVersion ?? 4;
    this.maxPacketSize = opts.maxPacketSize ?? MAX_PACKET_SIZE;
    this.firstPacketConnect = opts.firstPacketConnect ?? false;
  }

  /**
   * Feeds one chunk; calls onPacket for each complete packet, in order. Throws one MqttError
   * subclass on bad input; after that (or after onPacket throws) the parser is dead and every
   * later call rethrows the same error.
   */
  parse(chunk: Buffer, onPacket: (packet: Packet) => void): void {
    if (this.failed) throw this.error;
    try {
      this.run(chunk, onPacket);
    } catch (err) {
      this.failed = true;
      this.error = err;
      this.body = null;
      throw err;
    }
  }

  private run(chunk: Buffer, onPacket: (packet: Packet) => void): void {
    const len = chunk.length;
    let pos = 0;
    if (this.state !== IDLE) {
      pos = this.resume(chunk, onPacket);
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
  private resume(chunk: Buffer, onPacket: (packet: Packet) => void): number {
    const len = chunk.length;
    let pos = 0;
    const byte0 = this.byte0;
    if (this.state === LENGTH) {
      let value = this.lenValue;
      let mult = this.lenMult;
      let n = this.lenBytes;
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
      this.state = IDLE;
      this.deliver(byte0, chunk, pos, end, total, onPacket);
      return end;
    }
    // BODY
    let body = this.body!;
    const take = Math.min(this.bodySize - this.bodyPos, len);
    if (this.bodyPos + take > body.length) {
      // grow with the bytes that really arrived, never to a size only claimed by the header
      const grown = Buffer.allocUnsafe(Math.min(this.bodySize, Math.max(body.length * 2, this.bodyPos + take)));
      body.copy(grown, 0, 0, this.bodyPos);
      this.body = body = grown;
    }
    chunk.copy(body, this.bodyPos, 0, take);
    this.bodyPos += take;
    if (this.bodyPos < this.bodySize) return -1;
    this.state = IDLE;
    this.body = null;
    this.deliver(byte0, body, 0, this.bodySize, this.bodyTotal, onPacket);
    return take;
  }

  /** The size limits, judged from the fixed header before any of the body is buffered. */
  private checkSize(byte0: number, total: number): number {
    if (total > this.maxPacketSize) throw new PacketTooLargeError(total, this.maxPacketSize);
    if (this.firstPacketConnect && (byte0 >> 4) === 1 && total > MAX_CONNECT_SIZE) throw new PacketTooLargeError(total, MAX_CONNECT_SIZE);
    return total;
  }

  private checkHeader(byte0: number): void {
    if (!this.sawFirstByte) {
      this.sawFirstByte = true;
      if (this.firstPacketConnect && (byte0 >> 4) !== 1) {
        throw new ProtocolError(`the first packet must be CONNECT, got type ${byte0 >> 4} [MQTT-3.1.0-1]`);
      }
    }
    checkFixedHeader(byte0, this.protocolVersion);
  }

  private saveLength(byte0: number, value: number, mult: number, n: number): void {
    this.state = LENGTH;
    this.byte0 = byte0;
    this.lenValue = value;
    this.lenMult = mult;
    this.lenBytes = n;
  }

  private startBody(byte0: number, size: number, total: number, chunk: Buffer, from: number): void {
    // start small and grow as bytes arrive: a header claiming 100 MB costs nothing until they come
    const have = chunk.length - from;
    const body = Buffer.allocUnsafe(Math.min(size, Math.max(INITIAL_BODY, have * 2)));
    this.bodySize = size;
    this.bodyTotal = total;
    this.bodyPos = chunk.copy(body, 0, from, chunk.length);
    this.body = body;
    this.byte0 = byte0;
    this.state = BODY;
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
