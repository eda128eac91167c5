/**
 * The mosquitto.conf keys Midge supports: how many values each takes and what it sets.
 * Values are checked here; `parse.ts` reads lines and files and calls `apply`.
 */
import { shorten } from '../util/text.js';
import { ConfigError } from './errors.js';
import { nodeIdProblem, prefixProblem, redisUrlProblem } from './cluster.js';
import { redactRedisUrl } from '../store/redis-url.js';
import type { BrokerConfig, HttpListenerConfig, ListenerConfig } from './options.js';

export interface Loc {
  readonly file: string;
  readonly line: number;
}

/** What a key's `apply` can reach: the config, the listener a per-listener key applies to, and checks. */
export interface Scope {
  readonly config: BrokerConfig;
  /** The last `listener`, or the default listener when there is none yet (made on first use). */
  listener(at: Loc): ListenerConfig;
  /** The default listener (made on first use): `port` and `bind_address` always apply to it. */
  defaultListener(at: Loc): ListenerConfig;
  /** Starts a new listener (`listener PORT [ADDRESS]`). */
  addListener(port: number, address: string | undefined, at: Loc): void;
  /** Records where a security key was given (per_listener_settings must come before them). */
  securityKey(key: string, at: Loc): void;
  /** Sets per_listener_settings, which must come before any security key. */
  setPerListenerSettings(value: boolean, at: Loc): void;
  /** Records where a listener's certfile / keyfile was given, for the pair check at the end. */
  tlsKey(l: ListenerConfig | HttpListenerConfig, key: 'certfile' | 'keyfile', at: Loc): void;
  /** Starts a new HTTP listener (`http_listener PORT [ADDRESS]`): certfile / keyfile after it apply to it. */
  addHttpListener(port: number, address: string | undefined, at: Loc): void;
  /** The HTTP listener when `http_listener` is the last listener line, else undefined. */
  httpListener(): HttpListenerConfig | undefined;
  /** First use of a repeatable list key replaces its default; later ones append. */
  firstUse(key: 'log_type' | 'log_dest'): boolean;
  /** Reads `include_dir DIR`. */
  includeDir(dir: string, at: Loc): void;
}

/**
 * - `one`: exactly one value token.
 * - `rest`: the rest of the line (after the key and its separating whitespace) is the value, spaces
 *   included, as mosquitto reads paths.
 * - `listener`: one or two tokens.
 */
export type Arity = 'one' | 'rest' | 'listener';

export interface KeyDef {
  readonly arity: Arity;
  /**
   * What the key sets, for `keyLocation`: the current listener, a security option (the current listener
   * with per_listener_settings, else the config), or (undefined) the config.
   */
  readonly where?: 'listener' | 'security';
  apply(s: Scope, value: string, at: Loc, key: string): void;
}

const INT32_MAX = 2147483647;

export function invalid(key: string, value: string, at: Loc): ConfigError {
  return new ConfigError(`Invalid ${key} value (${shorten(value)})`, at.file, at.line);
}

export function parseInteger(key: string, value: string, min: number, max: number, at: Loc): number {
  if (!/^-?[0-9]{1,16}$/.test(value)) throw invalid(key, value, at);
  const n = Number(value);
  if (n < min || n > max) throw invalid(key, value, at);
  return n;
}

export function parseBoolean(key: string, value: string, at: Loc): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalid(key, value, at);
}

function oneOf<T extends string>(key: string, value: string, allowed: readonly T[], at: Loc): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw invalid(key, value, at);
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  h: 3600, d: 86400, w: 7 * 86400, m: 30 * 86400, y: 365 * 86400,
};

/** mosquitto's `persistent_client_expiration` syntax: a positive number and a unit h, d, w, m or y. */
export function parseDuration(key: string, value: string, at: Loc): number {
  const m = /^([0-9]{1,9})([hdwmy])$/.exec(value);
  const n = m ? Number(m[1]) : 0;
  if (!m || n === 0) {
    throw new ConfigError(
      `Invalid ${key} value (${shorten(value)}), expected a number and a unit h, d, w, m or y such as 2d`, at.file, at.line);
  }
  return n * DURATION_UNITS[m[2]!]!;
}

