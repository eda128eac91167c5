import type { Broker, BrokerStats } from './broker.js';
import type { ClockTimer } from '../util/clock.js';

/**
 * The counters behind the load averages, in mosquitto 2.0's order: `$SYS/broker/load/<name>/<window>`
 * is the moving average of how much `stats[counter]` grew per minute.
 */
const LOADS: ReadonlyArray<readonly [name: string, counter: keyof BrokerStats]> = [
  ['messages/received', 'messagesReceived'],
  ['messages/sent', 'packetsSent'],
  ['publish/dropped', 'dropped'],
  ['publish/received', 'publishReceived'],
  ['publish/sent', 'messagesSent'],
  ['bytes/received', 'bytesReceived'],
  ['bytes/sent', 'bytesSent'],
  ['sockets', 'socketConnections'],
  ['connections', 'connectsReceived'],
];
/** the three windows, in seconds: 1min, 5min, 15min */
const WINDOWS = [60, 300, 900] as const;
const WINDOW_NAMES = ['1min', '5min', '15min'] as const;

/** The topics of the load averages (27: 9 counters x 3 windows), in publishing order. */
export const SYS_LOAD_TOPICS: readonly string[] = WINDOW_NAMES.flatMap((w) => LOADS.map(([name]) => `$SYS/broker/load/${name}/${w}`));

/**
 * One step of mosquitto's load average (`calc_load` in its sys_tree.c): `delta` is how much the counter
 * grew in the last `seconds`; the rate per minute is pulled into `current` with the weight of an
 * exponential decay over `window` seconds.
 */
export function nextLoad(current: number, delta: number, seconds: number, window: number): number {
  const perMinute = delta * (60 / seconds);
  const exponent = Math.exp(-seconds / window);
  return perMinute + exponent * (current - perMinute);
}

/**
 * `$SYS/broker/...`: the tree mosquitto 2.0 publishes, as retained messages, every `sys_interval` seconds.
 * `$SYS/broker/version` once at start, `$SYS/broker/uptime` at every update, every other value only when it
 * changed since the last update (a load average: when it moved by 0.01 or more, as mosquitto's calc_load).
 * The counters are plain fields of `broker.stats`, incremented where the traffic passes; everything else is
 * read here, once per interval.
 */
export class SysPublisher {
  private timer: ClockTimer | undefined;
  /** last published value by topic (`values()`), and what changes are compared against */
  private readonly last = new Map<string, string>();
  private lastUpdate = 0;
  private started = false;
  /** the counters behind LOADS at the last update */
  private readonly prev = new Float64Array(LOADS.length);
  /** the load averages, in SYS_LOAD_TOPICS order */
  private readonly loads = new Float64Array(LOADS.length * WINDOWS.length);
  /** highest clients/total and heap/current seen at an update */
  private clientsMaximum = 0;
  private heapMaximum = 0;

  constructor(private readonly broker: Broker) {}

