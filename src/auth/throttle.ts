/**
 * Slows down failed logins per client address, so that a password file cannot be tried at line rate.
 *
 * Each address (an IPv6 address by its /64 prefix, since one host usually owns the whole prefix) has a
 * failure count that halves every `halfLifeMs` without failures. A failed attempt is answered
 * `delay(count)` after the previous answer to that address, where
 *
 *   delay(count) = min(maxDelayMs, baseDelayMs × 2^(round(count) − 1))
 *
 * so one mistyped password costs `baseDelayMs`, and a run of failures doubles up to `maxDelayMs`.
 * Answers to one address are serialised: opening many connections in parallel does not help, the
 * N-th answer still comes after the N−1 before it. While an address is penalised, its successful logins
 * also wait for their turn (otherwise "no quick answer" would itself tell a guess was wrong).
 * When an address has more than `maxWaitMs` of answers queued, further attempts are refused at once
 * without checking the password: the answer then says nothing about the guess.
 *
 * Pure apart from the clock, which is injectable for tests.
 */

export interface ThrottleOptions {
  /** delay of the first failure from an address; 0 turns the throttle off */
  readonly baseDelayMs: number;
  /** the longest delay of one answer */
  readonly maxDelayMs: number;
  /** time for an address's failure count to halve (default 60 s) */
  readonly halfLifeMs?: number;
  /** attempts that would wait longer than this are refused unchecked (default 4 × maxDelayMs) */
  readonly maxWaitMs?: number;
  /** addresses remembered at most; the least recently failing are forgotten first (default 100000) */
  readonly maxEntries?: number;
}

interface AddressState {
  /** decayed failure count as of `at` */
  count: number;
  at: number;
  /** the time the last scheduled answer to this address goes out */
  readyAt: number;
}

export type Admission = { readonly admitted: true } | { readonly admitted: false; readonly waitMs: number };

export class LoginThrottle {
  private readonly states = new Map<string, AddressState>();
  private readonly halfLifeMs: number;
  private readonly maxWaitMs: number;
  private readonly maxEntries: number;

  constructor(readonly opts: ThrottleOptions, private readonly now: () => number = Date.now) {
    this.halfLifeMs = opts.halfLifeMs ?? 60_000;
    this.maxWaitMs = opts.maxWaitMs ?? 4 * opts.maxDelayMs;
    this.maxEntries = opts.maxEntries ?? 100_000;
  }

  get enabled(): boolean {
    return this.opts.baseDelayMs > 0;
  }

  /** Addresses currently remembered (for tests and $SYS-style reporting). */
  get size(): number {
    return this.states.size;
  }

  /** Before checking a password: may this address be answered within `maxWaitMs`? */
  admit(address: string): Admission {
    if (!this.enabled) return { admitted: true };
    const s = this.states.get(addressKey(address));
    const wait = s === undefined ? 0 : s.readyAt - this.now();
    return wait > this.maxWaitMs ? { admitted: false, waitMs: wait } : { admitted: true };
  }

  /**
   * Books the answer to an attempt whose result is known, and returns how many ms to wait before
   * sending it. Call once per attempt.
   */
  schedule(address: string, failed: boolean): number {
    if (!this.enabled) return 0;
    const key = addressKey(address);
    const t = this.now();
    let s = this.states.get(key);
    if (s === undefined) {
      if (!failed) return 0;
      s = { count: 0, at: t, readyAt: t };
      this.remember(key, s);
    }
    s.count *= Math.pow(0.5, (t - s.at) / this.halfLifeMs);
    s.at = t;
    let answerAt = Math.max(t, s.readyAt);
    if (failed) {
      s.count += 1;
      answerAt += this.delayFor(s.count);
      // keep the most recent offenders at the end of the map's order (eviction takes the front)
      this.states.delete(key);
      this.states.set(key, s);
    }
    s.readyAt = answerAt;
    if (!failed && s.count < 0.05 && s.readyAt <= t) this.states.delete(key);
    return answerAt - t;
  }

  /** The delay a failure adds at this (decayed) failure count. */
  delayFor(count: number): number {
    const exp = Math.max(0, Math.round(count) - 1);
    return Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * Math.pow(2, Math.min(exp, 30)));
  }

  private remember(key: string, s: AddressState): void {
    if (this.states.size >= this.maxEntries) this.prune();
    this.states.set(key, s);
  }

  /** Drops addresses whose count has decayed away; if that is not enough, the oldest half. */
  private prune(): void {
    const t = this.now();
    for (const [key, s] of this.states) {
      const count = s.count * Math.pow(0.5, (t - s.at) / this.halfLifeMs);
      if (count < 0.05 && s.readyAt <= t) this.states.delete(key);
    }
    if (this.states.size < this.maxEntries) return;
    let drop = Math.ceil(this.states.size / 2);
    for (const key of this.states.keys()) {
      if (drop-- <= 0) break;
      this.states.delete(key);
    }
  }
}

/** IPv4 addresses as they are; IPv6 addresses by their first four groups (the /64 prefix). */
export function addressKey(address: string): string {
  if (!address.includes(':')) return address;
  const full = expandIpv6(address);
  return full === undefined ? address : `${full.slice(0, 4).join(':')}::/64`;
}

function expandIpv6(address: string): string[] | undefined {
  const zone = address.indexOf('%');
  const a = zone >= 0 ? address.slice(0, zone) : address;
  const halves = a.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1]!.split(':') : [];
  // an embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups
  const groups = (g: string[]): number => g.reduce((n, x) => n + (x.includes('.') ? 2 : 1), 0);
  const missing = 8 - groups(head) - groups(tail);
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  return [...head, ...Array<string>(missing).fill('0'), ...tail].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}
