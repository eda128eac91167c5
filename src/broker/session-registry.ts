import type { ConnectPacket } from '../codec/types.js';
import type { StoredMessage, StoredSession, StoredSubscription, Window } from '../store/store.js';
import { fromStored } from './recorder.js';
import type { Message } from './types.js';
import type { Broker } from './broker.js';
import type { Connection } from './connection.js';
import { Session, type SessionEnv, type SubEntry } from './session.js';

const NEVER = 0xffffffff;

/**
 * @internal The session registry: client id → session, and the session's life: open (takeover, clean
 * start, expiry seen at CONNECT), the store record of a durable session, discard (subscriptions out of
 * the router, a delayed will out now) and expiry by the sweep. A Map, so that lookups stay plain.
 */
export class SessionRegistry extends Map<string, Session> {
  constructor(private readonly broker: Broker) {
    super();
  }

  /** Find or create the session for an accepted CONNECT, taking over an existing connection. */
  open(conn: Connection, p: ConnectPacket, now: number): { session: Session; present: boolean } {
    const b = this.broker;
    let s = this.get(conn.id);
    const old = s?.outlet as Connection | null | undefined;
    if (old && old !== conn) {
      // [MQTT-3.1.4-2] the existing connection is closed. Its will goes out as for any abnormal end, unless
      // the session continues: the old connection's session outlives it (3.x clean session 0, v5 expiry > 0)
      // and the new CONNECT does not start clean. That is mosquitto 2's rule (checked against 2.0.11: no will
      // for 3.1.1 c0 -> c0 or v5 expiry 100 -> clean start 0; a will for c1 -> c0, c0 -> c1, expiry 0 -> any,
      // and -> clean start 1), and a reading of MQTT 5's will delay: the session did not end, the client is back.
      if (!p.clean && s!.expiryInterval > 0) old.will = undefined;
      b.log.conn(`Client ${conn.id} already connected, closing old connection.`);
      if (old.protocolVersion === 5) old.writePacket({ type: 'disconnect', reasonCode: 0x8e });
      old.close('taken over', true, '');
      s = this.get(conn.id);
    }
    if (s !== undefined && s.outlet === null && s.disconnectedAt !== undefined && s.expiryInterval !== NEVER &&
        now - s.disconnectedAt >= s.expiryInterval * 1000) {
      // expired before the sweep came round to it (e.g. while the broker was down, restored a moment ago):
      // gone, as the sweep would have made it; its delayed will, if any, goes out now
      b.log.info(`Expiring client ${s.clientId}.`);
      b.stats.clientsExpired++;
      this.discard(s);
      s = undefined;
    }
    // [MQTT-3.1.3-9] the client is back before its will delay ran out: no will
    if (!p.clean) b.wills.cancel(conn.id);
    if (s !== undefined && p.clean) {
      this.discard(s);
      s = undefined;
    }
    const present = s !== undefined;
    if (s === undefined) {
      s = new Session(conn.id, b.sessionEnv);
      this.set(conn.id, s);
    }
    s.protocolVersion = p.protocolVersion;
    s.username = conn.username;
    s.listenerPort = conn.listenerPort;
    if (p.protocolVersion === 5) s.expiryInterval = p.properties?.sessionExpiryInterval ?? 0;
    else s.expiryInterval = p.clean ? 0 : (b.opts.persistentClientExpiration ?? NEVER);
    s.disconnectedAt = undefined;
    this.record(s);
    return { session: s, present };
  }

  /** Record a session's row in the store (or its removal once it no longer outlives its connection). */
  record(s: Session): void {
    const b = this.broker;
    const rec = b.recorder;
    if (rec === undefined) return;
    if (s.expiryInterval > 0) {
      rec.add({ op: 'session', session: {
        clientId: s.clientId, protocolVersion: s.protocolVersion, expiryInterval: s.expiryInterval,
        ...(s.username !== undefined ? { username: s.username } : {}),
        ...(s.listenerPort !== undefined ? { listenerPort: s.listenerPort } : {}),
        ...(s.disconnectedAt !== undefined ? { disconnectedAt: s.disconnectedAt } : {}),
      } });
      if (!s.stored) {
        // a session that becomes durable: what it already holds is recorded with it
        s.stored = true;
        for (const entry of s.subscriptions.values()) rec.add({ op: 'sub', clientId: s.clientId, sub: storedSub(entry) });
      }
    } else if (s.stored) {
      s.stored = false;
      rec.add({ op: 'dropSession', clientId: s.clientId });
    }
  }

