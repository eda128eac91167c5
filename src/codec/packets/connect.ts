/**
 * CONNECT (3.1.1 section 3.1, 5.0 section 3.1). Its own protocol level decides the layout, so the
 * `version` argument is ignored: the packet defines the version of the connection.
 */
import { CodecError, MalformedPacketError, UnsupportedProtocolVersionError } from '../errors.js';
import { decodeProperties, propertiesSectionSize, propertiesSize, writeProperties, WILL } from '../properties.js';
import type { Reader } from '../reader.js';
import type { ConnectPacket, ProtocolVersion, QoS, Will } from '../types.js';
import { binarySize, checkInt, utf8Size, Writer } from '../writer.js';

const CTX = 1 << 1;

export function decode(_flags: number, r: Reader, _version: ProtocolVersion): ConnectPacket {
  const protocolName = r.utf8('the protocol name');
  const level = r.u8('the protocol level');
  const v = level & 0x7f;
  // [MQTT-3.1.2-1] [MQTT-3.1.2-2]: thrown only once name and level are known, so that the
  // broker can answer CONNACK 1 (3.x) or 0x84 (5.0) before closing.
  if (!((protocolName === 'MQTT' && (v === 4 || v === 5)) || (protocolName === 'MQIsdp' && v === 3))) {
    throw new UnsupportedProtocolVersionError(
      `unsupported protocol "${protocolName}" level ${level}`, protocolName, level);
  }
  const version = v as ProtocolVersion;
  const flags = r.u8('the connect flags');
  if ((flags & 0x01) !== 0) throw new MalformedPacketError('the reserved connect flag is set [MQTT-3.1.2-3]');
  const willFlag = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 3;
  const willRetain = (flags & 0x20) !== 0;
  const passwordFlag = (flags & 0x40) !== 0;
  const usernameFlag = (flags & 0x80) !== 0;
  if (!willFlag && willQos !== 0) throw new MalformedPacketError('will QoS is set without the will flag [MQTT-3.1.2-13]');
  if (!willFlag && willRetain) throw new MalformedPacketError('will retain is set without the will flag [MQTT-3.1.2-15]');
  if (willQos === 3) throw new MalformedPacketError('will QoS is 3 [MQTT-3.1.2-14]');
  if (version !== 5 && passwordFlag && !usernameFlag) {
    throw new MalformedPacketError('password flag without user name flag [MQTT-3.1.2-22]');
  }
  const keepalive = r.u16('the keep alive');
  const properties = version === 5 ? decodeProperties(r, CTX) : undefined;
  const clientId = r.utf8('the client identifier');
  const packet: ConnectPacket = {
    type: 'connect', protocolName, protocolVersion: version, clean: (flags & 0x02) !== 0, keepalive, clientId,
  };
  if (properties !== undefined) packet.properties = properties;
  if (willFlag) {
    const willProps = version === 5 ? decodeProperties(r, WILL) : undefined;
    const topic = r.utf8('the will topic');
    const will: Will = { topic, payload: r.binary('the will payload'), qos: willQos as QoS, retain: willRetain };
    if (willProps !== undefined) will.properties = willProps;
    packet.will = will;
  }
  if (usernameFlag) packet.username = r.utf8('the user name');
  if (passwordFlag) packet.password = r.binary('the password');
  if ((level & 0x80) !== 0) packet.bridge = true;
  return packet;
}

export function encode(p: ConnectPacket, _version?: ProtocolVersion): Buffer {
  const v = checkInt(p.protocolVersion, 5, 'protocolVersion', 3) as ProtocolVersion;
  const name = p.protocolName ?? (v === 3 ? 'MQIsdp' : 'MQTT');
  checkInt(p.keepalive, 65_535, 'keepalive');
  if (v !== 5 && p.password !== undefined && p.username === undefined) {
    throw new CodecError('a password needs a user name before MQTT 5.0 [MQTT-3.1.2-22]');
  }
  let len = utf8Size(name, 'protocolName') + 4 + utf8Size(p.clientId, 'clientId');
  let propsLen = 0;
  if (v === 5) {
    propsLen = propertiesSize(p.properties, CTX);
    len += propertiesSectionSize(propsLen);
  }
  const will = p.will;
  let willPropsLen = 0;
  if (will !== undefined) {
    checkInt(will.qos, 2, 'will qos');
    if (v === 5) {
      willPropsLen = propertiesSize(will.properties, WILL);
      len += propertiesSectionSize(willPropsLen);
    }
    len += utf8Size(will.topic, 'will topic') + binarySize(will.payload, 'will payload');
  }
  if (p.username !== undefined) len += utf8Size(p.username, 'username');
  if (p.password !== undefined) len += binarySize(p.password, 'password');

  const w = Writer.packet(0x10, len);
  w.utf8(name);
  w.u8(v | (p.bridge === true ? 0x80 : 0));
  let flags = p.clean ? 0x02 : 0;
  if (will !== undefined) flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
  if (p.password !== undefined) flags |= 0x40;
  if (p.username !== undefined) flags |= 0x80;
  w.u8(flags);
  w.u16(p.keepalive);
  if (v === 5) writeProperties(w, p.properties, propsLen);
  w.utf8(p.clientId);
  if (will !== undefined) {
    if (v === 5) writeProperties(w, will.properties, willPropsLen);
    w.utf8(will.topic);
    w.binary(will.payload);
  }
  if (p.username !== undefined) w.utf8(p.username);
  if (p.password !== undefined) w.binary(p.password);
  return w.finish();
}
