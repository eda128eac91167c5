import type { Bus } from '../cluster/bus.js';
import type { BrokerHooks } from './types.js';
import type { Logger } from './log.js';
import type { Store } from '../store/store.js';
import type { ShareStrategy } from './shared.js';
import type { Clock } from '../util/clock.js';

/** How one listener accepts connections. TLS when `tls` is set. */
export interface ListenerOptions {
  port: number;
  host?: string;
  tls?: {
    ca?: string | Buffer;
    cert: string | Buffer;
    key: string | Buffer;
    minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
    maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
    ciphers?: string;
    requestCert?: boolean;
    crl?: string | Buffer;
  };
  /** with TLS and requestCert: use the certificate's CN as the username */
  useIdentityAsUsername?: boolean;
  useSubjectAsUsername?: boolean;
  /** connections open at once on this listener (max_connections); unset = unlimited */
  maxConnections?: number;
  /** mosquitto's socket_domain: bind only this address family (a host name resolves in it; none = all of it) */
  socketDomain?: 'ipv4' | 'ipv6';
  /**
   * 'websockets': MQTT over WebSockets (`protocol websockets`): ws://, or wss:// with `tls`; any request
   * path, subprotocol "mqtt" or "mqttv3.1". Default 'mqtt' (plain MQTT over TCP or TLS).
   */
  protocol?: 'mqtt' | 'websockets';
  /** websockets: the Origin header values allowed to upgrade (websockets_origin); unset = any (403 otherwise) */
  websocketsOrigins?: string[];
  /** websockets: a directory whose files are served to plain HTTP GET requests (http_dir); unset = 404 */
  httpDir?: string;
  /** websockets: the most bytes of HTTP request headers (websockets_headers_size); unset = Node's 16 KiB */
  websocketsHeadersSize?: number;
}

/** Every limit is named after its mosquitto.conf key. */
export interface BrokerOptions {
  listeners: ListenerOptions[];
  /** max QoS 1/2 messages in flight to one client; 0 = unlimited (max_inflight_messages) */
  maxInflightMessages: number;
  /** max QoS 1/2 messages queued for one client beyond the in-flight ones; 0 = unlimited (max_queued_messages) */
  maxQueuedMessages: number;
  /**
   * max payload bytes queued for one client beyond the in-flight ones; 0 = unlimited (max_queued_bytes).
   * A message is queued while the queue holds fewer bytes, so the last one may pass the limit.
   */
  maxQueuedBytes: number;
  /**
   * max payload bytes of outgoing QoS 1/2 messages in flight to one client; 0 = unlimited
   * (max_inflight_bytes). A message is sent while fewer bytes are in flight: a larger one still goes
   * when it is the only one in flight.
   */
  maxInflightBytes: number;
  /**
   * heap bytes (V8 heap in use plus Buffers, sampled every 250 ms) above which new PUBLISHes are
   * refused; 0 = no limit (memory_limit). MQTT 5 QoS 1/2 get PUBACK/PUBREC 0x97 (quota exceeded),
   * QoS 0 is dropped; a 3.x publisher is disconnected, as in mosquitto. Wills and $SYS still go.
   */
  memoryLimit: number;
  /** connections of all listeners and `handle()` together; -1 or 0 = unlimited (global_max_connections) */
  globalMaxConnections: number;
  /**
   * clients: sessions, connected or durable and offline; -1 or 0 = unlimited (global_max_clients). A
   * CONNECT that would add one more is refused with CONNACK 0x89 server busy (3.x: 3 server unavailable).
   */
  globalMaxClients: number;
  /**
   * retained topics; a retained PUBLISH for a new topic beyond it is refused (v5 QoS 1/2: 0x97);
   * replacing or clearing one is always allowed. -1 or 0 = unlimited (midge_max_retained_messages)
   */
  maxRetainedMessages: number;
  /**
   * payload bytes of all retained messages; a retained PUBLISH that would grow them beyond it is
   * refused (v5 QoS 1/2: 0x97). -1 or 0 = unlimited (midge_max_retained_bytes)
   */
  maxRetainedBytes: number;
  /** max bytes of one packet received; 0 = no limit (max_packet_size) */
  maxPacketSize: number;
  /** max payload bytes of a PUBLISH; 0 = no limit (message_size_limit) */
  messageSizeLimit: number;
  /** largest keepalive accepted (max_keepalive) */
  maxKeepalive: number;
  retainAvailable: boolean;
  /** seconds between $SYS updates, 0 = off (sys_interval) */
  sysInterval: number;
  /** seconds after which a disconnected persistent session is removed; undefined = never */
  persistentClientExpiration?: number;
  /** undefined = allow (embedding default); the CLI applies mosquitto 2.0's rule */
  allowAnonymous: boolean;
  allowZeroLengthClientid: boolean;
  queueQos0Messages: boolean;
  /** v5 topic aliases a client may use towards the broker (max_topic_alias); today Broker#topicAliasMaximum */
  maxTopicAlias: number;
  /** bytes buffered on a socket before further QoS 0 messages wait in the client's queue (max_queued_messages) */
  maxSocketBuffer: number;
  /** max packets received while CONNECT is still being processed */
  maxPendingPackets: number;
  /**
   * seconds a connection may take from its first byte to CONNACK (CONNECT, the authenticate hook, an
   * AUTH exchange), and a re-authentication to finish; then it is closed (midge_connect_timeout)
   */
  connectTimeout: number;
  /**
   * Server redirection (MQTT 5): when set, every v5 CONNECT is answered with CONNACK 0x9D (server moved)
   * or 0x9C (use another server) and this server reference; 3.x clients get CONNACK 3 (server unavailable).
   */
  serverReference?: string;
  serverMoved?: boolean;
  /** prefix of the response information given to v5 clients that request it (request/response) */
  responseInformation: string;
  /** how a shared subscription group picks a member: round_robin (default), random, hash (by publisher) */
  sharedSubscriptionStrategy: ShareStrategy;
  hooks: BrokerHooks;
  logger?: Logger;
  store?: Store;
  /**
   * The cluster bus (src/cluster; `openCluster`): with it the broker is one node of a cluster whose state is
   * in the bus's Redis store, which must be `store` too.
   */
  bus?: Bus;
  /** version string for $SYS/broker/version and the log */
  version: string;
  /** the broker's time and timers (keepalive, expiry, will delay, $SYS); default: the real clock */
  clock?: Clock;
}

export const MIDGE_VERSION = '0.1.0';

export function defaultBrokerOptions(): BrokerOptions {
  return {
    listeners: [],
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
    persistentClientExpiration: undefined,
    allowAnonymous: true,
    allowZeroLengthClientid: true,
    queueQos0Messages: false,
    maxTopicAlias: 10,
    maxSocketBuffer: 4 * 1024 * 1024,
    maxPendingPackets: 1000,
    connectTimeout: 30,
    sharedSubscriptionStrategy: 'round_robin',
    responseInformation: 'response/',
    hooks: {},
    version: `midge version ${MIDGE_VERSION}`,
  };
}
