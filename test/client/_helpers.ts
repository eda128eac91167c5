/**
 * Test helpers for the client and CLI tests: a real Debian mosquitto on a free loopback port,
 * child processes (our CLI, mosquitto's tools, paho scripts) with bounded waits, stopped by PID,
 * and a throw-away CA + server certificate made with openssl.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Message, MqttClient } from '../../src/client/index.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const PYTHON = '/usr/bin/python3';
/** the compiled CLI entry point (dist/src/cli/main.js) */
export const MIDGE = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export function tempDir(prefix = 'midge-client-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A port nobody listens on right now (found by listening on 127.0.0.1:0). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `promise`, or a rejection after `ms` (the timer is cleared either way). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  try { return await Promise.race([promise, timeout]); } finally { clearTimeout(timer); }
}

/** Polls until `check` is true; throws after `timeout` ms. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeout = 5000, what = 'condition'): Promise<void> {
  const end = Math.round(performance.now()) + timeout;
  for (;;) {
    if (await check()) return;
    if (Math.round(performance.now()) > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Collects messages; `next(n)` waits (bounded) until n have arrived. */
export function collect(c: MqttClient): { messages: Message[]; next(n: number, timeout?: number): Promise<Message[]> } {
  const messages: Message[] = [];
  c.on('message', (m) => messages.push(m));
  return {
    messages,
    async next(n, timeout = 5000) {
      await waitFor(() => messages.length >= n, timeout, `${n} messages (have ${messages.length})`);
      return messages.slice(0, n);
    },
  };
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export interface Broker {
  port: number;
  dir: string;
  proc: ChildProcess;
  log(): string;
  /** stops it (SIGTERM, then SIGKILL after 3 s); resolves when it exited */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** starts it again with the same configuration and port */
  restart(): Promise<void>;
}

/**
 * Starts Debian's mosquitto with `listener PORT 127.0.0.1` plus `extra` config lines (where
 * "$PORT" and "$DIR" are replaced). Resolves when the port accepts connections.
 */
export async function startMosquitto(extra: string[] = ['allow_anonymous true'], opts: { port?: number; dir?: string } = {}): Promise<Broker> {
  const port = opts.port ?? await freePort();
  const dir = opts.dir ?? tempDir('midge-mosq-');
  const lines = [`listener ${port} 127.0.0.1`, ...extra.map((l) => l.replaceAll('$PORT', String(port)).replaceAll('$DIR', dir))];
  if (process.getuid?.() === 0) lines.unshift('user root');
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  let output = '';
  const broker: Broker = {
    port, dir, proc: undefined as unknown as ChildProcess,
    log: () => output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const p = broker.proc;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill(signal);
      const t = setTimeout(() => p.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
    async restart() {
      await launch();
    },
  };
  const launch = async (): Promise<void> => {
    const p = spawn(MOSQUITTO, ['-c', conf, '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
    p.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
    broker.proc = p;
    await waitFor(async () => {
      if (p.exitCode !== null) throw new Error(`mosquitto exited: ${output}`);
      return accepts(port);
    }, 5000, `mosquitto on port ${port}`);
  };
  await launch();
  return broker;
}

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs a command to completion (killed by PID after `timeout` ms). */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeout ?? 15_000);
    p.once('error', (e) => { clearTimeout(timer); reject(e); });
    p.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
  });
}

/** `midge <args>` */
export function midge(args: string[], opts: { input?: string | Buffer; timeout?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [MIDGE, ...args], opts);
}

/** A long-running process whose output is watched while it runs. */
export class Proc {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(cmd: string, args: string[], opts: { stdin?: 'pipe' | 'ignore'; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(cmd, args, { stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    this.child.stdout!.on('data', (d: Buffer) => { this.stdout += d.toString(); });
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
  }

  static midge(args: string[], opts: { stdin?: 'pipe' | 'ignore' } = {}): Proc {
    return new Proc(process.execPath, [MIDGE, ...args], opts);
  }

  /** with extra environment variables */
  static fromEnv(cmd: string, args: string[], env: Record<string, string>): Proc {
    return new Proc(cmd, args, { env: { ...process.env, ...env } });
  }

  lines(): string[] {
    return this.stdout.split('\n').filter((l) => l !== '');
  }

  async waitForOutput(pattern: string | RegExp, timeout = 5000): Promise<void> {
    const test = (): boolean => (typeof pattern === 'string' ? this.stdout.includes(pattern) : pattern.test(this.stdout));
    await waitFor(test, timeout, `output ${String(pattern)} (have: ${JSON.stringify(this.stdout)}, stderr: ${JSON.stringify(this.stderr)})`);
  }

  /** Waits for the exit (bounded), killing by PID when it takes too long. */
  async wait(timeout = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeout);
    try { return await this.exited; } finally { clearTimeout(t); }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await this.wait(3000);
  }
}

export interface Certs { dir: string; ca: string; cert: string; key: string; wrongCert: string; wrongKey: string }

/** A CA, a server certificate for localhost/127.0.0.1, and one for "wronghost" (name mismatch). */
export function makeCerts(): Certs {
  const dir = tempDir('midge-certs-');
  const ssl = (...args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Midge Test CA');
  const server = (name: string, san: string): void => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
    chmodSync(join(dir, `${name}.key`), 0o644);
  };
  server('localhost', 'DNS:localhost,IP:127.0.0.1');
  server('wronghost', 'DNS:wronghost');
  return {
    dir, ca: join(dir, 'ca.crt'), cert: join(dir, 'localhost.crt'), key: join(dir, 'localhost.key'),
    wrongCert: join(dir, 'wronghost.crt'), wrongKey: join(dir, 'wronghost.key'),
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs a paho-mqtt 1.6 script with Debian's python (unbuffered). */
export function paho(script: string, args: string[] = []): Proc {
  return new Proc(PYTHON, ['-u', '-c', script, ...args]);
}
