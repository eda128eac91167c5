import { randomUUID } from 'node:crypto';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import type { QoS } from '../codec/types.js';
import { decodeMessage, decodeSession, decodeSub, decodeWill, encodeArgs, splitRef, splitSubKey, type Arg } from './redis-encode.js';
import { COMMIT_LUA, PAGE_LUA, RESERVE_LUA, WINDOW_LUA } from './redis-scripts.js';
import { redactRedisUrl, redisOptionsFromUrl, RedisUrlError } from './redis-url.js';
import {
  StoreError,
  type Change,
  type InflightRef,
  type QueuedRef,
  type Store,
  type StoredMessage,
  type StoredSession,
  type StoredSubscription,
  type StoredWill,
  type Window,
} from './store.js';

/**
 * The Redis store (docs/persistence.md "Redis store"): the durable state of one deployment in one
 * Redis (standalone or behind Sentinel; not Redis Cluster), under a key prefix (default `midge:`)
 * so that several deployments can share a Redis. Every commit is ONE round trip: one EVALSHA of the
 * commit script (the first call on a new connection is an EVAL carrying the script's text), which
 * applies the whole change set atomically; it resolves only when Redis has applied it.
 *
 * Keys (P = the prefix):
 *   P meta            hash: schema, lastMessageId, lastSeq, messages (count of stored bodies),
 *                     ord (in-flight insertion counter), reservedMessageId, reservedSeq
 *   P m:ID            hash: d (the encoded message, opaque to Lua), r (reference count)
 *   P sess, P sessz   hash client id -> encoded session; sorted set (all scores 0) of client ids, for paging
 *   P subs, P subsz   hash subKey -> encoded subscription; sorted set of subKeys, for paging
 *   P subf:CLIENT     set of the client's subKeys (dropSession)
 *   P q:CLIENT        sorted set, score seq, member "SEQ|MESSAGEID|JSON"
 *   P f:CLIENT        hash packet id -> "ORD|MESSAGEID|JSON" (ORD: the first-insertion order)
 *   P q2:CLIENT       set of incoming QoS 2 packet ids
 *   P r, P rz         hash topic -> message id; sorted set of topics, for paging
 *   P wills           hash client id -> encoded will
 * subKey is "N:CLIENTFILTER" with N the byte length of the client id. Paging over sorted sets whose
 * scores are all 0 (ZRANGEBYLEX, cursor = the last member) never repeats or skips an entry that
 * stays, unlike SCAN.
 *
 * Numbers travel as decimal strings and the scripts never turn an id or a seq back into a string
 * from a Lua number (doubles print with 14 digits); counters they create use %.0f.
 */

const SCHEMA = 1;

/** Commits a Redis store may have in flight at once (Store.pipeline). */
const PIPELINE = 4;


interface Scripts {
  /** one array, not spread: a turn's change set can hold hundreds of thousands of arguments (ioredis flattens it) */
  midgeCommit(args: Arg[]): Promise<number>;
  midgeWindowBuffer(...args: Arg[]): Promise<[Buffer[], Buffer[], Buffer[], Buffer[]]>;
  midgePageBuffer(...args: Arg[]): Promise<[Buffer[], Array<Buffer | null>, Array<Buffer | null>?]>;
  midgeReserve(...args: Arg[]): Promise<string>;
}
type Client = RedisClient & Scripts;

export interface RedisStoreOptions {
  /**
   * `redis://[user:pass@]HOST[:PORT][/DB]`, `rediss://...` (TLS) or
   * `redis+sentinel://[user:pass@]H1[:P1][,H2[:P2]...]/MASTERNAME[/DB]` (see redis-url.ts)
   */
  url: string;
  /** prefix of every key (default `midge:`): deployments sharing a Redis need different prefixes */
  prefix?: string;
  /** a command without a reply after this long is rejected (default 5000 ms) */
  commandTimeoutMs?: number;
  /** opening gives up after this long (default 5000 ms) */
  connectTimeoutMs?: number;
  /** TLS options for a `rediss://` URL (e.g. `ca` for a private certificate authority, `servername`); ignored for `redis://` */
  tls?: TlsOptions;
  /** entries per page of loadSessions / loadSubscriptions / loadRetained / loadWills (default 500, at most 1000) */
  pageSize?: number;
}

