import type { Message } from '../broker/types.js';
import type { QoS } from '../codec/types.js';
import { decodeProps, encodeProps } from '../store/encode.js';

/**
 * A message forwarded from one node to another through the receiver's inbox stream in Redis. One stream
 * entry carries every message of a turn for that node (a batch: each envelope preceded by its u32 length),
 * so Redis does one XADD per node and turn, not per message.
 *
 * An envelope (binary, no JSON on the common path):
 *   u8 version (2) · u8 flags · u8 QoS · u16 topic length · topic
 *   [f64 id]          flag 0x01: the message's id, unique in the cluster (every node stores it under it, once)
 *   [f64 expiresAt]   flag 0x02
 *   [u16 + origin]    flag 0x04: the publisher's client id (no local)
 *   [u16 + client]    flag 0x08: for this client's session only (a message that reached the node it just left)
 *   [u16 n, n × (u16 + group)] flag 0x10: the shared groups (`$share/G/F`) the receiver delivers to
 *   [u32 + props]     flag 0x20: v5 properties (encodeProps' JSON text)
 *   flag 0x40: retained; flag 0x80: retain only (apply to the retained tree, route nothing)
 *   u32 payload length · payload
 */
export interface Envelope {
  /** `msg.storeId` is the message's id, unique cluster-wide */
  msg: Message;
  groups: string[] | undefined;
  retainOnly: boolean;
  /** for this client's session only */
  client?: string;
}

const VERSION = 2;

export function encodeEnvelope(msg: Message, groups: string[] | undefined, retainOnly: boolean, client?: string): Buffer {
  let flags = 0;
  let size = 3 + 2 + Buffer.byteLength(msg.topic) + 4 + msg.payload.length;
  if (msg.storeId !== undefined) { flags |= 0x01; size += 8; }
  if (msg.expiresAt !== undefined) { flags |= 0x02; size += 8; }
  if (msg.origin !== undefined) { flags |= 0x04; size += 2 + Buffer.byteLength(msg.origin); }
  if (client !== undefined) { flags |= 0x08; size += 2 + Buffer.byteLength(client); }
  if (groups !== undefined && groups.length > 0) {
    flags |= 0x10;
    size += 2;
    for (const g of groups) size += 2 + Buffer.byteLength(g);
  }
  const props = encodeProps(msg.properties);
  if (props !== null) { flags |= 0x20; size += 4 + Buffer.byteLength(props); }
  if (msg.retain) flags |= 0x40;
  if (retainOnly) flags |= 0x80;
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  b[o++] = VERSION;
  b[o++] = flags;
  b[o++] = msg.qos;
  o = str16(b, o, msg.topic);
  if (flags & 0x01) { b.writeDoubleLE(msg.storeId!, o); o += 8; }
  if (flags & 0x02) { b.writeDoubleLE(msg.expiresAt!, o); o += 8; }
  if (flags & 0x04) o = str16(b, o, msg.origin!);
  if (flags & 0x08) o = str16(b, o, client!);
  if (flags & 0x10) {
    b.writeUInt16LE(groups!.length, o);
    o += 2;
    for (const g of groups!) o = str16(b, o, g);
  }
  if (flags & 0x20) {
    const n = b.write(props!, o + 4, 'utf8');
    b.writeUInt32LE(n, o);
    o += 4 + n;
  }
  b.writeUInt32LE(msg.payload.length, o);
  o += 4;
  msg.payload.copy(b, o);
  return b;
}

function str16(b: Buffer, o: number, s: string): number {
  const n = b.write(s, o + 2, 'utf8');
  b.writeUInt16LE(n, o);
  return o + 2 + n;
}

/**
 * Undefined for an envelope this version cannot read (a newer node's, or cut short): the caller logs and
 * skips it. The payload is a copy (the reply buffer is not kept alive by a queued message).
 */
export function decodeEnvelope(b: Buffer): Envelope | undefined {
  try {
    if (b.length < 10 || b[0] !== VERSION) return undefined;
    const flags = b[1]!;
    const qos = b[2]! as QoS;
    if (qos > 2) return undefined;
    let o = 3;
    const tl = b.readUInt16LE(o);
    const topic = b.toString('utf8', o + 2, o + 2 + tl);
    o += 2 + tl;
    const msg: Message = { topic, payload: EMPTY, qos, retain: (flags & 0x40) !== 0, owned: true };
    if (flags & 0x01) { msg.storeId = b.readDoubleLE(o); o += 8; }
    if (flags & 0x02) { msg.expiresAt = b.readDoubleLE(o); o += 8; }
    let n: number;
    if (flags & 0x04) { n = b.readUInt16LE(o); msg.origin = b.toString('utf8', o + 2, o + 2 + n); o += 2 + n; }
    let client: string | undefined;
    if (flags & 0x08) { n = b.readUInt16LE(o); client = b.toString('utf8', o + 2, o + 2 + n); o += 2 + n; }
    let groups: string[] | undefined;
    if (flags & 0x10) {
      const count = b.readUInt16LE(o);
      o += 2;
      groups = [];
      for (let i = 0; i < count; i++) { n = b.readUInt16LE(o); groups.push(b.toString('utf8', o + 2, o + 2 + n)); o += 2 + n; }
    }
    if (flags & 0x20) {
      n = b.readUInt32LE(o);
      const props = decodeProps(b.toString('utf8', o + 4, o + 4 + n));
      if (props !== undefined) msg.properties = props;
      o += 4 + n;
    }
    n = b.readUInt32LE(o);
    o += 4;
    if (o + n > b.length) return undefined;
    msg.payload = Buffer.from(b.subarray(o, o + n));
    const env: Envelope = { msg, groups, retainOnly: (flags & 0x80) !== 0 };
    if (client !== undefined) env.client = client;
    return env;
  } catch {
    // a length that points past the end (RangeError), properties that do not parse
    return undefined;
  }
}

const EMPTY = Buffer.alloc(0);

/** One stream entry's data: the turn's envelopes for one node, each preceded by its u32 length. */
export function joinBatch(envelopes: readonly Buffer[]): Buffer {
  let size = 0;
  for (const e of envelopes) size += 4 + e.length;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (const e of envelopes) {
    out.writeUInt32LE(e.length, o);
    e.copy(out, o + 4);
    o += 4 + e.length;
  }
  return out;
}

/** The envelopes of one stream entry, in order (views into `data`); a truncated tail is left out. */
export function* splitBatch(data: Buffer): Generator<Buffer> {
  let o = 0;
  while (o + 4 <= data.length) {
    const n = data.readUInt32LE(o);
    if (o + 4 + n > data.length) return;
    yield data.subarray(o + 4, o + 4 + n);
    o += 4 + n;
  }
}
