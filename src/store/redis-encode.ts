import type { QoS } from '../codec/types.js';
import { decodeProps, encodeProps } from './encode.js';
import { StoreError, type Change, type InflightRef, type QueuedRef, type StoredMessage, type StoredSession, type StoredSubscription, type StoredWill } from './store.js';

/**
 * How the Redis store (src/store/redis.ts) writes values: messages and wills as a small JSON header
 * with the raw payload bytes after it, sessions, subscriptions and queue / in-flight references as
 * text, and a change set as the commit script's arguments (src/store/redis-scripts.ts).
 */

/** An argument of a script: text or raw bytes. */
export type Arg = string | Buffer;

/** A u32 length, a JSON header, then the raw payload bytes (binary-safe: JSON never holds them). */
export function packWithPayload(header: Record<string, unknown>, payload: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const out = Buffer.allocUnsafe(4 + h.length + payload.length);
  out.writeUInt32LE(h.length, 0);
  h.copy(out, 4);
  payload.copy(out, 4 + h.length);
  return out;
}

export function unpackWithPayload(b: Buffer): { header: Record<string, unknown>; payload: Buffer } {
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

export function encodeSession(s: StoredSession): string {
  const h: Record<string, unknown> = { v: s.protocolVersion, e: s.expiryInterval };
  if (s.username !== undefined) h.u = s.username;
  if (s.listenerPort !== undefined) h.l = s.listenerPort;
  if (s.disconnectedAt !== undefined) h.d = s.disconnectedAt;
  return JSON.stringify(h);
}

export function decodeSession(clientId: string, text: string): StoredSession {
  const h = JSON.parse(text) as Record<string, unknown>;
  const s: StoredSession = { clientId, protocolVersion: h.v as StoredSession['protocolVersion'], expiryInterval: h.e as number };
  if (h.u !== undefined) s.username = h.u as string;
  if (h.l !== undefined) s.listenerPort = h.l as number;
  if (h.d !== undefined) s.disconnectedAt = h.d as number;
  return s;
}

export function encodeSub(s: StoredSubscription): string {
  const h: Record<string, unknown> = { q: s.qos, n: s.noLocal ? 1 : 0, a: s.retainAsPublished ? 1 : 0, h: s.retainHandling };
  if (s.subscriptionId !== undefined) h.i = s.subscriptionId;
  return JSON.stringify(h);
}

export function decodeSub(filter: string, text: string): StoredSubscription {
  const h = JSON.parse(text) as Record<string, unknown>;
  const s: StoredSubscription = { filter, qos: h.q as QoS, noLocal: h.n === 1, retainAsPublished: h.a === 1, retainHandling: h.h as 0 | 1 | 2 };
  if (h.i !== undefined) s.subscriptionId = h.i as number;
  return s;
}

/** "N:CLIENTFILTER", N the byte length of the client id: unambiguous whatever the two contain. */
export function subKey(clientId: string, filter: string): string {
  return `${Buffer.byteLength(clientId, 'utf8')}:${clientId}${filter}`;
}

export function splitSubKey(key: Buffer): { clientId: string; filter: string } {
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
export function encodeRef(r: QueuedRef | InflightRef): string {
  const h: Record<string, unknown> = { q: r.qos, r: r.retain ? 1 : 0 };
  if (r.subIds !== undefined) h.s = r.subIds;
  if ('state' in r) h.st = r.state === 'pubrel' ? 1 : 0;
  return JSON.stringify(h);
}

/** "A|B|JSON" -> [A, B, the parsed JSON] */
export function splitRef(b: Buffer): [number, number, Record<string, unknown>] {
  const s = b.toString('utf8');
  const i = s.indexOf('|');
  const j = s.indexOf('|', i + 1);
  return [Number(s.slice(0, i)), Number(s.slice(i + 1, j)), JSON.parse(s.slice(j + 1)) as Record<string, unknown>];
}

/** A change set as the commit script's arguments (after the prefix). */
export function encodeArgs(prefix: string, changes: readonly Change[], header: readonly Arg[] = []): Arg[] {
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
