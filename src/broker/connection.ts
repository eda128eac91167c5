import type { Duplex } from 'node:stream';
import { Parser } from '../codec/index.js';
import type { Packet, ProtocolVersion, QoS, Will } from '../codec/types.js';
import { PACKET_TYPE_CODES } from './traffic.js';
import type { Broker } from './broker.js';
import type { LogFields } from './log.js';
import type { Outlet, Session } from './session.js';
import type { ClientInfo } from './types.js';
import { dispatch } from './handlers/index.js';
import { failConnection } from './handlers/errors.js';
import { describePacket } from './describe.js';
import type { PendingAuth } from './handlers/auth.js';

export type ConnState = 'new' | 'connecting' | 'authenticating' | 'connected' | 'closed';

export interface ConnectionInfo {
  remoteAddress: string;
  remotePort: number;
  listenerPort?: number;
  certificate?: { subject?: string; cn?: string };
  /** the username proven by the client certificate, when the listener uses it as the username */
  certificateIdentity?: string;
  /**
   * @internal the broker's own in-process connection (a bridge's local side): no preConnect or authenticate
   * hook, as mosquitto does not authenticate its bridges locally; the ACL and the other hooks apply
   */
  trusted?: boolean;
}

/**
 * What few connections need (MQTT 5 aliases and limits, enhanced authentication, TLS client
 * certificates): made on first write, so that an idle MQTT 3.1.1 connection does not carry it.
 */
class Extras {
  /** the broker made up the client id (zero-length id in CONNECT) */
  assignedId = false;
  /** CONNECT had the bridge bit (0x80) in its protocol level: mosquitto's try_private */
  isBridge = false;
  /** see ConnectionInfo.trusted */
  trusted = false;
  auth: PendingAuth | undefined = undefined;
  authMethod: string | undefined = undefined;
  outgoingAliasMax = 0;
  outgoingAliases: Map<string, number> | undefined = undefined;
  topicAliases: Map<number, string> | undefined = undefined;
  topicAliasMaximum = 0;
  maxOutgoingPacketSize = 0;
  certificate: { subject?: string; cn?: string } | undefined = undefined;
  certificateIdentity: string | undefined = undefined;
}

/**
 * Session.pump hands queued QoS 1/2 messages to a socket while it holds less than this (Outlet.outputFull).
 * Measured on a queue of 100,000 drained with no in-flight limit (bench persist_offline_q1_w0): 16 and
 * 64 KiB drained faster than 256 KiB and than no bound (where a reconnect encoded up to 65,535 packets in
 * one turn, kept them all until the socket took them, and the garbage collector copied them all).
 */
const PUMP_BYTES = 64 * 1024;

/**
 * Internal to the broker (hooks and events see it as a ClientInfo).
 * One network connection: bytes in → parser → handlers; packets out → coalesced socket writes.
 * Owns the keepalive deadline and the will. A fault here never affects another connection.
 */
export class Connection implements Outlet, ClientInfo {
  state: ConnState = 'new';
  id = '';
  username: string | undefined;
  protocolVersion: ProtocolVersion = 4;
  keepaliveMs = 0;
  /** the monotonic clock's time of the last bytes received (keepalive) */
  lastActivity: number;
  /** when the connection was accepted: wall clock (shown by the admin API) and monotonic (the CONNECT deadline) */
  readonly connectedAt: number;
  readonly openedAt: number;
  will: Will | undefined;
  session: Session | undefined;
  /** v5 receive maximum we advertised: QoS 1/2 PUBLISHes the client may have unacknowledged */
  receiveMaximum = 65535;
  incomingQos12 = 0;
  readonly parser: Parser;
  /** packets (and a parse error, last) that came while an async step ran; handled after it, in order */
  private pending: Array<Packet | ParseFailure> | undefined;
  /** while an async step runs (authentication, an async hook), later packets wait in order */
  busy = false;
  /** packets written this turn of the event loop, flushed once at its end (see flushAll) */
  private out: Buffer | Buffer[] | undefined;
  private outBytes = 0;
  private drainAwaited = false;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly listenerPort?: number;
  /** the rarely used fields, made on first write (see Extras) */
  private x: Extras | undefined;

