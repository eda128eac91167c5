/**
 * Prometheus metrics of a broker (`GET /metrics`), with prom-client: its default process metrics
 * (CPU, memory and heap, event-loop lag, GC, handles) and the broker's own `midge_*` metrics.
 *
 * The broker's metrics are read at scrape time from its plain counters (`broker.metricsSnapshot()`)
 * in the `collect()` callbacks of gauges and counters: nothing of prom-client runs per message.
 */
import type { Registry } from 'prom-client';
import type { Broker, MetricsSnapshot } from '../broker/broker.js';
import { COMMIT_BUCKETS, PACKET_TYPE_NAMES } from '../broker/traffic.js';

type PromClient = typeof import('prom-client');

interface Metrics { registry: Registry; /** forget the snapshot of the previous scrape */ fresh(): void }

const registries = new WeakMap<Broker, Promise<Metrics>>();

/** A bridge as the metrics read it (the HTTP listener's `bridges` option; docs/bridges.md). */
export interface BridgeMetricsSource {
  name: string;
  /** 'connected' | 'connecting' | 'disconnected' | 'stopped' */
  state: string;
  connects: number;
  messagesOut: number;
  messagesIn: number;
  dropped: number;
}

/** where each broker's bridges come from (set by the first HTTP listener that is given them) */
const bridgeSources = new WeakMap<Broker, () => BridgeMetricsSource[]>();

/** The metrics of `broker` include these bridges (`midge_bridge_*`); the first source given is kept. */
export function setBridgeSource(broker: Broker, bridges: () => BridgeMetricsSource[]): void {
  if (!bridgeSources.has(broker)) bridgeSources.set(broker, bridges);
}

/**
 * The metrics registry of a broker (one per broker, shared by its HTTP listeners). prom-client is
 * loaded on first use (when the broker's first HTTP listener starts), so that an application that never
 * serves metrics never loads it.
 */
export async function metricsRegistry(broker: Broker): Promise<Registry> {
  return (await metricsOf(broker)).registry;
}

function metricsOf(broker: Broker): Promise<Metrics> {
  let r = registries.get(broker);
  if (r === undefined) {
    r = import('prom-client').then((prom) => createRegistry(prom, broker));
    registries.set(broker, r);
  }
  return r;
}

/** The registry's text exposition format (what `GET /metrics` answers). */
export async function renderMetrics(broker: Broker): Promise<{ contentType: string; body: string }> {
  const m = await metricsOf(broker);
  m.fresh();
  return { contentType: m.registry.contentType, body: await m.registry.metrics() };
}

