/**
 * The broker's time: `now()` and timers. The default is the real one; tests give the broker a fake
 * clock (test/helpers/fake-clock.ts) so that keepalive, expiry and will delays run without sleeping.
 */

/** A timer made by a Clock; only that clock's clearTimeout / clearInterval take it. */
export type ClockTimer = unknown;

export interface Clock {
  /** milliseconds since the epoch, as Date.now(): for times that are stored or shown (expiry, wills) */
  now(): number;
  /**
   * milliseconds on a clock that never steps (performance.now() for the real one): for deadlines that
   * only this process measures (keepalive, the CONNECT deadline), so that a wall clock set forward or
   * back does not drop or keep a connection
   */
  monotonic(): number;
  /** Timers never keep the process alive (the real clock unrefs them). */
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer | undefined): void;
  setInterval(fn: () => void, ms: number): ClockTimer;
  clearInterval(timer: ClockTimer | undefined): void;
}

/** Date.now() and node's timers, unref'd. */
export const realClock: Clock = {
  now: Date.now,
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (timer) => clearInterval(timer as NodeJS.Timeout | undefined),
};
