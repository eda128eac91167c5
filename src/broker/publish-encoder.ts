import { encode } from '../codec/index.js';
import type { ProtocolVersion, PublishPacket, QoS, Properties } from '../codec/types.js';
import type { Message } from './types.js';

/**
 * Encodes a message as a PUBLISH for one subscriber. The bytes of a variant (protocol version,
 * QoS, retain) are encoded once per message and shared; for QoS > 0 only the packet id differs,
 * so the cached template is copied and its two packet-id bytes patched.
 */
export function encodePublish(
  msg: Message, version: ProtocolVersion, qos: QoS, retain: boolean,
  packetId: number, dup: boolean, subIds: number[] | undefined, now: number,
  /** v5 outgoing topic alias: 0 none; negative: alias already known by the client (topic omitted) */
  alias = 0,
): Buffer {
  const perSubscriber = dup || subIds !== undefined || alias !== 0 || (version === 5 && msg.expiresAt !== undefined);
  if (perSubscriber) {
    const p = packetFor(msg, version, qos, retain, packetId, dup, subIds, now);
    if (alias !== 0) {
      p.properties = { ...p.properties, topicAlias: Math.abs(alias) };
      if (alias < 0) p.topic = '';
    }
    return encode(p, version);
  }
  const key = (version << 3) | (qos << 1) | (retain ? 1 : 0);
  let template = msg.encodedKey === key ? msg.encoded : msg.encodedMore?.get(key);
  if (template === undefined) {
    template = encode(packetFor(msg, version, qos, retain, qos > 0 ? 1 : undefined, false, undefined, now), version);
    if (msg.encoded === undefined) {
      msg.encodedKey = key;
      msg.encoded = template;
      // the cache serves this turn's fan-out only: a retained or queued message must not keep it
      cached.push(msg);
      if (cached.length === 1) process.nextTick(dropCaches);
    } else {
      (msg.encodedMore ??= new Map()).set(key, template);
    }
  }
  if (qos === 0) return template;
  const out = Buffer.allocUnsafe(template.length);
  template.copy(out);
  out.writeUInt16BE(packetId, packetIdOffset(out));
  return out;
}

/** messages that got an encoded-PUBLISH cache this turn of the event loop */
const cached: Message[] = [];
function dropCaches(): void {
  for (let i = 0; i < cached.length; i++) {
    const m = cached[i]!;
    m.encoded = undefined;
    m.encodedKey = undefined;
    m.encodedMore = undefined;
  }
  cached.length = 0;
}

/** Offset of the packet id in an encoded PUBLISH: after the fixed header and the topic. */
function packetIdOffset(buf: Buffer): number {
  let i = 1;
  while (buf[i++]! & 0x80);
  return i + 2 + buf.readUInt16BE(i);
}

function packetFor(
  msg: Message, version: ProtocolVersion, qos: QoS, retain: boolean,
  packetId: number | undefined, dup: boolean, subIds: number[] | undefined, now: number,
): PublishPacket {
  const p: PublishPacket = { type: 'publish', topic: msg.topic, payload: msg.payload, qos, retain, dup };
  if (qos > 0) p.packetId = packetId;
  if (version === 5) {
    let props: Properties | undefined = msg.properties;
    if (msg.expiresAt !== undefined || subIds !== undefined) {
      props = { ...props };
      if (msg.expiresAt !== undefined) props.messageExpiryInterval = Math.max(0, Math.ceil((msg.expiresAt - now) / 1000));
      if (subIds !== undefined) props.subscriptionIdentifiers = subIds;
    }
    if (props !== undefined) p.properties = props;
  }
  return p;
}
