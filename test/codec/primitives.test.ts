import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CodecError, connackReturnCodeText, decodePacket, encode, isValidMqttString, isValidUtf8String, MalformedPacketError,
  PacketTypeId, PacketTypeName, PROPERTIES, PROPERTY_BY_ID, ReasonCode, reasonCodeText, type Packet, type ProtocolVersion,
} from '../../src/codec/index.js';
import { Reader } from '../../src/codec/reader.js';
import { varintSize, Writer } from '../../src/codec/writer.js';
import { hex } from './fixtures.js';

describe('the UTF-8 validator', () => {
  const valid: Array<[string, string]> = [
    ['the empty string', ''], ['ASCII', '612f62'], ['a 2-byte character', 'c3a9'], ['the last 2-byte character', 'dfbf'],
    ['a 3-byte character', 'e282ac'], ['U+D7FF, just below the surrogates', 'ed9fbf'], ['U+E000, just above them', 'ee8080'],
    ['U+FFFF', 'efbfbf'], ['a 4-byte character', 'f09f9880'], ['U+10FFFF', 'f48fbfbf'],
  ];
  const invalid: Array<[string, string]> = [
    ['U+0000 [MQTT-1.5.3-2]', '00'], ['U+0000 after text', '6100'], ['a lone continuation byte', '80'],
    ['an overlong 2-byte form (C0)', 'c0af'], ['an overlong 2-byte form (C1)', 'c1bf'], ['an overlong 3-byte form', 'e09fbf'],
    ['an overlong 4-byte form', 'f08fbfbf'], ['the surrogate U+D800 [MQTT-1.5.3-1]', 'eda080'], ['the surrogate U+DFFF', 'edbfbf'],
    ['a code point above U+10FFFF', 'f4908080'], ['byte F5', 'f5808080'], ['byte FF', 'ff'], ['a truncated 2-byte form', 'c3'],
    ['a truncated 3-byte form', 'e282'], ['a truncated 4-byte form', 'f09f98'], ['a 2-byte form with a bad continuation', 'c341'],
    ['a 3-byte form with a bad last byte', 'e282c0'], ['an overlong U+0000 (C0 80)', 'c080'],
  ];
  for (const [name, h] of valid) it(`accepts ${name}`, () => assert.equal(isValidUtf8String(hex(h)), true));
  for (const [name, h] of invalid) it(`rejects ${name}`, () => assert.equal(isValidUtf8String(hex(h)), false));

  it('agrees with a strict TextDecoder on every 1- and 2-byte input and many longer ones', () => {
    const td = new TextDecoder('utf-8', { fatal: true });
    const strict = (b: Uint8Array): boolean => {
      try { return !td.decode(b).includes('\0'); } catch { return false; }
    };
    for (let a = 0; a < 256; a++) {
      assert.equal(isValidUtf8String(Uint8Array.of(a)), strict(Uint8Array.of(a)), `${a}`);
      for (let c = 0; c < 256; c++) {
        const b = Uint8Array.of(a, c);
        assert.equal(isValidUtf8String(b), strict(b), Buffer.from(b).toString('hex'));
      }
    }
    const leads = [0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5];
    for (const l of leads) for (let x = 0x70; x < 0xd0; x++) for (const y of [0x00, 0x41, 0x80, 0x9f, 0xa0, 0xbf, 0xc0]) {
      for (const z of [0x80, 0xbf, 0x41]) {
        const b = Uint8Array.of(l, x, y, z);
        assert.equal(isValidUtf8String(b), strict(b), Buffer.from(b).toString('hex'));
      }
    }
  });

  it('checks a range of a buffer', () => {
    assert.equal(isValidUtf8String(hex('ff 6162 ff'), 1, 3), true);
  });

  it('tells which JavaScript strings can be sent', () => {
    assert.equal(isValidMqttString('a/b/é/😀'), true);
    assert.equal(isValidMqttString('a\0b'), false);
    assert.equal(isValidMqttString('\ud83d'), false);
    assert.equal(isValidMqttString('x\ude00'), false);
  });
});

