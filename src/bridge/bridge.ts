/**
 * One mosquitto-style bridge (a `connection` block): the remote side is Midge's client library, the local
 * side an in-process connection to the broker (local-link.ts). Topic mapping, restart backoff, addresses
 * and round robin, start types, notifications and their will follow mosquitto 2.0 (docs/bridges.md).
 *
 * Delivery: a QoS 1/2 message from the local broker is acknowledged to it only once the remote broker has
 * acknowledged it, so while the remote is away the local broker keeps it in flight and queues what follows
 * (in the bridge's local session: bounded by max_queued_messages, durable with persistence); when the remote
 * is back they go out in order. The remote client keeps its session state across reconnects, so a QoS 2
 * flow cut short resumes where it was (PUBREL again, not a second PUBLISH). Loop prevention: local subscriptions are No Local; remote ones are No Local
 * over 5.0, and over 3.x the CONNECT carries the bridge bit (try_private), which mosquitto and Midge read as
 * "do not send a bridge its own messages back".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../broker/log.js';
import type { Properties, PublishPacket, QoS } from '../codec/types.js';
import type { BridgeConfig, BridgeTopic } from '../config/bridge.js';
import { MqttClient } from '../client/client.js';
import { ConnectionRefusedError, PublishError } from '../client/errors.js';
import { resolveOptions, type ConnectOptions } from '../client/options.js';
import type { Message } from '../client/types.js';
import type { TlsOptions } from '../transport/connect.js';
import { topicMatches } from '../topic/index.js';
import { LocalLink } from './local-link.js';

/** mosquitto's outgoing mapping: the first out/both topic whose local filter matches; local prefix off, remote prefix on. */
export function mapOutgoing(topics: readonly BridgeTopic[], topic: string): string | undefined {
  for (const t of topics) {
    if (t.direction === 'in' || !topicMatches(t.localTopic, topic)) continue;
    let mapped = topic;
    if (t.localPrefix !== undefined && mapped.startsWith(t.localPrefix)) mapped = mapped.slice(t.localPrefix.length);
    if (t.remotePrefix !== undefined) mapped = t.remotePrefix + mapped;
    return mapped;
  }
  return undefined;
}

/** mosquitto's incoming mapping: the first in/both topic whose remote filter matches; remote prefix off, local prefix on. */
export function mapIncoming(topics: readonly BridgeTopic[], topic: string): string | undefined {
  for (const t of topics) {
    if (t.direction === 'out' || !topicMatches(t.remoteTopic, topic)) continue;
    let mapped = topic;
    if (t.remotePrefix !== undefined && mapped.startsWith(t.remotePrefix)) mapped = mapped.slice(t.remotePrefix.length);
    if (t.localPrefix !== undefined) mapped = t.localPrefix + mapped;
    return mapped;
  }
  return undefined;
}

/**
 * The next restart delay in seconds: constant, or mosquitto's "decorrelated jitter" between the base and
 * three times the previous delay, capped.
 */
export function nextRestartDelay(cfg: Pick<BridgeConfig, 'restartBase' | 'restartCap'>, previous: number, random = Math.random): number {
  if (cfg.restartCap === undefined) return cfg.restartBase;
  const span = previous * 3 - cfg.restartBase;
  const next = cfg.restartBase + (span > 0 ? Math.floor(random() * span) : 0);
  return Math.min(cfg.restartCap, next);
}

export interface BridgeStats {
  /** 'connected' | 'connecting' | 'disconnected' | 'stopped' */
  state: string;
  /** the address in use, or the next one tried */
  address: string;
  connects: number;
  messagesOut: number;
  messagesIn: number;
  /** QoS 0 messages from the local broker dropped while the remote was away, and messages that could not be delivered */
  dropped: number;
}

interface Outgoing {
  p: PublishPacket;
  ack: () => void;
  /** the remote client it was handed to, until it acknowledges; undefined = to be (re)sent */
  via: MqttClient | undefined;
}

