/** PUBLISH (3.1.1 section 3.3, 5.0 section 3.3). The payload is a view of the input buffer. */
import { CodecError, MalformedPacketError, ProtocolError } from '../errors.js';
import { decodeProperties, propertiesSectionSize, propertiesSize, writeProperties } from '../properties.js';
import type { Reader } from '../reader.js';
import type { ProtocolVersion, PublishPacket, QoS } from '../types.js';
import { checkInt, checkPacketId, utf8Size, Writer } from '../writer.js';

const CTX = 1 << 3;

export function decode(flags: number, r: Reader, version: ProtocolVersion): PublishPacket {
  const qos = (flags >> 1) & 3;
  if (qos === 3) throw new MalformedPacketError('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0 && version !== 3) {
    throw new ProtocolError('PUBLISH with QoS 0 has the DUP flag set [MQTT-3.3.1-2]');
  }
  const topic = r.utf8('the topic name');
  let packetId = 0;
  if (qos > 0) {
    packetId = r.u16('the packet identifier');
    if (packetId === 0) throw new MalformedPacketError('PUBLISH with QoS > 0 has packet identifier 0 [MQTT-2.3.1-1]');
  }
  const properties = version === 5 ? decodeProperties(r, CTX) : undefined;
  if (version === 5 && topic === '' && properties?.topicAlias === undefined) {
    throw new ProtocolError('PUBLISH has an empty topic name and no topic alias');
  }
  const packet: PublishPacket = {
    type: 'publish', topic, payload: r.rest(), qos: qos as QoS, retain: (flags & 0x01) !== 0, dup,
  };
  if (qos > 0) packet.packetId = packetId;
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function encode(p: PublishPacket, version: ProtocolVersion): Buffer {
  const qos = checkInt(p.qos, 2, 'qos');
  if (p.dup && qos === 0 && version !== 3) throw new CodecError('DUP must be 0 for QoS 0 [MQTT-3.3.1-2]');
  const payload = p.payload;
  if (!(payload instanceof Uint8Array)) throw new CodecError('payload must be a Buffer');
  let len = utf8Size(p.topic, 'topic') + payload.length;
  if (qos > 0) {
    checkPacketId(p.packetId);
    len += 2;
  }
  let propsLen = 0;
  if (version === 5) {
    if (p.topic === '' && p.properties?.topicAlias === undefined) {
      throw new CodecError('an empty topic name needs a topic alias');
    }
    propsLen = propertiesSize(p.properties, CTX);
    len += propertiesSectionSize(propsLen);
  }
  const w = Writer.packet(0x30 | (p.dup ? 0x08 : 0) | (qos << 1) | (p.retain ? 0x01 : 0), len);
  w.utf8(p.topic);
  if (qos > 0) w.u16(p.packetId!);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  w.bytes(payload);
  return w.finish();
}
