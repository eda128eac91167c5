import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CodecError, encode, MqttError, Parser, UnsupportedProtocolVersionError, type Packet, type ProtocolVersion,
} from '../../src/codec/index.js';
import { anyPacket, packetArbs } from './arbitraries.js';
import { GOLDEN, hex } from './fixtures.js';

/** Deterministic PRNG (mulberry32) so that a failure can be replayed from its seed. */
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

const VERSIONS: ProtocolVersion[] = [3, 4, 5];

/**
 * Feeds bytes in random splits to a parser with random options. Returns the error thrown, if any,
 * after checking that it is an MqttError and that the dead parser rethrows it.
 */
function feedRandomly(bytes: Buffer, rand: () => number, label: string): void {
  const p = new Parser({
    protocolVersion: VERSIONS[Math.floor(rand() * 3)]!,
    firstPacketConnect: rand() < 0.2,
    maxPacketSize: rand() < 0.2 ? 1 + Math.floor(rand() * 600) : undefined,
  });
  let pos = 0;
  try {
    while (pos < bytes.length) {
      const n = 1 + Math.floor(rand() * (rand() < 0.5 ? 8 : bytes.length));
      p.parse(bytes.subarray(pos, pos + n), () => {});
      pos += n;
    }
  } catch (err) {
    if (!(err instanceof MqttError)) {
      assert.fail(`${label}: ${String(err)} from ${bytes.toString('hex')}\n${(err as Error).stack ?? ''}`);
    }
    assert.throws(() => p.parse(Buffer.from([0xc0, 0x00]), () => {}), (again: unknown) => again === err);
  }
}

function randomBytes(rand: () => number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

function mutate(src: Buffer, rand: () => number): Buffer {
  let b = Buffer.from(src);
  const rounds = 1 + Math.floor(rand() * 3);
  for (let r = 0; r < rounds; r++) {
    const at = Math.floor(rand() * (b.length + 1));
    switch (Math.floor(rand() * 6)) {
      case 0: // flip a bit
        if (b.length > 0) b[at % b.length]! ^= 1 << Math.floor(rand() * 8);
        break;
      case 1: // truncate
        b = b.subarray(0, at);
        break;
      case 2: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), randomBytes(rand, 1 + Math.floor(rand() * 4)), b.subarray(at)]);
        break;
      case 3: // delete bytes
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + Math.floor(rand() * 3))]);
        break;
      case 4: // set a byte to an edge value
        if (b.length > 0) b[at % b.length] = [0x00, 0x7f, 0x80, 0xff, 0x01, 0xc0][Math.floor(rand() * 6)]!;
        break;
      default: // duplicate a slice
        b = Buffer.concat([b, b.subarray(at, at + 1 + Math.floor(rand() * 16))]);
    }
  }
  return b;
}

describe('fuzzing the parser', () => {
  it('throws only MQTT errors for 20,000 random buffers fed in random splits', () => {
    const rand = rng(1);
    for (let i = 0; i < 20_000; i++) {
      const bytes = randomBytes(rand, Math.floor(rand() * 512));
      // most of the time start with a plausible first byte and a short remaining length
      if (bytes.length > 1 && rand() < 0.8) {
        bytes[0] = (1 + Math.floor(rand() * 15)) << 4 | ([0, 2, 0, 0][Math.floor(rand() * 4)]!);
        bytes[1] = Math.floor(rand() * Math.min(128, bytes.length));
      }
      feedRandomly(bytes, rand, `random #${i}`);
    }
  });

  it('throws only MQTT errors for 20,000 mutations of valid encodings fed in random splits', () => {
    const valid: Buffer[] = GOLDEN.map((r) => hex(r.hex));
    for (const v of VERSIONS) {
      const arbs: fc.Arbitrary<Packet>[] = [...Object.values(packetArbs(v)), anyPacket(v)];
      for (const arb of arbs) for (const p of fc.sample(arb, { numRuns: 40, seed: 42 + v })) valid.push(encode(p, v));
    }
    const rand = rng(2);
    for (let i = 0; i < 20_000; i++) {
      let src = valid[Math.floor(rand() * valid.length)]!;
      if (rand() < 0.3) src = Buffer.concat([src, valid[Math.floor(rand() * valid.length)]!]);
      feedRandomly(mutate(src, rand), rand, `mutation #${i}`);
    }
  });
});

describe('fuzzing the encoder', () => {
  const WEIRD_NUMBERS = [-1, 0, 0.5, 3, 255, 256, 65_535, 65_536, 2 ** 32, 268_435_456, NaN, Infinity];
  const WEIRD_STRINGS = ['', '\0', 'a\0b', '\ud800', 'x\udfff', 'é'.repeat(40_000), 'a'.repeat(65_536)];

  it('answers out-of-range field values with CodecError or a packet that parses back', () => {
    const rand = rng(3);
    for (const v of VERSIONS) {
      for (const arb of Object.values(packetArbs(v))) {
        for (const p of fc.sample(arb, { numRuns: 60, seed: 7 * v })) {
          const copy = structuredClone(p) as unknown as Record<string, unknown>;
          const fields = Object.keys(copy).filter((k) => k !== 'type');
          if (fields.length === 0) continue;
          const key = fields[Math.floor(rand() * fields.length)]!;
          const old = copy[key];
          if (typeof old === 'number') copy[key] = WEIRD_NUMBERS[Math.floor(rand() * WEIRD_NUMBERS.length)];
          else if (typeof old === 'string') copy[key] = WEIRD_STRINGS[Math.floor(rand() * WEIRD_STRINGS.length)];
          else if (Array.isArray(old)) copy[key] = [];
          else continue;
          let bytes: Buffer;
          try {
            bytes = encode(copy as unknown as Packet, v);
          } catch (err) {
            assert.ok(err instanceof CodecError, `${key}=${String(copy[key]).slice(0, 20)}: ${String(err)}`);
            continue;
          }
          const p2 = new Parser({ protocolVersion: v });
          // whatever encodes, decodes; except that CONNECT writes any protocol name it is given
          try {
            p2.parse(bytes, () => {});
          } catch (err) {
            assert.ok((key === 'protocolName' || key === 'protocolVersion') && err instanceof UnsupportedProtocolVersionError,
              `${key}: ${String(err)}`);
          }
        }
      }
    }
  });
});
