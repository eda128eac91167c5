import type { UnsubscribePacket } from '../../codec/types.js';
import type { Connection } from '../connection.js';

/** UNSUBSCRIBE: remove each filter; UNSUBACK (v5: 0x00 per removed filter, 0x11 where there was none). */
export function handleUnsubscribe(conn: Connection, p: UnsubscribePacket): void {
  const broker = conn.broker;
  const log = broker.log;
  if (log.verbose) {
    log.debug(`Received UNSUBSCRIBE from ${conn.logId}`);
    for (const t of p.topics) log.debug(`\t${t}`);
  }
  const codes = p.topics.map((t) => (broker.unsubscribe(conn.session!, t) ? 0x00 : 0x11));
  conn.holdForCommit();
  conn.writePacket(conn.protocolVersion === 5
    ? { type: 'unsuback', packetId: p.packetId, reasonCodes: codes }
    : { type: 'unsuback', packetId: p.packetId });
  broker.emitSafely('unsubscribe', p.topics, conn);
}
