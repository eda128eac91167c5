/** CONNACK (3.1.1 section 3.2, 5.0 section 3.2). */
import { CodecError, MalformedPacketError, ProtocolError } from '../errors.js';
import { decodeProperties, propertiesSectionSize, propertiesSize, writeProperties } from '../properties.js';
import type { Reader } from '../reader.js';
import type { ConnackPacket, ProtocolVersion } from '../types.js';
import { checkInt, Writer } from '../writer.js';

const CTX = 1 << 2;

export function decode(_flags: number, r: Reader, version: ProtocolVersion): ConnackPacket {
  const ackFlags = r.u8('the connect acknowledge flags');
  // 3.1 has no session present flag: the byte is reserved and ignored.
  if (version !== 3 && (ackFlags & 0xfe) !== 0) {
    throw new MalformedPacketError('reserved connect acknowledge flags are set (3.1.1 section 3.2.2.1)');
  }
  const sessionPresent = version !== 3 && ackFlags === 1;
  const reasonCode = r.u8('the connect reason code');
  if (sessionPresent && reasonCode !== 0) {
    throw new ProtocolError('session present is set in a refusing CONNACK [MQTT-3.2.2-4]');
  }
  const packet: ConnackPacket = { type: 'connack', sessionPresent, reasonCode };
  // A 5.0 client may get a 3.1.1-style CONNACK (no properties) from a server refusing level 5.
  if (version === 5 && r.remaining > 0) {
    const properties = decodeProperties(r, CTX);
    if (properties !== undefined) packet.properties = properties;
  }
  return packet;
}

export function encode(p: ConnackPacket, version: ProtocolVersion): Buffer {
  checkInt(p.reasonCode, 255, 'reasonCode');
  const sessionPresent = version !== 3 && p.sessionPresent;
  if (sessionPresent && p.reasonCode !== 0) {
    throw new CodecError('session present must be 0 in a refusing CONNACK [MQTT-3.2.2-4]');
  }
  let len = 2;
  let propsLen = 0;
  if (version === 5) {
    propsLen = propertiesSize(p.properties, CTX);
    len += propertiesSectionSize(propsLen);
  }
  const w = Writer.packet(0x20, len);
  w.u8(sessionPresent ? 1 : 0);
  w.u8(p.reasonCode);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  return w.finish();
}
