/**
 * Mosquitto's bridge configuration (mosquitto.conf(5), "Configuring Bridges"): `connection NAME` starts a
 * bridge and the bridge keys after it apply to that bridge, up to the next `connection` (a `listener` line
 * does not end it, as in mosquitto). A bridge key before any `connection` is an error naming file and line.
 * Defaults are mosquitto's; what Midge cannot honour stays an error (unsupported.ts).
 */
import { hostname } from 'node:os';
import { isValidTopicFilter, isValidTopicName } from '../topic/index.js';
import { shorten } from '../util/text.js';
import { ConfigError } from './errors.js';
import type { Loc } from './keys.js';
import { invalid, parseBoolean, parseInteger } from './keys.js';

export type BridgeDirection = 'out' | 'in' | 'both';

export interface BridgeTopic {
  /** the pattern as written; undefined for `""` */
  pattern?: string;
  direction: BridgeDirection;
  qos: 0 | 1 | 2;
  /** undefined for `""` or when no prefixes are given */
  localPrefix?: string;
  remotePrefix?: string;
  /** the filter subscribed to on the local broker (out, both): local prefix + pattern */
  localTopic: string;
  /** the filter subscribed to on the remote broker (in, both): remote prefix + pattern */
  remoteTopic: string;
  /** where the `topic` line is */
  at: Loc;
}

export interface BridgeAddress { host: string; port: number }

export interface BridgeConfig {
  /** `connection NAME` */
  name: string;
  /** where the `connection` line is */
  at: Loc;
  /** `address` / `addresses`: one or more host[:port] (default port 1883) */
  addresses: BridgeAddress[];
  /** `round_robin`: default false (the first address is the main one) */
  roundRobin: boolean;
  topics: BridgeTopic[];
  /** `bridge_protocol_version`: 3 (mqttv31), 4 (mqttv311, default), 5 (mqttv50) */
  protocolVersion: 3 | 4 | 5;
  /** `cleansession`: default false */
  cleanSession: boolean;
  /** `local_cleansession`: default the value of cleansession */
  localCleanSession?: boolean;
  /** `remote_clientid` / `clientid`: default HOSTNAME.NAME (filled in when the file is read) */
  remoteClientId: string;
  /** `local_clientid`: default local.REMOTE_CLIENTID */
  localClientId: string;
  remoteUsername?: string;
  remotePassword?: string;
  localUsername?: string;
  localPassword?: string;
  /** `keepalive_interval`: seconds, default 60, at least 5 */
  keepalive: number;
  /** `restart_timeout`: seconds; constant (cap undefined) or base and cap of a decorrelated-jitter backoff (default 5 30) */
  restartBase: number;
  restartCap?: number;
  /** `start_type`: default automatic */
  startType: 'automatic' | 'lazy' | 'once';
  /** `idle_timeout`: seconds, default 60 (lazy) */
  idleTimeout: number;
  /** `threshold`: queued messages that start a lazy bridge, default 10 */
  threshold: number;
  /** `notifications`: default true */
  notifications: boolean;
  /** `notification_topic`: default $SYS/broker/connection/REMOTE_CLIENTID/state */
  notificationTopic: string;
  /** `notifications_local_only`: default false */
  notificationsLocalOnly: boolean;
  /** `try_private`: default true */
  tryPrivate: boolean;
  /** `bridge_outgoing_retain`: default true */
  outgoingRetain: boolean;
  /** `bridge_attempt_unsubscribe`: default true */
  attemptUnsubscribe: boolean;
  /** `bridge_max_packet_size`: default 0 = no limit */
  maxPacketSize: number;
  /** `bridge_receive_maximum`: default 65535 */
  receiveMaximum: number;
  /** `bridge_session_expiry_interval`: seconds (5.0), default 0 */
  sessionExpiryInterval: number;
  /** `bridge_bind_address` */
  bindAddress?: string;
  // TLS: on when bridge_cafile or bridge_capath is given (as in mosquitto)
  cafile?: string;
  capath?: string;
  certfile?: string;
  keyfile?: string;
  /** `bridge_insecure`: default false */
  insecure: boolean;
  /** `bridge_tls_version`: default tlsv1.2 */
  tlsVersion: 'tlsv1.3' | 'tlsv1.2' | 'tlsv1.1';
  alpn?: string;
  ciphers?: string;
}

/** What a bridge key's apply reaches: the current bridge (an error outside a `connection` block). */
export interface BridgeScope {
  addBridge(name: string, at: Loc): void;
  bridge(key: string, at: Loc): BridgeConfig;
}

