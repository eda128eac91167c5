import type { Properties, QoS } from '../codec/types.js';
import { decodeProps, encodeProps } from './encode.js';
import type { Compactor } from './compact.js';
import type { Change, StoredMessage } from './store.js';

/**
 * The binary form of one commit's change set, as the SQLite store's journal keeps it
 * (docs/persistence.md "How a commit is stored"). Written once per commit on the hot path, read only
 * when a database is opened after a crash: compact and quick to write, checked when read.
 *
 * Layout: a version byte (1), then per change an op byte and its fields. Strings and byte strings
 * are a u32 length and the bytes; ids, sequence numbers and times are f64 (JS numbers, exact up to
 * 2^53); packet ids u16; a flags byte says which optional fields follow.
 */

const VERSION = 1;

const OPS = [
  'message', 'session', 'dropSession', 'sub', 'unsub', 'enqueue', 'dequeue', 'inflight', 'inflightDone',
  'qos2', 'qos2Done', 'retain', 'unretain', 'will', 'willDone',
] as const satisfies ReadonlyArray<Change['op']>;
const OP_CODE: Record<Change['op'], number> = Object.fromEntries(OPS.map((op, i) => [op, i])) as Record<Change['op'], number>;

class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    // not from the shared pool: the whole ArrayBuffer may move to another thread (a page of retained
    // messages from the store's worker to the broker's thread, encodeRetainedRows)
    this.buf = Buffer.allocUnsafeSlow(size);
  }
  /** Empty again, with room for `n` bytes (a writer reused for every commit: see CommitWriter). */
  reset(n: number): void {
    this.pos = 0;
    this.room(n);
  }
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  str(s: string): void {
    // at most 3 bytes per UTF-16 unit; the length is filled in after the bytes
    const len = s.length;
    this.room(4 + len * 3);
    const buf = this.buf;
    const at = this.pos + 4;
    if (len < 64) {
      // short ASCII strings (client ids, topics) byte by byte: cheaper than a call into the encoder
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      if (i === len) {
        buf.writeUInt32LE(len, this.pos);
        this.pos = at + len;
        return;
      }
    }
    const n = buf.write(s, at, 'utf8');
    buf.writeUInt32LE(n, this.pos);
    this.pos = at + n;
  }
  /** bytes given as hex text (an even number of hex digits), written as bytes() writes them */
  hex(h: string): void {
    this.room(4 + (h.length >> 1));
    const n = this.buf.write(h, this.pos + 4, 'hex');
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4 + n;
  }
  bytes(b: Buffer): void {
    this.room(4 + b.length);
    this.buf.writeUInt32LE(b.length, this.pos);
    b.copy(this.buf, this.pos + 4);
    this.pos += 4 + b.length;
  }
  ids(ids: readonly number[]): void {
    this.room(4 + ids.length * 8);
    this.buf.writeUInt32LE(ids.length, this.pos);
    this.pos += 4;
    for (let i = 0; i < ids.length; i++) this.f64(ids[i]!);
  }
}

/**
 * What the SQLite store needs of a change set when it journals it (sqlite.ts `commitSync`), so that
 * it does not decode the blob to learn it: how many changes, the bytes of their message payloads,
 * the ids of the messages recorded, and the ids the set refers to (enqueue, inflight, retain).
 */
export interface SetSummary {
  count: number;
  bytes: number;
  messageIds: ArrayLike<number>;
  refIds: ArrayLike<number>;
}

/** The summary of a decoded set (see SetSummary). */
export function summarize(changes: readonly Change[]): SetSummary {
  const messageIds: number[] = [];
  const refIds: number[] = [];
  let bytes = 0;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    if (c.op === 'message') {
      messageIds.push(c.msg.id);
      bytes += c.msg.payload.length;
    } else if (c.op === 'enqueue' || c.op === 'inflight') refIds.push(c.ref.messageId);
    else if (c.op === 'retain') refIds.push(c.messageId);
  }
  return { count: changes.length, bytes, messageIds, refIds };
}

/** Encodes a change set (the objects are not kept). */
export function encodeChanges(changes: readonly Change[]): Buffer {
  const w = writeChanges(changes);
  return w.buf.subarray(0, w.pos);
}

