/**
 * Real clients for the cluster tests, all recording what they receive as payload strings in arrival order:
 * MQTT.js (test/helpers/mqttjs.ts's `connect`, plus bounded retries for a CONNECT that a node refuses
 * for a while), Debian's mosquitto_sub / mosquitto_pub, and paho-mqtt 1.6 under Debian's /usr/bin/python3.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt';
import { untilConnack } from '../helpers/mqttjs.js';
import { run, spawnLines, type LineProcess, type RunResult } from '../helpers/proc.js';
import { sleep } from './harness.js';

export const PYTHON = '/usr/bin/python3';

/** Something that receives messages: what it received so far, payloads in arrival order. */
export interface Inbox {
  readonly name: string;
  payloads(): string[];
}

// ---------------------------------------------------------------------------------------------
// MQTT.js

export interface JsSubscriber extends Inbox {
  client: MqttClient;
  /** every message as received (QoS and retain flag too) */
  readonly messages: { topic: string; payload: string; qos: number; retain: boolean; dup: boolean }[];
  /** every CONNACK the client got: session present and reason code (v5) / return code */
  readonly connacks: { sessionPresent: boolean; code: number }[];
}

/** Records the messages of an MQTT.js client from now on. */
export function recordJs(name: string, client: MqttClient, into?: JsSubscriber['messages']): JsSubscriber {
  const messages = into ?? [];
  const connacks: JsSubscriber['connacks'] = [];
  client.on('connect', (p) => connacks.push({ sessionPresent: p.sessionPresent, code: p.reasonCode ?? p.returnCode ?? 0 }));
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload: payload.toString('utf8'), qos: packet.qos, retain: packet.retain, dup: packet.dup });
  });
  return { name, client, messages, connacks, payloads: () => messages.map((m) => m.payload) };
}

/** MQTT.js connected to 127.0.0.1:port (no reconnect), its messages recorded from the first byte on. */
export function jsClient(name: string, port: number, opts: IClientOptions = {}, timeoutMs = 5000): Promise<JsSubscriber> {
  return jsClientLong(name, port, opts, timeoutMs);
}

const openClients = new Set<MqttClient>();

/** Force-closes every MQTT.js client made here that is still open (for afterEach). */
export async function closeJsClients(): Promise<void> {
  const all = [...openClients];
  openClients.clear();
  await Promise.all(all.map((c) => c.endAsync(true).catch(() => undefined)));
}

/**
 * Connects, retrying (bounded) while the node refuses (server unavailable) or does not answer in time:
 * a node may hold or refuse a CONNECT while Redis is away or a dead node's sessions are being adopted.
 * Resolves with the client and the time the successful attempt took from the first try.
 */
export async function jsClientRetry(
  name: string, port: number, opts: IClientOptions, timeoutMs: number,
): Promise<{ sub: JsSubscriber; ms: number; attempts: string[] }> {
  const t0 = Math.round(performance.now());
  const attempts: string[] = [];
  for (let i = 0; i < 200; i++) {
    try {
      // the connect helper gives up after 4 s; the adoption of a dead node may hold a CONNECT ~6 s
      const sub = await jsClientLong(name, port, opts, Math.max(1000, Math.min(10_000, t0 + timeoutMs - Math.round(performance.now()))));
      return { sub, ms: Math.round(performance.now()) - t0, attempts };
    } catch (err) {
      attempts.push(`${Math.round(performance.now()) - t0} ms: ${(err as Error).message}`);
      if (Math.round(performance.now()) - t0 >= timeoutMs) break;
      await sleep(250);
    }
  }
  throw new Error(`${name}: no connection to port ${port} within ${timeoutMs} ms:\n${attempts.join('\n')}`);
}

/** Connects with a CONNACK timeout of `timeoutMs`; the message recorder is on before the CONNECT leaves. */
function jsClientLong(name: string, port: number, opts: IClientOptions, timeoutMs: number): Promise<JsSubscriber> {
  const client = mqttConnect({
    host: '127.0.0.1', port, protocol: 'mqtt', reconnectPeriod: 0, connectTimeout: timeoutMs, clientId: name, ...opts,
  });
  openClients.add(client);
  client.once('end', () => openClients.delete(client));
  const sub = recordJs(name, client);
  return untilConnack(client, timeoutMs + 500).then(() => sub);
}

