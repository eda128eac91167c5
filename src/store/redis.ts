import { randomUUID } from 'node:crypto';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import type { QoS } from '../codec/types.js';
import { decodeProps, encodeProps } from './encode.js';
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

/**
 * ARGV[1] = prefix; then, optionally, the commit's place in its store's sequence ('Z', TOKEN, SEQ,
 * RESUME); then the changes, each an op letter and a fixed number of arguments.
 * The sequence lets a store have several commits in flight (RedisStore.pipeline): `P cseq:TOKEN` holds
 * the last SEQ applied. A commit already applied (SEQ not above it: a retry whose first reply was lost)
 * does nothing and returns -1. Otherwise a commit must follow the last one applied, or it is refused
 * before anything is written (it was issued behind a commit that failed), unless it is the store's
 * first commit after a failure (RESUME '1': the failed set again). The key lives 30 days after the
 * last commit; a store idle for longer has its next commit refused once, then applied as a retry.
 * SEQ is stored after the changes, so a script stopped halfway is applied again in full by the retry
 * (every change is an upsert or a delete by key).
 * Pass 1 checks every reference (enqueue, inflight, retain) before anything is written: Redis does
 * not roll a script back, so a set that refers to a message that is neither stored nor recorded
 * earlier in the set is refused whole, with the message id in the error. Pass 2 applies the changes
 * in order; messages whose count dropped to 0 (or that were written without a reference) are deleted
 * at the end. Returns the number of stored message bodies.
 */
