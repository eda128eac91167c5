import { Duplex } from 'node:stream';

/** Node 20 has no stream.duplexPair: two Duplex ends where what one writes the other reads (in-process connections). */
export function duplexPair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  const make = (other: () => Duplex): Duplex => new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) { other().push(chunk); cb(); },
    final(cb) { other().push(null); cb(); },
    destroy(err, cb) { const o = other(); if (!o.destroyed) o.push(null); cb(err); },
  });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}