/**
 * Publishes `payloads` at `qos` on `topic`, at most `window` unacknowledged at a time; resolves with the
 * payloads the broker acknowledged (PUBACK / PUBCOMP), in order. Rejects after `timeoutMs`.
 */
export async function publishAll(
  client: MqttClient, topic: string, payloads: readonly string[], qos: 0 | 1 | 2, timeoutMs: number, window = 100,
): Promise<string[]> {
  const acked: string[] = [];
  const deadline = Math.round(performance.now()) + timeoutMs;
  let next = 0;
  let failed: Error | undefined;
  const inflight = new Set<Promise<void>>();
  while (next < payloads.length || inflight.size > 0) {
    if (failed !== undefined) throw failed;
    if (Math.round(performance.now()) > deadline) throw new Error(`publishAll: ${acked.length} of ${payloads.length} acknowledged within ${timeoutMs} ms`);
    while (next < payloads.length && inflight.size < window) {
      const p = payloads[next++]!;
      const pr: Promise<void> = client.publishAsync(topic, p, { qos }).then(
        () => {
          acked.push(p);
          inflight.delete(pr);
        },
        (err: Error) => {
          failed ??= err;
          inflight.delete(pr);
        },
      );
      inflight.add(pr);
    }
    await Promise.race([...inflight, sleep(200)]);
  }
  if (failed !== undefined) throw failed;
  return acked;
}

// ---------------------------------------------------------------------------------------------
// mosquitto_sub / mosquitto_pub

/** `mosquitto_sub -p PORT -F '%p' ARGS...`: one payload per line. */
export function mosquittoSub(name: string, port: number, args: string[]): LineProcess & Inbox {
  const p = spawnLines('mosquitto_sub', ['-p', String(port), '-F', '%p', ...args]);
  return Object.assign(p, { name, payloads: () => p.lines });
}

