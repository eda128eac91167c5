/** UNSUBSCRIBE (3.1.1 section 3.10, 5.0 section 3.10). */
import { CodecError, MalformedPacketError, ProtocolError } from '../errors.js';
import { decodeProperties, propertiesSectionSize, propertiesSize, writeProperties } from '../properties.js';
import type { Reader } from '../reader.js';
import type { ProtocolVersion, UnsubscribePacket } from '../types.js';
import { checkPacketId, utf8Size, Writer } from '../writer.js';

const CTX = 1 << 10;

export function decode(_flags: number, r: Reader, version: ProtocolVersion): UnsubscribePacket {
  const packetId = r.u16('the packet identifier');
  if (packetId === 0) throw new MalformedPacketError('UNSUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]');
  const properties = version === 5 ? decodeProperties(r, CTX) : undefined;
  const topics: string[] = [];
  while (r.remaining > 0) topics.push(r.utf8('a topic filter'));
  if (topics.length === 0) throw new ProtocolError('UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]');
  const packet: UnsubscribePacket = { type: 'unsubscribe', packetId, topics };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function encode(p: UnsubscribePacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId);
  const topics = p.topics;
  if (!Array.isArray(topics) || topics.length === 0) {
    throw new CodecError('UNSUBSCRIBE needs at least one topic filter [MQTT-3.10.3-2]');
  }
  let len = 2;
  let propsLen = 0;
  if (version === 5) {
    propsLen = propertiesSize(p.properties, CTX);
    len += propertiesSectionSize(propsLen);
  }
  for (const t of topics) len += utf8Size(t, 'topic filter');
  const w = Writer.packet(0xa2, len);
  w.u16(p.packetId);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  for (const t of topics) w.utf8(t);
  return w.finish();
}
