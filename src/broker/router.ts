import type { QoS } from '../codec/types.js';
import { SubscriptionTrie, parseSharedSubscription, isShareError } from '../topic/index.js';
import type { Logger } from './log.js';
import type { Orphan, Session, SubEntry } from './session.js';
import { SharedGroup, type ShareStrategy } from './shared.js';
import type { BrokerHooks, Message } from './types.js';
import type { PublishInput } from './broker.js';
import type { Clock } from '../util/clock.js';

/** Which shared groups a routing delivers to, in a cluster (see Router.route). */
export interface SharedSelect {
  only?: ReadonlySet<string>;
  skip?: ReadonlySet<string>;
}

/** What the router needs from the broker that owns it. */
export interface RouterEnv {
  readonly hooks: BrokerHooks;
  readonly log: Logger;
  readonly strategy: ShareStrategy;
  readonly clock: Clock;
  /** authorizeForward's answer made into a routable message (the broker's input conversion) */
  toMessage(answer: PublishInput, now: number): Message;
}

/**
 * @internal The router: the subscription trie (a shared group sits under its inner filter with key
 * `$share/GROUP`), shared groups, and the fan-out of one message to the sessions that match it. It keeps
 * no durable state of its own: the broker records subscriptions (Broker.subscribe) before they get here.
 */
export class Router {
  readonly subs = new SubscriptionTrie<SubEntry | SharedGroup>();
  private stamp = 0;
  private readonly targets: Session[] = [];
  private readonly sharedTargets: SharedGroup[] = [];
  private routeMsg: Message | undefined;
  /** shared groups in the trie, and their members (subscriptions): $SYS/broker/(shared_)subscriptions/count */
  private groups = 0;
  private sharedMembers = 0;
  private readonly visitBound: (e: SubEntry | SharedGroup) => void;
  /**
   * The cluster bus's view of the trie: called when a filter (a `$share/G/F` counts as its own) gets its
   * first subscription here or loses its last one (per session entry: the bus counts them).
   */
  onFilter: ((filter: string, added: boolean) => void) | undefined;

  constructor(private readonly env: RouterEnv) {
    this.visitBound = (e) => this.visit(e);
  }

  /** Add or replace a session's subscription (a `$share/GROUP/FILTER` joins its group). */
  add(session: Session, entry: SubEntry): void {
    const shared = parseSharedSubscription(entry.filter);
    if (shared !== undefined && !isShareError(shared)) {
      const key = `$share/${shared.group}`;
      let group = this.subs.get(shared.filter, key) as SharedGroup | undefined;
      if (group === undefined) {
        group = new SharedGroup(shared.group, shared.filter, this.env.strategy);
        this.subs.set(shared.filter, key, group);
        this.groups++;
      }
      entry.share = group;
      const before = group.members.length;
      group.add(entry);
      this.sharedMembers += group.members.length - before;
      if (group.members.length > before) this.onFilter?.(entry.filter, true);
    } else if (this.subs.set(entry.filter, session.clientId, entry)) {
      this.onFilter?.(entry.filter, true);
    }
  }

  /** Take a session's subscription out of the trie (or its shared group). */
  remove(session: Session, entry: SubEntry): void {
    const group = entry.share;
    if (group === undefined) {
      if (this.subs.delete(entry.filter, session.clientId)) this.onFilter?.(entry.filter, false);
      return;
    }
    if (group.remove(session)) {
      this.sharedMembers--;
      this.onFilter?.(entry.filter, false);
    }
    if (group.members.length === 0 && this.subs.delete(group.filter, `$share/${group.group}`)) this.groups--;
  }

  /** subscriptions that are not shared (mosquitto's subscriptions/count) */
  get subscriptionCount(): number { return this.subs.size - this.groups; }
  /** members of shared groups (mosquitto's shared_subscriptions/count) */
  get sharedSubscriptionCount(): number { return this.sharedMembers; }

  /**
   * Deliver to every matching session; false when no subscription matched. In a cluster, `shared` says which
   * shared groups (`$share/G/F`) this node delivers the message to (`only`) or leaves to another node
   * (`skip`), and `onlySessions` limits delivery to those sessions (a dead node's inbox, replayed to the
   * sessions adopted from it).
   */
  route(msg: Message, shared?: SharedSelect, onlySessions?: ReadonlySet<Session>): boolean {
    this.stamp++;
    this.routeMsg = msg;
    const targets = this.targets;
    this.subs.match(msg.topic, this.visitBound);
    this.routeMsg = undefined;
    if (targets.length === 0 && this.sharedTargets.length === 0) return false;
    const now = this.env.clock.now();
    const read = this.env.hooks.authorizeRead;
    const fwd = this.env.hooks.authorizeForward;
    for (let i = 0; i < targets.length; i++) {
      const s = targets[i]!;
      if (onlySessions !== undefined && !onlySessions.has(s)) continue;
      if (read !== undefined && !this.mayRead(s, msg)) continue;
      let m = msg;
      if (fwd !== undefined) {
        const f = this.forward(s, msg, now);
        if (f === null) continue;
        m = f;
      }
      const qos = (m.qos < s.routeQos ? m.qos : s.routeQos) as QoS;
      // 3.1.1: a message sent to existing subscriptions has retain 0 [MQTT-3.3.1-9]; v5 retain-as-published keeps it
      s.deliver(m, qos, s.routeRap && m.retain, s.routeSubIds, now);
    }
    targets.length = 0;
    if (this.sharedTargets.length > 0) this.routeShared(msg, now, shared);
    return true;
  }

