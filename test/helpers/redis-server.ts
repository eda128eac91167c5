/**
 * A throw-away redis-server for tests: Debian's /usr/bin/redis-server (scripts/setup.sh installs
 * it) on a free loopback port, in a temp directory, without persistence unless `appendonly` is asked
 * for; stopped by PID. A missing
 * binary is an error, never a skip.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { exitOf, spawnTracked } from './proc.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT, or rediss:// when started with TLS */
  readonly url: string;
  readonly pid: number;
  /** SIGKILL (a crash): waits for the exit, at most 5 s */
  kill(): Promise<void>;
  /** a new redis-server on the same port and directory (SIGKILLs the running one first): empty, unless
   * started with `appendonly`, when it loads every write the old one acknowledged */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that hangs */
  pause(): void;
  resume(): void;
  /** SIGTERM, then SIGKILL after 5 s; removes the directory */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** serve TLS only (the plain port is off): PEM files of the server's certificate and key */
  tls?: { certFile: string; keyFile: string };
  /** `appendonly yes` + `appendfsync always`: every acknowledged write survives a SIGKILL and `restart()` */
  appendonly?: boolean;
}

function launch(port: number, dir: string, opts: RedisServerOptions): Promise<ChildProcess> {
  const ports = opts.tls === undefined
    ? ['--port', String(port)]
    : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', opts.tls.certFile, '--tls-key-file', opts.tls.keyFile, '--tls-ca-cert-file', opts.tls.certFile, '--tls-auth-clients', 'no'];
  const aof = opts.appendonly === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const child = spawnTracked(REDIS_SERVER, [
    ...ports, '--bind', '127.0.0.1', '--save', '', ...aof, '--daemonize', 'no', '--dir', dir,
  ], { cwd: dir });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} not ready within 10 s: ${out}`));
    }, 10_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        child.stderr!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${port} exited (${code ?? signal}) before it was ready: ${out}`));
    });
  });
}

export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) {
    throw new Error(`${REDIS_SERVER} is missing: the Redis store tests need Debian's redis-server (scripts/setup.sh installs it)`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'midge-redis-'));
  let child: ChildProcess | undefined;
  let port = 0;
  // The free port may be taken by someone else before redis binds it: a few tries with new ports.
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3 && child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await launch(port, dir, opts);
    } catch (err) {
      lastErr = err;
    }
  }
  if (child === undefined) throw lastErr;
  let proc: ChildProcess = child;
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    process.kill(proc.pid!, signal);
    const timer = setTimeout(() => proc.exitCode === null && proc.signalCode === null && process.kill(proc.pid!, 'SIGKILL'), 5000);
    await exitOf(proc);
    clearTimeout(timer);
  };
  return {
    port,
    url: `${opts.tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    get pid() {
      return proc.pid!;
    },
    kill: () => end('SIGKILL'),
    restart: async () => {
      await end('SIGKILL');
      proc = await launch(port, dir, opts);
    },
    pause: () => process.kill(proc.pid!, 'SIGSTOP'),
    resume: () => process.kill(proc.pid!, 'SIGCONT'),
    stop: async () => {
      if (proc.signalCode === null && proc.exitCode === null) process.kill(proc.pid!, 'SIGCONT');
      await end('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisSentinel {
  readonly port: number;
  readonly pid: number;
  /** redis+sentinel://127.0.0.1:PORT/NAME */
  readonly url: string;
  /** SIGTERM, then SIGKILL after 5 s; removes the directory */
  stop(): Promise<void>;
}

/**
 * A Redis Sentinel (`redis-server sentinel.conf --sentinel`) on a free loopback port, monitoring the
 * master `name` at 127.0.0.1:masterPort with quorum 1 (`authPass`: the master's password). Its config
 * file (Sentinel rewrites it) is in a temp directory; resolves when it monitors the master.
 */
export async function startSentinel(masterPort: number, name = 'mymaster', authPass?: string): Promise<RedisSentinel> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: the Sentinel tests need Debian's redis-server`);
  const dir = await mkdtemp(join(tmpdir(), 'midge-sentinel-'));
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = join(dir, 'sentinel.conf');
    await writeFile(conf, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
      ...(authPass !== undefined ? [`sentinel auth-pass ${name} ${authPass}`] : []), '',
    ].join('\n'));
    const child = spawnTracked(REDIS_SERVER, [conf, '--sentinel'], { cwd: dir });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`sentinel on port ${port} not monitoring ${name} within 10 s: ${out}`));
        }, 10_000);
        const onData = (b: Buffer): void => {
          out += b.toString();
          if (out.includes(`+monitor master ${name}`)) {
            clearTimeout(timer);
            child.stdout!.off('data', onData);
            child.stdout!.resume();
            child.stderr!.resume();
            resolve();
          }
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`sentinel on port ${port} exited (${code ?? signal}) before it was ready: ${out}`));
        });
      });
    } catch (err) {
      lastErr = err;
      continue;
    }
    return {
      port,
      pid: child.pid!,
      url: `redis+sentinel://127.0.0.1:${port}/${name}`,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          process.kill(child.pid!, 'SIGTERM');
          const timer = setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(child.pid!, 'SIGKILL'), 5000);
          await exitOf(child);
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await rm(dir, { recursive: true, force: true });
  throw lastErr;
}
