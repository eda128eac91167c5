/**
 * DISCONNECT (3.1.1 section 3.14, 5.0 section 3.14). 3.x: empty. 5.0: remaining length 0 means
 * reason 0 (normal disconnection), 1 means a reason code and no properties. Decoded 5.0
 * DISCONNECTs always carry `reasonCode`.
 */
import { MalformedPacketError } from '../errors.js';
import { decodeReasonAndProperties, propertiesSectionSize, propertiesSize, writeProperties } from '../properties.js';
import type { Reader } from '../reader.js';
import type { DisconnectPacket, ProtocolVersion } from '../types.js';
import { checkInt, Writer } from '../writer.js';

const CTX = 1 << 14;

export function decode(_flags: number, r: Reader, version: ProtocolVersion): DisconnectPacket {
  if (version !== 5) {
    if (r.remaining !== 0) throw new MalformedPacketError(`DISCONNECT with remaining length ${r.remaining}`);
    return { type: 'disconnect' };
  }
  const packet: DisconnectPacket = { type: 'disconnect', reasonCode: 0 };
  decodeReasonAndProperties(r, CTX, packet);
  return packet;
}

export function encode(p: DisconnectPacket, version: ProtocolVersion): Buffer {
  if (version !== 5) return Buffer.from([0xe0, 0x00]);
  const reasonCode = checkInt(p.reasonCode ?? 0, 255, 'reasonCode');
  const propsLen = propertiesSize(p.properties, CTX);
  const len = propsLen > 0 ? 1 + propertiesSectionSize(propsLen) : reasonCode !== 0 ? 1 : 0;
  const w = Writer.packet(0xe0, len);
  if (len > 0) w.u8(reasonCode);
  if (propsLen > 0) writeProperties(w, p.properties, propsLen);
  return w.finish();
}
