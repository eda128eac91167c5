/**
 * Broker processes for bench/ and the abuse tests: Midge, Debian's mosquitto and Aedes, each on a
 * free port of 127.0.0.1, with the same mosquitto.conf for Midge and mosquitto. Every process is
 * stopped by its PID (SIGTERM, then SIGKILL), also when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, openSync, closeSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, statusKb } from '../../src/bench/limits.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

export type BrokerKind = 'midge' | 'mosquitto' | 'aedes' | 'midge-persist' | 'midge-fsync' | 'mosquitto-persist' | 'midge-ws' | 'mosquitto-ws';

/** The program a kind runs: the `-persist`/`-fsync` kinds are Midge or mosquitto with `persistence true`. */
export function baseKind(kind: BrokerKind): 'midge' | 'mosquitto' | 'aedes' {
  return kind === 'midge-persist' || kind === 'midge-fsync' || kind === 'midge-ws' ? 'midge'
    : kind === 'mosquitto-persist' || kind === 'mosquitto-ws' ? 'mosquitto' : kind;
}

/** The `-ws` kinds: a `protocol websockets` listener beside the TCP one (`wsPort`). */
export function usesWebSockets(kind: BrokerKind): boolean {
  return kind === 'midge-ws' || kind === 'mosquitto-ws';
}

/** Whether a kind keeps a store (persistence true). */
export function persists(kind: BrokerKind): boolean {
  return kind !== baseKind(kind) && !usesWebSockets(kind);
}

export const MIDGE_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const AEDES_SERVER = fileURLToPath(new URL('../../../bench/aedes-server.mjs', import.meta.url));
export const MOSQUITTO = '/usr/sbin/mosquitto';

export interface BrokerHandle {
  kind: BrokerKind;
  pid: number;
  port: number;
  /** the `-ws` kinds: the port of the `protocol websockets` listener */
  wsPort: number | undefined;
  log: string;
  /** the persistent kinds: where the store is */
  dataDir: string | undefined;
  /** ms (Date.now) when the process was spawned */
  spawnedAt: number;
  alive(): boolean;
  rssKb(): number;
  /** peak RSS (VmHWM) */
  hwmKb(): number;
  cpuS(): number;
  logs(): string;
  /** SIGKILL (a crash); resolves when the process is gone */
  kill(): Promise<void>;
  /** SIGTERM; SIGKILL after `graceMs`; resolves when the process is gone */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  /** directory for the config and the log */
  dir: string;
  /** extra mosquitto.conf lines (Midge and mosquitto) */
  extraConfig?: string;
  /** only `listener` and `allow_anonymous`: every limit at the broker's default (abuse tests) */
  defaults?: boolean;
  /** extra node flags for Midge (e.g. --cpu-prof) */
  nodeArgs?: string[];
  /** the persistent kinds: the store's directory (default: a new one in `dir` per start) */
  dataDir?: string;
  /** this port rather than a free one (a restart on the same port) */
  port?: number;
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) {
    try {
      if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** The config both Midge and mosquitto run with: loopback only, anonymous, large queues, quiet log. */
export function brokerConfig(port: number, extra = '', persistence = 'persistence false'): string {
  return [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    persistence,
    'max_queued_messages 1000000',
    'max_queued_bytes 0',
    'max_connections -1',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'connection_messages false',
    extra,
  ].join('\n') + '\n';
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a !== null && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.setTimeout(1000);
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.once('timeout', () => done(false));
  });
}

function command(kind: BrokerKind, port: number, conf: string, opts: StartOptions): [string, string[]] {
  switch (baseKind(kind)) {
    case 'midge': return [process.execPath, [...NODE_FLAGS, ...(opts.nodeArgs ?? []), MIDGE_MAIN, 'broker', '-c', conf]];
    case 'mosquitto': return [MOSQUITTO, ['-c', conf]];
    case 'aedes': return [process.execPath, [AEDES_SERVER, String(port), '127.0.0.1']];
  }
}

/** Starts a broker and resolves once its port accepts connections (tries another port if it was taken). */
export async function startBroker(kind: BrokerKind, opts: StartOptions): Promise<BrokerHandle> {
  if (opts.port !== undefined) return launch(kind, opts.port, opts);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(kind, port, opts);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !/in use/i.test(err.message)) throw err;
    }
  }
}

async function launch(kind: BrokerKind, port: number, opts: StartOptions): Promise<BrokerHandle> {
  const conf = join(opts.dir, `${kind}-${port}.conf`);
  let persistence = 'persistence false';
  let dataDir: string | undefined;
  if (persists(kind)) {
    dataDir = opts.dataDir ?? mkdtempSync(join(opts.dir, `${kind}-data-`));
    mkdirSync(dataDir, { recursive: true });
    // mosquitto started as root runs as the user 'mosquitto' (it saves its store on exit as that
    // user): let it into the directory
    if (baseKind(kind) === 'mosquitto' && process.getuid?.() === 0) {
      chmodSync(opts.dir, 0o711);
      chmodSync(dataDir, 0o777);
    }
    // mosquitto wants the trailing slash; Midge takes either
    persistence = `persistence true\npersistence_location ${dataDir}/`;
    if (kind === 'midge-fsync') persistence += '\nmidge_persistence_fsync true';
  }
  let text = opts.defaults === true
    ? `listener ${port} 127.0.0.1\nallow_anonymous true\n${persistence}\n${opts.extraConfig ?? ''}\n`
    : brokerConfig(port, opts.extraConfig, persistence);
  let wsPort: number | undefined;
  if (usesWebSockets(kind)) {
    do wsPort = await freePort(); while (wsPort === port);
    // mosquitto 2.0.11 hands the address to libwebsockets as an interface: an IP address is ignored
    // (it would listen on every interface), the interface name `lo` keeps it on loopback
    text += `listener ${wsPort} ${baseKind(kind) === 'mosquitto' ? 'lo' : '127.0.0.1'}\nprotocol websockets\n`;
  }
  writeFileSync(conf, text, { mode: 0o644 });
  const log = join(opts.dir, `${kind}-${port}.log`);
  const fd = openSync(log, 'w');
  const [cmd, args] = command(kind, port, conf, opts);
  const spawnedAt = Math.round(performance.now());
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(child);
  let exited = child.exitCode !== null;
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
    child.once('error', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });
  const pid = child.pid ?? -1;
  const logs = (): string => {
    try {
      return readFileSync(log, 'utf8');
    } catch {
      return '';
    }
  };
  const handle: BrokerHandle = {
    kind, pid, port, wsPort, log, dataDir, spawnedAt,
    alive: () => !exited,
    rssKb: () => statusKb(pid, 'VmRSS'),
    hwmKb: () => statusKb(pid, 'VmHWM'),
    cpuS: () => cpuSeconds(pid),
    logs,
    kill: async () => {
      if (!exited) {
        child.kill('SIGKILL');
        await gone;
      }
    },
    stop: async (graceMs = 3000) => {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => {
          if (!exited) child.kill('SIGKILL');
        }, graceMs);
        await gone;
        clearTimeout(t);
      }
    },
  };
  const deadline = Math.round(performance.now()) + (opts.readyTimeoutMs ?? 10_000);
  for (;;) {
    if (exited) throw new Error(`${kind} exited before listening on ${port}: ${logs().slice(-2000)}`);
    if (await accepts(port) && (wsPort === undefined || await accepts(wsPort))) return handle;
    if (Math.round(performance.now()) > deadline) {
      await handle.stop();
      throw new Error(`${kind} did not listen on ${port} within ${opts.readyTimeoutMs ?? 10_000} ms: ${logs().slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
