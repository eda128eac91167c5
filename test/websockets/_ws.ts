/**
 * Helpers of the WebSocket tests: a `midge broker` process with a TCP listener and WebSocket listeners
 * on free 127.0.0.1 ports, and a raw WebSocket client (the `ws` package) that records what it gets.
 */
import { WebSocket, type ClientOptions } from 'ws';
import { accepts, freePort } from '../helpers/ports.js';
import { startMidge, type BrokerProcess } from '../helpers/broker-process.js';
import { Waiters } from '../helpers/proc.js';

export interface WsBroker {
  broker: BrokerProcess;
  /** the plain MQTT/TCP listener */
  port: number;
  /** `protocol websockets` listeners, in the order asked for */
  wsPorts: number[];
}

/**
 * `head` lines, `listener {port} 127.0.0.1` (TCP) and its `tcp` lines, then one `listener P 127.0.0.1` +
 * `protocol websockets` + the given lines per entry of `websockets`, then `extra` (global keys).
 * `allow_anonymous true` is added at the end unless some line sets allow_anonymous.
 */
export async function startWsBroker(websockets: string[][], extra: string[] = [], verbose = true,
  more: { head?: string[]; tcp?: string[] } = {}): Promise<WsBroker> {
  // startMidge picks the TCP port again when it was taken meanwhile; a WebSocket port that another test
  // process took between freePort() and the broker's listen fails the same way, so pick them all again
  for (let attempt = 1; ; attempt++) {
    const wsPorts: number[] = [];
    for (let i = 0; i < websockets.length; i++) {
      let p = await freePort();
      while (wsPorts.includes(p)) p = await freePort();
      wsPorts.push(p);
    }
    const lines = [...(more.head ?? []), 'listener {port} 127.0.0.1', ...(more.tcp ?? [])];
    websockets.forEach((ls, i) => lines.push(`listener ${wsPorts[i]} 127.0.0.1`, 'protocol websockets', ...ls));
    lines.push(...extra);
    if (!lines.some((l) => l.startsWith('allow_anonymous'))) lines.push('allow_anonymous true');
    let broker: BrokerProcess;
    try {
      broker = await startMidge({ config: lines.join('\n'), verbose });
    } catch (err) {
      const inUse = err instanceof Error && /Unable to listen on 127\.0\.0\.1:\d+: Address already in use/.test(err.message);
      if (!inUse || attempt >= 3) throw err;
      continue;
    }
    return await waitWsListeners(broker, wsPorts);
  }
}

async function waitWsListeners(broker: BrokerProcess, wsPorts: number[]): Promise<WsBroker> {
  // startMidge waits for the first (TCP) listener; the WebSocket listeners open after it
  for (const p of wsPorts) {
    const deadline = Math.round(performance.now()) + 10_000;
    while (!(await accepts(p))) {
      if (Math.round(performance.now()) > deadline) throw new Error(`the WebSocket listener on port ${p} did not accept connections within 10 s`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return { broker, port: broker.port, wsPorts };
}

export interface RawWs {
  ws: WebSocket;
  /** binary messages received, in order */
  messages: Buffer[];
  /** all bytes received, joined */
  bytes(): Buffer;
  /** the close code and reason, once closed */
  closed: { code: number; reason: string } | undefined;
  waitFor<T>(what: string, check: () => T | undefined, timeoutMs?: number): Promise<T>;
  waitClosed(timeoutMs?: number): Promise<{ code: number; reason: string }>;
}

/** Opens a WebSocket to 127.0.0.1:port/mqtt offering `protocols`; resolves once open. */
export function openWs(port: number, protocols: string[] = ['mqtt'], opts: ClientOptions = {}, scheme = 'ws'): Promise<RawWs> {
  const ws = new WebSocket(`${scheme}://127.0.0.1:${port}/mqtt`, protocols, { handshakeTimeout: 3000, ...opts });
  const waiters = new Waiters();
  const rec: RawWs = {
    ws,
    messages: [],
    bytes: () => Buffer.concat(rec.messages),
    closed: undefined,
    waitFor: (what, check, timeoutMs = 3000) => waiters.wait(what, timeoutMs, check, () => `messages: ${rec.messages.length}, closed: ${JSON.stringify(rec.closed)}`),
    waitClosed: (timeoutMs = 3000) => rec.waitFor('the WebSocket to close', () => rec.closed, timeoutMs),
  };
  ws.on('message', (d: Buffer) => { rec.messages.push(d); waiters.check(); });
  ws.on('close', (code: number, reason: Buffer) => { rec.closed = { code, reason: reason.toString() }; waiters.check(); });
  return new Promise((resolve, reject) => {
    ws.once('open', () => { ws.on('error', () => undefined); resolve(rec); });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`HTTP ${res.statusCode ?? 0}`), { status: res.statusCode }));
      ws.terminate();
    });
  });
}

/** The HTTP status a WebSocket upgrade gets (101 when it opens). */
export async function upgradeStatus(port: number, protocols: string[], opts: ClientOptions = {}): Promise<number> {
  try {
    const r = await openWs(port, protocols, opts);
    r.ws.terminate();
    return 101;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status === undefined) throw err;
    return status;
  }
}

/** MQTT 3.1.1 CONNECT, clean session, keepalive 60. */
export function connectPacket(clientId: string, version: 4 | 5 = 4): Buffer {
  const id = Buffer.from(clientId);
  const vh = version === 5
    ? Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 5, 2, 0, 60, 0])
    : Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60]);
  const body = Buffer.concat([vh, Buffer.from([id.length >> 8, id.length & 0xff]), id]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

/** SUBSCRIBE packet id 1 to `topic` at `qos` (3.1.1). */
export function subscribePacket(topic: string, qos: 0 | 1 | 2): Buffer {
  const t = Buffer.from(topic);
  const body = Buffer.concat([Buffer.from([0, 1, t.length >> 8, t.length & 0xff]), t, Buffer.from([qos])]);
  return Buffer.concat([Buffer.from([0x82, body.length]), body]);
}

/** QoS 0 PUBLISH (3.1.1), a remaining length up to 2 bytes. */
export function publishPacket(topic: string, payload: Buffer): Buffer {
  const t = Buffer.from(topic);
  const len = 2 + t.length + payload.length;
  const rl = len < 128 ? Buffer.from([len]) : Buffer.from([(len & 0x7f) | 0x80, len >> 7]);
  return Buffer.concat([Buffer.from([0x30]), rl, Buffer.from([t.length >> 8, t.length & 0xff]), t, payload]);
}

/** The VmRSS of a process, in bytes (Linux). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}
