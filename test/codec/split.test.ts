import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode, Parser, type Packet, type ProtocolVersion } from '../../src/codec/index.js';
import { GOLDEN, hex } from './fixtures.js';

function parseChunks(chunks: Buffer[], version: ProtocolVersion): { packets: Packet[]; sizes: number[] } {
  const p = new Parser({ protocolVersion: version });
  const packets: Packet[] = [];
  const sizes: number[] = [];
  for (const c of chunks) p.parse(c, (pkt) => { packets.push(pkt); sizes.push(p.lastPacketSize); });
  return { packets, sizes };
}

/** A small deterministic PRNG, so that failures can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

for (const version of [3, 4, 5] as const) {
  const rows = GOLDEN.filter((r) => r.version === version);
  const stream = Buffer.concat(rows.map((r) => hex(r.hex)));
  const expected = rows.map((r) => r.packet);
  const sizes = rows.map((r) => hex(r.hex).length);

  describe(`a stream of ${rows.length} MQTT ${version === 3 ? '3.1' : version === 4 ? '3.1.1' : '5.0'} packets (${stream.length} bytes)`, () => {
    it('parses in one chunk, with the size of each packet', () => {
      const got = parseChunks([stream], version);
      assert.deepStrictEqual(got.packets, expected);
      assert.deepStrictEqual(got.sizes, sizes);
    });

    it('yields the same packets when split in two at every byte', () => {
      for (let i = 0; i <= stream.length; i++) {
        const got = parseChunks([stream.subarray(0, i), stream.subarray(i)], version);
        assert.deepStrictEqual(got.packets, expected, `split at ${i}`);
        assert.deepStrictEqual(got.sizes, sizes, `split at ${i}`);
      }
    });

    it('yields the same packets one byte at a time', () => {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1));
      const got = parseChunks(chunks, version);
      assert.deepStrictEqual(got.packets, expected);
      assert.deepStrictEqual(got.sizes, sizes);
    });

    it('yields the same packets in 300 random splits into up to 20 chunks, empty chunks included', () => {
      const rand = rng(version * 7919);
      for (let n = 0; n < 300; n++) {
        const cuts = Array.from({ length: 1 + Math.floor(rand() * 20) }, () => Math.floor(rand() * (stream.length + 1)))
          .sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of [...cuts, stream.length]) { chunks.push(stream.subarray(prev, c)); prev = c; }
        assert.deepStrictEqual(parseChunks(chunks, version).packets, expected, `cuts ${cuts.join(',')}`);
      }
    });

    it('does not depend on the chunk memory after a split packet was completed', () => {
      // chunks are copies that get overwritten after each call, as a careless caller might do
      const got: Packet[] = [];
      const p = new Parser({ protocolVersion: version });
      const scratch = Buffer.alloc(stream.length);
      for (let i = 0; i < stream.length; i += 3) {
        const piece = stream.subarray(i, i + 3);
        piece.copy(scratch);
        p.parse(scratch.subarray(0, piece.length), (pkt) => got.push(structuredClone(pkt)));
        scratch.fill(0xee);
      }
      assert.equal(got.length, expected.length);
    });
  });
}

describe('large packets', () => {
  const payload = Buffer.alloc(200_000, 0x61);
  const big = encode({ type: 'publish', topic: 'big', payload, qos: 1, retain: false, dup: false, packetId: 9 }, 4);

  it('uses a 3-byte remaining length and reports the whole size', () => {
    const got = parseChunks([big], 4);
    assert.equal(got.sizes[0], big.length);
    assert.equal(big.length, 1 + 3 + 2 + 3 + 2 + payload.length);
    assert.deepStrictEqual((got.packets[0] as { payload: Buffer }).payload, payload);
  });

  it('reassembles a packet that arrives in 64 KB chunks', () => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < big.length; i += 65_536) chunks.push(big.subarray(i, i + 65_536));
    const got = parseChunks(chunks, 4);
    assert.equal(got.packets.length, 1);
    assert.deepStrictEqual((got.packets[0] as { payload: Buffer }).payload, payload);
  });

  it('gives complete packets zero-copy views of the chunk', () => {
    const got = parseChunks([big], 4);
    const out = (got.packets[0] as { payload: Buffer }).payload;
    assert.equal(out.buffer, big.buffer);
  });

  it('copies a split packet once into a buffer of exactly its body size', () => {
    const got = parseChunks([big.subarray(0, 10), big.subarray(10)], 4);
    const out = (got.packets[0] as { payload: Buffer }).payload;
    assert.notEqual(out.buffer, big.buffer);
    assert.equal(out.buffer.byteLength, big.length - 4); // body only: fixed header is 1 + 3 bytes
  });
});
