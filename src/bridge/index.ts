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
  private sysTimer: NodeJS.Timeout | undefined;
  private readonly sysSent = new Map<string, string>();

  /**
   * `sysInterval` (seconds, 0 = off): how often the per-bridge counters are published, retained, under
   * `$SYS/broker/bridge/NAME/...` (as the broker's own $SYS topics).
   */
  constructor(private readonly broker: Broker, private readonly log: Logger, sysInterval = 0) {
    if (sysInterval > 0) {
      this.sysTimer = setInterval(() => this.publishSys(), sysInterval * 1000);
      this.sysTimer.unref();
    }
  }

  /** state (connected, connecting, disconnected), address, connects, messages sent/received, dropped: only what changed. */
  publishSys(): void {
    for (const [name, s] of this.stats()) {
      const values: Record<string, string> = {
        state: s.state, address: s.address, connects: String(s.connects),
        'messages/sent': String(s.messagesOut), 'messages/received': String(s.messagesIn), 'messages/dropped': String(s.dropped),
      };
      for (const [k, v] of Object.entries(values)) {
        const topic = `$SYS/broker/bridge/${name}/${k}`;
        if (this.sysSent.get(topic) === v) continue;
        this.sysSent.set(topic, v);
        try {
          this.broker.publish({ topic, payload: v, qos: 0, retain: true });
        } catch {
          // a bridge name that is no topic level (+ or #) has no $SYS topics
        }
      }
    }
  }

  /** Starts, stops and restarts bridges so that the running ones are `configs`. */
  async apply(configs: readonly BridgeConfig[]): Promise<void> {
    if (this.closed) return;
    const next = new Map(configs.map((c) => [c.name, c]));
    for (const [name, { bridge }] of [...this.bridges]) {
      if (!next.has(name)) {
        this.bridges.delete(name);
        this.log.info(`Bridge ${name} removed from the configuration.`);
        await bridge.stop(true);
        this.clearSys(name);
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

  /** A removed bridge's retained $SYS topics go too. */
  private clearSys(name: string): void {
    const prefix = `$SYS/broker/bridge/${name}/`;
    for (const topic of [...this.sysSent.keys()]) {
      if (!topic.startsWith(prefix)) continue;
      this.sysSent.delete(topic);
      this.broker.publish({ topic, payload: '', qos: 0, retain: true });
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
    clearInterval(this.sysTimer);
    const all = [...this.bridges.values()];
    this.bridges.clear();
    await Promise.all(all.map(({ bridge }) => bridge.stop(false)));
  }
}