export function defaultBridgeConfig(name: string, at: Loc): BridgeConfig {
  return {
    name, at, addresses: [], roundRobin: false, topics: [], protocolVersion: 4, cleanSession: false,
    remoteClientId: '', localClientId: '', keepalive: 60, restartBase: 5, restartCap: 30, startType: 'automatic',
    idleTimeout: 60, threshold: 10, notifications: true, notificationTopic: '', notificationsLocalOnly: false,
    tryPrivate: true, outgoingRetain: true, attemptUnsubscribe: true, maxPacketSize: 0, receiveMaximum: 65535,
    sessionExpiryInterval: 0, insecure: false, tlsVersion: 'tlsv1.2',
  };
}

const INT32_MAX = 2147483647;
const err = (msg: string, at: Loc): ConfigError => new ConfigError(msg, at.file, at.line);

/** `host[:port]` (an IPv6 address needs its port, as mosquitto says: `::1:1883`). */
export function parseAddress(key: string, token: string, at: Loc): BridgeAddress {
  const colon = token.lastIndexOf(':');
  let host = token;
  let port = 1883;
  if (colon >= 0) {
    host = token.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const p = token.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw err(`Invalid port in ${key} value (${shorten(token)})`, at);
    port = Number(p);
  }
  if (host === '') throw invalid(key, token, at);
  return { host, port };
}

/** A prefix token: `""` is no prefix; otherwise a topic name part (no wildcards). */
function prefix(which: 'local' | 'remote', token: string, at: Loc): string | undefined {
  if (token === '""') return undefined;
  if (!isValidTopicName(token)) throw err(`Invalid bridge topic ${which} prefix '${shorten(token)}' (no wildcards)`, at);
  return token;
}

/** `topic PATTERN [[[out|in|both] QOS] LOCAL_PREFIX REMOTE_PREFIX]`, with mosquitto's rules for `""`. */
export function parseBridgeTopic(value: string, at: Loc): BridgeTopic {
  const t = value.split(/[ \t]+/);
  if (t.length > 5) throw err(`Unexpected extra value "${shorten(t[5]!)}" for topic`, at);
  const pattern = t[0] === '""' ? undefined : t[0]!;
  let direction: BridgeDirection = 'out';
  if (t[1] !== undefined) {
    const d = t[1].toLowerCase(); // mosquitto compares with strcasecmp
    if (d !== 'out' && d !== 'in' && d !== 'both') throw err(`Invalid bridge topic direction '${shorten(t[1])}' (out, in or both)`, at);
    direction = d;
  }
  let qos: 0 | 1 | 2 = 0;
  if (t[2] !== undefined) {
    if (!/^[012]$/.test(t[2])) throw err(`Invalid bridge QoS level '${shorten(t[2])}' (0, 1 or 2)`, at);
    qos = Number(t[2]) as 0 | 1 | 2;
  }
  if (t[3] !== undefined && t[4] === undefined) throw err('Invalid bridge topic: a local prefix needs a remote prefix after it ("" for none)', at);
  const localPrefix = t[3] === undefined ? undefined : prefix('local', t[3], at);
  const remotePrefix = t[4] === undefined ? undefined : prefix('remote', t[4], at);
  if (pattern === undefined && (localPrefix === undefined || remotePrefix === undefined)) {
    throw err('Invalid bridge topic: the pattern "" needs both a local and a remote prefix (the full local and remote topics)', at);
  }
  const localTopic = (localPrefix ?? '') + (pattern ?? '');
  const remoteTopic = (remotePrefix ?? '') + (pattern ?? '');
  for (const f of [localTopic, remoteTopic]) {
    if (!isValidTopicFilter(f)) throw err(`Invalid bridge topic '${shorten(f)}'`, at);
  }
  const topic: BridgeTopic = { direction, qos, localTopic, remoteTopic, at };
  if (pattern !== undefined) topic.pattern = pattern;
  if (localPrefix !== undefined) topic.localPrefix = localPrefix;
  if (remotePrefix !== undefined) topic.remotePrefix = remotePrefix;
  return topic;
}

type Apply = (b: BridgeConfig, value: string, at: Loc, key: string) => void;
interface BridgeKey { arity: 'one' | 'rest'; apply: Apply }

const one = (apply: Apply): BridgeKey => ({ arity: 'one', apply });
const rest = (apply: Apply): BridgeKey => ({ arity: 'rest', apply });
const bool = (set: (b: BridgeConfig, v: boolean) => void): BridgeKey =>
  one((b, v, at, key) => set(b, parseBoolean(key, v, at)));
