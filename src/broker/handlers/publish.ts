import { MqttError, ProtocolError } from '../../codec/errors.js';
import { encodeShortAck, isValidUtf8String } from '../../codec/index.js';
import type { Properties, PublishPacket } from '../../codec/types.js';
import { checkMessage, mayPublish } from '../checks.js';
import type { Connection } from '../connection.js';
import type { Message } from '../types.js';

/** PUBLISH from a client: topic (and v5 alias) checks, limits, ACL, route, then acknowledge. */
export function handlePublish(conn: Connection, p: PublishPacket): void {
  const broker = conn.broker;
  const log = broker.log;
  // $SYS/broker/publish/messages/received counts PUBLISH packets from clients (as mosquitto), not $SYS or wills
  const stats = broker.stats;
  stats.publishReceived++;
  stats.publishBytesReceived += p.payload.length;
  broker.traffic.publishIn[p.qos]!++;
  broker.traffic.publishBytesIn[p.qos]! += p.payload.length;
  if (log.verbose) {
    log.debug(`Received PUBLISH from ${conn.logId} (d${+p.dup}, q${p.qos}, r${+p.retain}, m${p.packetId ?? 0}, '${p.topic}', ... (${p.payload.length} bytes))`);
  }
  const v5 = conn.protocolVersion === 5;
  let topic = p.topic;
  let props = p.properties;
  if (v5 && props !== undefined && (props.topicAlias !== undefined || props.subscriptionIdentifiers !== undefined)) {
    if (props.subscriptionIdentifiers !== undefined) throw new ProtocolError('PUBLISH from a client carries a subscription identifier [MQTT-3.3.4-6]');
    const alias = props.topicAlias!;
    if (alias === 0 || alias > conn.topicAliasMaximum) throw new MqttError(`topic alias ${alias} out of range`, 0x94);
    if (topic.length > 0) {
      (conn.topicAliases ??= new Map()).set(alias, topic);
    } else {
      const known = conn.topicAliases?.get(alias);
      if (known === undefined) throw new ProtocolError(`unknown topic alias ${alias}`);
      topic = known;
    }
    props = withoutAlias(props);
  }
  // the same checks as a will's at CONNECT (checks.ts); answered the PUBLISH way
  const check = checkMessage(broker, topic, p.payload.length);
  // [MQTT-3.3.2-2] no wildcards in a topic name; empty only with an alias (handled above)
  if (check === 0x90) throw new ProtocolError(`invalid topic name '${topic}' in PUBLISH`);

  const s = conn.session!;
  if (p.qos === 2) {
    if (s.incomingQos2.has(p.packetId!)) {
      // a re-sent QoS 2 PUBLISH (DUP) before PUBREL: acknowledged, not delivered twice [MQTT-4.3.3-2]
      ack(conn, p, 0);
      return;
    }
    if (v5 && s.incomingQos2.size >= conn.receiveMaximum) throw new MqttError('receive maximum exceeded', 0x93);
  }
  if (v5 && props?.payloadFormatIndicator === 1 && !isValidUtf8String(p.payload)) {
    // the payload says it is UTF-8 and is not: refused (0x99), the connection stays [MQTT-3.3.2-?]
    log.info(`Dropped PUBLISH from ${conn.logId} to '${topic}': payload is not valid UTF-8 (payload format indicator 1).`);
    ack(conn, p, 0x99);
    return;
  }
  if (check === 0x95) {
    log.info(`Dropped too large PUBLISH from ${conn.logId} (q${p.qos}, m${p.packetId ?? 0}, '${topic}', ... (${p.payload.length} bytes)).`);
    ack(conn, p, 0x95);
    return;
  }
  if (p.retain && !broker.opts.retainAvailable) {
    if (v5) throw new MqttError('retain not supported', 0x9a);
  }
  // memory_limit and the retained limits: refused with 0x97 quota exceeded (3.x over memory: disconnected)
  if (!broker.admit(conn, topic, p)) { if (conn.state !== 'closed') ack(conn, p, 0x97); return; }
  const msg: Message = { topic, payload: p.payload, qos: p.qos, retain: p.retain && broker.opts.retainAvailable, origin: conn.id };
  if (props !== undefined) {
    msg.properties = props;
    if (props.messageExpiryInterval !== undefined) msg.expiresAt = broker.clock.now() + props.messageExpiryInterval * 1000;
  }
  // $SYS (denied to clients, as mosquitto does) and the ACL hook, as for a will (checks.ts)
  const allowed = mayPublish(broker, conn, msg);
  if (typeof allowed === 'boolean') finish(conn, p, msg, allowed);
  else conn.runAsync(allowed.then((ok) => finish(conn, p, msg, ok)));
}

function finish(conn: Connection, p: PublishPacket, msg: Message, allowed: boolean): void {
  if (conn.state === 'closed') return;
  if (!allowed) {
    conn.broker.log.info(`Denied PUBLISH from ${conn.logId} (d${+p.dup}, q${p.qos}, r${+p.retain}, m${p.packetId ?? 0}, '${msg.topic}', ... (${p.payload.length} bytes))`);
    ack(conn, p, 0x87);
    return;
  }
  if (p.qos === 2) conn.session!.addIncomingQos2(p.packetId!);
  const matched = conn.broker.publishMessage(msg, conn);
  // v5: a QoS 1 message no subscription matched is acknowledged 0x10, as mosquitto 2.0.11 does (checked:
  // PUBACK 0x10 for QoS 1, retained or not; its QoS 2 PUBREC stays 0x00, so does ours). 3.x: no reason codes.
  ack(conn, p, matched || p.qos !== 1 ? 0 : 0x10);
}

/** PUBACK / PUBREC; reason codes only exist in 5.0 (3.1.1 acknowledges a dropped message as success). */
function ack(conn: Connection, p: PublishPacket, reasonCode: number): void {
  if (p.qos === 0) return;
  // acknowledgement follows durability: with a store, it waits for this turn's commit
  conn.holdForCommit();
  if ((reasonCode === 0 || conn.protocolVersion !== 5) && !conn.broker.log.verbose) {
    // the common case, without a packet object and the general encoder
    conn.writeBuffer(encodeShortAck(p.qos === 1 ? 0x40 : 0x50, p.packetId!));
    return;
  }
  const type = p.qos === 1 ? 'puback' : 'pubrec';
  if (conn.protocolVersion === 5 && reasonCode !== 0) {
    conn.writePacket({ type, packetId: p.packetId!, reasonCode });
    return;
  }
  conn.writePacket({ type, packetId: p.packetId! });
}

function withoutAlias(props: Properties): Properties | undefined {
  const { topicAlias: _alias, ...rest } = props;
  return Object.keys(rest).length > 0 ? rest : undefined;
}
