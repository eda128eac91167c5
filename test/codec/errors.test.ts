import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MalformedPacketError, MqttError, PacketTooLargeError, Parser, ProtocolError, UnsupportedProtocolVersionError,
  type ProtocolVersion,
} from '../../src/codec/index.js';
import { hex } from './fixtures.js';

type ErrorClass = new (...args: never[]) => MqttError;
interface Row { name: string; v: ProtocolVersion; hex: string; error: ErrorClass; first?: boolean }

const M = MalformedPacketError, P = ProtocolError, U = UnsupportedProtocolVersionError;
const REASON = new Map<ErrorClass, number>([[M, 0x81], [P, 0x82], [U, 0x84], [PacketTooLargeError, 0x95]]);

const ROWS: Row[] = [
  // fixed header
  { name: 'packet type 0 is malformed', v: 4, hex: '00 00', error: M },
  { name: 'AUTH in 3.1.1 is malformed (type 15 is reserved)', v: 4, hex: 'f0 00', error: M },
  { name: 'AUTH in 3.1 is malformed', v: 3, hex: 'f0 00', error: M },
  { name: 'CONNECT with fixed header flags 0001 is malformed [MQTT-2.2.2-1]', v: 4, hex: '11 0e 0004 4d515454 04 02 003c 0002 6331', error: M },
  { name: 'CONNACK with fixed header flags is malformed [MQTT-2.2.2-1]', v: 4, hex: '28 02 00 00', error: M },
  { name: 'PUBACK with fixed header flags is malformed [MQTT-2.2.2-1]', v: 4, hex: '41 02 0001', error: M },
  { name: 'PUBREL with flags 0000 is malformed [MQTT-3.6.1-1]', v: 4, hex: '60 02 0001', error: M },
  { name: 'PUBREL with flags 0000 is malformed in 5.0', v: 5, hex: '60 02 0001', error: M },
  { name: 'SUBSCRIBE with flags 0000 is malformed [MQTT-3.8.1-1]', v: 4, hex: '80 06 0001 0001 23 00', error: M },
  { name: 'SUBSCRIBE with the DUP bit is malformed in 3.1.1', v: 4, hex: '8a 06 0001 0001 23 00', error: M },
  { name: 'UNSUBSCRIBE with flags 0000 is malformed [MQTT-3.10.1-1]', v: 4, hex: 'a0 05 0001 0001 23', error: M },
  { name: 'PINGREQ with flags is malformed', v: 4, hex: 'c4 00', error: M },
  { name: 'DISCONNECT with flags is malformed', v: 5, hex: 'e1 00', error: M },
  { name: 'AUTH with flags is malformed', v: 5, hex: 'f2 00', error: M },
  { name: 'a remaining length of 5 bytes is malformed', v: 4, hex: '30 ff ff ff ff 7f', error: M },
  { name: 'a remaining length whose 4th byte continues is malformed at once', v: 4, hex: '30 80 80 80 80', error: M },
  // PUBLISH
  { name: 'PUBLISH with QoS 3 is malformed [MQTT-3.3.1-4]', v: 4, hex: '36 07 0003 612f62 0001', error: M },
  { name: 'PUBLISH with QoS 0 and DUP is a protocol error [MQTT-3.3.1-2]', v: 4, hex: '38 05 0003 612f62', error: P },
  { name: 'PUBLISH with QoS 0 and DUP is a protocol error in 5.0 [MQTT-3.3.1-2]', v: 5, hex: '38 06 0003 612f62 00', error: P },
  { name: 'PUBLISH QoS 1 with packet identifier 0 is malformed [MQTT-2.3.1-1]', v: 4, hex: '32 07 0003 612f62 0000', error: M },
  { name: 'PUBLISH whose topic length runs past the packet is malformed', v: 4, hex: '30 03 0005 61', error: M },
  { name: 'PUBLISH QoS 1 without room for the packet identifier is malformed', v: 4, hex: '32 06 0003 612f62 00', error: M },
  { name: 'a 5.0 PUBLISH with an empty topic and no topic alias is a protocol error', v: 5, hex: '30 04 0000 00 70', error: P },
  // UTF-8 [MQTT-1.5.3-1] [MQTT-1.5.3-2]
  { name: 'a topic with byte 0xff is malformed [MQTT-1.5.3-1]', v: 4, hex: '30 04 0001 ff 78', error: M },
  { name: 'a topic with an overlong encoding is malformed [MQTT-1.5.3-1]', v: 4, hex: '30 05 0002 c0af 78', error: M },
  { name: 'a topic with an overlong 3-byte encoding is malformed', v: 4, hex: '30 06 0003 e08080 78', error: M },
  { name: 'a topic with an encoded surrogate is malformed [MQTT-1.5.3-1]', v: 4, hex: '30 06 0003 eda080 78', error: M },
  { name: 'a topic with a code point above U+10FFFF is malformed', v: 4, hex: '30 07 0004 f4908080 78', error: M },
  { name: 'a topic with a truncated multibyte sequence is malformed', v: 4, hex: '30 04 0001 c3 78', error: M },
  { name: 'a topic with a lone continuation byte is malformed', v: 4, hex: '30 04 0001 80 78', error: M },
  { name: 'a topic with U+0000 is malformed [MQTT-1.5.3-2]', v: 4, hex: '30 04 0001 00 78', error: M },
  { name: 'a client identifier with U+0000 is malformed', v: 4, hex: '10 0d 0004 4d515454 04 02 003c 0001 00', error: M },
  { name: 'a user name with invalid UTF-8 is malformed', v: 4, hex: '10 10 0004 4d515454 04 82 003c 0001 63 0001 fe', error: M },
  { name: 'a user property with a surrogate is malformed', v: 5, hex: '30 0e 0001 74 09 26 0001 6b 0003 edbfbf 70', error: M },
  // CONNECT
  { name: 'CONNECT with protocol name MQTX is an unsupported protocol', v: 4, hex: '10 0e 0004 4d515458 04 02 003c 0002 6331', error: U },
  { name: 'CONNECT MQTT level 3 is an unsupported protocol version', v: 4, hex: '10 0e 0004 4d515454 03 02 003c 0002 6331', error: U },
  { name: 'CONNECT MQIsdp level 4 is an unsupported protocol version', v: 4, hex: '10 10 0006 4d5149736470 04 02 003c 0002 6331', error: U },
  { name: 'CONNECT level 6 is an unsupported protocol version, judged from name and level alone', v: 4, hex: '10 07 0004 4d515454 06', error: U },
  { name: 'CONNECT that ends before the protocol level is malformed', v: 4, hex: '10 06 0004 4d515454', error: M },
  { name: 'CONNECT with the reserved flag set is malformed [MQTT-3.1.2-3]', v: 4, hex: '10 0e 0004 4d515454 04 03 003c 0002 6331', error: M },
  { name: 'CONNECT with the reserved flag set is malformed in 5.0 [MQTT-3.1.2-3]', v: 5, hex: '10 0f 0004 4d515454 05 03 003c 00 0002 6331', error: M },
  { name: 'CONNECT with will QoS but no will flag is malformed [MQTT-3.1.2-13]', v: 4, hex: '10 0e 0004 4d515454 04 0a 003c 0002 6331', error: M },
  { name: 'CONNECT with will retain but no will flag is malformed [MQTT-3.1.2-15]', v: 4, hex: '10 0e 0004 4d515454 04 22 003c 0002 6331', error: M },
  { name: 'CONNECT with will QoS 3 is malformed [MQTT-3.1.2-14]', v: 4, hex: '10 14 0004 4d515454 04 1e 003c 0002 6331 0001 77 0001 78', error: M },
  { name: 'CONNECT with a password but no user name is malformed in 3.1.1 [MQTT-3.1.2-22]', v: 4, hex: '10 11 0004 4d515454 04 42 003c 0002 6331 0001 70', error: M },
  { name: 'CONNECT with a password but no user name is malformed in 3.1', v: 3, hex: '10 13 0006 4d5149736470 03 42 003c 0002 6331 0001 70', error: M },
  { name: 'CONNECT with a byte after its fields is malformed', v: 4, hex: '10 0f 0004 4d515454 04 02 003c 0002 6331 00', error: M },
  { name: 'CONNECT whose user name is missing is malformed', v: 4, hex: '10 0e 0004 4d515454 04 82 003c 0002 6331', error: M },
  { name: 'CONNECT with receiveMaximum 0 is a protocol error', v: 5, hex: '10 LL 0004 4d515454 05 02 003c 03 21 0000 0000', error: P },
  { name: 'CONNECT with maximumPacketSize 0 is a protocol error', v: 5, hex: '10 LL 0004 4d515454 05 02 003c 05 27 00000000 0000', error: P },
  { name: 'CONNECT with requestProblemInformation 2 is a protocol error', v: 5, hex: '10 LL 0004 4d515454 05 02 003c 02 17 02 0000', error: P },
  { name: 'CONNECT with a repeated sessionExpiryInterval is a protocol error', v: 5, hex: '10 LL 0004 4d515454 05 02 003c 0a 11 00000001 11 00000002 0000', error: P },
  { name: 'CONNECT with topicAlias (a PUBLISH property) is malformed', v: 5, hex: '10 LL 0004 4d515454 05 02 003c 03 23 0001 0000', error: M },
  { name: 'a will with sessionExpiryInterval (not a will property) is malformed', v: 5, hex: '10 LL 0004 4d515454 05 06 003c 00 0000 05 11 00000001 0001 77 0000', error: M },
  // CONNACK
  { name: 'CONNACK with reserved acknowledge flags is malformed', v: 4, hex: '20 02 02 00', error: M },
  { name: 'CONNACK with session present and a refusal is a protocol error [MQTT-3.2.2-4]', v: 4, hex: '20 02 01 05', error: P },
  { name: 'a 3.1.1 CONNACK with remaining length 3 is malformed', v: 4, hex: '20 03 00 00 00', error: M },
  { name: 'CONNACK with maximumQoS 2 is a protocol error', v: 5, hex: '20 05 00 00 02 24 02', error: P },
  { name: 'CONNACK with retainAvailable 2 is a protocol error', v: 5, hex: '20 05 00 00 02 25 02', error: P },
  { name: 'CONNACK with receiveMaximum 0 is a protocol error', v: 5, hex: '20 06 00 00 03 21 0000', error: P },
  // acks
  { name: 'a 3.1.1 PUBACK with remaining length 3 is malformed', v: 4, hex: '40 03 0001 00', error: M },
  { name: 'a 3.1.1 PUBREC with remaining length 1 is malformed', v: 4, hex: '50 01 00', error: M },
  { name: 'a 3.1 PUBCOMP with remaining length 0 is malformed', v: 3, hex: '70 00', error: M },
  { name: 'PUBACK with packet identifier 0 is malformed', v: 4, hex: '40 02 0000', error: M },
  // every ack with packet identifier 0 is malformed (0x81), in 3.1.1 and 5.0 [MQTT-2.3.1-1]
  { name: 'PUBREC with packet identifier 0 is malformed', v: 4, hex: '50 02 0000', error: M },
  { name: 'PUBREL with packet identifier 0 is malformed', v: 4, hex: '62 02 0000', error: M },
  { name: 'PUBCOMP with packet identifier 0 is malformed', v: 4, hex: '70 02 0000', error: M },
  { name: 'a 5.0 PUBACK with packet identifier 0 and a reason code is malformed', v: 5, hex: '40 03 0000 10', error: M },
  { name: 'a 5.0 PUBLISH QoS 2 with packet identifier 0 is malformed', v: 5, hex: '34 08 0003 612f62 0000 00', error: M },
  { name: 'a 5.0 SUBSCRIBE with packet identifier 0 is malformed', v: 5, hex: '82 07 0000 00 0001 23 00', error: M },
  { name: 'a 5.0 UNSUBSCRIBE with packet identifier 0 is malformed', v: 5, hex: 'a2 06 0000 00 0001 23', error: M },
  { name: 'a 5.0 PUBACK whose property length runs past the packet is malformed', v: 5, hex: '40 04 0001 00 05', error: M },
  { name: 'a 5.0 PUBACK with a PUBLISH property is malformed', v: 5, hex: '40 07 0001 00 03 23 0001', error: M },
  { name: 'a 5.0 PUBREL with two reason strings is a protocol error', v: 5, hex: '62 0c 0001 00 08 1f 0001 61 1f 0001 62', error: P },
  // SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK
  { name: 'SUBSCRIBE with packet identifier 0 is malformed [MQTT-2.3.1-1]', v: 4, hex: '82 06 0000 0001 23 00', error: M },
  { name: 'SUBSCRIBE without subscriptions is a protocol error [MQTT-3.8.3-3]', v: 4, hex: '82 02 0001', error: P },
  { name: 'a 5.0 SUBSCRIBE without subscriptions is a protocol error [MQTT-3.8.3-3]', v: 5, hex: '82 03 0001 00', error: P },
  { name: 'SUBSCRIBE with reserved option bits is malformed in 3.1.1 [MQTT-3.8.3-4]', v: 4, hex: '82 06 0001 0001 23 04', error: M },
  { name: 'SUBSCRIBE with requested QoS 3 is malformed [MQTT-3.8.3-4]', v: 4, hex: '82 06 0001 0001 23 03', error: M },
  { name: 'a 5.0 SUBSCRIBE with option bits 6-7 set is malformed (5.0 [MQTT-3.8.3-5])', v: 5, hex: '82 07 0001 00 0001 23 40', error: M },
  { name: 'a 5.0 SUBSCRIBE with retain handling 3 is malformed', v: 5, hex: '82 07 0001 00 0001 23 30', error: M },
  { name: 'a 5.0 SUBSCRIBE with requested QoS 3 is malformed', v: 5, hex: '82 07 0001 00 0001 23 03', error: M },
  { name: 'SUBSCRIBE whose last filter has no options byte is malformed', v: 4, hex: '82 05 0001 0001 23', error: M },
  { name: 'a 5.0 SUBSCRIBE with two subscription identifiers is a protocol error', v: 5, hex: '82 0b 0001 04 0b 01 0b 02 0001 23 00', error: P },
  { name: 'a 5.0 SUBSCRIBE with subscription identifier 0 is a protocol error', v: 5, hex: '82 09 0001 02 0b 00 0001 23 00', error: P },
  { name: 'SUBACK with packet identifier 0 is malformed', v: 4, hex: '90 03 0000 00', error: M },
  { name: 'UNSUBSCRIBE with packet identifier 0 is malformed [MQTT-2.3.1-1]', v: 4, hex: 'a2 05 0000 0001 23', error: M },
  { name: 'UNSUBSCRIBE without topic filters is a protocol error [MQTT-3.10.3-2]', v: 4, hex: 'a2 02 0001', error: P },
  { name: 'UNSUBSCRIBE with a truncated topic filter is malformed', v: 4, hex: 'a2 05 0001 0002 23', error: M },
  { name: 'a 3.1.1 UNSUBACK with remaining length 3 is malformed', v: 4, hex: 'b0 03 0001 00', error: M },
  // PING, DISCONNECT, AUTH
  { name: 'PINGREQ with a non-zero remaining length is malformed', v: 4, hex: 'c0 01 00', error: M },
  { name: 'PINGRESP with a non-zero remaining length is malformed', v: 5, hex: 'd0 01 00', error: M },
  { name: 'a 3.1.1 DISCONNECT with a non-zero remaining length is malformed', v: 4, hex: 'e0 01 00', error: M },
  { name: 'a 5.0 DISCONNECT with a PUBLISH property is malformed', v: 5, hex: 'e0 05 00 03 23 0001', error: M },
  { name: 'a 5.0 DISCONNECT with bytes after its properties is malformed', v: 5, hex: 'e0 03 00 00 00', error: M },
  { name: 'a 5.0 AUTH with a CONNACK property is malformed', v: 5, hex: 'f0 05 18 03 13 0001', error: M },
  // properties in PUBLISH
  { name: 'an unknown property identifier is malformed', v: 5, hex: '30 07 0001 74 02 7f 00 70', error: M },
  { name: 'a property value running past the property length is malformed', v: 5, hex: '30 08 0001 74 02 23 00 07 70', error: M },
  { name: 'a property identifier longer than 4 bytes is malformed', v: 5, hex: '30 LL 0001 74 05 ff ff ff ff 7f', error: M },
  { name: 'a subscription identifier longer than 4 bytes is malformed', v: 5, hex: '30 0a 0001 74 06 0b ff ff ff ff 7f', error: M },
  { name: 'sessionExpiryInterval in PUBLISH is malformed', v: 5, hex: '30 LL 0001 74 05 11 00000001', error: M },
  { name: 'a repeated topicAlias is a protocol error', v: 5, hex: '30 0a 0001 74 06 23 0001 23 0002', error: P },
  { name: 'subscription identifier 0 in PUBLISH is a protocol error', v: 5, hex: '30 06 0001 74 02 0b 00', error: P },
  { name: 'payloadFormatIndicator 2 is a protocol error', v: 5, hex: '30 06 0001 74 02 01 02', error: P },
  // first packet
  { name: 'a first packet that is not CONNECT is a protocol error [MQTT-3.1.0-1]', v: 4, hex: 'c0 00', error: P, first: true },
  { name: 'a first packet that is a PUBLISH is refused from its first byte', v: 4, hex: '30', error: P, first: true },
];

