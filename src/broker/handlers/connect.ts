import { randomUUID } from 'node:crypto';
import type { ConnectPacket, Properties } from '../../codec/types.js';
import { MalformedPacketError, ProtocolError } from '../../codec/errors.js';
import { checkMessage } from '../checks.js';
import { refusalReason } from '../traffic.js';
import type { Connection } from '../connection.js';
import type { AuthResult } from '../types.js';
import { startEnhancedAuth } from './auth.js';
import { ownWill } from '../session.js';
import { callHook } from './errors.js';

/**
 * CONNECT as named steps (like aedes' connectActions):
 * validate → redirect → authenticate (password hook, or an MQTT 5 AUTH exchange) → take over →
 * open session → store will → CONNACK → resume session.
 */
export function handleConnect(conn: Connection, p: ConnectPacket): void {
  const broker = conn.broker;
  broker.stats.connectsReceived++;
  conn.protocolVersion = p.protocolVersion;
  if (p.bridge === true) conn.isBridge = true;
  conn.state = 'connecting';
  if (!validate(conn, p)) return;
  if (broker.opts.serverReference !== undefined) {
    redirect(conn);
    return;
  }
  const method = p.properties?.authenticationMethod;
  if (p.protocolVersion === 5 && method !== undefined) {
    startEnhancedAuth(conn, p, method);
    return;
  }
  conn.runAsync(authenticate(conn, p).then((ok) => {
    if (!ok || conn.state === 'closed') return;
    return accept(conn, p);
  }));
}

/** mosquitto prints protocol 3.1 as p1, 3.1.1 as p2, 5.0 as p5 */
export function logLevel(v: number): number { return v === 3 ? 1 : v === 4 ? 2 : v; }

export function refuse(conn: Connection, code3: number, code5: number, why: string, properties?: Properties): void {
  const reasonCode = conn.protocolVersion === 5 ? code5 : code3;
  conn.broker.traffic.refuse(refusalReason(code5));
  conn.writePacket(properties !== undefined && conn.protocolVersion === 5
    ? { type: 'connack', sessionPresent: false, reasonCode, properties }
    : { type: 'connack', sessionPresent: false, reasonCode });
  conn.broker.log.conn(`Client ${conn.id || '<unknown>'} from ${conn.remoteAddress}:${conn.remotePort} refused: ${why}.`, conn.logFields);
  conn.close('refused', false, '');
}

function validate(conn: Connection, p: ConnectPacket): boolean {
  const broker = conn.broker;
  let id = p.clientId;
  if (id.length === 0) {
    // [MQTT-3.1.3-8] 3.1.1: a zero-length id needs clean session; 3.1 does not allow it; 5.0 gets one assigned
    if (p.protocolVersion === 3 || (p.protocolVersion === 4 && !p.clean) || !broker.opts.allowZeroLengthClientid) {
      refuse(conn, 2, 0x85, 'identifier rejected (zero-length client id)');
      return false;
    }
    id = `auto-${randomUUID().toUpperCase()}`;
    conn.assignedId = true;
  }
  conn.id = id;
  const max = broker.opts.maxKeepalive;
  if (p.protocolVersion !== 5 && max < 65535 && (p.keepalive > max || p.keepalive === 0)) {
    // mosquitto.conf(5), max_keepalive: a 3.x client cannot be told a server keepalive, so a longer one (and 0,
    // "never") is refused with "identifier rejected" (mosquitto >= 2.0.12; 2.0.11 still accepts it, checked).
    // Only with a limit set: the default 65535 is no limit, as for v5 here.
    refuse(conn, 2, 2, `keepalive ${p.keepalive} is ${p.keepalive === 0 ? '0 (none) with' : 'over'} max_keepalive ${max}`);
    return false;
  }
  const will = p.will;
  if (will !== undefined) {
    // a will is checked like the PUBLISH it becomes (checks.ts); $SYS and the ACL when it goes out (Broker.publishWill)
    const check = checkMessage(broker, will.topic, will.payload.length);
    if (check === 0x90) {
      // the will topic is a topic name (3.1.3.3 / 5.0 3.1.3.3): empty or with wildcards, the CONNECT is malformed
      // and the connection closes without CONNACK (3.1.1 4.8, 5.0 4.13; mosquitto 2.0.11 too, checked with 'ok/+')
      throw new MalformedPacketError(`invalid will topic '${will.topic}'`);
    }
    if (check === 0x95) {
      // mosquitto: "connected with too large Will payload", CONNACK 5 (3.x) / 0x95 (5.0), checked against 2.0.11
      refuse(conn, 5, 0x95, `will payload of ${will.payload.length} bytes is over message_size_limit ${broker.opts.messageSizeLimit}`);
      return false;
    }
    if (will.retain && !broker.opts.retainAvailable) {
      // as a retained PUBLISH is refused in 5.0 (0x9A); mosquitto 2.0.11 (checked): 5.0 CONNACK 0x9A, 3.x closed without CONNACK
      if (p.protocolVersion === 5) {
        refuse(conn, 0, 0x9a, 'retained will with retain_available false');
        return false;
      }
      throw new ProtocolError('retained will with retain_available false');
    }
  }
  return true;
}