const int = (min: number, max: number, set: (b: BridgeConfig, v: number) => void): BridgeKey =>
  one((b, v, at, key) => set(b, parseInteger(key, v, min, max, at)));

function addresses(b: BridgeConfig, v: string, at: Loc, key: string): void {
  if (b.addresses.length > 0) throw err(`Duplicate ${key} value in bridge ${b.name} (give every address on one line)`, at);
  b.addresses = v.split(/[ \t]+/).map((tok) => parseAddress(key, tok, at));
}

/** Bridge keys (those that need a `connection` before them). */
export const BRIDGE_KEYS: ReadonlyMap<string, BridgeKey> = new Map<string, BridgeKey>([
  ['address', rest(addresses)],
  ['addresses', rest(addresses)],
  ['round_robin', bool((b, v) => { b.roundRobin = v; })],
  ['topic', rest((b, v, at) => { b.topics.push(parseBridgeTopic(v, at)); })],
  ['bridge_protocol_version', one((b, v, at, key) => {
    const m: Record<string, 3 | 4 | 5> = { mqttv31: 3, mqttv311: 4, mqttv50: 5 };
    const pv = m[v];
    if (pv === undefined) throw err(`Invalid ${key} value (${shorten(v)}): mqttv31, mqttv311 or mqttv50`, at);
    b.protocolVersion = pv;
  })],
  ['cleansession', bool((b, v) => { b.cleanSession = v; })],
  ['local_cleansession', bool((b, v) => { b.localCleanSession = v; })],
  ['remote_clientid', one((b, v) => { b.remoteClientId = v; })],
  ['clientid', one((b, v) => { b.remoteClientId = v; })],
  ['local_clientid', one((b, v) => { b.localClientId = v; })],
  ['remote_username', one((b, v) => { b.remoteUsername = v; })],
  ['username', one((b, v) => { b.remoteUsername = v; })],
  ['remote_password', one((b, v) => { b.remotePassword = v; })],
  ['password', one((b, v) => { b.remotePassword = v; })],
  ['local_username', one((b, v) => { b.localUsername = v; })],
  ['local_password', one((b, v) => { b.localPassword = v; })],
  ['keepalive_interval', int(0, 65535, (b, v) => { b.keepalive = Math.max(5, v); })], // mosquitto: at least 5
  ['restart_timeout', rest((b, v, at, key) => {
    const t = v.split(/[ \t]+/);
    if (t.length > 2) throw err(`Unexpected extra value "${shorten(t[2]!)}" for ${key}`, at);
    const base = parseInteger(key, t[0]!, 1, INT32_MAX, at);
    if (t[1] === undefined) {
      b.restartBase = base;
      delete b.restartCap;
      return;
    }
    const cap = parseInteger(key, t[1], 1, INT32_MAX, at);
    if (cap < base) throw err(`Invalid ${key} value (${shorten(v)}): the cap must not be less than the base`, at);
    b.restartBase = base;
    b.restartCap = cap;
  })],
  ['start_type', one((b, v, at, key) => {
    if (v !== 'automatic' && v !== 'lazy' && v !== 'once') throw err(`Invalid ${key} value (${shorten(v)}): automatic, lazy or once`, at);
    b.startType = v;
  })],
  ['idle_timeout', int(1, INT32_MAX, (b, v) => { b.idleTimeout = v; })],
  ['threshold', int(1, INT32_MAX, (b, v) => { b.threshold = v; })],
  ['notifications', bool((b, v) => { b.notifications = v; })],
  ['notification_topic', one((b, v, at, key) => {
    if (!isValidTopicName(v)) throw invalid(key, v, at);
    b.notificationTopic = v;
  })],
  ['notifications_local_only', bool((b, v) => { b.notificationsLocalOnly = v; })],
  ['try_private', bool((b, v) => { b.tryPrivate = v; })],
  ['bridge_outgoing_retain', bool((b, v) => { b.outgoingRetain = v; })],
  ['bridge_attempt_unsubscribe', bool((b, v) => { b.attemptUnsubscribe = v; })],
  ['bridge_max_packet_size', int(0, 268435460, (b, v) => { b.maxPacketSize = v; })],
  ['bridge_receive_maximum', int(1, 65535, (b, v) => { b.receiveMaximum = v; })],
  ['bridge_session_expiry_interval', int(0, 4294967295, (b, v) => { b.sessionExpiryInterval = v; })],
  ['bridge_bind_address', one((b, v) => { b.bindAddress = v; })],
  ['bridge_cafile', rest((b, v) => { b.cafile = v; })],
  ['bridge_capath', rest((b, v) => { b.capath = v; })],
  ['bridge_certfile', rest((b, v) => { b.certfile = v; })],
  ['bridge_keyfile', rest((b, v) => { b.keyfile = v; })],
  ['bridge_insecure', bool((b, v) => { b.insecure = v; })],
  ['bridge_tls_version', one((b, v, at, key) => {
    if (v !== 'tlsv1.3' && v !== 'tlsv1.2' && v !== 'tlsv1.1') throw err(`Invalid ${key} value (${shorten(v)}): tlsv1.3, tlsv1.2 or tlsv1.1`, at);
    b.tlsVersion = v;
  })],
  ['bridge_alpn', one((b, v) => { b.alpn = v; })],
  ['bridge_ciphers', one((b, v) => { b.ciphers = v; })],
]);