/** `mosquitto_pub -p PORT ARGS...` to completion; rejects unless it exits 0. */
export async function mosquittoPub(port: number, args: string[], timeoutMs = 10_000): Promise<RunResult> {
  const r = await run('mosquitto_pub', ['-p', String(port), ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`mosquitto_pub -p ${port} ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// paho-mqtt (1.6, MQTT 3.1.1)

const scriptDir = mkdtempSync(join(tmpdir(), 'midge-cluster-py-'));
process.on('exit', () => rmSync(scriptDir, { recursive: true, force: true }));

const PAHO_SUB = `import os, sys, json
import paho.mqtt.client as mqtt
a = json.loads(sys.argv[1])
def on_connect(c, u, flags, rc):
    print('connack %d %d' % (flags.get('session present', 0), rc), flush=True)
    if rc == 0 and a.get('topic'):
        c.subscribe(a['topic'], a['qos'])
def on_subscribe(c, u, mid, granted):
    print('suback %s' % (granted,), flush=True)
def on_message(c, u, m):
    print('msg %d %d %s' % (m.qos, m.retain, m.payload.decode()), flush=True)
def on_disconnect(c, u, rc):
    print('lost %d' % rc, flush=True)
    os._exit(3)
c = mqtt.Client(client_id=a['id'], clean_session=a['clean'])
c.on_connect = on_connect
c.on_subscribe = on_subscribe
c.on_message = on_message
c.on_disconnect = on_disconnect
if a.get('will'):
    c.will_set(a['will'], a['will'] + ' gone', 1)
c.connect('127.0.0.1', a['port'], keepalive=a.get('keepalive', 60))
c.loop_forever()
`;

const PAHO_PUB = `import sys, json
import paho.mqtt.client as mqtt
a = json.loads(sys.argv[1])
c = mqtt.Client(client_id=a['id'], clean_session=True)
c.connect('127.0.0.1', a['port'])
c.loop_start()
infos = [c.publish(a['topic'], '%s%d' % (a['prefix'], i), a['qos'], a.get('retain', False)) for i in range(a['n'])]
for i, info in enumerate(infos):
    info.wait_for_publish(20)
    if not info.is_published():
        print('unacked %d' % i, flush=True)
        sys.exit(2)
print('acked %d' % len(infos), flush=True)
c.disconnect()
c.loop_stop()
`;

writeFileSync(join(scriptDir, 'sub.py'), PAHO_SUB);
writeFileSync(join(scriptDir, 'pub.py'), PAHO_PUB);

export interface PahoSubOptions {
  port: number;
  id: string;
  clean: boolean;
  topic?: string;
  qos?: number;
  /** will topic (payload `TOPIC gone`, QoS 1) */
  will?: string;
  keepalive?: number;
}

export interface PahoSub extends LineProcess, Inbox {
  /** the `connack SESSION_PRESENT RC` line */
  connack(timeoutMs?: number): Promise<string>;
  subscribed(timeoutMs?: number): Promise<string>;
  /** messages as `QOS RETAIN PAYLOAD` */
  messages(): string[];
}

/** A paho subscriber process (exits when its connection is lost): prints connack, suback, `msg QOS RETAIN PAYLOAD`. */
export function pahoSub(name: string, o: PahoSubOptions): PahoSub {
  const p = spawnLines(PYTHON, ['-u', join(scriptDir, 'sub.py'), JSON.stringify({ qos: 1, ...o })]);
  const messages = (): string[] => p.lines.filter((l) => l.startsWith('msg ')).map((l) => l.slice(4));
  return Object.assign(p, {
    name,
    messages,
    payloads: () => messages().map((m) => m.split(' ').slice(2).join(' ')),
    connack: (t = 10_000) => p.waitForLine(/^connack /, t),
    subscribed: (t = 10_000) => p.waitForLine(/^suback /, t),
  });
}

/** paho publishes n messages `PREFIXi` at qos and waits for every acknowledgement; rejects unless all came. */
export async function pahoPub(o: { port: number; id: string; topic: string; qos: number; n: number; prefix: string; retain?: boolean }, timeoutMs = 30_000): Promise<RunResult> {
  const r = await run(PYTHON, ['-u', join(scriptDir, 'pub.py'), JSON.stringify(o)], { timeoutMs });
  if (r.code !== 0 || !r.stdout.includes(`acked ${o.n}`)) throw new Error(`paho publisher exited ${String(r.code)}: ${r.stdout}${r.stderr}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// routes across nodes

/**
 * Publishes probe messages (`probe-TAG-i`, QoS 0, bounded) with `publish` until every inbox has received
 * one: a subscription made on one node reaches the other nodes' index through Redis, a moment later.
 * Resolves with the time it took. The probes are removed from nothing: filter them with `withoutProbes`.
 */
export async function untilRouted(
  tag: string, publish: (payload: string) => Promise<unknown>, inboxes: readonly Inbox[], timeoutMs = 10_000,
): Promise<number> {
  const t0 = Math.round(performance.now());
  const re = new RegExp(`^probe-${tag}-\\d+$`);
  for (let i = 1; i <= 1000 && Math.round(performance.now()) - t0 < timeoutMs; i++) {
    await publish(`probe-${tag}-${i}`);
    for (let w = 0; w < 6; w++) {
      if (inboxes.every((b) => b.payloads().some((p) => re.test(p)))) return Math.round(performance.now()) - t0;
      await sleep(50);
    }
  }
  const missing = inboxes.filter((b) => !b.payloads().some((p) => re.test(p))).map((b) => b.name);
  throw new Error(`probes '${tag}' never reached ${missing.join(', ')} within ${timeoutMs} ms`);
}

export function withoutProbes(payloads: readonly string[]): string[] {
  return payloads.filter((p) => !p.startsWith('probe-'));
}

/** Per payload: how many times it is in `got`. Missing = expected ones never received; dups = received > 1. */
export function tally(expected: readonly string[], got: readonly string[]): { missing: string[]; dups: number; unexpected: string[] } {
  const counts = new Map<string, number>();
  for (const p of got) counts.set(p, (counts.get(p) ?? 0) + 1);
  const want = new Set(expected);
  return {
    missing: expected.filter((p) => !counts.has(p)),
    dups: [...counts.values()].reduce((s, c) => s + (c > 1 ? c - 1 : 0), 0),
    unexpected: [...counts.keys()].filter((p) => !want.has(p)),
  };
}

/** `payloads` restricted to those starting with `prefix`, in order: is it an increasing sequence? */
export function inOrder(payloads: readonly string[], prefix: string): { ok: boolean; firstBreak?: string } {
  let last = -1;
  for (const p of payloads) {
    if (!p.startsWith(prefix)) continue;
    const n = Number(p.slice(prefix.length));
    if (!(n > last)) return { ok: false, firstBreak: `${prefix}${last} then ${p}` };
    last = n;
  }
  return { ok: true };
}

export const range = (n: number, prefix: string): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

// ---------------------------------------------------------------------------------------------
// a process-based client that is started again when it exits (a refused CONNECT ends it), bounded

/** Runs `spawn()` and, until `stop()` or `deadlineMs` after `start()`, again 300 ms after each exit. */
export class Respawned<P extends LineProcess & Inbox> implements Inbox {
  readonly runs: P[] = [];
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly spawn: () => P,
  ) {}

  start(deadlineMs: number): void {
    const end = Math.round(performance.now()) + deadlineMs;
    this.loop = (async () => {
      for (let i = 0; i < 200 && !this.stopped && Math.round(performance.now()) < end; i++) {
        const p = this.spawn();
        this.runs.push(p);
        await p.exited;
        if (!this.stopped) await sleep(300);
      }
    })();
  }

  payloads(): string[] {
    return this.runs.flatMap((r) => r.payloads());
  }

  current(): P | undefined {
    return this.runs[this.runs.length - 1];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current()?.kill('SIGKILL');
    await this.loop;
  }
}

// ---------------------------------------------------------------------------------------------
// a steady stream of QoS 1 publishes that records what the broker acknowledged

export class StreamPublisher {
  readonly acked: string[] = [];
  /** Math.round(performance.now()) of each acknowledgement, as `acked` */
  readonly ackedAt: number[] = [];
  readonly errors: string[] = [];
  sent = 0;
  private stopped = false;
  private readonly inflight = new Set<Promise<void>>();
  private loop: Promise<void> = Promise.resolve();

  /** `window` unacknowledged at most; a pause of `pauseMs` after every 10 publishes (about 500/s at most). */
  constructor(
    private readonly client: MqttClient,
    private readonly topic: string,
    private readonly prefix: string,
    private readonly opts: { window?: number; pauseMs?: number; max?: number; qos?: 1 | 2 } = {},
  ) {}

  start(): this {
    const window = this.opts.window ?? 20;
    const max = this.opts.max ?? 50_000;
    this.loop = (async () => {
      while (!this.stopped && this.sent < max) {
        if (this.inflight.size >= window) {
          await Promise.race([...this.inflight, sleep(100)]);
          continue;
        }
        const payload = `${this.prefix}${this.sent++}`;
        const p: Promise<void> = this.client.publishAsync(this.topic, payload, { qos: this.opts.qos ?? 1 }).then(
          () => {
            this.acked.push(payload);
            this.ackedAt.push(Math.round(performance.now()));
            this.inflight.delete(p);
          },
          (err: Error) => {
            this.errors.push(`${payload}: ${err.message}`);
            this.inflight.delete(p);
          },
        );
        this.inflight.add(p);
        if (this.sent % 10 === 0) await sleep(this.opts.pauseMs ?? 20);
      }
    })();
    return this;
  }

  /** Stops publishing and waits (bounded) until every publish was acknowledged or failed. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    await this.loop;
    const deadline = Math.round(performance.now()) + timeoutMs;
    while (this.inflight.size > 0 && Math.round(performance.now()) < deadline) await Promise.race([...this.inflight, sleep(200)]);
    if (this.inflight.size > 0) throw new Error(`${this.inflight.size} publishes of ${this.prefix}* neither acknowledged nor failed within ${timeoutMs} ms (${this.acked.length} acknowledged)`);
  }
}
