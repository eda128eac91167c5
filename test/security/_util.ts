/**
 * What the security tests share: brokers started from a config text (Midge, or Debian's mosquitto for
 * comparisons, without Midge's own `midge_*` keys), mosquitto_sub/pub and `midge sub` runs, bounded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { encode, Parser, type ConnackPacket, type ConnectPacket } from '../../src/codec/index.js';
import { MIDGE_MAIN, startMidge, startMosquitto, type BrokerProcess } from '../helpers/broker-process.js';
import { accepts, freePort } from '../helpers/ports.js';
import { exitOf, run, spawnLines, spawnTracked, type LineProcess, type RunResult } from '../helpers/proc.js';

export const T = { timeout: 30_000 };

/** Config text for mosquitto: Midge's own keys removed (mosquitto refuses unknown keys). */
export function forMosquitto(config: string): string {
  return config.split('\n').filter((l) => !/^\s*midge_/.test(l)).join('\n');
}

export function midge(lines: string[], verbose = true): Promise<BrokerProcess> {
  return startMidge({ config: lines.join('\n'), verbose });
}

export function mosquitto(lines: string[]): Promise<BrokerProcess> {
  return startMosquitto({ config: forMosquitto(lines.join('\n')), verbose: true });
}

/** `mosquitto_sub ARGS` to completion, bounded. */
export function mosquittoSub(args: readonly string[], timeoutMs = 8000): Promise<RunResult> {
  return run('mosquitto_sub', args, { timeoutMs });
}

export async function mosquittoPub(args: readonly string[], timeoutMs = 8000): Promise<RunResult> {
  const r = await run('mosquitto_pub', args, { timeoutMs });
  if (r.code !== 0) throw new Error(`mosquitto_pub ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
  return r;
}

/** `mosquitto_sub ARGS` kept running, its stdout line by line. */
export function mosquittoSubLines(args: readonly string[]): LineProcess {
  return spawnLines('mosquitto_sub', args);
}

/** `node dist/src/cli/main.js ARGS` to completion, bounded. */
export function midgeCli(args: readonly string[], timeoutMs = 8000): Promise<RunResult> {
  return run(process.execPath, [MIDGE_MAIN, ...args], { timeoutMs });
}

export function midgeCliLines(args: readonly string[]): LineProcess {
  return spawnLines(process.execPath, [MIDGE_MAIN, ...args]);
}

/** A second (third, ...) port for configs with several listeners. */
export const anotherPort = freePort;

/** Outcome of a raw TLS handshake with the broker. */
export interface Handshake {
  ok: boolean;
  protocol?: string | null;
  error?: string;
}

/** A TLS handshake to 127.0.0.1:port with these options; closes at once. Bounded by 5 s. */
export function handshake(port: number, opts: tls.ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts });
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), 5000);
    let done = false;
    function finish(h: Handshake): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(h);
    }
    socket.once('secureConnect', () => {
      // TLS 1.3 sends the server's verdict on a client certificate after the handshake: wait a moment
      const protocol = socket.getProtocol();
      setTimeout(() => finish({ ok: !socket.destroyed, protocol }), 300);
    });
    socket.once('error', (err) => finish({ ok: false, error: err.message }));
    socket.once('close', () => finish({ ok: false, error: 'closed' }));
  });
}

/** Opens a plain TCP connection and sends `bytes` (kept open until `close()`). */
export function plainTcp(port: number, bytes: Buffer): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.write(bytes);
      resolve(s);
    });
    s.once('error', reject);
    s.on('error', () => {});
  });
}

/** An MQTT 3.1.1 CONNECT (clean session, keepalive 60) for raw-socket tests. */
export function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, id.length >> 8, id.length & 0xff]), id]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

/** A Midge broker started from exactly this config text (`{port}` replaced; nothing added). */
export interface ExactBroker {
  port: number;
  file: string;
  logs(): string;
  stop(): Promise<void>;
}

const exactBrokers = new Set<ExactBroker>();

export async function midgeExact(text: string, args: string[] = []): Promise<ExactBroker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'midge-exact-'));
  const file = join(dir, 'broker.conf');
  writeFileSync(file, text.replaceAll('{port}', String(port)));
  const child = spawnTracked(process.execPath, [MIDGE_MAIN, 'broker', '-c', file, ...args]);
  child.stdin?.end();
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = exitOf(child);
  const b: ExactBroker = {
    port, file,
    logs: () => out,
    stop: async () => {
      exactBrokers.delete(b);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  exactBrokers.add(b);
  const deadline = Math.round(performance.now()) + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Math.round(performance.now()) > deadline) {
      await b.stop();
      throw new Error(`broker did not start on port ${port}:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return b;
}

export async function stopExactBrokers(): Promise<void> {
  await Promise.all([...exactBrokers].map((b) => b.stop()));
}

/** Sends one CONNECT on a raw socket and resolves with the decoded CONNACK (bounded by 5 s). */
export function rawConnect(port: number, p: Omit<ConnectPacket, 'type' | 'protocolName'>): Promise<ConnackPacket> {
  return new Promise((resolve, reject) => {
    const parser = new Parser({ protocolVersion: p.protocolVersion });
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write(encode({ type: 'connect', protocolName: p.protocolVersion === 3 ? 'MQIsdp' : 'MQTT', ...p }, p.protocolVersion));
    });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no CONNACK within 5 s')); }, 5000);
    socket.on('data', (chunk: Buffer) => {
      parser.parse(chunk, (packet) => {
        if (packet.type !== 'connack') return;
        clearTimeout(timer);
        socket.destroy();
        resolve(packet);
      });
    });
    socket.once('error', (err) => { clearTimeout(timer); reject(err); });
    socket.once('close', () => { clearTimeout(timer); reject(new Error('closed before CONNACK')); });
  });
}