describe('primitives', () => {
  it('encodes variable byte integers at their boundaries (spec 1.5.5)', () => {
    const cases: Array<[number, string]> = [[0, '00'], [127, '7f'], [128, '8001'], [16_383, 'ff7f'], [16_384, '808001'],
      [2_097_151, 'ffff7f'], [2_097_152, '80808001'], [268_435_455, 'ffffff7f']];
    for (const [n, h] of cases) {
      const w = new Writer(varintSize(n));
      w.varint(n);
      assert.equal(w.finish().toString('hex'), h, `${n}`);
      assert.equal(new Reader(hex(h)).varint(), n);
    }
    assert.throws(() => varintSize(268_435_456), CodecError);
    assert.throws(() => varintSize(-1), CodecError);
  });

  it('refuses to read past the end of the body', () => {
    assert.throws(() => new Reader(hex('0005 6162')).utf8(), MalformedPacketError);
    assert.throws(() => new Reader(hex('00')).u16(), MalformedPacketError);
    assert.throws(() => new Reader(hex('000000')).u32(), MalformedPacketError);
    assert.throws(() => new Reader(hex('8080')).varint(), MalformedPacketError);
  });

  it('decodes one whole packet with decodePacket', () => {
    assert.deepStrictEqual(decodePacket(hex('40 02 0001'), 4), { type: 'puback', packetId: 1 });
    assert.throws(() => decodePacket(hex('40 02 0001 00'), 4), MalformedPacketError);
    assert.throws(() => decodePacket(hex('40 02 00'), 4), MalformedPacketError);
  });
});

describe('constants', () => {
  it('numbers the packet types as the spec does', () => {
    assert.equal(PacketTypeId.connect, 1);
    assert.equal(PacketTypeId.auth, 15);
    for (const [name, id] of Object.entries(PacketTypeId)) assert.equal(PacketTypeName[id], name);
  });

  it('has reason codes with their spec values', () => {
    assert.equal(ReasonCode.Success, 0);
    assert.equal(ReasonCode.NotAuthorized, 0x87);
    assert.equal(ReasonCode.ServerShuttingDown, 0x8b);
    assert.equal(ReasonCode.KeepAliveTimeout, 0x8d);
    assert.equal(ReasonCode.SessionTakenOver, 0x8e);
    assert.equal(ReasonCode.PacketTooLarge, 0x95);
    assert.equal(ReasonCode.WildcardSubscriptionsNotSupported, 0xa2);
    assert.equal(Object.keys(ReasonCode).length, 45);
  });

  it('has every 5.0 property once, indexed by identifier', () => {
    assert.equal(PROPERTIES.length, 27);
    for (const def of PROPERTIES) assert.equal(PROPERTY_BY_ID[def.id], def);
    assert.equal(new Set(PROPERTIES.map((d) => d.name)).size, 27);
  });

  it('gives the CONNACK texts mosquitto_sub prints for 3.x', () => {
    assert.equal(connackReturnCodeText(1, 4), 'Connection Refused: unacceptable protocol version.');
    assert.equal(connackReturnCodeText(2, 4), 'Connection Refused: identifier rejected.');
    assert.equal(connackReturnCodeText(3, 3), 'Connection Refused: broker unavailable.');
    assert.equal(connackReturnCodeText(4, 4), 'Connection Refused: bad user name or password.');
    assert.equal(connackReturnCodeText(5, 4), 'Connection Refused: not authorised.');
    assert.equal(connackReturnCodeText(9, 4), 'Connection Refused: unknown reason.');
  });

  it('gives mosquitto reason strings for 5.0', () => {
    assert.equal(connackReturnCodeText(0x87, 5), 'Not authorized');
    assert.equal(connackReturnCodeText(0x86, 5), 'Bad User Name or Password');
    assert.equal(connackReturnCodeText(0x84, 5), 'Unsupported Protocol Version');
    assert.equal(reasonCodeText(0x8e), 'Session taken over');
    assert.equal(reasonCodeText(0x03), 'Unknown reason');
    for (const code of new Set(Object.values(ReasonCode))) assert.notEqual(reasonCodeText(code), 'Unknown reason');
  });
});

