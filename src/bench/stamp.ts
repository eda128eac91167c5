/**
 * The payload stamp and the pre-encoded PUBLISH batches.
 *
 * Every payload starts with 16 bytes (the same layout as the C reference loadgen):
 *   u64 LE send time in ns (process.hrtime: CLOCK_MONOTONIC, the same clock in every thread and
 *   process of the host) | u32 LE publisher index | u32 LE sequence number (1, 2, ...)
 * so that subscribers compute latency and find gaps and duplicates per publisher.
 *
 * A publisher's PUBLISH is encoded once with our codec; a batch is a copy of n such packets, and
 * sending stamps the time (once per batch), the sequence numbers and, for QoS 1, the packet ids.
 */
import { encode } from '../codec/index.js';
import type { ProtocolVersion, QoS } from '../codec/types.js';
import { HEADER_BYTES } from './config.js';

const TWO32 = 4294967296;

/** Monotonic time in ns as a Number (exact while the host's uptime is under 104 days). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export interface Stamp {
  sentNs: number;
  pub: number;
  seq: number;
}

/** Reads the stamp at the start of a payload; undefined when the payload is shorter than 16 bytes. */
export function readStamp(payload: Buffer): Stamp | undefined {
  if (payload.length < HEADER_BYTES) return undefined;
  return {
    sentNs: payload.readUInt32LE(0) + payload.readUInt32LE(4) * TWO32,
    pub: payload.readUInt32LE(8),
    seq: payload.readUInt32LE(12),
  };
}

export class PublishBatcher {
  /** bytes of one PUBLISH */
  readonly packetLength: number;
  /** messages in a full batch */
  readonly perBatch: number;
  private readonly template: Buffer;
  private readonly payloadAt: number;
  private readonly packetIdAt: number;

  constructor(opts: {
    topic: string; qos: QoS; size: number; pub: number; version: ProtocolVersion; batchBytes: number; retain?: boolean;
  }) {
    const payload = Buffer.alloc(opts.size, 0x2e);
    payload.fill(0, 0, HEADER_BYTES);
    payload.writeUInt32LE(opts.pub >>> 0, 8);
    const one = encode({
      type: 'publish', topic: opts.topic, payload, qos: opts.qos, retain: opts.retain ?? false, dup: false,
      ...(opts.qos > 0 ? { packetId: 1 } : {}),
    }, opts.version);
    this.packetLength = one.length;
    this.payloadAt = one.length - opts.size;
    // 3.1.1: the packet id sits right before the payload; 5.0: before the properties length (0)
    this.packetIdAt = opts.qos === 0 ? -1 : this.payloadAt - 2 - (opts.version === 5 ? 1 : 0);
    this.perBatch = Math.max(1, Math.floor(opts.batchBytes / one.length));
    this.template = Buffer.allocUnsafe(this.perBatch * one.length);
    for (let i = 0; i < this.perBatch; i++) one.copy(this.template, i * one.length);
  }

  /**
   * A new buffer with n (<= perBatch) packets stamped with sequence numbers firstSeq.. and the time;
   * for QoS 1 the packet ids are taken from `ids` (n of them).
   */
  build(n: number, sentNs: number, firstSeq: number, ids?: Uint16Array | number[]): Buffer {
    const len = this.packetLength;
    const out = Buffer.allocUnsafe(n * len);
    this.template.copy(out, 0, 0, n * len);
    const lo = sentNs % TWO32;
    const hi = (sentNs - lo) / TWO32;
    let at = this.payloadAt;
    const pidAt = this.packetIdAt;
    for (let k = 0; k < n; k++) {
      out.writeUInt32LE(lo, at);
      out.writeUInt32LE(hi, at + 4);
      out.writeUInt32LE((firstSeq + k) >>> 0, at + 12);
      if (pidAt >= 0) out.writeUInt16BE(ids![k]!, k * len + pidAt);
      at += len;
    }
    return out;
  }
}
