/**
 * The broker's 5.0 CONNACK limits applied to what the client is about to send (pure):
 * Maximum Packet Size, and the availability of wildcard / shared subscriptions and subscription ids.
 * Receive Maximum, Maximum QoS, Retain Available and Topic Alias Maximum are applied in state.ts.
 */
import { encode } from '../codec/encode.js';
import { MqttError } from '../codec/errors.js';
import type { Packet, Properties, ProtocolVersion, PublishPacket, Subscription } from '../codec/types.js';
import type { ConnackInfo } from './connack.js';
import { ClientError, MaximumPacketSizeError, PublishError } from './errors.js';
import type { OutgoingMessage } from './types.js';

/**
 * Encodes a packet the client wants to send; a packet the codec refuses (bad property values) or one
 * larger than the broker's Maximum Packet Size [MQTT-3.1.2-24] comes back as the error to reject with.
 */
export function encodeChecked(packet: Packet, version: ProtocolVersion, server: ConnackInfo): Buffer | Error {
  let bytes: Buffer;
  try {
    bytes = encode(packet, version);
  } catch (err) {
    if (err instanceof MqttError) return err;
    return new ClientError(String(err), { cause: err });
  }
  const limit = server.maximumPacketSize;
  if (limit !== undefined && bytes.length > limit) return new MaximumPacketSizeError(bytes.length, limit, packet.type);
  return bytes;
}

/**
 * Reason codes for a SUBSCRIBE the broker said it cannot serve, or undefined when it can be sent:
 * 0x9E shared subscriptions, 0xA1 subscription identifiers, 0xA2 wildcards not supported
 * (spec 3.2.2.3.11 to 3.2.2.3.13); filters not at fault get 0x80 (not sent).
 */
export function refusedFilters(server: ConnackInfo, subs: Subscription[], properties: Properties | undefined): number[] | undefined {
  const codes = subs.map((s) => {
    const shared = s.topic.startsWith('$share/');
    if (shared && !server.sharedSubscriptionAvailable) return 0x9e;
    if (!server.wildcardSubscriptionAvailable && /[+#]/.test(shared ? s.topic.slice(s.topic.indexOf('/', 7) + 1) : s.topic)) return 0xa2;
    if (properties?.subscriptionIdentifiers?.length && !server.subscriptionIdentifiersAvailable) return 0xa1;
    return 0;
  });
  return codes.some((c) => c !== 0) ? codes.map((c) => c || 0x80) : undefined;
}

/** A PUBLISH without its Topic Alias property (for sending it again on a new connection). */
export function withoutAlias(p: PublishPacket): PublishPacket {
  if (p.properties?.topicAlias === undefined) return p;
  const { topicAlias: _alias, ...rest } = p.properties;
  const copy: PublishPacket = { ...p };
  if (Object.keys(rest).length > 0) copy.properties = rest;
  else delete copy.properties;
  return copy;
}

/** What the broker's CONNACK rules out for a message about to be sent. */
export function publishRefusal(server: ConnackInfo, m: OutgoingMessage): PublishError | undefined {
  // [MQTT-3.2.2-11] no QoS above the broker's Maximum QoS
  if (m.qos > server.maximumQoS) return new PublishError(0x9b, 0, `QoS ${m.qos} not supported by the broker (maximum QoS ${server.maximumQoS})`);
  // [MQTT-3.2.2-14] no retained messages when the broker has none
  if (m.retain && !server.retainAvailable) return new PublishError(0x9a, 0, 'retained messages are not supported by the broker');
  return undefined;
}
