/** PINGREQ and PINGRESP (3.1.1 sections 3.12-3.13): no variable header, no payload. */
import { MalformedPacketError } from '../errors.js';
import type { Reader } from '../reader.js';
import type { PingreqPacket, PingrespPacket } from '../types.js';

const PINGREQ_BYTES = Buffer.from([0xc0, 0x00]);
const PINGRESP_BYTES = Buffer.from([0xd0, 0x00]);

export function decode(type: 'pingreq' | 'pingresp', r: Reader): PingreqPacket | PingrespPacket {
  if (r.remaining !== 0) throw new MalformedPacketError(`${type.toUpperCase()} with remaining length ${r.remaining}`);
  return type === 'pingreq' ? { type: 'pingreq' } : { type: 'pingresp' };
}

/** A fresh two byte buffer (callers may keep or mutate it). */
export function encode(p: PingreqPacket | PingrespPacket): Buffer {
  return Buffer.from(p.type === 'pingreq' ? PINGREQ_BYTES : PINGRESP_BYTES);
}
