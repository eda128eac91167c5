/**
 * Client options: what `connect(url, options)` accepts, checked and resolved against the URL
 * into the state machine's options plus the transport to open.
 */
import { randomBytes } from 'node:crypto';
import type { Properties, ProtocolVersion, QoS, Will } from '../codec/types.js';
import { isValidTopicName } from '../topic/index.js';
import { getTransport, type TlsOptions, type TransportDefinition } from '../transport/connect.js';
import { InvalidArgumentError } from './errors.js';
import type { ReconnectOptions } from './reconnect.js';
import type { ClientStateOptions } from './types.js';
import type { ConnectProperties, WillProperties } from './types.js';

export interface WillOptions {
  topic: string;
  payload?: string | Buffer | Uint8Array;
  qos?: QoS;
  retain?: boolean;
  properties?: WillProperties;
}

/** 5.0 enhanced authentication (spec 4.12). */
export interface AuthOptions {
  /** the Authentication Method, e.g. 'SCRAM-SHA-1' or 'MIDGE-CHALLENGE' */
  method: string;
  /** Authentication Data sent in CONNECT */
  data?: string | Buffer;
  /**
   * Answers the broker's AUTH 0x18 challenge (during CONNECT, or after `reauthenticate()` when `reauth`);
   * what it returns goes back in AUTH 0x18. Throwing (or rejecting) closes the connection with AuthenticationError.
   */
  onChallenge?(data: Buffer | undefined, reauth: boolean): Buffer | string | undefined | Promise<Buffer | string | undefined>;
}

export interface ConnectOptions {
  /** default: "midge-" and 12 random hex digits (valid for MQTT 3.1 too); '' asks the broker to assign one */
  clientId?: string;
  /** clean session (3.x) / clean start (5.0), default true */
  clean?: boolean;
  /** seconds, default 60; 0 turns keepalive off */
  keepalive?: number;
  will?: WillOptions;
  /** override the URL's user name and password */
  username?: string;
  password?: string | Buffer;
  tls?: TlsOptions;
  /** 3 = MQTT 3.1, 4 = MQTT 3.1.1 (default), 5 = MQTT 5.0 */
  protocolVersion?: ProtocolVersion;
  /** 5.0 CONNECT properties; `topicAliasMaximum` > 0 lets the broker send topic aliases (resolved for you) */
  properties?: ConnectProperties;
  /** 5.0 enhanced authentication */
  auth?: AuthOptions;
  /** 5.0: give every publish a topic alias (up to the broker's Topic Alias Maximum) unless it says `topicAlias: false` */
  autoTopicAlias?: boolean;
  /**
   * 5.0 server redirection: on CONNACK 0x9C/0x9D (or DISCONNECT 0x9C/0x9D) with a Server Reference,
   * connect to that server instead, once (default false: the connection fails with ServerRedirectError)
   */
  followRedirects?: boolean;
  /** ms for the transport handshake plus CONNACK, default 30000 */
  connectTimeout?: number;
  /** ms to wait for PINGRESP, default one keepalive period */
  pingTimeout?: number;
  /** reconnect after a lost connection (default true); the first connection is never retried */
  reconnect?: boolean | ReconnectOptions;
  /** re-subscribe after reconnecting without a session (default true) */
  resubscribe?: boolean;
  /** bound of the outgoing publish queue (offline, or waiting for window room), default 10000 */
  queueLimit?: number;
  /** outgoing QoS 1/2 messages in flight at once, default 65535 (the broker's Receive Maximum lowers it) */
  maxInflight?: number;
  /** WebSocket path, default "/mqtt" */
  wsPath?: string;
  /** local address to bind the outgoing socket to */
  localAddress?: string;
  /** messages kept while no 'message' listener exists, default 1000 (oldest dropped) */
  unclaimedLimit?: number;
  /**
   * 3.1 / 3.1.1: announce a bridge (the 0x80 bit of the protocol level, mosquitto's `try_private`): a broker
   * that knows it does not send the bridge's own messages back to it and keeps retained flags as published
   */
  bridge?: boolean;
  /**
   * Acknowledge incoming QoS 1/2 messages yourself (`message.ack()`), e.g. after storing them, instead
   * of on receipt (default false): a message that was not acknowledged is sent again after a reconnect.
   */
  manualAck?: boolean;
}

export interface ResolvedOptions {
  scheme: string;
  host: string;
  port: number;
  transport: TransportDefinition;
  tls?: TlsOptions;
  wsPath?: string;
  localAddress?: string;
  unclaimedLimit: number;
  connectTimeout: number;
  reconnect: ReconnectOptions | false;
  followRedirects: boolean;
  onChallenge?: AuthOptions['onChallenge'];
  state: ClientStateOptions;
}