  start(): void {
    const interval = this.broker.opts.sysInterval;
    if (interval <= 0 || this.timer !== undefined) return;
    this.update();
    this.timer = this.broker.clock.setInterval(() => {
      try {
        this.update();
      } catch (err) {
        this.broker.log.error(`publishing $SYS failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }, interval * 1000);
  }

  stop(): void {
    this.broker.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The values published last, by topic (every topic published so far). */
  values(): Record<string, string> {
    return Object.fromEntries(this.last);
  }

  /** One update: what mosquitto's sys_tree__update does when sys_interval has passed. */
  update(): void {
    const b = this.broker;
    const st = b.stats;
    const now = b.clock.now();
    const initial = !this.started;
    if (initial) {
      this.started = true;
      this.put('$SYS/broker/version', b.opts.version);
    }
    // uptime is published at every update, changed or not (as mosquitto does)
    this.publish('$SYS/broker/uptime', `${Math.floor((now - st.startedAt) / 1000)} seconds`);

    // clients: total = sessions (connected or not), as mosquitto's contexts by id
    const connected = st.clientsConnected;
    const total = Math.max(b.sessions.size, connected);
    if (total > this.clientsMaximum) this.clientsMaximum = total;
    this.put('$SYS/broker/clients/total', total);
    this.put('$SYS/broker/clients/maximum', this.clientsMaximum);
    this.put('$SYS/broker/clients/disconnected', total - connected);
    this.put('$SYS/broker/clients/inactive', total - connected);
    this.put('$SYS/broker/clients/connected', connected);
    this.put('$SYS/broker/clients/active', connected);
    this.put('$SYS/broker/clients/expired', st.clientsExpired);

    // load averages: forced to 0.00 at the first update, then moved by what each counter did since the last
    const seconds = (now - this.lastUpdate) / 1000;
    for (let i = 0; i < LOADS.length; i++) {
      const value = st[LOADS[i]![1]];
      if (initial) {
        for (let w = 0; w < WINDOWS.length; w++) this.loads[w * LOADS.length + i] = 0;
      } else if (seconds > 0) {
        const delta = value - this.prev[i]!;
        for (let w = 0; w < WINDOWS.length; w++) {
          const k = w * LOADS.length + i;
          const current = this.loads[k]!;
          const next = nextLoad(current, delta, seconds, WINDOWS[w]!);
          if (Math.abs(next - current) >= 0.01) this.publish(SYS_LOAD_TOPICS[k]!, next.toFixed(2));
          this.loads[k] = next;
        }
      }
      this.prev[i] = value;
    }
    if (initial) for (const topic of SYS_LOAD_TOPICS) this.publish(topic, '0.00');

    // the message store: retained messages plus what sessions hold (queued, in flight)
    let held = 0;
    let heldBytes = 0;
    for (const s of b.sessions.values()) {
      held += s.heldMessages;
      heldBytes += s.heldBytes;
    }
    const stored = b.retained.size + held;
    this.put('$SYS/broker/messages/stored', stored);
    this.put('$SYS/broker/store/messages/count', stored);
    this.put('$SYS/broker/store/messages/bytes', b.retained.bytes + heldBytes);
    this.put('$SYS/broker/subscriptions/count', b.router.subscriptionCount);
    this.put('$SYS/broker/shared_subscriptions/count', b.router.sharedSubscriptionCount);
    this.put('$SYS/broker/retained messages/count', b.retained.size);

    // heap: what memory_limit measures (V8 heap in use plus Buffers), and its highest value at an update
    const heap = b.memoryUsed();
    if (heap > this.heapMaximum) this.heapMaximum = heap;
    this.put('$SYS/broker/heap/current', heap);
    this.put('$SYS/broker/heap/maximum', this.heapMaximum);

    this.put('$SYS/broker/messages/received', st.messagesReceived);
    this.put('$SYS/broker/messages/sent', st.packetsSent);
    this.put('$SYS/broker/publish/messages/dropped', st.dropped);
    this.put('$SYS/broker/publish/messages/received', st.publishReceived);
    this.put('$SYS/broker/publish/messages/sent', st.messagesSent);
    this.put('$SYS/broker/bytes/received', st.bytesReceived);
    this.put('$SYS/broker/bytes/sent', st.bytesSent);
    this.put('$SYS/broker/publish/bytes/received', st.publishBytesReceived);
    this.put('$SYS/broker/publish/bytes/sent', st.publishBytesSent);
    const bus = b.opts.bus;
    if (bus !== undefined) {
      // Midge-only: the cluster as this node sees it (node ids with '/', '+' or '#' are written with '_')
      const bs = bus.stats;
      this.put('$SYS/broker/cluster/node_id', bus.nodeId);
      this.put('$SYS/broker/cluster/nodes', bs.nodes());
      for (const [node, n] of bs.clientsByNode()) this.put(`$SYS/broker/cluster/nodes/${node.replace(/[/+#]/g, '_')}/clients/connected`, n);
      this.put('$SYS/broker/cluster/bus/messages/sent', bs.messagesSent);
      this.put('$SYS/broker/cluster/bus/messages/received', bs.messagesReceived);
      this.put('$SYS/broker/cluster/bus/bytes/sent', bs.bytesSent);
      this.put('$SYS/broker/cluster/bus/bytes/received', bs.bytesReceived);
    }
    this.lastUpdate = now;
  }

  /** Publish when the value changed since the last update. */
  private put(topic: string, value: number | string): void {
    const text = typeof value === 'number' ? String(value) : value;
    if (this.last.get(topic) !== text) this.publish(topic, text);
  }

  private publish(topic: string, text: string): void {
    this.last.set(topic, text);
    this.broker.publishMessage({ topic, payload: Buffer.from(text), qos: 0, retain: true });
  }
}
