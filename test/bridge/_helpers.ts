/**
 * Bridge tests: brokers (Midge and Debian's mosquitto) on loopback ports, and mosquitto_sub / mosquitto_pub
 * on either side. Every wait is bounded; brokers are stopped by PID in `after()`.
 */
import assert from 'node:assert/strict';
import { run, spawnLines, type LineProcess } from '../helpers/proc.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

let subCounter = 0;

/**
 * mosquitto_sub on `broker`, printing `QOS RETAIN TOPIC PAYLOAD` per message;
 * resolves once the broker has logged the subscription of its last filter (brokers run with -v).
 */
export async function subscribe(broker: BrokerProcess, topics: string[], opts: { qos?: number; id?: string; clean?: boolean; extra?: string[] } = {}): Promise<LineProcess> {
  const id = opts.id ?? `bsub${process.pid}-${subCounter++}`;
  const args = ['-h', '127.0.0.1', '-p', String(broker.port), '-i', id, '-q', String(opts.qos ?? 2), '-F', '%q %r %t %p'];
  if (opts.clean === false) args.push('-c');
  if (opts.extra !== undefined) args.push(...opts.extra);
  for (const t of topics) args.push('-t', t);
  const before = broker.logs().length;
  const sub = spawnLines('mosquitto_sub', args);
  const last = topics[topics.length - 1]!;
  const re = new RegExp(`^\\d+: ${escape(id)} \\d ${escape(last)}$`);
  const deadline = Math.round(performance.now()) + 5000;
  for (;;) {
    const seen = broker.logs().slice(before).split('\n').some((l) => re.test(l));
    if (seen) return sub;
    if (Math.round(performance.now()) > deadline) { sub.kill(); throw new Error(`the subscription of ${id} to ${last} was not logged:\n${broker.logs().slice(before)}`); }
    await sleep(25);
  }
}

export async function publish(broker: BrokerProcess, topic: string, message: string, qos = 1, extra: string[] = []): Promise<void> {
  const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', topic, '-m', message, '-q', String(qos), ...extra], { timeoutMs: 5000 });
  assert.equal(r.code, 0, `mosquitto_pub failed: ${r.stderr}`);
}

/** Publishes several messages over one connection (mosquitto_pub -l), in order. */
export async function publishLines(broker: BrokerProcess, topic: string, lines: string[], qos = 1): Promise<void> {
  const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', topic, '-l', '-q', String(qos)],
    { timeoutMs: 10_000, input: lines.map((l) => `${l}\n`).join('') });
  assert.equal(r.code, 0, `mosquitto_pub -l failed: ${r.stderr}`);
}

/** The retained message on `topic`, or undefined when there is none (mosquitto_sub --retained-only, bounded). */
export async function retained(broker: BrokerProcess, topic: string): Promise<string | undefined> {
  const r = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', topic, '--retained-only', '-C', '1', '-W', '1'],
    { timeoutMs: 5000 });
  const line = r.stdout.split('\n')[0];
  return line === '' || line === undefined ? undefined : line;
}

/** Polls `fn` every 100 ms until it returns true, at most `ms`. */
export async function until(what: string, ms: number, fn: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Math.round(performance.now()) + ms;
  for (;;) {
    if (await fn()) return;
    if (Math.round(performance.now()) > deadline) throw new Error(`timed out (${ms} ms) waiting for ${what}`);
    await sleep(100);
  }
}

/** Lines of `broker`'s log matching `re`. */
export function logLines(broker: BrokerProcess, re: RegExp): string[] {
  return broker.logs().split('\n').filter((l) => re.test(l));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