describe('encoder refusals', () => {
  const pub = (over: Record<string, unknown>): Packet =>
    ({ type: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 1, retain: false, dup: false, packetId: 1, ...over }) as Packet;
  const rows: Array<[string, Packet, ProtocolVersion]> = [
    ['a QoS 1 PUBLISH without a packet identifier', pub({ packetId: undefined }), 4],
    ['packet identifier 0 [MQTT-2.3.1-1]', pub({ packetId: 0 }), 4],
    ['packet identifier 65536', pub({ packetId: 65_536 }), 4],
    ['QoS 3', pub({ qos: 3 }), 4],
    ['DUP on QoS 0 [MQTT-3.3.1-2]', pub({ qos: 0, dup: true }), 4],
    ['a topic longer than 65535 bytes', pub({ topic: 'a'.repeat(65_536) }), 4],
    ['a topic with U+0000', pub({ topic: 'a\0' }), 4],
    ['a topic with a lone surrogate', pub({ topic: '\ud800' }), 4],
    ['a payload that is not a Buffer', pub({ payload: 'text' }), 4],
    ['an empty 5.0 topic without a topic alias', pub({ topic: '' }), 5],
    ['a property not allowed in PUBLISH', pub({ properties: { sessionExpiryInterval: 1 } }), 5],
    ['two subscription identifiers in SUBSCRIBE', { type: 'subscribe', packetId: 1, subscriptions: [{ topic: 't', qos: 0 }],
      properties: { subscriptionIdentifiers: [1, 2] } }, 5],
    ['subscription identifier 0', pub({ properties: { subscriptionIdentifiers: [0] } }), 5],
    ['payloadFormatIndicator 2', pub({ properties: { payloadFormatIndicator: 2 } }), 5],
    ['receiveMaximum 0', { type: 'connack', sessionPresent: false, reasonCode: 0, properties: { receiveMaximum: 0 } }, 5],
    ['messageExpiryInterval 2^32', pub({ properties: { messageExpiryInterval: 2 ** 32 } }), 5],
    ['a user property that is not a pair', pub({ properties: { userProperties: [['k']] } }), 5],
    ['correlation data longer than 65535 bytes', pub({ properties: { correlationData: Buffer.alloc(65_536) } }), 5],
    ['a SUBSCRIBE without subscriptions [MQTT-3.8.3-3]', { type: 'subscribe', packetId: 1, subscriptions: [] }, 4],
    ['retain handling 3', { type: 'subscribe', packetId: 1, subscriptions: [{ topic: 't', qos: 0, retainHandling: 3 as 0 }] }, 5],
    ['an UNSUBSCRIBE without topics [MQTT-3.10.3-2]', { type: 'unsubscribe', packetId: 1, topics: [] }, 4],
    ['a 3.1.1 password without a user name [MQTT-3.1.2-22]', { type: 'connect', protocolName: 'MQTT', protocolVersion: 4,
      clean: true, keepalive: 0, clientId: '', password: Buffer.from('p') }, 4],
    ['keep alive 65536', { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 65_536, clientId: '' }, 4],
    ['will QoS 3', { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: '',
      will: { topic: 't', payload: Buffer.alloc(0), qos: 3 as 0, retain: false } }, 4],
    ['session present in a refusing CONNACK', { type: 'connack', sessionPresent: true, reasonCode: 5 }, 4],
    ['reason code 256', { type: 'puback', packetId: 1, reasonCode: 256 }, 5],
    ['AUTH in 3.1.1', { type: 'auth', reasonCode: 0 }, 4],
    ['an unknown protocol version', { type: 'pingreq' }, 6 as 5],
  ];
  for (const [name, packet, v] of rows) {
    it(`refuses ${name} with CodecError`, () => assert.throws(() => encode(packet, v), CodecError));
  }

  it('sizes multibyte strings exactly', () => {
    const b = encode(pub({ topic: 'é/😀', properties: { userProperties: [['ü', '€']] } }), 5);
    assert.equal(b[1], b.length - 2); // remaining length covers the rest exactly
    assert.equal(decodePacket(b, 5).type, 'publish');
  });
});