  /** End a session: its subscriptions go, and a will still waiting for its delay is published now. */
  discard(s: Session): void {
    const b = this.broker;
    b.wills.fireNow(s.clientId);
    if (s.stored) {
      s.stored = false;
      b.recorder?.add({ op: 'dropSession', clientId: s.clientId });
    }
    if (s.hasSubscriptions) {
      for (const entry of s.subscriptions.values()) b.router.remove(s, entry);
      s.subscriptions.clear();
    }
    if (this.get(s.clientId) === s) {
      this.delete(s.clientId);
      b.opts.bus?.sessionEnded(s.clientId);
    }
  }

  /** Sessions whose expiry interval has passed since their client went away end (from the sweep). */
  expire(now: number): void {
    for (const s of this.values()) {
      if (s.outlet === null && s.disconnectedAt !== undefined && s.expiryInterval !== NEVER &&
          now - s.disconnectedAt >= s.expiryInterval * 1000) {
        this.broker.log.info(`Expiring client ${s.clientId}.`);
        this.broker.stats.clientsExpired++;
        this.discard(s);
      }
    }
  }

  /**
   * global_max_clients: would a CONNECT with this client id make one client too many? Clients are the
   * sessions: the connected ones and the durable ones offline. Taking over or resuming one is never refused.
   */
  tooMany(clientId: string, max: number): boolean {
    return max > 0 && this.size >= max && !this.has(clientId);
  }
}

/** @internal A subscription as the store keeps it. */
export function storedSub(e: SubEntry): StoredSubscription {
  return {
    filter: e.filter, qos: e.qos, noLocal: e.noLocal, retainAsPublished: e.retainAsPublished, retainHandling: e.retainHandling,
    ...(e.subscriptionId !== undefined ? { subscriptionId: e.subscriptionId } : {}),
  };
}

/** @internal A stored session as an offline Session: a client that was connected when its node stopped counts as gone since `now`. */
export function sessionFromStored(st: StoredSession, env: SessionEnv, now: number): Session {
  const s = new Session(st.clientId, env);
  s.protocolVersion = st.protocolVersion;
  s.username = st.username;
  s.listenerPort = st.listenerPort;
  s.expiryInterval = st.expiryInterval;
  s.disconnectedAt = st.disconnectedAt ?? now;
  s.stored = true;
  return s;
}

/** @internal A stored subscription as the session's entry (the caller adds it: Broker.subscribe, or the router). */
export function entryFromStored(session: Session, sub: StoredSubscription): SubEntry {
  return {
    session, filter: sub.filter, qos: sub.qos, noLocal: sub.noLocal, retainAsPublished: sub.retainAsPublished,
    retainHandling: sub.retainHandling, ...(sub.subscriptionId !== undefined ? { subscriptionId: sub.subscriptionId } : {}),
  };
}

/** @internal One Message per stored message id, however many queues and windows refer to it. */
export function storedMessages(): (m: StoredMessage) => Message {
  const messages = new Map<number, Message>();
  return (m) => {
    let msg = messages.get(m.id);
    if (msg === undefined) { msg = fromStored(m); messages.set(m.id, msg); }
    return msg;
  };
}

/** @internal A session's stored in-flight window, queue and incoming QoS 2 ids, put back into it. */
export function restoreWindow(s: Session, w: Window, message: (m: StoredMessage) => Message): void {
  s.restore(
    w.inflight.map((e) => ({ packetId: e.packetId, msg: message(e.message), qos: e.qos, retain: e.retain, subIds: e.subIds, state: e.state })),
    w.queued.map((q) => ({ seq: q.seq, msg: message(q.message), qos: q.qos, retain: q.retain, subIds: q.subIds })),
    w.incomingQos2,
  );
}
