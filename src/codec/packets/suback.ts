/**
 * SUBACK (3.1.1 section 3.9, 5.0 section 3.9). One code per subscription: granted QoS or a failure.
 * 3.x has one failure code, 0x80: 5.0 failure codes (>= 0x80) are written as 0x80 there.
 */
import { MalformedPacketError } from '../errors.js';
import { decodeProperties, propertiesSectionSize, propertiesSize, writeProperties } from '../properties.js';
import type { Reader } from '../reader.js';
import type { ProtocolVersion, SubackPacket } from '../types.js';
import { checkInt, checkPacketId, Writer } from '../writer.js';

const CTX = 1 << 9;

export function decode(_flags: number, r: Reader, version: ProtocolVersion): SubackPacket {
  const packetId = r.u16('the packet identifier');
  if (packetId === 0) throw new MalformedPacketError('SUBACK with packet identifier 0 [MQTT-2.3.1-1]');
  const properties = version === 5 ? decodeProperties(r, CTX) : undefined;
  const reasonCodes: number[] = new Array(r.remaining);
  for (let i = 0; i < reasonCodes.length; i++) reasonCodes[i] = r.buf[r.pos + i]!;
  r.pos = r.end;
  const packet: SubackPacket = { type: 'suback', packetId, reasonCodes };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function encode(p: SubackPacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId);
  const codes = p.reasonCodes;
  for (const c of codes) checkInt(c, 255, 'SUBACK reason code');
  let len = 2 + codes.length;
  let propsLen = 0;
  if (version === 5) {
    propsLen = propertiesSize(p.properties, CTX);
    len += propertiesSectionSize(propsLen);
  }
  const w = Writer.packet(0x90, len);
  w.u16(p.packetId);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  for (const c of codes) w.u8(version !== 5 && c >= 0x80 ? 0x80 : c);
  return w.finish();
}
