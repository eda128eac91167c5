import { ProtocolError } from '../../codec/errors.js';
import type { AckPacket } from '../../codec/types.js';
import type { Connection } from '../connection.js';

// Acknowledgements of messages the broker sent (PUBACK, PUBREC, PUBCOMP) and PUBREL of messages it received.

export function handlePuback(conn: Connection, p: AckPacket): void {
  const s = conn.session!;
  if (s.onPuback(p.packetId, conn.broker.clock.now())) return;
  // PUBACK for a QoS 2 message in flight: the wrong flow for that id, a protocol error (mosquitto 2.0.11
  // closes the connection, checked). An unknown id is ignored (mosquitto too, checked).
  if (s.inflight.get(p.packetId)?.qos === 2) throw new ProtocolError(`PUBACK for packet ${p.packetId}, a QoS 2 message`);
}

export function handlePubrec(conn: Connection, p: AckPacket): void {
  const s = conn.session!;
  if (conn.protocolVersion === 5 && (p.reasonCode ?? 0) >= 0x80) {
    s.abandon(p.packetId, conn.broker.clock.now());
    return;
  }
  const known = s.onPubrec(p.packetId);
  // PUBREC for a QoS 1 message in flight: the wrong flow, a protocol error (mosquitto 2.0.11 closes, checked);
  // an unknown id is answered with PUBREL (mosquitto too, with a warning; v5: reason 0x92)
  if (!known && s.inflight.get(p.packetId)?.qos === 1) throw new ProtocolError(`PUBREC for packet ${p.packetId}, a QoS 1 message`);
  // A durable session's PUBREL waits for the commit of the message's new state: sent before it, a
  // crash would leave the message in the store as unreceived, and the restarted broker would send
  // the PUBLISH again to a client that has completed it (a second delivery of a QoS 2 message).
  if (known && s.inflight.get(p.packetId)?.stored === true) conn.holdForCommit();
  // [MQTT-4.3.3-3] answer with PUBREL; v5 says 0x92 when the id is unknown
  conn.writePacket(conn.protocolVersion === 5 && !known
    ? { type: 'pubrel', packetId: p.packetId, reasonCode: 0x92 }
    : { type: 'pubrel', packetId: p.packetId });
}

/**
 * PUBCOMP completes a QoS 2 flow only after PUBREC/PUBREL. For a message still waiting for its PUBREC (or a
 * QoS 1 message) it is a protocol error: v5 DISCONNECT 0x82, 3.x close (mosquitto 2.0.11 closes, checked).
 * An id with nothing in flight is ignored, as mosquitto does (checked: PUBCOMP for id 77, connection stays):
 * a late PUBCOMP after a resend, or after the session was resumed elsewhere, is harmless.
 */
export function handlePubcomp(conn: Connection, p: AckPacket): void {
  const s = conn.session!;
  if (s.onPubcomp(p.packetId, conn.broker.clock.now())) return;
  const e = s.inflight.get(p.packetId);
  if (e === undefined) return;
  throw new ProtocolError(e.qos === 2
    ? `PUBCOMP for packet ${p.packetId} before its PUBREC`
    : `PUBCOMP for packet ${p.packetId}, a QoS 1 message`);
}

export function handlePubrel(conn: Connection, p: AckPacket): void {
  const s = conn.session!;
  const known = s.releaseIncomingQos2(p.packetId);
  if (known && conn.incomingQos12 > 0) conn.incomingQos12--;
  conn.holdForCommit();
  conn.writePacket(conn.protocolVersion === 5 && !known
    ? { type: 'pubcomp', packetId: p.packetId, reasonCode: 0x92 }
    : { type: 'pubcomp', packetId: p.packetId });
}
