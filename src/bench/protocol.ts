/** Messages between the coordinator (main thread) and the engines in the worker threads. */
import type { BenchConfig } from './config.js';
import type { RecorderData } from './histogram.js';

export interface Assignment {
  worker: number;
  pubs: number[];
  subs: number[];
  /** conn mode: connection indexes [from, to) */
  connFrom: number;
  connTo: number;
}

export interface SharedTables {
  /** pubs × slotsPerPub: the last sequence number each receiving subscriber got from each publisher */
  seqs?: SharedArrayBuffer;
  /** one byte per subscriber: 1 while it is subscribed and connected */
  subReady?: SharedArrayBuffer;
  /** --rate: the pacer thread's tick counter and stop flag (two Int32) */
  pace?: SharedArrayBuffer;
}

export interface Counters {
  sent: number;
  sentWin: number;
  received: number;
  receivedWin: number;
  receivedAfter: number;
  /** deliveries whose payload had no valid stamp of this run */
  foreign: number;
  acked: number;
  ackedWin: number;
  gaps: number;
  dups: number;
  rateSkipped: number;
  bytesOut: number;
  bytesIn: number;
  writes: number;
  /** deliveries the publishers of this worker should cause: sent × ready receivers (run only) */
  expected: number;
  connOk: number;
  connFail: number;
  dropped: number;
  errConnect: number;
  errConnack: number;
  errSuback: number;
  errClosed: number;
  errProto: number;
  errTimeout: number;
  errUnknownAck: number;
}

export function zeroCounters(): Counters {
  return {
    sent: 0, sentWin: 0, received: 0, receivedWin: 0, receivedAfter: 0, foreign: 0, acked: 0, ackedWin: 0,
    gaps: 0, dups: 0, rateSkipped: 0, bytesOut: 0, bytesIn: 0, writes: 0, expected: 0, connOk: 0, connFail: 0,
    dropped: 0, errConnect: 0, errConnack: 0, errSuback: 0, errClosed: 0, errProto: 0, errTimeout: 0, errUnknownAck: 0,
  };
}

export function addCounters(into: Counters, c: Counters): void {
  for (const k of Object.keys(into) as (keyof Counters)[]) into[k] += c[k];
}

export interface Timeline {
  /** ns (nowNs clock) */
  t0: number;
  tMeas: number;
  tEnd: number;
  tDrainEnd: number;
}

export type ToWorker =
  | { type: 'init'; cfg: BenchConfig; assignment: Assignment; shared: SharedTables }
  | { type: 'connectSubs' }
  | { type: 'connectPubs' }
  | { type: 'connectIdle'; startNs: number }
  | { type: 'start'; timeline: Timeline }
  | { type: 'disconnectSubs' }
  | { type: 'reconnectSubs' }
  | { type: 'finish' };

export interface Ready { ok: number; failed: number }

export type FromWorker =
  | { type: 'subsDone'; result: Ready }
  | { type: 'pubsDone'; result: Ready }
  | { type: 'idleDone'; result: Ready; lastOkNs: number }
  | { type: 'stats'; counters: Counters }
  /** --offline: the subscribers have disconnected (their sessions stay) */
  | { type: 'subsOff' }
  /** --offline: the subscribers are back; how many found their session present */
  | { type: 'subsBack'; result: Ready; sessionPresent: number }
  /** --offline: every local publisher sent its --limit and all were acknowledged (0: no publisher here) */
  | { type: 'published'; lastAckNs: number }
  /** --offline: every local subscriber received all it should (0: none here) */
  | { type: 'drained'; lastRecvNs: number }
  | { type: 'done'; counters: Counters; latency: RecorderData; ackLatency: RecorderData; connectLatency: RecorderData; lastError: string; openAtEnd: number }
  | { type: 'error'; message: string };