export function toBuffer(value: string | Buffer | Uint8Array | undefined): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function isQoS(q: unknown): q is QoS {
  return q === 0 || q === 1 || q === 2;
}

function integer(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** 'midge-' + 12 hex digits: 18 characters, within MQTT 3.1's 23. */
export function generateClientId(prefix = 'midge-'): string {
  return prefix + randomBytes(6).toString('hex');
}

/** Throws InvalidArgumentError for anything the broker would refuse or the codec could not encode. */
export function resolveOptions(url: string | URL, options: ConnectOptions = {}): ResolvedOptions {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    throw new InvalidArgumentError(`not a URL: ${String(url)}`);
  }
  const scheme = u.protocol.replace(/:$/, '').toLowerCase();
  const transport = getTransport(scheme);
  if (!transport) throw new InvalidArgumentError(`unsupported URL scheme '${scheme}:'`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = u.port ? Number(u.port) : transport.defaultPort;
  const version = options.protocolVersion ?? 4;
  if (version !== 3 && version !== 4 && version !== 5) throw new InvalidArgumentError(`protocolVersion must be 3, 4 or 5`);

  const username = options.username ?? (u.username ? decodeURIComponent(u.username) : undefined);
  const rawPassword = options.password ?? (u.password ? decodeURIComponent(u.password) : undefined);
  const clientId = options.clientId ?? generateClientId();
  const clean = options.clean ?? true;
  if (clientId === '' && !clean && version !== 5) {
    throw new InvalidArgumentError('a persistent session (clean: false) needs a client id');
  }

  let will: Will | undefined;
  if (options.will) {
    const w = options.will;
    if (!isValidTopicName(w.topic)) throw new InvalidArgumentError(`invalid will topic '${w.topic}'`);
    const qos = w.qos ?? 0;
    if (!isQoS(qos)) throw new InvalidArgumentError(`invalid will QoS ${String(qos)}`);
    will = { topic: w.topic, payload: toBuffer(w.payload), qos, retain: w.retain ?? false };
    if (w.properties && version === 5) will.properties = w.properties;
  }

  const state: ClientStateOptions = {
    protocolVersion: version,
    clientId,
    clean,
    keepalive: integer('keepalive', options.keepalive, 60, 0, 65535),
    connectTimeout: integer('connectTimeout', options.connectTimeout, 30_000, 1, 2 ** 31 - 1),
    maxInflight: integer('maxInflight', options.maxInflight, 65535, 1, 65535),
    queueLimit: integer('queueLimit', options.queueLimit, 10_000, 0, 2 ** 31 - 1),
    resubscribe: options.resubscribe ?? true,
  };
  if (options.pingTimeout !== undefined) state.pingTimeout = integer('pingTimeout', options.pingTimeout, 0, 1, 2 ** 31 - 1);
  if (will) state.will = will;
  if (username !== undefined) state.username = username;
  if (rawPassword !== undefined) state.password = toBuffer(rawPassword);
  if (options.properties && version === 5) state.properties = options.properties as Properties;
  if (options.auth && version !== 5) throw new InvalidArgumentError('enhanced authentication (auth) needs protocolVersion 5');
  if (options.auth) {
    if (typeof options.auth.method !== 'string' || options.auth.method === '') throw new InvalidArgumentError('auth.method must be a non-empty string');
    state.auth = { method: options.auth.method, ...(options.auth.data !== undefined ? { data: toBuffer(options.auth.data) } : {}) };
  }
  if (options.autoTopicAlias === true) state.autoTopicAlias = true;
  if (options.bridge === true && version !== 5) state.bridge = true;
  if (options.manualAck === true) state.manualAck = true;

  const resolved: ResolvedOptions = {
    scheme, host, port, transport,
    connectTimeout: state.connectTimeout,
    unclaimedLimit: integer('unclaimedLimit', options.unclaimedLimit, 1000, 0, 2 ** 31 - 1),
    reconnect: options.reconnect === false ? false : options.reconnect === true || options.reconnect === undefined ? {} : options.reconnect,
    followRedirects: options.followRedirects === true,
    state,
  };
  if (options.auth?.onChallenge && version === 5) resolved.onChallenge = options.auth.onChallenge.bind(options.auth);
  if (options.tls) resolved.tls = options.tls;
  if (options.localAddress) resolved.localAddress = options.localAddress;
  const path = options.wsPath ?? (u.pathname && u.pathname !== '/' ? u.pathname : undefined);
  if (path !== undefined) resolved.wsPath = path;
  return resolved;
}