/** Server redirection: v5 clients are told where to go; 3.x clients hear "server unavailable". */
function redirect(conn: Connection): void {
  const opts = conn.broker.opts;
  const moved = opts.serverMoved === true;
  refuse(conn, 3, moved ? 0x9d : 0x9c, `redirected to ${opts.serverReference}`, { serverReference: opts.serverReference });
}

async function authenticate(conn: Connection, p: ConnectPacket): Promise<boolean> {
  const broker = conn.broker;
  // a listener that takes the username from the client certificate overrides the one in CONNECT
  const username = conn.certificateIdentity ?? p.username;
  conn.username = username;
  const hook = broker.hooks.authenticate;
  let result: AuthResult;
  if (conn.trusted) {
    result = { ok: true }; // the broker's own connection (a bridge's local side): its username is for the ACLs
  } else if (hook !== undefined) {
    // a throw or a rejection is a HookError: logged naming the hook, this client refused (handlers/errors.ts)
    const r = await callHook('authenticate', () => hook(conn, username, p.password));
    result = typeof r === 'boolean' ? { ok: r } : r;
  } else {
    result = { ok: username !== undefined || broker.opts.allowAnonymous };
  }
  if (conn.state === 'closed') return false;
  if (!result.ok) {
    const { code3, code5 } = refusalCodes(conn, result);
    const why = code5 === 0x86 ? 'bad user name or password' : code5 === 0x87 ? 'not authorised' : `reason code 0x${code5.toString(16)}`;
    const text = typeof result.reasonString === 'string' ? result.reasonString : undefined;
    refuse(conn, code3, code5, text !== undefined ? `${why} (${text})` : why, text !== undefined ? { reasonString: text } : undefined);
    return false;
  }
  return true;
}

/** CONNACK reason codes a refusal may use (MQTT 5.0 3.2.2.2); the hook's others are logged and become 0x87 */
const CONNACK_REFUSALS = new Set([0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f]);
const CODE3_TO_5: Record<number, number> = { 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87 };

/**
 * The nearest MQTT 3.1.1 CONNACK return code of an MQTT 5 refusal: the protocol version (0x84 → 1), the client
 * id (0x85 → 2), the credentials (0x86 → 4), the server's state (0x88 unavailable, 0x89 busy, 0x9C use another
 * server, 0x9D moved, 0x9F connection rate exceeded → 3 server unavailable); any other refusal is the server
 * declining this client (→ 5 not authorised).
 */
export function connackCode3(code5: number): number {
  switch (code5) {
    case 0x84: return 1;
    case 0x85: return 2;
    case 0x86: return 4;
    case 0x88: case 0x89: case 0x9c: case 0x9d: case 0x9f: return 3;
    default: return 5;
  }
}

function refusalCodes(conn: Connection, r: AuthResult): { code3: number; code5: number } {
  const rc = r.reasonCode;
  if (rc !== undefined) {
    if (CONNACK_REFUSALS.has(rc)) return { code3: connackCode3(rc), code5: rc };
    conn.broker.log.error(`Client ${conn.who}: the authenticate hook answered reason code ${String(rc)}, not a CONNACK refusal: refused with 0x87 (not authorised).`);
    return { code3: 5, code5: 0x87 };
  }
  const c3 = r.returnCode ?? 5;
  const code5 = CODE3_TO_5[c3];
  if (code5 !== undefined) return { code3: c3, code5 };
  conn.broker.log.error(`Client ${conn.who}: the authenticate hook answered return code ${String(c3)}, not 1..5: refused with 5 (not authorised).`);
  return { code3: 5, code5: 0x87 };
}