/** Hex with `LL` standing for the remaining length of the bytes after it (under 128). */
function bytesOf(h: string): Buffer {
  const i = h.indexOf(' LL ');
  if (i < 0) return hex(h);
  const body = hex(h.slice(i + 4));
  return Buffer.concat([hex(h.slice(0, i)), Buffer.from([body.length]), body]);
}

function feed(bytes: Buffer, v: ProtocolVersion, first: boolean, step: number): void {
  const p = new Parser({ protocolVersion: v, firstPacketConnect: first });
  for (let i = 0; i < bytes.length; i += step) p.parse(bytes.subarray(i, i + step), () => {});
}

describe('bad input', () => {
  for (const row of ROWS) {
    const bytes = bytesOf(row.hex);
    it(`rejects: ${row.name}`, () => {
      assert.throws(() => feed(bytes, row.v, row.first ?? false, bytes.length), (err: unknown) => {
        assert.ok(err instanceof row.error, `expected ${row.error.name}, got ${String(err)}`);
        assert.equal(err.reasonCode, REASON.get(row.error));
        return true;
      });
    });
    it(`rejects one byte at a time: ${row.name}`, () => {
      assert.throws(() => feed(bytes, row.v, row.first ?? false, 1), row.error);
    });
  }
});

describe('errors that carry details', () => {
  it('gives the protocol name and level of an unsupported CONNECT, bridge bit included', () => {
    assert.throws(() => feed(hex('10 07 0004 4d515454 86'), 4, true, 9), (err: unknown) => {
      assert.ok(err instanceof UnsupportedProtocolVersionError);
      assert.equal(err.protocolName, 'MQTT');
      assert.equal(err.protocolVersion, 0x86);
      assert.equal(err.reasonCode, 0x84);
      return true;
    });
  });

  it('rejects a header claiming 100 MB with a 1 MB limit before any body byte arrives', () => {
    const p = new Parser({ maxPacketSize: 1 << 20 });
    // 100 MB = 104857600 = 0x6400000: varint 80 80 80 32
    assert.throws(() => p.parse(hex('30 80 80 80 32'), () => {}), (err: unknown) => {
      assert.ok(err instanceof PacketTooLargeError);
      assert.equal(err.size, 1 + 4 + 104_857_600);
      assert.equal(err.limit, 1 << 20);
      assert.equal(err.reasonCode, 0x95);
      return true;
    });
  });

  it('counts the fixed header in the maximum packet size', () => {
    const ok = new Parser({ maxPacketSize: 4 });
    const got: unknown[] = [];
    ok.parse(hex('40 02 0001'), (pkt) => got.push(pkt));
    assert.equal(got.length, 1);
    const tooSmall = new Parser({ maxPacketSize: 3 });
    assert.throws(() => tooSmall.parse(hex('40 02'), () => {}), PacketTooLargeError);
  });

  it('applies a maximum packet size changed between packets', () => {
    const p = new Parser();
    p.parse(hex('30 07 0003 612f62 6869'), () => {});
    p.maxPacketSize = 8;
    assert.throws(() => p.parse(hex('30 07'), () => {}), PacketTooLargeError);
  });

  it('rethrows the same error on every call once dead', () => {
    const p = new Parser();
    let first: unknown;
    try { p.parse(hex('00 00'), () => {}); } catch (err) { first = err; }
    assert.ok(first instanceof MalformedPacketError);
    assert.throws(() => p.parse(hex('c0 00'), () => assert.fail('no packet after death')), (err: unknown) => err === first);
    assert.throws(() => p.parse(Buffer.alloc(0), () => {}), (err: unknown) => err === first);
  });

  it('delivers the packets before a bad one, then throws', () => {
    const got: string[] = [];
    assert.throws(() => new Parser().parse(hex('c0 00 d0 00 00 00 c0 00'), (pkt) => got.push(pkt.type)), MalformedPacketError);
    assert.deepStrictEqual(got, ['pingreq', 'pingresp']);
  });

  it('lets a CONNECT through as the first packet', () => {
    const got: string[] = [];
    const p = new Parser({ firstPacketConnect: true });
    p.parse(hex('10 0c 0004 4d515454 04 02 0000 0000 c0 00'), (pkt) => got.push(pkt.type));
    assert.deepStrictEqual(got, ['connect', 'pingreq']);
  });

  it('tolerates DUP on a 3.1 PUBLISH with QoS 0', () => {
    const got: unknown[] = [];
    new Parser({ protocolVersion: 3 }).parse(hex('38 05 0003 612f62'), (pkt) => got.push(pkt));
    assert.equal(got.length, 1);
  });

  it('kills the parser when the packet callback throws', () => {
    const p = new Parser();
    const boom = new Error('boom');
    assert.throws(() => p.parse(hex('c0 00 c0 00'), () => { throw boom; }), (err: unknown) => err === boom);
    assert.throws(() => p.parse(hex('c0 00'), () => {}), (err: unknown) => err === boom);
  });
});
