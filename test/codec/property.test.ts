import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encode, Parser, type Packet, type ProtocolVersion } from '../../src/codec/index.js';
import { anyPacket, packetArbs } from './arbitraries.js';

function parseChunks(chunks: Buffer[], version: ProtocolVersion): Packet[] {
  const p = new Parser({ protocolVersion: version });
  const out: Packet[] = [];
  for (const c of chunks) p.parse(c, (pkt) => out.push(pkt));
  return out;
}

const NAMES = { 3: '3.1', 4: '3.1.1', 5: '5.0' } as const;

for (const v of [3, 4, 5] as const) {
  describe(`MQTT ${NAMES[v]} round trips`, () => {
    for (const [name, arb] of Object.entries(packetArbs(v))) {
      it(`parses back every generated ${name} packet it encodes, byte for byte`, () => {
        fc.assert(fc.property(arb, (packet) => {
          const bytes = encode(packet, v);
          const back = parseChunks([bytes], v);
          assert.deepStrictEqual(back, [packet]);
          assert.deepStrictEqual(encode(back[0]!, v), bytes);
        }), { numRuns: 300 });
      });
    }

    it('parses back a generated stream of packets cut at random points', () => {
      fc.assert(fc.property(fc.array(anyPacket(v), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 6 }),
        (packets, cutSeeds) => {
          const stream = Buffer.concat(packets.map((p) => encode(p, v)));
          const cuts = cutSeeds.map((n) => n % (stream.length + 1)).sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const c of [...cuts, stream.length]) { chunks.push(stream.subarray(prev, c)); prev = c; }
          assert.deepStrictEqual(parseChunks(chunks, v), packets);
        }), { numRuns: 300 });
    });
  });
}