  private get extras(): Extras { return (this.x ??= new Extras()); }

  /** the broker made up the client id (zero-length id in CONNECT) */
  get assignedId(): boolean { return this.x?.assignedId ?? false; }
  set assignedId(v: boolean) { if (v || this.x !== undefined) this.extras.assignedId = v; }
  /** a bridge that said so in CONNECT (try_private): its 3.x subscriptions are No Local and Retain As Published */
  get isBridge(): boolean { return this.x?.isBridge ?? false; }
  /** the broker's own in-process connection (ConnectionInfo.trusted) */
  get trusted(): boolean { return this.x?.trusted ?? false; }
  set isBridge(v: boolean) { if (v || this.x !== undefined) this.extras.isBridge = v; }
  /** an MQTT 5 AUTH exchange in progress */
  get auth(): PendingAuth | undefined { return this.x?.auth; }
  set auth(v: PendingAuth | undefined) { if (v !== undefined || this.x !== undefined) this.extras.auth = v; }
  /** the enhanced authentication method the connection was accepted with */
  get authMethod(): string | undefined { return this.x?.authMethod; }
  set authMethod(v: string | undefined) { if (v !== undefined || this.x !== undefined) this.extras.authMethod = v; }
  /** v5: how many topic aliases the client accepts from us, and the ones given (topic → alias) */
  get outgoingAliasMax(): number { return this.x?.outgoingAliasMax ?? 0; }
  set outgoingAliasMax(v: number) { if (v !== 0 || this.x !== undefined) this.extras.outgoingAliasMax = v; }
  get outgoingAliases(): Map<string, number> | undefined { return this.x?.outgoingAliases; }
  set outgoingAliases(v: Map<string, number> | undefined) { if (v !== undefined || this.x !== undefined) this.extras.outgoingAliases = v; }
  /** v5 topic aliases the client set on its PUBLISHes (alias → topic) */
  get topicAliases(): Map<number, string> | undefined { return this.x?.topicAliases; }
  set topicAliases(v: Map<number, string> | undefined) { if (v !== undefined || this.x !== undefined) this.extras.topicAliases = v; }
  get topicAliasMaximum(): number { return this.x?.topicAliasMaximum ?? 0; }
  set topicAliasMaximum(v: number) { if (v !== 0 || this.x !== undefined) this.extras.topicAliasMaximum = v; }
  /** the client's maximum packet size (v5), 0 = none */
  get maxOutgoingPacketSize(): number { return this.x?.maxOutgoingPacketSize ?? 0; }
  set maxOutgoingPacketSize(v: number) { if (v !== 0 || this.x !== undefined) this.extras.maxOutgoingPacketSize = v; }
  get certificate(): { subject?: string; cn?: string } | undefined { return this.x?.certificate; }
  /** the username proven by the client certificate, when the listener uses it as the username */
  get certificateIdentity(): string | undefined { return this.x?.certificateIdentity; }

  constructor(readonly broker: Broker, readonly socket: Duplex, info: ConnectionInfo) {
    this.remoteAddress = info.remoteAddress;
    this.remotePort = info.remotePort;
    this.listenerPort = info.listenerPort;
    if (info.certificate !== undefined || info.certificateIdentity !== undefined) {
      this.extras.certificate = info.certificate;
      this.extras.certificateIdentity = info.certificateIdentity;
    }
    if (info.trusted === true) this.extras.trusted = true;
    this.connectedAt = broker.clock.now();
    this.lastActivity = this.openedAt = broker.clock.monotonic();
    const max = broker.opts.maxPacketSize;
    this.parser = new Parser({ firstPacketConnect: true, ...(max > 0 ? { maxPacketSize: max } : {}) });
    // shared listener functions find the connection on the socket: no closures per connection
    (socket as OwnedSocket)[kConn] = this;
    socket.on('data', onSocketData);
    socket.on('error', onSocketError);
    // a duplex that stays half-open when the peer ends (the Duplex default) needs 'end'; a net
    // socket ends itself then and 'close' follows at once (one listener less per connection)
    if (socket.allowHalfOpen) socket.on('end', onSocketEnd);
    socket.on('close', onSocketEnd);
  }