function global<K extends keyof BrokerConfig>(field: K, parse: (key: string, v: string, at: Loc) => BrokerConfig[K],
  arity: Arity = 'one'): KeyDef {
  return { arity, apply: (s, v, at, key) => { s.config[field] = parse(key, v, at); } };
}

function perListener<K extends keyof ListenerConfig>(field: K,
  parse: (key: string, v: string, at: Loc) => ListenerConfig[K], arity: Arity = 'one'): KeyDef {
  return { arity, where: 'listener', apply: (s, v, at, key) => { s.listener(at)[field] = parse(key, v, at); } };
}

/** allow_anonymous, password_file, acl_file: global, or per listener with `per_listener_settings true`. */
function security<K extends 'allowAnonymous' | 'passwordFile' | 'aclFile'>(field: K,
  parse: (key: string, v: string, at: Loc) => NonNullable<BrokerConfig[K]>, arity: Arity = 'one'): KeyDef {
  return {
    arity,
    where: 'security',
    apply: (s, v, at, key) => {
      s.securityKey(key, at);
      const value = parse(key, v, at);
      if (s.config.perListenerSettings) s.listener(at)[field] = value as ListenerConfig[K];
      else s.config[field] = value;
    },
  };
}

const int = (min: number, max: number) => (key: string, v: string, at: Loc): number =>
  parseInteger(key, v, min, max, at);
const bool = (key: string, v: string, at: Loc): boolean => parseBoolean(key, v, at);
const str = (_key: string, v: string): string => v;

const LOG_TYPES = ['debug', 'error', 'warning', 'notice', 'information', 'subscribe', 'unsubscribe',
  'websockets', 'none', 'all'] as const;
const LOG_DESTS = ['stdout', 'stderr', 'syslog', 'topic', 'dlt', 'none'] as const;
const LOG_FORMATS = ['mosquitto', 'json'] as const;

