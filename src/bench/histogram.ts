/**
 * Latency recording for the hot path, percentiles from an HDR histogram.
 *
 * `hdr-histogram-js` costs ~200 ns per recordValue here, too much at a million messages a second,
 * so values first go into a log-linear counter array (256 sub-buckets per power of two: at most
 * 0.4% error, a few ns per value). At the end the non-empty buckets go into an HDR histogram
 * (3 significant digits) with recordValueWithCount, and the percentiles come from there.
 * Recorders of several workers merge by adding their counts.
 */
import hdr from 'hdr-histogram-js';

const SUB_BITS = 8;
const SUB = 1 << SUB_BITS;
const OCTAVES = 64 - SUB_BITS + 1;
const SIZE = SUB + OCTAVES * SUB;
const TWO32 = 4294967296;
const POW2 = Array.from({ length: 64 }, (_, i) => 2 ** i);

export interface LatencySummary {
  n: number;
  /** microseconds */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  min: number;
  mean: number;
}

/** The recorder's state as plain data (for postMessage between threads). */
export interface RecorderData {
  counts: Float64Array;
  n: number;
  sum: number;
  max: number;
  min: number;
}

export class LatencyRecorder {
  counts = new Float64Array(SIZE);
  n = 0;
  sum = 0;
  max = 0;
  min = Infinity;

  /** Records one value in nanoseconds (an integer >= 0; negative values count as 0). */
  record(ns: number): void {
    let v = ns > 0 ? ns : 0;
    let i: number;
    if (v < SUB) {
      i = v | 0;
    } else {
      const e = v < TWO32 ? 31 - Math.clz32(v) : 63 - Math.clz32(Math.floor(v / TWO32));
      const shift = e - SUB_BITS;
      i = SUB + shift * SUB + (Math.floor(v / POW2[shift]!) - SUB);
      if (i >= SIZE) {
        i = SIZE - 1;
        v = Math.min(v, Number.MAX_SAFE_INTEGER);
      }
    }
    this.counts[i]!++;
    this.n++;
    this.sum += v;
    if (v > this.max) this.max = v;
    if (v < this.min) this.min = v;
  }

  data(): RecorderData {
    return { counts: this.counts, n: this.n, sum: this.sum, max: this.max, min: this.min };
  }

  add(d: RecorderData): void {
    const c = this.counts;
    for (let i = 0; i < SIZE; i++) c[i]! += d.counts[i]!;
    this.n += d.n;
    this.sum += d.sum;
    if (d.max > this.max) this.max = d.max;
    if (d.min < this.min) this.min = d.min;
  }

  /** An HDR histogram (values in ns) holding the recorded values at bucket midpoints. */
  toHdr(): hdr.Histogram {
    const h = hdr.build({
      bitBucketSize: 64, autoResize: true, lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3,
    });
    const c = this.counts;
    for (let i = 0; i < SIZE; i++) {
      const k = c[i]!;
      if (k === 0) continue;
      h.recordValueWithCount(Math.min(Math.max(midpoint(i), this.min), this.max), k);
    }
    return h;
  }

  summary(): LatencySummary {
    if (this.n === 0) return { n: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, min: 0, mean: 0 };
    const h = this.toHdr();
    const us = (ns: number): number => Math.round(ns / 100) / 10;
    const s: LatencySummary = {
      n: this.n,
      p50: us(h.getValueAtPercentile(50)),
      p90: us(h.getValueAtPercentile(90)),
      p99: us(h.getValueAtPercentile(99)),
      p999: us(h.getValueAtPercentile(99.9)),
      max: us(this.max),
      min: us(this.min),
      mean: us(this.sum / this.n),
    };
    h.destroy();
    return s;
  }
}

function midpoint(i: number): number {
  if (i < SUB) return i;
  const shift = Math.floor((i - SUB) / SUB);
  const m = (i - SUB) % SUB;
  return (SUB + m) * POW2[shift]! + Math.floor(POW2[shift]! / 2);
}
