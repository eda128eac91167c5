import { randomUUID } from 'node:crypto';
import type { Redis as RedisClient } from 'ioredis';
import type { Broker } from '../broker/broker.js';
import type { Connection } from '../broker/connection.js';
import type { Message } from '../broker/types.js';
import { Session, type SubEntry } from '../broker/session.js';
import { entryFromStored, restoreWindow, sessionFromStored, storedMessages } from '../broker/session-registry.js';
import type { WillOwner } from '../broker/wills.js';
import type { RedisStore } from '../store/redis.js';
import { decodeWill, encodeWill } from '../store/redis-encode.js';
import type { StoredSession, StoredSubscription, Window } from '../store/store.js';
import { SubscriptionTrie, isShareError, parseSharedSubscription } from '../topic/index.js';
import { topicMatches } from '../topic/validate.js';
import type { Bus, BusStats } from './bus.js';
import { decodeEnvelope, encodeEnvelope, joinBatch, splitBatch } from './envelope.js';

const NEVER = 0xffffffff;
/** how long a moved session's messages are passed on by its previous node, and deduplicated by its new one */
const MOVED_MS = 10_000;
/** message ids are reserved from Redis in blocks this large (ids are unique cluster-wide) */
const ID_BLOCK = 1 << 20;

export interface RedisBusOptions {
  nodeId: string;
  /** how long a node's lease lives without renewal (default 3000 ms; renewed every third of it) */
  leaseMs?: number;
  /**
   * what should be the same on every node (e.g. `password_file` -> a digest of its contents): compared with the
   * other nodes' at join, a difference is logged
   */
  config?: Record<string, string>;
}

interface RemoteEntry { node: string; group: string | undefined }

type Control =
  | { t: 'join'; node: string }
  | { t: 'gone'; node: string }
  | { t: 'claim'; id: string; from: string; to: string; client: string; clean: boolean }
  | { t: 'released'; id: string; to: string }
  | { t: 'clients'; node: string; n: number };

/**
 * The cluster bus on Redis (docs/cluster.md). Keys, under the store's prefix P:
 *   P nodes          hash node id -> JSON (pid, started)           P lease:NODE  the node's lease (PX)
 *   P in:NODE        stream: messages forwarded to NODE           P cur:NODE    the last entry NODE committed
 *   P idx:NODE       set of NODE's subscription filters           P owner       hash client id -> owning node
 *   P lwill:NODE     hash client id -> will of NODE's connected clients (published by the node that adopts it)
 *   P adopt:NODE     who adopts a dead NODE (SET NX)
 *   channel P bus    index changes ("i+NODE\nFILTER", "i-..."), and JSON control messages
 * Forwards, the inbox cursor, index changes, owners and live wills are written by the store's commit
 * script in the same transaction as the turn's changes: a PUBACK leaves only after the forwards are in Redis.
 */
export class RedisBus implements Bus {
  readonly nodeId: string;
  private readonly prefix: string;
  private readonly leaseMs: number;
  private broker: Broker | undefined;
  private readonly cmd: RedisClient;
  private sub: RedisClient | undefined;
  private reader: RedisClient | undefined;
  private ops: Array<string | Buffer> = [];
  /** this turn's forwards, per node: one stream entry each */
  private batches = new Map<string, Buffer[]>();
  /** other live nodes */
  private readonly live = new Set<string>();
  private readonly remote = new SubscriptionTrie<RemoteEntry>();
  private readonly remoteKeys = new Map<string, Set<string>>();
  private readonly clientCounts = new Map<string, number>();
  private readonly localCounts = new Map<string, number>();
  private readonly pending = new Map<string, (ok: boolean) => void>();
  private lastId = '0-0';
  private closed = false;
  private monitor: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private down = false;
  /** no adoption until this time: after Redis comes back, nodes need a moment to renew their leases */
  private graceUntil = 0;
  private adopting = new Set<string>();
  private rr = 0;
  private spareIds: Promise<number> | undefined;
  private readonly liveWills = new Set<string>();
  private readonly config: Record<string, string>;
  /**
   * sessions this node gave to another node in the last MOVED_MS: a message that reaches this node for one of
   * them (forwarded here before the sender knew of the move) is passed on to the session's new node
   */
  private readonly moved = new Map<string, { node: string; filters: string[]; until: number }>();
  readonly stats: BusStats;