export const KEYS: ReadonlyMap<string, KeyDef> = new Map<string, KeyDef>([
  // Listeners
  ['listener', {
    arity: 'listener',
    where: 'listener',
    apply: (s, v, at) => {
      const [portText, address] = v.split(' ') as [string, string | undefined];
      const port = parseInteger('port', portText, 0, 65535, at);
      if (port === 0 && address !== undefined && address.includes('/')) {
        throw new ConfigError('Unix socket listeners ("listener 0 PATH") are not supported by Midge yet',
          at.file, at.line);
      }
      s.addListener(port, address, at);
    },
  }],
  ['port', { arity: 'one', apply: (s, v, at) => { s.defaultListener(at).port = parseInteger('port', v, 0, 65535, at); } }],
  ['bind_address', { arity: 'one', apply: (s, v, at) => { s.defaultListener(at).bindAddress = v; } }],
  ['protocol', perListener('protocol', (k, v, at) => oneOf(k, v, ['mqtt', 'websockets'] as const, at))],
  ['websockets_origin', {
    arity: 'one',
    where: 'listener',
    apply: (s, v, at) => { const l = s.listener(at); (l.websocketsOrigins ??= []).push(v); },
  }],
  ['http_dir', perListener('httpDir', str, 'rest')],
  ['websockets_headers_size', global('websocketsHeadersSize', int(0, 65535))],
  ['socket_domain', perListener('socketDomain', (k, v, at) => oneOf(k, v, ['ipv4', 'ipv6'] as const, at))],
  ['max_connections', perListener('maxConnections', int(-1, INT32_MAX))],
  ['mount_point', perListener('mountPoint', (k, v, at) => {
    if (/[+#\u0000]/.test(v)) throw invalid(k, v, at); // a topic prefix: no wildcards
    return v;
  })],
  ['cafile', perListener('cafile', str, 'rest')],
  ['capath', perListener('capath', str, 'rest')],
  ['certfile', {
    arity: 'rest',
    where: 'listener',
    apply: (s, v, at) => { const l = s.httpListener() ?? s.listener(at); l.certfile = v; s.tlsKey(l, 'certfile', at); },
  }],
  ['keyfile', {
    arity: 'rest',
    where: 'listener',
    apply: (s, v, at) => { const l = s.httpListener() ?? s.listener(at); l.keyfile = v; s.tlsKey(l, 'keyfile', at); },
  }],
  ['crlfile', perListener('crlfile', str, 'rest')],
  ['tls_version', perListener('tlsVersion', (k, v, at) => oneOf(k, v, ['tlsv1.3', 'tlsv1.2', 'tlsv1.1'], at))],
  ['ciphers', perListener('ciphers', str)],
  ['require_certificate', perListener('requireCertificate', bool)],
  ['use_identity_as_username', perListener('useIdentityAsUsername', bool)],
  ['use_subject_as_username', perListener('useSubjectAsUsername', bool)],
  // Security
  ['per_listener_settings', {
    arity: 'one',
    apply: (s, v, at, key) => s.setPerListenerSettings(parseBoolean(key, v, at), at),
  }],
  ['allow_anonymous', security('allowAnonymous', bool)],
  ['password_file', security('passwordFile', str, 'rest')],
  ['acl_file', security('aclFile', str, 'rest')],
  ['allow_zero_length_clientid', global('allowZeroLengthClientid', bool)],
  ['clientid_prefixes', global('clientidPrefixes', str)],
  // Limits
  ['max_inflight_messages', global('maxInflightMessages', int(0, 65535))],
  ['max_queued_messages', global('maxQueuedMessages', int(0, INT32_MAX))],
  ['max_queued_bytes', global('maxQueuedBytes', int(0, Number.MAX_SAFE_INTEGER))],
  ['max_inflight_bytes', global('maxInflightBytes', int(0, Number.MAX_SAFE_INTEGER))],
  ['memory_limit', global('memoryLimit', int(0, Number.MAX_SAFE_INTEGER))],
  ['global_max_connections', global('globalMaxConnections', int(-1, INT32_MAX))],
  ['global_max_clients', global('globalMaxClients', int(-1, INT32_MAX))],
  ['max_packet_size', {
    arity: 'one',
    apply: (s, v, at, key) => {
      const n = parseInteger(key, v, 0, 268435460, at);
      if (n !== 0 && n < 20) throw invalid(key, v, at); // smaller than any CONNECT: mosquitto's floor too
      s.config.maxPacketSize = n;
    },
  }],
  ['message_size_limit', global('messageSizeLimit', int(0, 268435455))],
  ['max_keepalive', global('maxKeepalive', int(10, 65535))], // mosquitto 2.0 refuses values below 10
  ['max_topic_alias', global('maxTopicAlias', int(0, 65535))],
  ['retain_available', global('retainAvailable', bool)],
  ['queue_qos0_messages', global('queueQos0Messages', bool)],
  ['upgrade_outgoing_qos', global('upgradeOutgoingQos', bool)],
  ['sys_interval', global('sysInterval', int(0, INT32_MAX))],
  ['persistent_client_expiration', global('persistentClientExpiration', parseDuration)],
  // Persistence
  ['persistence', global('persistence', bool)],
  ['persistence_location', global('persistenceLocation', str, 'rest')],
  ['persistence_file', global('persistenceFile', str, 'rest')],
  ['autosave_interval', global('autosaveInterval', int(0, INT32_MAX))],
  ['autosave_on_changes', global('autosaveOnChanges', bool)],
  ['midge_persistence_fsync', global('persistenceFsync', bool)],
  // Logging and process
  ['connection_messages', global('connectionMessages', bool)],
  ['log_timestamp', global('logTimestamp', bool)],
  ['log_type', {
    arity: 'one',
    apply: (s, v, at, key) => {
      const t = oneOf(key, v, LOG_TYPES, at);
      if (s.firstUse('log_type')) s.config.logTypes = [];
      if (!s.config.logTypes.includes(t)) s.config.logTypes.push(t);
    },
  }],
  ['log_dest', {
    arity: 'rest',
    apply: (s, v, at, key) => {
      let sp = v.search(/[ \t]/);
      let dest = sp < 0 ? v : v.slice(0, sp);
      let rest = sp < 0 ? '' : v.slice(sp).trim();
      if (s.firstUse('log_dest')) s.config.logDest = [];
      // Midge only: `log_dest json DEST` writes JSON objects (pino) to DEST, whatever midge_log_format says
      let json = '';
      if (dest === 'json') {
        if (rest === '') throw new ConfigError('Empty log_dest json value (expected stdout, stderr or file PATH)', at.file, at.line);
        json = 'json:';
        sp = rest.search(/[ \t]/);
        dest = sp < 0 ? rest : rest.slice(0, sp);
        rest = sp < 0 ? '' : rest.slice(sp).trim();
        if (dest === 'none' || dest === 'json') throw new ConfigError(`Invalid log_dest json value "${shorten(dest)}" (expected stdout, stderr or file PATH)`, at.file, at.line);
      }
      let entry: string;
      if (dest === 'file') {
        if (rest === '') throw new ConfigError('Empty log_dest file value', at.file, at.line);
        if (s.config.logDest.some((d) => d.startsWith('file:') || d.startsWith('json:file:'))) {
          throw new ConfigError('Only one "log_dest file" destination is allowed', at.file, at.line);
        }
        entry = `${json}file:${rest}`;
      } else {
        entry = json + oneOf(key, dest, LOG_DESTS, at);
        if (rest !== '') throw new ConfigError(`Unexpected extra value "${shorten(rest)}" for log_dest ${json}${dest}`, at.file, at.line);
      }
      if (!s.config.logDest.includes(entry)) s.config.logDest.push(entry);
    },
  }],
  // Midge only: the format of every log_dest ('mosquitto' lines or 'json' objects), see src/config/logging.ts
  ['midge_log_format', {
    arity: 'one',
    apply: (s, v, at, key) => { s.config.logFormat = oneOf(key, v, LOG_FORMATS, at); },
  }],
  ['pid_file', global('pidFile', str, 'rest')],
  ['user', global('user', str)],
  // Files
  ['include_dir', { arity: 'rest', apply: (s, v, at) => s.includeDir(v, at) }],
  // Midge's own keys (mosquitto does not know them): the failed-login throttle, see docs/security.md
  ['midge_failed_login_delay', global('failedLoginDelay', int(0, 3_600_000))],
  ['midge_failed_login_delay_max', global('failedLoginDelayMax', int(0, 3_600_000))],
  ['midge_failed_login_half_life', global('failedLoginHalfLife', int(1, 31_536_000))],
  // seconds before CONNACK (and for a re-authentication): a hook that never settles cannot hold a connection
  ['midge_connect_timeout', global('connectTimeout', int(1, 86_400))],
  // Midge's own limits of the retained store (-1 or 0 = no limit)
  ['midge_max_retained_messages', global('maxRetainedMessages', int(-1, INT32_MAX))],
  ['midge_max_retained_bytes', global('maxRetainedBytes', int(-1, Number.MAX_SAFE_INTEGER))],
  // Midge's HTTP listener: metrics and the admin API (docs/http.md); certfile / keyfile after it make it HTTPS
  ['http_listener', {
    arity: 'listener',
    apply: (s, v, at) => {
      const [portText, address] = v.split(' ') as [string, string | undefined];
      s.addHttpListener(parseInteger('http_listener port', portText, 0, 65535, at), address, at);
    },
  }],
  ['http_admin_user', { arity: 'one', apply: (s, v) => { if (!s.config.httpAdminUsers.includes(v)) s.config.httpAdminUsers.push(v); } }],
  ['http_token_file', global('httpTokenFile', str, 'rest')],
  ['http_metrics_token_file', global('httpMetricsTokenFile', str, 'rest')],
  // Midge's cluster on Redis (docs/cluster.md): the errors show the URL without its password
  ['cluster_redis', {
    arity: 'one',
    apply: (s, v, at, key) => {
      const why = redisUrlProblem(v);
      if (why !== undefined) throw new ConfigError(`Invalid ${key} value (${shorten(redactRedisUrl(v))}): ${why}`, at.file, at.line);
      s.config.clusterRedis = v;
    },
  }],
  ['cluster_node_id', { arity: 'one', apply: (s, v, at, key) => { s.config.clusterNodeId = checked(key, v, nodeIdProblem(v), at); } }],
  ['cluster_prefix', { arity: 'one', apply: (s, v, at, key) => { s.config.clusterPrefix = checked(key, v, prefixProblem(v), at); } }],
]);

function checked(key: string, value: string, why: string | undefined, at: Loc): string {
  if (why !== undefined) throw new ConfigError(`Invalid ${key} value (${shorten(value)}): ${why}`, at.file, at.line);
  return value;
}
