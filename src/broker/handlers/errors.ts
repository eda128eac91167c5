import { MqttError, UnsupportedProtocolVersionError } from '../../codec/errors.js';
import type { Connection } from '../connection.js';

/**
 * The one place where an error on a connection becomes what the peer gets (DESIGN.md "Errors"):
 * before CONNECT is accepted: a CONNACK with a code where the spec asks for one, else a silent close;
 * after: a v5 DISCONNECT with the reason code, or a plain close for 3.x. The will is then published.
 */
export function failConnection(conn: Connection, err: unknown): void {
  if (conn.state === 'closed') return;
  const log = conn.broker.log;
  if (conn.broker.listenerCount('clientError') > 0) conn.broker.emitSafely('clientError', conn, err instanceof Error ? err : new Error(String(err)));
  if (err instanceof HookError) {
    // embedding code failed: named in the log; this client is refused or disconnected, no one else notices
    log.error(`Client ${conn.who}: the ${err.hook} hook failed: ${describeCause(err.failure)}`);
    if (conn.state === 'connected') {
      if (conn.protocolVersion === 5) conn.writePacket({ type: 'disconnect', reasonCode: 0x83 });
      conn.close(`disconnected: the ${err.hook} hook failed`, true, '');
    } else {
      // before CONNACK: "server unavailable" (3.x 3, 5.0 0x88), the will is not kept
      conn.writePacket({ type: 'connack', sessionPresent: false, reasonCode: conn.protocolVersion === 5 ? 0x88 : 3 });
      conn.close('refused', false, '');
    }
    return;
  }
  if (!(err instanceof MqttError)) {
    // a bug of ours: contained to this connection, reported loudly
    log.error(`Internal error on client ${conn.logId}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    if (conn.state === 'connected' && conn.protocolVersion === 5) conn.writePacket({ type: 'disconnect', reasonCode: 0x83 });
    conn.close('disconnected due to an internal error', true);
    return;
  }
  if (err instanceof UnsupportedProtocolVersionError) {
    // [MQTT-3.1.2-2] CONNACK 0x01 (3.x) / 0x84 (5.0), then close
    if (err.protocolVersion === 5) {
      conn.protocolVersion = 5;
      conn.writePacket({ type: 'connack', sessionPresent: false, reasonCode: 0x84 });
    } else {
      conn.protocolVersion = 4;
      conn.writePacket({ type: 'connack', sessionPresent: false, reasonCode: 1 });
    }
    log.info(`Client ${conn.logId} from ${conn.remoteAddress}:${conn.remotePort} disconnected: unsupported protocol (${JSON.stringify(err.protocolName)}, ${err.protocolVersion}).`, conn.logFields);
    conn.close('unsupported protocol', true);
    return;
  }
  const what = err.reasonCode === 0x81 ? 'malformed packet' : err.reasonCode === 0x95 ? 'packet too large' : 'protocol error';
  if (conn.state === 'connected' && conn.protocolVersion === 5) {
    conn.writePacket({ type: 'disconnect', reasonCode: err.reasonCode });
  } else if (conn.state === 'new' && conn.protocolVersion === 5 && err.reasonCode >= 0x80) {
    conn.writePacket({ type: 'connack', sessionPresent: false, reasonCode: err.reasonCode });
  }
  log.info(`Client ${conn.who} disconnected due to ${what}: ${err.message}`, conn.logFields);
  conn.close(`disconnected due to ${what}`, true, '');
}

/** An application hook (authenticate, authorizePublish, authorizeSubscribe, an auth method) threw or rejected. */
export class HookError extends Error {
  constructor(readonly hook: string, readonly failure: unknown) {
    super(`the ${hook} hook failed: ${describeCause(failure)}`);
  }
}

function describeCause(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Call a hook so that whatever goes wrong in it (a synchronous throw or a rejection) becomes a HookError,
 * which failConnection answers for this client alone. A synchronous result stays synchronous.
 */
export function callHook<T>(hook: string, call: () => T | Promise<T>): T | Promise<T> {
  let r: T | Promise<T>;
  try {
    r = call();
  } catch (err) {
    throw new HookError(hook, err);
  }
  if (r !== null && typeof r === 'object' && typeof (r as { then?: unknown }).then === 'function') {
    return Promise.resolve(r).then(undefined, (err: unknown) => { throw new HookError(hook, err); });
  }
  return r;
}