  /** client id for log lines, mosquitto style */
  get logId(): string { return this.id === '' ? '<unknown>' : this.id; }

  /** the structured fields of this connection's log lines (JSON log format); built only for a line that is written */
  get logFields(): LogFields {
    return { clientId: this.id === '' ? undefined : this.id, remoteAddress: this.remoteAddress, remotePort: this.remotePort, listenerPort: this.listenerPort };
  }

  /** `id [address:port]`, how connection-end lines name the client (mosquitto 2.1 style) */
  get who(): string { return `${this.logId} [${this.remoteAddress}:${this.remotePort}]`; }

  onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    // a parse error waits behind an async step: the parser is spent, nothing more is read
    if (this.pending !== undefined && this.pending[this.pending.length - 1] instanceof ParseFailure) return;
    this.lastActivity = this.broker.clock.monotonic();
    this.broker.stats.bytesReceived += chunk.length;
    this.reads++;
    const outer = parsing;
    parsing = this;
    try {
      this.parser.parse(chunk, onParsedPacket);
    } catch (err) {
      if (this.busy && (this.state as ConnState) !== 'closed') {
        // the packets before the bad one wait for an async step (CONNECT's authentication): they are
        // answered first (the CONNACK the CONNECT earned, as mosquitto 2.0.11 sends), then the error
        this.deferFailure(err);
      } else {
        failConnection(this, err);
      }
    } finally {
      parsing = outer;
    }
    // A client that sends but does not read (its PUBACKs, SUBACKs, PINGRESPs, messages pile up):
    // stop reading from it until its socket drains, so that its own TCP window slows it down.
    if ((this.state as ConnState) !== 'closed' && !this.paused && this.congested()) this.pauseReading();
  }

  /** true while reading is paused because the client does not read what it is sent */
  get readPaused(): boolean { return this.paused; }
  private paused = false;

  private pauseReading(): void {
    this.paused = true;
    this.socket.pause();
    this.broker.stats.readPauses++;
    if (this.broker.log.verbose) this.broker.log.debug(`Client ${this.logId} is not reading: pausing reads until its socket drains.`);
    this.waitForDrain();
  }

  onPacket(p: Packet): void {
    if (this.state === 'closed') return;
    this.broker.stats.messagesReceived++;
    const traffic = this.broker.traffic;
    const type = PACKET_TYPE_CODES[p.type]!;
    traffic.packetsIn[type]!++;
    traffic.bytesIn[type]! += this.parser.lastPacketSize;
    if (this.busy) {
      // an async step (CONNECT authentication, an async hook) is running: keep the order, bounded
      const pending = (this.pending ??= []);
      if (pending.length >= this.broker.opts.maxPendingPackets) {
        this.broker.log.info(`Client ${this.who} sent too many packets before CONNACK, disconnecting.`);
        this.close('exceeded the packet queue before CONNACK', true);
        return;
      }
      pending.push(p);
      return;
    }
    dispatch(this, p);
    // A PUBACK that freed the client's window refills it. The first refill of a read goes out at
    // once, the rest at the end of the turn: the client starts on it while the broker handles the
    // rest of the read's PUBACKs, instead of both sides taking turns a whole window at a time (in
    // memory, measured: fan-in QoS 1 +8-26%, a queue's drain +15-40%). Not with a store, where no
    // gain was measured (BENCHMARKS.md "Folding by what is left").
    if (p.type === 'puback' && this.out !== undefined && this.refilledAt !== this.reads && this.broker.recorder === undefined) {
      this.refilledAt = this.reads;
      this.flush();
    }
  }

  /** reads from the socket so far, and the one whose first refill was written at once */
  private reads = 0;
  private refilledAt = -1;

  /** Run an async step; packets arriving meanwhile wait and are handled after it, in order. */
  runAsync(step: Promise<void>): void {
    this.busy = true;
    step.then(
      () => { this.busy = false; this.drainPending(); },
      (err: unknown) => { this.busy = false; failConnection(this, err); },
    );
  }

  /** A parse error while packets wait: it joins the queue, and nothing more is read from the socket. */
  private deferFailure(err: unknown): void {
    (this.pending ??= []).push(new ParseFailure(err));
    this.socket.pause();
  }

  private drainPending(): void {
    const pending = this.pending;
    if (pending === undefined) return;
    while (pending.length > 0 && !this.busy) {
      if (this.state === 'closed') { this.pending = undefined; return; }
      const p = pending.shift()!;
      if (p instanceof ParseFailure) { this.pending = undefined; failConnection(this, p.error); return; }
      try { dispatch(this, p); } catch (err) { failConnection(this, err); return; }
    }
    if (pending.length === 0) this.pending = undefined;
  }

  onSocketError(err: Error): void {
    if (this.state === 'closed') return;
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ECONNRESET' && code !== 'EPIPE') this.broker.log.debug(`Socket error on client ${this.logId}: ${err.message}`);
    if (this.broker.listenerCount('clientError') > 0) this.broker.emitSafely('clientError', this, err);
    this.close(`socket error`, true, `Socket error on client ${this.who}, disconnecting.`);
  }

  // ---- Outlet ----
  writeBuffer(buf: Buffer): void {
    if (this.held !== undefined) {
      // an acknowledgement before this waits for its commit: so does everything after it
      if (this.state === 'closed') return;
      this.held.push(buf);
      this.heldBytes += buf.length;
      return;
    }
    this.queueOut(buf);
  }

  // ---- output that waits for the durable store (Recorder) ----
  /** output held until this turn's changes are committed (see Recorder); undefined when none */
  held: Buffer[] | undefined = undefined;
  private heldBytes = 0;

  /**
   * The next packet acknowledges something durable (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK, CONNACK):
   * with a store, it (and what follows it) waits for this turn's commit.
   */
  holdForCommit(): void {
    const rec = this.broker.recorder;
    if (rec !== undefined) rec.hold(this);
  }

  /** The commit came: write the first `n` held buffers (all when undefined). */
  release(n?: number): void {
    const h = this.held;
    if (h === undefined) return;
    const take = n === undefined ? h.length : Math.min(n, h.length);
    const out = take === h.length ? h : h.splice(0, take);
    if (out === h) this.held = undefined;
    for (let i = 0; i < out.length; i++) {
      this.heldBytes -= out[i]!.length;
      this.queueOut(out[i]!);
    }
    if (this.held === undefined) this.heldBytes = 0;
  }

  private queueOut(buf: Buffer): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    const out = this.out;
    if (out === undefined) {
      this.out = buf;
      dirty.push(this);
      if (dirty.length === 1) process.nextTick(flushAll);
    } else if (Array.isArray(out)) {
      out.push(buf);
    } else {
      this.out = [out, buf];
    }
    this.outBytes += buf.length;
    const stats = this.broker.stats;
    stats.bytesSent += buf.length;
    stats.packetsSent++;
    const traffic = this.broker.traffic;
    traffic.packetsOut[buf[0]! >> 4]!++;
    traffic.bytesOut[buf[0]! >> 4]! += buf.length;
  }

  /**
   * Hand this turn's packets to the socket: one write for one packet (most often: a PUBACK, a
   * message at low rates), one corked writev for several.
   */
  flush(): void {
    const out = this.out;
    if (out === undefined) return;
    const bytes = this.outBytes;
    this.out = undefined;
    this.outBytes = 0;
    const s = this.socket;
    if (s.destroyed) return;
    if (!Array.isArray(out)) {
      s.write(out);
    } else if (bytes <= COALESCE_BYTES) {
      // small packets (acks, PINGRESPs, small messages) go as one buffer: each queued write costs the
      // socket about a hundred bytes of bookkeeping, more than a 4-byte PUBACK, and a client that does not
      // read would otherwise hold millions of them below the byte limit
      s.write(Buffer.concat(out, bytes));
    } else {
      s.cork();
      let from = 0;
      let small = 0;
      for (let i = 0; i < out.length; i++) {
        const b = out[i]!;
        if (b.length < COALESCE_PIECE) { small += b.length; continue; }
        if (i > from) s.write(i - from === 1 ? out[from]! : Buffer.concat(out.slice(from, i), small));
        s.write(b);
        from = i + 1;
        small = 0;
      }
      if (out.length > from) s.write(out.length - from === 1 ? out[from]! : Buffer.concat(out.slice(from), small));
      s.uncork();
    }
    // waiting for a 'drain' that will not come: the socket never filled (a limit below its high water mark)
    if (this.drainAwaited && !s.writableNeedDrain) {
      this.socket.removeListener('drain', onSocketDrain);
      process.nextTick(onDrainSoon, this);
    }
  }

  writePacket(p: Packet): void {
    if (this.broker.log.verbose) this.broker.log.debug(`Sending ${describePacket(p, this.logId, true)}`);
    this.writeBuffer(this.broker.encode(p, this.protocolVersion));
  }

  congested(): boolean {
    return this.socket.writableLength + this.outBytes + this.heldBytes > this.broker.opts.maxSocketBuffer;
  }

  outputFull(): boolean {
    return this.socket.writableLength + this.outBytes + this.heldBytes > PUMP_BYTES;
  }

  waitForDrain(): void {
    if (this.drainAwaited || this.state === 'closed') return;
    this.drainAwaited = true;
    this.socket.once('drain', onSocketDrain);
  }

  /** The socket took what it held: read again, and let the session send what waited. */
  onDrain(): void {
    this.drainAwaited = false;
    if (this.state === 'closed') return;
    // (a socket below its high water mark emits no 'drain': then it is taken as drained)
    if (this.congested() && this.socket.writableNeedDrain) { this.waitForDrain(); return; }
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    if (this.session?.outlet === this) this.session.pump(this.broker.clock.now());
  }

  logPublish(dup: boolean, qos: QoS, retain: boolean, packetId: number, topic: string, bytes: number): void {
    const log = this.broker.log;
    if (log.verbose) log.debug(`Sending PUBLISH to ${this.logId} (d${+dup}, q${qos}, r${+retain}, m${packetId}, '${topic}', ... (${bytes} bytes))`);
  }

  /**
   * End the connection once. `abnormal`: the will is published (socket closed, keepalive, protocol
   * error, takeover) — not after DISCONNECT [MQTT-3.1.2-8, MQTT-3.1.2-10].
   */
  close(reason: string, abnormal: boolean, logLine?: string): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.flush();
    if (!this.socket.destroyed) {
      this.socket.end();
      // give the last packets (CONNACK with an error, DISCONNECT) a moment, then make sure it is gone
      setTimeout(destroySocket, 1000, this.socket).unref();
    }
    this.broker.connectionClosed(this, wasConnected, abnormal, logLine ?? (wasConnected && this.broker.log.connOn ? `Client ${this.who} ${reason}.` : undefined));
  }
}

