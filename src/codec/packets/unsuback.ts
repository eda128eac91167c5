/** UNSUBACK (3.1.1 section 3.11, 5.0 section 3.11). 3.x: only the packet identifier. */
import { MalformedPacketError } from '../errors.js';
import { decodeProperties, propertiesSectionSize, propertiesSize, writeProperties } from '../properties.js';
import type { Reader } from '../reader.js';
import type { ProtocolVersion, UnsubackPacket } from '../types.js';
import { checkInt, checkPacketId, Writer } from '../writer.js';

const CTX = 1 << 11;

export function decode(_flags: number, r: Reader, version: ProtocolVersion): UnsubackPacket {
  const packetId = r.u16('the packet identifier');
  if (packetId === 0) throw new MalformedPacketError('UNSUBACK with packet identifier 0 [MQTT-2.3.1-1]');
  if (version !== 5) return { type: 'unsuback', packetId };
  const properties = decodeProperties(r, CTX);
  const reasonCodes: number[] = new Array(r.remaining);
  for (let i = 0; i < reasonCodes.length; i++) reasonCodes[i] = r.buf[r.pos + i]!;
  r.pos = r.end;
  const packet: UnsubackPacket = { type: 'unsuback', packetId, reasonCodes };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function encode(p: UnsubackPacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId);
  if (version !== 5) {
    const w = Writer.packet(0xb0, 2);
    w.u16(p.packetId);
    return w.finish();
  }
  const codes = p.reasonCodes ?? [];
  for (const c of codes) checkInt(c, 255, 'UNSUBACK reason code');
  const propsLen = propertiesSize(p.properties, CTX);
  const w = Writer.packet(0xb0, 2 + propertiesSectionSize(propsLen) + codes.length);
  w.u16(p.packetId);
  writeProperties(w, p.properties, propsLen);
  for (const c of codes) w.u8(c);
  return w.finish();
}