const COMMIT_LUA = `
local P = ARGV[1]
local n = #ARGV
local ARITY = { M = 2, S = 2, D = 1, B = 3, U = 2, E = 4, Q = 2, F = 4, G = 2, ['2'] = 2, ['3'] = 2, R = 2, X = 1, W = 2, V = 1,
  Y = 2, C = 2, I = 2, J = 2, L = 3, K = 2, O = 2, H = 2 }
local first = 2
local cseq, seq = nil, nil
if ARGV[2] == 'Z' then
  cseq, seq = P .. 'cseq:' .. ARGV[3], tonumber(ARGV[4])
  if seq == nil or n < 5 then return redis.error_reply('MIDGE malformed commit sequence number') end
  local got = redis.call('GET', cseq) or '0'
  local cur = tonumber(got)
  if cur >= seq then return -1 end
  if ARGV[5] ~= '1' and cur ~= seq - 1 then
    return redis.error_reply('MIDGE commit ' .. ARGV[4] .. ' not applied: an earlier commit failed (the last applied is ' .. got .. ')')
  end
  first = 6
end
local known = {}
local i = first
while i <= n do
  local op = ARGV[i]
  local a = ARITY[op]
  if a == nil or i + a > n then return redis.error_reply('MIDGE malformed change set at argument ' .. i) end
  local id = nil
  if op == 'M' then known[ARGV[i + 1]] = true
  elseif op == 'E' or op == 'F' then id = ARGV[i + 3]
  elseif op == 'R' then id = ARGV[i + 2] end
  if id ~= nil and not known[id] then
    if redis.call('EXISTS', P .. 'm:' .. id) == 0 then
      return redis.error_reply('MIDGE message ' .. id .. ' is referenced but not stored')
    end
    known[id] = true
  end
  i = i + 1 + a
end

local meta = P .. 'meta'
local touched = {}
local function ref(id, d)
  local k = P .. 'm:' .. id
  if redis.call('EXISTS', k) == 0 then return end
  redis.call('HINCRBY', k, 'r', d)
  touched[id] = true
end
local function raise(field, v)
  local cur = redis.call('HGET', meta, field)
  if not cur or tonumber(v) > tonumber(cur) then redis.call('HSET', meta, field, v) end
end
local function second(s) return string.match(s, '^[^|]*|([^|]*)|') end

i = first
while i <= n do
  local op = ARGV[i]
  local x, y, z, w = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if op == 'M' then
    local k = P .. 'm:' .. x
    if redis.call('EXISTS', k) == 0 then
      redis.call('HSET', k, 'd', y, 'r', 0)
      redis.call('HINCRBY', meta, 'messages', 1)
      raise('lastMessageId', x)
    end
    touched[x] = true
  elseif op == 'S' then
    redis.call('HSET', P .. 'sess', x, y)
    redis.call('ZADD', P .. 'sessz', 0, x)
  elseif op == 'D' then
    redis.call('HDEL', P .. 'sess', x)
    redis.call('ZREM', P .. 'sessz', x)
    local fk = P .. 'subf:' .. x
    for _, key in ipairs(redis.call('SMEMBERS', fk)) do
      redis.call('HDEL', P .. 'subs', key)
      redis.call('ZREM', P .. 'subsz', key)
    end
    redis.call('DEL', fk)
    local qk = P .. 'q:' .. x
    for _, m in ipairs(redis.call('ZRANGE', qk, 0, -1)) do ref(second(m), -1) end
    local ik = P .. 'f:' .. x
    for _, v in ipairs(redis.call('HVALS', ik)) do ref(second(v), -1) end
    redis.call('DEL', qk, ik, P .. 'q2:' .. x)
  elseif op == 'B' then
    redis.call('HSET', P .. 'subs', y, z)
    redis.call('ZADD', P .. 'subsz', 0, y)
    redis.call('SADD', P .. 'subf:' .. x, y)
  elseif op == 'U' then
    redis.call('HDEL', P .. 'subs', y)
    redis.call('ZREM', P .. 'subsz', y)
    redis.call('SREM', P .. 'subf:' .. x, y)
  elseif op == 'E' then
    local qk = P .. 'q:' .. x
    local old = redis.call('ZRANGEBYSCORE', qk, y, y)
    ref(z, 1)
    for _, m in ipairs(old) do
      redis.call('ZREM', qk, m)
      ref(second(m), -1)
    end
    redis.call('ZADD', qk, y, w)
    raise('lastSeq', y)
  elseif op == 'Q' then
    local qk = P .. 'q:' .. x
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', qk, y, y)) do
      redis.call('ZREM', qk, m)
      ref(second(m), -1)
    end
  elseif op == 'F' then
    local ik = P .. 'f:' .. x
    local old = redis.call('HGET', ik, y)
    local ord
    if old then ord = string.match(old, '^([^|]*)|')
    else ord = string.format('%.0f', redis.call('HINCRBY', meta, 'ord', 1)) end
    ref(z, 1)
    redis.call('HSET', ik, y, ord .. '|' .. z .. '|' .. w)
    if old then ref(second(old), -1) end
  elseif op == 'G' then
    local ik = P .. 'f:' .. x
    local old = redis.call('HGET', ik, y)
    if old then
      redis.call('HDEL', ik, y)
      ref(second(old), -1)
    end
  elseif op == '2' then
    redis.call('SADD', P .. 'q2:' .. x, y)
  elseif op == '3' then
    redis.call('SREM', P .. 'q2:' .. x, y)
  elseif op == 'R' then
    local old = redis.call('HGET', P .. 'r', x)
    ref(y, 1)
    redis.call('HSET', P .. 'r', x, y)
    redis.call('ZADD', P .. 'rz', 0, x)
    if old then ref(old, -1) end
  elseif op == 'X' then
    local old = redis.call('HGET', P .. 'r', x)
    if old then
      redis.call('HDEL', P .. 'r', x)
      redis.call('ZREM', P .. 'rz', x)
      ref(old, -1)
    end
  elseif op == 'W' then
    redis.call('HSET', P .. 'wills', x, y)
  elseif op == 'V' then
    redis.call('HDEL', P .. 'wills', x)
  -- the cluster's ops (src/cluster/redis-bus.ts): forwards, inbox cursor, subscription index, live wills, owners
  elseif op == 'Y' then
    redis.call('XADD', P .. 'in:' .. x, '*', 'd', y)
  elseif op == 'C' then
    redis.call('SET', P .. 'cur:' .. x, y)
    redis.call('XTRIM', P .. 'in:' .. x, 'MINID', y)
  elseif op == 'I' then
    if redis.call('SADD', P .. 'idx:' .. x, y) == 1 then redis.call('PUBLISH', P .. 'bus', 'i+' .. x .. '\\n' .. y) end
  elseif op == 'J' then
    if redis.call('SREM', P .. 'idx:' .. x, y) == 1 then redis.call('PUBLISH', P .. 'bus', 'i-' .. x .. '\\n' .. y) end
  elseif op == 'L' then
    redis.call('HSET', P .. 'lwill:' .. x, y, z)
  elseif op == 'K' then
    redis.call('HDEL', P .. 'lwill:' .. x, y)
  elseif op == 'O' then
    redis.call('HSET', P .. 'owner', x, y)
  elseif op == 'H' then
    if redis.call('HGET', P .. 'owner', x) == y then redis.call('HDEL', P .. 'owner', x) end
  end
  i = i + 1 + ARITY[op]
end

for id in pairs(touched) do
  local k = P .. 'm:' .. id
  local r = redis.call('HGET', k, 'r')
  if r and tonumber(r) <= 0 then
    redis.call('DEL', k)
    redis.call('HINCRBY', meta, 'messages', -1)
  end
end
if cseq ~= nil then redis.call('SET', cseq, ARGV[4], 'EX', 2592000) end
return tonumber(redis.call('HGET', meta, 'messages') or '0')
`;

