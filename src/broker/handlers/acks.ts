import type { AckPacket } from '../../codec/types.js';
import type { Connection } from '../connection.js';

// Acknowledgements of messages the broker sent (PUBACK, PUBREC, PUBCOMP) and PUBREL of messages it received.

export function handlePuback(conn: Connection, p: AckPacket): void {
  conn.session!.onPuback(p.packetId, Date.now());
}

export function handlePubrec(conn: Connection, p: AckPacket): void {
  const s = conn.session!;
  if (conn.protocolVersion === 5 && (p.reasonCode ?? 0) >= 0x80) {
    s.abandon(p.packetId, Date.now());
    return;
  }
  const known = s.onPubrec(p.packetId);
  // [MQTT-4.3.3-3] answer with PUBREL; v5 says 0x92 when the id is unknown
  conn.writePacket(conn.protocolVersion === 5 && !known
    ? { type: 'pubrel', packetId: p.packetId, reasonCode: 0x92 }
    : { type: 'pubrel', packetId: p.packetId });
}

export function handlePubcomp(conn: Connection, p: AckPacket): void {
  conn.session!.onPubcomp(p.packetId, Date.now());
}

export function handlePubrel(conn: Connection, p: AckPacket): void {
  const s = conn.session!;
  const known = s.incomingQos2.delete(p.packetId);
  if (known && conn.incomingQos12 > 0) conn.incomingQos12--;
  conn.writePacket(conn.protocolVersion === 5 && !known
    ? { type: 'pubcomp', packetId: p.packetId, reasonCode: 0x92 }
    : { type: 'pubcomp', packetId: p.packetId });
}