  constructor(readonly store: RedisStore, opts: RedisBusOptions) {
    this.nodeId = opts.nodeId;
    this.prefix = store.prefix;
    this.leaseMs = opts.leaseMs ?? 3000;
    this.config = opts.config ?? {};
    this.cmd = store.client;
    const self = this;
    this.stats = {
      messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0,
      nodes: () => self.live.size + 1,
      clientsByNode: () => {
        const m = new Map<string, number>();
        m.set(self.nodeId, self.broker?.stats.clientsConnected ?? 0);
        for (const n of self.live) m.set(n, self.clientCounts.get(n) ?? 0);
        return m;
      },
    };
  }

  private get b(): Broker {
    if (this.broker === undefined) throw new Error('the cluster bus is not started');
    return this.broker;
  }

  private touch(): void {
    this.broker?.recorder?.touch();
  }

  // ---- joining ----

  async start(broker: Broker): Promise<void> {
    this.broker = broker;
    const P = this.prefix;
    const log = broker.log;
    const rec = broker.recorder!;
    rec.extraOps = () => this.takeOps();
    rec.extraPending = () => this.ops.length > 0 || this.batches.size > 0;
    rec.reserveIds = () => this.store.reserveIds('messageId', ID_BLOCK);
    const first = await this.store.reserveIds('messageId', ID_BLOCK);
    rec.useIds(first, ID_BLOCK);
    broker.router.onFilter = (filter, added) => this.filterChanged(filter, added);

    // the previous incarnation of this node (same id): wait for its lease to run out, then take its state back
    const prior = await this.cmd.hget(`${P}nodes`, this.nodeId);
    if (prior !== null) {
      const until = Date.now() + this.leaseMs + 2000;
      while ((await this.cmd.exists(`${P}lease:${this.nodeId}`)) === 1) {
        if (Date.now() > until) throw new Error(`another node with cluster_node_id ${this.nodeId} is running (its lease in Redis is renewed)`);
        await sleep(250);
      }
      await this.adopt(this.nodeId, true);
    }
    // another node may be adopting a previous run of this node (its inbox among it): let it finish first
    const wait = Date.now() + 60_000;
    while ((await this.cmd.exists(`${P}adopt:${this.nodeId}`)) === 1) {
      if (Date.now() > wait) throw new Error(`node ${this.nodeId}'s previous run is still being adopted by another node`);
      await sleep(100);
    }

    this.sub = this.cmd.duplicate({ connectionName: 'midge-bus', enableOfflineQueue: true });
    this.sub.on('error', () => undefined);
    await this.sub.connect();
    this.sub.on('messageBuffer', (_ch: Buffer, m: Buffer) => this.onControl(m));
    await this.sub.subscribe(`${P}bus`);
    this.sub.on('ready', () => { void this.sub?.subscribe(`${P}bus`).catch(() => undefined); });

    await this.cmd.hset(`${P}nodes`, this.nodeId, this.nodeInfo());
    await this.cmd.set(`${P}lease:${this.nodeId}`, '1', 'PX', this.leaseMs);
    // every listed node, a dead one not adopted yet too: what is forwarded to its inbox reaches its adopter
    for (const n of await this.cmd.hkeys(`${P}nodes`)) {
      if (n !== this.nodeId) await this.join(n);
    }
    const cur = await this.cmd.get(`${P}cur:${this.nodeId}`);
    if (cur !== null) this.lastId = cur;
    await this.control({ t: 'join', node: this.nodeId });
    this.reader = this.cmd.duplicate({ connectionName: 'midge-inbox', enableOfflineQueue: true, commandTimeout: undefined });
    this.reader.on('error', () => undefined);
    await this.reader.connect();
    this.reading = this.readLoop();
    this.monitor = setInterval(() => { void this.tick(); }, Math.max(100, Math.floor(this.leaseMs / 3)));
    this.monitor.unref();
    log.info(`Cluster: node ${this.nodeId} joined (${this.live.size + 1} nodes).`);
  }

  private nodeInfo(): string {
    return JSON.stringify({ pid: process.pid, started: this.broker?.stats.startedAt ?? 0, config: this.config });
  }