export { redisOptionsFromUrl, redactRedisUrl, RedisUrlError } from './redis-url.js';

/** `redisOptionsFromUrl`, its RedisUrlError turned into a StoreError (never showing the credentials). */
function urlOptions(url: string): { options: RedisOptions; address: string } {
  try {
    return redisOptionsFromUrl(url);
  } catch (err) {
    if (err instanceof RedisUrlError) throw new StoreError(`redis store: invalid URL ${redactRedisUrl(url)}: ${err.message}`);
    throw err;
  }
}

/**
 * The URL as an address for messages: scheme, host(s), port(s), master name (Sentinel) and database,
 * never the user or password. A URL that is not valid is a StoreError saying why.
 */
export function redisAddress(url: string): string {
  return urlOptions(url).address;
}

/**
 * Connects, checks (or writes) the schema version and returns the store. A Redis that cannot be
 * reached, refuses the credentials or holds a newer schema under the prefix is a StoreError naming
 * the address (never the password).
 */
export async function openRedisStore(opts: RedisStoreOptions): Promise<RedisStore> {
  const { options: fromUrl, address } = urlOptions(opts.url);
  let Redis: typeof RedisClient;
  try {
    Redis = (await import('ioredis')).Redis;
  } catch (err) {
    throw new StoreError(`cannot open the redis store ${address}: the ioredis module is not available (${String(err)})`, undefined, { cause: err });
  }
  const commandTimeout = opts.commandTimeoutMs ?? 5000;
  const options: RedisOptions = {
    ...fromUrl,
    lazyConnect: true,
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    // A command without a reply (a Redis that hangs) is rejected after this: nothing waits forever.
    commandTimeout,
    // No offline queue: while the connection is down, a command is rejected at once instead of
    // waiting for a reconnect. The broker retries a failed commit with back-off and acknowledges
    // nothing meanwhile, so queueing here would only hide the outage and hold memory.
    enableOfflineQueue: false,
    // A command sent when the connection dies is rejected at the first reconnection attempt, never
    // resent by ioredis: whether it was applied is unknown, and the broker's retry of the same set
    // is safe (every change is an upsert or a delete by key; a recorded message is kept as it is).
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // Reconnect forever in the background (100 ms, 200 ms, ... at most 2 s apart): commits work
    // again as soon as Redis is back.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    // Smart client handoff notifications are for managed Redis Enterprise endpoints; not asked for,
    // one command less at each connect.
    maintNotifications: 'disabled',
    connectionName: 'midge-store',
  };
  if (opts.tls !== undefined && address.startsWith('rediss:')) options.tls = opts.tls;
  if (options.sentinels !== undefined) {
    // the Sentinels too: a hanging one is given up after the connect timeout, and they are asked again
    // in the background (at most 2 s apart) while none answers, as the master is
    options.sentinelRetryStrategy = (times) => Math.min(times * 100, 2000);
    options.sentinelCommandTimeout = options.connectTimeout;
  }
  const client = new Redis(options) as Client;
  let lastError: Error | undefined;
  // Without a listener ioredis prints every connection error; the store reports them through its promises.
  client.on('error', (err: Error) => (lastError = err));
  client.defineCommand('midgeCommit', { lua: COMMIT_LUA, numberOfKeys: 0 });
  client.defineCommand('midgeWindow', { lua: WINDOW_LUA, numberOfKeys: 0, readOnly: true });
  client.defineCommand('midgePage', { lua: PAGE_LUA, numberOfKeys: 0, readOnly: true });
  client.defineCommand('midgeReserve', { lua: RESERVE_LUA, numberOfKeys: 0 });
  const prefix = opts.prefix ?? 'midge:';
  try {
    await withTimeout(client.connect(), (opts.connectTimeoutMs ?? 5000) + 1000, 'connecting');
    const meta = `${prefix}meta`;
    const found = await client.hget(meta, 'schema');
    if (found === null) await client.hsetnx(meta, 'schema', String(SCHEMA));
    else if (Number(found) > SCHEMA) {
      throw new StoreError(`redis store ${address} (prefix ${prefix}) has schema version ${found}, newer than this Midge supports (${SCHEMA}): it was written by a newer Midge`);
    }
    const count = Number((await client.hget(meta, 'messages')) ?? 0);
    return new RedisStore(client, address, prefix, count, Math.min(Math.max(Math.floor(opts.pageSize ?? 500), 1), 1000));
  } catch (err) {
    client.disconnect();
    if (err instanceof StoreError) throw err;
    throw new StoreError(`cannot open the redis store ${address}: ${errText(err, lastError)}`, codeOf(err) ?? codeOf(lastError), { cause: err });
  }
}

