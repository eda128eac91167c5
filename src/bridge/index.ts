/**
 * The broker's bridges: started from the configuration, and changed on SIGHUP by name: an added
 * `connection` block starts, a removed one stops (its local session discarded), a changed one restarts;
 * an unchanged one keeps running untouched.
 */
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../broker/log.js';
import type { BridgeConfig } from '../config/bridge.js';
import { Bridge, type BridgeStats } from './bridge.js';

export { Bridge, mapIncoming, mapOutgoing, nextRestartDelay, type BridgeStats } from './bridge.js';

/** A bridge's settings without where they were written, to tell a changed block from a moved one. */
function fingerprint(c: BridgeConfig): string {
  return JSON.stringify({ ...c, at: undefined, topics: c.topics.map((t) => ({ ...t, at: undefined })) });
}

export class BridgeManager {
  private readonly bridges = new Map<string, { bridge: Bridge; print: string }>();
  private closed = false;

  constructor(private readonly broker: Broker, private readonly log: Logger) {}

  /** Starts, stops and restarts bridges so that the running ones are `configs`. */
  async apply(configs: readonly BridgeConfig[]): Promise<void> {
    if (this.closed) return;
    const next = new Map(configs.map((c) => [c.name, c]));
    for (const [name, { bridge }] of [...this.bridges]) {
      if (!next.has(name)) {
        this.bridges.delete(name);
        this.log.info(`Bridge ${name} removed from the configuration.`);
        await bridge.stop(true);
      }
    }
    for (const c of configs) {
      const print = fingerprint(c);
      const running = this.bridges.get(c.name);
      if (running !== undefined) {
        if (running.print === print) continue;
        this.log.info(`Bridge ${c.name} changed in the configuration: restarting it.`);
        this.bridges.delete(c.name);
        await running.bridge.stop(false);
      }
      const bridge = new Bridge(c, this.broker, this.log);
      this.bridges.set(c.name, { bridge, print });
      bridge.start();
    }
  }

  /** name → what each bridge is doing (for $SYS and tests). */
  stats(): Map<string, BridgeStats> {
    return new Map([...this.bridges].map(([name, { bridge }]) => [name, { ...bridge.stats }]));
  }

  get(name: string): Bridge | undefined { return this.bridges.get(name)?.bridge; }

  /** Stops every bridge (before the broker closes). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.bridges.values()];
    this.bridges.clear();
    await Promise.all(all.map(({ bridge }) => bridge.stop(false)));
  }
}