  /** Another node is live: take its subscription index (and say so when its configuration differs). */
  private async join(node: string): Promise<void> {
    if (node === this.nodeId) return;
    const known = this.live.has(node);
    this.live.add(node);
    if (!known) {
      const info = await this.cmd.hget(`${this.prefix}nodes`, node);
      const theirs = (info === null ? {} : (JSON.parse(info) as { config?: Record<string, string> }).config) ?? {};
      for (const key of new Set([...Object.keys(this.config), ...Object.keys(theirs)])) {
        if (this.config[key] !== theirs[key]) {
          this.b.log.warning(`Cluster: node ${node} has a different ${key} than this node (${theirs[key] ?? 'none'} there, ${this.config[key] ?? 'none'} here).`);
        }
      }
    }
    const filters = await this.cmd.smembers(`${this.prefix}idx:${node}`);
    for (const f of filters) this.indexAdd(node, f);
  }

  private indexAdd(node: string, filter: string): void {
    let keys = this.remoteKeys.get(node);
    if (keys === undefined) this.remoteKeys.set(node, (keys = new Set()));
    if (keys.has(filter)) return;
    keys.add(filter);
    const sh = parseSharedSubscription(filter);
    if (sh !== undefined && !isShareError(sh)) this.remote.set(sh.filter, `${node}\u0000${filter}`, { node, group: filter });
    else this.remote.set(filter, node, { node, group: undefined });
  }

  private indexRemove(node: string, filter: string): void {
    const keys = this.remoteKeys.get(node);
    if (keys === undefined || !keys.delete(filter)) return;
    const sh = parseSharedSubscription(filter);
    if (sh !== undefined && !isShareError(sh)) this.remote.delete(sh.filter, `${node}\u0000${filter}`);
    else this.remote.delete(filter, node);
  }

  private forget(node: string): void {
    this.live.delete(node);
    this.clientCounts.delete(node);
    const keys = this.remoteKeys.get(node);
    if (keys !== undefined) for (const f of [...keys]) this.indexRemove(node, f);
    this.remoteKeys.delete(node);
  }

