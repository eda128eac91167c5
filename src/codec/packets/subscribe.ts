/** SUBSCRIBE (3.1.1 section 3.8, 5.0 section 3.8). Topic filter syntax is src/topic's job. */
import { CodecError, MalformedPacketError, ProtocolError } from '../errors.js';
import { decodeProperties, propertiesSectionSize, propertiesSize, writeProperties } from '../properties.js';
import type { Reader } from '../reader.js';
import type { ProtocolVersion, QoS, SubscribePacket, Subscription } from '../types.js';
import { checkInt, checkPacketId, utf8Size, Writer } from '../writer.js';

const CTX = 1 << 8;

export function decode(_flags: number, r: Reader, version: ProtocolVersion): SubscribePacket {
  const packetId = r.u16('the packet identifier');
  if (packetId === 0) throw new MalformedPacketError('SUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]');
  const properties = version === 5 ? decodeProperties(r, CTX) : undefined;
  const subscriptions: Subscription[] = [];
  while (r.remaining > 0) {
    const topic = r.utf8('a topic filter');
    const opts = r.u8('the subscription options');
    const qos = opts & 0x03;
    if (qos === 3) throw new MalformedPacketError('subscription with QoS 3 [MQTT-3.8.3-4]');
    if (version !== 5) {
      if ((opts & 0xfc) !== 0) throw new MalformedPacketError('reserved subscription option bits are set [MQTT-3.8.3-4]');
      subscriptions.push({ topic, qos: qos as QoS });
      continue;
    }
    // 5.0 calls QoS 3 and retain handling 3 protocol errors; like mosquitto we answer 0x81 for all three.
    if ((opts & 0xc0) !== 0) throw new MalformedPacketError('reserved subscription option bits are set (5.0 [MQTT-3.8.3-5])');
    const retainHandling = (opts >> 4) & 3;
    if (retainHandling === 3) throw new MalformedPacketError('subscription with retain handling 3');
    subscriptions.push({
      topic, qos: qos as QoS, noLocal: (opts & 0x04) !== 0, retainAsPublished: (opts & 0x08) !== 0,
      retainHandling: retainHandling as 0 | 1 | 2,
    });
  }
  if (subscriptions.length === 0) throw new ProtocolError('SUBSCRIBE without subscriptions [MQTT-3.8.3-3]');
  const packet: SubscribePacket = { type: 'subscribe', packetId, subscriptions };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function encode(p: SubscribePacket, version: ProtocolVersion): Buffer {
  checkPacketId(p.packetId);
  const subs = p.subscriptions;
  if (!Array.isArray(subs) || subs.length === 0) {
    throw new CodecError('SUBSCRIBE needs at least one subscription [MQTT-3.8.3-3]');
  }
  let len = 2;
  let propsLen = 0;
  if (version === 5) {
    propsLen = propertiesSize(p.properties, CTX);
    len += propertiesSectionSize(propsLen);
  }
  for (const s of subs) {
    checkInt(s.qos, 2, 'subscription qos');
    if (version === 5) checkInt(s.retainHandling ?? 0, 2, 'retainHandling');
    len += utf8Size(s.topic, 'topic filter') + 1;
  }
  const w = Writer.packet(0x82, len);
  w.u16(p.packetId);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  for (const s of subs) {
    w.utf8(s.topic);
    let opts: number = s.qos;
    if (version === 5) {
      opts |= (s.noLocal === true ? 0x04 : 0) | (s.retainAsPublished === true ? 0x08 : 0) | ((s.retainHandling ?? 0) << 4);
    }
    w.u8(opts);
  }
  return w.finish();
}
