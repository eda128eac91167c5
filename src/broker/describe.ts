import type { Packet } from '../codec/types.js';

/**
 * The text after "Received " / "Sending " in a verbose log line, as `mosquitto -v` words it,
 * e.g. `PUBLISH from client01 (d0, q1, r0, m1, 'test', ... (3 bytes))`, `PUBACK to client01 (m1, rc0)`.
 */
export function describePacket(p: Packet, clientId: string, outgoing: boolean): string {
  const who = outgoing ? `to ${clientId}` : `from ${clientId}`;
  switch (p.type) {
    case 'publish':
      return `PUBLISH ${who} (d${+p.dup}, q${p.qos}, r${+p.retain}, m${p.packetId ?? 0}, '${p.topic}', ... (${p.payload.length} bytes))`;
    case 'connack':
      return `CONNACK ${who} (${+p.sessionPresent}, ${p.reasonCode})`;
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      const name = p.type.toUpperCase();
      if (outgoing) return p.type === 'pubrel' || p.type === 'pubcomp' ? `${name} ${who} (m${p.packetId})` : `${name} ${who} (m${p.packetId}, rc${p.reasonCode ?? 0})`;
      return p.type === 'puback' || p.type === 'pubcomp' ? `${name} ${who} (Mid: ${p.packetId}, RC:${p.reasonCode ?? 0})` : `${name} ${who} (Mid: ${p.packetId})`;
    }
    case 'disconnect':
      return p.reasonCode ? `DISCONNECT ${who} (${p.reasonCode})` : `DISCONNECT ${who}`;
    default:
      return `${p.type.toUpperCase()} ${who}`;
  }
}
