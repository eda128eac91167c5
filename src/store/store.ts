import type { Properties, ProtocolVersion, QoS, Will } from '../codec/types.js';

/**
 * Durable state behind the broker (docs/persistence.md). The broker keeps its working state in
 * memory, collects the changes of one event-loop turn and commits them as one transaction
 * (`Store.commit`); acknowledgements (CONNACK, SUBACK, PUBACK, PUBREC) wait for that commit.
 * On start it loads from the store.
 *
 * Implementations: `MemoryStore` (src/store/memory.ts, the reference, used by the contract tests)
 * `SqliteStore` (src/store/sqlite.ts, `openSqliteStore`) and `RedisStore` (src/store/redis.ts,
 * `openRedisStore`, not wired into the broker yet).
 */

/** A message body, stored once however many queues, in-flight windows or retained topics refer to it. */
export interface StoredMessage {
  id: number;
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
  /** ms, wall clock */
  expiresAt?: number;
  origin?: string;
}

export interface StoredSubscription {
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

export interface StoredSession {
  clientId: string;
  protocolVersion: ProtocolVersion;
  username?: string;
  listenerPort?: number;
  /** seconds, 0xFFFFFFFF = never */
  expiryInterval: number;
  /** ms wall clock; undefined = the client was connected when this was last written */
  disconnectedAt?: number;
}

export interface QueuedRef {
  /** order within the client's queue, increasing */
  seq: number;
  messageId: number;
  qos: QoS;
  retain: boolean;
  subIds?: number[];
}

export interface InflightRef {
  packetId: number;
  messageId: number;
  qos: QoS;
  retain: boolean;
  subIds?: number[];
  state: 'publish' | 'pubrel';
}

export interface StoredWill {
  clientId: string;
  will: Will;
  /** ms wall clock */
  fireAt: number;
  username?: string;
  listenerPort?: number;
}

/**
 * One change of a turn. Messages are reference counted: a queue entry, an in-flight entry and a
 * retained topic each hold one reference. A message is freed at the end of the commit in which its
 * last reference went, and a message written by a commit that leaves it without any reference is
 * freed at the end of that commit (so write the `message` and its first reference in one commit).
 */
export type Change =
  /**
   * a message about to be referenced, stored once; freed when its last reference (queue, in-flight,
   * retained) goes. Recording it again (same id) in a later commit, or twice in one, leaves the stored
   * copy as it is.
   */
  | { op: 'message'; msg: StoredMessage }
  /** upsert */
  | { op: 'session'; session: StoredSession }
  /** the session and its subscriptions, queue, in-flight, incoming QoS 2 (not its will) */
  | { op: 'dropSession'; clientId: string }
  /** upsert by (clientId, filter) */
  | { op: 'sub'; clientId: string; sub: StoredSubscription }
  | { op: 'unsub'; clientId: string; filter: string }
  | { op: 'enqueue'; clientId: string; ref: QueuedRef }
  | { op: 'dequeue'; clientId: string; seq: number }
  /** upsert by (clientId, packetId); an update keeps the entry's place in the send order */
  | { op: 'inflight'; clientId: string; ref: InflightRef }
  | { op: 'inflightDone'; clientId: string; packetId: number }
  /** incoming QoS 2 id awaiting PUBREL */
  | { op: 'qos2'; clientId: string; packetId: number }
  | { op: 'qos2Done'; clientId: string; packetId: number }
  /** set (replaces) */
  | { op: 'retain'; topic: string; messageId: number }
  | { op: 'unretain'; topic: string }
  /** upsert by clientId */
  | { op: 'will'; will: StoredWill }
  | { op: 'willDone'; clientId: string };

export interface Window {
  /** in packet-send order (the order of first insertion) */
  inflight: Array<InflightRef & { message: StoredMessage }>;
  /** in seq order */
  queued: Array<QueuedRef & { message: StoredMessage }>;
  incomingQos2: number[];
}

export interface Store {
  readonly kind: 'memory' | 'sqlite' | 'redis';
  /**
   * How many commits the caller may have in flight at once (default 1: the next commit is issued
   * when the previous one has resolved). A store that says more than 1 applies commits in the order
   * they were issued and never applies one issued after a commit that failed: every commit issued
   * before the caller saw the failure is refused (rejected, not applied); the first commit issued
   * after the caller saw it (the failed set again: the caller retries in order) is applied normally.
   */
  readonly pipeline?: number;
  /** the highest message id and queue seq ever stored (the broker continues above them) */
  loadMeta(): Promise<{ lastMessageId: number; lastSeq: number }>;
  /** all sessions (metadata only) */
  loadSessions(): AsyncIterable<StoredSession>;
  loadSubscriptions(): AsyncIterable<{ clientId: string; sub: StoredSubscription }>;
  loadSession(clientId: string): Promise<StoredSession | undefined>;
  /** in-flight in packet-send order, queue in seq order */
  loadWindow(clientId: string): Promise<Window>;
  loadRetained(): AsyncIterable<{ topic: string; message: StoredMessage }>;
  loadWills(): Promise<StoredWill[]>;
  /**
   * apply the changes in order, as ONE transaction; resolves only when durable (per the store's sync setting).
   * `cluster`: the cluster bus's ops of the same turn (only the Redis store, which the cluster runs on, takes them).
   */
  commit(changes: readonly Change[], cluster?: ReadonlyArray<string | Buffer>): Promise<void>;
  close(): Promise<void>;
}

/**
 * A store that cannot do what was asked: open its file (missing directory, locked by another
 * process, not a database, newer schema) or commit (disk full, I/O error). The message names the
 * file; `code` is SQLite's error code when there is one (e.g. 'SQLITE_FULL', 'SQLITE_BUSY'). The Redis
 * store's errors name the Redis address (never its credentials); `code` is the socket's error code
 * when there is one (e.g. 'ECONNREFUSED').
 */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    message: string,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
