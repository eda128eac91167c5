/**
 * Keepalive bookkeeping of the client state machine (pure): when the last packet went out and came in,
 * and the PINGREQ waiting for its PINGRESP [MQTT-3.1.2-22]. The period is the effective keepalive
 * (the broker's Server Keep Alive when it sent one).
 */
export class Keepalive {
  lastSent = 0;
  lastReceived = 0;
  pingSentAt: number | undefined;

  /** `pingTimeout`: ms to wait for PINGRESP (default: one period). */
  constructor(private readonly pingTimeout?: number) {}

  timeout(seconds: number): number { return this.pingTimeout ?? seconds * 1000; }

  /** What is due at `now`: a PINGREQ, giving up on the PINGRESP, or nothing. */
  due(now: number, seconds: number): 'ping' | 'timeout' | undefined {
    if (seconds === 0) return undefined;
    if (this.pingSentAt !== undefined) return now - this.pingSentAt >= this.timeout(seconds) ? 'timeout' : undefined;
    const period = seconds * 1000;
    return now - this.lastSent >= period || now - this.lastReceived >= period ? 'ping' : undefined;
  }

  deadline(seconds: number): number | undefined {
    if (seconds === 0) return undefined;
    if (this.pingSentAt !== undefined) return this.pingSentAt + this.timeout(seconds);
    return Math.min(this.lastSent, this.lastReceived) + seconds * 1000;
  }
}