/** ARGV: prefix, client id. One consistent read of a client's window and the bodies it refers to. */
const WINDOW_LUA = `
local P, c = ARGV[1], ARGV[2]
local f = redis.call('HGETALL', P .. 'f:' .. c)
local q = redis.call('ZRANGE', P .. 'q:' .. c, 0, -1)
local q2 = redis.call('SMEMBERS', P .. 'q2:' .. c)
local seen, bodies = {}, {}
local function want(s)
  local id = string.match(s, '^[^|]*|([^|]*)|')
  if id and not seen[id] then
    seen[id] = true
    local d = redis.call('HGET', P .. 'm:' .. id, 'd')
    if d then
      bodies[#bodies + 1] = id
      bodies[#bodies + 1] = d
    end
  end
end
for j = 2, #f, 2 do want(f[j]) end
for _, m in ipairs(q) do want(m) end
return { f, q, q2, bodies }
`;

/**
 * ARGV: prefix, table ('sess' | 'subs' | 'r'), first page ('1' or '0'), cursor (the last member of
 * the previous page), count. Returns { members, values }, and for 'r' (values: message ids) also the
 * message bodies (null when the message is gone). One page is one consistent read.
 */
const PAGE_LUA = `
local P, t, first, after, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local min = '-'
if first ~= '1' then min = '(' .. after end
local members = redis.call('ZRANGEBYLEX', P .. t .. 'z', min, '+', 'LIMIT', 0, count)
if #members == 0 then return { members, {}, {} } end
local vals = redis.call('HMGET', P .. t, unpack(members))
if t ~= 'r' then return { members, vals } end
local bodies = {}
for j = 1, #vals do
  if vals[j] then bodies[j] = redis.call('HGET', P .. 'm:' .. vals[j], 'd') else bodies[j] = false end
end
return { members, vals, bodies }
`;

/** ARGV: prefix, 'MessageId' | 'Seq', count. Returns the first id of a block no other caller gets. */
const RESERVE_LUA = `
local meta = ARGV[1] .. 'meta'
local last = tonumber(redis.call('HGET', meta, 'last' .. ARGV[2]) or '0')
local res = tonumber(redis.call('HGET', meta, 'reserved' .. ARGV[2]) or '0')
if res > last then last = res end
redis.call('HSET', meta, 'reserved' .. ARGV[2], string.format('%.0f', last + tonumber(ARGV[3])))
return string.format('%.0f', last + 1)
`;

