import type { Message } from '../broker/types.js';
import { decodeMessage, encodeMessage } from '../store/redis.js';

/**
 * A message forwarded from one node to another through the receiver's inbox stream in Redis: a
 * version byte, a u16 length and a JSON header (`i`: the message's id, unique in the cluster; `g`: the shared groups, as `$share/GROUP/FILTER`, that the
 * receiver delivers to, chosen by the publishing node; `k`: 1 when the receiver only applies the retained
 * message and routes nothing; `c`: the one client whose session it is for), then the message as the Redis store encodes it (topic, QoS, retain,
 * properties, expiry, origin and the raw payload).
 */
export interface Envelope {
  /** `msg.storeId` is the message's id, unique cluster-wide: every node stores it under that id (once) */
  msg: Message;
  groups: string[] | undefined;
  retainOnly: boolean;
  /** for this client's session only (a message that reached the node its session just left) */
  client?: string;
}

const VERSION = 1;

export function encodeEnvelope(msg: Message, groups: string[] | undefined, retainOnly: boolean, client?: string): Buffer {
  const h: { i?: number; g?: string[]; k?: 1; c?: string } = {};
  if (client !== undefined) h.c = client;
  if (msg.storeId !== undefined) h.i = msg.storeId;
  if (groups !== undefined && groups.length > 0) h.g = groups;
  if (retainOnly) h.k = 1;
  const head = Buffer.from(JSON.stringify(h), 'utf8');
  const stored = { id: 0, topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain } as Parameters<typeof encodeMessage>[0];
  if (msg.properties !== undefined) stored.properties = msg.properties;
  if (msg.expiresAt !== undefined) stored.expiresAt = msg.expiresAt;
  if (msg.origin !== undefined) stored.origin = msg.origin;
  const body = encodeMessage(stored);
  const out = Buffer.allocUnsafe(3 + head.length + body.length);
  out[0] = VERSION;
  out.writeUInt16LE(head.length, 1);
  head.copy(out, 3);
  body.copy(out, 3 + head.length);
  return out;
}

/** Undefined for an entry this version cannot read (a newer node's): the caller logs and skips it. */
export function decodeEnvelope(b: Buffer): Envelope | undefined {
  if (b.length < 3 || b[0] !== VERSION) return undefined;
  const n = b.readUInt16LE(1);
  const h = JSON.parse(b.toString('utf8', 3, 3 + n)) as { i?: number; g?: string[]; k?: number; c?: string };
  const s = decodeMessage(0, b.subarray(3 + n));
  const msg: Message = { topic: s.topic, payload: s.payload, qos: s.qos, retain: s.retain, owned: true };
  if (s.properties !== undefined) msg.properties = s.properties;
  if (s.expiresAt !== undefined) msg.expiresAt = s.expiresAt;
  if (s.origin !== undefined) msg.origin = s.origin;
  if (typeof h.i === 'number') msg.storeId = h.i;
  const env: Envelope = { msg, groups: h.g, retainOnly: h.k === 1 };
  if (typeof h.c === 'string') env.client = h.c;
  return env;
}