/** @internal what the parser threw, queued behind the packets before it */
class ParseFailure {
  constructor(readonly error: unknown) {}
}

/** a turn's packets up to this many bytes in all are written as one buffer */
const COALESCE_BYTES = 64 * 1024;
/** past that, runs of packets smaller than this are joined; larger ones are written as they are */
const COALESCE_PIECE = 2048;

/** connections with packets written this turn; one nextTick flushes them all */
const dirty: Connection[] = [];
function flushAll(): void {
  // a flush can write more (a socket error closes a connection, whose will is routed): keep going
  for (let i = 0; i < dirty.length; i++) {
    try {
      dirty[i]!.flush();
    } catch (err) {
      dirty[i]!.broker.log.error(`internal error writing to ${dirty[i]!.logId}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  dirty.length = 0;
}

const kConn = Symbol('midge.connection');
type OwnedSocket = Duplex & { [kConn]: Connection };
function onSocketData(this: Duplex, chunk: Buffer): void { (this as OwnedSocket)[kConn].onData(chunk); }
function onSocketError(this: Duplex, err: Error): void { (this as OwnedSocket)[kConn].onSocketError(err); }
function onSocketDrain(this: Duplex): void { (this as OwnedSocket)[kConn].onDrain(); }
function onDrainSoon(c: Connection): void { c.onDrain(); }
function onSocketEnd(this: Duplex): void { (this as OwnedSocket)[kConn].close('closed its connection', true); }

/** the connection whose bytes are being parsed (parse is synchronous; nested parses restore it) */
let parsing: Connection | undefined;
function onParsedPacket(p: Packet): void { parsing!.onPacket(p); }
function destroySocket(s: Duplex): void { if (!s.destroyed) s.destroy(); }
