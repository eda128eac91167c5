import { ProtocolError } from '../../codec/errors.js';
import type { AuthPacket, ConnectPacket } from '../../codec/types.js';
import type { Connection } from '../connection.js';
import type { AuthExchange, AuthStep, ClientInfo } from '../types.js';
import { accept, refuse } from './connect.js';
import { callHook, HookError } from './errors.js';

/**
 * MQTT 5 enhanced authentication (spec 4.12): CONNECT with an authentication method starts an
 * exchange of AUTH packets run by the method's hook; AUTH 0x19 after CONNACK re-authenticates.
 */
export interface PendingAuth {
  method: string;
  exchange: AuthExchange;
  /** the CONNECT being authenticated; undefined during re-authentication */
  connect?: ConnectPacket;
  /** when the exchange started (monotonic ms): it has the connect deadline (midge_connect_timeout), see Broker.sweep */
  startedAt: number;
  /** true while the method's hook is working on a step (a timeout is then the hook's fault, not the client's) */
  stepping: boolean;
}

/** A new exchange of `method` for this connection; a factory that throws is a HookError naming it. */
function newExchange(conn: Connection, method: string, factory: (client: ClientInfo) => AuthExchange, connect?: ConnectPacket): PendingAuth {
  let exchange: AuthExchange;
  try {
    exchange = factory(conn);
  } catch (err) {
    throw new HookError(`'${method}' authentication method`, err);
  }
  return { method, exchange, connect, startedAt: conn.broker.clock.monotonic(), stepping: false };
}

export function startEnhancedAuth(conn: Connection, p: ConnectPacket, method: string): void {
  const factory = conn.broker.hooks.authMethods?.[method];
  if (factory === undefined) {
    refuse(conn, 5, 0x8c, `bad authentication method '${method}'`);
    return;
  }
  conn.username = conn.certificateIdentity ?? p.username;
  const pending = newExchange(conn, method, factory, p);
  conn.auth = pending;
  conn.state = 'authenticating';
  runStep(conn, pending, p.properties?.authenticationData);
}

/** AUTH from the client: continue an exchange, or start re-authentication (0x19) once connected. */
export function handleAuth(conn: Connection, p: AuthPacket): void {
  const method = p.properties?.authenticationMethod;
  if (conn.protocolVersion !== 5) throw new ProtocolError('AUTH in MQTT 3.x');
  if (conn.state === 'connected') {
    const reauth = conn.auth;
    if (reauth !== undefined && p.reasonCode === 0x18 && method === reauth.method) {
      // the client's answer in a re-authentication exchange
      runStep(conn, reauth, p.properties?.authenticationData);
      return;
    }
    if (p.reasonCode !== 0x19) throw new ProtocolError(`AUTH with reason ${p.reasonCode} outside an exchange`);
    const factory = method !== undefined ? conn.broker.hooks.authMethods?.[method] : undefined;
    // [MQTT-4.12.1-1] re-authentication must use the method of the CONNECT
    if (factory === undefined || method !== conn.authMethod) throw new ProtocolError('re-authentication with another method');
    const pending = newExchange(conn, method!, factory);
    conn.auth = pending;
    runStep(conn, pending, p.properties?.authenticationData);
    return;
  }
  const pending = conn.auth;
  if (pending === undefined || p.reasonCode !== 0x18 || method !== pending.method) {
    throw new ProtocolError('unexpected AUTH packet');
  }
  runStep(conn, pending, p.properties?.authenticationData);
}

function runStep(conn: Connection, pending: PendingAuth, data: Buffer | undefined): void {
  const hook = `'${pending.method}' authentication method`;
  pending.stepping = true;
  const step = callHook(hook, () => pending.exchange.step(data));
  conn.runAsync(Promise.resolve(step).then((r: AuthStep) => {
    pending.stepping = false;
    if (conn.state === 'closed') return;
    if ('continue' in r) {
      conn.writePacket({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: pending.method, authenticationData: r.continue } });
      return;
    }
    conn.auth = undefined;
    const connect = pending.connect;
    if ('failure' in r) {
      const code = r.reasonCode ?? 0x87;
      if (connect !== undefined) { refuse(conn, 5, code, `authentication method '${pending.method}' failed`); return; }
      conn.writePacket({ type: 'disconnect', reasonCode: code });
      conn.close('failed re-authentication', true, `Client ${conn.who} failed re-authentication.`);
      return;
    }
    if (r.username !== undefined) {
      conn.username = r.username;
      // re-authentication: the read ACL (authorizeRead) sees the session, so the session takes the new identity
      if (connect === undefined && conn.session !== undefined) conn.session.username = r.username;
    }
    const props = { authenticationMethod: pending.method, ...(r.data !== undefined ? { authenticationData: r.data } : {}) };
    if (connect !== undefined) {
      conn.authMethod = pending.method;
      return accept(conn, connect, props);
    } else {
      conn.writePacket({ type: 'auth', reasonCode: 0x00, properties: props });
    }
  }));
}
