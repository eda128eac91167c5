/**
 * AUTH (5.0 section 3.15; type 15 is reserved in 3.x). Remaining length 0 means reason 0 (Success)
 * and no properties; a reason code alone (length 1) is accepted on decode.
 */
import { CodecError, MalformedPacketError } from '../errors.js';
import { decodeReasonAndProperties, propertiesSectionSize, propertiesSize, writeProperties } from '../properties.js';
import type { Reader } from '../reader.js';
import type { AuthPacket, ProtocolVersion } from '../types.js';
import { checkInt, Writer } from '../writer.js';

const CTX = 1 << 15;

export function decode(_flags: number, r: Reader, version: ProtocolVersion): AuthPacket {
  if (version !== 5) throw new MalformedPacketError('packet type 15 (AUTH) is reserved before MQTT 5.0');
  const packet: AuthPacket = { type: 'auth', reasonCode: 0 };
  decodeReasonAndProperties(r, CTX, packet);
  return packet;
}

export function encode(p: AuthPacket, version: ProtocolVersion): Buffer {
  if (version !== 5) throw new CodecError('AUTH exists only in MQTT 5.0');
  const reasonCode = checkInt(p.reasonCode, 255, 'reasonCode');
  const propsLen = propertiesSize(p.properties, CTX);
  if (reasonCode === 0 && propsLen === 0) return Buffer.from([0xf0, 0x00]);
  const w = Writer.packet(0xf0, 1 + propertiesSectionSize(propsLen));
  w.u8(reasonCode);
  writeProperties(w, p.properties, propsLen);
  return w.finish();
}