export type Arg = string | Buffer;

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

// --- encodings ---------------------------------------------------------------------------------

/** A u32 length, a JSON header, then the raw payload bytes (binary-safe: JSON never holds them). */
function packWithPayload(header: Record<string, unknown>, payload: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const out = Buffer.allocUnsafe(4 + h.length + payload.length);
  out.writeUInt32LE(h.length, 0);
  h.copy(out, 4);
  payload.copy(out, 4 + h.length);
  return out;
}

function unpackWithPayload(b: Buffer): { header: Record<string, unknown>; payload: Buffer } {
  const n = b.readUInt32LE(0);
  // a copy: the reply buffer is not handed out
  return { header: JSON.parse(b.toString('utf8', 4, 4 + n)) as Record<string, unknown>, payload: Buffer.from(b.subarray(4 + n)) };
}

export function encodeMessage(m: StoredMessage): Buffer {
  const h: Record<string, unknown> = { t: m.topic, q: m.qos, r: m.retain ? 1 : 0 };
  const p = encodeProps(m.properties);
  if (p !== null) h.p = p;
  if (m.expiresAt !== undefined) h.e = m.expiresAt;
  if (m.origin !== undefined) h.o = m.origin;
  return packWithPayload(h, m.payload);
}

export function decodeMessage(id: number, b: Buffer): StoredMessage {
  const { header: h, payload } = unpackWithPayload(b);
  const m: StoredMessage = { id, topic: h.t as string, payload, qos: h.q as QoS, retain: h.r === 1 };
  const props = decodeProps((h.p as string | undefined) ?? null);
  if (props !== undefined) m.properties = props;
  if (h.e !== undefined) m.expiresAt = h.e as number;
  if (h.o !== undefined) m.origin = h.o as string;
  return m;
}

function encodeSession(s: StoredSession): string {
  const h: Record<string, unknown> = { v: s.protocolVersion, e: s.expiryInterval };
  if (s.username !== undefined) h.u = s.username;
  if (s.listenerPort !== undefined) h.l = s.listenerPort;
  if (s.disconnectedAt !== undefined) h.d = s.disconnectedAt;
  return JSON.stringify(h);
}

function decodeSession(clientId: string, text: string): StoredSession {
  const h = JSON.parse(text) as Record<string, unknown>;
  const s: StoredSession = { clientId, protocolVersion: h.v as StoredSession['protocolVersion'], expiryInterval: h.e as number };
  if (h.u !== undefined) s.username = h.u as string;
  if (h.l !== undefined) s.listenerPort = h.l as number;
  if (h.d !== undefined) s.disconnectedAt = h.d as number;
  return s;
}

function encodeSub(s: StoredSubscription): string {
  const h: Record<string, unknown> = { q: s.qos, n: s.noLocal ? 1 : 0, a: s.retainAsPublished ? 1 : 0, h: s.retainHandling };
  if (s.subscriptionId !== undefined) h.i = s.subscriptionId;
  return JSON.stringify(h);
}

function decodeSub(filter: string, text: string): StoredSubscription {
  const h = JSON.parse(text) as Record<string, unknown>;
  const s: StoredSubscription = { filter, qos: h.q as QoS, noLocal: h.n === 1, retainAsPublished: h.a === 1, retainHandling: h.h as 0 | 1 | 2 };
  if (h.i !== undefined) s.subscriptionId = h.i as number;
  return s;
}

/** "N:CLIENTFILTER", N the byte length of the client id: unambiguous whatever the two contain. */
function subKey(clientId: string, filter: string): string {
  return `${Buffer.byteLength(clientId, 'utf8')}:${clientId}${filter}`;
}

function splitSubKey(key: Buffer): { clientId: string; filter: string } {
  const colon = key.indexOf(0x3a);
  const n = Number(key.toString('latin1', 0, colon));
  return { clientId: key.toString('utf8', colon + 1, colon + 1 + n), filter: key.toString('utf8', colon + 1 + n) };
}

