/**
 * PUBACK, PUBREC, PUBREL, PUBCOMP (3.1.1 sections 3.4-3.7, 5.0 sections 3.4-3.7): one shape.
 * 3.x: exactly the packet identifier. 5.0: remaining length 2 means reason 0 and no properties,
 * 3 means a reason code and no properties. Decoded 5.0 acks always carry `reasonCode`.
 */
import { MalformedPacketError } from '../errors.js';
import { decodeReasonAndProperties, propertiesSectionSize, propertiesSize, writeProperties } from '../properties.js';
import type { Reader } from '../reader.js';
import type { AckPacket, ProtocolVersion } from '../types.js';
import { checkInt, checkPacketId, Writer } from '../writer.js';

export type AckType = AckPacket['type'];

const TYPE_ID: Record<AckType, number> = { puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7 };

export function decode(type: AckType, _flags: number, r: Reader, version: ProtocolVersion): AckPacket {
  const packetId = r.u16('the packet identifier');
  if (packetId === 0) throw new MalformedPacketError(`${type.toUpperCase()} with packet identifier 0 [MQTT-2.3.1-1]`);
  if (version !== 5) return { type, packetId };
  const packet: AckPacket = { type, packetId, reasonCode: 0 };
  decodeReasonAndProperties(r, 1 << TYPE_ID[type], packet);
  return packet;
}

export function encode(p: AckPacket, version: ProtocolVersion): Buffer {
  const typeId = TYPE_ID[p.type];
  const first = (typeId << 4) | (typeId === 6 ? 0x02 : 0);
  checkPacketId(p.packetId);
  if (version !== 5) return encodeShortAck(first, p.packetId);
  const reasonCode = checkInt(p.reasonCode ?? 0, 255, 'reasonCode');
  const propsLen = propertiesSize(p.properties, 1 << typeId);
  if (reasonCode === 0 && propsLen === 0) return encodeShortAck(first, p.packetId);
  const len = propsLen > 0 ? 3 + propertiesSectionSize(propsLen) : reasonCode !== 0 ? 3 : 2;
  const w = Writer.packet(first, len);
  w.u16(p.packetId);
  if (len > 2) w.u8(reasonCode);
  if (propsLen > 0) writeProperties(w, p.properties, propsLen);
  return w.finish();
}

/**
 * An acknowledgement with only its packet id (every 3.x ack; a 5.0 ack with reason 0 and no
 * properties): the 4 bytes, without a packet object. `first` is the fixed header byte (0x40 PUBACK,
 * 0x50 PUBREC, 0x62 PUBREL, 0x70 PUBCOMP); the id is not checked here.
 */
export function encodeShortAck(first: number, packetId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = first;
  b[1] = 2;
  b[2] = packetId >> 8;
  b[3] = packetId & 0xff;
  return b;
}
