/** Shared helpers and the golden table of the codec tests. */
import { Parser, type Packet, type ProtocolVersion } from '../../src/codec/index.js';

/** Bytes from hex with optional spaces. */
export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

const b = (s: string): Buffer => Buffer.from(s);

/** Parses a byte string (all at once) and returns every packet. */
export function parseAll(bytes: Buffer, version: ProtocolVersion, opts: { firstPacketConnect?: boolean; maxPacketSize?: number } = {}): Packet[] {
  const out: Packet[] = [];
  const p = new Parser({ protocolVersion: version, ...opts });
  p.parse(bytes, (pkt) => out.push(pkt));
  return out;
}

export interface GoldenRow {
  name: string;
  version: ProtocolVersion;
  packet: Packet;
  hex: string;
}

const USER: Array<[string, string]> = [['k', 'v']];
const USER_HEX = '26 0001 6b 0001 76';

export const GOLDEN: GoldenRow[] = [
  // ---------------------------------------------------------------- MQTT 3.1.1
  { name: 'a minimal 3.1.1 CONNECT', version: 4, hex: '10 0e 0004 4d515454 04 02 003c 0002 6331',
    packet: { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'c1' } },
  { name: 'a 3.1.1 CONNECT with a zero-length client identifier', version: 4, hex: '10 0c 0004 4d515454 04 02 0000 0000',
    packet: { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: '' } },
  { name: 'a 3.1.1 CONNECT with will, user name and password', version: 4,
    hex: '10 1c 0004 4d515454 04 ec 000a 0002 6964 0001 77 0003 627965 0001 75 0001 70',
    packet: { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: false, keepalive: 10, clientId: 'id',
      will: { topic: 'w', payload: b('bye'), qos: 1, retain: true }, username: 'u', password: b('p') } },
  { name: 'a 3.1.1 bridge CONNECT (level 0x84)', version: 4, hex: '10 0e 0004 4d515454 84 02 003c 0002 6331',
    packet: { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'c1', bridge: true } },
  { name: 'a 3.1.1 CONNACK with session present', version: 4, hex: '20 02 01 00',
    packet: { type: 'connack', sessionPresent: true, reasonCode: 0 } },
  { name: 'a 3.1.1 CONNACK refusing with not authorised', version: 4, hex: '20 02 00 05',
    packet: { type: 'connack', sessionPresent: false, reasonCode: 5 } },
  { name: 'a 3.1.1 QoS 0 PUBLISH', version: 4, hex: '30 07 0003 612f62 6869',
    packet: { type: 'publish', topic: 'a/b', payload: b('hi'), qos: 0, retain: false, dup: false } },
  { name: 'a 3.1.1 QoS 1 PUBLISH with retain and dup', version: 4, hex: '3b 09 0003 612f62 0001 6869',
    packet: { type: 'publish', topic: 'a/b', payload: b('hi'), qos: 1, retain: true, dup: true, packetId: 1 } },
  { name: 'a 3.1.1 QoS 2 PUBLISH with an empty payload and packet id 65535', version: 4, hex: '34 07 0003 612f62 ffff',
    packet: { type: 'publish', topic: 'a/b', payload: Buffer.alloc(0), qos: 2, retain: false, dup: false, packetId: 65535 } },
  { name: 'a 3.1.1 PUBLISH with a multibyte UTF-8 topic', version: 4, hex: '30 0a 0007 c3a92f f09f9880 78',
    packet: { type: 'publish', topic: 'é/😀', payload: b('x'), qos: 0, retain: false, dup: false } },
  { name: 'a 3.1.1 PUBACK', version: 4, hex: '40 02 0001', packet: { type: 'puback', packetId: 1 } },
  { name: 'a 3.1.1 PUBREC', version: 4, hex: '50 02 0002', packet: { type: 'pubrec', packetId: 2 } },
  { name: 'a 3.1.1 PUBREL', version: 4, hex: '62 02 0003', packet: { type: 'pubrel', packetId: 3 } },
  { name: 'a 3.1.1 PUBCOMP', version: 4, hex: '70 02 0004', packet: { type: 'pubcomp', packetId: 4 } },
  { name: 'a 3.1.1 SUBSCRIBE with two filters', version: 4, hex: '82 0c 000a 0003 612f23 01 0001 2b 02',
    packet: { type: 'subscribe', packetId: 10, subscriptions: [{ topic: 'a/#', qos: 1 }, { topic: '+', qos: 2 }] } },
  { name: 'a 3.1.1 SUBACK with a failure', version: 4, hex: '90 05 000a 01 02 80',
    packet: { type: 'suback', packetId: 10, reasonCodes: [1, 2, 0x80] } },
  { name: 'a 3.1.1 UNSUBSCRIBE with two filters', version: 4, hex: 'a2 0a 000b 0003 612f23 0001 2b',
    packet: { type: 'unsubscribe', packetId: 11, topics: ['a/#', '+'] } },
  { name: 'a 3.1.1 UNSUBACK', version: 4, hex: 'b0 02 000b', packet: { type: 'unsuback', packetId: 11 } },
  { name: 'a 3.1.1 PINGREQ', version: 4, hex: 'c0 00', packet: { type: 'pingreq' } },
  { name: 'a 3.1.1 PINGRESP', version: 4, hex: 'd0 00', packet: { type: 'pingresp' } },
  { name: 'a 3.1.1 DISCONNECT', version: 4, hex: 'e0 00', packet: { type: 'disconnect' } },

  // ---------------------------------------------------------------- MQTT 3.1
  { name: 'a 3.1 CONNECT (MQIsdp)', version: 3, hex: '10 10 0006 4d5149736470 03 02 003c 0002 6331',
    packet: { type: 'connect', protocolName: 'MQIsdp', protocolVersion: 3, clean: true, keepalive: 60, clientId: 'c1' } },
  { name: 'a 3.1 CONNECT with will, user name and password', version: 3,
    hex: '10 1d 0006 4d5149736470 03 c6 0005 0001 78 0001 77 0001 21 0002 7531 0002 7032',
    packet: { type: 'connect', protocolName: 'MQIsdp', protocolVersion: 3, clean: true, keepalive: 5, clientId: 'x',
      will: { topic: 'w', payload: b('!'), qos: 0, retain: false }, username: 'u1', password: b('p2') } },
  { name: 'a 3.1 CONNACK', version: 3, hex: '20 02 00 02', packet: { type: 'connack', sessionPresent: false, reasonCode: 2 } },
  { name: 'a 3.1 QoS 1 PUBLISH', version: 3, hex: '32 08 0003 612f62 0007 7a',
    packet: { type: 'publish', topic: 'a/b', payload: b('z'), qos: 1, retain: false, dup: false, packetId: 7 } },
  { name: 'a 3.1 PUBACK', version: 3, hex: '40 02 0007', packet: { type: 'puback', packetId: 7 } },
  { name: 'a 3.1 PUBREC', version: 3, hex: '50 02 0007', packet: { type: 'pubrec', packetId: 7 } },
  { name: 'a 3.1 PUBREL', version: 3, hex: '62 02 0007', packet: { type: 'pubrel', packetId: 7 } },
  { name: 'a 3.1 PUBCOMP', version: 3, hex: '70 02 0007', packet: { type: 'pubcomp', packetId: 7 } },
  { name: 'a 3.1 SUBSCRIBE', version: 3, hex: '82 06 0001 0001 23 00',
    packet: { type: 'subscribe', packetId: 1, subscriptions: [{ topic: '#', qos: 0 }] } },
  { name: 'a 3.1 SUBACK', version: 3, hex: '90 03 0001 00', packet: { type: 'suback', packetId: 1, reasonCodes: [0] } },
  { name: 'a 3.1 UNSUBSCRIBE', version: 3, hex: 'a2 05 0001 0001 23', packet: { type: 'unsubscribe', packetId: 1, topics: ['#'] } },
  { name: 'a 3.1 UNSUBACK', version: 3, hex: 'b0 02 0001', packet: { type: 'unsuback', packetId: 1 } },
  { name: 'a 3.1 PINGREQ', version: 3, hex: 'c0 00', packet: { type: 'pingreq' } },
  { name: 'a 3.1 PINGRESP', version: 3, hex: 'd0 00', packet: { type: 'pingresp' } },
  { name: 'a 3.1 DISCONNECT', version: 3, hex: 'e0 00', packet: { type: 'disconnect' } },

  // ---------------------------------------------------------------- MQTT 5.0
  { name: 'a minimal 5.0 CONNECT', version: 5, hex: '10 0f 0004 4d515454 05 02 003c 00 0002 6331',
    packet: { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: 'c1' } },
  { name: 'a 5.0 CONNECT with every CONNECT property, a will with every will property, and a user name without password',
    version: 5,
    hex: '10 77 0004 4d515454 05 96 001e'
      + ' 28 1100000078 15 0005 5343524 14d 16 0002 0102 17 00 19 01 21 0014 22 000a ' + USER_HEX + ' 27 00000400'
      + ' 0002 6331'
      + ' 30 01 01 02 0000003c 03 000a 746578742f706c61696e 08 0001 72 09 0002 6162 18 00000005'
      + ' 26 0001 61 0001 62 26 0001 61 0001 63'
      + ' 0003 772f74 0002 6f6b 0004 75736572',
    packet: { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId: 'c1',
      properties: { sessionExpiryInterval: 120, authenticationMethod: 'SCRAM', authenticationData: hex('0102'),
        requestProblemInformation: 0, requestResponseInformation: 1, receiveMaximum: 20, topicAliasMaximum: 10,
        userProperties: USER, maximumPacketSize: 1024 },
      will: { topic: 'w/t', payload: b('ok'), qos: 2, retain: false,
        properties: { payloadFormatIndicator: 1, messageExpiryInterval: 60, contentType: 'text/plain', responseTopic: 'r',
          correlationData: b('ab'), willDelayInterval: 5, userProperties: [['a', 'b'], ['a', 'c']] } },
      username: 'user' } },
  { name: 'a 5.0 CONNECT with a password and no user name', version: 5, hex: '10 12 0004 4d515454 05 40 0000 00 0001 63 0002 7077',
    packet: { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: false, keepalive: 0, clientId: 'c', password: b('pw') } },
  { name: 'a 5.0 CONNACK with every CONNACK property', version: 5,
    hex: '20 42 00 00 3f 11 00000e10 12 0003 616263 13 003c 15 0001 78 16 0001 ff 1a 0001 72 1c 0001 73 1f 0002 6f6b'
      + ' 21 ffff 22 0005 24 01 25 00 ' + USER_HEX + ' 27 00010000 28 01 29 00 2a 01',
    packet: { type: 'connack', sessionPresent: false, reasonCode: 0,
      properties: { sessionExpiryInterval: 3600, assignedClientIdentifier: 'abc', serverKeepAlive: 60,
        authenticationMethod: 'x', authenticationData: hex('ff'), responseInformation: 'r', serverReference: 's',
        reasonString: 'ok', receiveMaximum: 65535, topicAliasMaximum: 5, maximumQoS: 1, retainAvailable: 0,
        userProperties: USER, maximumPacketSize: 65536, wildcardSubscriptionAvailable: 1,
        subscriptionIdentifiersAvailable: 0, sharedSubscriptionAvailable: 1 } } },
  { name: 'a 5.0 CONNACK with session present', version: 5, hex: '20 03 01 00 00',
    packet: { type: 'connack', sessionPresent: true, reasonCode: 0 } },
  { name: 'a 5.0 CONNACK refusing with Not authorized', version: 5, hex: '20 03 00 87 00',
    packet: { type: 'connack', sessionPresent: false, reasonCode: 0x87 } },
  { name: 'a 5.0 QoS 1 PUBLISH with every PUBLISH property', version: 5,
    hex: '32 2c 0001 74 000a 25 01 01 02 0000000a 03 0001 6a 08 0001 72 09 0002 00ff 0b 01 0b ffffff7f 23 0003'
      + ' 26 0001 78 0001 79 70',
    packet: { type: 'publish', topic: 't', payload: b('p'), qos: 1, retain: false, dup: false, packetId: 10,
      properties: { payloadFormatIndicator: 1, messageExpiryInterval: 10, contentType: 'j', responseTopic: 'r',
        correlationData: hex('00ff'), subscriptionIdentifiers: [1, 268435455], topicAlias: 3, userProperties: [['x', 'y']] } } },
  { name: 'a 5.0 PUBLISH with an empty topic and a topic alias', version: 5, hex: '30 07 0000 03 23 0007 70',
    packet: { type: 'publish', topic: '', payload: b('p'), qos: 0, retain: false, dup: false, properties: { topicAlias: 7 } } },
  { name: 'a 5.0 PUBLISH without properties', version: 5, hex: '31 06 0001 74 00 6869',
    packet: { type: 'publish', topic: 't', payload: b('hi'), qos: 0, retain: true, dup: false } },
  { name: 'a 5.0 PUBACK with success and no properties (remaining length 2)', version: 5, hex: '40 02 0001',
    packet: { type: 'puback', packetId: 1, reasonCode: 0 } },
  { name: 'a 5.0 PUBACK with a reason code only (remaining length 3)', version: 5, hex: '40 03 0001 10',
    packet: { type: 'puback', packetId: 1, reasonCode: 0x10 } },
  { name: 'a 5.0 PUBREC with a reason string and a user property', version: 5,
    hex: '50 11 0002 80 0d 1f 0003 626164 ' + USER_HEX,
    packet: { type: 'pubrec', packetId: 2, reasonCode: 0x80, properties: { reasonString: 'bad', userProperties: USER } } },
  { name: 'a 5.0 PUBREL with Packet Identifier not found', version: 5, hex: '62 03 0003 92',
    packet: { type: 'pubrel', packetId: 3, reasonCode: 0x92 } },
  { name: 'a 5.0 PUBCOMP', version: 5, hex: '70 02 0004', packet: { type: 'pubcomp', packetId: 4, reasonCode: 0 } },
  { name: 'a 5.0 SUBSCRIBE with options, a subscription identifier and a user property', version: 5,
    hex: '82 1f 0001 09 0b 05 ' + USER_HEX + ' 0003 612f2b 2d 000a 247368617265 2f672f74 00',
    packet: { type: 'subscribe', packetId: 1, properties: { subscriptionIdentifiers: [5], userProperties: USER },
      subscriptions: [
        { topic: 'a/+', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 },
        { topic: '$share/g/t', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] } },
  { name: 'a 5.0 SUBACK with a reason string', version: 5, hex: '90 0b 0001 05 1f 0002 6e6f 01 00 87',
    packet: { type: 'suback', packetId: 1, reasonCodes: [1, 0, 0x87], properties: { reasonString: 'no' } } },
  { name: 'a 5.0 UNSUBSCRIBE', version: 5, hex: 'a2 08 0002 00 0003 612f2b',
    packet: { type: 'unsubscribe', packetId: 2, topics: ['a/+'] } },
  { name: 'a 5.0 UNSUBSCRIBE with a user property', version: 5, hex: 'a2 0d 0002 07 ' + USER_HEX + ' 0001 74',
    packet: { type: 'unsubscribe', packetId: 2, topics: ['t'], properties: { userProperties: USER } } },
  { name: 'a 5.0 UNSUBACK', version: 5, hex: 'b0 05 0002 00 00 11',
    packet: { type: 'unsuback', packetId: 2, reasonCodes: [0, 0x11] } },
  { name: 'a 5.0 UNSUBACK with a reason string', version: 5, hex: 'b0 09 0002 05 1f 0002 6f6b 00',
    packet: { type: 'unsuback', packetId: 2, reasonCodes: [0], properties: { reasonString: 'ok' } } },
  { name: 'a 5.0 PINGREQ', version: 5, hex: 'c0 00', packet: { type: 'pingreq' } },
  { name: 'a 5.0 PINGRESP', version: 5, hex: 'd0 00', packet: { type: 'pingresp' } },
  { name: 'a 5.0 DISCONNECT with normal disconnection as e0 00', version: 5, hex: 'e0 00',
    packet: { type: 'disconnect', reasonCode: 0 } },
  { name: 'a 5.0 DISCONNECT with a reason code only', version: 5, hex: 'e0 01 04',
    packet: { type: 'disconnect', reasonCode: 4 } },
  { name: 'a 5.0 DISCONNECT with every DISCONNECT property', version: 5,
    hex: 'e0 17 8b 15 11 00000000 1c 0001 73 1f 0002 6279 ' + USER_HEX,
    packet: { type: 'disconnect', reasonCode: 0x8b,
      properties: { sessionExpiryInterval: 0, serverReference: 's', reasonString: 'by', userProperties: USER } } },
  { name: 'a 5.0 AUTH with success as f0 00', version: 5, hex: 'f0 00', packet: { type: 'auth', reasonCode: 0 } },
  { name: 'a 5.0 AUTH with re-authenticate and no properties', version: 5, hex: 'f0 02 19 00',
    packet: { type: 'auth', reasonCode: 0x19 } },
  { name: 'a 5.0 AUTH with every AUTH property', version: 5,
    hex: 'f0 1b 18 19 15 0005 5343524 14d 16 0003 010203 1f 0001 78 ' + USER_HEX,
    packet: { type: 'auth', reasonCode: 0x18,
      properties: { authenticationMethod: 'SCRAM', authenticationData: hex('010203'), reasonString: 'x', userProperties: USER } } },
];
