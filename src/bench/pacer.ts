/**
 * The pacing thread for --rate: node's timers tick at 1 ms at best, which would send a 5k msgs/s
 * publisher's messages in bursts of five. This thread sleeps on a futex (Atomics.wait) for the
 * tick interval (down to 0.1 ms), bumps a shared counter and wakes the engines, which wait for it
 * with Atomics.waitAsync without blocking their event loops. [0] = ticks, [1] = stop flag.
 */
import { workerData } from 'node:worker_threads';

const { sab, intervalMs } = workerData as { sab: SharedArrayBuffer; intervalMs: number };
const a = new Int32Array(sab);
while (Atomics.load(a, 1) === 0) {
  Atomics.wait(a, 1, 0, intervalMs);
  Atomics.add(a, 0, 1);
  Atomics.notify(a, 0);
}
