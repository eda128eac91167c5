/**
 * Small process helpers for the auth and passwd tests: run a command and collect its output, find a
 * free port, and run Debian's mosquitto with a config of our own (stopped by its PID).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';
export const MOSQUITTO_PUB = '/usr/bin/mosquitto_pub';
export const HAVE_MOSQUITTO = existsSync(MOSQUITTO) && existsSync(MOSQUITTO_PASSWD) && existsSync(MOSQUITTO_PUB);

/** dist/src/cli/main.js, found from this compiled file (dist/test/auth/_helpers.js). */
export const MIDGE = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion; `input` (if given) is written to its stdin, which is then closed. */
export function run(cmd: string, args: string[], options: { input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: timed out`));
    }, options.timeoutMs ?? 10_000);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.on('error', () => undefined); // the command may exit before reading its input
    child.stdin.end(options.input ?? '');
  });
}

/** `midge passwd ARGS` through the real CLI entry point. */
export function midgePasswd(args: string[], options: { input?: string; cwd?: string } = {}): Promise<RunResult> {
  return run(process.execPath, [MIDGE, 'passwd', ...args], options);
}

export function mosquittoPasswd(args: string[], options: { input?: string; cwd?: string } = {}): Promise<RunResult> {
  return run(MOSQUITTO_PASSWD, args, options);
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function tempDir(prefix = 'midge-auth-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export interface MosquittoBroker {
  readonly port: number;
  readonly pid: number;
  /** Everything the broker logged so far. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts mosquitto on a free 127.0.0.1 port with `lines` added to its config, and resolves once it
 * logs that it is running on that port. When run as root, mosquitto would drop to the `mosquitto`
 * user and could not read a 0600 file of ours, so the config keeps it as root (`user root`).
 */
export async function startMosquitto(dir: string, lines: string[]): Promise<MosquittoBroker> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const conf = join(dir, `mosquitto-${port}.conf`);
    const userLine = process.getuid?.() === 0 ? ['user root'] : [];
    await writeFile(conf, [`listener ${port} 127.0.0.1`, ...userLine, ...lines, ''].join('\n'));
    const child = spawn(MOSQUITTO, ['-c', conf, '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      return await waitRunning(child, port);
    } catch (err) {
      if (attempt >= 2) throw err; // the port may have been taken in between: try another
    }
  }
}

function waitRunning(child: ChildProcess, port: number): Promise<MosquittoBroker> {
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const broker: MosquittoBroker = {
    port,
    pid: child.pid ?? -1,
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM');
        const timer = setTimeout(() => { if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL'); }, 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void broker.stop().then(() => reject(new Error(`mosquitto did not start:\n${output}`)));
    }, 5000);
    const onData = (d: Buffer): void => {
      output += d.toString('utf8');
      if (output.includes(`listen socket on port ${port}`) && /mosquitto version \S+ running/.test(output)) {
        clearTimeout(timer);
        resolve(broker);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`mosquitto exited before it was running:\n${output}`));
    });
  });
}
