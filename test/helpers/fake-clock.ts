/**
 * A fake Clock for the broker (src/util/clock.ts): time stands still until a test calls `advance(ms)`,
 * which moves it forward and fires every timer that falls due on the way, in order of due time (timers
 * due at the same moment in the order they were set), each with `now()` at its due time. Nothing runs
 * by itself, and nothing keeps the process alive.
 */
import type { Clock, ClockTimer } from '../../src/util/clock.js';

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
  /** the period of an interval; undefined for a timeout */
  every: number | undefined;
}

/** node's rule: a delay below 1 ms or above 2^31 - 1 ms is 1 ms */
const delayOf = (ms: number): number => (ms >= 1 && ms <= 2 ** 31 - 1 ? Math.floor(ms) : 1);

/** No test moves time by more firings than this in one `advance` (a runaway interval is an error). */
const MAX_FIRINGS = 1_000_000;

export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Set<FakeTimer>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }

  /** how far stepWall() has set the wall clock from the fake time */
  private wall = 0;

  /** the fake time: only advance() moves it */
  monotonic(): number {
    return this.t;
  }

  /** the fake time, plus what stepWall() added */
  now(): number {
    return this.t + this.wall;
  }

  /** The wall clock is set forward (or back, negative): now() moves, monotonic() and the timers do not. */
  stepWall(ms: number): void {
    this.wall += ms;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.add(fn, delayOf(ms), undefined);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    const every = delayOf(ms);
    return this.add(fn, every, every);
  }

  clearTimeout(timer: ClockTimer | undefined): void {
    this.timers.delete(timer as FakeTimer);
  }

  clearInterval(timer: ClockTimer | undefined): void {
    this.timers.delete(timer as FakeTimer);
  }

  /** Timers still set (intervals included). */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing the timers that fall due in order. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new Error(`FakeClock.advance(${ms}): time only moves forward`);
    const until = this.t + ms;
    for (let fired = 0; ; fired++) {
      if (fired >= MAX_FIRINGS) throw new Error(`FakeClock.advance(${ms}): more than ${MAX_FIRINGS} timers fired`);
      const next = this.due(until);
      if (next === undefined) break;
      this.t = next.at;
      if (next.every === undefined) {
        this.timers.delete(next);
      } else {
        next.at += next.every;
        next.seq = this.seq++;
      }
      next.fn();
    }
    this.t = until;
  }

  private add(fn: () => void, delay: number, every: number | undefined): FakeTimer {
    const timer: FakeTimer = { at: this.t + delay, seq: this.seq++, fn, every };
    this.timers.add(timer);
    return timer;
  }

  /** The earliest timer due at or before `until`. */
  private due(until: number): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const timer of this.timers) {
      if (timer.at > until) continue;
      if (best === undefined || timer.at < best.at || (timer.at === best.at && timer.seq < best.seq)) best = timer;
    }
    return best;
  }
}

/**
 * Waits (in real time, bounded) until `cond()` holds: for the I/O that follows a step of the fake clock
 * or a client's action (in-memory sockets deliver on later ticks) while fake time stands still.
 */
export async function eventually(what: string, cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Math.round(performance.now()) + timeoutMs;
  while (!cond()) {
    if (Math.round(performance.now()) > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