  private onControl(m: Buffer): void {
    try {
      if (m[0] === 0x69 /* i */) {
        const text = m.toString('utf8');
        const nl = text.indexOf('\n');
        const node = text.slice(2, nl);
        const filter = text.slice(nl + 1);
        if (node === this.nodeId) return;
        if (text[1] === '+') {
          this.live.add(node);
          this.indexAdd(node, filter);
        } else {
          this.indexRemove(node, filter);
        }
        return;
      }
      const c = JSON.parse(m.toString('utf8')) as Control;
      switch (c.t) {
        case 'join': if (c.node !== this.nodeId) void this.join(c.node).catch(() => undefined); break;
        case 'gone': if (c.node !== this.nodeId) this.forget(c.node); break;
        case 'claim': if (c.to === this.nodeId) void this.release(c); break;
        case 'released': if (c.to === this.nodeId) { this.pending.get(c.id)?.(true); this.pending.delete(c.id); } break;
        case 'clients': if (c.node !== this.nodeId) this.clientCounts.set(c.node, c.n); break;
      }
    } catch (err) {
      this.broker?.log.error(`Cluster: a bus message could not be read: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async control(c: Control): Promise<void> {
    await this.cmd.publish(`${this.prefix}bus`, JSON.stringify(c));
  }

  // ---- routing ----

  route(msg: Message): ReadonlySet<string> | undefined {
    if (this.live.size === 0) return undefined;
    const topic = msg.topic;
    // every node publishes its own $SYS tree
    if (topic.charCodeAt(0) === 0x24 && topic.startsWith('$SYS/')) return undefined;
    let nodes: Set<string> | undefined;
    let groups: Map<string, string[]> | undefined;
    this.remote.match(topic, (e) => {
      if (e.group === undefined) (nodes ??= new Set()).add(e.node);
      else {
        groups ??= new Map();
        const list = groups.get(e.group);
        if (list === undefined) groups.set(e.group, [e.node]);
        else list.push(e.node);
      }
    });
    let skip: Set<string> | undefined;
    let designated: Map<string, string[]> | undefined;
    if (groups !== undefined) {
      for (const [group, members] of groups) {
        const sh = parseSharedSubscription(group);
        if (sh === undefined || isShareError(sh)) continue;
        const here = this.b.router.subs.get(sh.filter, `$share/${sh.group}`) !== undefined;
        const n = members.length + (here ? 1 : 0);
        const pick = this.rr++ % n;
        if (pick === members.length) continue; // this node's own member
        const node = members[pick]!;
        (skip ??= new Set()).add(group);
        designated ??= new Map();
        const g = designated.get(node);
        if (g === undefined) designated.set(node, [group]);
        else g.push(group);
      }
    }
    const targets = new Set<string>(nodes);
    if (designated !== undefined) for (const n of designated.keys()) targets.add(n);
    // a retained message (or its removal) goes to every node: each keeps the cluster's retained tree
    if (msg.retain) for (const n of this.live) targets.add(n);
    if (targets.size === 0) return skip;
    if (msg.qos === 0 && !msg.retain && this.b.recorder?.isFailing === true) {
      // Redis is away: QoS 0 (at most once) is not held for it, so that waiting forwards cannot fill the memory
      this.b.stats.dropped++;
      return skip;
    }
    // its id, unique in the cluster: every node that stores it stores it under this id, once
    this.b.recorder?.idOf(msg);
    let plain: Buffer | undefined;
    for (const node of targets) {
      const matched = nodes?.has(node) === true;
      const g = designated?.get(node);
      // the common case (matched, no group chosen) is encoded once for every node
      const buf = matched && g === undefined ? (plain ??= encodeEnvelope(msg, undefined, false)) : encodeEnvelope(msg, g, !matched && g === undefined);
      this.forward(node, buf);
      this.stats.messagesSent++;
      this.stats.bytesSent += buf.length;
    }
    this.touch();
    return skip;
  }

  retainCleared(topic: string): void {
    if (this.live.size === 0) return;
    const buf = encodeEnvelope({ topic, payload: Buffer.alloc(0), qos: 0, retain: true }, undefined, true);
    for (const node of this.live) this.forward(node, buf);
    this.touch();
  }

  filterChanged(filter: string, added: boolean): void {
    const n = (this.localCounts.get(filter) ?? 0) + (added ? 1 : -1);
    if (n > 0) {
      this.localCounts.set(filter, n);
      if (n === 1 && added) { this.ops.push('I', this.nodeId, filter); this.touch(); }
    } else {
      this.localCounts.delete(filter);
      this.ops.push('J', this.nodeId, filter);
      this.touch();
    }
  }

  private forward(node: string, envelope: Buffer): void {
    const list = this.batches.get(node);
    if (list === undefined) this.batches.set(node, [envelope]);
    else list.push(envelope);
  }

  takeOps(): Array<string | Buffer> | undefined {
    if (this.batches.size > 0) {
      for (const [node, list] of this.batches) this.ops.push('Y', node, joinBatch(list));
      this.batches.clear();
    }
    if (this.ops.length === 0) return undefined;
    const ops = this.ops;
    this.ops = [];
    return ops;
  }

  /** This node's inbox: entries are routed here, and the cursor is committed with what they changed. */
  private async readLoop(): Promise<void> {
    const key = `${this.prefix}in:${this.nodeId}`;
    let failing = false;
    while (!this.closed) {
      let res: Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
      try {
        res = await this.reader!.xreadBuffer('COUNT', 1000, 'BLOCK', 1000, 'STREAMS', key, this.lastId) as typeof res;
        failing = false;
      } catch {
        if (this.closed) return;
        if (!failing) failing = true;
        await sleep(250);
        continue;
      }
      if (res === null || res.length === 0) continue;
      const entries = res[0]![1];
      for (const [id, fields] of entries) {
        this.lastId = id.toString('latin1');
        const data = fieldValue(fields, 'd');
        if (data === undefined) continue;
        this.stats.bytesReceived += data.length;
        for (const one of splitBatch(data)) {
          this.stats.messagesReceived++;
          try {
            this.deliver(one, undefined, undefined);
          } catch (err) {
            this.b.log.error(`Cluster: a forwarded message could not be delivered: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
          }
        }
      }
      this.ops.push('C', this.nodeId, this.lastId);
      this.touch();
    }
  }

  /**
   * A forwarded message: apply its retained part, route it here. Replaying a dead node's inbox: only to the
   * sessions adopted from it (`only`), and on to the node that one of them moved to since (`onlyIds`).
   */
  private deliver(data: Buffer, only: Set<Session> | undefined, onlyIds: Set<string> | undefined): void {
    const env = decodeEnvelope(data);
    if (env === undefined) {
      this.b.log.warning('Cluster: skipped a forwarded message of an unknown format (a newer node?).');
      return;
    }
    const b = this.b;
    if (env.client !== undefined) {
      const s = b.sessions.get(env.client);
      if (s !== undefined && (only === undefined || only.has(s))) b.router.route(env.msg, { only: EMPTY }, new Set([s]));
      else if (s === undefined) this.passOn(env.msg, env.client);
      return;
    }
    if (env.msg.retain && only === undefined) b.retained.onPublish(env.msg, false);
    if (env.retainOnly) return;
    const groups = env.groups === undefined ? EMPTY : new Set(env.groups);
    b.router.route(env.msg, { only: groups }, only);
    if (this.moved.size > 0) this.passOnMoved(env.msg, onlyIds);
  }

  /** A forwarded message that matches a session this node just gave away: on to the session's new node. */
  private passOnMoved(msg: Message, onlyIds: Set<string> | undefined): void {
    const now = Date.now();
    for (const [client, m] of this.moved) {
      if (m.until < now) { this.moved.delete(client); continue; }
      if (this.b.sessions.has(client) || (onlyIds !== undefined && !onlyIds.has(client))) continue;
      if (m.filters.some((f) => topicMatches(f, msg.topic))) this.passOn(msg, client);
    }
  }

  private passOn(msg: Message, client: string): void {
    const m = this.moved.get(client);
    if (m === undefined || m.until < Date.now() || m.node === this.nodeId) return;
    const buf = encodeEnvelope(msg, undefined, false, client);
    this.forward(m.node, buf);
    this.stats.messagesSent++;
    this.stats.bytesSent += buf.length;
    this.touch();
  }

  // ---- sessions across nodes ----

  async claim(clientId: string, clean: boolean): Promise<void> {
    const b = this.b;
    if (b.sessions.has(clientId)) return;
    const P = this.prefix;
    const deadline = Date.now() + this.leaseMs * 2 + 5000;
    // While the session moves here, messages that its subscriptions match must not fall between the two nodes:
    // a stand-in session (not recorded) holds this node's index entries for them from before the other node lets
    // go until the session is loaded; what it caught and the stored queue lacks is then queued (by message id).
    let standIn: Session | undefined;
    try {
      for (;;) {
        if (Date.now() > deadline) throw new Error(`the node that owns client ${clientId}'s session did not release it`);
        const owner = await this.cmd.hget(`${P}owner`, clientId);
        if (owner === null || owner === this.nodeId) break;
        const alive = (await this.cmd.exists(`${P}lease:${owner}`)) === 1;
        dbg(`claim ${clientId}: owner ${owner} alive ${alive}`);
        if (!alive && (await this.cmd.hexists(`${P}nodes`, owner)) === 0 && (await this.cmd.exists(`${P}adopt:${owner}`)) === 0) {
          // a node adopted already: the owner entry is stale (its adopter drops those it does not take)
          break;
        }
        if (!alive) {
          // a dead node: whoever adopts it (maybe this one) moves the session; wait for that, then ask again
          // (not awaited: the adoption's replay of the inbox goes on after the sessions are taken)
          void this.adopt(owner, false);
          await this.waitAdopted(owner, deadline);
          continue;
        }
        if (standIn === undefined && !clean) {
          standIn = new Session(clientId, b.sessionEnv);
          standIn.disconnectedAt = Date.now();
          standIn.expiryInterval = NEVER;
          for (const sub of await this.store.loadClientSubscriptions(clientId)) b.router.add(standIn, subEntry(standIn, sub));
          await b.recorder?.drain();
        }
        if (await this.askRelease(owner, clientId, clean)) break;
      }
      if (b.sessions.has(clientId)) return;
      const st = await this.store.loadSession(clientId);
      if (st === undefined || b.sessions.has(clientId)) return;
      const subs = await this.store.loadClientSubscriptions(clientId);
      const w = await this.store.loadWindow(clientId);
      if (b.sessions.has(clientId)) return;
      const s = this.restoreSession(st, subs, w, Date.now());
      this.moved.delete(clientId);
      if (standIn !== undefined) {
        // what the stand-in caught and the stored window lacks is queued; later copies (passed on by the previous
        // node) are recognised by their ids for MOVED_MS
        const recent = new Set<number>();
        for (const e of w.inflight) recent.add(e.messageId);
        for (const q of w.queued) recent.add(q.messageId);
        s.recentIds = recent;
        setTimeout(() => { s.recentIds = undefined; }, MOVED_MS).unref();
        const now = Date.now();
        for (const q of standIn.queue) s.deliver(q.msg, q.qos, q.retain, q.subIds, now);
      }
    } finally {
      if (standIn !== undefined) this.dropStandIn(standIn);
    }
  }

  /**
   * The stand-in's entries leave the router. A plain entry that the loaded session replaced (same client id key)
   * is the session's now and stays; a shared group membership is per session object and goes.
   */
  private dropStandIn(standIn: Session): void {
    const b = this.b;
    const real = b.sessions.get(standIn.clientId);
    for (const e of standIn.subscriptions.values()) {
      if (e.share === undefined && real !== undefined && real.subscriptions.has(e.filter)) continue;
      b.router.remove(standIn, e);
    }
    standIn.subscriptions.clear();
  }

  private askRelease(owner: string, clientId: string, clean: boolean): Promise<boolean> {
    const id = randomUUID();
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => { this.pending.delete(id); resolve(false); }, 1500);
      this.pending.set(id, (ok) => { clearTimeout(timer); resolve(ok); });
      this.control({ t: 'claim', id, from: this.nodeId, to: owner, client: clientId, clean }).catch(() => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(false);
      });
    });
  }

  /** Another node takes one of this node's sessions: close its connection here, keep it in the store. */
  private async release(c: Extract<Control, { t: 'claim' }>): Promise<void> {
    const b = this.b;
    try {
      const s = b.sessions.get(c.client);
      if (s !== undefined) {
        const old = s.outlet as Connection | null;
        if (old !== null && typeof old.close === 'function') {
          // the takeover rule of one node (SessionRegistry.open): no will when the session continues
          if (!c.clean && s.expiryInterval > 0) old.will = undefined;
          b.log.conn(`Client ${c.client} already connected, closing old connection (taken over on node ${c.from}).`);
          if (old.protocolVersion === 5) old.writePacket({ type: 'disconnect', reasonCode: 0x8e });
          old.close('taken over', true, '');
        }
        const still = b.sessions.get(c.client);
        if (still !== undefined) {
          if (!c.clean) {
            const filters: string[] = [];
            if (still.hasSubscriptions) for (const e of still.subscriptions.values()) if (e.share === undefined) filters.push(e.filter);
            if (filters.length > 0) this.moved.set(c.client, { node: c.from, filters, until: Date.now() + MOVED_MS });
          }
          if (c.clean) b.wills.fireNow(c.client);
          else b.wills.cancel(c.client);
          if (still.hasSubscriptions) for (const e of still.subscriptions.values()) b.router.remove(still, e);
          b.sessions.delete(c.client);
        }
      }
      await b.recorder?.drain();
    } catch (err) {
      b.log.error(`Cluster: releasing client ${c.client} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    await this.control({ t: 'released', id: c.id, to: c.from }).catch(() => undefined);
  }

  /** A stored session, loaded into this node (resumed by a CONNECT, or adopted from a dead node). */
  private restoreSession(st: StoredSession, subs: StoredSubscription[], w: Window, now: number): Session {
    const b = this.b;
    const s = sessionFromStored(st, b.sessionEnv, now);
    b.sessions.set(st.clientId, s);
    for (const sub of subs) b.router.add(s, subEntry(s, sub));
    restoreWindow(s, w, storedMessages());
    // queue order per client: this node's seqs continue above what the previous owner used
    const rec = b.recorder!;
    for (const q of w.queued) if (q.seq >= rec.nextSeq) rec.nextSeq = q.seq + 1;
    this.ops.push('O', st.clientId, this.nodeId);
    this.touch();
    return s;
  }

  sessionOwned(conn: Connection): void {
    this.ops.push('O', conn.id, this.nodeId);
    if (conn.will !== undefined) {
      this.ops.push('L', this.nodeId, conn.id, encodeWill({
        clientId: conn.id, will: conn.will, fireAt: 0,
        ...(conn.username !== undefined ? { username: conn.username } : {}),
        ...(conn.listenerPort !== undefined ? { listenerPort: conn.listenerPort } : {}),
      }));
      this.liveWills.add(conn.id);
    }
    this.touch();
  }

  connectionEnded(conn: Connection): void {
    if (!this.liveWills.delete(conn.id)) return;
    this.ops.push('K', this.nodeId, conn.id);
    this.touch();
  }

  sessionEnded(clientId: string): void {
    this.ops.push('H', clientId, this.nodeId);
    this.touch();
  }

  // ---- leases and failure ----

  private async tick(): Promise<void> {
    if (this.closed) return;
    const P = this.prefix;
    try {
      await this.cmd.set(`${P}lease:${this.nodeId}`, '1', 'PX', this.leaseMs);
      await this.cmd.hset(`${P}nodes`, this.nodeId, this.nodeInfo());
      if (this.down) {
        this.down = false;
        this.graceUntil = Date.now() + this.leaseMs * 2;
        this.b.log.info('Cluster: Redis is back.');
      }
      await this.control({ t: 'clients', node: this.nodeId, n: this.b.stats.clientsConnected });
      const nodes = await this.cmd.hkeys(`${P}nodes`);
      const listed = new Set(nodes);
      for (const n of nodes) {
        if (n === this.nodeId) continue;
        const alive = (await this.cmd.exists(`${P}lease:${n}`)) === 1;
        if (alive) {
          if (!this.live.has(n)) await this.join(n);
        } else if (Date.now() >= this.graceUntil) {
          // forwarding to it goes on (its inbox is replayed by its adopter) until the adoption says it is gone
          void this.adopt(n, false);
        }
      }
      // a node adopted while this one missed the announcement
      for (const n of [...this.live]) if (!listed.has(n)) this.forget(n);
    } catch (err) {
      if (!this.down && !this.closed) {
        this.down = true;
        const status = this.cmd.status;
        const why = status !== 'ready' ? `not connected: ${status}` : err instanceof Error ? err.message : String(err);
        this.b.log.error(`Cluster: Redis unavailable (${this.store.address}, ${why}); QoS 1/2 acknowledgements wait for it and new connections are refused.`);
      }
    }
  }

  /** Until the adopter of `node` has taken its sessions (it then removes the node from `P nodes`). */
  private async waitAdopted(node: string, deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      if ((await this.cmd.hexists(`${this.prefix}nodes`, node)) === 0) return;
      await sleep(50);
    }
  }

  /**
   * A dead node (or this node's previous incarnation, `self`): ONE node adopts it (SET NX): its durable sessions
   * move here, the wills of its connected clients are published once, and its unread inbox is delivered.
   */
  private async adopt(node: string, self: boolean): Promise<void> {
    if (this.adopting.has(node)) return;
    const P = this.prefix;
    const b = this.b;
    const won = await this.cmd.set(`${P}adopt:${node}`, this.nodeId, 'PX', 60_000, 'NX');
    dbg(`adopt ${node}: won ${won}`);
    if (won === null) return;
    this.adopting.add(node);
    try {
      if (!self && (await this.cmd.hexists(`${P}nodes`, node)) === 0) {
        // adopted already (a late claim for a stale owner entry won the lock after the adoption ended)
        await this.cmd.del(`${P}adopt:${node}`);
        return;
      }
      const now = Date.now();
      const owners = await this.cmd.hgetall(`${P}owner`);
      const adopted = new Set<Session>();
      const adoptedIds = new Set<string>();
      for (const [clientId, owner] of Object.entries(owners)) {
        if (owner !== node) continue;
        if (b.sessions.has(clientId)) { this.ops.push('O', clientId, this.nodeId); continue; }
        const st = await this.store.loadSession(clientId);
        if (st === undefined) { this.ops.push('H', clientId, node); continue; }
        const subs = await this.store.loadClientSubscriptions(clientId);
        const w = await this.store.loadWindow(clientId);
        if (b.sessions.has(clientId)) continue;
        const s = this.restoreSession(st, subs, w, now);
        if (st.disconnectedAt === undefined) b.sessions.record(s);
        if (!self) {
          // a message that reaches it both here and through the dead node's inbox is delivered once
          const recent = new Set<number>();
          for (const e of w.inflight) recent.add(e.messageId);
          for (const q of w.queued) recent.add(q.messageId);
          s.recentIds = recent;
          setTimeout(() => { s.recentIds = undefined; }, MOVED_MS).unref();
        }
        adopted.add(s);
        adoptedIds.add(clientId);
        const dw = await this.store.loadWill(clientId);
        if (dw !== undefined) {
          b.wills.delay(clientId, dw.will, willOwner(dw.clientId, dw.username, dw.listenerPort, node), Math.max(0, dw.fireAt - now), dw.fireAt, false);
        }
      }
      // the wills of the clients that were connected to it, once
      const lw = await this.cmd.hgetallBuffer(`${P}lwill:${node}`);
      let wills = 0;
      for (const [clientId, buf] of Object.entries(lw)) {
        const w = decodeWill(clientId, buf);
        const s = b.sessions.get(clientId);
        const delay = w.will.properties?.willDelayInterval ?? 0;
        const owner = willOwner(clientId, w.username, w.listenerPort, node);
        if (delay > 0 && s !== undefined && s.expiryInterval > 0) {
          const wait = Math.min(delay, s.expiryInterval === NEVER ? delay : s.expiryInterval) * 1000;
          b.wills.delay(clientId, w.will, owner, wait, now + wait, true);
        } else {
          b.wills.publish(w.will, owner);
        }
        wills++;
      }
      // the sessions are here (and this node's index says so) before anyone stops forwarding to the dead node
      await b.recorder?.drain();
      dbg(`adopt ${node}: ${adopted.size} sessions, ${wills} wills`);
      if (self) {
        await this.cmd.del(`${P}lwill:${node}`);
      } else {
        // clients of the dead node waiting in CONNECT go on now; the others stop forwarding to it
        await this.cmd.del(`${P}lwill:${node}`, `${P}lease:${node}`);
        await this.cmd.hdel(`${P}nodes`, node);
        await this.control({ t: 'gone', node });
        this.forget(node);
      }
      let inbox = 0;
      if (!self) {
        // its inbox, to the sessions adopted from it, until nothing more arrives for a second (what other nodes
        // forwarded before they heard that it is gone), at most 10 s
        let from = (await this.cmd.get(`${P}cur:${node}`)) ?? '-';
        let quietSince = Date.now();
        const until = Date.now() + 10_000;
        while (Date.now() < until && Date.now() - quietSince < 1000) {
          const start = from === '-' ? '-' : `(${from}`;
          const entries = await this.cmd.xrangeBuffer(`${P}in:${node}`, start, '+', 'COUNT', 1000);
          if (entries.length === 0) { await sleep(100); continue; }
          quietSince = Date.now();
          for (const [id, fields] of entries) {
            from = id.toString('latin1');
            const data = fieldValue(fields, 'd');
            if (data === undefined) continue;
            for (const one of splitBatch(data)) {
              inbox++;
              this.deliver(one, adopted, adoptedIds);
            }
          }
        }
        await b.recorder?.drain();
        await this.cmd.del(`${P}in:${node}`, `${P}cur:${node}`, `${P}idx:${node}`);
      }
      await this.cmd.del(`${P}adopt:${node}`);
      b.log.info(self
        ? `Cluster: node ${node} restarted; took back its ${adopted.size} sessions and published ${wills} wills of its previous run.`
        : `Cluster: node ${node} is gone; adopted its ${adopted.size} sessions and published ${wills} wills (${inbox} forwarded messages delivered).`);
    } catch (err) {
      b.log.error(`Cluster: adopting node ${node} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.adopting.delete(node);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.monitor);
    const P = this.prefix;
    try {
      // leaving: the lease goes at once, so that another node adopts this node's sessions now
      await this.cmd.del(`${P}lease:${this.nodeId}`);
    } catch {
      // Redis is away: the lease runs out by itself
    }
    this.reader?.disconnect();
    this.sub?.disconnect();
    await this.reading?.catch(() => undefined);
  }
}

const EMPTY: ReadonlySet<string> = new Set();

/** A stored subscription as the session's entry, in its map (the caller adds it to the router). */
function subEntry(s: Session, sub: StoredSubscription): SubEntry {
  const entry = entryFromStored(s, sub);
  s.subscriptions.set(entry.filter, entry);
  return entry;
}

function fieldValue(fields: Buffer[], name: string): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString('latin1') === name) return fields[i + 1];
  return undefined;
}

function willOwner(clientId: string, username: string | undefined, listenerPort: number | undefined, node: string): WillOwner {
  return {
    id: clientId, username, listenerPort, remoteAddress: `node ${node}`, remotePort: 0, protocolVersion: 5,
    logId: clientId, who: `${clientId} [node ${node}]`,
  };
}

const DEBUG = process.env.MIDGE_CLUSTER_DEBUG === '1';
function dbg(m: string): void {
  if (DEBUG) console.error(`${new Date().toISOString()} cluster: ${m}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
