/**
 * libmosquitto's client log lines ("Client x sending PUBLISH (d0, q1, r0, m1, 'test', ... (3 bytes))"),
 * for `-d` in the command-line clients. Pure formatting: one packet in, lines out.
 */
import type { Packet } from '../codec/types.js';

/** `mid` is the message id reported for a QoS 0 publish (which has no packet id on the wire). */
export function describeSent(clientId: string, packet: Packet, mid?: number): string[] {
  const c = `Client ${clientId === '' ? '(null)' : clientId}`;
  switch (packet.type) {
    case 'connect': return [`${c} sending CONNECT`];
    case 'publish':
      // a PUBLISH that uses a known topic alias has no topic: libmosquitto prints '(null)'
      return [`${c} sending PUBLISH (d${+packet.dup}, q${packet.qos}, r${+packet.retain}, m${packet.packetId ?? mid ?? 0}, '${packet.topic === '' ? '(null)' : packet.topic}', ... (${packet.payload.length} bytes))`];
    case 'puback': case 'pubrec':
      return [`${c} sending ${packet.type.toUpperCase()} (m${packet.packetId}, rc${packet.reasonCode ?? 0})`];
    case 'pubrel': case 'pubcomp':
      return [`${c} sending ${packet.type.toUpperCase()} (m${packet.packetId})`];
    case 'subscribe':
      return packet.subscriptions.map((s) => {
        const options = (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | ((s.retainHandling ?? 0) << 4);
        return `${c} sending SUBSCRIBE (Mid: ${packet.packetId}, Topic: ${s.topic}, QoS: ${s.qos}, Options: 0x${options.toString(16).padStart(2, '0')})`;
      });
    case 'unsubscribe':
      return packet.topics.map((t) => `${c} sending UNSUBSCRIBE (Mid: ${packet.packetId}, Topic: ${t})`);
    default: return [`${c} sending ${packet.type.toUpperCase()}`];
  }
}

export function describeReceived(clientId: string, packet: Packet): string[] {
  const c = `Client ${clientId === '' ? '(null)' : clientId}`;
  switch (packet.type) {
    case 'connack': return [`${c} received CONNACK (${packet.reasonCode})`];
    case 'publish':
      return [`${c} received PUBLISH (d${+packet.dup}, q${packet.qos}, r${+packet.retain}, m${packet.packetId ?? 0}, '${packet.topic}', ... (${packet.payload.length} bytes))`];
    case 'puback': case 'pubcomp':
      return [`${c} received ${packet.type.toUpperCase()} (Mid: ${packet.packetId}, RC:${packet.reasonCode ?? 0})`];
    case 'pubrec': case 'pubrel':
      return [`${c} received ${packet.type.toUpperCase()} (Mid: ${packet.packetId})`];
    case 'disconnect': return [`${c} received DISCONNECT (${packet.reasonCode ?? 0})`];
    default: return [`${c} received ${packet.type.toUpperCase()}`];
  }
}
