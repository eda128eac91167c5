import type { Broker } from './broker.js';
import type { ClockTimer } from '../util/clock.js';

/**
 * `$SYS/broker/...` topics, published as retained messages every `sys_interval` seconds,
 * only when their value changed (as mosquitto does).
 */
export class SysPublisher {
  private timer: ClockTimer | undefined;
  private readonly last = new Map<string, string>();

  constructor(private readonly broker: Broker) {}

  start(): void {
    const interval = this.broker.opts.sysInterval;
    if (interval <= 0 || this.timer !== undefined) return;
    this.publishAll();
    this.timer = this.broker.clock.setInterval(() => {
      try {
        this.publishAll();
      } catch (err) {
        this.broker.log.error(`publishing $SYS failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }, interval * 1000);
  }

  stop(): void {
    this.broker.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The current values, by topic. */
  values(): Record<string, string> {
    const b = this.broker;
    const st = b.stats;
    const subscriptions = b.subs.size;
    const total = b.sessions.size;
    return {
      '$SYS/broker/version': b.opts.version,
      '$SYS/broker/uptime': `${Math.floor((b.clock.now() - st.startedAt) / 1000)} seconds`,
      '$SYS/broker/clients/connected': String(st.clientsConnected),
      '$SYS/broker/clients/active': String(st.clientsConnected),
      '$SYS/broker/clients/disconnected': String(Math.max(0, total - st.clientsConnected)),
      '$SYS/broker/clients/total': String(Math.max(total, st.clientsConnected)),
      '$SYS/broker/clients/maximum': String(st.clientsMaximum),
      '$SYS/broker/messages/received': String(st.messagesReceived),
      '$SYS/broker/messages/sent': String(st.messagesSent),
      '$SYS/broker/publish/messages/received': String(st.publishReceived),
      '$SYS/broker/publish/messages/sent': String(st.messagesSent),
      '$SYS/broker/publish/messages/dropped': String(st.dropped),
      '$SYS/broker/bytes/received': String(st.bytesReceived),
      '$SYS/broker/bytes/sent': String(st.bytesSent),
      '$SYS/broker/subscriptions/count': String(subscriptions),
      '$SYS/broker/retained messages/count': String(b.retained.size),
    };
  }

  private publishAll(): void {
    for (const [topic, value] of Object.entries(this.values())) {
      if (this.last.get(topic) === value) continue;
      this.last.set(topic, value);
      this.broker.publishMessage({ topic, payload: Buffer.from(value), qos: 0, retain: true });
    }
  }
}
