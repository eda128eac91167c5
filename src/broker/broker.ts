import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { encode } from '../codec/index.js';
import type { ConnectPacket, Packet, Properties, ProtocolVersion, PublishPacket, QoS, Subscription, Will } from '../codec/types.js';
import { isShareError, isValidTopicFilter, isValidTopicName, parseSharedSubscription, type SubscriptionTrie } from '../topic/index.js';
import { Connection, type ConnectionInfo } from './connection.js';
import type { PendingAuth } from './handlers/auth.js';
import { Logger, silentLogger } from './log.js';
import { defaultBrokerOptions, type BrokerOptions } from './options.js';
import { Session, ownPayload, type Orphan, type SessionCounters, type SessionEnv, type SubEntry } from './session.js';
import type { SharedGroup } from './shared.js';
import { Router } from './router.js';
import { RetainedMessages } from './retained-messages.js';
import { Wills, type WillOwner } from './wills.js';
import { SessionRegistry, entryFromStored, restoreWindow, sessionFromStored, storedMessages, storedSub } from './session-registry.js';
import type { BrokerHooks, ClientInfo, Message } from './types.js';
import { SysPublisher } from './sys.js';
import { listenAll, type Listener } from '../transport/listen.js';
import { Recorder, fromStored } from './recorder.js';
import type { StoredMessage, StoredSubscription } from '../store/store.js';
import { realClock, type Clock, type ClockTimer } from '../util/clock.js';
import { Traffic } from './traffic.js';

export interface BrokerEvents {
  /** a client's CONNECT was accepted */
  connect: [client: ClientInfo];
  /** a connected client's connection ended (DISCONNECT, socket closed, keepalive, error, takeover) */
  disconnect: [client: ClientInfo];
  /** a message was accepted for routing; `client` is undefined for wills-less broker messages ($SYS) */
  publish: [message: Message, client: ClientInfo | undefined];
  subscribe: [subscriptions: Subscription[], client: ClientInfo];
  unsubscribe: [filters: string[], client: ClientInfo];
  /**
   * a connection failed with an error: a malformed packet or protocol error, a hook that threw, a socket
   * error, an internal error (the client id is '' before its CONNECT was read)
   */
  clientError: [client: ClientInfo, error: Error];
}

export interface BrokerStats extends SessionCounters {
  /** bytes read from clients ($SYS/broker/bytes/received) */
  bytesReceived: number;
  /** bytes of every packet written to clients ($SYS/broker/bytes/sent) */
  bytesSent: number;
  /** packets of any type received ($SYS/broker/messages/received, as mosquitto counts them) */
  messagesReceived: number;
  /** packets of any type sent ($SYS/broker/messages/sent) */
  packetsSent: number;
  /** PUBLISH packets received from clients ($SYS/broker/publish/messages/received) */
  publishReceived: number;
  /** payload bytes of the PUBLISH packets received ($SYS/broker/publish/bytes/received) */
  publishBytesReceived: number;
  /** connections accepted by handle(), before any check ($SYS/broker/load/sockets/...) */
  socketConnections: number;
  /** CONNECT packets received ($SYS/broker/load/connections/...) */
  connectsReceived: number;
  /** sessions ended by their expiry interval ($SYS/broker/clients/expired) */
  clientsExpired: number;
  clientsConnected: number;
  clientsMaximum: number;
  startedAt: number;
  /** times reading from a client was paused because it did not read what it was sent */
  readPauses: number;
}

const SWEEP_MS = 500;
/** how often memory_limit samples the heap */
const MEMORY_SAMPLE_MS = 250;
const NEVER = 0xffffffff;
/** setTimeout's longest delay (2^31 - 1 ms), in whole seconds */
const MAX_TIMER_S = 2_147_483;

/**
 * The broker: sessions, routing, retained messages, wills, keepalive and $SYS.
 * It never opens a socket itself except through `listen()`, which uses the transports;
 * `handle(duplex)` accepts a connection from anywhere (embedding, tests).
 */