/** A `message` change's fields after its op byte (`props`: the properties as encodeProps writes them). */
function writeMessage(w: Writer, id: number, topic: string, payload: Buffer, qos: number, retain: boolean, props: string | null, expiresAt: number | null, origin: string | null): void {
  w.f64(id);
  w.str(topic);
  w.bytes(payload);
  writeMessageTail(w, qos, retain, props, expiresAt, origin);
}

/** The fields of a `message` change after its payload. */
function writeMessageTail(w: Writer, qos: number, retain: boolean, props: string | null, expiresAt: number | null, origin: string | null): void {
  w.u8(qos);
  w.u8((retain ? 1 : 0) | (props !== null ? 2 : 0) | (expiresAt !== null ? 4 : 0) | (origin !== null ? 8 : 0));
  if (props !== null) w.str(props);
  if (expiresAt !== null) w.f64(expiresAt);
  if (origin !== null) w.str(origin);
}

/**
 * A page of retained messages as encodeChanges writes a `message` and a `retain` change per topic,
 * written from the rows of the retained join themselves (the topic, then the message's columns:
 * id, topic, payload as hex text or else as a blob, qos, retain, properties as stored, expires_at,
 * origin: the SQLite store's `retainedRows`), without a StoredMessage per row or the properties
 * parsed and written again: the store's thread sends 100,000 of them when a broker restores its
 * retained messages.
 */
export function encodeRetainedRows(rows: readonly unknown[][]): Buffer {
  const w = new Writer(64 + rows.length * 128);
  w.u8(VERSION);
  const message = OP_CODE.message;
  const retain = OP_CODE.retain;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const id = r[1] as number;
    w.u8(message);
    w.f64(id);
    w.str(r[2] as string);
    if (r[3] !== null) w.hex(r[3] as string);
    else w.bytes(r[4] as Buffer);
    writeMessageTail(w, r[5] as number, r[6] !== 0, r[7] as string | null, r[8] as number | null, r[9] as string | null);
    w.u8(retain);
    w.str(r[0] as string);
    w.f64(id);
  }
  return w.buf.subarray(0, w.pos);
}

/** The fixed end of encodeCommit's form: count u32, payload bytes f64, message ids u32, referenced ids u32, blob length u32. */
const TRAILER = 24;

/**
 * A commit as it crosses to the SQLite store's thread, in one buffer (one object and one transfer
 * per commit: a postMessage of several objects and typed arrays costs twice as much): the set's
 * encodeChanges form, then its SetSummary (the ids as f64, then TRAILER). Its ArrayBuffer is its own.
 */
export function encodeCommit(changes: readonly Change[]): Buffer {
  return encodeCommitParts(changes).buf;
}

/**
 * A buffer that encodeCommitParts writes every commit into, one after the other, instead of a new
 * one per commit: what it returns is then valid only until the next commit is written (the thread
 * store copies it into its hand-off buffer at once, sqlite-thread.ts). A buffer per commit that
 * another thread frees costs the event loop a page fault per 4 KiB when the next one is touched.
 */
export class CommitWriter {
  /** @internal */
  w: Writer | undefined;
  /** past this the buffer is not kept after the commit that grew it (a commit of large messages) */
  static readonly KEEP = 4 << 20;
}

/**
 * encodeCommit, with where the set's bytes end in the buffer and the ids of its summary: the thread
 * store appends the set to its log and checks the references itself (sqlite-thread.ts). With `into`,
 * the set is written into its buffer (see CommitWriter), not into a buffer of its own.
 */
export function encodeCommitParts(changes: readonly Change[], into?: CommitWriter): { buf: Buffer; blobLength: number; messageIds: number[]; refIds: number[] } {
  const ids = { messages: [] as number[], refs: [] as number[], bytes: 0 };
  const w = writeChanges(changes, ids, into);
  const blobLen = w.pos;
  w.room((ids.messages.length + ids.refs.length) * 8 + TRAILER);
  for (let i = 0; i < ids.messages.length; i++) w.f64(ids.messages[i]!);
  for (let i = 0; i < ids.refs.length; i++) w.f64(ids.refs[i]!);
  w.u32(changes.length);
  w.f64(ids.bytes);
  w.u32(ids.messages.length);
  w.u32(ids.refs.length);
  w.u32(blobLen);
  const buf = w.buf.subarray(0, w.pos);
  if (into !== undefined && w.buf.length > CommitWriter.KEEP) into.w = undefined;
  return { buf, blobLength: blobLen, messageIds: ids.messages, refIds: ids.refs };
}

