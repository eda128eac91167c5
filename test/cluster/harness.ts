/**
 * The cluster tests' harness: a redis-server of our own (test/helpers/redis-server.ts, optionally with
 * `appendonly yes` + `appendfsync always` so that a SIGKILL and a restart on the same port and directory
 * keep every acknowledged write), then N `midge broker` processes (test/helpers/broker-process.ts) whose
 * configuration names that Redis (`cluster_redis`) and a node id (`cluster_node_id`), each waited for
 * until it logs `Cluster: node NAME joined`. Everything is stopped by PID (`stop()`); every wait is bounded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIDGE_MAIN, startMidge, type BrokerProcess } from '../helpers/broker-process.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { run, type RunResult } from '../helpers/proc.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

/** How long a node may take from spawn to `Cluster: node NAME joined` (the machine is shared and slow). */
export const JOIN_TIMEOUT_MS = 15_000;

export interface ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly broker: BrokerProcess;
  /** the `Cluster: node NAME joined (N nodes).` line */
  readonly joinedLine: string;
}

export interface NodeOptions {
  /** config lines added after `cluster_redis` / `cluster_node_id` */
  extra?: string;
  /** `-v`: every packet logged (slow under load; for tests that read packet lines) */
  verbose?: boolean;
  /** a fixed listener port (a restart where the node was) */
  port?: number;
  /** more command-line arguments */
  args?: string[];
}

export interface ClusterOptions {
  /** node ids, started one after the other in this order (default a, b, c) */
  nodes?: string[];
  /** Redis keeps its data across kill + restart */
  appendonly?: boolean;
  /** config lines for every node */
  extra?: string;
  verbose?: boolean;
}

/** The config text of a cluster node (`{port}` is the listener port, filled in by startMidge). */
export function nodeConfig(redisUrl: string, name: string, extra = ''): string {
  return [
    'listener {port} 127.0.0.1',
    'allow_anonymous true',
    `cluster_redis ${redisUrl}`,
    `cluster_node_id ${name}`,
    // large enough queues for the load tests (3,000 messages to one subscriber)
    'max_queued_messages 100000',
    extra,
  ].join('\n');
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Starts one node against `redisUrl` and waits for its join line. */
export async function startNode(redisUrl: string, name: string, opts: NodeOptions = {}): Promise<ClusterNode> {
  const broker = await startMidge({
    config: nodeConfig(redisUrl, name, opts.extra),
    verbose: opts.verbose,
    port: opts.port,
    args: opts.args,
  });
  try {
    const joinedLine = await broker.waitForLog(new RegExp(`Cluster: node ${escape(name)} joined`), JOIN_TIMEOUT_MS);
    return { name, port: broker.port, broker, joinedLine };
  } catch (err) {
    await broker.stop();
    throw err;
  }
}

export class Cluster {
  readonly nodes = new Map<string, ClusterNode>();

  constructor(
    readonly redis: RedisServer,
    private readonly defaults: NodeOptions,
  ) {}

  node(name: string): ClusterNode {
    const n = this.nodes.get(name);
    if (n === undefined) throw new Error(`no node '${name}' in this cluster`);
    return n;
  }

  port(name: string): number {
    return this.node(name).port;
  }

  /** Starts (or restarts, on its old port when it had one) the node `name`. */
  async start(name: string, opts: NodeOptions = {}): Promise<ClusterNode> {
    const old = this.nodes.get(name);
    if (old?.broker.running() === true) throw new Error(`node '${name}' is still running`);
    const extra = [this.defaults.extra ?? '', opts.extra ?? ''].join('\n');
    const n = await startNode(this.redis.url, name, { ...this.defaults, ...opts, extra });
    this.nodes.set(name, n);
    return n;
  }

  /** SIGKILL of a node (a crash), waiting until the process is gone. */
  async kill(name: string): Promise<void> {
    const b = this.node(name).broker;
    b.kill('SIGKILL');
    await b.stop();
  }

  /** Nodes whose process exited by itself (not stopped by the test), with their logs' last lines. */
  crashed(except: string[] = []): string[] {
    return [...this.nodes.values()]
      .filter((n) => !except.includes(n.name) && !n.broker.running())
      .map((n) => `node ${n.name} exited:\n${n.broker.logs().split('\n').slice(-30).join('\n')}`);
  }

  /** Every node's log, for an assertion message. */
  logs(): string {
    return [...this.nodes.values()].map((n) => `--- node ${n.name} (port ${n.port}) ---\n${n.broker.logs()}`).join('\n');
  }

  /** Writes every node's whole log to a new directory under the OS temp dir; returns the directory (for failure messages). */
  dumpLogs(tag: string): string {
    const dir = mkdtempSync(join(tmpdir(), `midge-cluster-logs-${tag}-`));
    for (const n of this.nodes.values()) writeFileSync(join(dir, `${n.name}.log`), n.broker.logs());
    return dir;
  }

  /** Stops every node (SIGTERM, SIGKILL after 3 s), then Redis. */
  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.broker.stop()));
    await this.redis.stop();
  }
}

/** A Redis, then the nodes one after the other, each waited for until it joined. */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const redis = await startRedis({ appendonly: opts.appendonly === true });
  const cluster = new Cluster(redis, { extra: opts.extra, verbose: opts.verbose });
  try {
    for (const name of opts.nodes ?? ['a', 'b', 'c']) await cluster.start(name);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/**
 * `midge broker -c FILE ARGS...` with `configText` as the file, to completion (bounded): for the
 * configurations and command lines that must make the broker exit.
 */
export async function runBroker(configText: string | undefined, args: string[], timeoutMs: number): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'midge-cluster-conf-'));
  try {
    const argv = [...NODE_FLAGS, MIDGE_MAIN, 'broker'];
    if (configText !== undefined) {
      const file = join(dir, 'broker.conf');
      writeFileSync(file, configText.endsWith('\n') ? configText : `${configText}\n`);
      argv.push('-c', file);
    }
    return await run(process.execPath, [...argv, ...args], { timeoutMs });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `f` every `everyMs` until it returns a value other than undefined; rejects after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, f: () => T | undefined | Promise<T | undefined>, everyMs = 50): Promise<T> {
  const deadline = Math.round(performance.now()) + timeoutMs;
  for (let i = 0; i < 1_000_000; i++) {
    const v = await f();
    if (v !== undefined) return v;
    if (Math.round(performance.now()) >= deadline) break;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}