  /** Each matching shared group delivers to one member, independently of its non-shared subscriptions. */
  private routeShared(msg: Message, now: number, shared: SharedSelect | undefined): void {
    const read = this.env.hooks.authorizeRead;
    const fwd = this.env.hooks.authorizeForward;
    for (const group of this.sharedTargets) {
      if (shared !== undefined) {
        const key = `$share/${group.group}/${group.filter}`;
        if (shared.only !== undefined ? !shared.only.has(key) : shared.skip?.has(key) === true) continue;
      }
      const m = group.pick(msg.origin);
      if (m === undefined) continue;
      if (read !== undefined && !this.mayRead(m.session, msg)) continue;
      let out = msg;
      if (fwd !== undefined) {
        const f = this.forward(m.session, msg, now);
        if (f === null) continue;
        out = f;
      }
      const qos = (out.qos < m.qos ? out.qos : m.qos) as QoS;
      const subIds = m.subscriptionId !== undefined ? [m.subscriptionId] : undefined;
      m.session.deliver(out, qos, m.retainAsPublished && out.retain, subIds, now, group);
    }
    this.sharedTargets.length = 0;
  }

  /** Messages in flight to a shared-subscription member that went away go to another member. */
  rehome(orphans: Orphan[], from: Session, now: number): void {
    for (const { msg, share } of orphans) {
      const member = share.pick(msg.origin, from);
      if (member === undefined) continue;
      const qos = (msg.qos < member.qos ? msg.qos : member.qos) as QoS;
      if (msg.expiresAt !== undefined && msg.expiresAt <= now) continue;
      const subIds = member.subscriptionId !== undefined ? [member.subscriptionId] : undefined;
      member.session.deliver(msg, qos, member.retainAsPublished && msg.retain, subIds, now, share);
    }
  }

  /** The read ACL for one delivery; a hook that throws denies (and is logged), it never breaks routing. */
  mayRead(s: Session, msg: Message): boolean {
    const read = this.env.hooks.authorizeRead;
    if (read === undefined) return true;
    try {
      return read(s, msg);
    } catch (err) {
      this.env.log.error(`authorizeRead threw for ${s.clientId} on '${msg.topic}': ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }

  /**
   * authorizeForward for one delivery: the message itself, a fresh Message made from the hook's answer (own
   * encoder caches; the original's origin and expiry kept), or null to skip. A throw skips (and is logged).
   */
  forward(s: Session, msg: Message, now: number): Message | null {
    const fwd = this.env.hooks.authorizeForward;
    if (fwd === undefined) return msg;
    try {
      const r = fwd(s, msg);
      if (r === undefined || r === msg) return msg;
      if (r === null) return null;
      const m = this.env.toMessage(r, now);
      if (msg.origin !== undefined) m.origin = msg.origin;
      if (msg.expiresAt !== undefined && m.expiresAt !== undefined) m.expiresAt = msg.expiresAt;
      return m;
    } catch (err) {
      this.env.log.error(`authorizeForward failed for ${s.clientId} on '${msg.topic}': ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
  }

  /** Merges overlapping subscriptions of one session: one delivery at the highest QoS. */
  private visit(v: SubEntry | SharedGroup): void {
    if ('shared' in v) { this.sharedTargets.push(v); return; }
    const e = v;
    const s = e.session;
    const msg = this.routeMsg!;
    if (e.noLocal && msg.origin === s.clientId) return;
    if (s.routeStamp !== this.stamp) {
      s.routeStamp = this.stamp;
      s.routeQos = e.qos;
      s.routeRap = e.retainAsPublished;
      s.routeSubIds = e.subscriptionId !== undefined ? [e.subscriptionId] : undefined;
      this.targets.push(s);
      return;
    }
    if (e.qos > s.routeQos) s.routeQos = e.qos;
    if (e.retainAsPublished) s.routeRap = true;
    if (e.subscriptionId !== undefined) (s.routeSubIds ??= []).push(e.subscriptionId);
  }
}