export function encodeWill(w: StoredWill): Buffer {
  const h: Record<string, unknown> = { t: w.will.topic, q: w.will.qos, r: w.will.retain ? 1 : 0, f: w.fireAt };
  const p = encodeProps(w.will.properties);
  if (p !== null) h.p = p;
  if (w.username !== undefined) h.u = w.username;
  if (w.listenerPort !== undefined) h.l = w.listenerPort;
  return packWithPayload(h, w.will.payload);
}

export function decodeWill(clientId: string, b: Buffer): StoredWill {
  const { header: h, payload } = unpackWithPayload(b);
  const w: StoredWill = { clientId, will: { topic: h.t as string, payload, qos: h.q as QoS, retain: h.r === 1 }, fireAt: h.f as number };
  const props = decodeProps((h.p as string | undefined) ?? null);
  if (props !== undefined) w.will.properties = props;
  if (h.u !== undefined) w.username = h.u as string;
  if (h.l !== undefined) w.listenerPort = h.l as number;
  return w;
}

/** The JSON part of a queue member or in-flight value (after "SEQ|MESSAGEID|" / "ORD|MESSAGEID|"). */
function encodeRef(r: QueuedRef | InflightRef): string {
  const h: Record<string, unknown> = { q: r.qos, r: r.retain ? 1 : 0 };
  if (r.subIds !== undefined) h.s = r.subIds;
  if ('state' in r) h.st = r.state === 'pubrel' ? 1 : 0;
  return JSON.stringify(h);
}

/** "A|B|JSON" -> [A, B, the parsed JSON] */
function splitRef(b: Buffer): [number, number, Record<string, unknown>] {
  const s = b.toString('utf8');
  const i = s.indexOf('|');
  const j = s.indexOf('|', i + 1);
  return [Number(s.slice(0, i)), Number(s.slice(i + 1, j)), JSON.parse(s.slice(j + 1)) as Record<string, unknown>];
}

/** A change set as the commit script's arguments (after the prefix). */
function encodeArgs(prefix: string, changes: readonly Change[], header: readonly Arg[] = []): Arg[] {
  const a: Arg[] = [prefix, ...header];
  for (const c of changes) {
    switch (c.op) {
      case 'message': a.push('M', String(c.msg.id), encodeMessage(c.msg)); break;
      case 'session': a.push('S', c.session.clientId, encodeSession(c.session)); break;
      case 'dropSession': a.push('D', c.clientId); break;
      case 'sub': a.push('B', c.clientId, subKey(c.clientId, c.sub.filter), encodeSub(c.sub)); break;
      case 'unsub': a.push('U', c.clientId, subKey(c.clientId, c.filter)); break;
      case 'enqueue': {
        const r = c.ref;
        a.push('E', c.clientId, String(r.seq), String(r.messageId), `${r.seq}|${r.messageId}|${encodeRef(r)}`);
        break;
      }
      case 'dequeue': a.push('Q', c.clientId, String(c.seq)); break;
      case 'inflight': a.push('F', c.clientId, String(c.ref.packetId), String(c.ref.messageId), encodeRef(c.ref)); break;
      case 'inflightDone': a.push('G', c.clientId, String(c.packetId)); break;
      case 'qos2': a.push('2', c.clientId, String(c.packetId)); break;
      case 'qos2Done': a.push('3', c.clientId, String(c.packetId)); break;
      case 'retain': a.push('R', c.topic, String(c.messageId)); break;
      case 'unretain': a.push('X', c.topic); break;
      case 'will': a.push('W', c.will.clientId, encodeWill(c.will)); break;
      case 'willDone': a.push('V', c.clientId); break;
      default:
        throw new StoreError(`redis store: unknown change ${JSON.stringify((c as { op?: unknown }).op)}`);
    }
  }
  return a;
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
   * script refuses one that does not follow the last applied (see COMMIT_LUA), so that nothing issued
   * behind a failed commit is applied before the caller retries it.
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