export class Broker extends EventEmitter<BrokerEvents> {
  readonly opts: BrokerOptions;
  readonly log: Logger;
  readonly hooks: BrokerHooks;
  /** now() and timers: `opts.clock` or the real clock */
  readonly clock: Clock;
  readonly stats: BrokerStats = {
    bytesReceived: 0, bytesSent: 0, messagesReceived: 0, packetsSent: 0, messagesSent: 0, publishReceived: 0,
    publishBytesReceived: 0, publishBytesSent: 0, socketConnections: 0, connectsReceived: 0, clientsExpired: 0,
    dropped: 0, clientsConnected: 0, clientsMaximum: 0, startedAt: 0, readPauses: 0,
  };
  /** @internal */
  readonly sessions: SessionRegistry;
  /** @internal the subscription trie, shared groups and fan-out */
  readonly router: Router;
  /** @internal retained messages (tree, expiry, limits, the cursor of a new subscription) */
  readonly retained: RetainedMessages;
  /** @internal filter → subscriptions (the router's trie) */
  get subs(): SubscriptionTrie<SubEntry | SharedGroup> { return this.router.subs; }
  /** @internal */
  readonly connections = new Set<Connection>();
  /** @internal plain counters that metrics read at scrape time (packets by type, PUBLISH by QoS, refusals) */
  readonly traffic = new Traffic();
  /** v5 topic aliases a client may use towards us (mosquitto's max_topic_alias) */
  topicAliasMaximum = 10;
  private listeners_: Listener[] = [];
  private sweepTimer: ClockTimer | undefined;
  private readonly sys: SysPublisher;
  /** the limits, counters and drop log every session shares */
  /** @internal the limits, counters and recorder every session shares */
  readonly sessionEnv: SessionEnv;
  private closed = false;
  private timersStarted = false;
  /** @internal wills, and v5 wills waiting for their will delay interval */
  readonly wills: Wills;
  /**
   * @internal The durable store's change recorder: set once `start()` has restored the store's state (persistence
   * on); undefined without a store. Acknowledgements wait for its commits.
   */
  recorder: Recorder | undefined;
  private started: Promise<void> | undefined;
  /**
   * memory_limit: what is measured (V8 heap in use plus Buffers and other external memory). Tests and
   * embedders that measure differently may replace it; it is called every 250 ms, never per message.
   */
  memoryUsed: () => number = () => { const m = process.memoryUsage(); return m.heapUsed + m.external; };
  /** memory_limit: true from a sample over the limit to a sample under it (new PUBLISHes are refused) */
  memoryFull = false;
  private memoryTimer: ClockTimer | undefined;

  constructor(options: Partial<BrokerOptions> = {}) {
    super();
    this.opts = { ...defaultBrokerOptions(), ...options };
    this.log = this.opts.logger ?? silentLogger();
    this.hooks = this.opts.hooks;
    this.clock = this.opts.clock ?? realClock;
    this.stats.startedAt = this.clock.now();
    this.topicAliasMaximum = this.opts.maxTopicAlias;
    this.router = new Router({ hooks: this.hooks, log: this.log, strategy: this.opts.sharedSubscriptionStrategy, clock: this.clock, toMessage });
    this.retained = new RetainedMessages(this);
    this.wills = new Wills(this);
    this.sessions = new SessionRegistry(this);
    const log = this.log;
    this.sessionEnv = {
      maxInflight: this.opts.maxInflightMessages,
      maxQueued: this.opts.maxQueuedMessages,
      maxQueuedBytes: this.opts.maxQueuedBytes,
      maxInflightBytes: this.opts.maxInflightBytes,
      queueQos0: this.opts.queueQos0Messages,
      counters: this.stats,
      traffic: this.traffic,
      onDrop: (sess) => log.info(`Outgoing messages are being dropped for client ${sess.clientId}.`),
    };
    this.sys = new SysPublisher(this);
  }

  /** true from start() (or the first listen() / handle()) having started the timers until close() */
  get running(): boolean { return this.timersStarted && !this.closed; }

  /**
   * Start the broker: restore the durable store's state (sessions, subscriptions, queues, in-flight windows,
   * incoming QoS 2 ids, retained messages, delayed wills) and from then on record every change into it;
   * then start the periodic work: the sweep (keepalive, connect deadline, session and retained expiry), the
   * memory_limit sampler and `$SYS`. Without a store the timers start at once (synchronously). Idempotent;
   * `listen()` calls it, and so does the first `handle()` of a broker without a store (an embedder serving
   * only its own streams needs no call); with a store, call and await it before `handle()`. A closed broker
   * does not start again.
   */
  start(): Promise<void> {
    if (this.started === undefined) {
      if (this.closed) return Promise.resolve();
      if (this.opts.store === undefined) {
        this.startTimers();
        this.started = Promise.resolve();
      } else {
        this.started = this.restore().then(() => { if (!this.closed) this.startTimers(); });
      }
    }
    return this.started;
  }

