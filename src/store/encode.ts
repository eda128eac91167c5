import type { Properties, Will } from '../codec/types.js';
import type { InflightRef, QueuedRef, StoredMessage, StoredSession, StoredSubscription, StoredWill } from './store.js';

/**
 * Copies and encodings of stored values, shared by the stores. Properties are flat (numbers,
 * strings, arrays of numbers or string pairs, Buffers); undefined keys are dropped, so that what a
 * store gives back equals what it was given, whichever store it is.
 */

export function cloneProps(p: Properties): Properties {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue;
    if (Buffer.isBuffer(v)) out[k] = Buffer.from(v);
    else if (Array.isArray(v)) out[k] = v.map((e: unknown) => (Array.isArray(e) ? [...(e as unknown[])] : e));
    else out[k] = v;
  }
  return out as Properties;
}

/** Properties as JSON text, Buffers as {"$b64": "..."}; null when there are none. */
export function encodeProps(p: Properties | undefined): string | null {
  if (p === undefined) return null;
  let hasBuffer = false;
  for (const k in p) {
    if (Buffer.isBuffer((p as Record<string, unknown>)[k])) {
      hasBuffer = true;
      break;
    }
  }
  if (!hasBuffer) return JSON.stringify(p);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) out[k] = Buffer.isBuffer(v) ? { $b64: v.toString('base64') } : v;
  return JSON.stringify(out);
}

export function decodeProps(text: string | null): Properties | undefined {
  if (text === null) return undefined;
  const o = JSON.parse(text) as Record<string, unknown>;
  for (const k in o) {
    const v = o[k];
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as { $b64?: unknown }).$b64 === 'string') {
      o[k] = Buffer.from((v as { $b64: string }).$b64, 'base64');
    }
  }
  return o as Properties;
}

export function cloneMessage(m: StoredMessage): StoredMessage {
  const out: StoredMessage = { id: m.id, topic: m.topic, payload: Buffer.from(m.payload), qos: m.qos, retain: m.retain };
  if (m.properties !== undefined) out.properties = cloneProps(m.properties);
  if (m.expiresAt !== undefined) out.expiresAt = m.expiresAt;
  if (m.origin !== undefined) out.origin = m.origin;
  return out;
}

export function cloneSession(s: StoredSession): StoredSession {
  const out: StoredSession = { clientId: s.clientId, protocolVersion: s.protocolVersion, expiryInterval: s.expiryInterval };
  if (s.username !== undefined) out.username = s.username;
  if (s.listenerPort !== undefined) out.listenerPort = s.listenerPort;
  if (s.disconnectedAt !== undefined) out.disconnectedAt = s.disconnectedAt;
  return out;
}

export function cloneSub(s: StoredSubscription): StoredSubscription {
  const out: StoredSubscription = {
    filter: s.filter,
    qos: s.qos,
    noLocal: s.noLocal,
    retainAsPublished: s.retainAsPublished,
    retainHandling: s.retainHandling,
  };
  if (s.subscriptionId !== undefined) out.subscriptionId = s.subscriptionId;
  return out;
}

export function cloneQueued(r: QueuedRef): QueuedRef {
  const out: QueuedRef = { seq: r.seq, messageId: r.messageId, qos: r.qos, retain: r.retain };
  if (r.subIds !== undefined) out.subIds = [...r.subIds];
  return out;
}

export function cloneInflight(r: InflightRef): InflightRef {
  const out: InflightRef = { packetId: r.packetId, messageId: r.messageId, qos: r.qos, retain: r.retain, state: r.state };
  if (r.subIds !== undefined) out.subIds = [...r.subIds];
  return out;
}

export function cloneWillBody(w: Will): Will {
  const out: Will = { topic: w.topic, payload: Buffer.from(w.payload), qos: w.qos, retain: w.retain };
  if (w.properties !== undefined) out.properties = cloneProps(w.properties);
  return out;
}

export function cloneWill(w: StoredWill): StoredWill {
  const out: StoredWill = { clientId: w.clientId, will: cloneWillBody(w.will), fireAt: w.fireAt };
  if (w.username !== undefined) out.username = w.username;
  if (w.listenerPort !== undefined) out.listenerPort = w.listenerPort;
  return out;
}

/** Subscription ids as "1,2,3"; null when absent. */
export function encodeIds(ids: number[] | undefined): string | null {
  return ids === undefined ? null : ids.join(',');
}

export function decodeIds(text: string | null): number[] | undefined {
  if (text === null) return undefined;
  return text === '' ? [] : text.split(',').map(Number);
}
