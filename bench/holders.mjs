#!/usr/bin/env node
// How the Recorder's bookkeeping of held output grows with the connections that hold output in one
// turn (BENCHMARKS.md "Output held by many connections in one turn"): N connections
// each get an acknowledgement held in the same event-loop turn (a fleet that publishes QoS 1 at once,
// e.g. right after a restart), then the turn's commit (a store that answers at once) releases them.
// Linear is the goal: the time per holder should not grow with N.
//
//   npm run build && node bench/holders.mjs
//
// Environment: COUNTS (comma list, default 1000,10000,40000), REPEAT (default 3; the median is shown).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median } from './common.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const { Recorder } = await import(pathToFileURL(join(ROOT, 'dist/src/broker/recorder.js')).href);
const store = { kind: 'memory', commit: () => Promise.resolve() };
const log = { error() {}, info() {}, warning() {}, debug() {} };
const counts = (process.env.COUNTS ?? '1000,10000,40000').split(',').map(Number);
if (counts.some((n) => !Number.isInteger(n) || n < 1)) {
  console.error(`COUNTS=${process.env.COUNTS}: expected a comma list of positive integers`);
  process.exit(2);
}
const repeat = Number(process.env.REPEAT ?? 3);

console.log('| holders in one turn | hold ms | commit + release ms | µs per holder |');
console.log('|---:|---:|---:|---:|');
for (const n of counts) {
  const hold = [];
  const commit = [];
  for (let k = 0; k < repeat; k++) {
    const rec = new Recorder(store, log, 0);
    const holders = Array.from({ length: n }, () => ({ held: undefined, release() { this.held = undefined; } }));
    const ack = Buffer.alloc(4);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      rec.add({ op: 'qos2', clientId: 'c', packetId: 1 });
      rec.hold(holders[i]);
      holders[i].held.push(ack);
    }
    const t1 = performance.now();
    await rec.commit();
    const t2 = performance.now();
    if (holders.some((h) => h.held !== undefined)) throw new Error('a holder was not released');
    hold.push(t1 - t0);
    commit.push(t2 - t1);
  }
  const h = median(hold);
  const c = median(commit);
  console.log(`| ${n} | ${h.toFixed(1)} | ${c.toFixed(1)} | ${((h + c) * 1000 / n).toFixed(2)} |`);
}
