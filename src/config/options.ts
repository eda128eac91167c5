/**
 * The broker's options: what a mosquitto.conf file says, as one typed object. The CLI overrides it and
 * `createBroker(options)` takes the same object. Keys named in the comments are the mosquitto.conf keys.
 */

import type { BridgeConfig } from './bridge.js';

export interface ListenerConfig {
  /** `listener PORT` / `port PORT`: 0..65535; 0 asks the OS for a free port (meant for tests). */
  port: number;
  /** `listener PORT ADDRESS` / `bind_address`: host name or IP to bind; undefined = all interfaces. */
  bindAddress?: string;
  /** `protocol`: default 'mqtt'. */
  protocol: 'mqtt' | 'websockets';
  /** `socket_domain`: restrict a host-name bind to one address family; undefined = both. */
  socketDomain?: 'ipv4' | 'ipv6';
  /** `max_connections`: -1 = unlimited (default); 0 is unlimited too, as in mosquitto. */
  maxConnections: number;
  /** `websockets_origin`, repeatable (websockets listeners): the Origin header values allowed; unset = any. */
  websocketsOrigins?: string[];
  /** `http_dir` (websockets listeners): static files served to plain HTTP GET requests. */
  httpDir?: string;
  /** `mount_point`: a topic prefix added to every topic of the clients of this listener. */
  mountPoint?: string;
  // TLS: a listener with certfile and keyfile is a TLS listener; one without the other is a config error.
  cafile?: string;
  capath?: string;
  certfile?: string;
  keyfile?: string;
  /** `tls_version`: 'tlsv1.3' | 'tlsv1.2' | 'tlsv1.1'; undefined = the TLS library's default range. */
  tlsVersion?: string;
  ciphers?: string;
  requireCertificate: boolean;
  useIdentityAsUsername: boolean;
  useSubjectAsUsername: boolean;
  crlfile?: string;
  // Per-listener security: set here (and only here) when `per_listener_settings true`.
  allowAnonymous?: boolean;
  passwordFile?: string;
  aclFile?: string;
}

/** `http_listener PORT [ADDRESS]` (Midge only): the HTTP listener of metrics and the admin API (docs/http.md). */
export interface HttpListenerConfig {
  /** 0 asks the OS for a free port (tests) */
  port: number;
  /** default 127.0.0.1 (loopback only) */
  bindAddress?: string;
  /** `certfile` / `keyfile` after the `http_listener` line: HTTPS */
  certfile?: string;
  keyfile?: string;
  /**
   * set by the parser when a `protocol websockets` listener has the same (non-zero) port: the HTTP listener
   * is served by that listener's server (plain requests HTTP, upgrades MQTT), with its address and TLS
   */
  sharesWebSocketListener?: boolean;
}

