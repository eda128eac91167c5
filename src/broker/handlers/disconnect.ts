import { ProtocolError } from '../../codec/errors.js';
import type { DisconnectPacket } from '../../codec/types.js';
import type { Connection } from '../connection.js';

/** DISCONNECT: the will is discarded [MQTT-3.14.4-3], except v5 reason 0x04 "with will message". */
export function handleDisconnect(conn: Connection, p: DisconnectPacket): void {
  const s = conn.session!;
  const newExpiry = p.properties?.sessionExpiryInterval;
  if (conn.protocolVersion === 5 && newExpiry !== undefined) {
    // [MQTT-3.14.2-2] a session that was 0 at CONNECT may not be given an expiry at DISCONNECT
    if (s.expiryInterval === 0 && newExpiry !== 0) throw new ProtocolError('session expiry interval changed from 0 on DISCONNECT');
    s.expiryInterval = newExpiry;
  }
  const withWill = conn.protocolVersion === 5 && p.reasonCode === 0x04;
  if (!withWill) conn.will = undefined;
  conn.close('disconnected', withWill, `Client ${conn.who} disconnected.`);
}
