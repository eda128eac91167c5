import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Parser, PacketTooLargeError } from '../../src/codec/index.js';

test('a header claiming a 100 MB PUBLISH costs memory only for the bytes that really arrive', () => {
  const p = new Parser();
  // PUBLISH, remaining length 100,000,000 (varint 0x80 0xc2 0xd7 0x2f), then 4 KiB of it
  const before = process.memoryUsage().arrayBuffers;
  const parsers: Parser[] = [];
  for (let i = 0; i < 20; i++) {
    const q = new Parser();
    q.parse(Buffer.from([0x30, 0x80, 0xc2, 0xd7, 0x2f, 0x00, 0x01, 0x61]), () => assert.fail('no packet yet'));
    q.parse(Buffer.alloc(4096), () => assert.fail('no packet yet'));
    parsers.push(q);
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 20 * 1024 * 1024, `20 claimed 100 MB packets took ${grown} bytes`);
  assert.equal(parsers.length, 20);
  void p;
});

test('a packet split across many chunks still arrives whole after the body buffer grows', () => {
  const p = new Parser();
  const payload = Buffer.alloc(300_000, 7);
  const size = 2 + 1 + payload.length; // topic length + 'a' + payload
  const header = [0x30, size & 0x7f | 0x80, (size >> 7) & 0x7f | 0x80, size >> 14];
  const bytes = Buffer.concat([Buffer.from(header), Buffer.from([0x00, 0x01, 0x61]), payload]);
  const got: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 1000) {
    p.parse(bytes.subarray(i, i + 1000), (pk) => { if (pk.type === 'publish') got.push(pk.payload); });
  }
  assert.equal(got.length, 1);
  assert.ok(got[0]!.equals(payload));
});

test('a first-packet CONNECT larger than 1 MiB is refused from its header, whatever max_packet_size says', () => {
  const p = new Parser({ firstPacketConnect: true });
  // CONNECT claiming 2 MiB
  assert.throws(() => p.parse(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x01]), () => {}), PacketTooLargeError);
});
