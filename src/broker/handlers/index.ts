import { ProtocolError } from '../../codec/errors.js';
import type { Packet } from '../../codec/types.js';
import type { Connection } from '../connection.js';
import { describePacket } from '../describe.js';
import { handleConnect } from './connect.js';
import { handlePublish } from './publish.js';
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel } from './acks.js';
import { handleSubscribe } from './subscribe.js';
import { handleUnsubscribe } from './unsubscribe.js';
import { handleDisconnect } from './disconnect.js';
import { handleAuth } from './auth.js';

/** Hands each packet to its handler. Throws MqttError for packets a client must not send. */
export function dispatch(conn: Connection, p: Packet): void {
  const log = conn.broker.log;
  if (log.verbose && p.type !== 'publish' && p.type !== 'subscribe' && p.type !== 'unsubscribe' && p.type !== 'connect') {
    log.debug(`Received ${describePacket(p, conn.logId, false)}`);
  }
  if (conn.state === 'new') {
    // the parser already requires CONNECT first [MQTT-3.1.0-1]
    if (p.type === 'connect') return handleConnect(conn, p);
    throw new ProtocolError(`first packet must be CONNECT, got ${p.type.toUpperCase()}`);
  }
  if (conn.state === 'authenticating') {
    // [MQTT-4.12.0-?] during the AUTH exchange only AUTH (or DISCONNECT) may come
    if (p.type === 'auth') return handleAuth(conn, p);
    if (p.type === 'disconnect') { conn.close('disconnected', false, `Client ${conn.who} disconnected.`); return; }
    throw new ProtocolError(`${p.type.toUpperCase()} during the authentication exchange`);
  }
  switch (p.type) {
    case 'publish': return handlePublish(conn, p);
    case 'puback': return handlePuback(conn, p);
    case 'pubrec': return handlePubrec(conn, p);
    case 'pubrel': return handlePubrel(conn, p);
    case 'pubcomp': return handlePubcomp(conn, p);
    case 'subscribe': return handleSubscribe(conn, p);
    case 'unsubscribe': return handleUnsubscribe(conn, p);
    case 'pingreq':
      conn.writePacket({ type: 'pingresp' });
      return;
    case 'disconnect': return handleDisconnect(conn, p);
    case 'connect':
      throw new ProtocolError('second CONNECT on one connection [MQTT-3.1.0-2]');
    case 'auth': return handleAuth(conn, p);
    default:
      // CONNACK, SUBACK, UNSUBACK, PINGRESP are server-to-client only
      throw new ProtocolError(`a client must not send ${p.type.toUpperCase()}`);
  }
}
