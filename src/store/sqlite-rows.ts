import type { QoS } from '../codec/types.js';
import { decodeIds, decodeProps, encodeIds, encodeProps } from './encode.js';
import type { Database } from './sqlite-file.js';
import {
  StoreError,
  type Change,
  type InflightRef,
  type QueuedRef,
  type StoredMessage,
  type StoredSession,
  type StoredWill,
} from './store.js';

/**
 * The SQLite store's tables as rows (src/store/sqlite.ts): the statements it prepares, rows back to
 * stored values, and applying a change set to the tables (inside the caller's transaction).
 */

// --- rows ----------------------------------------------------------------------------------------

const MSG_COLS = 'm.id, m.topic, m.payload, m.qos, m.retain, m.properties, m.expires_at, m.origin';

/**
 * Payloads up to this size come to encodeRetainedRows as hex text (see the `retainedRows` statement):
 * restoring 100,000 retained messages of 64 bytes, the reads of the retained join took about 320 ms
 * against 480 with a Buffer per row.
 */
export const HEX_PAYLOAD_MAX = 4096;

/** A message from a raw row (an array; the message's 8 columns, MSG_COLS, start at `o`): half the cost of row objects. */
export function messageFromRaw(r: unknown[], o: number): StoredMessage {
  const m: StoredMessage = { id: r[o] as number, topic: r[o + 1] as string, payload: r[o + 2] as Buffer, qos: r[o + 3] as QoS, retain: r[o + 4] !== 0 };
  const props = decodeProps(r[o + 5] as string | null);
  if (props !== undefined) m.properties = props;
  if (r[o + 6] !== null) m.expiresAt = r[o + 6] as number;
  if (r[o + 7] !== null) m.origin = r[o + 7] as string;
  return m;
}

export interface SessionRow {
  client_id: string;
  protocol_version: number;
  username: string | null;
  listener_port: number | null;
  expiry_interval: number;
  disconnected_at: number | null;
}

export function sessionFromRow(r: SessionRow): StoredSession {
  const s: StoredSession = { clientId: r.client_id, protocolVersion: r.protocol_version as StoredSession['protocolVersion'], expiryInterval: r.expiry_interval };
  if (r.username !== null) s.username = r.username;
  if (r.listener_port !== null) s.listenerPort = r.listener_port;
  if (r.disconnected_at !== null) s.disconnectedAt = r.disconnected_at;
  return s;
}

export interface RefRow {
  message_id: number;
  qos: number;
  retain: number;
  sub_ids: string | null;
}

export function queuedFromRow(r: RefRow & { seq: number }): QueuedRef {
  const q: QueuedRef = { seq: r.seq, messageId: r.message_id, qos: r.qos as QoS, retain: r.retain !== 0 };
  const ids = decodeIds(r.sub_ids);
  if (ids !== undefined) q.subIds = ids;
  return q;
}

export function inflightFromRow(r: RefRow & { packet_id: number; state: string }): InflightRef {
  const f: InflightRef = {
    packetId: r.packet_id,
    messageId: r.message_id,
    qos: r.qos as QoS,
    retain: r.retain !== 0,
    state: r.state === 'pubrel' ? 'pubrel' : 'publish',
  };
  const ids = decodeIds(r.sub_ids);
  if (ids !== undefined) f.subIds = ids;
  return f;
}

export interface WillRow {
  client_id: string;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  properties: string | null;
  fire_at: number;
  username: string | null;
  listener_port: number | null;
}

export function willFromRow(r: WillRow): StoredWill {
  const w: StoredWill = {
    clientId: r.client_id,
    will: { topic: r.topic, payload: r.payload, qos: r.qos as QoS, retain: r.retain !== 0 },
    fireAt: r.fire_at,
  };
  const props = decodeProps(r.properties);
  if (props !== undefined) w.will.properties = props;
  if (r.username !== null) w.username = r.username;
  if (r.listener_port !== null) w.listenerPort = r.listener_port;
  return w;
}

/** runs of at least this many consecutive message ids losing one reference each go by range (applyChanges) */
const RANGE_MIN = 8;

const b = (v: boolean): number => (v ? 1 : 0);
const n = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

/** Rows per query of the load iterators (no statement stays open across an await). */
export const PAGE = 1000;

/**
 * What the store uses of a prepared statement (better-sqlite3's own type cannot be named in the
 * declarations this module exports).
 */
export interface Statement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  pluck(toggle?: boolean): this;
  raw(toggle?: boolean): this;
}

