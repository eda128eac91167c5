/** Capped exponential backoff for reconnecting: initialDelay, ×factor per failed attempt, up to maxDelay. */
export interface ReconnectOptions {
  /** ms before the first attempt (default 1000) */
  initialDelay?: number;
  /** ms cap (default 30000) */
  maxDelay?: number;
  /** growth per failed attempt (default 2) */
  factor?: number;
  /** ± fraction of random spread, 0..1 (default 0.1), so that many clients do not retry in step */
  jitter?: number;
  /**
   * Chooses every reconnection instead of the backoff above: `delay` in ms and, optionally, another server
   * to connect to from then on (a bridge's list of addresses). `attempt` counts from 1 since the last
   * successful connection; `error` is why the last connection (or attempt) ended (ConnectionLostError when the
   * broker just closed it).
   */
  strategy?: (attempt: number, error: Error) => { delay: number; host?: string; port?: number };
}

export class Backoff {
  private attempt = 0;
  private readonly initialDelay: number;
  private readonly maxDelay: number;
  private readonly factor: number;
  private readonly jitter: number;

  constructor(options: ReconnectOptions = {}, private readonly random: () => number = Math.random) {
    this.initialDelay = Math.max(0, options.initialDelay ?? 1000);
    this.maxDelay = Math.max(this.initialDelay, options.maxDelay ?? 30_000);
    this.factor = Math.max(1, options.factor ?? 2);
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? 0.1));
  }

  get attempts(): number { return this.attempt; }

  /** The delay before the next attempt; each call counts one attempt. */
  next(): number {
    const base = Math.min(this.maxDelay, this.initialDelay * this.factor ** this.attempt);
    this.attempt++;
    const spread = base * this.jitter * (this.random() * 2 - 1);
    return Math.round(Math.min(this.maxDelay, Math.max(0, base + spread)));
  }

  /** After a successful connection. */
  reset(): void { this.attempt = 0; }
}