/** Properties that make sense on the other broker (not an alias or the subscription ids of this one). */
function forwardProps(props: Properties | undefined): Properties | undefined {
  if (props === undefined) return undefined;
  const { topicAlias: _a, subscriptionIdentifiers: _s, ...rest } = props;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

export class Bridge {
  private remote: MqttClient | undefined;
  private local: LocalLink | undefined;
  private addrIndex = 0;
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private lazyTimer: NodeJS.Timeout | undefined;
  private localTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** the client library is trying to reconnect (its next failure is logged as one) */
  private attempting = false;
  private tryPrivateOk = true;
  private lastActivity = performance.now();
  private readonly pending: Outgoing[] = [];
  readonly stats: BridgeStats = { state: 'disconnected', address: '', connects: 0, messagesOut: 0, messagesIn: 0, dropped: 0 };

  constructor(readonly cfg: BridgeConfig, private readonly broker: Broker, private readonly log: Logger) {
    this.restartDelay = cfg.restartBase;
    this.stats.address = this.addressText();
  }

  get connected(): boolean { return this.stats.state === 'connected'; }

  private addressText(i = this.addrIndex): string {
    const a = this.cfg.addresses[i]!;
    return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
  }

  /** Starts the local side, then (automatic, once) the remote side; lazy waits for its threshold. */
  start(): void {
    this.notifyLocal('0');
    this.openLocal();
    if (this.cfg.startType === 'lazy') this.watchLazy();
    else this.connectRemote();
  }

  // local side

  private openLocal(): void {
    if (this.stopped) return;
    const c = this.cfg;
    const link = new LocalLink(this.broker, {
      clientId: c.localClientId, clean: c.localCleanSession ?? c.cleanSession, name: c.name,
      ...(c.localUsername !== undefined ? { username: c.localUsername } : {}),
      ...(c.localPassword !== undefined ? { password: c.localPassword } : {}),
    });
    this.local = link;
    link.onMessage = (p, ack) => this.fromLocal(p, ack);
    link.onClose = (why) => {
      if (this.local !== link || this.stopped) return;
      this.local = undefined;
      this.log.warning(`Bridge ${c.localClientId}: local connection closed (${why}); reopening in 1 s.`);
      // what it held in flight is the broker's again (redelivered to the next local connection)
      this.pending.length = 0;
      this.localTimer = setTimeout(() => this.openLocal(), 1000);
      this.localTimer.unref();
    };
    const outs = c.topics.filter((t) => t.direction !== 'in');
    void link.connect().then(async (present) => {
      const wanted = new Set(outs.map((t) => t.localTopic));
      if (present) {
        // a persistent local session keeps the filters of an earlier configuration: drop those no longer wanted
        const s = this.broker.sessions.get(c.localClientId);
        const stale = s === undefined ? [] : [...s.subscriptions.keys()].filter((f) => !wanted.has(f));
        if (stale.length > 0) await link.unsubscribe(stale);
      }
      if (outs.length === 0) return;
      for (const t of outs) this.log.info(`Bridge ${c.localClientId} doing local SUBSCRIBE on topic ${t.localTopic}`);
      await link.subscribe(outs.map((t) => ({ topic: t.localTopic, qos: t.qos })));
    }).catch((err: unknown) => {
      if (this.stopped || this.local !== link) return;
      this.log.error(`Bridge ${c.localClientId}: ${(err as Error).message}; retrying in ${this.cfg.restartBase} s.`);
      link.onClose = () => {};
      link.close('failed');
      this.local = undefined;
      this.localTimer = setTimeout(() => this.openLocal(), this.cfg.restartBase * 1000);
      this.localTimer.unref();
    });
  }

  /** A message from the local broker for the remote one. */
  private fromLocal(p: PublishPacket, ack: () => void): void {
    this.lastActivity = performance.now();
    if (this.remote === undefined || !this.connected) {
      if (p.qos === 0) {
        this.stats.dropped++;
        return;
      }
      this.pending.push({ p, ack, via: undefined });
      return;
    }
    const e: Outgoing = { p, ack, via: undefined };
    if (p.qos > 0) this.pending.push(e);
    this.forward(e, this.remote);
  }

  private forward(e: Outgoing, client: MqttClient): void {
    const p = e.p;
    const topic = mapOutgoing(this.cfg.topics, p.topic);
    const done = (): void => {
      const i = this.pending.indexOf(e);
      if (i >= 0) this.pending.splice(i, 1);
      e.ack();
    };
    if (topic === undefined) { done(); return; }
    const max = this.cfg.maxPacketSize;
    if (max > 0 && publishSize(topic, p) > max) {
      // bridge_max_packet_size: never sent (MQTT 5 brokers' own limit is the client library's to keep)
      this.stats.dropped++;
      this.log.warning(`Bridge ${this.cfg.name}: a message on '${topic}' is over bridge_max_packet_size ${max}; dropped.`);
      done();
      return;
    }
    e.via = client;
    const props = client.protocolVersion === 5 ? forwardProps(p.properties) : undefined;
    client.publish(topic, p.payload, {
      qos: p.qos, retain: this.cfg.outgoingRetain && p.retain, ...(props !== undefined ? { properties: props } : {}),
    }).then(() => {
      this.stats.messagesOut++;
      done();
    }, (err: unknown) => {
      if (e.via !== client) return;
      if (err instanceof PublishError || (err instanceof Error && err.name === 'MaximumPacketSizeError') || (err instanceof Error && err.name === 'InvalidArgumentError')) {
        // the remote (or its limits) refused this one message: retrying would refuse it again
        this.stats.dropped++;
        this.log.warning(`Bridge ${this.cfg.name}: the remote broker did not take a message on '${topic}' (${err.message}); dropped.`);
        done();
        return;
      }
      e.via = undefined; // connection lost: sent again, in order, on the next connection
    });
  }

  // remote side

  private url(): string {
    const a = this.cfg.addresses[this.addrIndex]!;
    const host = a.host.includes(':') ? `[${a.host}]` : a.host;
    return `${this.tls() ? 'mqtts' : 'mqtt'}://${host}:${a.port}`;
  }

  private tls(): boolean { return this.cfg.cafile !== undefined || this.cfg.capath !== undefined; }

  private tlsOptions(): TlsOptions {
    const c = this.cfg;
    const ca: Buffer[] = [];
    if (c.cafile !== undefined) ca.push(readFileSync(c.cafile));
    if (c.capath !== undefined) {
      for (const f of readdirSync(c.capath).sort()) {
        if (/\.(crt|pem)$/.test(f)) ca.push(readFileSync(join(c.capath, f)));
      }
    }
    const o: TlsOptions = { ca, rejectUnauthorized: true, minVersion: tlsName(c.tlsVersion) };
    if (c.insecure) o.skipHostnameCheck = true;
    if (c.certfile !== undefined) o.cert = readFileSync(c.certfile);
    if (c.keyfile !== undefined) o.key = readFileSync(c.keyfile);
    if (c.alpn !== undefined) o.alpnProtocols = [c.alpn];
    if (c.ciphers !== undefined) o.ciphers = c.ciphers;
    return o;
  }

  private connectOptions(): ConnectOptions {
    const c = this.cfg;
    const notifyRemote = c.notifications && !c.notificationsLocalOnly;
    const o: ConnectOptions = {
      clientId: c.remoteClientId, clean: c.cleanSession, keepalive: c.keepalive, protocolVersion: c.protocolVersion,
      reconnect: false, connectTimeout: Math.max(5, c.keepalive) * 1000, resubscribe: false,
      // a message from the remote is acknowledged once the local broker has it (committed, with
      // persistence): a crash before that leaves it with the remote, which sends it again
      manualAck: true,
    };
    if (c.remoteUsername !== undefined) o.username = c.remoteUsername;
    if (c.remotePassword !== undefined) o.password = c.remotePassword;
    if (c.tryPrivate && this.tryPrivateOk && c.protocolVersion !== 5) o.bridge = true;
    if (notifyRemote) o.will = { topic: c.notificationTopic, payload: '0', qos: 1, retain: true };
    if (c.bindAddress !== undefined) o.localAddress = c.bindAddress;
    if (this.tls()) o.tls = this.tlsOptions();
    if (c.protocolVersion === 5) {
      o.properties = {
        sessionExpiryInterval: c.sessionExpiryInterval,
        ...(c.receiveMaximum !== 65535 ? { receiveMaximum: c.receiveMaximum } : {}),
        ...(c.maxPacketSize > 0 ? { maximumPacketSize: c.maxPacketSize } : {}),
      };
    }
    return o;
  }

  /**
   * A new remote client: its first connection is tried once (a failure waits `restart_timeout`, then a new
   * client); once connected, the client library reconnects by itself (automatic start type) with the delays
   * and addresses `retry` chooses, keeping its session state, so QoS 1/2 flows in flight resume on the next
   * connection (the same packet ids; a QoS 2 PUBREL is sent again, not the PUBLISH).
   */
  private connectRemote(): void {
    if (this.stopped || this.remote !== undefined) return;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const c = this.cfg;
    const address = this.addressText();
    this.stats.state = 'connecting';
    this.stats.address = address;
    this.log.info(`Connecting bridge ${c.name} (${address})`);
    let client: MqttClient;
    try {
      const o = this.connectOptions();
      if (c.startType === 'automatic') o.reconnect = { strategy: (_attempt, err) => this.retry(err) };
      client = new MqttClient(resolveOptions(this.url(), o));
    } catch (err) {
      this.log.error(`Error creating bridge: ${(err as Error).message}.`);
      this.failed();
      return;
    }
    this.remote = client;
    let up = false;
    client.on('message', (m) => this.fromRemote(m));
    client.on('connect', () => { up = true; this.attempting = false; this.established(client); });
    client.on('offline', (err) => { if (up) this.disconnected(client, err); });
    client.on('reconnect', () => {
      this.attempting = true;
      this.stats.state = 'connecting';
      this.log.info(`Connecting bridge ${c.name} (${this.addressText()})`);
    });
    client.once('end', () => { if (up) this.ended(client); });
    this.log.debug(`Bridge ${c.remoteClientId} sending CONNECT`);
    client.start().catch((err: unknown) => {
      if (this.remote !== client) return;
      this.remote = undefined;
      const e = err as Error & { code?: string };
      if (c.tryPrivate && this.tryPrivateOk && c.protocolVersion !== 5
        && ((err instanceof ConnectionRefusedError && err.returnCode === 1) || /before any answer to CONNECT/.test(e.message))) {
        // a broker that does not know the bridge bit refuses the protocol level: the next try goes without it
        this.tryPrivateOk = false;
      }
      this.log.error(`Error creating bridge: ${describeError(e)}.`);
      this.failed();
    });
  }

  /** The client library's reconnect strategy (automatic start type): the next address, after `restart_timeout`. */
  private retry(err: Error | undefined): { delay: number; host: string; port: number } {
    if (this.attempting && err !== undefined) this.log.error(`Error creating bridge: ${describeError(err as Error & { code?: string })}.`);
    this.advanceAddress();
    const delay = this.restartDelay;
    this.restartDelay = nextRestartDelay(this.cfg, this.restartDelay);
    this.stats.address = this.addressText();
    this.log.info(`Bridge ${this.cfg.name} restarting in ${delay} s (${this.addressText()}).`);
    const a = this.cfg.addresses[this.addrIndex]!;
    return { delay: delay * 1000, host: a.host, port: a.port };
  }

  private established(client: MqttClient): void {
    if (this.remote !== client) return;
    if (this.stopped) { void client.end({ force: true }); return; }
    const c = this.cfg;
    this.stats.state = 'connected';
    this.stats.connects++;
    this.lastActivity = performance.now();
    this.restartDelay = c.restartBase;
    this.log.debug(`Received CONNACK on connection ${c.localClientId}.`);
    this.log.info(`Bridge ${c.name} connected to ${this.addressText()} as ${c.remoteClientId}.`);
    const v5 = c.protocolVersion === 5;
    const ins = c.topics.filter((t) => t.direction !== 'out');
    const outsOnly = c.topics.filter((t) => t.direction === 'out');
    if (c.attemptUnsubscribe && outsOnly.length > 0) {
      // mosquitto: an out topic is unsubscribed on the remote, so that a topic turned from in to out stops coming in
      client.unsubscribe(outsOnly.map((t) => t.remoteTopic)).catch(() => undefined);
    }
    if (ins.length > 0) {
      for (const t of ins) this.log.debug(`Bridge ${c.localClientId} sending SUBSCRIBE (Topic: ${t.remoteTopic}, QoS: ${t.qos})`);
      client.subscribe(ins.map((t) => ({ topic: t.remoteTopic, qos: t.qos, ...(v5 ? { noLocal: true, retainAsPublished: true } : {}) })))
        .then((codes) => {
          codes.forEach((code, i) => {
            if (code >= 0x80) this.log.warning(`Bridge ${c.name}: the remote broker refused the subscription to ${ins[i]!.remoteTopic} (0x${code.toString(16)}).`);
          });
        }, (err: unknown) => this.log.warning(`Bridge ${c.name}: SUBSCRIBE failed (${(err as Error).message}).`));
    }
    if (c.notifications) {
      this.notifyLocal('1');
      if (!c.notificationsLocalOnly) client.publish(c.notificationTopic, '1', { qos: 1, retain: true }).catch(() => undefined);
    }
    // what waited for the remote goes next, in order (what the client had in flight it has sent again already)
    for (const e of this.pending) if (e.via === undefined) this.forward(e, client);
    if (!c.roundRobin && this.addrIndex !== 0) this.probePrimary(client);
    if (c.startType === 'lazy') this.watchIdle(client);
  }

  /** A message from the remote broker for the local one. */
  private fromRemote(m: Message): void {
    this.lastActivity = performance.now();
    const topic = mapIncoming(this.cfg.topics, m.topic);
    const link = this.local;
    if (topic === undefined) {
      m.ack?.();
      return;
    }
    if (link === undefined || link.closed) {
      // not acknowledged: the remote sends it again when the bridge reconnects
      this.stats.dropped++;
      return;
    }
    this.stats.messagesIn++;
    const props = forwardProps(m.properties);
    link.publish(topic, m.payload, m.qos as QoS, m.retain, props).then(() => m.ack?.(), () => { this.stats.dropped++; });
  }

  /** The remote connection is gone; with the automatic start type the client reconnects by itself (retry). */
  private disconnected(client: MqttClient, err: Error | undefined): void {
    if (this.remote !== client || this.stats.state !== 'connected') return;
    clearInterval(this.probeTimer);
    clearInterval(this.lazyTimer);
    this.log.info(`Bridge ${this.cfg.name} disconnected from ${this.addressText()}${err !== undefined ? ` (${describeError(err)})` : ''}.`);
    this.stats.state = 'disconnected';
    if (this.cfg.notifications) this.notifyLocal('0');
  }

  /** The remote client is done for good (start type once or lazy, an idle stop, a switch back to the main address). */
  private ended(client: MqttClient): void {
    if (this.remote !== client) return;
    this.disconnected(client, undefined);
    this.remote = undefined;
    this.stats.state = 'disconnected';
    // what it had in flight was rejected: sent again by the next client
    for (const e of this.pending) if (e.via === client) e.via = undefined;
    if (this.stopped) return;
    const c = this.cfg;
    if (c.startType === 'lazy') { this.watchLazy(); return; }
    if (c.startType === 'once') { this.log.info(`Bridge ${c.name} has start_type once: not restarting.`); return; }
    this.connectRemote(); // automatic: only a switch back to the main address ends a client
  }

  private failed(): void {
    this.stats.state = 'disconnected';
    if (this.stopped) return;
    this.advanceAddress();
    if (this.cfg.startType === 'once') { this.log.info(`Bridge ${this.cfg.name} has start_type once: not restarting.`); return; }
    if (this.cfg.startType === 'lazy') { this.watchLazy(); return; }
    this.scheduleRestart();
  }

  /** mosquitto moves to the next address after every failure (round robin or not). */
  private advanceAddress(): void {
    this.addrIndex = (this.addrIndex + 1) % this.cfg.addresses.length;
  }

  private scheduleRestart(): void {
    const delay = this.restartDelay;
    this.restartDelay = nextRestartDelay(this.cfg, this.restartDelay);
    this.stats.address = this.addressText();
    this.log.info(`Bridge ${this.cfg.name} restarting in ${delay} s (${this.addressText()}).`);
    this.restartTimer = setTimeout(() => this.connectRemote(), delay * 1000);
    this.restartTimer.unref();
  }

  /** round_robin false, on a secondary address: every 5 s, go back to the main one when it accepts connections. */
  private probePrimary(client: MqttClient): void {
    const a = this.cfg.addresses[0]!;
    this.probeTimer = setInterval(() => {
      const s = netConnect({ host: a.host, port: a.port, timeout: 2000 });
      const done = (ok: boolean): void => {
        s.destroy();
        if (!ok || this.remote !== client || this.stopped) return;
        clearInterval(this.probeTimer);
        this.log.info(`Bridge ${this.cfg.name}: the main address ${this.addressText(0)} is back; reconnecting to it.`);
        this.addrIndex = 0;
        this.restartDelay = this.cfg.restartBase;
        // a clean end lets what is in flight finish first; ended() connects the next client, to the main address
        void client.end({ timeout: 5000 });
      };
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
      s.once('timeout', () => done(false));
    }, 5000);
    this.probeTimer.unref();
  }

  /** lazy: connect when the messages waiting for the remote reach `threshold`. */
  private watchLazy(): void {
    clearInterval(this.lazyTimer);
    this.lazyTimer = setInterval(() => {
      if (this.stopped || this.remote !== undefined) return;
      const queued = this.pending.length + (this.broker.sessions.get(this.cfg.localClientId)?.queue.length ?? 0);
      if (queued >= this.cfg.threshold) {
        clearInterval(this.lazyTimer);
        this.connectRemote();
      }
    }, 1000);
    this.lazyTimer.unref();
  }

  /** lazy: disconnect after `idle_timeout` seconds without a message either way. */
  private watchIdle(client: MqttClient): void {
    clearInterval(this.lazyTimer);
    this.lazyTimer = setInterval(() => {
      if (this.remote !== client) return;
      if (performance.now() - this.lastActivity >= this.cfg.idleTimeout * 1000 && this.pending.length === 0) {
        this.log.info(`Bridge ${this.cfg.name} idle for ${this.cfg.idleTimeout} s: stopping it (start_type lazy).`);
        void this.endRemote(client);
      }
    }, 1000);
    this.lazyTimer.unref();
  }

  private async endRemote(client: MqttClient): Promise<void> {
    const c = this.cfg;
    if (c.notifications && !c.notificationsLocalOnly && this.connected) {
      // a clean DISCONNECT does not send the will: say "0" first, as the will would have
      await Promise.race([client.publish(c.notificationTopic, '0', { qos: 1, retain: true }).catch(() => undefined), sleep(2000)]);
    }
    await client.end({ timeout: 2000 });
  }

  private notifyLocal(state: '0' | '1'): void {
    if (!this.cfg.notifications) return;
    try {
      this.broker.publish({ topic: this.cfg.notificationTopic, payload: state, qos: 1, retain: true });
    } catch (err) {
      this.log.error(`Bridge ${this.cfg.name}: notification not published (${(err as Error).message}).`);
    }
  }

  /**
   * Stops the bridge: the remote gets "0" on the notification topic and a DISCONNECT, the local side a
   * DISCONNECT. `discard`: the bridge is gone from the configuration, so its local session goes too
   * (it would queue for nobody).
   */
  async stop(discard = false): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of [this.restartTimer, this.localTimer]) clearTimeout(t);
    for (const t of [this.probeTimer, this.lazyTimer]) clearInterval(t);
    const client = this.remote;
    if (client !== undefined) {
      await this.endRemote(client).catch(() => undefined);
      this.remote = undefined;
    }
    this.stats.state = 'stopped';
    this.notifyLocal('0');
    const link = this.local;
    this.local = undefined;
    if (link !== undefined) {
      link.onClose = () => {};
      link.end();
    }
    if (discard) {
      const c = this.cfg;
      const gone = new LocalLink(this.broker, {
        clientId: c.localClientId, clean: true, name: c.name,
        ...(c.localUsername !== undefined ? { username: c.localUsername } : {}),
        ...(c.localPassword !== undefined ? { password: c.localPassword } : {}),
      });
      await gone.connect().then(() => gone.end(), () => gone.close('failed'));
    }
    this.log.info(`Bridge ${this.cfg.name} stopped.`);
  }
}

/** The size of a PUBLISH without properties: fixed header, topic, packet id, payload. */
function publishSize(topic: string, p: PublishPacket): number {
  const remaining = 2 + Buffer.byteLength(topic) + (p.qos > 0 ? 2 : 0) + p.payload.length;
  return 1 + (remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4) + remaining;
}

function tlsName(v: BridgeConfig['tlsVersion']): 'TLSv1.3' | 'TLSv1.2' | 'TLSv1.1' {
  return v === 'tlsv1.3' ? 'TLSv1.3' : v === 'tlsv1.1' ? 'TLSv1.1' : 'TLSv1.2';
}

/** mosquitto prints strerror: "Connection refused", "No address associated with hostname". */
function describeError(e: Error & { code?: string }): string {
  const code = e.code ?? (e.cause as { code?: string } | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED': return 'Connection refused';
    case 'ENOTFOUND': case 'EAI_AGAIN': return `Unable to resolve the address (${e.message})`;
    case 'ETIMEDOUT': return 'Connection timed out';
    case 'ECONNRESET': return 'Connection reset by peer';
    default: return e.message;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => { const t = setTimeout(r, ms); t.unref(); });
}