/**
 * CONNECT accepted: session, will, CONNACK (with v5 properties), then the session's backlog. In a cluster the
 * session is first claimed from the node that has it (a promise: the caller's async step waits for it).
 */
export function accept(conn: Connection, p: ConnectPacket, extra?: Properties): Promise<void> | undefined {
  const bus = conn.broker.opts.bus;
  if (bus === undefined || conn.id.length === 0) { acceptNow(conn, p, extra); return undefined; }
  return bus.claim(conn.id, p.clean).then(
    () => { if (conn.state !== 'closed') acceptNow(conn, p, extra); },
    (err: unknown) => {
      if (conn.state === 'closed') return;
      conn.broker.log.error(`Cluster: client ${conn.id}'s session could not be claimed: ${err instanceof Error ? err.message : String(err)}`);
      refuse(conn, 3, 0x88, 'server unavailable (the cluster could not hand over its session)');
    },
  );
}

function acceptNow(conn: Connection, p: ConnectPacket, extra?: Properties): void {
  const broker = conn.broker;
  const opts = broker.opts;
  const v5 = p.protocolVersion === 5;
  const now = broker.clock.now();

  let keepalive = p.keepalive;
  const props: Properties = extra !== undefined ? { ...extra } : {};
  if (v5 && opts.maxKeepalive < 65535 && (keepalive > opts.maxKeepalive || keepalive === 0)) {
    keepalive = opts.maxKeepalive;
    props.serverKeepAlive = keepalive;
  }
  conn.keepaliveMs = keepalive * 1000;

  // global_max_clients: a client id without a session is a new client (mosquitto 2.1: server busy)
  if (broker.tooManyClients(conn.id)) { refuse(conn, 3, 0x89, 'global_max_clients exceeded'); return; }
  const { session, present } = broker.openSession(conn, p, now);
  conn.session = session;
  // the will lives as long as the connection (and its delay): not as a view of the CONNECT's chunk
  conn.will = p.will === undefined ? undefined : ownWill(p.will);
  broker.opts.bus?.sessionOwned(conn);

  if (v5) {
    const cp = p.properties;
    if (cp?.maximumPacketSize !== undefined) conn.maxOutgoingPacketSize = cp.maximumPacketSize;
    session.clientReceiveMaximum = cp?.receiveMaximum ?? 65535;
    if (cp?.topicAliasMaximum) conn.outgoingAliasMax = cp.topicAliasMaximum;
    if (conn.assignedId) props.assignedClientIdentifier = conn.id;
    conn.topicAliasMaximum = broker.topicAliasMaximum;
    if (conn.topicAliasMaximum > 0) props.topicAliasMaximum = conn.topicAliasMaximum;
    if (opts.maxInflightMessages > 0 && opts.maxInflightMessages < 65535) {
      conn.receiveMaximum = opts.maxInflightMessages;
      props.receiveMaximum = opts.maxInflightMessages;
    }
    if (opts.maxPacketSize > 0) props.maximumPacketSize = opts.maxPacketSize;
    if (!opts.retainAvailable) props.retainAvailable = 0;
    if (cp?.requestResponseInformation === 1) props.responseInformation = `${opts.responseInformation}${conn.id}`;
  }
  conn.state = 'connected';
  const user = conn.username !== undefined ? `, u'${conn.username}'` : '';
  if (broker.log.connOn) broker.log.conn(`New ${conn.isBridge ? 'bridge' : 'client'} connected from ${conn.remoteAddress}:${conn.remotePort} as ${conn.id} (p${logLevel(p.protocolVersion)}, c${+p.clean}, k${keepalive}${user}).`, conn.logFields);
  if (p.will !== undefined) {
    broker.log.debug(`Will message specified (${p.will.payload.length} bytes) (r${+p.will.retain}, q${p.will.qos}).`);
    broker.log.debug(`\t${p.will.topic}`);
  } else {
    broker.log.debug('No will message specified.');
  }
  // the CONNACK confirms the session (and its clean start): it waits for their commit, with what follows it
  conn.holdForCommit();
  conn.writePacket(v5 && Object.keys(props).length > 0
    ? { type: 'connack', sessionPresent: present, reasonCode: 0, properties: props }
    : { type: 'connack', sessionPresent: present, reasonCode: 0 });
  session.attach(conn, now);
  broker.clientConnected(conn);
}
