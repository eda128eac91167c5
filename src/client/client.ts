/**
 * The client's I/O shell: opens the transport, feeds the parser, runs the keepalive timer and
 * reconnects with backoff. All protocol decisions are made by the pure ClientState (state.ts);
 * this file only carries out its actions.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { Parser, encode } from '../codec/index.js';
import type { Packet, ProtocolVersion, Subscription } from '../codec/types.js';
import { isValidTopicFilter, isValidTopicName } from '../topic/index.js';
import type { ConnackInfo } from './connack.js';
import { answerChallenge } from './auth.js';
import { AuthenticationError, ClientClosedError, ClientError, ConnectionLostError, InvalidArgumentError, TransportError } from './errors.js';
import { MessageIterator, type MessagesOptions, type SubscriptionOwner } from './messages.js';
import { isQoS, resolveOptions, toBuffer, type ConnectOptions, type ResolvedOptions } from './options.js';
import { redirectOf } from './redirect.js';
import { Backoff } from './reconnect.js';
import { ClientState, type Action } from './state.js';
import type { ClientEvents, EndOptions, PublishOptions, SubscribeOptions } from './api-types.js';
import type { Message, UnsubscribeProperties } from './types.js';

export type { ClientEvents, EndOptions, PublishOptions, SubscribeOptions } from './api-types.js';

export interface MqttClient {
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  once<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  emit<E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): boolean;
}

type Pending = { resolve(value: unknown): void; reject(error: Error): void };

export class MqttClient extends EventEmitter {
  private readonly state: ClientState;
  private readonly backoff: Backoff;
  private readonly pending = new Map<number, Pending>();
  private socket: Duplex | undefined;
  private parser: Parser | undefined;
  private closeError: Error | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private established = false;
  /** where the next connection goes (a redirect changes it) and whether the current one followed a redirect */
  private target: { host: string; port: number };
  private redirected = false;
  private home: { host: string; port: number };
  private first: Pending | undefined;
  private endPromise: Promise<void> | undefined;
  private endResolve: (() => void) | undefined;
  private ended = false;
  /** a plain (mqtt://) connection has not received its first bytes yet: they are checked for a TLS record */
  private sniffTls = false;
  /** messages that came while nobody listened (e.g. right after CONNACK, before connect() resolved) */
  private readonly unclaimed: Message[] = [];
  /** filters the application subscribed with subscribe() (messages() iterators leave those alone) */
  private readonly explicit = new Set<string>();
  /** subscriptions made by messages() iterators: filter → iterators sharing it */
  private readonly iterating = new Map<string, { count: number; ready: Promise<boolean> }>();
  private readonly owner: SubscriptionOwner = {
    acquire: (filter, options) => this.acquire(filter, options),
    release: (filter) => this.release(filter),
  };

  /** Use `connect()`; the constructor does not open anything. */
  constructor(readonly options: ResolvedOptions) {
    super();
    this.state = new ClientState(options.state);
    this.backoff = new Backoff(options.reconnect || {});
    this.target = { host: options.host, port: options.port };
    this.home = this.target;
    this.on('newListener', (event) => {
      if (event === 'message' && this.unclaimed.length > 0) queueMicrotask(() => this.flushUnclaimed());
    });
  }

  get connected(): boolean { return this.state.status === 'connected'; }
  /** the client id in use (the broker's assigned one in 5.0 when we sent '') */
  get clientId(): string { return this.state.clientId; }
  get protocolVersion(): ProtocolVersion { return this.state.version; }
  /**
   * What the broker's last successful CONNACK said: session present, assigned client id, server keep
   * alive, receive maximum, maximum packet size, topic alias maximum, maximum QoS, retain / wildcard /
   * subscription id / shared subscription availability, response information, server reference,
   * reason string, user properties (5.0 defaults filled in). Undefined before the first CONNACK.
   */
  get connack(): ConnackInfo | undefined { return this.established ? this.state.server : undefined; }
  /** the host and port of the current (or next) connection; a followed redirect changes them */
  get server(): { host: string; port: number } { return { ...this.target }; }
  /** outgoing QoS 1/2 messages in flight plus publishes waiting in the queue */
  get pendingPublishes(): number { return this.state.inflightCount + this.state.queuedCount; }

  /** Opens the first connection; resolves at the first CONNACK, rejects (and closes) if it fails. */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.first = { resolve: () => resolve(), reject };
      void this.open();
    });
  }

  /**
   * QoS 1 and 2 resolve with the packet id when the flow completes (PUBACK / PUBCOMP); QoS 0 has no packet
   * id and resolves to undefined once written to the socket (or queued while offline and then written).
   */
  publish(topic: string, payload?: string | Buffer | Uint8Array, options?: PublishOptions & { qos?: 0 }): Promise<undefined>;
  publish(topic: string, payload: string | Buffer | Uint8Array | undefined, options: PublishOptions & { qos: 1 | 2 }): Promise<number>;
  publish(topic: string, payload?: string | Buffer | Uint8Array, options?: PublishOptions): Promise<number | undefined>;
  publish(topic: string, payload: string | Buffer | Uint8Array = Buffer.alloc(0), options: PublishOptions = {}): Promise<number | undefined> {
    const qos = options.qos ?? 0;
    if (typeof topic !== 'string' || !isValidTopicName(topic)) return Promise.reject(new InvalidArgumentError(`invalid topic name '${String(topic)}'`));
    if (!isQoS(qos)) return Promise.reject(new InvalidArgumentError(`invalid QoS ${String(qos)}`));
    const alias = options.topicAlias;
    if (alias !== undefined && alias !== false && alias !== 'auto' && !(Number.isInteger(alias) && alias >= 1 && alias <= 65535)) {
      return Promise.reject(new InvalidArgumentError(`invalid topic alias ${String(alias)}`));
    }
    const message = {
      topic, payload: toBuffer(payload), qos, retain: options.retain ?? false,
      ...(options.properties ? { properties: options.properties } : {}), ...(alias !== undefined ? { topicAlias: alias } : {}),
    };
    return this.run<number | undefined>((now) => this.state.publish(message, now));
  }

  /** One filter resolves to its granted QoS, an array to the granted QoS of each. */
  subscribe(topic: string | Subscription, options?: SubscribeOptions): Promise<number>;
  subscribe(topics: Array<string | Subscription>, options?: SubscribeOptions): Promise<number[]>;
  subscribe(topics: string | Subscription | Array<string | Subscription>, options: SubscribeOptions = {}): Promise<number | number[]> {
    const list = Array.isArray(topics) ? topics : [topics];
    const subs: Subscription[] = [];
    for (const t of list) {
      const s: Subscription = typeof t === 'string' ? { topic: t, qos: options.qos ?? 0 } : { ...t };
      if (typeof t === 'string') {
        if (options.noLocal !== undefined) s.noLocal = options.noLocal;
        if (options.retainAsPublished !== undefined) s.retainAsPublished = options.retainAsPublished;
        if (options.retainHandling !== undefined) s.retainHandling = options.retainHandling;
      }
      if (!isValidTopicFilter(s.topic)) return Promise.reject(new InvalidArgumentError(`invalid topic filter '${s.topic}'`));
      // [MQTT-3.8.3-4] no-local on a shared subscription is a protocol error
      if (s.noLocal && s.topic.startsWith('$share/')) return Promise.reject(new InvalidArgumentError(`no-local on shared subscription '${s.topic}'`));
      if (!isQoS(s.qos)) return Promise.reject(new InvalidArgumentError(`invalid QoS ${String(s.qos)}`));
      subs.push(s);
    }
    if (subs.length === 0) return Promise.reject(new InvalidArgumentError('no topic filter given'));
    let properties = options.properties;
    const id = options.subscriptionIdentifier;
    if (id !== undefined) {
      if (!Number.isInteger(id) || id < 1 || id > 268_435_455) return Promise.reject(new InvalidArgumentError(`invalid subscription identifier ${String(id)}`));
      properties = { ...properties, subscriptionIdentifiers: [id] };
    }
    const result = this.run<number[]>((now) => this.state.subscribe(subs, properties, now));
    // the application's own subscriptions: a messages() iterator on one of them does not unsubscribe it
    for (const s of subs) this.explicit.add(s.topic);
    return Array.isArray(topics) ? result : result.then((codes) => codes[0]!);
  }

  /** A messages() iterator's first pull: subscribe, or share an iterator's subscription, or use the application's. */
  private acquire(filter: string, options: SubscribeOptions): Promise<boolean> {
    if (this.explicit.has(filter)) return Promise.resolve(false);
    const shared = this.iterating.get(filter);
    if (shared !== undefined) {
      shared.count++;
      return shared.ready;
    }
    const entry = { count: 1, ready: Promise.resolve(true) };
    entry.ready = this.subscribe(filter, options).then(() => true, (err: unknown) => {
      if (this.iterating.get(filter) === entry) this.iterating.delete(filter);
      throw err;
    });
    this.explicit.delete(filter); // subscribe() marked it: it is the iterators'
    this.iterating.set(filter, entry);
    return entry.ready;
  }

  /** An iterator stopped: the last one of a filter unsubscribes (unless the application subscribed it since). */
  private release(filter: string): void {
    const entry = this.iterating.get(filter);
    if (entry === undefined || --entry.count > 0) return;
    this.iterating.delete(filter);
    if (this.explicit.has(filter) || this.state.status === 'closed' || this.state.isEnding) return;
    this.unsubscribe(filter).catch(() => undefined);
  }

  /** Resolves when UNSUBACK comes (5.0: with its reason codes). */
  unsubscribe(topics: string | string[], properties?: UnsubscribeProperties): Promise<number[]> {
    const list = Array.isArray(topics) ? topics : [topics];
    const bad = list.find((t) => !isValidTopicFilter(t));
    if (bad !== undefined || list.length === 0) return Promise.reject(new InvalidArgumentError(`invalid topic filter '${bad ?? ''}'`));
    for (const t of list) this.explicit.delete(t);
    return this.run<number[]>((now) => this.state.unsubscribe(list, properties, now));
  }

  /**
   * 5.0 re-authentication (AUTH 0x19 with the `auth` option's method and `data`); the broker's
   * challenges go to `auth.onChallenge(data, true)`. Resolves with the broker's final authentication
   * data; rejects when the broker refuses (it then disconnects: ConnectionLostError with its reason code).
   */
  reauthenticate(data?: string | Buffer): Promise<Buffer | undefined> {
    return this.run<Buffer | undefined>((now) => this.state.reauthenticate(data === undefined ? undefined : toBuffer(data), now));
  }

  /**
   * Received messages as an async iterator. With a `filter` it owns its subscription: it subscribes on the
   * first pull (with `options`' qos, noLocal, retainHandling, subscriptionIdentifier...) and unsubscribes on
   * `break` / `return()`; iterators on one filter share one subscription. A filter subscribed with
   * `subscribe()` stays the application's (only filtered), as does any with `subscribe: false`.
   * Without a filter: every message, no subscription. See MessagesOptions for the buffer bound.
   */
  messages(filter?: string, options?: MessagesOptions): AsyncIterableIterator<Message> {
    if (filter !== undefined && !isValidTopicFilter(filter)) throw new InvalidArgumentError(`invalid topic filter '${filter}'`);
    return new MessageIterator(this, filter, options, this.owner);
  }

  /** Waits for in-flight messages (unless `force`), sends DISCONNECT and closes. Never rejects. */
  end(options: EndOptions = {}): Promise<void> {
    if (this.endPromise) return this.endPromise;
    if (this.ended) return (this.endPromise = Promise.resolve());
    this.endPromise = new Promise<void>((resolve) => { this.endResolve = resolve; });
    clearTimeout(this.reconnectTimer);
    this.apply(this.state.end(performance.now(), options.force ?? false, options.reasonCode, options.properties));
    if (this.state.status !== 'closed') {
      this.drainTimer = setTimeout(() => this.apply(this.state.end(performance.now(), true, options.reasonCode, options.properties)), options.timeout ?? 10_000);
    }
    return this.endPromise;
  }

  private run<T>(call: (now: number) => { op: number; actions: Action[] }): Promise<T> {
    const { op, actions } = call(performance.now());
    const promise = new Promise<T>((resolve, reject) => {
      this.pending.set(op, { resolve: resolve as (v: unknown) => void, reject });
    });
    this.apply(actions);
    return promise;
  }

  private async open(): Promise<void> {
    const o = this.options;
    let socket: Duplex;
    try {
      socket = await o.transport.open({
        host: this.target.host, port: this.target.port, timeout: o.connectTimeout,
        ...(o.tls ? { tls: o.tls } : {}), ...(o.wsPath ? { path: o.wsPath } : {}),
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      });
    } catch (err) {
      this.lost(err instanceof Error ? err : new ClientError(String(err)));
      return;
    }
    if (this.state.status === 'closed') {
      socket.destroy();
      return;
    }
    this.socket = socket;
    this.closeError = undefined;
    this.sniffTls = o.scheme === 'mqtt' || o.scheme === 'tcp';
    const ours = this.state.version === 5 ? o.state.properties?.maximumPacketSize : undefined;
    this.parser = new Parser({ protocolVersion: this.state.version, ...(ours ? { maxPacketSize: ours } : {}) });
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (err: Error) => { this.closeError ??= new ConnectionLostError(err.message, undefined, { cause: err }); });
    socket.on('close', () => this.onClose(socket));
    this.apply(this.state.open(performance.now()));
  }

  private onData(socket: Duplex, chunk: Buffer): void {
    if (socket !== this.socket || !this.parser) return;
    if (this.sniffTls) {
      this.sniffTls = false;
      if (isTlsRecord(chunk)) {
        // the port speaks TLS: its answer to our CONNECT is an alert (or a handshake), not a CONNACK
        const { host, port } = this.target;
        this.closeError = new TransportError(
          `${host}:${port} answered with TLS, not MQTT: the port expects TLS (use mqtts://${host.includes(':') ? `[${host}]` : host}:${port})`,
          'EPROTO', false);
        socket.destroy();
        return;
      }
    }
    const packets: Packet[] = [];
    let error: Error | undefined;
    try {
      this.parser.parse(chunk, (p) => { packets.push(p); });
    } catch (err) {
      error = err instanceof Error ? err : new ClientError(String(err));
    }
    for (const p of packets) {
      if (socket !== this.socket) return;
      this.emitSafe('packetreceive', p);
      this.apply(this.state.handle(p, performance.now()));
    }
    if (error && socket === this.socket) this.apply(this.state.parseError(error, performance.now()));
  }

  private onClose(socket: Duplex): void {
    if (socket !== this.socket) return;
    if (this.sniffTls && this.closeError === undefined) {
      // not one byte came back on a plain connection: TLS servers built on OpenSSL (mosquitto, node) close
      // so when they get a CONNECT instead of a ClientHello
      const { host, port } = this.target;
      this.closeError = new ConnectionLostError(`connection closed by the broker before any answer to CONNECT (if ${host}:${port} expects TLS, use mqtts://)`);
    }
    this.sniffTls = false;
    this.socket = undefined;
    this.parser = undefined;
    clearTimeout(this.keepaliveTimer);
    this.lost(this.closeError);
  }

  /** The connection is gone (or never came): reconnect, or close for good. */
  private lost(error: Error | undefined): void {
    this.apply(this.state.connectionLost());
    const wasEnding = this.state.status === 'closed' || this.state.isEnding;
    if (!wasEnding) this.emitSafe('offline', error ?? new ConnectionLostError('connection closed by the broker'));
    if (this.state.status === 'closed') return this.finish();
    if (this.followRedirect(error)) return;
    const reason = error ?? new ConnectionLostError('connection closed by the broker');
    if (!this.established || this.state.isEnding || this.options.reconnect === false) {
      const final = this.state.isEnding ? new ClientClosedError('client ended before the operation completed')
        : !this.established || reason instanceof ConnectionLostError ? reason
          : new ConnectionLostError(reason.message, (reason as { reasonCode?: number }).reasonCode, { cause: reason });
      this.apply(this.state.shutdown(final));
      if (this.first) {
        const f = this.first;
        this.first = undefined;
        f.reject(reason);
      }
      return this.finish();
    }
    if (error && this.listenerCount('error') > 0) this.emitSafe('error', error);
    const strategy = this.options.reconnect.strategy;
    let delay: number;
    if (strategy !== undefined) {
      this.backoff.next(); // counts the attempt
      const choice = strategy(this.backoff.attempts, reason);
      delay = Math.max(0, choice.delay);
      if (choice.host !== undefined) this.home = { host: choice.host, port: choice.port ?? this.home.port };
    } else {
      delay = this.backoff.next();
    }
    this.target = this.home;
    this.redirected = false;
    this.reconnectTimer = setTimeout(() => {
      if (this.state.status === 'closed') return;
      this.emitSafe('reconnect', this.backoff.attempts);
      void this.open();
    }, delay);
  }

  /**
   * `followRedirects`: a CONNACK or DISCONNECT 0x9C/0x9D with a usable Server Reference sends the next
   * connection there at once; a second redirect in a row is not followed. 0x9D (moved) is permanent:
   * reconnects keep going to the new server.
   */
  private followRedirect(error: Error | undefined): boolean {
    if (!this.options.followRedirects || this.state.status === 'closed' || this.state.isEnding || this.redirected) return false;
    const redirect = redirectOf(error, this.target.port);
    if (!redirect) return false;
    this.redirected = true;
    this.target = redirect.target;
    if (redirect.moved) this.home = redirect.target;
    void this.open();
    return true;
  }

  private finish(): void {
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.drainTimer);
    this.endResolve?.();
    if (this.ended) return;
    this.ended = true;
    this.emitSafe('end');
  }

  private apply(actions: Action[]): void {
    const out: Buffer[] = [];
    const flush = (): void => {
      if (out.length === 0) return;
      const data = out.length === 1 ? out[0]! : Buffer.concat(out);
      out.length = 0;
      if (this.socket && !this.socket.destroyed) this.socket.write(data);
    };
    for (const a of actions) {
      switch (a.type) {
        case 'send': {
          try {
            out.push(a.bytes ?? encode(a.packet, this.state.version));
          } catch (err) {
            flush();
            this.closeSocket(err instanceof Error ? err : new ClientError(String(err)));
            return;
          }
          this.emitSafe('packetsend', a.packet, a.mid ?? (a.packet as { packetId?: number }).packetId);
          break;
        }
        case 'message': this.deliver(a.message); break;
        case 'resolve': case 'reject': {
          const p = this.pending.get(a.op);
          if (!p) break;
          this.pending.delete(a.op);
          if (a.type === 'resolve') p.resolve(a.value); else p.reject(a.error);
          break;
        }
        case 'connected': {
          this.established = true;
          this.redirected = false;
          this.backoff.reset();
          if (this.first) {
            const f = this.first;
            this.first = undefined;
            f.resolve(undefined);
          }
          this.emitSafe('connect', a.connack);
          break;
        }
        case 'auth': this.challenge(a.token, a.data, a.reauth); break;
        case 'close': flush(); this.closeSocket(a.error); break;
      }
    }
    flush();
    this.armKeepalive();
  }

  /** Runs `auth.onChallenge` for an AUTH 0x18 from the broker and sends its answer. */
  private challenge(token: number, data: Buffer | undefined, reauth: boolean): void {
    void answerChallenge(this.options.onChallenge, data, reauth).then(
      (value) => this.apply(this.state.authRespond(token, value, performance.now())),
      (error: AuthenticationError) => this.apply(this.state.authFailed(token, error)),
    );
  }

  private closeSocket(error: Error | undefined): void {
    clearTimeout(this.keepaliveTimer);
    const socket = this.socket;
    if (!socket) {
      if (this.state.status === 'closed') this.finish();
      return;
    }
    if (error) {
      this.closeError = error;
      socket.destroy();
    } else {
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    }
  }

  private armKeepalive(): void {
    clearTimeout(this.keepaliveTimer);
    const deadline = this.state.nextDeadline();
    if (deadline === undefined || !this.socket) return;
    this.keepaliveTimer = setTimeout(() => this.apply(this.state.tick(performance.now())), Math.max(0, deadline - performance.now()));
    this.keepaliveTimer.unref();
  }

  /**
   * Messages that arrive while no 'message' listener (or iterator) exists are kept, up to
   * `unclaimedLimit` (oldest dropped), and handed to the first one that is added.
   */
  private deliver(message: Message): void {
    const token = message.ackToken;
    if (token !== undefined) {
      delete message.ackToken;
      let done = false;
      message.ack = () => {
        if (done) return;
        done = true;
        this.apply(this.state.acknowledge(token, performance.now()));
      };
    }
    if (this.listenerCount('message') > 0) {
      this.emitSafe('message', message);
      return;
    }
    this.unclaimed.push(message);
    if (this.unclaimed.length > this.options.unclaimedLimit) this.unclaimed.shift();
  }

  private flushUnclaimed(): void {
    while (this.unclaimed.length > 0 && this.listenerCount('message') > 0) this.emitSafe('message', this.unclaimed.shift()!);
  }

  /** A listener that throws must not break the protocol state: rethrow it on its own tick. */
  private emitSafe<E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      process.nextTick(() => { throw err; });
    }
  }
}

/**
 * A TLS record header (RFC 8446 5.1): content type alert (0x15) or handshake (0x16), then the legacy
 * version 0x03 0x00..0x04. No MQTT packet from a broker starts so: 0x15/0x16 are CONNECT with flags
 * set, which a server never sends.
 */
export function isTlsRecord(b: Buffer): boolean {
  return b.length >= 3 && (b[0] === 0x15 || b[0] === 0x16) && b[1] === 0x03 && b[2]! <= 0x04;
}

/**
 * Connects and resolves once the broker accepted (CONNACK 0). Rejects with ConnectionRefusedError,
 * TransportError, TimeoutError or InvalidArgumentError; a failed first connection is not retried.
 */
export async function connect(url: string | URL, options: ConnectOptions = {}): Promise<MqttClient> {
  const client = new MqttClient(resolveOptions(url, options));
  await client.start();
  return client;
}

