/**
 * Small promise wrappers over MQTT.js 5 for integration tests. A client made by `connect()` records every
 * message and packet from its first byte on, so nothing that arrives right after CONNACK (queued messages
 * of a persistent session, retained messages) can slip past a test.
 */
import { connect as mqttConnect, type IClientOptions, type IConnackPacket, type MqttClient, type Packet } from 'mqtt';
import { Waiters } from './proc.js';

export interface Received {
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  messageId: number | undefined;
}

export interface PacketTrace {
  dir: 'in' | 'out';
  cmd: string;
  qos?: number;
  dup?: boolean;
  messageId?: number;
  /** The packet as MQTT.js parsed or built it (e.g. `sessionPresent` of a CONNACK). */
  packet: Packet;
}

interface Recorder {
  queue: Received[];
  packets: PacketTrace[];
  waiters: Waiters;
}

const recorders = new WeakMap<MqttClient, Recorder>();
const open = new Set<MqttClient>();

function recorder(client: MqttClient): Recorder {
  let rec = recorders.get(client);
  if (rec !== undefined) return rec;
  const r: Recorder = { queue: [], packets: [], waiters: new Waiters() };
  const trace = (dir: 'in' | 'out') => (p: Packet) => {
    const q = p as { qos?: number; dup?: boolean; messageId?: number };
    r.packets.push({ dir, cmd: p.cmd, qos: q.qos, dup: q.dup, messageId: q.messageId, packet: p });
    r.waiters.check();
  };
  client.on('packetreceive', trace('in'));
  client.on('packetsend', trace('out'));
  client.on('message', (topic, payload, packet) => {
    r.queue.push({
      topic,
      payload: payload.toString('utf8'),
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      messageId: packet.messageId,
    });
    r.waiters.check();
  });
  recorders.set(client, r);
  rec = r;
  return rec;
}

/**
 * Connects to 127.0.0.1:port (no automatic reconnect, 3 s connect timeout) and resolves once CONNACK
 * accepted the connection; rejects (and closes the client) on error, close or timeout.
 */
export function connect(port: number, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqttConnect({
    host: '127.0.0.1',
    port,
    protocol: 'mqtt',
    reconnectPeriod: 0,
    connectTimeout: 3000,
    ...opts,
  });
  open.add(client);
  client.once('end', () => open.delete(client));
  recorder(client);
  return untilConnack(client, 4000).then(
    () => client,
    (err: Error) => { throw new Error(`MQTT.js connect to port ${port} as '${opts.clientId ?? ''}' failed: ${err.message}`); },
  );
}

/**
 * Resolves with the CONNACK when `client` (connecting, reconnect off) gets it; rejects with why (the error and
 * its code, a close before CONNACK, or 'timed out' after `timeoutMs`) and ends the client.
 */
export function untilConnack(client: MqttClient, timeoutMs: number): Promise<IConnackPacket> {
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      cleanup();
      client.end(true);
      reject(new Error(why));
    };
    const onConnect = (connack: IConnackPacket): void => {
      cleanup();
      resolve(connack);
    };
    const onError = (e: Error & { code?: unknown }): void => fail(`${e.message}${e.code !== undefined ? ` (code ${String(e.code)})` : ''}`);
    const onClose = (): void => fail('connection closed before CONNACK');
    const timer = setTimeout(() => fail('timed out'), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

/** Takes the next `n` messages the client received (waiting for them, bounded); they leave its inbox. */
export function collect(client: MqttClient, n: number, timeoutMs = 3000): Promise<Received[]> {
  const rec = recorder(client);
  return rec.waiters.wait(
    `waiting for ${n} messages`,
    timeoutMs,
    () => (rec.queue.length >= n ? rec.queue.splice(0, n) : undefined),
    () => `received: ${JSON.stringify(rec.queue)}`,
  );
}

/** Waits `ms` and rejects if any message is (or already was) in the client's inbox. */
export async function expectNoMessage(client: MqttClient, ms: number): Promise<void> {
  const rec = recorder(client);
  await new Promise((r) => setTimeout(r, ms));
  if (rec.queue.length > 0) throw new Error(`expected no message, received: ${JSON.stringify(rec.queue)}`);
}

/** Every packet the client sent and received since `connect()`, in order. */
export function packets(client: MqttClient): PacketTrace[] {
  return recorder(client).packets;
}

/** Resolves once the client's packet trace has an entry that satisfies `pred`. */
export function waitForPacket(
  client: MqttClient,
  pred: (p: PacketTrace) => boolean,
  timeoutMs = 3000,
): Promise<PacketTrace> {
  const rec = recorder(client);
  return rec.waiters.wait(
    'waiting for a packet',
    timeoutMs,
    () => rec.packets.find(pred),
    () => `packets: ${JSON.stringify(rec.packets.map(({ packet: _, ...brief }) => brief))}`,
  );
}

/** Resolves when the client emits `event` (e.g. 'close'); rejects after `timeoutMs`. */
export function waitForEvent(client: MqttClient, event: 'close' | 'offline' | 'end', timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(event, done);
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    function done(): void {
      clearTimeout(timer);
      resolve();
    }
    client.once(event, done);
  });
}

/** Force-closes every client made by `connect()` that is still open (for `after()`/`afterEach()`). */
export async function closeAllClients(): Promise<void> {
  const clients = [...open];
  open.clear();
  await Promise.all(clients.map((c) => c.endAsync(true)));
}
