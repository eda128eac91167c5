import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode, PROPERTIES, type Properties } from '../../src/codec/index.js';
import { GOLDEN, hex, parseAll } from './fixtures.js';

describe('the golden table', () => {
  for (const row of GOLDEN) {
    const bytes = hex(row.hex);
    it(`parses ${row.name}`, () => {
      assert.deepStrictEqual(parseAll(bytes, row.version), [row.packet]);
    });
    it(`encodes ${row.name}`, () => {
      assert.equal(encode(row.packet, row.version).toString('hex'), bytes.toString('hex'));
    });
    it(`round-trips ${row.name}`, () => {
      const again = parseAll(encode(row.packet, row.version), row.version);
      assert.deepStrictEqual(again, [row.packet]);
      assert.equal(encode(again[0]!, row.version).toString('hex'), bytes.toString('hex'));
    });
  }

  it('covers every packet type in 3.1, 3.1.1 and 5.0', () => {
    const all = ['connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback',
      'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect'];
    for (const v of [3, 4, 5] as const) {
      const types = new Set(GOLDEN.filter((r) => r.version === v).map((r) => r.packet.type));
      for (const t of v === 5 ? [...all, 'auth'] : all) assert.ok(types.has(t as never), `${t} in version ${v}`);
    }
  });

  it('covers every 5.0 property', () => {
    const seen = new Set<string>();
    const add = (p?: Properties): void => { for (const k of Object.keys(p ?? {})) seen.add(k); };
    for (const row of GOLDEN) {
      const p = row.packet as { properties?: Properties; will?: { properties?: Properties } };
      add(p.properties);
      add(p.will?.properties);
    }
    for (const def of PROPERTIES) assert.ok(seen.has(def.name), def.name);
  });
});

describe('decoding forms that encode differently', () => {
  it('reads a 5.0 CONNACK without properties (a 3.1.1 server refusing level 5)', () => {
    assert.deepStrictEqual(parseAll(hex('20 02 00 01'), 5), [{ type: 'connack', sessionPresent: false, reasonCode: 1 }]);
  });
  it('reads a 5.0 AUTH with a reason code and no property length', () => {
    assert.deepStrictEqual(parseAll(hex('f0 01 18'), 5), [{ type: 'auth', reasonCode: 0x18 }]);
  });
  it('reads a 5.0 ack whose property length is 0', () => {
    assert.deepStrictEqual(parseAll(hex('40 04 0001 00 00'), 5), [{ type: 'puback', packetId: 1, reasonCode: 0 }]);
  });
  it('reads a 3.1 SUBSCRIBE with the DUP bit set on a retry', () => {
    assert.deepStrictEqual(parseAll(hex('8a 06 0001 0001 23 00'), 3),
      [{ type: 'subscribe', packetId: 1, subscriptions: [{ topic: '#', qos: 0 }] }]);
  });
  it('reads a 3.1 CONNACK ignoring its reserved first byte', () => {
    assert.deepStrictEqual(parseAll(hex('20 02 ff 00'), 3), [{ type: 'connack', sessionPresent: false, reasonCode: 0 }]);
  });
  it('accepts a remaining length that is not minimally encoded', () => {
    assert.deepStrictEqual(parseAll(hex('c0 80 00'), 4), [{ type: 'pingreq' }]);
  });
  it('sets the parser version from a decoded CONNECT', () => {
    const bytes = hex('10 0f 0004 4d515454 05 02 003c 00 0002 6331 e0 00');
    const packets = parseAll(bytes, 4);
    assert.deepStrictEqual(packets[1], { type: 'disconnect', reasonCode: 0 });
  });
});

describe('encoding forms that decode differently', () => {
  it('writes 3.x acks in 2 bytes, leaving out a reason code', () => {
    assert.equal(encode({ type: 'puback', packetId: 5, reasonCode: 0x80 }, 4).toString('hex'), '40020005');
  });
  it('writes a 3.x DISCONNECT without a reason code', () => {
    assert.equal(encode({ type: 'disconnect', reasonCode: 0x8b }, 4).toString('hex'), 'e000');
  });
  it('writes 5.0 failure codes in a 3.1.1 SUBACK as 0x80', () => {
    assert.equal(encode({ type: 'suback', packetId: 1, reasonCodes: [0, 0x87] }, 4).toString('hex'), '9004000100' + '80');
  });
  it('leaves out 5.0 properties when encoding for 3.1.1', () => {
    const bytes = encode({ type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false,
      properties: { messageExpiryInterval: 5 } }, 4);
    assert.equal(bytes.toString('hex'), '3004000174' + '78');
  });
  it('treats empty 5.0 properties like none', () => {
    assert.equal(encode({ type: 'puback', packetId: 1, reasonCode: 0, properties: {} }, 5).toString('hex'), '40020001');
  });
  it('writes a CONNECT by its own protocol level, whatever version is passed', () => {
    const c = { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: 'c1' } as const;
    assert.equal(encode(c, 4).toString('hex'), encode(c, 5).toString('hex'));
  });
});