function errText(err: unknown, last?: Error): string {
  const m = err instanceof Error ? err.message : String(err);
  // ioredis says only "Connection is closed." when connect() fails; the socket error says why.
  return last !== undefined && last.message !== m ? `${m} (${last.message})` : m;
}

function codeOf(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// --- the store ---------------------------------------------------------------------------------

/**
 * Message ids and queue seqs in a cluster: `loadMeta` gives the highest ever stored, which is enough
 * for one node. Several nodes on one Redis must not allocate the same ids: each takes blocks with
 * `reserveIds` (an atomic counter in Redis, never below what is stored) and hands them out locally,
 * taking the next block when one is used up. The `Store` interface does not change; the broker asks
 * for this only when its store is a RedisStore.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  /**
   * Commits in flight at once: Redis applies one connection's commands in order, and the commit
   * script (COMMIT_LUA, redis-scripts.ts) refuses one that does not follow the last applied, so
   * that nothing issued behind a failed commit is applied before the caller retries it.
   */
  readonly pipeline = PIPELINE;
  /** this store's commit sequence in Redis (`P cseq:TOKEN`): new with every open store */
  private readonly token = randomUUID();
  private nextSeq = 1;
  /** bumped by the first failure of each series: failures of commits issued before it change nothing */
  private epoch = 0;
  /** a commit failed: the next one issued is the caller's retry of it (applied whatever came before) */
  private resume = false;
  private closed = false;
  private messages: number;
  /** the connection's last error since it was last ready (why a command failed while it is down) */
  private lastError: Error | undefined;

  /** Use openRedisStore(). */
  constructor(
    /** @internal the connection: for tests */
    readonly client: Client,
    /** the Redis address, for messages: scheme, host, port, database; no credentials */
    readonly address: string,
    readonly prefix: string,
    messages: number,
    private readonly pageSize: number,
  ) {
    this.messages = messages;
    client.on('error', (err: Error) => (this.lastError = err));
    client.on('ready', () => (this.lastError = undefined));
  }

  /**
   * test-only: how many message bodies are stored, as of this store's last commit (or its opening):
   * the count is kept by the commit script in `P meta` and returned by every commit. Commits of
   * other stores on the same prefix are not seen until the next commit; `countMessages()` asks Redis.
   */
  messageCount(): number {
    return this.messages;
  }

  async countMessages(): Promise<number> {
    return Number((await this.run('reading the message count', () => this.client.hget(`${this.prefix}meta`, 'messages'))) ?? 0);
  }

  private fail(what: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    let m = err instanceof Error ? err.message : String(err);
    m = m.replace(/^MIDGE /, '');
    let code = codeOf(err);
    if (this.client.status !== 'ready') {
      // ioredis says "Stream isn't writeable..." or "Connection is closed.": say what is known instead
      m = `not connected to Redis (${this.client.status}${this.lastError === undefined ? '' : `: ${this.lastError.message}`})`;
      code ??= codeOf(this.lastError);
    }
    return new StoreError(`redis store ${this.address}: ${what} failed: ${m}`, code, { cause: err });
  }

  private async run<T>(what: string, f: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError(`redis store ${this.address} is closed`);
    try {
      return await f();
    } catch (err) {
      throw this.fail(what, err);
    }
  }

  async loadMeta(): Promise<{ lastMessageId: number; lastSeq: number }> {
    const [id, seq] = await this.run('loadMeta', () => this.client.hmget(`${this.prefix}meta`, 'lastMessageId', 'lastSeq'));
    return { lastMessageId: Number(id ?? 0), lastSeq: Number(seq ?? 0) };
  }

  /**
   * Reserves `count` consecutive ids (message ids or queue seqs) for this caller alone and returns
   * the first; blocks never overlap each other or anything stored before. For several nodes on one
   * Redis (see the class comment).
   */
  async reserveIds(what: 'messageId' | 'seq', count: number): Promise<number> {
    if (!Number.isSafeInteger(count) || count < 1) throw new StoreError(`redis store: cannot reserve ${count} ids`);
    const first = await this.run('reserveIds', () => this.client.midgeReserve(this.prefix, what === 'seq' ? 'Seq' : 'MessageId', String(count)));
    return Number(first);
  }

  /** One table ('sess' | 'subs' | 'r') page by page: members in byte order, each once. */
  private async *pages(table: 'sess' | 'subs' | 'r', what: string): AsyncGenerator<[Buffer, Buffer | null, Buffer | null]> {
    let first = true;
    let after: Buffer = Buffer.alloc(0);
    for (;;) {
      const [members, values, bodies] = await this.run(what, () =>
        this.client.midgePageBuffer(this.prefix, table, first ? '1' : '0', after, String(this.pageSize)),
      );
      for (let i = 0; i < members.length; i++) yield [members[i]!, values[i] ?? null, bodies?.[i] ?? null];
      if (members.length < this.pageSize) return;
      first = false;
      after = members[members.length - 1]!;
    }
  }

  async *loadSessions(): AsyncIterable<StoredSession> {
    for await (const [id, v] of this.pages('sess', 'loadSessions')) {
      if (v !== null) yield decodeSession(id.toString('utf8'), v.toString('utf8'));
    }
  }

  async *loadSubscriptions(): AsyncIterable<{ clientId: string; sub: StoredSubscription }> {
    for await (const [key, v] of this.pages('subs', 'loadSubscriptions')) {
      if (v === null) continue;
      const { clientId, filter } = splitSubKey(key);
      yield { clientId, sub: decodeSub(filter, v.toString('utf8')) };
    }
  }

  async *loadRetained(): AsyncIterable<{ topic: string; message: StoredMessage }> {
    for await (const [topic, id, body] of this.pages('r', 'loadRetained')) {
      if (id !== null && body !== null) yield { topic: topic.toString('utf8'), message: decodeMessage(Number(id.toString('latin1')), body) };
    }
  }

  async loadSession(clientId: string): Promise<StoredSession | undefined> {
    const v = await this.run('loadSession', () => this.client.hget(`${this.prefix}sess`, clientId));
    return v === null ? undefined : decodeSession(clientId, v);
  }

  /** One client's subscriptions (the cluster loads a session on demand). */
  async loadClientSubscriptions(clientId: string): Promise<StoredSubscription[]> {
    const keys = await this.run('loadClientSubscriptions', () => this.client.smembersBuffer(`${this.prefix}subf:${clientId}`));
    if (keys.length === 0) return [];
    const vals = await this.run('loadClientSubscriptions', () => this.client.hmgetBuffer(`${this.prefix}subs`, ...keys));
    const out: StoredSubscription[] = [];
    for (let i = 0; i < keys.length; i++) {
      const v = vals[i];
      if (v === null || v === undefined) continue;
      out.push(decodeSub(splitSubKey(keys[i]!).filter, v.toString('utf8')));
    }
    return out;
  }

  /** One client's delayed will, if any. */
  async loadWill(clientId: string): Promise<StoredWill | undefined> {
    const v = await this.run('loadWill', () => this.client.hgetBuffer(`${this.prefix}wills`, clientId));
    return v === null ? undefined : decodeWill(clientId, v);
  }

  async loadWindow(clientId: string): Promise<Window> {
    const [f, q, q2, bodies] = await this.run('loadWindow', () => this.client.midgeWindowBuffer(this.prefix, clientId));
    const byId = new Map<number, Buffer>();
    for (let i = 0; i + 1 < bodies.length; i += 2) byId.set(Number(bodies[i]!.toString('latin1')), bodies[i + 1]!);
    const w: Window = { inflight: [], queued: [], incomingQos2: [] };
    const inflight: Array<[number, InflightRef & { message: StoredMessage }]> = [];
    for (let i = 0; i + 1 < f.length; i += 2) {
      const [ord, messageId, h] = splitRef(f[i + 1]!);
      const body = byId.get(messageId);
      if (body === undefined) continue;
      const r: InflightRef = { packetId: Number(f[i]!.toString('latin1')), messageId, qos: h.q as QoS, retain: h.r === 1, state: h.st === 1 ? 'pubrel' : 'publish' };
      if (h.s !== undefined) r.subIds = h.s as number[];
      inflight.push([ord, { ...r, message: decodeMessage(messageId, body) }]);
    }
    w.inflight = inflight.sort((a, b) => a[0] - b[0]).map((x) => x[1]);
    for (const m of q) {
      const [seq, messageId, h] = splitRef(m);
      const body = byId.get(messageId);
      if (body === undefined) continue;
      const r: QueuedRef = { seq, messageId, qos: h.q as QoS, retain: h.r === 1 };
      if (h.s !== undefined) r.subIds = h.s as number[];
      w.queued.push({ ...r, message: decodeMessage(messageId, body) });
    }
    w.incomingQos2 = q2.map((b) => Number(b.toString('latin1'))).sort((a, b) => a - b);
    return w;
  }

  async loadWills(): Promise<StoredWill[]> {
    // HSCAN may return an entry twice (while Redis rehashes): the map keeps one per client.
    const wills = new Map<string, StoredWill>();
    const key = `${this.prefix}wills`;
    let cursor = '0';
    do {
      const [next, flat] = await this.run('loadWills', () => this.client.hscanBuffer(key, cursor, 'COUNT', this.pageSize));
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const clientId = flat[i]!.toString('utf8');
        wills.set(clientId, decodeWill(clientId, flat[i + 1]!));
      }
      cursor = next.toString('latin1');
    } while (cursor !== '0');
    return [...wills.values()];
  }

  /**
   * `cluster`: the cluster bus's ops of the same turn (src/cluster/redis-bus.ts), as the script's
   * arguments (op letter and its arguments), applied after the changes in the same script.
   */
  async commit(changes: readonly Change[], cluster?: readonly Arg[]): Promise<void> {
    if (this.closed) throw new StoreError(`redis store ${this.address} is closed`);
    // A failure makes the caller issue that commit again, then those after it, in order: they take the
    // same numbers again (a number already applied, whose reply was lost, is then a no-op in Redis).
    const seq = this.nextSeq++;
    const epoch = this.epoch;
    const resume = this.resume;
    this.resume = false;
    const args = encodeArgs(this.prefix, changes, ['Z', this.token, String(seq), resume ? '1' : '0']);
    if (cluster !== undefined) for (const a of cluster) args.push(a);
    try {
      // passed as one array: spreading a large set (a flood's forwards) overflows the call stack
      const stored = await this.run('commit', () => this.client.midgeCommit(args));
      if (stored >= 0) this.messages = stored;
    } catch (err) {
      if (epoch === this.epoch) {
        this.epoch++;
        this.nextSeq = seq;
        this.resume = true;
      }
      throw err;
    }
  }

  /** Quits politely when Redis answers within a second, then drops the connection: never hangs. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.client.status === 'ready') {
      try {
        await withTimeout(this.client.quit(), 1000, 'QUIT');
      } catch {
        // gone or slow: disconnect below
      }
    }
    this.client.disconnect();
  }
}