export interface BrokerConfig {
  /**
   * `listener PORT [ADDRESS]` entries in file order. Per-listener keys apply to the last `listener`;
   * before any `listener` they apply to the default listener (made by `port`, `bind_address` or any
   * per-listener key; port 1883 unless `port` says otherwise), which comes first in this list.
   * Empty = no listener configured: the broker applies mosquitto 2.0's default (1883 on loopback only).
   */
  listeners: ListenerConfig[];
  /** `per_listener_settings`: default false. */
  perListenerSettings: boolean;
  /** `allow_anonymous`: undefined = not set (the broker applies mosquitto 2.0's default). */
  allowAnonymous?: boolean;
  passwordFile?: string;
  aclFile?: string;
  /** `max_inflight_messages`: default 20, 0 = no limit. */
  maxInflightMessages: number;
  /** `max_queued_messages`: default 1000, 0 = no limit. */
  maxQueuedMessages: number;
  /** `max_queued_bytes`: payload bytes queued per client beyond those in flight; default 0 = no limit. */
  maxQueuedBytes: number;
  /** `max_inflight_bytes`: payload bytes of outgoing QoS 1/2 messages in flight per client; default 0 = no limit. */
  maxInflightBytes: number;
  /** `memory_limit`: bytes of heap (V8 heap and Buffers) above which new PUBLISHes are refused; default 0 = no limit. */
  memoryLimit: number;
  /** `global_max_connections`: open connections of all listeners together; default -1 (0 too) = no limit. */
  globalMaxConnections: number;
  /** `global_max_clients`: clients (sessions, connected or offline); default -1 (0 too) = no limit. */
  globalMaxClients: number;
  /** `midge_max_retained_messages`: retained topics; default -1 (0 too) = no limit. */
  maxRetainedMessages: number;
  /** `midge_max_retained_bytes`: payload bytes of all retained messages; default -1 (0 too) = no limit. */
  maxRetainedBytes: number;
  /** `max_packet_size`: default 0 = no limit; otherwise at least 20. */
  maxPacketSize: number;
  /** `message_size_limit`: default 0 = no limit (the protocol's own limit is 268435455). */
  messageSizeLimit: number;
  /** `max_keepalive`: seconds, default 65535. */
  maxKeepalive: number;
  /** `retain_available`: default true. */
  retainAvailable: boolean;
  /** `sys_interval`: seconds between $SYS updates, default 10, 0 = off. */
  sysInterval: number;
  /** `persistent_client_expiration`: seconds (written with a unit h, d, w, m, y); undefined = never. */
  persistentClientExpiration?: number;
  /** `persistence`: default false. */
  persistence: boolean;
  persistenceLocation?: string;
  /** `persistence_file`: default 'midge.db' (not mosquitto.db: the formats differ). */
  persistenceFile: string;
  /** `autosave_interval`: seconds, default 1800. Accepted; Midge commits every turn, so it changes nothing. */
  autosaveInterval: number;
  /** `autosave_on_changes`: accepted, changes nothing (as autosave_interval). */
  autosaveOnChanges: boolean;
  /** `midge_persistence_fsync`: fsync every commit (survives power loss, not only a crash); default false. */
  persistenceFsync: boolean;
  /** `websockets_headers_size`: the most bytes of HTTP request headers on websockets listeners; 0 = Node's 16 KiB. */
  websocketsHeadersSize: number;
  /** `connection_messages`: default true. */
  connectionMessages: boolean;
  /**
   * `log_type`, repeatable: 'debug' | 'error' | 'warning' | 'notice' | 'information' | 'subscribe' |
   * 'unsubscribe' | 'websockets' | 'none' | 'all'. Default ['error', 'warning', 'notice', 'information'].
   */
  logTypes: string[];
  /**
   * `log_dest`, repeatable: 'stdout' | 'stderr' | 'syslog' | 'topic' | 'dlt' | 'none' | 'file:PATH'
   * (from `log_dest file PATH`). Default ['stderr'].
   */
  logDest: string[];
  /** `log_timestamp`: default true. */
  logTimestamp: boolean;
  /**
   * `midge_log_format` (Midge only): 'mosquitto' (default), the lines mosquitto writes, or 'json', the same
   * events as one JSON object a line (pino) for log collectors, to every `log_dest`.
   */
  logFormat: 'mosquitto' | 'json';
  /** `queue_qos0_messages`: default false. */
  queueQos0Messages: boolean;
  /** `upgrade_outgoing_qos`: default false. */
  upgradeOutgoingQos: boolean;
  /** `allow_zero_length_clientid`: default true. */
  allowZeroLengthClientid: boolean;
  /** `max_topic_alias`: default 10. */
  maxTopicAlias: number;
  clientidPrefixes?: string;
  pidFile?: string;
  user?: string;
  /**
   * `midge_failed_login_delay`: ms by which the first failed login from an address is answered late;
   * each further failure doubles it (see `midge_failed_login_delay_max`). 0 = off. Default 1000.
   */
  failedLoginDelay: number;
  /** `midge_failed_login_delay_max`: the longest delay of one failed login, ms. Default 30000. */
  failedLoginDelayMax: number;
  /** `midge_failed_login_half_life`: seconds for an address's failure count to halve. Default 60. */
  failedLoginHalfLife: number;
  /**
   * `midge_connect_timeout`: seconds from a new connection to CONNACK (CONNECT, the authenticate hook, an
   * AUTH exchange), and for a re-authentication to finish. Default 30.
   */
  connectTimeout: number;
  /** `http_listener PORT [ADDRESS]`, repeatable (Midge only): metrics and the admin API over HTTP. */
  httpListeners: HttpListenerConfig[];
  /** `http_admin_user NAME`, repeatable: users of the password file who may use the admin API. */
  httpAdminUsers: string[];
  /** `http_token_file PATH`: a file holding the bearer token of the admin API (and of /metrics). */
  httpTokenFile?: string;
  /** `http_metrics_token_file PATH`: a file holding a bearer token for /metrics only. */
  httpMetricsTokenFile?: string;
  /**
   * `cluster_redis URL` (Midge only; `--redis URL` on the command line overrides it): the Redis of the
   * cluster, `redis://`, `rediss://` or `redis+sentinel://` (checked when parsed). Unset = one node,
   * nothing about Redis is loaded.
   */
  clusterRedis?: string;
  /** `cluster_node_id NAME` (`--node-id`): unset = the host name and the first listener's port. */
  clusterNodeId?: string;
  /** `cluster_prefix PREFIX`: the prefix of every key of the cluster in Redis; default 'midge:'. */
  clusterPrefix: string;
  /** `connection NAME` blocks in file order (docs/bridges.md). */
  bridges: BridgeConfig[];
  /** The files read, main file first, then `include_dir` files in the order read (for SIGHUP reload). */
  sources: string[];
}

export function defaultListenerConfig(port = 1883): ListenerConfig {
  return {
    port,
    protocol: 'mqtt',
    maxConnections: -1,
    requireCertificate: false,
    useIdentityAsUsername: false,
    useSubjectAsUsername: false,
  };
}

export function defaultBrokerConfig(): BrokerConfig {
  return {
    listeners: [],
    perListenerSettings: false,
    maxInflightMessages: 20,
    maxQueuedMessages: 1000,
    maxQueuedBytes: 0,
    maxInflightBytes: 0,
    memoryLimit: 0,
    globalMaxConnections: -1,
    globalMaxClients: -1,
    maxRetainedMessages: -1,
    maxRetainedBytes: -1,
    maxPacketSize: 0,
    messageSizeLimit: 0,
    maxKeepalive: 65535,
    retainAvailable: true,
    sysInterval: 10,
    persistence: false,
    persistenceFile: 'midge.db',
    autosaveInterval: 1800,
    autosaveOnChanges: false,
    persistenceFsync: false,
    websocketsHeadersSize: 0,
    connectionMessages: true,
    logTypes: ['error', 'warning', 'notice', 'information'],
    logDest: ['stderr'],
    logFormat: 'mosquitto',
    logTimestamp: true,
    queueQos0Messages: false,
    upgradeOutgoingQos: false,
    allowZeroLengthClientid: true,
    maxTopicAlias: 10,
    failedLoginDelay: 1000,
    failedLoginDelayMax: 30_000,
    failedLoginHalfLife: 60,
    connectTimeout: 30,
    httpListeners: [],
    httpAdminUsers: [],
    clusterPrefix: 'midge:',
    bridges: [],
    sources: [],
  };
}