/** Keys of PSK bridges: refused with their own reason. */
export const BRIDGE_PSK_KEYS: ReadonlySet<string> = new Set(['bridge_psk', 'bridge_identity']);

/** Applies one bridge key line (`connection` included). */
export function applyBridgeKey(s: BridgeScope, key: string, value: string, at: Loc): boolean {
  if (key === 'connection') {
    if (value === '') throw err('Empty connection value', at);
    const t = value.split(/[ \t]+/);
    if (t.length > 1) throw err(`Unexpected extra value "${shorten(t[1]!)}" for connection`, at);
    s.addBridge(value, at);
    return true;
  }
  if (BRIDGE_PSK_KEYS.has(key)) {
    s.bridge(key, at);
    throw err(`"${key}": PSK is not supported by Midge (Node's TLS has no PSK for bridges here); use certificates (bridge_cafile, bridge_certfile, bridge_keyfile)`, at);
  }
  const def = BRIDGE_KEYS.get(key);
  if (def === undefined) return false;
  const b = s.bridge(key, at);
  if (value === '') throw err(`Empty ${key} value`, at);
  if (def.arity === 'one') {
    const t = value.split(/[ \t]+/);
    if (t.length > 1) throw err(`Unexpected extra value "${shorten(t[1]!)}" for ${key}`, at);
  }
  def.apply(b, value, at, key);
  return true;
}

/** Whether a key is handled here. */
export function isBridgeKey(key: string): boolean {
  return key === 'connection' || BRIDGE_KEYS.has(key) || BRIDGE_PSK_KEYS.has(key);
}

/** After the whole file: defaults that depend on other keys, and the checks mosquitto makes of each bridge. */
export function finishBridge(b: BridgeConfig, host: string = hostname()): void {
  if (b.addresses.length === 0) throw err(`Bridge ${b.name} has no address (address HOST[:PORT])`, b.at);
  if (b.topics.length === 0) throw err(`Bridge ${b.name} has no topic line (topic PATTERN [out|in|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]])`, b.at);
  if (b.remotePassword !== undefined && b.remoteUsername === undefined) {
    throw err(`Bridge ${b.name} has remote_password but no remote_username`, b.at);
  }
  if (b.localPassword !== undefined && b.localUsername === undefined) {
    throw err(`Bridge ${b.name} has local_password but no local_username`, b.at);
  }
  if ((b.certfile === undefined) !== (b.keyfile === undefined)) {
    throw err(`Bridge ${b.name} needs both bridge_certfile and bridge_keyfile, or neither`, b.at);
  }
  if ((b.certfile !== undefined || b.insecure || b.alpn !== undefined) && b.cafile === undefined && b.capath === undefined) {
    throw err(`Bridge ${b.name} has TLS options but no bridge_cafile or bridge_capath (one of them turns TLS on)`, b.at);
  }
  if (b.remoteClientId === '') b.remoteClientId = `${host}.${b.name}`;
  if (b.localClientId === '') b.localClientId = `local.${b.remoteClientId}`;
  if (b.notificationTopic === '') {
    b.notificationTopic = `$SYS/broker/connection/${b.remoteClientId}/state`;
    if (b.notifications && !isValidTopicName(b.notificationTopic)) {
      throw err(`Bridge ${b.name}: its notification topic ${shorten(b.notificationTopic)} is not a valid topic (the remote client id has + or #); set notification_topic or notifications false`, b.at);
    }
  }
}