/** encodeCommit's buffer back to the blob (encodeChanges' form, a view of `buf`) and its summary. */
export function readCommit(buf: Buffer): { blob: Buffer; set: SetSummary } {
  const end = buf.length;
  if (end < TRAILER) throw new JournalError(`a commit of ${end} bytes is shorter than its trailer`);
  const blobLen = buf.readUInt32LE(end - 4);
  const refs = buf.readUInt32LE(end - 8);
  const messages = buf.readUInt32LE(end - 12);
  const bytes = buf.readDoubleLE(end - 20);
  const count = buf.readUInt32LE(end - 24);
  if (blobLen + (messages + refs) * 8 + TRAILER !== end) throw new JournalError(`a commit of ${end} bytes does not add up (blob ${blobLen}, ${messages} + ${refs} ids)`);
  const messageIds = new Array<number>(messages);
  const refIds = new Array<number>(refs);
  let at = blobLen;
  for (let i = 0; i < messages; i++, at += 8) messageIds[i] = buf.readDoubleLE(at);
  for (let i = 0; i < refs; i++, at += 8) refIds[i] = buf.readDoubleLE(at);
  return { blob: buf.subarray(0, blobLen), set: { count, bytes, messageIds, refIds } };
}

/**
 * The encoding itself. With `ids`, also collects the set's SetSummary: the recorded message ids into
 * `ids.messages`, the referenced ones into `ids.refs`, and the payload bytes into `ids.bytes`.
 */
function writeChanges(changes: readonly Change[], ids?: { messages: number[]; refs: number[]; bytes: number }, into?: CommitWriter): Writer {
  // room for the payloads too, so that a set of messages does not grow (and copy) its buffer as it is written
  let payloads = 0;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    if (c.op === 'message') payloads += c.msg.payload.length + c.msg.topic.length;
  }
  const need = 64 + changes.length * 48 + payloads;
  let w: Writer;
  if (into === undefined) w = new Writer(need);
  else {
    w = into.w ??= new Writer(Math.max(1 << 16, need));
    w.reset(need);
  }
  w.u8(VERSION);
  // (an indexed loop: a for-of here allocated an iterator result per change whenever the function ran
  // unoptimized, as it does again after each deopt; 10 MB per 100,000 messages in a heap profile)
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    w.u8(OP_CODE[c.op]);
    switch (c.op) {
      case 'message': {
        const m = c.msg;
        if (ids !== undefined) {
          ids.messages.push(m.id);
          ids.bytes += m.payload.length;
        }
        writeMessage(w, m.id, m.topic, m.payload, m.qos, m.retain, encodeProps(m.properties), m.expiresAt ?? null, m.origin ?? null);
        break;
      }
      case 'session': {
        const s = c.session;
        w.str(s.clientId);
        w.u8(s.protocolVersion);
        w.f64(s.expiryInterval);
        w.u8((s.username !== undefined ? 1 : 0) | (s.listenerPort !== undefined ? 2 : 0) | (s.disconnectedAt !== undefined ? 4 : 0));
        if (s.username !== undefined) w.str(s.username);
        if (s.listenerPort !== undefined) w.f64(s.listenerPort);
        if (s.disconnectedAt !== undefined) w.f64(s.disconnectedAt);
        break;
      }
      case 'dropSession':
      case 'willDone':
        w.str(c.clientId);
        break;
      case 'sub': {
        const s = c.sub;
        w.str(c.clientId);
        w.str(s.filter);
        w.u8(s.qos);
        w.u8(s.retainHandling);
        w.u8((s.noLocal ? 1 : 0) | (s.retainAsPublished ? 2 : 0) | (s.subscriptionId !== undefined ? 4 : 0));
        if (s.subscriptionId !== undefined) w.f64(s.subscriptionId);
        break;
      }
      case 'unsub':
        w.str(c.clientId);
        w.str(c.filter);
        break;
      case 'enqueue': {
        const r = c.ref;
        ids?.refs.push(r.messageId);
        w.str(c.clientId);
        w.f64(r.seq);
        w.f64(r.messageId);
        w.u8(r.qos);
        w.u8((r.retain ? 1 : 0) | (r.subIds !== undefined ? 2 : 0));
        if (r.subIds !== undefined) w.ids(r.subIds);
        break;
      }
      case 'dequeue':
        w.str(c.clientId);
        w.f64(c.seq);
        break;
      case 'inflight': {
        const r = c.ref;
        ids?.refs.push(r.messageId);
        w.str(c.clientId);
        w.u16(r.packetId);
        w.f64(r.messageId);
        w.u8(r.qos);
        w.u8((r.retain ? 1 : 0) | (r.subIds !== undefined ? 2 : 0) | (r.state === 'pubrel' ? 4 : 0));
        if (r.subIds !== undefined) w.ids(r.subIds);
        break;
      }
      case 'inflightDone':
      case 'qos2':
      case 'qos2Done':
        w.str(c.clientId);
        w.u16(c.packetId);
        break;
      case 'retain':
        ids?.refs.push(c.messageId);
        w.str(c.topic);
        w.f64(c.messageId);
        break;
      case 'unretain':
        w.str(c.topic);
        break;
      case 'will': {
        const x = c.will;
        w.str(x.clientId);
        w.str(x.will.topic);
        w.bytes(x.will.payload);
        w.u8(x.will.qos);
        w.f64(x.fireAt);
        w.u8((x.will.retain ? 1 : 0) | (x.will.properties !== undefined ? 2 : 0) | (x.username !== undefined ? 4 : 0) | (x.listenerPort !== undefined ? 8 : 0));
        if (x.will.properties !== undefined) w.str(encodeProps(x.will.properties)!);
        if (x.username !== undefined) w.str(x.username);
        if (x.listenerPort !== undefined) w.f64(x.listenerPort);
        break;
      }
    }
  }
  return w;
}