export function prepare(db: Database) {
  const p = (sql: string): Statement => db.prepare(sql);
  return {
    insMessage: p('INSERT OR IGNORE INTO messages (id, topic, payload, qos, retain, properties, expires_at, origin, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    refs: p('UPDATE messages SET refs = refs + ? WHERE id = ? RETURNING refs'),
    delMessage: p('DELETE FROM messages WHERE id = ?'),
    // ids from ? to ?, each losing one reference (see applyChanges): those left with none go, the others count one less
    delMessageRange: p('DELETE FROM messages WHERE id BETWEEN ? AND ? AND refs <= 1'),
    refsRangeDown: p('UPDATE messages SET refs = refs - 1 WHERE id BETWEEN ? AND ?'),
    // ? = JSON [[id, delta], ...] with distinct ids
    refsBatch: p('UPDATE messages SET refs = refs + (j.value ->> 1) FROM json_each(?) AS j WHERE messages.id = (j.value ->> 0)'),
    refsMissing: p('SELECT j.value ->> 0 FROM json_each(?) AS j WHERE (j.value ->> 1) > 0 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = (j.value ->> 0)) LIMIT 1').pluck(),
    delUnreferenced: p('DELETE FROM messages WHERE id IN (SELECT j.value ->> 0 FROM json_each(?) AS j WHERE (j.value ->> 1) < 0) AND refs <= 0'),
    metaUp: p('UPDATE meta SET value = ? WHERE key = ? AND value < ?'),
    meta: p('SELECT key, value FROM meta'),
    session: p('INSERT OR REPLACE INTO sessions (client_id, protocol_version, username, listener_port, expiry_interval, disconnected_at) VALUES (?, ?, ?, ?, ?, ?)'),
    delSession: p('DELETE FROM sessions WHERE client_id = ?'),
    delSubs: p('DELETE FROM subscriptions WHERE client_id = ?'),
    delQueue: p('DELETE FROM queue WHERE client_id = ? RETURNING message_id').pluck(),
    delInflights: p('DELETE FROM inflight WHERE client_id = ? RETURNING message_id').pluck(),
    delQos2s: p('DELETE FROM incoming_qos2 WHERE client_id = ?'),
    sub: p('INSERT OR REPLACE INTO subscriptions (client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    unsub: p('DELETE FROM subscriptions WHERE client_id = ? AND filter = ?'),
    enqueue: p('INSERT INTO queue (client_id, seq, message_id, qos, retain, sub_ids) VALUES (?, ?, ?, ?, ?, ?)'),
    dequeue: p('DELETE FROM queue WHERE client_id = ? AND seq = ? RETURNING message_id').pluck(),
    // a run of dequeues of consecutive seqs (a queue drained in order): one statement for the run
    dequeueRange: p('DELETE FROM queue WHERE client_id = ? AND seq BETWEEN ? AND ? RETURNING message_id').pluck(),
    inflightOld: p('SELECT message_id FROM inflight WHERE client_id = ? AND packet_id = ?').pluck(),
    inflightIns: p('INSERT OR IGNORE INTO inflight (client_id, packet_id, message_id, qos, retain, sub_ids, state) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    inflightUpd: p('UPDATE inflight SET message_id = ?, qos = ?, retain = ?, sub_ids = ?, state = ? WHERE client_id = ? AND packet_id = ?'),
    inflightDone: p('DELETE FROM inflight WHERE client_id = ? AND packet_id = ? RETURNING message_id').pluck(),
    qos2: p('INSERT OR IGNORE INTO incoming_qos2 (client_id, packet_id) VALUES (?, ?)'),
    qos2Done: p('DELETE FROM incoming_qos2 WHERE client_id = ? AND packet_id = ?'),
    unretain: p('DELETE FROM retained WHERE topic = ? RETURNING message_id').pluck(),
    retain: p('INSERT INTO retained (topic, message_id) VALUES (?, ?)'),
    will: p('INSERT OR REPLACE INTO wills (client_id, topic, payload, qos, retain, properties, fire_at, username, listener_port) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    willDone: p('DELETE FROM wills WHERE client_id = ?'),
    // loads
    sessionsFirst: p('SELECT * FROM sessions ORDER BY client_id LIMIT ?'),
    sessionsPage: p('SELECT * FROM sessions WHERE client_id > ? ORDER BY client_id LIMIT ?'),
    sessionOne: p('SELECT * FROM sessions WHERE client_id = ?'),
    // raw rows (arrays): half the cost of row objects
    subsPage: p(`SELECT client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id FROM subscriptions
      WHERE (client_id, filter) > (?, ?) ORDER BY client_id, filter LIMIT ?`).raw(),
    // windows of several sessions at once (? = JSON array of client ids), the client id first:
    // [client_id, packet_id, message_id, qos, retain, sub_ids, state, ...message], [client_id, seq, message_id, qos, retain, sub_ids, ...message]
    windowsInflight: p(`SELECT i.client_id, i.packet_id, i.message_id, i.qos, i.retain, i.sub_ids, i.state, ${MSG_COLS}
      FROM inflight i JOIN messages m ON m.id = i.message_id WHERE i.client_id IN (SELECT value FROM json_each(?)) ORDER BY i.client_id, i.ord`).raw(),
    windowsQueue: p(`SELECT q.client_id, q.seq, q.message_id, q.qos, q.retain, q.sub_ids, ${MSG_COLS}
      FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.client_id IN (SELECT value FROM json_each(?)) ORDER BY q.client_id, q.seq`).raw(),
    windowsQos2: p('SELECT client_id, packet_id FROM incoming_qos2 WHERE client_id IN (SELECT value FROM json_each(?)) ORDER BY client_id, packet_id').raw(),
    retainedPage: p(`SELECT r.topic, ${MSG_COLS} FROM retained r JOIN messages m ON m.id = r.message_id
      WHERE r.topic > ? ORDER BY r.topic LIMIT ?`).raw(),
    // the same rows for encodeRetainedRows: a payload up to HEX_PAYLOAD_MAX bytes as hex text, a larger one
    // as a blob (a Buffer per row costs the reading thread more than the text, and a string has a length limit);
    // the length in bytes even of a payload that is not a blob (the broker writes only blobs)
    retainedRows: p(`SELECT r.topic, m.id, m.topic,
      CASE WHEN length(CAST(m.payload AS BLOB)) <= ${HEX_PAYLOAD_MAX} THEN hex(m.payload) END,
      CASE WHEN length(CAST(m.payload AS BLOB)) > ${HEX_PAYLOAD_MAX} THEN CAST(m.payload AS BLOB) END,
      m.qos, m.retain, m.properties, m.expires_at, m.origin FROM retained r JOIN messages m ON m.id = r.message_id
      WHERE r.topic > ? ORDER BY r.topic LIMIT ?`).raw(),
    wills: p('SELECT * FROM wills ORDER BY client_id'),
    messageCount: p('SELECT count(*) FROM messages').pluck(),
    hasMessage: p('SELECT 1 FROM messages WHERE id = ?').pluck(),
    // the journal
    journalAll: p('SELECT seq, data FROM journal ORDER BY seq').raw(),
    journalDrop: p('DELETE FROM journal WHERE seq <= ?'),
  };
}
export type Statements = ReturnType<typeof prepare>;

/**
 * Runs inside the transaction. Reference counts are summed per message and applied at the end;
 * a message new in this commit is inserted there with its count; a `message` change for a message
 * already stored leaves the stored copy as it is.
 */
export function applyChanges(s: Statements, file: string, changes: readonly Change[], meta: Meta, dangling: () => void): void {
  const deltas = new Map<number, number>();
  const fresh = new Map<number, StoredMessage>();
  const add = (id: number | undefined, d: number): void => {
    if (id !== undefined) deltas.set(id, (deltas.get(id) ?? 0) + d);
  };
  let maxId = meta.maxId;
  let maxSeq = meta.maxSeq;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    switch (c.op) {
      case 'message': {
        // Written at the end with its final reference count (or not at all when it has none). A
        // message is recorded again by each commit that adds a reference to it: the first copy stays.
        if (fresh.has(c.msg.id)) break;
        fresh.set(c.msg.id, c.msg);
        deltas.set(c.msg.id, deltas.get(c.msg.id) ?? 0);
        if (c.msg.id > maxId) maxId = c.msg.id;
        break;
      }
      case 'session': {
        const x = c.session;
        s.session.run(x.clientId, x.protocolVersion, n(x.username), n(x.listenerPort), x.expiryInterval, n(x.disconnectedAt));
        break;
      }
      case 'dropSession':
        s.delSession.run(c.clientId);
        s.delSubs.run(c.clientId);
        for (const id of s.delQueue.all(c.clientId) as number[]) add(id, -1);
        for (const id of s.delInflights.all(c.clientId) as number[]) add(id, -1);
        s.delQos2s.run(c.clientId);
        break;
      case 'sub': {
        const x = c.sub;
        s.sub.run(c.clientId, x.filter, x.qos, b(x.noLocal), b(x.retainAsPublished), x.retainHandling, n(x.subscriptionId));
        break;
      }
      case 'unsub':
        s.unsub.run(c.clientId, c.filter);
        break;
      case 'enqueue': {
        const r = c.ref;
        s.enqueue.run(c.clientId, r.seq, r.messageId, r.qos, b(r.retain), encodeIds(r.subIds));
        add(r.messageId, +1);
        if (r.seq > maxSeq) maxSeq = r.seq;
        break;
      }
      case 'dequeue': {
        // the dequeues that follow it in the set for the next seqs of the same queue go with it
        let last = c.seq;
        let j = i + 1;
        for (; j < changes.length; j++) {
          const d = changes[j]!;
          if (d.op !== 'dequeue' || d.seq !== last + 1 || d.clientId !== c.clientId) break;
          last = d.seq;
        }
        if (j === i + 1) {
          add(s.dequeue.get(c.clientId, c.seq) as number | undefined, -1);
          break;
        }
        const ids = s.dequeueRange.all(c.clientId, c.seq, last) as number[];
        for (let k = 0; k < ids.length; k++) add(ids[k], -1);
        i = j - 1;
        break;
      }
      case 'inflight': {
        const r = c.ref;
        const ids = encodeIds(r.subIds);
        // New packet id (the common case): one INSERT. Else an update in place keeps the send order.
        if (s.inflightIns.run(c.clientId, r.packetId, r.messageId, r.qos, b(r.retain), ids, r.state).changes === 0) {
          const old = s.inflightOld.get(c.clientId, r.packetId) as number | undefined;
          s.inflightUpd.run(r.messageId, r.qos, b(r.retain), ids, r.state, c.clientId, r.packetId);
          if (old === r.messageId) break;
          add(old, -1);
        }
        add(r.messageId, +1);
        break;
      }
      case 'inflightDone':
        add(s.inflightDone.get(c.clientId, c.packetId) as number | undefined, -1);
        break;
      case 'qos2':
        s.qos2.run(c.clientId, c.packetId);
        break;
      case 'qos2Done':
        s.qos2Done.run(c.clientId, c.packetId);
        break;
      case 'retain':
        add(s.unretain.get(c.topic) as number | undefined, -1);
        s.retain.run(c.topic, c.messageId);
        add(c.messageId, +1);
        break;
      case 'unretain':
        add(s.unretain.get(c.topic) as number | undefined, -1);
        break;
      case 'will': {
        const w = c.will;
        s.will.run(w.clientId, w.will.topic, w.will.payload, w.will.qos, b(w.will.retain), encodeProps(w.will.properties), w.fireAt, n(w.username), n(w.listenerPort));
        break;
      }
      case 'willDone':
        s.willDone.run(c.clientId);
        break;
      default:
        throw new StoreError(`database ${file}: unknown change ${JSON.stringify((c as { op?: unknown }).op)}`);
    }
  }
  // Reference counts of messages stored before: a few one by one, many in one statement; runs of
  // consecutive ids that each lose one reference (a queue drained in order) in two range statements.
  const old: Array<[number, number]> = [];
  let runFrom = 0;
  let runTo = -1;
  const endRun = (): void => {
    if (runTo - runFrom >= RANGE_MIN - 1) {
      s.delMessageRange.run(runFrom, runTo);
      s.refsRangeDown.run(runFrom, runTo);
    } else {
      for (let id = runFrom; id <= runTo; id++) old.push([id, -1]);
    }
    runTo = -1;
  };
  for (const [id, d] of deltas) {
    const m = fresh.get(id);
    if (m === undefined) {
      if (d === -1) {
        if (runTo >= 0 && id === runTo + 1) runTo = id;
        else {
          if (runTo >= 0) endRun();
          runFrom = runTo = id;
        }
      } else if (d !== 0) old.push([id, d]);
    } else if (d > 0) {
      // already stored (by an earlier commit): then its count changes like any other's
      if (s.insMessage.run(m.id, m.topic, m.payload, m.qos, b(m.retain), encodeProps(m.properties), n(m.expiresAt), n(m.origin), d).changes === 0) {
        old.push([id, d]);
      }
    } else if (d < 0) {
      old.push([id, d]); // a reference to it went in this commit, so it was stored before
    }
  }
  if (runTo >= 0) endRun();
  if (old.length <= 4) {
    for (const [id, d] of old) {
      const r = s.refs.get(d, id) as { refs: number } | undefined;
      if (r === undefined) {
        if (d > 0) dangling();
      } else if (r.refs <= 0) {
        s.delMessage.run(id);
      }
    }
  } else {
    const json = JSON.stringify(old);
    if (s.refsBatch.run(json).changes !== old.length) {
      const missing = s.refsMissing.get(json) as number | undefined;
      if (missing !== undefined) dangling();
    }
    s.delUnreferenced.run(json);
  }
  if (maxId > 0) s.metaUp.run(maxId, 'last_message_id', maxId);
  if (maxSeq > 0) s.metaUp.run(maxSeq, 'last_seq', maxSeq);
}

export interface Meta {
  maxId: number;
  maxSeq: number;
}

/** The highest message id and queue seq of a set before compaction (the meta counts them even when compaction leaves them out). */
export function metaOf(changes: readonly Change[]): Meta {
  let maxId = 0;
  let maxSeq = 0;
  for (const c of changes) {
    if (c.op === 'message') {
      if (c.msg.id > maxId) maxId = c.msg.id;
    } else if (c.op === 'enqueue' && c.ref.seq > maxSeq) {
      maxSeq = c.ref.seq;
    }
  }
  return { maxId, maxSeq };
}