  private startTimers(): void {
    if (this.timersStarted) return;
    this.timersStarted = true;
    this.sweepTimer = this.clock.setInterval(() => {
      try {
        this.sweep(this.clock.now());
      } catch (err) {
        this.log.error(`internal error in the keepalive sweep: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      }
    }, SWEEP_MS);
    if (this.opts.memoryLimit > 0) this.memoryTimer = this.clock.setInterval(() => this.sampleMemory(), MEMORY_SAMPLE_MS);
    this.sys.start();
  }

  private async restore(): Promise<void> {
    const store = this.opts.store;
    if (store === undefined) return;
    const t0 = Date.now();
    const rec = new Recorder(store, this.log);
    const meta = await store.loadMeta();
    rec.nextMessageId = meta.lastMessageId + 1;
    rec.nextSeq = meta.lastSeq + 1;
    if (this.opts.bus !== undefined) return this.joinCluster(rec, t0);
    const now = this.clock.now();
    // one Message object per stored message, however many queues refer to it
    const message = storedMessages();
    for await (const st of store.loadSessions()) this.sessions.set(st.clientId, sessionFromStored(st, this.sessionEnv, now));
    let subs = 0;
    for await (const { clientId, sub } of store.loadSubscriptions()) {
      const s = this.sessions.get(clientId);
      if (s === undefined) continue;
      this.subscribe(s, entryFromStored(s, sub));
      subs++;
    }
    const expired: string[] = [];
    for await (const { topic, message: m } of store.loadRetained()) {
      if (m.expiresAt !== undefined && m.expiresAt <= now) { expired.push(topic); continue; }
      this.retained.store(message(m));
    }
    let queued = 0;
    for (const s of this.sessions.values()) {
      const w = await store.loadWindow(s.clientId);
      restoreWindow(s, w, message);
      queued += w.queued.length + w.inflight.length;
    }
    // from here on, every change is recorded
    this.recorder = rec;
    this.sessionEnv.recorder = rec;
    // retained messages that expired while the broker was down go (and their removal is recorded)
    for (const topic of expired) rec.add({ op: 'unretain', topic });
    for (const w of await store.loadWills()) {
      const owner: WillOwner = {
        id: w.clientId, username: w.username, listenerPort: w.listenerPort, remoteAddress: 'restored', remotePort: 0,
        protocolVersion: 5, logId: w.clientId, who: `${w.clientId} [restored]`,
      };
      this.wills.delay(w.clientId, w.will, owner, Math.max(0, w.fireAt - now), w.fireAt, false);
    }
    await rec.drain();
    this.log.info(`Store: restored ${this.sessions.size} sessions, ${subs} subscriptions, ${queued} queued and in-flight messages and ${this.retained.size} retained messages in ${Date.now() - t0} ms.`);
  }

  /**
   * A node of a cluster: its sessions come on demand (a CONNECT claims one from the store, or from the node
   * that owns it); what it needs to route is the cluster's retained messages and subscription index.
   */
  private async joinCluster(rec: Recorder, t0: number): Promise<void> {
    const store = this.opts.store!;
    const now = this.clock.now();
    const expired: string[] = [];
    for await (const { topic, message: m } of store.loadRetained()) {
      if (m.expiresAt !== undefined && m.expiresAt <= now) { expired.push(topic); continue; }
      this.retained.store(fromStored(m), false);
    }
    this.recorder = rec;
    this.sessionEnv.recorder = rec;
    for (const topic of expired) rec.add({ op: 'unretain', topic });
    await this.opts.bus!.start(this);
    await rec.drain();
    this.log.info(`Store: ${this.retained.size} retained messages loaded from the cluster in ${Date.now() - t0} ms.`);
  }

  /** Start the broker (start()) and the configured listeners (default: 127.0.0.1:1883). Resolves with the bound addresses. */
  async listen(): Promise<Array<{ host: string; port: number }>> {
    if (this.closed) throw new Error('the broker is closed');
    await this.start();
    const specs = this.opts.listeners.length > 0 ? this.opts.listeners : [{ port: 1883, host: '127.0.0.1' }];
    this.listeners_ = await listenAll(specs, (socket, info) => this.handle(socket, info), this.log, { maxPacketSize: this.opts.maxPacketSize });
    return this.listeners_.map((l) => l.address);
  }

  /** Serve one connection from any transport (starts the broker on first use: see start()). */
  handle(socket: Duplex, info: ConnectionInfo = { remoteAddress: 'unknown', remotePort: 0 }): Connection {
    if (this.started === undefined && this.opts.store === undefined) void this.start();
    this.stats.socketConnections++;
    const conn = new Connection(this, socket, info);
    const max = this.opts.globalMaxConnections;
    if (max > 0 && this.connections.size >= max) {
      this.traffic.refuse('global_max_connections');
      // closed at once, before any packet is read (mosquitto 2.1)
      this.log.conn(`Client connection from ${info.remoteAddress} denied: global_max_connections exceeded.`);
      conn.close('denied', false, '');
      socket.destroy();
      return conn;
    }
    if (this.opts.store !== undefined && this.recorder === undefined) {
      // never serve a client without the durability that was asked for
      this.log.error('Connection refused: the broker has a store but start() has not restored it yet.');
      conn.close('store not started', false, '');
      socket.destroy();
      return conn;
    }
    const pre = this.hooks.preConnect;
    let verdict: boolean | Promise<boolean> = true;
    if (pre !== undefined && info.trusted !== true) {
      try {
        verdict = pre(info);
      } catch (err) {
        verdict = Promise.reject(err);
      }
      // anything but true (or a promise) refuses: a hook that forgot to answer does not let clients in
      if (verdict !== true && typeof (verdict as Promise<boolean> | undefined)?.then !== 'function') {
        this.refuseSocket(conn, info, 'the preConnect hook refused it');
        return conn;
      }
    }
    this.connections.add(conn);
    if (this.log.connOn) {
      this.log.conn(`New connection from ${info.remoteAddress}:${info.remotePort} on port ${info.listenerPort ?? 0}.`,
        { remoteAddress: info.remoteAddress, remotePort: info.remotePort, listenerPort: info.listenerPort });
    }
    if (this.closed) conn.close('broker closing', false, '');
    else if (verdict !== true && typeof (verdict as Promise<boolean>)?.then === 'function') {
      // packets that arrive meanwhile wait behind it (Connection.runAsync); the connect deadline applies
      conn.runAsync(Promise.resolve(verdict).then(
        (ok) => { if (ok !== true && conn.state !== 'closed') this.refuseSocket(conn, info, 'the preConnect hook refused it'); },
        (err: unknown) => {
          this.log.error(`Client connection from ${info.remoteAddress}:${info.remotePort}: the preConnect hook failed: ${err instanceof Error ? err.message : String(err)}`);
          if (conn.state !== 'closed') this.refuseSocket(conn, info, 'the preConnect hook failed');
        },
      ));
    }
    return conn;
  }

  /** preConnect said no: the socket is closed without a word to the peer. */
  private refuseSocket(conn: Connection, info: ConnectionInfo, why: string): void {
    this.traffic.refuse('pre_connect');
    this.log.conn(`Client connection from ${info.remoteAddress}:${info.remotePort} denied: ${why}.`);
    conn.close('denied', false, '');
    conn.socket.destroy();
  }

  /** Stop listening, disconnect every client (v5: DISCONNECT 0x8B), stop every timer ($SYS, sweep, will delays). Final. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearInterval(this.sweepTimer);
    this.clock.clearInterval(this.memoryTimer);
    this.wills.clear();
    this.sys.stop();
    await Promise.all(this.listeners_.map((l) => l.close()));
    for (const c of [...this.connections]) {
      if (c.state === 'connected' && c.protocolVersion === 5) c.writePacket({ type: 'disconnect', reasonCode: 0x8b });
      c.will = undefined;
      c.close('broker shutting down', false, '');
      c.socket.destroy();
    }
    // everything recorded (the sessions' disconnect times among it) is committed before the store closes
    if (this.recorder !== undefined) await this.recorder.drain();
    await this.opts.bus?.close();
    await this.opts.store?.close();
  }

  /** @internal */
  encode(p: Packet, version: ProtocolVersion): Buffer {
    return encode(p, version);
  }

  // ---- sessions ----

  /** @internal Find or create the session for an accepted CONNECT, taking over an existing connection. */
  openSession(conn: Connection, p: ConnectPacket, now: number): { session: Session; present: boolean } {
    return this.sessions.open(conn, p, now);
  }

  /** @internal End a session: its subscriptions go, and a will still waiting for its delay is published now. */
  discardSession(s: Session): void {
    this.sessions.discard(s);
  }

  /** @internal */
  clientConnected(conn: Connection): void {
    this.stats.clientsConnected++;
    if (this.stats.clientsConnected > this.stats.clientsMaximum) this.stats.clientsMaximum = this.stats.clientsConnected;
    this.emitSafely('connect', conn);
  }

  /** @internal Called once per connection when it ends. Publishes the will when the end was abnormal. */
  connectionClosed(conn: Connection, wasConnected: boolean, abnormal: boolean, logLine: string | undefined): void {
    try {
      this.connectionEnded(conn, wasConnected, abnormal, logLine);
    } catch (err) {
      // runs from socket events: nothing may escape to the event loop
      this.log.error(`internal error closing ${conn.logId}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
  }

  private connectionEnded(conn: Connection, wasConnected: boolean, abnormal: boolean, logLine: string | undefined): void {
    this.connections.delete(conn);
    if (logLine && this.log.connOn) this.log.conn(logLine, conn.logFields);
    if (!wasConnected) return;
    this.stats.clientsConnected--;
    const now = this.clock.now();
    const s = conn.session;
    if (s !== undefined && s.outlet === conn) {
      const orphans = s.detach(now);
      if (s.expiryInterval === 0) this.discardSession(s);
      else this.sessions.record(s);
      if (orphans.length > 0) this.router.rehome(orphans, s, now);
    }
    const will = conn.will;
    conn.will = undefined;
    this.opts.bus?.connectionEnded(conn);
    if (abnormal && will !== undefined) {
      const delay = conn.protocolVersion === 5 ? will.properties?.willDelayInterval ?? 0 : 0;
      if (delay > 0 && s !== undefined && this.sessions.get(s.clientId) === s) {
        // the will waits for its delay or the end of the session, whichever comes first [MQTT-3.1.3-9]
        const wait = Math.min(delay, s.expiryInterval, MAX_TIMER_S) * 1000;
        this.wills.delay(s.clientId, will, conn, wait, now + wait, s.stored);
      } else {
        this.wills.publish(will, conn);
      }
    }
    this.emitSafely('disconnect', conn);
  }

  // ---- subscriptions ----

  /**
   * @internal Add or replace a subscription (a `$share/GROUP/FILTER` joins its group), recorded for the store.
   * Returns true if the session already had one to this filter.
   */
  subscribe(session: Session, entry: SubEntry): boolean {
    const existed = session.subscriptions.has(entry.filter);
    session.subscriptions.set(entry.filter, entry);
    if (session.stored) this.recorder?.add({ op: 'sub', clientId: session.clientId, sub: storedSub(entry) });
    this.router.add(session, entry);
    return existed;
  }

  /** @internal */
  unsubscribe(session: Session, filter: string): boolean {
    const entry = session.subscriptions.get(filter);
    if (entry === undefined) return false;
    session.subscriptions.delete(filter);
    if (session.stored) this.recorder?.add({ op: 'unsub', clientId: session.clientId, filter });
    this.router.remove(session, entry);
    return true;
  }

  /** @internal Send the retained messages matching a new subscription (see RetainedMessages.sendTo). */
  sendRetained(session: Session, entry: SubEntry): void {
    this.retained.sendTo(session, entry);
  }

  // ---- routing ----

  /**
   * Publish a message from the application: `{ topic, payload, qos?, retain?, properties? }`. The topic is
   * checked like a client's (a topic name: not empty, no wildcards, at most 65535 bytes): a bad one throws
   * a TypeError. It is retained if asked, then delivered to every matching session; `$SYS/...` is allowed.
   * Returns whether any subscription matched (a shared group counts; read ACLs are not asked here).
   */
  publish(message: PublishInput): boolean {
    return this.publishMessage(toMessage(message, this.clock.now()));
  }

  /**
   * @internal The routing path of handlers, wills and $SYS: a `Message` already checked, with its encoder caches.
   * Retains it if asked, then delivers to every matching session; true when a subscription matched.
   */
  publishMessage(msg: Message, from?: ClientInfo): boolean {
    // an empty payload clears the retained message [MQTT-3.3.1-10]; it is still delivered now
    if (msg.retain) this.retained.onPublish(msg);
    const bus = this.opts.bus;
    const skip = bus === undefined ? undefined : bus.route(msg);
    const matched = this.router.route(msg, skip === undefined ? undefined : { skip });
    if (this.listenerCount('publish') > 0) this.emitSafely('publish', msg, from);
    return matched;
  }

  // ---- limits: global_max_clients, memory_limit and the retained store ----

  /**
   * @internal global_max_clients: would a CONNECT with this client id make one client too many? Clients are the
   * sessions: the connected ones and the durable ones offline. Taking over or resuming a session is
   * never refused.
   */
  tooManyClients(clientId: string): boolean {
    const max = this.opts.globalMaxClients;
    return this.sessions.tooMany(clientId, max);
  }

  /**
   * @internal The early check of a client PUBLISH against memory_limit and the retained limits. False: refused,
   * and already logged and counted; the caller answers QoS 1/2 with 0x97 (quota exceeded) unless the
   * connection was closed (a 3.x publisher over memory_limit is disconnected, as in mosquitto).
   */
  admit(conn: Connection, topic: string, p: PublishPacket): boolean {
    if (this.memoryFull) {
      this.stats.dropped++;
      if (conn.protocolVersion !== 5) {
        conn.close('disconnected due to out of memory', true, `Client ${conn.who} disconnected due to out of memory.`);
      }
      return false;
    }
    if (p.retain && p.payload.length > 0 && (this.opts.maxRetainedMessages > 0 || this.opts.maxRetainedBytes > 0) &&
        this.opts.retainAvailable && !this.retained.mayRetain(topic, p.payload.length)) {
      this.stats.dropped++;
      return false;
    }
    return true;
  }

  /** @internal memory_limit: one sample; the state changes (and is logged) only when it crosses the limit. */
  sampleMemory(): void {
    let used: number;
    try {
      used = this.memoryUsed();
    } catch (err) {
      this.log.error(`memory_limit: measuring memory failed: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const full = used > this.opts.memoryLimit;
    if (full === this.memoryFull) return;
    this.memoryFull = full;
    if (full) this.log.warning(`memory_limit (${this.opts.memoryLimit} bytes) exceeded (${used} bytes in use): new PUBLISHes are refused.`);
    else this.log.info(`Memory use back under memory_limit (${used} of ${this.opts.memoryLimit} bytes): PUBLISHes are accepted again.`);
  }

  /** @internal Embedding code's listeners must not take a connection (or the process) down with them. */
  emitSafely<K extends keyof BrokerEvents>(event: K, ...args: BrokerEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: BrokerEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error(`a '${event}' listener threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // ---- timers ----

  /** A hook or a client that never finishes the exchange before CONNACK cannot hold the connection. */
  private connectTimedOut(c: Connection): void {
    const secs = this.opts.connectTimeout;
    if (c.state === 'new') {
      this.log.conn(`Client <unknown> [${c.remoteAddress}:${c.remotePort}] sent no CONNECT within ${secs} s, disconnecting.`);
      c.close('sent no CONNECT', false, '');
      return;
    }
    const auth = c.auth;
    // a hook still running is the server's fault (CONNACK "server unavailable"); a client that does not answer
    // an AUTH challenge only gets the connection closed
    const hookRunning = auth !== undefined ? auth.stepping : c.busy;
    const waitingFor = auth === undefined ? 'the authenticate hook'
      : hookRunning ? `the '${auth.method}' authentication method` : `the client's answer to the '${auth.method}' AUTH challenge`;
    this.log.info(`Client ${c.who} did not complete CONNECT within ${secs} s (waiting for ${waitingFor}), disconnecting.`);
    if (hookRunning) c.writePacket({ type: 'connack', sessionPresent: false, reasonCode: c.protocolVersion === 5 ? 0x88 : 3 });
    c.close('connect timed out', false, '');
  }

  /** A re-authentication (AUTH 0x19 after CONNACK) has the connect deadline too. */
  private reauthTimedOut(c: Connection, auth: PendingAuth): void {
    const secs = this.opts.connectTimeout;
    const waitingFor = auth.stepping ? `the '${auth.method}' authentication method` : `the client's answer to the '${auth.method}' AUTH challenge`;
    this.log.info(`Client ${c.who} did not complete re-authentication within ${secs} s (waiting for ${waitingFor}), disconnecting.`);
    // 0x87 not authorized: the new authentication did not succeed; 0x89 server busy: our hook did not answer
    c.writePacket({ type: 'disconnect', reasonCode: auth.stepping ? 0x89 : 0x87 });
    c.close('re-authentication timed out', true, '');
  }

  /**
   * One timer for every connection: keepalive (1.5 × keepalive [MQTT-3.1.2-24]), the connect deadline (every
   * state before CONNACK), the re-authentication deadline, session expiry.
   */
  private sweep(now: number): void {
    const deadlineMs = this.opts.connectTimeout * 1000;
    // the deadlines are measured on the monotonic clock; expiry (stored, wall-clock times) on `now`
    const mono = this.clock.monotonic();
    for (const c of this.connections) {
      if (c.state === 'connected') {
        if (c.keepaliveMs > 0 && mono - c.lastActivity > c.keepaliveMs * 1.5) {
          if (c.protocolVersion === 5) c.writePacket({ type: 'disconnect', reasonCode: 0x8d });
          c.close('exceeded timeout', true, `Client ${c.who} has exceeded timeout, disconnecting.`);
          continue;
        }
        const reauth = c.auth;
        if (reauth !== undefined && mono - reauth.startedAt > deadlineMs) this.reauthTimedOut(c, reauth);
      } else if (c.state !== 'closed' && mono - c.openedAt > deadlineMs) {
        this.connectTimedOut(c);
      }
    }
    this.retained.expire(now);
    this.sessions.expire(now);
  }

  // ---- administration (the HTTP admin API and embedders): read and change state from outside MQTT ----

  /** The addresses the MQTT listeners are bound to (after `listen()`). */
  get listenerAddresses(): Array<{ host: string; port: number }> {
    return this.listeners_.map((l) => l.address);
  }

  /**
   * The open `protocol websockets` listener on `port`, with its HTTP(S) server: an HTTP listener can share
   * it (`startHttpListener` with `shareWebSocketListener`). Undefined when there is none.
   */
  webSocketListener(port: number): { host: string; port: number; tls: boolean; server: import('node:http').Server } | undefined {
    const l = this.listeners_.find((x) => x.protocol === 'websockets' && x.address.port === port && x.httpServer !== undefined);
    return l === undefined ? undefined : { ...l.address, tls: l.tls ?? false, server: l.httpServer! };
  }

  /** The listeners with what they speak: `mqtt` (TCP) or `websockets`, and whether TLS is on. */
  get listenerDetails(): Array<{ host: string; port: number; protocol: 'mqtt' | 'websockets'; tls: boolean }> {
    return this.listeners_.map((l) => ({ ...l.address, protocol: l.protocol ?? 'mqtt', tls: l.tls ?? false }));
  }

  /** The connected clients (CONNACK sent, not yet gone), in connection order. */
  clientList(): ClientSummary[] {
    const out: ClientSummary[] = [];
    for (const c of this.connections) if (c.state === 'connected') out.push(clientSummary(c));
    return out;
  }

  /** One connected client by id, or undefined. */
  clientInfo(clientId: string): ClientSummary | undefined {
    const c = this.connectedClient(clientId);
    return c === undefined ? undefined : clientSummary(c);
  }

  /**
   * Disconnect a connected client (MQTT 5: DISCONNECT 0x98 administrative action first). Its will is
   * published, as for any end the client did not ask for. False when no such client is connected.
   */
  disconnectClient(clientId: string): boolean {
    const c = this.connectedClient(clientId);
    if (c === undefined) return false;
    if (c.protocolVersion === 5) c.writePacket({ type: 'disconnect', reasonCode: 0x98 });
    c.close('disconnected by an administrator', true, `Client ${c.who} disconnected by an administrator.`);
    return true;
  }

  /** Every session (connected clients' and durable offline ones), in client id order of creation. */
  sessionList(): SessionSummary[] {
    const out: SessionSummary[] = [];
    for (const s of this.sessions.values()) out.push(sessionSummary(s));
    return out;
  }

  /** One session by client id, with its subscriptions, or undefined. */
  sessionInfo(clientId: string): (SessionSummary & { subscriptions: SubscriptionSummary[] }) | undefined {
    const s = this.sessions.get(clientId);
    if (s === undefined) return undefined;
    return { ...sessionSummary(s), subscriptions: subscriptionsOf(s) };
  }

  /**
   * End a session: its client (if connected) is disconnected first, then the session, its subscriptions,
   * queue and in-flight messages go (a will waiting for its delay is published now). False when unknown.
   */
  deleteSession(clientId: string): boolean {
    if (!this.sessions.has(clientId)) return false;
    this.disconnectClient(clientId);
    const s = this.sessions.get(clientId);
    if (s !== undefined) this.discardSession(s);
    return true;
  }

  /** The subscriptions of a session, or undefined when there is no such session. */
  subscriptionsOf(clientId: string): SubscriptionSummary[] | undefined {
    const s = this.sessions.get(clientId);
    return s === undefined ? undefined : subscriptionsOf(s);
  }

  /**
   * Subscribe a session to a filter as its client could (`$share/GROUP/FILTER` included); matching
   * retained messages are sent to a connected client per `retainHandling`. Throws a TypeError for a bad
   * filter or QoS. Returns undefined when there is no such session, else whether it replaced one.
   */
  addSubscription(clientId: string, sub: { filter: string; qos?: QoS; noLocal?: boolean; retainAsPublished?: boolean; retainHandling?: 0 | 1 | 2 }): boolean | undefined {
    const filter = sub.filter;
    if (typeof filter !== 'string' || !isValidTopicFilter(filter) || isShareError(parseSharedSubscription(filter))) {
      throw new TypeError(`invalid topic filter ${JSON.stringify(filter)}`);
    }
    const qos = sub.qos ?? 0;
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new TypeError(`invalid QoS ${String(qos)} (0, 1 or 2)`);
    const rh = sub.retainHandling ?? 0;
    if (rh !== 0 && rh !== 1 && rh !== 2) throw new TypeError(`invalid retainHandling ${String(rh)} (0, 1 or 2)`);
    if (sub.noLocal === true && filter.startsWith('$share/')) throw new TypeError('noLocal is not allowed on a shared subscription');
    const s = this.sessions.get(clientId);
    if (s === undefined) return undefined;
    const entry: SubEntry = { session: s, filter, qos, noLocal: sub.noLocal === true, retainAsPublished: sub.retainAsPublished === true, retainHandling: rh };
    const existed = this.subscribe(s, entry);
    if (s.online && (rh === 0 || (rh === 1 && !existed))) this.sendRetained(s, entry);
    return existed;
  }

  /** Remove a session's subscription. Undefined when there is no such session, else whether it had one. */
  removeSubscription(clientId: string, filter: string): boolean | undefined {
    const s = this.sessions.get(clientId);
    return s === undefined ? undefined : this.unsubscribe(s, filter);
  }

  /** The retained messages matching a topic filter, unexpired, one at a time. Throws a TypeError for a bad filter. */
  retainedMessages(filter: string): Iterable<Message> {
    if (typeof filter !== 'string' || !isValidTopicFilter(filter)) throw new TypeError(`invalid topic filter ${JSON.stringify(filter)}`);
    return this.retained.browse(filter);
  }

  /** The retained message of a topic (unexpired), or undefined. */
  retainedMessage(topic: string): Message | undefined {
    const m = this.retained.get(topic);
    return m === undefined || (m.expiresAt !== undefined && m.expiresAt <= this.clock.now()) ? undefined : m;
  }

  /** Remove a topic's retained message (as an empty retained PUBLISH would, without delivering one). False when none. */
  deleteRetained(topic: string): boolean {
    if (!this.retained.has(topic)) return false;
    this.retained.clear(topic);
    this.opts.bus?.retainCleared(topic);
    return true;
  }

  /**
   * @internal What metrics read at scrape time: counters and gauges, computed by walking the sessions (never on
   * the message path). Counters only grow.
   */
  metricsSnapshot(): MetricsSnapshot {
    let queued = 0, queuedBytes = 0, inflight = 0, inflightBytes = 0, online = 0;
    for (const s of this.sessions.values()) {
      const n = s.stateCounts;
      queued += n.queued; queuedBytes += n.queuedBytes; inflight += n.inflight; inflightBytes += n.inflightBytes;
      if (s.online) online++;
    }
    return {
      stats: this.stats, traffic: this.traffic, connectionsOpen: this.connections.size, sessions: this.sessions.size,
      sessionsOnline: online, subscriptions: this.subs.size, retained: this.retained.size, retainedBytes: this.retained.bytes,
      queued, queuedBytes, inflight, inflightBytes, storeCommitSeconds: this.recorder?.commitSeconds,
      storeCommits: this.recorder?.counters,
    };
  }

  private connectedClient(clientId: string): Connection | undefined {
    const c = this.sessions.get(clientId)?.outlet;
    return c instanceof Connection && c.state === 'connected' ? c : undefined;
  }
}

/** A connected client, as `clientList()` / `clientInfo()` describe it. */
export interface ClientSummary {
  id: string;
  username?: string;
  remoteAddress: string;
  remotePort: number;
  listenerPort?: number;
  /** 3 (3.1), 4 (3.1.1) or 5 */
  protocolVersion: ProtocolVersion;
  /** when the connection was accepted, ms since the epoch (the broker's clock) */
  connectedAt: number;
  /** seconds, 0 = none */
  keepalive: number;
  subscriptions: number;
  queued: number;
  inflight: number;
}

/** A session, as `sessionList()` / `sessionInfo()` describe it. */
export interface SessionSummary {
  clientId: string;
  username?: string;
  connected: boolean;
  protocolVersion: ProtocolVersion;
  /** seconds the session outlives its connection; 4294967295 = forever */
  expiryInterval: number;
  /** when its client went away, ms since the epoch; absent while connected */
  disconnectedAt?: number;
  subscriptionCount: number;
  queued: number;
  queuedBytes: number;
  inflight: number;
  inflightBytes: number;
}

/** One subscription of a session. */
export interface SubscriptionSummary {
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

/** @internal What metrics read at scrape time (see Broker.metricsSnapshot). */
export interface MetricsSnapshot {
  stats: Readonly<BrokerStats>;
  traffic: Traffic;
  connectionsOpen: number;
  sessions: number;
  sessionsOnline: number;
  subscriptions: number;
  retained: number;
  retainedBytes: number;
  queued: number;
  queuedBytes: number;
  inflight: number;
  inflightBytes: number;
  storeCommitSeconds: Recorder['commitSeconds'] | undefined;
  storeCommits: Recorder['counters'] | undefined;
}

function clientSummary(c: Connection): ClientSummary {
  const s = c.session;
  const n = s?.stateCounts;
  const out: ClientSummary = {
    id: c.id, remoteAddress: c.remoteAddress, remotePort: c.remotePort, protocolVersion: c.protocolVersion,
    connectedAt: c.connectedAt, keepalive: c.keepaliveMs / 1000, subscriptions: s?.hasSubscriptions ? s.subscriptions.size : 0,
    queued: n?.queued ?? 0, inflight: n?.inflight ?? 0,
  };
  if (c.username !== undefined) out.username = c.username;
  if (c.listenerPort !== undefined) out.listenerPort = c.listenerPort;
  return out;
}

function sessionSummary(s: Session): SessionSummary {
  const n = s.stateCounts;
  const out: SessionSummary = {
    clientId: s.clientId, connected: s.online, protocolVersion: s.protocolVersion, expiryInterval: s.expiryInterval,
    subscriptionCount: s.hasSubscriptions ? s.subscriptions.size : 0, ...n,
  };
  if (s.username !== undefined) out.username = s.username;
  if (s.disconnectedAt !== undefined) out.disconnectedAt = s.disconnectedAt;
  return out;
}

function subscriptionsOf(s: Session): SubscriptionSummary[] {
  if (!s.hasSubscriptions) return [];
  return [...s.subscriptions.values()].map((e) => ({
    filter: e.filter, qos: e.qos, noLocal: e.noLocal, retainAsPublished: e.retainAsPublished, retainHandling: e.retainHandling,
    ...(e.subscriptionId !== undefined ? { subscriptionId: e.subscriptionId } : {}),
  }));
}

/** What `broker.publish()` takes from the application. */
export interface PublishInput {
  topic: string;
  payload: Buffer | Uint8Array | string;
  /** default 0 */
  qos?: QoS;
  /** default false */
  retain?: boolean;
  /** MQTT 5 properties passed to v5 subscribers (message expiry, content type, user properties...); no topic alias */
  properties?: Properties;
}

/** A plain message from the application as the internal `Message` (validated; fresh encoder caches). */
function toMessage(m: PublishInput, now: number): Message {
  if (m === null || typeof m !== 'object') throw new TypeError('broker.publish: expected { topic, payload, qos?, retain?, properties? }');
  const { topic, payload } = m;
  if (typeof topic !== 'string' || !isValidTopicName(topic)) {
    throw new TypeError(`broker.publish: invalid topic name ${JSON.stringify(topic)} (a topic name is not empty and has no '+' or '#')`);
  }
  const qos = m.qos ?? 0;
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new TypeError(`broker.publish: invalid QoS ${String(qos)} (0, 1 or 2)`);
  let bytes: Buffer;
  if (typeof payload === 'string') bytes = Buffer.from(payload);
  else if (Buffer.isBuffer(payload)) bytes = payload;
  else if (payload instanceof Uint8Array) bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  else if (payload === undefined || payload === null) bytes = Buffer.alloc(0);
  else throw new TypeError('broker.publish: payload must be a Buffer, a Uint8Array or a string');
  const msg: Message = { topic, payload: bytes, qos, retain: m.retain === true };
  if (m.properties !== undefined) {
    const { topicAlias: _a, subscriptionIdentifiers: _s, ...rest } = m.properties;
    if (Object.keys(rest).length > 0) msg.properties = rest;
    if (rest.messageExpiryInterval !== undefined) msg.expiresAt = now + rest.messageExpiryInterval * 1000;
  }
  return msg;
}

/** Create a broker for embedding: `const b = createBroker({...}); await b.listen();` */
export function createBroker(options: Partial<BrokerOptions> = {}): Broker {
  return new Broker(options);
}



function isSysTopic(topic: string): boolean {
  return topic.charCodeAt(0) === 0x24 && topic.startsWith('$SYS/');
}