function createRegistry(prom: PromClient, broker: Broker): Metrics {
  const { Counter, Gauge, Registry, collectDefaultMetrics } = prom;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // one snapshot per scrape: the first collect() of a scrape takes it, the others reuse it
  let snap: MetricsSnapshot | undefined;
  const now = (): MetricsSnapshot => (snap ??= broker.metricsSnapshot());
  const registers = [registry];
  const gauge = (name: string, help: string, read: (s: MetricsSnapshot) => number): void => {
    new Gauge({ name, help, registers, collect() { this.set(read(now())); } });
  };
  const counter = (name: string, help: string, read: (s: MetricsSnapshot) => number): void => {
    new Counter({ name, help, registers, collect() { this.reset(); this.inc(read(now())); } });
  };
  const labelled = (name: string, help: string, label: string, read: (s: MetricsSnapshot) => Iterable<[string, number]>): void => {
    new Counter({
      name, help, labelNames: [label], registers,
      collect() {
        this.reset();
        for (const [l, v] of read(now())) this.inc({ [label]: l }, v);
      },
    });
  };
  const byQos = (a: (s: MetricsSnapshot) => Float64Array) => (s: MetricsSnapshot): Array<[string, number]> =>
    [0, 1, 2].map((q) => [String(q), a(s)[q]!]);
  // the packet types a broker can receive (1 CONNECT, 3-8, 10, 12, 14, 15) and send (2-7, 9, 11, 13-15)
  const IN = [1, 3, 4, 5, 6, 7, 8, 10, 12, 14, 15];
  const OUT = [2, 3, 4, 5, 6, 7, 9, 11, 13, 14, 15];
  const byType = (types: number[], a: (s: MetricsSnapshot) => Float64Array) => (s: MetricsSnapshot): Array<[string, number]> => {
    const v = a(s);
    return types.map((i) => [PACKET_TYPE_NAMES[i]!, v[i]!]);
  };

  new Gauge({
    name: 'midge_info', help: 'The broker version (value 1).', labelNames: ['version'], registers,
    collect() { this.reset(); this.set({ version: broker.opts.version.replace(/^midge version /, '') }, 1); },
  });
  gauge('midge_uptime_seconds', 'Seconds since the broker started.', (s) => Math.max(0, (broker.clock.now() - s.stats.startedAt) / 1000));
  // connections
  gauge('midge_clients_connected', 'Clients connected now (CONNACK sent).', (s) => s.stats.clientsConnected);
  gauge('midge_clients_maximum', 'The most clients connected at once since the start.', (s) => s.stats.clientsMaximum);
  gauge('midge_connections_open', 'Network connections open now, including those before CONNACK.', (s) => s.connectionsOpen);
  counter('midge_connections_total', 'Network connections accepted by the broker since the start.', (s) => s.stats.socketConnections);
  labelled('midge_connections_refused_total', 'Connections refused, by reason (CONNACK refusals, global_max_connections, pre_connect).', 'reason',
    (s) => s.traffic.refused.entries());
  // traffic
  labelled('midge_packets_received_total', 'MQTT packets received, by packet type.', 'type', byType(IN, (s) => s.traffic.packetsIn));
  labelled('midge_packets_sent_total', 'MQTT packets sent, by packet type.', 'type', byType(OUT, (s) => s.traffic.packetsOut));
  labelled('midge_packet_bytes_received_total', 'Bytes of the MQTT packets received (fixed header included), by packet type.', 'type', byType(IN, (s) => s.traffic.bytesIn));
  labelled('midge_packet_bytes_sent_total', 'Bytes of the MQTT packets sent (fixed header included), by packet type.', 'type', byType(OUT, (s) => s.traffic.bytesOut));
  labelled('midge_messages_received_total', 'PUBLISH packets received from clients, by QoS.', 'qos', byQos((s) => s.traffic.publishIn));
  labelled('midge_messages_sent_total', 'PUBLISH packets sent to subscribers, by QoS.', 'qos', byQos((s) => s.traffic.publishOut));
  labelled('midge_message_bytes_received_total', 'Payload bytes of the PUBLISH packets received, by QoS.', 'qos', byQos((s) => s.traffic.publishBytesIn));
  labelled('midge_message_bytes_sent_total', 'Payload bytes of the PUBLISH packets sent, by QoS.', 'qos', byQos((s) => s.traffic.publishBytesOut));
  counter('midge_bytes_received_total', 'Bytes received from clients (every packet).', (s) => s.stats.bytesReceived);
  counter('midge_bytes_sent_total', 'Bytes sent to clients (every packet).', (s) => s.stats.bytesSent);
  counter('midge_messages_dropped_total', 'Messages dropped (queue limits, memory_limit, retained limits, too large for a client).', (s) => s.stats.dropped);
  counter('midge_read_pauses_total', 'Times reading from a client was paused because it did not read what it was sent.', (s) => s.stats.readPauses);
  // state
  gauge('midge_queued_messages', 'Messages queued for sessions (beyond the in-flight windows).', (s) => s.queued);
  gauge('midge_queued_bytes', 'Payload bytes queued for sessions.', (s) => s.queuedBytes);
  gauge('midge_inflight_messages', 'Outgoing QoS 1/2 messages in flight (sent, not yet acknowledged).', (s) => s.inflight);
  gauge('midge_inflight_bytes', 'Payload bytes of the outgoing messages in flight.', (s) => s.inflightBytes);
  gauge('midge_retained_messages', 'Retained messages ($SYS included).', (s) => s.retained);
  gauge('midge_retained_bytes', 'Payload bytes of the retained messages.', (s) => s.retainedBytes);
  gauge('midge_subscriptions', 'Subscriptions (shared ones counted per group filter).', (s) => s.subscriptions);
  gauge('midge_sessions', 'Sessions: connected clients and durable sessions offline.', (s) => s.sessions);
  gauge('midge_sessions_connected', 'Sessions whose client is connected.', (s) => s.sessionsOnline);
  // bridges (`connection` blocks of midge broker; an embedder's when it passes `bridges`): none, no series
  let bridges: BridgeMetricsSource[] | undefined;
  const bridgeList = (): BridgeMetricsSource[] => (bridges ??= bridgeSources.get(broker)?.() ?? []);
  const bridgeGauge = (name: string, help: string, read: (b: BridgeMetricsSource) => number): void => {
    new Gauge({
      name, help, labelNames: ['bridge'], registers,
      collect() {
        this.reset();
        for (const b of bridgeList()) this.set({ bridge: b.name }, read(b));
      },
    });
  };
  const bridgeCounter = (name: string, help: string, read: (b: BridgeMetricsSource) => number): void => {
    new Counter({
      name, help, labelNames: ['bridge'], registers,
      collect() {
        this.reset();
        for (const b of bridgeList()) this.inc({ bridge: b.name }, read(b));
      },
    });
  };
  bridgeGauge('midge_bridge_up', 'A bridge: 1 while its connection to the remote broker is up, else 0.', (b) => (b.state === 'connected' ? 1 : 0));
  bridgeCounter('midge_bridge_connects_total', 'A bridge: connections made to the remote broker.', (b) => b.connects);
  bridgeCounter('midge_bridge_messages_sent_total', 'A bridge: messages sent to the remote broker.', (b) => b.messagesOut);
  bridgeCounter('midge_bridge_messages_received_total', 'A bridge: messages received from the remote broker.', (b) => b.messagesIn);
  bridgeCounter('midge_bridge_messages_dropped_total', 'A bridge: messages dropped (QoS 0 while the remote was away, too large, not taken).', (b) => b.dropped);
  // the durable store: only with persistence on
  if (broker.opts.store !== undefined) {
    counter('midge_store_commits_total', 'Store commits (one transaction per event-loop turn with changes).', (s) => s.storeCommits?.commits ?? 0);
    counter('midge_store_commit_failures_total', 'Store commits that failed (and were retried).', (s) => s.storeCommits?.failures ?? 0);
    registry.registerMetric(commitHistogram(() => now().storeCommitSeconds) as never);
  }
  // the cluster: only on a node of one
  const bus = broker.opts.bus;
  if (bus !== undefined) {
    const bs = bus.stats;
    new Gauge({ name: 'midge_cluster_nodes', help: 'Live nodes of the cluster, this one included.', registers, collect() { this.set(bs.nodes()); } });
    new Gauge({
      name: 'midge_cluster_clients_connected', help: 'Clients connected to each live node, as the nodes last reported.', labelNames: ['node'], registers,
      collect() { this.reset(); for (const [node, n] of bs.clientsByNode()) this.set({ node }, n); },
    });
    new Counter({
      name: 'midge_cluster_bus_messages_total', help: 'Messages forwarded to other nodes (sent) and from them (received).', labelNames: ['direction'], registers,
      collect() { this.reset(); this.inc({ direction: 'sent' }, bs.messagesSent); this.inc({ direction: 'received' }, bs.messagesReceived); },
    });
    new Counter({
      name: 'midge_cluster_bus_bytes_total', help: 'Bytes of the messages forwarded between nodes, by direction.', labelNames: ['direction'], registers,
      collect() { this.reset(); this.inc({ direction: 'sent' }, bs.bytesSent); this.inc({ direction: 'received' }, bs.bytesReceived); },
    });
  }
  return { registry, fresh: () => { snap = undefined; bridges = undefined; } };
}

/** A histogram read from the recorder's plain buckets (prom-client's Histogram can only observe). */
function commitHistogram(read: () => MetricsSnapshot['storeCommitSeconds']): object {
  const name = 'midge_store_commit_seconds';
  const help = 'Time the durable store took to commit one change set.';
  return {
    name, help, type: 'histogram', aggregator: 'sum',
    get() {
      const h = read();
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      let cumulative = 0;
      for (let i = 0; i <= COMMIT_BUCKETS.length; i++) {
        cumulative += h?.counts[i] ?? 0;
        values.push({ metricName: `${name}_bucket`, labels: { le: i < COMMIT_BUCKETS.length ? COMMIT_BUCKETS[i]! : '+Inf' }, value: cumulative });
      }
      values.push({ metricName: `${name}_sum`, labels: {}, value: h?.sum ?? 0 });
      values.push({ metricName: `${name}_count`, labels: {}, value: h?.count ?? 0 });
      return Promise.resolve({ name, help, type: 'histogram', values, aggregator: 'sum' });
    },
    reset() { /* read from the recorder */ },
  };
}
