import { ProtocolError } from '../../codec/errors.js';
import type { QoS, SubscribePacket, Subscription } from '../../codec/types.js';
import { isShareError, isValidTopicFilter, parseSharedSubscription } from '../../topic/index.js';
import type { Connection } from '../connection.js';
import type { SubEntry } from '../session.js';
import { HookError } from './errors.js';

/**
 * SUBSCRIBE: validate each filter (invalid → 0x80 / v5 0x8F), ask the ACL hook (denied → 0x80 /
 * v5 0x87), store, answer SUBACK, then send the matching retained messages [MQTT-3.3.1-6].
 */
export function handleSubscribe(conn: Connection, p: SubscribePacket): void {
  const log = conn.broker.log;
  if (log.verbose) {
    log.debug(`Received SUBSCRIBE from ${conn.logId}`);
    for (const s of p.subscriptions) log.debug(`\t${s.topic} (QoS ${s.qos})`);
  }
  const v5 = conn.protocolVersion === 5;
  const subId = p.properties?.subscriptionIdentifiers?.[0];
  const authz = conn.broker.hooks.authorizeSubscribe;
  const verdicts: Array<boolean | Promise<boolean>> = [];
  let async = false;
  for (const s of p.subscriptions) {
    if (!validFilter(s.topic)) { verdicts.push(false); continue; }
    if (v5 && s.noLocal && s.topic.startsWith('$share/')) throw new ProtocolError('no local on a shared subscription [MQTT-3.8.3-4]');
    if (authz === undefined) { verdicts.push(true); continue; }
    let r: boolean | Promise<boolean>;
    try {
      r = authz(conn, s.topic, s.qos);
    } catch (err) {
      throw new HookError('authorizeSubscribe', err); // logged naming the hook; this client is disconnected
    }
    if (typeof r !== 'boolean') async = true;
    verdicts.push(r);
  }
  if (!async) {
    apply(conn, p, verdicts as boolean[], subId);
    return;
  }
  conn.runAsync(Promise.all(verdicts).then((v) => apply(conn, p, v, subId), (err: unknown) => { throw new HookError('authorizeSubscribe', err); }));
}

function apply(conn: Connection, p: SubscribePacket, allowed: boolean[], subId: number | undefined): void {
  if (conn.state === 'closed') return;
  const broker = conn.broker;
  const session = conn.session!;
  const v5 = conn.protocolVersion === 5;
  const codes: number[] = [];
  const added: Array<{ entry: SubEntry; existed: boolean }> = [];
  // A filter listed more than once is subscribed once, with the options of its last listing (as if
  // the earlier ones were replaced by it); every listing still gets its code in the SUBACK.
  const last = lastAllowedListing(p.subscriptions, allowed);
  p.subscriptions.forEach((s: Subscription, i) => {
    if (allowed[i] && last !== undefined && last.get(s.topic) !== i) {
      codes.push(Math.min(s.qos, 2));
      return;
    }
    if (!allowed[i]) {
      const valid = validFilter(s.topic);
      if (!valid) broker.log.info(`Invalid subscription filter '${s.topic}' from ${conn.logId}.`);
      else broker.log.info(`Denied SUBSCRIBE from ${conn.logId} to '${s.topic}'.`);
      codes.push(!v5 ? 0x80 : valid ? 0x87 : 0x8f);
      return;
    }
    const qos = Math.min(s.qos, 2) as QoS;
    // mosquitto: a 3.x bridge (try_private) gets its own messages not back, and retained flags as published
    const bridge3 = !v5 && conn.isBridge;
    const entry: SubEntry = {
      session, filter: s.topic, qos,
      noLocal: bridge3 || (s.noLocal ?? false),
      retainAsPublished: bridge3 || (s.retainAsPublished ?? false),
      retainHandling: s.retainHandling ?? 0,
      subscriptionId: subId,
    };
    const existed = broker.subscribe(session, entry);
    added.push({ entry, existed });
    codes.push(qos);
    broker.log.debug(`${conn.logId} ${qos} ${s.topic}`);
  });
  conn.holdForCommit();
  conn.writePacket({ type: 'suback', packetId: p.packetId, reasonCodes: codes });
  for (const { entry, existed } of added) {
    // retain handling: 0 always, 1 only for a new subscription, 2 never [MQTT-3.3.1-9..11]
    if (entry.retainHandling === 2 || (entry.retainHandling === 1 && existed)) continue;
    broker.sendRetained(session, entry);
  }
  broker.emitSafely('subscribe', p.subscriptions.filter((_, i) => allowed[i]), conn);
}

/** For a SUBSCRIBE that lists a filter more than once: the index of each filter's last allowed listing. */
function lastAllowedListing(subs: readonly Subscription[], allowed: readonly boolean[]): Map<string, number> | undefined {
  if (subs.length < 2) return undefined;
  const last = new Map<string, number>();
  for (let i = 0; i < subs.length; i++) if (allowed[i]) last.set(subs[i]!.topic, i);
  return last.size < subs.length ? last : undefined;
}

/** A valid filter, and for `$share/GROUP/FILTER` a valid group name and inner filter [MQTT-4.8.2-1..2]. */
function validFilter(filter: string): boolean {
  return isValidTopicFilter(filter) && !isShareError(parseSharedSubscription(filter));
}