/** A journal entry that cannot be decoded (a truncated or foreign blob). */
export class JournalError extends Error {
  override readonly name = 'JournalError';
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer, private readonly copy: boolean) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new JournalError(`truncated at byte ${this.pos} of ${this.buf.length}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    if (!Number.isFinite(v)) throw new JournalError(`not a number at byte ${this.pos - 8}`);
    return v;
  }
  str(): string {
    this.need(4);
    const buf = this.buf;
    const n = buf.readUInt32LE(this.pos);
    this.need(4 + n);
    const at = this.pos + 4;
    this.pos = at + n;
    if (n < 64) {
      // a set names the same client in change after change (a queue's entries): the same bytes as the
      // last short string give the same string, not a new one to allocate and hash again
      const last = this.lastAt;
      if (last >= 0 && this.lastLen === n) {
        let same = true;
        for (let i = 0; i < n; i++) {
          if (buf[at + i] !== buf[last + i]) {
            same = false;
            break;
          }
        }
        if (same) return this.lastStr;
      }
      // short ASCII strings without a call into the decoder
      let s = '';
      for (let i = at; i < at + n; i++) {
        const c = buf[i]!;
        if (c >= 0x80) {
          s = buf.toString('utf8', at, at + n);
          break;
        }
        s += String.fromCharCode(c);
      }
      this.lastAt = at;
      this.lastLen = n;
      this.lastStr = s;
      return s;
    }
    return buf.toString('utf8', at, at + n);
  }
  /** where the last short string read is in buf (-1: none), its length in bytes, and the string */
  private lastAt = -1;
  private lastLen = 0;
  private lastStr = '';
  /** past a string or byte string, without reading it */
  skip(): void {
    this.need(4);
    const n = this.buf.readUInt32LE(this.pos);
    this.need(4 + n);
    this.pos += 4 + n;
  }
  bytes(): Buffer {
    this.need(4);
    const n = this.buf.readUInt32LE(this.pos);
    this.need(4 + n);
    const view = this.buf.subarray(this.pos + 4, this.pos + 4 + n);
    const b = this.copy ? Buffer.from(view) : view;
    this.pos += 4 + n;
    return b;
  }
  ids(): number[] {
    this.need(4);
    const n = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    this.need(n * 8);
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(this.f64());
    return out;
  }
  qos(): QoS {
    const q = this.u8();
    if (q > 2) throw new JournalError(`bad QoS ${q} at byte ${this.pos - 1}`);
    return q as QoS;
  }
  props(): Properties {
    try {
      return decodeProps(this.str())!;
    } catch (err) {
      throw new JournalError(`bad properties at byte ${this.pos}: ${String(err)}`);
    }
  }
}

function readMessage(r: Reader): StoredMessage {
  const m: StoredMessage = { id: r.f64(), topic: r.str(), payload: r.bytes(), qos: r.qos(), retain: false };
  const f = r.u8();
  m.retain = (f & 1) !== 0;
  if (f & 2) m.properties = r.props();
  if (f & 4) m.expiresAt = r.f64();
  if (f & 8) m.origin = r.str();
  return m;
}

/**
 * Adds a set (encodeChanges' form) to a compaction that does not keep the changes, change by change,
 * as decodeChanges + Compactor.add would, but reading only what pairs changes and counts references:
 * no change objects, no topics, payloads or properties (the SQLite store's thread digests every set
 * it journals, on the path of the next commits; a fold decodes in full the sets that still hold
 * something to write). Checks the framing and throws JournalError where decodeChanges would on it.
 */
export function digestChanges(buf: Buffer, k: Compactor): void {
  const r = new Reader(buf, false);
  const version = r.u8();
  if (version !== VERSION) throw new JournalError(`unknown journal entry version ${version}`);
  while (!r.done) {
    const code = r.u8();
    switch (OPS[code]) {
      case 'message': {
        const id = r.f64();
        r.skip(); // topic
        r.skip(); // payload
        r.qos();
        const f = r.u8();
        if (f & 2) r.skip();
        if (f & 4) r.f64();
        if (f & 8) r.skip();
        k.addMessage(id);
        break;
      }
      case 'session': {
        r.skip();
        r.u8();
        r.f64();
        const f = r.u8();
        if (f & 1) r.skip();
        if (f & 2) r.f64();
        if (f & 4) r.f64();
        k.addOther();
        break;
      }
      case 'dropSession':
        k.addDropSession(r.str());
        break;
      case 'willDone':
        r.skip();
        k.addOther();
        break;
      case 'sub': {
        r.skip();
        r.skip();
        r.qos();
        r.u8();
        if (r.u8() & 4) r.f64();
        k.addOther();
        break;
      }
      case 'unsub':
        r.skip();
        r.skip();
        k.addOther();
        break;
      case 'enqueue': {
        const clientId = r.str();
        const seq = r.f64();
        const messageId = r.f64();
        r.qos();
        if (r.u8() & 2) r.ids();
        k.addEntry(clientId, 1, seq, true, messageId);
        break;
      }
      case 'dequeue': {
        const clientId = r.str();
        k.addEntry(clientId, 1, r.f64(), false, -1);
        break;
      }
      case 'inflight': {
        const clientId = r.str();
        const packetId = r.u16();
        const messageId = r.f64();
        r.qos();
        const f = r.u8();
        if (f & 2) r.ids();
        k.addEntry(clientId, 0, packetId, (f & 4) === 0, messageId);
        break;
      }
      case 'inflightDone':
      case 'qos2':
      case 'qos2Done': {
        const clientId = r.str();
        const packetId = r.u16();
        k.addEntry(clientId, OPS[code] === 'inflightDone' ? 0 : 2, packetId, OPS[code] === 'qos2', -1);
        break;
      }
      case 'retain':
        r.skip();
        k.addRetain(r.f64());
        break;
      case 'unretain':
        r.skip();
        k.addOther();
        break;
      case 'will': {
        r.skip();
        r.skip();
        r.skip();
        r.qos();
        r.f64();
        const f = r.u8();
        if (f & 2) r.skip();
        if (f & 4) r.skip();
        if (f & 8) r.f64();
        k.addOther();
        break;
      }
      default:
        throw new JournalError(`unknown change code ${code} at byte ${r.pos - 1}`);
    }
  }
}

/**
 * Decodes a set that is only pairs of a `message` change and a `retain` change of that message (a
 * page of retained messages, as the SQLite store's thread sends it) straight into
 * { topic, message } items, without the change objects; throws JournalError on anything else.
 */
export function decodeRetained(buf: Buffer): Array<{ topic: string; message: StoredMessage }> {
  const r = new Reader(buf, true);
  const version = r.u8();
  if (version !== VERSION) throw new JournalError(`unknown journal entry version ${version}`);
  const out: Array<{ topic: string; message: StoredMessage }> = [];
  const MESSAGE = OP_CODE.message;
  const RETAIN = OP_CODE.retain;
  while (!r.done) {
    if (r.u8() !== MESSAGE) throw new JournalError(`expected a message at byte ${r.pos - 1}`);
    const message = readMessage(r);
    if (r.u8() !== RETAIN) throw new JournalError(`expected a retained topic at byte ${r.pos - 1}`);
    const topic = r.str();
    if (r.f64() !== message.id) throw new JournalError(`retained topic ${topic} does not refer to the message before it`);
    out.push({ topic, message });
  }
  return out;
}

/**
 * Decodes what encodeChanges wrote; throws JournalError on anything else. With `copy` false the
 * payloads are views of `buf` (for a caller that is done with them before `buf` changes).
 */
export function decodeChanges(buf: Buffer, copy = true): Change[] {
  const r = new Reader(buf, copy);
  const version = r.u8();
  if (version !== VERSION) throw new JournalError(`unknown journal entry version ${version}`);
  const out: Change[] = [];
  while (!r.done) {
    const code = r.u8();
    const op = OPS[code];
    switch (op) {
      case 'message':
        out.push({ op, msg: readMessage(r) });
        break;
      case 'session': {
        const clientId = r.str();
        const protocolVersion = r.u8();
        if (protocolVersion !== 3 && protocolVersion !== 4 && protocolVersion !== 5) throw new JournalError(`bad protocol version ${protocolVersion}`);
        const session: Extract<Change, { op: 'session' }>['session'] = { clientId, protocolVersion, expiryInterval: r.f64() };
        const f = r.u8();
        if (f & 1) session.username = r.str();
        if (f & 2) session.listenerPort = r.f64();
        if (f & 4) session.disconnectedAt = r.f64();
        out.push({ op, session });
        break;
      }
      case 'dropSession':
      case 'willDone':
        out.push({ op, clientId: r.str() });
        break;
      case 'sub': {
        const clientId = r.str();
        const filter = r.str();
        const qos = r.qos();
        const rh = r.u8();
        if (rh > 2) throw new JournalError(`bad retain handling ${rh}`);
        const f = r.u8();
        const sub: Extract<Change, { op: 'sub' }>['sub'] = { filter, qos, noLocal: (f & 1) !== 0, retainAsPublished: (f & 2) !== 0, retainHandling: rh as 0 | 1 | 2 };
        if (f & 4) sub.subscriptionId = r.f64();
        out.push({ op, clientId, sub });
        break;
      }
      case 'unsub':
        out.push({ op, clientId: r.str(), filter: r.str() });
        break;
      case 'enqueue': {
        const clientId = r.str();
        const ref: Extract<Change, { op: 'enqueue' }>['ref'] = { seq: r.f64(), messageId: r.f64(), qos: r.qos(), retain: false };
        const f = r.u8();
        ref.retain = (f & 1) !== 0;
        if (f & 2) ref.subIds = r.ids();
        out.push({ op, clientId, ref });
        break;
      }
      case 'dequeue':
        out.push({ op, clientId: r.str(), seq: r.f64() });
        break;
      case 'inflight': {
        const clientId = r.str();
        const ref: Extract<Change, { op: 'inflight' }>['ref'] = { packetId: r.u16(), messageId: r.f64(), qos: r.qos(), retain: false, state: 'publish' };
        const f = r.u8();
        ref.retain = (f & 1) !== 0;
        if (f & 4) ref.state = 'pubrel';
        if (f & 2) ref.subIds = r.ids();
        out.push({ op, clientId, ref });
        break;
      }
      case 'inflightDone':
      case 'qos2':
      case 'qos2Done':
        out.push({ op, clientId: r.str(), packetId: r.u16() });
        break;
      case 'retain':
        out.push({ op, topic: r.str(), messageId: r.f64() });
        break;
      case 'unretain':
        out.push({ op, topic: r.str() });
        break;
      case 'will': {
        const clientId = r.str();
        const will: Extract<Change, { op: 'will' }>['will'] = {
          clientId,
          will: { topic: r.str(), payload: r.bytes(), qos: r.qos(), retain: false },
          fireAt: r.f64(),
        };
        const f = r.u8();
        will.will.retain = (f & 1) !== 0;
        if (f & 2) will.will.properties = r.props();
        if (f & 4) will.username = r.str();
        if (f & 8) will.listenerPort = r.f64();
        out.push({ op, will });
        break;
      }
      default:
        throw new JournalError(`unknown change code ${code} at byte ${r.pos - 1}`);
    }
  }
  return out;
}
